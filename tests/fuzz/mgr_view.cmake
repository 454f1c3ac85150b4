# tests/fuzz/mgr_view.cmake: libFuzzer on sluice-manager's handling of
# untrusted bytes (fuzz_mgr_view.c): a stored message shown as headers and
# text, and the quarantine search's filter values.  Only with
# -DSLUICE_FUZZ=ON (clang); the Manager's sources are compiled into the
# fuzzer for coverage.  ctest fuzz_mgr_view runs it for 15 s on a copy of
# the seeds.
if(SLUICE_FUZZ)
  add_executable(fuzz_mgr_view ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_mgr_view.c
    ${CMAKE_SOURCE_DIR}/tools/manager/mgr_text.c
    ${CMAKE_SOURCE_DIR}/tools/manager/mgr_qfilter.c)
  target_include_directories(fuzz_mgr_view PRIVATE
    ${CMAKE_SOURCE_DIR}/tools/manager)
  target_compile_options(fuzz_mgr_view PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_mgr_view PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_mgr_view PRIVATE sluice_rules sluice_mime
    ${JANSSON_LIB})
  set(_fuzz_mgr_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_mgr_view_corpus)
  add_test(NAME fuzz_mgr_view
    COMMAND sh -c "rm -rf '${_fuzz_mgr_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/mgr_view' '${_fuzz_mgr_corpus}' && exec \"$0\" -max_total_time=15 -max_len=65536 -timeout=10 '${_fuzz_mgr_corpus}'"
            $<TARGET_FILE:fuzz_mgr_view>)
  set_tests_properties(fuzz_mgr_view PROPERTIES TIMEOUT 120)
endif()
