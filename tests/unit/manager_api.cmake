# tests/unit/manager_api.cmake: the Manager API's pure parts
# (tools/manager/mgr_series.c, mgr_qfilter.c, mgr_text.c, mgr_conf.c,
# tools/listent.c): series bookkeeping (baseline, deltas, engine restart,
# minutes and hours), the quarantine search's filters, the message view
# (no HTML, valid UTF-8, decoded headers), list entries, conf.d look-ups.
add_executable(test_manager_api ${CMAKE_SOURCE_DIR}/tests/unit/test_manager_api.c)
target_link_libraries(test_manager_api PRIVATE sluice_mgr_api ${CMOCKA_LIB})
add_test(NAME manager_api_unit COMMAND test_manager_api)
