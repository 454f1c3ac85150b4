/* test_engine_database.c - the engine section's `database` (ABI 1.2
 * host->database()) and sluiced -D (chain_database_override), and how a
 * PostgreSQL stage picks its DSN (pgpool_stage_dsn): its own `database`,
 * else the engine's, else the private instance under the state dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "pgpool.h"
#include "testutil.h"

static chain *load(const char *engine_extra, char **dirp)
{
    char *dir = tu_mkdir();
    char text[4096];
    buf err;
    chain *ch;

    snprintf(text, sizeof(text), TU_ENGINE "plugin_dir %s\n%s", FX_DIR,
             engine_extra);
    tu_write(dir, "00-engine.conf", text);
    tu_write(dir, "10-stages.conf", "stage one\nplugin fx\n");
    buf_init(&err);
    ch = chain_load(dir, NULL, "/tmp/sl-state", NULL, NULL, NULL, 1, &err);
    if (ch == NULL)
        fprintf(stderr, "%s", err.data);
    buf_free(&err);
    *dirp = dir;
    return ch;
}

static void test_engine_value(void **state)
{
    char *dir, dsn[512];
    chain *ch;
    struct sluice_ctx *s;

    (void)state;
    ch = load("database \"host=/db x\" dbname=sluice\n", &dir);
    assert_non_null(ch);
    s = ch->stages[0];
    assert_true(SLUICE_HOST_HAS(&host_table, database));
    assert_string_equal(host_table.database(s), "\"host=/db x\" dbname=sluice");
    /* the stage has none: the engine's */
    assert_int_equal(pgpool_stage_dsn(&host_table, s, "", dsn, sizeof(dsn)), 0);
    assert_string_equal(dsn, "\"host=/db x\" dbname=sluice");
    assert_int_equal(pgpool_stage_dsn(&host_table, s, NULL, dsn, sizeof(dsn)),
                     0);
    assert_string_equal(dsn, "\"host=/db x\" dbname=sluice");
    /* its own wins */
    assert_int_equal(
        pgpool_stage_dsn(&host_table, s, "dbname=own", dsn, sizeof(dsn)), 0);
    assert_string_equal(dsn, "dbname=own");
    /* too long for the buffer: refused, not cut */
    assert_int_equal(pgpool_stage_dsn(&host_table, s, "", dsn, 10), -1);
    chain_free(ch);
    tu_rmdir(dir);
}

static void test_unset_is_private(void **state)
{
    char *dir, dsn[512];
    chain *ch;

    (void)state;
    ch = load("", &dir);
    assert_non_null(ch);
    assert_string_equal(host_table.database(ch->stages[0]), "");
    assert_int_equal(
        pgpool_stage_dsn(&host_table, ch->stages[0], "", dsn, sizeof(dsn)), 0);
    assert_non_null(strstr(dsn, "/tmp/sl-state/pg/run"));
    assert_non_null(strstr(dsn, "passfile"));
    chain_free(ch);
    tu_rmdir(dir);
}

static void test_override(void **state)
{
    char *dir;
    chain *ch;

    (void)state;
    chain_database_override("dbname=from-D");
    ch = load("database dbname=from-conf\n", &dir);
    assert_non_null(ch);
    assert_string_equal(host_table.database(ch->stages[0]), "dbname=from-D");
    chain_free(ch);
    tu_rmdir(dir);
    chain_database_override(NULL);
    ch = load("database dbname=from-conf\n", &dir);
    assert_non_null(ch);
    assert_string_equal(host_table.database(ch->stages[0]), "dbname=from-conf");
    chain_free(ch);
    tu_rmdir(dir);
}

/* A host table of ABI 1.1 (no database()): the private instance. */
static const char *old_state_dir(sluice_ctx *ctx)
{
    (void)ctx;
    return "/old";
}

static void test_old_host(void **state)
{
    sluice_host h;
    char dsn[512];

    (void)state;
    memset(&h, 0, sizeof(h));
    h.size = offsetof(sluice_host, state_dir) + sizeof(h.state_dir);
    h.state_dir = old_state_dir;
    assert_false(SLUICE_HOST_HAS(&h, database));
    assert_int_equal(pgpool_stage_dsn(&h, NULL, "", dsn, sizeof(dsn)), 0);
    assert_non_null(strstr(dsn, "/old/pg/run"));
    assert_int_equal(pgpool_stage_dsn(&h, NULL, "dbname=x", dsn, sizeof(dsn)),
                     0);
    assert_string_equal(dsn, "dbname=x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_value),
        cmocka_unit_test(test_unset_is_private),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_old_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
