# TrifleWebAssets.cmake: the files of the `trifle serve` dashboard, embedded into the binary.
#
# Included from server/CMakeLists.txt, it defines trifle_web_assets(<out.c> <web dir>), which adds
# a build step that writes <out.c>: a table of every file the dashboard serves. Our own page
# (server/web/) is always in it. uPlot, the chart library, is not in the repository: the build
# fetches the pinned npm package with `npm pack`, checks its SHA-512 and embeds two of its files
# (and its licence). TRIFLE_DASHBOARD chooses what happens when that fails:
#   AUTO (default)  build the server without the dashboard; `/` then says why
#   ON              fail the build
#   OFF             do not try; `/` says the dashboard was switched off
# A downloaded tarball is kept in the build tree, so rebuilding does not ask npm again.
#
# Run as a script (cmake -P) it does the work itself; the variables below are then passed with -D.

set(TRIFLE_UPLOT_VERSION 1.6.32)
set(TRIFLE_UPLOT_SHA512 2883159c6ebccefbb95d751b0b82d010f9e1c0ec41b8bc96d401eda66e882935c89a46cb824332fa369b8cb8122cc6ac36e186cd09bf7a9ded3a4c93c6989023)

if(NOT CMAKE_SCRIPT_MODE_FILE)
  set(TRIFLE_DASHBOARD AUTO CACHE STRING "Embed the dashboard (uPlot from npm at build time): AUTO, ON or OFF")
  set_property(CACHE TRIFLE_DASHBOARD PROPERTY STRINGS AUTO ON OFF)
  find_program(TRIFLE_NPM npm)
  set(_trifle_web_script ${CMAKE_CURRENT_LIST_FILE})

  function(trifle_web_assets out web_dir)
    file(GLOB _web_files CONFIGURE_DEPENDS ${web_dir}/*)
    set(_npm "${TRIFLE_NPM}")
    if(NOT _npm)
      set(_npm "npm-NOTFOUND")
    endif()
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DMODE=${TRIFLE_DASHBOARD} -DNPM=${_npm} -DWEB_DIR=${web_dir}
              -DCACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/uplot -DOUT=${out} -P ${_trifle_web_script}
      DEPENDS ${_web_files} ${_trifle_web_script}
      COMMENT "Embedding the dashboard (uPlot ${TRIFLE_UPLOT_VERSION}, TRIFLE_DASHBOARD=${TRIFLE_DASHBOARD})"
      VERBATIM)
  endfunction()
  return()
endif()

# ---- script mode --------------------------------------------------------------------------------

# Fetch and unpack uPlot into CACHE_DIR; sets UPLOT_DIR on success, else WHY.
function(fetch_uplot)
  set(tgz ${CACHE_DIR}/uplot-${TRIFLE_UPLOT_VERSION}.tgz)
  set(hash "")
  if(EXISTS ${tgz})
    file(SHA512 ${tgz} hash)
  endif()
  if(NOT hash STREQUAL TRIFLE_UPLOT_SHA512)
    if(NOT NPM OR NOT EXISTS "${NPM}")
      set(WHY "npm was not found when trifle was built" PARENT_SCOPE)
      return()
    endif()
    file(MAKE_DIRECTORY ${CACHE_DIR})
    file(REMOVE ${tgz})
    # fail fast when the registry is unreachable instead of retrying for minutes
    set(ENV{npm_config_fetch_retries} 0)
    set(ENV{npm_config_fetch_timeout} 20000)
    execute_process(COMMAND ${NPM} pack uplot@${TRIFLE_UPLOT_VERSION} --loglevel=error
                            --pack-destination ${CACHE_DIR}
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE npm_err TIMEOUT 120)
    if(NOT rc EQUAL 0 OR NOT EXISTS ${tgz})
      string(STRIP "${npm_err}" npm_err)
      string(REGEX REPLACE "\n.*" "" npm_err "${npm_err}")
      set(WHY "npm pack uplot@${TRIFLE_UPLOT_VERSION} failed when trifle was built (${rc}: ${npm_err})" PARENT_SCOPE)
      return()
    endif()
    file(SHA512 ${tgz} hash)
    if(NOT hash STREQUAL TRIFLE_UPLOT_SHA512)
      file(REMOVE ${tgz})
      set(WHY "uplot-${TRIFLE_UPLOT_VERSION}.tgz from npm does not have the pinned SHA-512" PARENT_SCOPE)
      return()
    endif()
  endif()
  set(dir ${CACHE_DIR}/uplot-${TRIFLE_UPLOT_VERSION})
  if(NOT EXISTS ${dir}/package/dist/uPlot.iife.min.js)
    file(REMOVE_RECURSE ${dir})
    file(MAKE_DIRECTORY ${dir})
    execute_process(COMMAND ${CMAKE_COMMAND} -E tar xzf ${tgz} WORKING_DIRECTORY ${dir}
                    RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      set(WHY "cannot unpack ${tgz}" PARENT_SCOPE)
      return()
    endif()
  endif()
  set(UPLOT_DIR ${dir}/package PARENT_SCOPE)
endfunction()

# Append one file to the generated source as a byte array and a table entry.
set(body "")
set(table "")
set(count 0)
function(embed url file type cache)
  file(READ ${file} hex HEX)
  file(SHA256 ${file} sum)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n" hex "${hex}")
  string(SUBSTRING ${sum} 0 16 etag)
  set(body "${body}static const unsigned char asset_${count}[] = {\n${hex}0x00};\n" PARENT_SCOPE)
  set(table "${table}    {\"${url}\", \"${type}\", \"${cache}\", \"\\\"${etag}\\\"\", asset_${count}, ${len}},\n" PARENT_SCOPE)
  math(EXPR n "${count} + 1")
  set(count ${n} PARENT_SCOPE)
endfunction()

set(WHY "")
set(UPLOT_DIR "")
if(MODE STREQUAL "OFF")
  set(WHY "the dashboard was switched off when trifle was built (TRIFLE_DASHBOARD=OFF)")
else()
  fetch_uplot()
  if(NOT UPLOT_DIR AND MODE STREQUAL "ON")
    message(FATAL_ERROR "TRIFLE_DASHBOARD=ON: ${WHY}")
  endif()
  if(NOT UPLOT_DIR)
    message(WARNING "the dashboard is not built in: ${WHY}")
  endif()
endif()

if(UPLOT_DIR AND NOT EXISTS ${WEB_DIR}/index.html)
  set(UPLOT_DIR "")
  set(WHY "the page (server/web) is missing from the source tree")
endif()

set(html "text/html; charset=utf-8")
set(js "text/javascript; charset=utf-8")
set(css "text/css; charset=utf-8")
set(txt "text/plain; charset=utf-8")
set(short "no-cache")
set(long "public, max-age=3600")
if(UPLOT_DIR)
  embed(/ ${WEB_DIR}/index.html "${html}" "${short}")
  embed(/assets/app.js ${WEB_DIR}/app.js "${js}" "${long}")
  embed(/assets/app.css ${WEB_DIR}/app.css "${css}" "${long}")
  embed(/assets/uPlot.min.js ${UPLOT_DIR}/dist/uPlot.iife.min.js "${js}" "${long}")
  embed(/assets/uPlot.min.css ${UPLOT_DIR}/dist/uPlot.min.css "${css}" "${long}")
  embed(/assets/uPlot.LICENSE.txt ${UPLOT_DIR}/LICENSE "${txt}" "${long}")
  set(built 1)
else()
  set(built 0)
endif()
# the reason goes into a C string and an HTML page: keep plain characters only
string(REGEX REPLACE "[^A-Za-z0-9 .,:;@()/_=+-]" "" WHY "${WHY}")
file(WRITE ${OUT}.tmp "/* Generated by cmake/TrifleWebAssets.cmake: do not edit. */
#include \"web_assets.h\"

${body}
const srv_web_asset srv_web_assets[] = {
${table}    {0, 0, 0, 0, 0, 0}};
const int srv_web_built = ${built};
const char srv_web_why[] = \"${WHY}\";
const char srv_web_uplot_version[] = \"${TRIFLE_UPLOT_VERSION}\";
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
file(REMOVE ${OUT}.tmp)
