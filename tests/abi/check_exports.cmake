# cmake -DNM=<nm> -DFILE=<plugin.so> -DNAME=<driver name> -P check_exports.cmake
#
# A driver plugin must export exactly one dynamic symbol, trifle_driver_<NAME>_init (SPEC §7.1,
# STYLE §2): everything else is static or hidden, so two plugins can never clash and a static build
# can list every entry in one registry.
set(SCRIPT check_exports.cmake)
set(required NM FILE NAME)
include(${CMAKE_CURRENT_LIST_DIR}/dynamic_symbols.cmake)

# Lines look like "0000000000003780 T trifle_driver_fake_init".
set(symbols "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^.*[ \t]([^ \t]+)$" "\\1" sym "${line}")
  list(APPEND symbols "${sym}")
endforeach()

set(expected "trifle_driver_${NAME}_init")
if(NOT symbols STREQUAL expected)
  string(REPLACE ";" ", " shown "${symbols}")
  message(FATAL_ERROR "${FILE} exports [${shown}]; expected exactly ${expected}")
endif()
message(STATUS "${FILE}: exports only ${expected}")
