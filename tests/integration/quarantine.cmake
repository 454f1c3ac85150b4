# quarantine: the `quarantine` stage and `sluicectl quarantine` end to end
# (quarantine.sh): a real PostgreSQL started with tools/sluice-pg in the
# test's state directory, a real Postfix in front of and behind sluiced
# (the `verdict` test stage quarantines on demand).  Same harness and
# environment as integration.cmake, plus sluicectl and sluice-pg.
add_test(NAME quarantine_postfix COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/quarantine.sh)
set_tests_properties(quarantine_postfix PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=170"
  TIMEOUT 200
  RESOURCE_LOCK postfix
  LABELS "integration;pg")
