# Integration tests: real Postfix instances, sluiced, hostile clients.
# Each test is a bash script here that sources lib.sh; they run as root,
# one at a time (RESOURCE_LOCK postfix: each starts its own Postfix and
# sluiced on ports of its own, but two at once would fight for 2 cores).
set(SLUICE_IT_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SLUICE_IT_ENV
  "SLUICED=$<TARGET_FILE:sluiced>"
  "SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR}"
  "SLUICE_CORPUS=${SLUICE_CORPUS}"
  "SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "IT_DIR=${SLUICE_IT_DIR}")
if(TARGET sluicectl)
  list(APPEND SLUICE_IT_ENV "SLUICECTL=$<TARGET_FILE:sluicectl>")
endif()
foreach(t postfix_harness postfix_corpus postfix_faults smtp_bad_input reload
          abi_example)
  add_test(NAME ${t} COMMAND bash ${SLUICE_IT_DIR}/${t}.sh)
  set_tests_properties(${t} PROPERTIES
    ENVIRONMENT "${SLUICE_IT_ENV}"
    TIMEOUT 900
    RESOURCE_LOCK postfix
    LABELS integration)
endforeach()
