# stage_move: `sluicectl stage list|enable|disable|move` against a running
# sluiced and a real Postfix (stage_move.sh): conf.d edits, the control
# reply, refusals, the undo of a refused reload, mail flowing throughout.
add_test(NAME stage_move COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/stage_move.sh)
set_tests_properties(stage_move PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=170"
  TIMEOUT 200
  RESOURCE_LOCK postfix
  LABELS integration)
