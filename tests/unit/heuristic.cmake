# tests/unit/heuristic.cmake: the rule engine and the `heuristic` stage
# (plugins/heuristic/rules_*.c, heuristic_stage.c): rule format and its
# errors, SpamAssassin files of the installed Debian package (counts
# printed), known messages, meta rules, score and probability, the stage
# through a fake host, every corpus message scanned.
add_executable(test_heuristic ${CMAKE_SOURCE_DIR}/tests/unit/test_heuristic.c)
target_link_libraries(test_heuristic PRIVATE sluice_mimeview ${CMOCKA_LIB} ${CMAKE_DL_LIBS})
add_dependencies(test_heuristic heuristic_stage)
add_test(NAME heuristic COMMAND test_heuristic
         "${CMAKE_SOURCE_DIR}/rules/*.rules" $<TARGET_FILE:heuristic_stage>
         ${SLUICE_CORPUS})
set_tests_properties(heuristic PROPERTIES TIMEOUT 300)
# the compiled Hyperscan database cache (rules_cache.c): Hyperscan builds
if(HS_LIB AND HS_INCLUDE)
  add_executable(test_rules_cache ${CMAKE_SOURCE_DIR}/tests/unit/test_rules_cache.c)
  target_link_libraries(test_rules_cache PRIVATE sluice_mimeview ${CMOCKA_LIB})
  add_test(NAME rules_cache COMMAND test_rules_cache)
endif()
# the shipped rules (rules/*.rules) against sample messages written for the
# test: tests/rules/samples/*.eml say which rules must and must not hit
add_executable(test_rule_samples ${CMAKE_SOURCE_DIR}/tests/unit/test_rule_samples.c)
target_link_libraries(test_rule_samples PRIVATE sluice_mimeview ${CMOCKA_LIB})
add_test(NAME rule_samples COMMAND test_rule_samples
         ${CMAKE_SOURCE_DIR}/rules ${CMAKE_SOURCE_DIR}/tests/rules/samples)
set_tests_properties(rule_samples PROPERTIES TIMEOUT 300)
