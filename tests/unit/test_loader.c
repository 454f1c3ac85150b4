/* test_loader.c - the loader's ABI checks and conf errors, each refused
 * with its own message naming the file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "testutil.h"

static chain *load(const char *stage_conf, buf *err, char **dirp)
{
    char *dir = tu_mkdir();
    char text[4096];

    snprintf(text, sizeof(text), TU_ENGINE "plugin_dir %s\n", FX_DIR);
    tu_write(dir, "00-engine.conf", text);
    tu_write(dir, "10-stages.conf", stage_conf);
    *dirp = dir;
    return chain_load(dir, NULL, "/tmp", NULL, NULL, NULL, 1, err);
}

static void test_good_chain(void **state)
{
    buf err;
    char *dir;
    chain *ch;

    (void)state;
    buf_init(&err);
    ch = load("stage one\nplugin fx\nn 3\n\nstage two\nplugin fx\n"
              "enabled no\ntimeout 5s\non_timeout continue\n",
              &err, &dir);
    assert_non_null(ch);
    assert_int_equal(ch->nstages, 2);
    assert_string_equal(ch->stages[0]->name, "one");
    assert_int_equal(ch->stages[0]->common.enabled, 1);
    assert_int_equal(ch->stages[1]->common.enabled, 0);
    assert_true(ch->stages[1]->common.timeout == 5.0);
    assert_int_equal(ch->stages[1]->common.on_timeout, SLUICE_CONTINUE);
    assert_true(ch->stages[0]->common.timeout == 60.0); /* stage_timeout */
    assert_int_equal(ch->stages[0]->desc.abi_major, SLUICE_ABI_MAJOR);
    assert_non_null(chain_find(ch, "two"));
    assert_null(chain_find(ch, "three"));
    chain_free(ch);
    buf_free(&err);
    tu_rmdir(dir);
}

static void refused(const char *conf, const char *expect1,
                    const char *expect2)
{
    buf err;
    char *dir;
    chain *ch;

    buf_init(&err);
    ch = load(conf, &err, &dir);
    assert_null(ch);
    if (strstr(err.data, expect1) == NULL ||
        (expect2 && strstr(err.data, expect2) == NULL))
        print_error("unexpected error text: %s\n", err.data);
    assert_non_null(strstr(err.data, expect1));
    if (expect2)
        assert_non_null(strstr(err.data, expect2));
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_wrong_major(void **state)
{
    (void)state;
    refused("stage x\nplugin fx_major2\n",
            "10-stages.conf:1: stage 'x': ", "declares stage ABI 2.");
    refused("stage x\nplugin fx_major2\n", "this engine speaks ABI 1.", NULL);
}

static void test_other_major_symbol(void **state)
{
    (void)state;
    refused("stage x\nplugin fx_v2sym\n", "10-stages.conf:1: stage 'x': ",
            "is built for stage ABI 2.x");
}

static void test_newer_minor(void **state)
{
    char want[64];

    (void)state;
    snprintf(want, sizeof(want), "needs stage ABI %d.%d", SLUICE_ABI_MAJOR,
             SLUICE_ABI_MINOR + 1);
    refused("stage x\nplugin fx_minor_new\n", want, "upgrade sluice");
}

static void test_missing_symbol(void **state)
{
    (void)state;
    refused("stage x\nplugin fx_nosym\n", "does not export sluice_stage_v1",
            "10-stages.conf:1:");
}

static void test_missing_file(void **state)
{
    (void)state;
    refused("stage x\nplugin no_such_plugin\n",
            "10-stages.conf:1: stage 'x': cannot load", "no_such_plugin.so");
}

static void test_duplicate_name(void **state)
{
    (void)state;
    refused("stage x\nplugin fx\n\nstage x\nplugin fx\n",
            "10-stages.conf:4: stage 'x' is already defined at", ":1");
}

static void test_unknown_and_bad_options(void **state)
{
    (void)state;
    refused("stage x\nplugin fx\ncolour blue\n",
            "10-stages.conf:3: stage 'x': unknown option 'colour'", NULL);
    refused("stage x\nplugin fx\nn 99\n",
            "10-stages.conf:3: stage 'x': n: 99 is out of range 1..10", NULL);
    refused("stage x\nplugin fx\ntimeout soon\n",
            "10-stages.conf:3: stage 'x': timeout:", NULL);
    refused("stage x\nplugin fx\non_timeout maybe\n",
            "10-stages.conf:3: stage 'x': on_timeout: 'maybe' is not a "
            "verdict",
            NULL);
}

static void test_engine_errors(void **state)
{
    char *dir = tu_mkdir();
    buf err;

    (void)state;
    tu_write(dir, "00.conf", "engine\nworkers many\nfrobnicate yes\n");
    buf_init(&err);
    assert_null(chain_load(dir, NULL, NULL, NULL, NULL, NULL, 1, &err));
    assert_non_null(strstr(err.data, "00.conf:2: engine: workers:"));
    assert_non_null(strstr(err.data, "00.conf:3: engine: unknown option "
                                     "'frobnicate'"));
    buf_free(&err);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_chain),
        cmocka_unit_test(test_wrong_major),
        cmocka_unit_test(test_other_major_symbol),
        cmocka_unit_test(test_newer_minor),
        cmocka_unit_test(test_missing_symbol),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_unknown_and_bad_options),
        cmocka_unit_test(test_engine_errors),
    };
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
