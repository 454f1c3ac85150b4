# The dns stage against a real rbldnsd, a black-hole and a SERVFAIL DNS
# server (dns.sh); mail straight to sluiced's ingress, on to a smtp-sink.
add_test(NAME dns_stage COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dns.sh)
set_tests_properties(dns_stage PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};IT_DIR=${CMAKE_CURRENT_LIST_DIR}"
  TIMEOUT 180
  RESOURCE_LOCK postfix
  LABELS integration)
