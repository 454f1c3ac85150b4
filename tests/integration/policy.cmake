# policy: the policy stage in a running sluiced (policy.sh) with a real
# PostgreSQL (tools/sluice-pg, private instance under the test's state
# directory): the default policy tags a high-score message ([SPAM],
# X-Sluice-Spam), a blocklisted sender is rejected, and `sluicectl list
# add|remove` changes the verdict without a restart; `sluicectl policy
# check|test` exit codes and line:column errors.  Mail goes straight to
# the smtp ingress and on to a smtp-sink (no Postfix).
add_test(NAME policy_stage COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/policy.sh)
set_tests_properties(policy_stage PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_PG=${CMAKE_SOURCE_DIR}/tools/sluice-pg;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR}"
  TIMEOUT 120
  LABELS "integration;pg")
