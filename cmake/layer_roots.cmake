# Include roots per layer, from the layer table (scripts/layers.txt, the one
# source of truth that scripts/check-layers.py checks each #include against).
#
# Each layer compiles against a root of its own, BUILD/layer_roots/LAYER/,
# that holds links to its own folder of src/ and to the folders of every
# layer it may use, directly or through another layer (the headers it
# includes include theirs). A layer above is not there: an include that runs
# back up does not compile. scripts/check-layers.py is the finer check (direct
# edges, single-header grants).
#
# Sets BATON_LAYERS (the table's layers, bottom up) and, for each layer,
# BATON_LAYER_ROOT_<layer>.
set(baton_layer_table ${CMAKE_SOURCE_DIR}/scripts/layers.txt)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${baton_layer_table})
file(STRINGS ${baton_layer_table} baton_layer_lines)
set(BATON_LAYERS)
foreach(line IN LISTS baton_layer_lines)
  string(REGEX REPLACE "#.*" "" line "${line}")
  string(STRIP "${line}" line)
  if(line STREQUAL "")
    continue()
  endif()
  if(NOT line MATCHES "^([a-z][a-z0-9_]*):(.*)$")
    message(FATAL_ERROR "${baton_layer_table}: expected 'LAYER: USES...', got '${line}'")
  endif()
  set(layer ${CMAKE_MATCH_1})
  string(STRIP "${CMAKE_MATCH_2}" uses)
  string(REGEX REPLACE "[ \t]+" ";" uses "${uses}")
  set(closure ${layer})
  foreach(use IN LISTS uses)
    string(REGEX REPLACE "/.*" "" used "${use}")
    if(NOT used IN_LIST BATON_LAYERS)
      message(FATAL_ERROR "${baton_layer_table}: ${layer} uses '${use}', not a layer listed above it")
    endif()
    list(APPEND closure ${BATON_LAYER_CLOSURE_${used}})
  endforeach()
  list(REMOVE_DUPLICATES closure)
  set(BATON_LAYER_CLOSURE_${layer} ${closure})
  list(APPEND BATON_LAYERS ${layer})

  set(root ${CMAKE_BINARY_DIR}/layer_roots/${layer})
  file(MAKE_DIRECTORY ${root})
  # Drop links that the table no longer grants (file(REMOVE) unlinks; it never
  # follows a link into src/).
  file(GLOB old_links LIST_DIRECTORIES true ${root}/*)
  foreach(link IN LISTS old_links)
    get_filename_component(name ${link} NAME)
    if(NOT IS_SYMLINK ${link})
      message(FATAL_ERROR "${link}: expected a link made by cmake/layer_roots.cmake")
    endif()
    if(NOT name IN_LIST closure)
      file(REMOVE ${link})
    endif()
  endforeach()
  foreach(l IN LISTS closure)
    if(NOT IS_SYMLINK ${root}/${l})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${l} ${root}/${l} SYMBOLIC)
    endif()
  endforeach()
  set(BATON_LAYER_ROOT_${layer} ${root})
endforeach()
