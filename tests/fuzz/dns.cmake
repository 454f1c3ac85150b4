# tests/fuzz/dns.cmake: libFuzzer target for the DNS answer parser
# (engine/dns.c) and the dns stage's scanners and PSL matcher
# (plugins/dns).  Only with -DSLUICE_FUZZ=ON (clang).  ctest fuzz_dns runs
# it for 30 s on a copy of the seeds; any crash, leak or timeout fails.
if(SLUICE_FUZZ)
  find_library(CRYPTO_LIB crypto REQUIRED)
  find_library(CARES_LIB cares REQUIRED)
  set(_dns_stage ${CMAKE_SOURCE_DIR}/plugins/dns)
  add_executable(fuzz_dns ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_dns.c
    ${CMAKE_SOURCE_DIR}/engine/dns.c ${CMAKE_SOURCE_DIR}/engine/util.c
    ${CMAKE_SOURCE_DIR}/engine/log.c
    ${_dns_stage}/dnsbl_util.c ${_dns_stage}/psl.c)
  target_include_directories(fuzz_dns PRIVATE ${CMAKE_SOURCE_DIR}/engine
    ${_dns_stage})
  target_compile_options(fuzz_dns PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_dns PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_dns PRIVATE ${CARES_LIB} ${EV_LIB} ${CRYPTO_LIB} m)
  set(_fuzz_dns_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_dns_corpus)
  add_test(NAME fuzz_dns
    COMMAND sh -c "rm -rf '${_fuzz_dns_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/dns' '${_fuzz_dns_corpus}' && exec \"$0\" -max_total_time=30 -max_len=4096 -timeout=10 '${_fuzz_dns_corpus}'"
            $<TARGET_FILE:fuzz_dns>)
  set_tests_properties(fuzz_dns PROPERTIES TIMEOUT 120)
endif()
