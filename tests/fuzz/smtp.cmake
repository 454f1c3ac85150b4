# smtp ingress: libFuzzer on the protocol state machine (clang only).
# ctest fuzz_smtp runs it for 60 s on a scratch copy of the seeds.
if(SLUICE_FUZZ)
  add_executable(fuzz_smtp
    ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_smtp.c
    ${CMAKE_SOURCE_DIR}/plugins/smtp/smtp_proto.c)
  target_include_directories(fuzz_smtp PRIVATE
    ${CMAKE_SOURCE_DIR}/plugins/smtp)
  target_compile_options(fuzz_smtp PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_smtp PRIVATE -fsanitize=fuzzer)
  set(FUZZ_SMTP_WORK ${CMAKE_BINARY_DIR}/fuzz/smtp)
  add_test(NAME fuzz_smtp
    COMMAND sh -c "rm -rf '${FUZZ_SMTP_WORK}' && mkdir -p '${FUZZ_SMTP_WORK}' && cp '${CMAKE_SOURCE_DIR}'/tests/fuzz/seeds/smtp/* '${FUZZ_SMTP_WORK}'/ && exec '$<TARGET_FILE:fuzz_smtp>' -max_total_time=60 -max_len=4096 -timeout=10 '${FUZZ_SMTP_WORK}'")
  set_tests_properties(fuzz_smtp PROPERTIES TIMEOUT 180)
endif()
