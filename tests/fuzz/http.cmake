# tests/fuzz/http.cmake: libFuzzer target for sluice-manager's request path
# (tools/manager: libhttp-parser with the limits, dispatch with auth, CSRF
# and roles, the API route tables and handlers without a database, static
# files).  Only with -DSLUICE_FUZZ=ON (clang).  ctest fuzz_http runs it for
# 30 s on a copy of tests/fuzz/seeds/http.
if(SLUICE_FUZZ AND TARGET sluice_mgr)
  add_executable(fuzz_http ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_http.c)
  target_link_libraries(fuzz_http PRIVATE sluice_mgr)
  target_compile_options(fuzz_http PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_http PRIVATE -fsanitize=fuzzer)
  set(_fuzz_http_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_http_corpus)
  add_test(NAME fuzz_http
    COMMAND sh -c "rm -rf '${_fuzz_http_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/http' '${_fuzz_http_corpus}' && exec \"$0\" -max_total_time=30 -max_len=8192 -timeout=10 '${_fuzz_http_corpus}'"
            $<TARGET_FILE:fuzz_http>)
  set_tests_properties(fuzz_http PROPERTIES TIMEOUT 120)
endif()
