# tests/fuzz/heuristic.cmake: libFuzzer target for the rule-file parser
# (sluice and SpamAssassin formats, meta expressions).  Only with
# -DSLUICE_FUZZ=ON (clang).  ctest fuzz_heuristic runs it for 30 s on a
# copy of the seeds.
if(SLUICE_FUZZ)
  get_target_property(_fh_srcs sluice_rules SOURCES)
  get_target_property(_fh_dir sluice_rules SOURCE_DIR)
  list(TRANSFORM _fh_srcs PREPEND ${_fh_dir}/)
  add_executable(fuzz_heuristic ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_heuristic.c
                                ${_fh_srcs})
  target_include_directories(fuzz_heuristic PRIVATE ${_fh_dir})
  target_compile_options(fuzz_heuristic PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_heuristic PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_heuristic PRIVATE sluice_bayes ${PCRE2_LIB} m)
  set(_fuzz_heur_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_heuristic_corpus)
  add_test(NAME fuzz_heuristic
    COMMAND sh -c "rm -rf '${_fuzz_heur_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/heuristic' '${_fuzz_heur_corpus}' && exec \"$0\" -max_total_time=30 -max_len=16384 -timeout=10 '${_fuzz_heur_corpus}'"
            $<TARGET_FILE:fuzz_heuristic>)
  set_tests_properties(fuzz_heuristic PROPERTIES TIMEOUT 120)
endif()
