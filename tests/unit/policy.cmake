# tests/unit/policy.cmake: the policy language and the lists in memory
# (test_policy: a table of scripts x messages with expected actions and
# edits, syntax errors with line:column, the default policy, list
# matching); `sluicectl policy check|test` (policy_tool.sh).
add_executable(test_policy ${CMAKE_SOURCE_DIR}/tests/unit/test_policy.c)
target_link_libraries(test_policy PRIVATE sluice_policy ${CMOCKA_LIB})
add_test(NAME policy_lang COMMAND test_policy)
add_test(NAME policy_tool COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/policy_tool.sh
         $<TARGET_FILE:sluicectl> $<TARGET_FILE:sluiced> ${SLUICE_BUILD_PLUGIN_DIR}
         ${CMAKE_SOURCE_DIR})
