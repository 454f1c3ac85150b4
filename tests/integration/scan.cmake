# `sluicectl scan` end to end (scan.sh, about 10 s): the test stages in a
# conf dir of its own, no Postfix, no daemon.
add_test(NAME scan COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/scan.sh)
set_tests_properties(scan PROPERTIES
  ENVIRONMENT "SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};FX_DIR=${FX_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
  TIMEOUT 120
  LABELS integration)
