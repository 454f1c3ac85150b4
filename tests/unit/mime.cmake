# tests/unit/mime.cmake: the message parser (engine/mime).  Unit tests for
# header blocks and decoding, for the MIME tree, and a corpus run over
# ${SLUICE_CORPUS} (ham/ + spam/, 3,000 messages) that fails if it cannot
# find them.
foreach(t hdr parse)
  add_executable(test_mime_${t} ${CMAKE_SOURCE_DIR}/tests/unit/test_mime_${t}.c)
  target_link_libraries(test_mime_${t} PRIVATE sluice_mime ${CMOCKA_LIB})
  add_test(NAME mime_${t} COMMAND test_mime_${t})
endforeach()
add_executable(test_mime_corpus ${CMAKE_SOURCE_DIR}/tests/unit/test_mime_corpus.c)
target_link_libraries(test_mime_corpus PRIVATE sluice_mime ${CMOCKA_LIB})
add_test(NAME mime_corpus COMMAND test_mime_corpus ${SLUICE_CORPUS} 3000)
