# blocklist: sluice-blocklistd and the blocklist stage, end to end
# (blocklist.sh): listed/unlisted clients, action reject, daemon down or
# hung, reload under pipelined load, malformed requests.  Same harness
# and environment as integration.cmake, plus the daemon's path.
add_test(NAME blocklist COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/blocklist.sh)
set_tests_properties(blocklist PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_BLOCKLISTD=$<TARGET_FILE:sluice-blocklistd>;SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR}"
  TIMEOUT 200
  RESOURCE_LOCK postfix
  LABELS integration)
