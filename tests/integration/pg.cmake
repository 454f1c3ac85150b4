# pg: the private PostgreSQL instance (tools/sluice-pg: init, start, stop,
# status, idempotency, no trust, unix socket only, file modes) and the
# schema tool (sluicectl db init|migrate|status: from empty, from the
# previous version, failures, exit codes, --json) against a real server
# in a temporary directory (pg.sh).  No Postfix: no resource lock.
add_test(NAME pg_instance COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/pg.sh)
set_tests_properties(pg_instance PROPERTIES
  ENVIRONMENT "SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  TIMEOUT 120
  LABELS "integration;pg")
