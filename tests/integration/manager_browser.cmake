# manager_browser: sluice-manager's pages in headless Chromium (Debian's
# /usr/bin/chromium driven by playwright-core from tests/browser, installed
# by `npm ci` in build.sh test) against a real PostgreSQL, Postfix, sluiced
# and sluice-manager (manager_browser.sh, tests/browser/run.mjs).
# Screenshots of every page: BUILD_DIR/Testing/manager_browser/*.png.
add_test(NAME manager_browser COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/manager_browser.sh)
set_tests_properties(manager_browser PROPERTIES
  ENVIRONMENT "SLUICED=$<TARGET_FILE:sluiced>;SLUICECTL=$<TARGET_FILE:sluicectl>;SLUICE_MANAGER=$<TARGET_FILE:sluice-manager>;SLUICE_BLOCKLISTD=$<TARGET_FILE:sluice-blocklistd>;SLUICE_PLUGIN_DIR=${SLUICE_BUILD_PLUGIN_DIR};SLUICE_CORPUS=${SLUICE_CORPUS};SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR};SLUICE_BUILD_DIR=${CMAKE_BINARY_DIR};SHOTS_DIR=${CMAKE_BINARY_DIR}/Testing/manager_browser;IT_DIR=${CMAKE_CURRENT_LIST_DIR};IT_TIMEOUT=420"
  TIMEOUT 450
  RESOURCE_LOCK postfix
  LABELS "integration;pg;browser")
