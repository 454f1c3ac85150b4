# tests/fuzz/mime.cmake: libFuzzer target for the message parser.  Only
# with -DSLUICE_FUZZ=ON (clang).  The parser's sources are compiled into
# the fuzzer itself so that they get the coverage instrumentation of
# -fsanitize=fuzzer (set on this target only); address,undefined come from
# SLUICE_SANITIZE.  ctest fuzz_mime runs it for 60 s on a copy of the seeds
# and fails on any crash, leak, timeout or invariant violation.
if(SLUICE_FUZZ)
  get_target_property(_mime_srcs sluice_mime SOURCES)
  get_target_property(_mime_dir sluice_mime SOURCE_DIR)
  list(TRANSFORM _mime_srcs PREPEND ${_mime_dir}/)
  add_executable(fuzz_mime ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_mime.c
                           ${_mime_srcs})
  target_include_directories(fuzz_mime PRIVATE ${_mime_dir})
  target_compile_options(fuzz_mime PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_mime PRIVATE -fsanitize=fuzzer)
  set(_fuzz_mime_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_mime_corpus)
  add_test(NAME fuzz_mime
    COMMAND sh -c "rm -rf '${_fuzz_mime_corpus}' && cp -r '${CMAKE_SOURCE_DIR}/tests/fuzz/seeds/mime' '${_fuzz_mime_corpus}' && exec \"$0\" -max_total_time=60 -max_len=65536 -timeout=10 '${_fuzz_mime_corpus}'"
            $<TARGET_FILE:fuzz_mime>)
  set_tests_properties(fuzz_mime PROPERTIES TIMEOUT 180)
endif()
