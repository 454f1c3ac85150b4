# quarantine_release: many messages released in one `sluicectl quarantine
# release` (one SMTP session) through a real Postfix into its Maildir, with
# PostgreSQL named only by the engine section's `database`
# (quarantine_release.sh).
add_test(NAME quarantine_release COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/quarantine_release.sh)
set_tests_properties(quarantine_release PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=170"
  TIMEOUT 200
  RESOURCE_LOCK postfix
  LABELS "integration;pg")
