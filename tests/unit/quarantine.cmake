# tests/unit/quarantine.cmake: the quarantine stage's input hygiene
# (plugins/quarantine/quarantine.c included by the test: text made valid
# UTF-8 and bounded, client addresses for the inet column).  The stage end
# to end, with PostgreSQL and Postfix: tests/integration/quarantine.sh.
find_library(CRYPTO_LIB crypto REQUIRED)
add_executable(test_quarantine_text
  ${CMAKE_SOURCE_DIR}/tests/unit/test_quarantine_text.c)
target_include_directories(test_quarantine_text PRIVATE
  ${CMAKE_SOURCE_DIR}/plugins/common)
target_link_libraries(test_quarantine_text PRIVATE sluice_pgpool
  ${CMOCKA_LIB} ${CRYPTO_LIB})
add_test(NAME quarantine_text COMMAND test_quarantine_text)
set_tests_properties(quarantine_text PROPERTIES LABELS unit)
