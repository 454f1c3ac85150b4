# manager: sluice-manager's security over real HTTPS (manager_api.sh): a
# private PostgreSQL (tools/sluice-pg), sluiced and sluice-manager on free
# loopback ports; accounts by `sluicectl admin`.  No Postfix, but sluiced
# and PostgreSQL: run alone like the other integration tests.
if(TARGET sluice-manager)
  add_test(NAME manager_api COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/manager_api.sh)
  set_tests_properties(manager_api PROPERTIES
    ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_MANAGER=$<TARGET_FILE:sluice-manager>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=280"
    TIMEOUT 300
    RESOURCE_LOCK postfix
    LABELS "integration;pg;manager")
endif()
