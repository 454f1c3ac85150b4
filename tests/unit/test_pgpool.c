/*
 * test_pgpool.c - the asynchronous PostgreSQL pool (plugins/common/
 * pgpool.c) on a libev loop behind a small fake host table, against a real
 * PostgreSQL that tests/unit/pg_env.sh started (tools/sluice-pg, unix
 * socket, scram-sha-256, schema migrated): queries, parameters, prepared
 * statements, transactions and rollback, an 8 MB binary parameter (many
 * partial writes, digest checked), concurrency over several
 * connections, query timeout, cancel, a bad DSN, a connection without the
 * password refused, and the server stopped (errors within the timeout,
 * then at once) and started again (the pool reconnects by itself).
 *
 * Environment: SLUICE_TEST_PG_STATE (the state directory), SLUICE_PG (the
 * sluice-pg script, to stop and start the server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/stage.h>

#include "fakehost.h"
#include "pgpool.h"

/* ---------------------------------------------------------------- */
/* The fake engine: the loop part of the host table (fakehost.c)    */

static struct ev_loop *loop;
static sluice_host host;

/* ---------------------------------------------------------------- */
/* Helpers                                                          */

static char dsn[4096], dsn_nopass[4096];
static const char *state_dir, *pg_script;

typedef struct outcome {
    int calls, ok, timeout;
    char error[512], sqlstate[8];
    char value[256];
    int rows;
    double at; /* ev_time() of the callback */
} outcome;

static void on_result(pgpool_req *req, const pgpool_res *res, void *arg)
{
    outcome *o = arg;
    size_t last = pgpool_res_count(res);

    o->calls++;
    o->ok = pgpool_res_ok(res);
    o->timeout = pgpool_res_timeout(res);
    o->at = ev_time();
    snprintf(o->error, sizeof(o->error), "%s", pgpool_res_error(res));
    snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", pgpool_res_sqlstate(res));
    if (o->ok && last > 0) {
        o->rows = pgpool_res_rows(res, last - 1);
        snprintf(o->value, sizeof(o->value), "%s",
                 pgpool_res_value(res, last - 1, 0, 0));
    }
}

static void stop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    ev_break(l, EVBREAK_ONE);
}

/* What the loop waits for: a predicate checked after every iteration. */
typedef struct waiter {
    int (*ready)(struct waiter *w);
    outcome *o;
    int n;
    int *flag;
} waiter;

/* A prepare watcher: runs before the loop would block, after every
 * callback of the previous iteration (a check watcher may run before
 * the io callbacks of its own iteration). */
static void check_cb(struct ev_loop *l, ev_prepare *c, int revents)
{
    waiter *w = c->data;
    if (w->ready(w))
        ev_break(l, EVBREAK_ONE);
}

static int ready_flag(waiter *w)
{
    return *w->flag;
}

static int ready_all(waiter *w)
{
    int i;
    for (i = 0; i < w->n; i++)
        if (w->o[i].calls == 0)
            return 0;
    return 1;
}

/* Runs the loop until the waiter is satisfied or `secs` pass. */
static void run_waiter(waiter *w, double secs)
{
    ev_timer t;
    ev_prepare c;

    if (w->ready(w))
        return;
    ev_timer_init(&t, stop_cb, secs, 0.);
    ev_timer_start(loop, &t);
    ev_prepare_init(&c, check_cb);
    c.data = w;
    ev_prepare_start(loop, &c);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
    ev_prepare_stop(loop, &c);
}

/* Runs until `*done` is non-zero or `secs` pass. */
static void run_until(int *done, double secs)
{
    waiter w = {ready_flag, NULL, 0, done};
    run_waiter(&w, secs);
}

/* Runs until every outcome in o[0..n) was called back. */
static void run_all(outcome *o, int n, double secs)
{
    waiter w = {ready_all, o, n, NULL};
    run_waiter(&w, secs);
}

static pgpool *pool_new(const char *d, double qtimeout, size_t max)
{
    pgpool_conf conf = {0};
    char err[256];
    pgpool *p;

    conf.dsn = d;
    conf.max_conns = max;
    conf.query_timeout = qtimeout;
    conf.connect_timeout = 2;
    conf.backoff_min = 0.05;
    conf.backoff_max = 0.5;
    p = pgpool_new(&host, NULL, &conf, err, sizeof(err));
    if (p == NULL)
        fail_msg("pgpool_new: %s", err);
    return p;
}

/* Frees the pool, then the loop must hold nothing of it. */
static void pool_free(pgpool *p)
{
    pgpool_free(p);
    assert_int_equal(fakehost_live(), 0);
}

static int query1(pgpool *p, const char *sql, outcome *o)
{
    memset(o, 0, sizeof(*o));
    if (pgpool_query(p, sql, 0, NULL, on_result, o) == NULL)
        return -1;
    run_all(o, 1, 15);
    return o->calls == 1 ? 0 : -1;
}

static int pg_ctl(const char *what)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' -q %s '%s'", pg_script, what, state_dir);
    return system(cmd);
}

/* ---------------------------------------------------------------- */
/* Tests                                                            */

static void test_simple(void **state)
{
    pgpool *p = pool_new(dsn, 5, 2);
    outcome o;

    assert_int_equal(query1(p, "SELECT 1 + 1", &o), 0);
    assert_true(o.ok);
    assert_string_equal(o.value, "2");
    assert_int_equal(o.rows, 1);
    /* several statements in one simple query: the last result is kept */
    assert_int_equal(query1(p, "SELECT 1; SELECT 'two'", &o), 0);
    assert_true(o.ok);
    assert_string_equal(o.value, "two");
    /* a failing statement: error text and SQLSTATE, connection reused */
    assert_int_equal(query1(p, "SELECT * FROM no_such_table", &o), 0);
    assert_false(o.ok);
    assert_string_equal(o.sqlstate, "42P01");
    assert_non_null(strstr(o.error, "no_such_table"));
    assert_int_equal(query1(p, "SELECT 3", &o), 0);
    assert_true(o.ok);
    {
        pgpool_stats st;
        pgpool_stats_get(p, &st);
        assert_int_equal(st.connects, 1);
        assert_true(st.up);
    }
    pool_free(p);
}

static void test_params_prepared(void **state)
{
    pgpool *p = pool_new(dsn, 5, 1);
    const char *v1[] = {"hello", NULL};
    const char bin[] = {'a', '\0', 'b'};
    const char *v2[] = {bin};
    const int len2[] = {3}, fmt2[] = {1};
    pgpool_stmt s[3] = {
        {"pgpool_t1", "SELECT $1::text || '-' || coalesce($2::text, 'null')", 2,
         v1, NULL, NULL},
        {NULL, "SELECT length($1::bytea)", 1, v2, len2, fmt2},
        {"pgpool_t1", "SELECT $1::text || '-' || coalesce($2::text, 'null')", 2,
         v1, NULL, NULL}};
    outcome o = {0};

    /* prepared twice on the same connection: the second is by name only */
    assert_non_null(pgpool_submit(p, s, 3, 0, on_result, &o));
    run_all(&o, 1, 10);
    assert_true(o.ok);
    assert_string_equal(o.value, "hello-null");
    pool_free(p);
}

static void counter_value(pgpool *p, const char *name, char *out, size_t n)
{
    const char *v[] = {name};
    outcome o = {0};

    assert_non_null(pgpool_query(p,
                                 "SELECT coalesce(sum(value), -1) FROM "
                                 "report_counter WHERE counter = $1",
                                 1, v, on_result, &o));
    run_all(&o, 1, 10);
    assert_true(o.ok);
    snprintf(out, n, "%s", o.value);
}

static void test_transaction(void **state)
{
    pgpool *p = pool_new(dsn, 5, 1);
    const char *vals[] = {"t_commit"}, *bad[] = {"t_rollback"};
    pgpool_stmt ok[3] = {
        {NULL, "DELETE FROM report_counter WHERE counter = $1", 1, vals, NULL,
         NULL},
        {NULL,
         "INSERT INTO report_counter (day, node, counter, value) "
         "VALUES (current_date, 'test', $1, 5)",
         1, vals, NULL, NULL},
        {NULL,
         "UPDATE report_counter SET value = value + 1 WHERE counter = $1 "
         "RETURNING value",
         1, vals, NULL, NULL}};
    pgpool_stmt fail[2] = {
        {NULL,
         "INSERT INTO report_counter (day, node, counter, value) "
         "VALUES (current_date, 'test', $1, 7)",
         1, bad, NULL, NULL},
        {NULL, "SELECT 1 / 0", 0, NULL, NULL, NULL}};
    outcome o = {0};
    char v[64];

    assert_non_null(pgpool_submit(p, ok, 3, PGPOOL_TXN, on_result, &o));
    run_all(&o, 1, 10);
    assert_true(o.ok);
    assert_string_equal(o.value, "6");
    counter_value(p, "t_commit", v, sizeof(v));
    assert_string_equal(v, "6");

    memset(&o, 0, sizeof(o));
    assert_non_null(pgpool_submit(p, fail, 2, PGPOOL_TXN, on_result, &o));
    run_all(&o, 1, 10);
    assert_false(o.ok);
    assert_string_equal(o.sqlstate, "22012"); /* division by zero */
    /* rolled back, and the one connection serves the next request */
    counter_value(p, "t_rollback", v, sizeof(v));
    assert_string_equal(v, "-1");
    pool_free(p);
}

/* 8 MB as one binary parameter: many PQflush rounds on the write
 * watcher (a unix socket buffers far less), and the bytes arrive whole. */
static void test_large(void **state)
{
    enum { BIG = 8 << 20 };
    pgpool *p = pool_new(dsn, 20, 1);
    char *big = malloc(BIG);
    const char *v[1];
    const int len[1] = {BIG}, fmt[1] = {1};
    pgpool_stmt s[2] = {
        {NULL, "CREATE TEMP TABLE IF NOT EXISTS big (b bytea); TRUNCATE big", 0,
         NULL, NULL, NULL},
        {NULL,
         "INSERT INTO big VALUES ($1) RETURNING length(b) || ' ' || "
         "md5(b)",
         1, v, len, fmt}};
    outcome o = {0}, warm;
    size_t i;
    char want[64];
    int w0;

    assert_non_null(big);
    assert_int_equal(query1(p, "SELECT 1", &warm), 0); /* connected */
    w0 = fakehost.io_write_sets;
    for (i = 0; i < BIG; i++)
        big[i] = (char)(i * 7 + i / 4096);
    v[0] = big;
    assert_non_null(pgpool_submit(p, s, 2, PGPOOL_TXN, on_result, &o));
    run_all(&o, 1, 30);
    assert_int_equal(o.calls, 1);
    if (!o.ok)
        fail_msg("large insert: %s", o.error);
    /* libpq's buffer was flushed late */
    assert_true(fakehost.io_write_sets > w0);
    /* the server's digest of what it stored is the digest of what we
     * sent */
    {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0, k;
        int n = snprintf(want, sizeof(want), "%d ", BIG);
        assert_int_equal(EVP_Digest(big, BIG, md, &mdlen, EVP_md5(), NULL), 1);
        for (k = 0; k < mdlen; k++)
            n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x", md[k]);
        assert_string_equal(o.value, want);
    }
    free(big);
    pool_free(p);
}

static void test_concurrent(void **state)
{
    enum { N = 40 };
    pgpool *p = pool_new(dsn, 10, 4);
    outcome o[N], s[8];
    double t0;
    int i;
    pgpool_stats st;

    memset(o, 0, sizeof(o));
    for (i = 0; i < N; i++) {
        char *sql = NULL;
        static char buf[N][64];
        snprintf(buf[i], sizeof(buf[i]), "SELECT %d * 2", i);
        sql = buf[i];
        assert_non_null(pgpool_query(p, sql, 0, NULL, on_result, &o[i]));
    }
    run_all(o, N, 15);
    for (i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i * 2);
        assert_int_equal(o[i].calls, 1);
        assert_true(o[i].ok);
        assert_string_equal(o[i].value, want);
    }
    /* 8 x 0.3 s over 4 connections: two rounds, not eight */
    memset(s, 0, sizeof(s));
    t0 = ev_time();
    for (i = 0; i < 8; i++)
        assert_non_null(
            pgpool_query(p, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &s[i]));
    run_all(s, 8, 15);
    for (i = 0; i < 8; i++)
        assert_true(s[i].ok);
    assert_true(ev_time() - t0 < 1.5);
    pgpool_stats_get(p, &st);
    assert_true(st.conns <= 4);
    assert_true(st.conns >= 2);
    pool_free(p);
}

static void test_timeout_and_cancel(void **state)
{
    pgpool *p = pool_new(dsn, 0.5, 2);
    outcome o = {0}, c = {0}, after;
    pgpool_req *r;
    double t0 = ev_time();
    int done = 0;

    assert_non_null(
        pgpool_query(p, "SELECT pg_sleep(5)", 0, NULL, on_result, &o));
    run_all(&o, 1, 10);
    assert_false(o.ok);
    assert_true(o.timeout);
    assert_true(o.at - t0 < 1.5);
    /* cancelled mid-flight: never called back */
    r = pgpool_query(p, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &c);
    assert_non_null(r);
    run_until(&done, 0.1);
    pgpool_cancel(r);
    run_until(&done, 0.5);
    assert_int_equal(c.calls, 0);
    /* and the pool goes on (new connections) */
    assert_int_equal(query1(p, "SELECT 'alive'", &after), 0);
    assert_true(after.ok);
    assert_string_equal(after.value, "alive");
    pool_free(p);
}

static void test_private_dsn(void **state)
{
    char b[256];

    assert_int_equal(pgpool_private_dsn("/var/lib/it's", b, sizeof(b)), 0);
    assert_string_equal(b,
                        "host='/var/lib/it\\'s/pg/run' dbname='sluice' "
                        "user='sluice' passfile='/var/lib/it\\'s/pg/pgpass'");
    assert_int_equal(pgpool_private_dsn("/var/lib/sluice", b, 40), -1);
    assert_string_equal(b, "");
}

static void test_bad_dsn(void **state)
{
    pgpool_conf conf = {0};
    char err[256];

    conf.dsn = "host=/tmp port= = nonsense '";
    assert_null(pgpool_new(&host, NULL, &conf, err, sizeof(err)));
    assert_non_null(strstr(err, "DSN"));
}

/* Not trust: without the password file the server refuses us. */
static void test_no_password(void **state)
{
    pgpool *p = pool_new(dsn_nopass, 3, 1);
    outcome o;
    double t0 = ev_time();

    assert_int_equal(query1(p, "SELECT 1", &o), 0);
    assert_false(o.ok);
    assert_true(o.at - t0 < 3);
    assert_true(strstr(o.error, "password") != NULL);
    pool_free(p);
}

static void test_server_down_and_back(void **state)
{
    pgpool *p = pool_new(dsn, 1.0, 2);
    outcome o, q[5];
    double t0;
    int i, ok = 0;
    pgpool_stats st;

    assert_int_equal(query1(p, "SELECT 1", &o), 0);
    assert_true(o.ok);
    assert_int_equal(pg_ctl("stop"), 0);
    /* the first request after the stop fails within the timeout ... */
    t0 = ev_time();
    assert_int_equal(query1(p, "SELECT 2", &o), 0);
    assert_false(o.ok);
    assert_true(o.at - t0 < 1.2);
    /* ... and once the pool knows, at once: no request waits */
    memset(q, 0, sizeof(q));
    t0 = ev_time();
    for (i = 0; i < 5; i++)
        assert_non_null(pgpool_query(p, "SELECT 3", 0, NULL, on_result, &q[i]));
    run_all(q, 5, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(q[i].calls, 1);
        assert_false(q[i].ok);
    }
    assert_true(ev_time() - t0 < 1.2);
    assert_non_null(strstr(fakehost.log, "database"));
    /* back: the pool reconnects by itself (back-off at most 0.5 s) */
    assert_int_equal(pg_ctl("start"), 0);
    t0 = ev_time();
    while (ev_time() - t0 < 10) {
        assert_int_equal(query1(p, "SELECT 'back'", &o), 0);
        if (o.ok) {
            ok = 1;
            break;
        }
        {
            int never = 0;
            run_until(&never, 0.1);
        }
    }
    assert_true(ok);
    assert_string_equal(o.value, "back");
    pgpool_stats_get(p, &st);
    assert_true(st.connects >= 2);
    assert_true(st.connect_failures >= 1);
    assert_non_null(strstr(fakehost.log, "re-established"));
    pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_params_prepared),
        cmocka_unit_test(test_transaction),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_timeout_and_cancel),
        cmocka_unit_test(test_private_dsn),
        cmocka_unit_test(test_bad_dsn),
        cmocka_unit_test(test_no_password),
        cmocka_unit_test(test_server_down_and_back),
    };

    state_dir = getenv("SLUICE_TEST_PG_STATE");
    pg_script = getenv("SLUICE_PG");
    if (state_dir == NULL || pg_script == NULL) {
        fprintf(stderr, "test_pgpool: run through tests/unit/pg_env.sh "
                        "(SLUICE_TEST_PG_STATE, SLUICE_PG unset)\n");
        return 1;
    }
    if (pgpool_private_dsn(state_dir, dsn, sizeof(dsn)) < 0) {
        fprintf(stderr, "test_pgpool: state directory path too long\n");
        return 1;
    }
    snprintf(dsn_nopass, sizeof(dsn_nopass),
             "host=%s/pg/run dbname=sluice user=sluice passfile=/dev/null",
             state_dir);
    loop = ev_default_loop(0);
    fakehost_init(&host);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
