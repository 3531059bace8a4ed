# cmake -DNM=<nm> -DFILE=<lib.so> -DMATCH=<regex> [-DFORBID=<regex>] -P check_lib_exports.cmake
#
# A library's dynamic exports are its documented API and nothing else: every defined dynamic
# symbol must match MATCH and none may match FORBID. libtrifle exports trifle_* but no
# trifle_simple_* (Simple Stats is libtrifle-simple's), libtrifle-simple exports trifle_simple_*
# only (the core basics it compiles in stay local).
set(SCRIPT check_lib_exports.cmake)
set(required NM FILE MATCH)
include(${CMAKE_CURRENT_LIST_DIR}/dynamic_symbols.cmake)

set(bad "")
set(count 0)
foreach(line IN LISTS lines)
  # "0000000000003780 T trifle_version"; version nodes (A) are not symbols of the API
  if(NOT line MATCHES "^[0-9a-f]+ ([A-Za-z]) ([^ \t]+)$" OR CMAKE_MATCH_1 STREQUAL "A")
    continue()
  endif()
  set(sym "${CMAKE_MATCH_2}")
  math(EXPR count "${count} + 1")
  if(NOT sym MATCHES "${MATCH}" OR (DEFINED FORBID AND sym MATCHES "${FORBID}"))
    list(APPEND bad "${sym}")
  endif()
endforeach()
if(count EQUAL 0)
  message(FATAL_ERROR "${FILE} exports nothing")
endif()
if(bad)
  string(REPLACE ";" ", " shown "${bad}")
  message(FATAL_ERROR "${FILE} exports symbols outside its API: ${shown}")
endif()
message(STATUS "${FILE}: ${count} exports, all match ${MATCH}")
