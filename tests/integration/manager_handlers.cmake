# manager_handlers: sluice-manager's JSON API handlers over real HTTPS
# (curl) against a real PostgreSQL, sluice-blocklistd, Postfix, sluiced
# and sluice-manager (manager_handlers.sh): status, stages, quarantine,
# lists, policy and dashboard, each state change checked where it lands
# (control socket, conf.d, database, Maildir).
add_test(NAME manager_handlers COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/manager_handlers.sh)
set_tests_properties(manager_handlers PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_MANAGER=$<TARGET_FILE:sluice-manager>;SLUICE_BLOCKLISTD=$<TARGET_FILE:sluice-blocklistd>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=270"
  TIMEOUT 300
  RESOURCE_LOCK postfix
  LABELS "integration;pg")
