# tests/fuzz/bayes.cmake: libFuzzer target for the Bayes library
# (tokenizer over parsed messages, export import, database header check).
# Only with -DSLUICE_FUZZ=ON (clang).  As for fuzz_mime, the library's and
# the parser's sources are compiled into the fuzzer for coverage.  ctest
# fuzz_bayes runs it for 15 s on a copy of the seeds.
if(SLUICE_FUZZ)
  get_target_property(_fb_mime_srcs sluice_mime SOURCES)
  get_target_property(_fb_mime_dir sluice_mime SOURCE_DIR)
  list(TRANSFORM _fb_mime_srcs PREPEND ${_fb_mime_dir}/)
  get_target_property(_fb_srcs sluice_bayes SOURCES)
  get_target_property(_fb_dir sluice_bayes SOURCE_DIR)
  list(TRANSFORM _fb_srcs PREPEND ${_fb_dir}/)
  add_executable(fuzz_bayes ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_bayes.c
                            ${_fb_srcs} ${_fb_mime_srcs})
  target_include_directories(fuzz_bayes PRIVATE ${_fb_dir} ${_fb_mime_dir})
  target_compile_options(fuzz_bayes PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_bayes PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_bayes PRIVATE m)
  set(_fuzz_bayes_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_bayes_corpus)
  add_test(NAME fuzz_bayes
    COMMAND sh -c "rm -rf '${_fuzz_bayes_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/bayes' '${_fuzz_bayes_corpus}' && exec \"$0\" -max_total_time=15 -max_len=65536 -timeout=10 '${_fuzz_bayes_corpus}'"
            $<TARGET_FILE:fuzz_bayes>)
  set_tests_properties(fuzz_bayes PROPERTIES TIMEOUT 120)
endif()
