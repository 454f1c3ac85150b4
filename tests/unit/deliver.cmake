# deliver egress stage: the pure SMTP client logic (deliver_proto), the
# same logic against a real smtp-sink(1) (deliver_live), and the whole
# stage on a libev loop behind a fake host against smtp-sink
# (deliver_stage).  The live tests need Debian's postfix package for
# /usr/sbin/smtp-sink and fail (never skip) without it.
set(DELIVER_DIR ${CMAKE_SOURCE_DIR}/plugins/deliver)

add_executable(test_deliver_proto
  ${CMAKE_SOURCE_DIR}/tests/unit/test_deliver_proto.c
  ${DELIVER_DIR}/deliver_proto.c)
target_include_directories(test_deliver_proto PRIVATE ${DELIVER_DIR})
target_link_libraries(test_deliver_proto PRIVATE ${CMOCKA_LIB})
add_test(NAME deliver_proto COMMAND test_deliver_proto)

add_executable(test_deliver_live
  ${CMAKE_SOURCE_DIR}/tests/unit/test_deliver_live.c
  ${CMAKE_SOURCE_DIR}/tests/unit/test_deliver_sink.c
  ${DELIVER_DIR}/deliver_proto.c)
target_include_directories(test_deliver_live PRIVATE ${DELIVER_DIR})
target_link_libraries(test_deliver_live PRIVATE ${CMOCKA_LIB})
add_test(NAME deliver_live COMMAND test_deliver_live)

add_executable(test_deliver_stage
  ${CMAKE_SOURCE_DIR}/tests/unit/test_deliver_stage.c
  ${CMAKE_SOURCE_DIR}/tests/unit/test_deliver_sink.c
  ${DELIVER_DIR}/deliver.c
  ${DELIVER_DIR}/deliver_proto.c)
target_include_directories(test_deliver_stage PRIVATE ${DELIVER_DIR})
target_link_libraries(test_deliver_stage PRIVATE sluice_fakehost ${CMOCKA_LIB}
  ${EV_LIB})
target_compile_definitions(test_deliver_stage PRIVATE
  DELIVER_CORPUS="${SLUICE_CORPUS}")
add_test(NAME deliver_stage COMMAND test_deliver_stage)
set_tests_properties(deliver_live deliver_stage PROPERTIES TIMEOUT 120)
