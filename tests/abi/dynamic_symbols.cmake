# Included by check_exports.cmake and check_lib_exports.cmake: checks that the variables listed in
# `required` are set (SCRIPT names the caller in the message), then runs
# `${NM} -D --defined-only ${FILE}` and sets `lines` to its output lines
# ("0000000000003780 T trifle_driver_fake_init"); a failing nm ends the script.
foreach(var ${required})
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${SCRIPT}: ${var} is not set")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only ${FILE}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${FILE} failed (${rc}): ${err}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${out}")
