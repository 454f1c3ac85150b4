# blocklist: libFuzzer on sluice-blocklistd's request splitter, parser and
# answers (and the stage's answer parser on every answer), clang only.
# ctest fuzz_blocklist runs it for 30 s on a scratch copy of the seeds.
if(SLUICE_FUZZ)
  add_executable(fuzz_blocklist
    ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_blocklist.c
    ${CMAKE_SOURCE_DIR}/tools/blocklistd/bl_proto.c
    ${CMAKE_SOURCE_DIR}/tools/blocklistd/bl_table.c
    ${CMAKE_SOURCE_DIR}/plugins/blocklist/bls_reply.c)
  target_include_directories(fuzz_blocklist PRIVATE
    ${CMAKE_SOURCE_DIR}/tools/blocklistd
    ${CMAKE_SOURCE_DIR}/plugins/blocklist)
  target_compile_options(fuzz_blocklist PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_blocklist PRIVATE -fsanitize=fuzzer)
  set(FUZZ_BLOCKLIST_WORK ${CMAKE_BINARY_DIR}/fuzz/blocklist)
  add_test(NAME fuzz_blocklist
    COMMAND sh -c "rm -rf '${FUZZ_BLOCKLIST_WORK}' && mkdir -p '${FUZZ_BLOCKLIST_WORK}' && cp '${CMAKE_SOURCE_DIR}'/tests/fuzz/seeds/blocklist/* '${FUZZ_BLOCKLIST_WORK}'/ && exec '$<TARGET_FILE:fuzz_blocklist>' -max_total_time=30 -max_len=4096 -timeout=10 '${FUZZ_BLOCKLIST_WORK}'")
  set_tests_properties(fuzz_blocklist PROPERTIES TIMEOUT 120)
endif()
