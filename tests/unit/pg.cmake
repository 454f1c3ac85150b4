# tests/unit/pg.cmake: the asynchronous PostgreSQL pool (plugins/common/
# pgpool.c) on a libev loop behind a fake host table, against a real
# PostgreSQL started for the test by pg_env.sh (tools/sluice-pg in a
# temporary directory, unix socket, scram-sha-256, as `nobody`).
find_library(CRYPTO_LIB crypto REQUIRED)  # md5 of a large parameter
add_executable(test_pgpool ${CMAKE_SOURCE_DIR}/tests/unit/test_pgpool.c)
target_link_libraries(test_pgpool PRIVATE sluice_pgpool sluice_fakehost
  ${CMOCKA_LIB} ${EV_LIB} ${CRYPTO_LIB})
add_test(NAME pg_pool COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/pg_env.sh
  ${CMAKE_SOURCE_DIR}/tools/sluice-pg $<TARGET_FILE:sluicectl>
  $<TARGET_FILE:test_pgpool>)
set_tests_properties(pg_pool PROPERTIES TIMEOUT 120 LABELS pg)
