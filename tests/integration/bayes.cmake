# bayes: the `bayes` stage end to end through Postfix and sluiced with a
# database trained by sluice-bayes (bayes.sh).  Same harness and
# environment as integration.cmake, plus the tool's path.
add_test(NAME bayes_postfix COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/bayes.sh)
set_tests_properties(bayes_postfix PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_BAYES=$<TARGET_FILE:sluice-bayes>;SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR}"
  TIMEOUT 300
  RESOURCE_LOCK postfix
  LABELS integration)
# autolearn: the bayes stage's auto-learning in sluiced behind Postfix
# (autolearn.sh): scored messages queued and applied by a worker's timer
add_test(NAME bayes_autolearn_postfix COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/autolearn.sh)
set_tests_properties(bayes_autolearn_postfix PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_BAYES=$<TARGET_FILE:sluice-bayes>;SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR}"
  TIMEOUT 300
  RESOURCE_LOCK postfix
  LABELS integration)
