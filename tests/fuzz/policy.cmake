# tests/fuzz/policy.cmake: libFuzzer target for the policy language
# (plugins/policy/plang.c: lexer, parser, checker, and the interpreter on
# what compiles).  Only with -DSLUICE_FUZZ=ON (clang).  ctest fuzz_policy
# runs it for 30 s on a copy of the seeds (tests/fuzz/seeds/policy, plus
# the default policy).
if(SLUICE_FUZZ)
  add_executable(fuzz_policy ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_policy.c
    ${CMAKE_SOURCE_DIR}/plugins/policy/plang.c)
  target_include_directories(fuzz_policy PRIVATE ${CMAKE_SOURCE_DIR}/plugins/policy)
  target_compile_options(fuzz_policy PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_policy PRIVATE -fsanitize=fuzzer)
  set(_fuzz_policy_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_policy_corpus)
  add_test(NAME fuzz_policy
    COMMAND sh -c "rm -rf '${_fuzz_policy_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/policy' '${_fuzz_policy_corpus}' && cp '${CMAKE_SOURCE_DIR}/plugins/policy/default.sieve' '${_fuzz_policy_corpus}/' && exec \"$0\" -max_total_time=30 -max_len=8192 -timeout=10 '${_fuzz_policy_corpus}'"
            $<TARGET_FILE:fuzz_policy>)
  set_tests_properties(fuzz_policy PROPERTIES TIMEOUT 120)
endif()
