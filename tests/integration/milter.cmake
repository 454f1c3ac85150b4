# Integration tests of the milter ingress (plugins/milter): miltertest
# scripts, hostile raw clients, a real Postfix with smtpd_milters.  Same
# environment and rules as integration.cmake (run as root, one at a time).
foreach(t milter_miltertest milter_postfix)
  add_test(NAME ${t} COMMAND bash ${SLUICE_IT_DIR}/${t}.sh)
  set_tests_properties(${t} PROPERTIES
    ENVIRONMENT "${SLUICE_IT_ENV}"
    TIMEOUT 600
    RESOURCE_LOCK postfix
    LABELS integration)
endforeach()
