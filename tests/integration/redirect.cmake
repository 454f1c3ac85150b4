# redirect: the policy's redirect (with and without :copy) and notify,
# end to end through a real Postfix, once over the content_filter (smtp
# ingress + deliver) and once over smtpd_milters (milter ingress:
# smfi_addrcpt/smfi_delrcpt); per-recipient Maildirs show where each
# message went.  Same environment and rules as integration.cmake.
foreach(mode filter milter)
  add_test(NAME redirect_${mode}
    COMMAND bash ${SLUICE_IT_DIR}/redirect.sh ${mode})
  set_tests_properties(redirect_${mode} PROPERTIES
    ENVIRONMENT "${SLUICE_IT_ENV}"
    TIMEOUT 300
    RESOURCE_LOCK postfix
    LABELS integration)
endforeach()
