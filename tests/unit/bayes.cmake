# tests/unit/bayes.cmake: the Bayes library (plugins/heuristic): tokenizer,
# classifier, database file, expiry, export/import (test_bayes); readers
# during learning, across processes (test_bayes_concurrent); every corpus
# message tokenized, plus a held-out sanity check (test_bayes_corpus).
foreach(t bayes bayes_concurrent)
  add_executable(test_${t} ${CMAKE_SOURCE_DIR}/tests/unit/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE sluice_bayes ${CMOCKA_LIB})
  add_test(NAME ${t} COMMAND test_${t})
endforeach()
add_executable(test_bayes_corpus ${CMAKE_SOURCE_DIR}/tests/unit/test_bayes_corpus.c)
target_link_libraries(test_bayes_corpus PRIVATE sluice_bayes ${CMOCKA_LIB})
add_test(NAME bayes_corpus COMMAND test_bayes_corpus ${SLUICE_CORPUS} 3000)
add_test(NAME bayes_tool COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/bayes_tool.sh
         $<TARGET_FILE:sluice-bayes> ${SLUICE_CORPUS})
add_executable(test_bayes_stage ${CMAKE_SOURCE_DIR}/tests/unit/test_bayes_stage.c)
target_link_libraries(test_bayes_stage PRIVATE sluice_bayes sluice_stageconf ${CMOCKA_LIB} ${CMAKE_DL_LIBS})
add_dependencies(test_bayes_stage bayes_stage)
add_test(NAME bayes_stage COMMAND test_bayes_stage $<TARGET_FILE:bayes_stage>)
add_test(NAME bayes_conf COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/bayes_conf.sh
         $<TARGET_FILE:sluiced> ${SLUICE_BUILD_PLUGIN_DIR} ${CMAKE_SOURCE_DIR})
# auto-learn: the journal (append, apply, torn records, appends during
# applies) and the stage queueing by the score without BAYES_*
add_executable(test_bayes_autolearn ${CMAKE_SOURCE_DIR}/tests/unit/test_bayes_autolearn.c)
target_link_libraries(test_bayes_autolearn PRIVATE sluice_bayes sluice_stageconf ${CMOCKA_LIB} ${CMAKE_DL_LIBS})
add_dependencies(test_bayes_autolearn bayes_stage)
add_test(NAME bayes_autolearn COMMAND test_bayes_autolearn $<TARGET_FILE:bayes_stage>)
# `sluicectl learn`: database from conf.d / -S / -B, counts, --json,
# --unlearn, stdin, exit codes (learn_tool.sh)
add_test(NAME bayes_learn_tool COMMAND bash ${CMAKE_SOURCE_DIR}/tests/unit/learn_tool.sh
         $<TARGET_FILE:sluicectl> $<TARGET_FILE:sluice-bayes> ${SLUICE_CORPUS})
