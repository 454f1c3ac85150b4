# smtp ingress: the protocol state machine, driven by a fake owner.
add_executable(test_smtp_proto
  ${CMAKE_SOURCE_DIR}/tests/unit/test_smtp_proto.c
  ${CMAKE_SOURCE_DIR}/plugins/smtp/smtp_proto.c)
target_include_directories(test_smtp_proto PRIVATE
  ${CMAKE_SOURCE_DIR}/plugins/smtp)
target_link_libraries(test_smtp_proto PRIVATE ${CMOCKA_LIB})
add_test(NAME smtp_proto COMMAND test_smtp_proto)

# The stage glue (smtp.c) over loopback sockets against a fake host table
# and a scripted asynchronous chain.
find_package(Threads REQUIRED)
add_executable(test_smtp_glue
  ${CMAKE_SOURCE_DIR}/tests/unit/test_smtp_glue.c
  ${CMAKE_SOURCE_DIR}/plugins/smtp/smtp.c
  ${CMAKE_SOURCE_DIR}/plugins/smtp/smtp_proto.c)
target_include_directories(test_smtp_glue PRIVATE
  ${CMAKE_SOURCE_DIR}/plugins/smtp)
target_link_libraries(test_smtp_glue PRIVATE sluice_fakehost ${CMOCKA_LIB}
  ${EV_LIB} Threads::Threads)
add_test(NAME smtp_glue COMMAND test_smtp_glue)
set_tests_properties(smtp_glue PROPERTIES TIMEOUT 60)
