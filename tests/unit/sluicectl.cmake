# sluicectl: the built binary against a forked fake control socket that
# answers canned JSON (output, exit codes 0/1/2/3, timeout).
add_executable(test_sluicectl ${CMAKE_SOURCE_DIR}/tests/unit/test_sluicectl.c)
target_link_libraries(test_sluicectl PRIVATE ${CMOCKA_LIB})
target_compile_definitions(test_sluicectl PRIVATE
  SLUICECTL_BIN="$<TARGET_FILE:sluicectl>")
add_dependencies(test_sluicectl sluicectl)
add_test(NAME sluicectl COMMAND test_sluicectl)
