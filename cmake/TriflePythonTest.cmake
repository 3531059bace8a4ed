# Registration of the black-box test scripts under tests/ (cli, mcp, http, browser): Python 3
# programs run by ctest against the built `trifle`.

# trifle_python_tests_ready(<out-var> <what> <target>...)
# Sets <out-var> TRUE when every <target> exists and a Python 3 interpreter is found (the
# imported target Python3::Interpreter then exists in the calling directory). Without a target
# it is FALSE silently (that part of the build is off); without Python it is FALSE with the
# warning "python3 not found: <what>".
function(trifle_python_tests_ready out what)
  set(${out} FALSE PARENT_SCOPE)
  foreach(target IN LISTS ARGN)
    if(NOT TARGET ${target})
      return()
    endif()
  endforeach()
  find_package(Python3 COMPONENTS Interpreter)
  if(NOT Python3_Interpreter_FOUND)
    message(WARNING "python3 not found: ${what}")
    return()
  endif()
  set(${out} TRUE PARENT_SCOPE)
endfunction()

# trifle_python_test(<name> <script> TIMEOUT <seconds> [SKIP_RETURN_CODE <code>]
#                    [REQUIRES <target>...] [ARGS <arg>...] [ENVIRONMENT <VAR=value>...])
# Adds test <name> running <script> (relative to the calling directory's sources) with ARGS,
# PYTHONDONTWRITEBYTECODE=1 (no __pycache__ in the source tree) and the ENVIRONMENT given.
# With REQUIRES, the test is left out as trifle_python_tests_ready() decides for those targets
# (for a directory of one test; a directory of several checks once, itself).
function(trifle_python_test name script)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "TIMEOUT;SKIP_RETURN_CODE" "REQUIRES;ARGS;ENVIRONMENT")
  if(NOT arg_TIMEOUT)
    message(FATAL_ERROR "trifle_python_test(${name}): TIMEOUT is required")
  endif()
  if(arg_REQUIRES)
    trifle_python_tests_ready(ready "test ${name} is not registered" ${arg_REQUIRES})
    if(NOT ready)
      return()
    endif()
  endif()
  list(APPEND arg_ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
  add_test(NAME ${name}
           COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${arg_ARGS})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${arg_TIMEOUT} ENVIRONMENT "${arg_ENVIRONMENT}")
  if(DEFINED arg_SKIP_RETURN_CODE)
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE ${arg_SKIP_RETURN_CODE})
  endif()
endfunction()
