# DNS: the worker resolver (engine/dns.c) against a fake DNS server on
# the test's own loop; the dns stage's pure parts (plugins/dns: Public
# Suffix List, URL and Received parsing, zone syntax, query names).
add_executable(test_dns ${CMAKE_SOURCE_DIR}/tests/unit/test_dns.c)
target_link_libraries(test_dns PRIVATE sluice_engine ${CMOCKA_LIB})
target_include_directories(test_dns PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
add_test(NAME dns_resolver COMMAND test_dns)
set_tests_properties(dns_resolver PROPERTIES TIMEOUT 60)

set(DNS_STAGE_DIR ${CMAKE_SOURCE_DIR}/plugins/dns)
find_library(CRYPTO_LIB crypto REQUIRED)
add_executable(test_dnsbl ${CMAKE_SOURCE_DIR}/tests/unit/test_dnsbl.c
  ${DNS_STAGE_DIR}/dnsbl_util.c ${DNS_STAGE_DIR}/psl.c)
target_include_directories(test_dnsbl PRIVATE ${DNS_STAGE_DIR})
target_link_libraries(test_dnsbl PRIVATE ${CMOCKA_LIB} ${CRYPTO_LIB})
add_test(NAME dns_stage_parts COMMAND test_dnsbl)

# The stage's per-message logic behind a fake host (its source included).
add_executable(test_dnsbl_stage ${CMAKE_SOURCE_DIR}/tests/unit/test_dnsbl_stage.c
  ${DNS_STAGE_DIR}/dnsbl_util.c ${DNS_STAGE_DIR}/psl.c)
target_include_directories(test_dnsbl_stage PRIVATE ${DNS_STAGE_DIR})
target_link_libraries(test_dnsbl_stage PRIVATE ${CMOCKA_LIB} ${CRYPTO_LIB})
add_test(NAME dns_stage_logic COMMAND test_dnsbl_stage)
