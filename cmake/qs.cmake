# Helpers shared by every layer's CMakeLists.txt.

# qs_add_layer(<name> DEPS <targets...>)
# Builds the static library qs_<name> from every *.c in the current directory
# except *_test.c, and one cmocka test per *_test.c (label "unit"), linked to the
# layer itself. New modules and tests need no CMake edits.
function(qs_add_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS;EXTRA_SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.c)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  if(NOT srcs AND NOT ARG_EXTRA_SOURCES)
    return() # a layer whose first module has not landed yet
  endif()
  add_library(qs_${name} STATIC ${srcs} ${ARG_EXTRA_SOURCES})
  target_include_directories(qs_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(qs_${name} PUBLIC ${ARG_DEPS})
  foreach(t ${tests})
    get_filename_component(tname ${t} NAME_WE)
    add_executable(${tname} ${t})
    target_link_libraries(${tname} PRIVATE qs_${name} PkgConfig::CMOCKA)
    add_test(NAME ${tname} COMMAND ${tname})
    set_tests_properties(${tname} PROPERTIES LABELS unit TIMEOUT 300)
  endforeach()
endfunction()
