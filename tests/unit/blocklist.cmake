# blocklist: sluice-blocklistd's table (load, CIDR edges, overlaps,
# IPv4-mapped IPv6, file:line errors) and both sides of its protocol (the
# daemon's request splitter/parser, the stage's answer parser).
set(BLOCKLISTD_DIR ${CMAKE_SOURCE_DIR}/tools/blocklistd)
set(BLOCKLIST_STAGE_DIR ${CMAKE_SOURCE_DIR}/plugins/blocklist)

add_executable(test_blocklist_table
  ${CMAKE_SOURCE_DIR}/tests/unit/test_blocklist_table.c
  ${BLOCKLISTD_DIR}/bl_table.c)
target_include_directories(test_blocklist_table PRIVATE ${BLOCKLISTD_DIR})
target_link_libraries(test_blocklist_table PRIVATE ${CMOCKA_LIB})
add_test(NAME blocklist_table COMMAND test_blocklist_table)

add_executable(test_blocklist_proto
  ${CMAKE_SOURCE_DIR}/tests/unit/test_blocklist_proto.c
  ${BLOCKLISTD_DIR}/bl_proto.c
  ${BLOCKLISTD_DIR}/bl_table.c
  ${BLOCKLIST_STAGE_DIR}/bls_reply.c)
target_include_directories(test_blocklist_proto PRIVATE ${BLOCKLISTD_DIR}
  ${BLOCKLIST_STAGE_DIR})
target_link_libraries(test_blocklist_proto PRIVATE ${CMOCKA_LIB})
add_test(NAME blocklist_proto COMMAND test_blocklist_proto)

# the whole stage on a libev loop behind a fake host, against a fake
# daemon: verdicts, phase fallback, abort, timeout, absent daemon, stop.
add_executable(test_blocklist_stage
  ${CMAKE_SOURCE_DIR}/tests/unit/test_blocklist_stage.c
  ${BLOCKLIST_STAGE_DIR}/blocklist.c
  ${BLOCKLIST_STAGE_DIR}/bls_reply.c)
target_include_directories(test_blocklist_stage PRIVATE ${BLOCKLIST_STAGE_DIR})
target_link_libraries(test_blocklist_stage PRIVATE sluice_fakehost ${CMOCKA_LIB}
  ${EV_LIB})
add_test(NAME blocklist_stage COMMAND test_blocklist_stage)
set_tests_properties(blocklist_stage PROPERTIES TIMEOUT 60)
