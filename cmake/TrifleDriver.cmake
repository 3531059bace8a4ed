# trifle_add_driver(<name> [PACKAGE <find_package name> | PKGCONFIG <module>] [TARGETS <targets...>]
#                   SOURCES <files...>)
# Declares TRIFLE_DRIVER_<NAME> = AUTO|ON|OFF. AUTO builds the driver when its dependency is found;
# ON fails at configure time when it is not (so CI and packagers never lose a driver silently); OFF
# does not look.
# Also installed with the CMake package, so a third-party plugin project can call it after
# find_package(trifle): the plugin then links trifle::driver_api and the driver kit
# (trifle::driver_kit, <drv_support.h>) and installs into TRIFLE_PLUGIN_DIR.
include(FeatureSummary)
include(GNUInstallDirs)

function(trifle_add_driver name)
  cmake_parse_arguments(D "" "PACKAGE;PKGCONFIG" "TARGETS;SOURCES" ${ARGN})
  string(TOUPPER ${name} UP)
  set(TRIFLE_DRIVER_${UP} AUTO CACHE STRING "Build the ${name} driver: AUTO, ON or OFF")
  set_property(CACHE TRIFLE_DRIVER_${UP} PROPERTY STRINGS AUTO ON OFF)
  if(TRIFLE_DRIVER_${UP} STREQUAL "OFF")
    add_feature_info(driver_${name} OFF "${name} storage driver (disabled)")
    return()
  endif()
  set(found TRUE)
  set(targets ${D_TARGETS})
  if(D_PACKAGE)
    find_package(${D_PACKAGE} QUIET)
    if(NOT ${D_PACKAGE}_FOUND)
      set(found FALSE)
    endif()
  endif()
  if(D_PKGCONFIG)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(TRIFLE_PC_${UP} QUIET IMPORTED_TARGET ${D_PKGCONFIG})
    if(TRIFLE_PC_${UP}_FOUND)
      list(APPEND targets PkgConfig::TRIFLE_PC_${UP})
    else()
      set(found FALSE)
    endif()
  endif()
  if(NOT found)
    if(TRIFLE_DRIVER_${UP} STREQUAL "ON")
      message(FATAL_ERROR "TRIFLE_DRIVER_${UP}=ON but its dependency (${D_PACKAGE}${D_PKGCONFIG}) was not found")
    endif()
    add_feature_info(driver_${name} OFF "${name} storage driver (dependency not found)")
    return()
  endif()
  add_library(trifle_driver_${name} MODULE ${D_SOURCES})
  set_target_properties(trifle_driver_${name} PROPERTIES PREFIX "" OUTPUT_NAME trifle_${name}
    C_VISIBILITY_PRESET hidden)
  if(TRIFLE_BUILD_PLUGIN_DIR)
    set_target_properties(trifle_driver_${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TRIFLE_BUILD_PLUGIN_DIR})
  endif()
  target_link_libraries(trifle_driver_${name} PRIVATE trifle::driver_api ${targets})
  if(TARGET trifle_driver_support) # inside the trifle-c build: the drivers' shared helpers
    target_link_libraries(trifle_driver_${name} PRIVATE trifle_driver_support)
  elseif(TARGET trifle::driver_kit) # after find_package(trifle): the same helpers, installed
    target_link_libraries(trifle_driver_${name} PRIVATE trifle::driver_kit)
  endif()
  if(NOT TRIFLE_BUILD_FUZZ) # fuzz builds leave coverage symbols to the fuzzing executable
    target_link_options(trifle_driver_${name} PRIVATE -Wl,--no-undefined)
  endif()
  if(TRIFLE_PLUGIN_INSTALL_DIR)     # inside the trifle-c build
    install(TARGETS trifle_driver_${name} LIBRARY DESTINATION ${TRIFLE_PLUGIN_INSTALL_DIR})
  elseif(TRIFLE_PLUGIN_DIR)         # a third-party project after find_package(trifle)
    install(TARGETS trifle_driver_${name} LIBRARY DESTINATION ${TRIFLE_PLUGIN_DIR})
  else()
    install(TARGETS trifle_driver_${name} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/trifle-1)
  endif()
  set_property(GLOBAL APPEND PROPERTY TRIFLE_DRIVERS ${name})
  add_feature_info(driver_${name} ON "${name} storage driver")
endfunction()
