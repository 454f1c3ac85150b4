# tests/fuzz/heuristic_view.cmake: libFuzzer target for the rules' view of
# a message (HTML to text, links, colours, text parts) and every eval
# built-in (rules_view.c, rules_eval.c), on messages from sluice_mime.
# Only with -DSLUICE_FUZZ=ON (clang).  ctest fuzz_heuristic_view runs it
# for 30 s on a copy of the seeds (messages written for the tests).
if(SLUICE_FUZZ)
  get_target_property(_fhv_srcs sluice_rules SOURCES)
  get_target_property(_fhv_dir sluice_rules SOURCE_DIR)
  list(TRANSFORM _fhv_srcs PREPEND ${_fhv_dir}/)
  add_executable(fuzz_heuristic_view
    ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_heuristic_view.c ${_fhv_srcs})
  target_include_directories(fuzz_heuristic_view PRIVATE ${_fhv_dir})
  target_compile_options(fuzz_heuristic_view PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_heuristic_view PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_heuristic_view PRIVATE sluice_bayes ${PCRE2_LIB} m)
  set(_fuzz_hv_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_heuristic_view_corpus)
  add_test(NAME fuzz_heuristic_view
    COMMAND sh -c "rm -rf '${_fuzz_hv_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/heuristic_view' '${_fuzz_hv_corpus}' && exec \"$0\" -max_total_time=30 -max_len=16384 -timeout=10 '${_fuzz_hv_corpus}'"
            $<TARGET_FILE:fuzz_heuristic_view>)
  set_tests_properties(fuzz_heuristic_view PROPERTIES TIMEOUT 120)
endif()
