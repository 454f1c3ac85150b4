# Unit tests that came with the milter ingress: the engine side of ABI 1.1
# (header edits recorded for replay, body replacement, client auth).
add_executable(test_edits ${CMAKE_SOURCE_DIR}/tests/unit/test_edits.c)
target_link_libraries(test_edits PRIVATE sluice_engine ${CMOCKA_LIB})
add_test(NAME engine_edits COMMAND test_edits)
