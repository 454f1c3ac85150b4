/* test_chain.c - the chain runner on a real libev loop, without fork:
 * verdict semantics, pending/done, timeouts, final stages, recipient
 * settlement, header edits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "log.h"
#include "testutil.h"

typedef struct run {
    int called;
    sluice_verdict v;
} run;

static stats_worker slot;

static void cb(sluice_txn *t, sluice_verdict v, void *arg)
{
    run *r = arg;
    (void)t;
    r->called++;
    r->v = v;
}

static worker *start(const char *stages, char **dirp)
{
    char *dir = tu_mkdir();
    char text[4096];
    buf err;
    chain *ch;
    worker *w = calloc(1, sizeof(*w));
    size_t i;

    snprintf(text, sizeof(text), TU_ENGINE "plugin_dir %s\n", FX_DIR);
    tu_write(dir, "00-engine.conf", text);
    tu_write(dir, "10-stages.conf", stages);
    buf_init(&err);
    ch = chain_load(dir, NULL, "/tmp", NULL, NULL, NULL, 1, &err);
    if (ch == NULL)
        print_error("%s", err.data);
    assert_non_null(ch);
    buf_free(&err);
    memset(&slot, 0, sizeof(slot));
    w->loop = ev_default_loop(0);
    w->ch = ch;
    w->stats = &slot;
    ev_idle_init(&w->runq_idle, (void (*)(struct ev_loop *, ev_idle *,
                                          int))NULL);
    for (i = 0; i < ch->nstages; i++) {
        ch->stages[i]->worker = w;
        ch->stages[i]->stats = &slot.stages[i];
    }
    *dirp = dir;
    return w;
}

static void runq_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)loop;
    (void)revents;
    worker_runq_process(i->data);
}

static void wait_for(worker *w, run *r)
{
    int spins = 0;
    while (!r->called && spins++ < 100000)
        ev_run(w->loop, EVRUN_ONCE);
}

static void stop(worker *w, char *dir)
{
    if (--w->ch->refs == 0)
        chain_free(w->ch);
    free(w);
    tu_rmdir(dir);
}

static sluice_txn *new_txn(worker *w, size_t nrcpt)
{
    sluice_txn *t;
    size_t i;
    char addr[64];
    const char *msg = "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n";

    ev_idle_init(&w->runq_idle, runq_cb);
    w->runq_idle.data = w;
    t = txn_new(w, w->ch->stages[0]);
    host_table.txn_set_sender(t, "s@example.org", "");
    for (i = 0; i < nrcpt; i++) {
        snprintf(addr, sizeof(addr), "r%zu@example.org", i);
        host_table.txn_add_rcpt(t, addr, "");
    }
    assert_int_equal(host_table.txn_write(t, msg, strlen(msg)), 0);
    return t;
}

static void test_continue_without_final_tempfails(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\n", &dir);
    sluice_txn *t = new_txn(w, 2);
    run r = {0, 0};
    const char *reply;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    assert_int_equal(r.called, 0); /* never from inside txn_run */
    wait_for(w, &r);
    assert_int_equal(r.called, 1);
    /* nobody delivered: 4xx for every recipient, never 250 */
    assert_int_equal(host_table.rcpt_state(t, 0, &reply),
                     SLUICE_RCPT_TEMPFAIL);
    assert_non_null(strstr(reply, "451 4.3.0"));
    assert_int_equal(host_table.rcpt_state(t, 1, NULL), SLUICE_RCPT_TEMPFAIL);
    txn_free(t);
    stop(w, dir);
}

static void test_deliver_and_header(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\nheader X-A\nsymbol SYM_A\n"
                      "score 2.5\n\nstage d\nplugin fx_final\ndeliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 2);
    run r = {0, 0};
    const char *reply;
    const sluice_header *h;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_CONTINUE);
    assert_int_equal(host_table.rcpt_state(t, 0, &reply), SLUICE_RCPT_DONE);
    assert_string_equal(reply, "250 2.0.0 fx ok");
    h = host_table.header(t, 0);
    assert_non_null(h);
    assert_int_equal(h->name.len, 3);
    assert_memory_equal(h->name.ptr, "X-A", 3);
    assert_string_equal(h->value, "yes");
    assert_non_null(host_table.header_find(t, "subject", 0));
    assert_string_equal(host_table.header_find(t, "SUBJECT", 0)->value, "hi");
    assert_true(host_table.score(t) == 2.5);
    assert_string_equal(host_table.symbol(t, 0, NULL, NULL), "SYM_A");
    txn_free(t);
    stop(w, dir);
}

static void test_reject_stops_chain(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\neom reject\n\nstage b\nplugin fx\n"
                      "header X-B\n\nstage d\nplugin fx_final\ndeliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};
    const char *reply;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_REJECT);
    assert_int_equal(host_table.rcpt_state(t, 0, &reply),
                     SLUICE_RCPT_REJECTED);
    assert_non_null(strstr(reply, "550 5.7.1"));
    assert_null(host_table.header_find(t, "X-B", 0)); /* b never ran */
    txn_free(t);
    stop(w, dir);
}

static void test_accept_skips_filters_runs_final(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\neom accept\n\nstage b\nplugin fx\n"
                      "header X-B\n\nstage d\nplugin fx_final\ndeliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_ACCEPT);
    assert_null(host_table.header_find(t, "X-B", 0));
    assert_int_equal(host_table.rcpt_state(t, 0, NULL), SLUICE_RCPT_DONE);
    txn_free(t);
    stop(w, dir);
}

/* QUARANTINE: filter stages after the deciding one are skipped, final
 * stages (the quarantine store, deliver) still run and settle the
 * recipients; with no final stage taking them, 451, never 250. */
static void test_quarantine_runs_final(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\neom quarantine\n\nstage b\n"
                      "plugin fx\nheader X-B\n\nstage d\nplugin fx_final\n"
                      "deliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 2);
    run r = {0, 0};
    const char *reply;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_QUARANTINE);
    assert_int_equal(host_table.disposition(t), SLUICE_QUARANTINE);
    assert_null(host_table.header_find(t, "X-B", 0));
    assert_int_equal(host_table.rcpt_state(t, 0, NULL), SLUICE_RCPT_DONE);
    assert_int_equal(host_table.rcpt_state(t, 1, NULL), SLUICE_RCPT_DONE);
    txn_free(t);
    stop(w, dir);

    w = start("stage a\nplugin fx\neom quarantine\n", &dir);
    t = new_txn(w, 1);
    memset(&r, 0, sizeof(r));
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(host_table.rcpt_state(t, 0, &reply),
                     SLUICE_RCPT_TEMPFAIL);
    assert_non_null(strstr(reply, "quarantine is not available"));
    txn_free(t);
    stop(w, dir);
}

static void test_pending_then_done(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\npend yes\ndelay 50ms\nheader X-P\n"
                      "\nstage d\nplugin fx_final\ndeliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.called, 1);
    assert_non_null(host_table.header_find(t, "X-P", 0));
    assert_int_equal(host_table.rcpt_state(t, 0, NULL), SLUICE_RCPT_DONE);
    assert_true(t->stage_ms[0] >= 40.0);
    txn_free(t);
    stop(w, dir);
}

static void test_timeout_applies_on_timeout(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\nnever_done yes\ntimeout 100ms\n"
                      "\nstage d\nplugin fx_final\ndeliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};
    const char *reply;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_TEMPFAIL);
    assert_int_equal(host_table.rcpt_state(t, 0, &reply),
                     SLUICE_RCPT_TEMPFAIL);
    assert_non_null(strstr(reply, "timed out"));
    assert_int_equal(slot.stages[0].timeouts, 1);
    txn_free(t);
    stop(w, dir);
}

static void test_timeout_continue(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\nnever_done yes\ntimeout 50ms\n"
                      "on_timeout continue\n\nstage d\nplugin fx_final\n"
                      "deliver yes\n",
                      &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    wait_for(w, &r);
    assert_int_equal(host_table.rcpt_state(t, 0, NULL), SLUICE_RCPT_DONE);
    txn_free(t);
    stop(w, dir);
}

static void test_free_while_pending_aborts(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\npend yes\ndelay 10s\n", &dir);
    sluice_txn *t = new_txn(w, 1);
    run r = {0, 0};
    int i;

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, &r);
    for (i = 0; i < 5; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
    assert_int_equal(t->state, TXN_PENDING);
    txn_free(t); /* client went away */
    assert_int_equal(r.called, 0);
    /* abort hook, then close hook: the counter says 2 */
    assert_int_equal(slot.stages[0].counters[0].value, 2);
    stop(w, dir);
}

static void test_rcpt_reject_and_disabled(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\nrcpt reject\n\nstage b\nplugin fx\n"
                      "enabled no\nmail reject\n",
                      &dir);
    sluice_txn *t = new_txn(w, 0);
    run r = {0, 0};

    (void)state;
    host_table.txn_run(t, SLUICE_PHASE_MAIL, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_CONTINUE); /* b is disabled */
    host_table.txn_add_rcpt(t, "x@y", "");
    r.called = 0;
    host_table.txn_run(t, SLUICE_PHASE_RCPT, cb, &r);
    wait_for(w, &r);
    assert_int_equal(r.v, SLUICE_REJECT);
    assert_int_equal(host_table.rcpt_current(t), 0);
    txn_free(t);
    stop(w, dir);
}

static void test_header_edits_need_flags(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\n", &dir);
    sluice_txn *t = new_txn(w, 1);

    (void)state;
    t->cur_stage = w->ch->stages[0];
    /* fx declares ADD_HEADERS only */
    assert_int_equal(host_table.header_insert(t, 0, "X-Ok", "v"), 0);
    assert_int_equal(host_table.header_change(t, "Subject", 0, "new"), -1);
    assert_int_equal(host_table.header_insert(t, 0, "Bad Name", "v"), -1);
    assert_int_equal(host_table.header_insert(t, 0, "X-Inj", "a\r\nB: c"), -1);
    t->cur_stage = NULL;
    txn_free(t);
    stop(w, dir);
}

/* What delivery writes: every header as name ":" raw CRLF, an empty line,
 * the body. */
static char *rebuild(sluice_txn *t)
{
    size_t i, n = host_table.header_count(t), len = 0;
    sluice_str body;
    char *out = malloc(1 << 16);

    assert_non_null(out);
    for (i = 0; i < n; i++) {
        const sluice_header *h = host_table.header(t, i);
        memcpy(out + len, h->name.ptr, h->name.len);
        len += h->name.len;
        out[len++] = ':';
        memcpy(out + len, h->raw.ptr, h->raw.len);
        len += h->raw.len;
        memcpy(out + len, "\r\n", 2);
        len += 2;
    }
    memcpy(out + len, "\r\n", 2);
    len += 2;
    assert_int_equal(host_table.body(t, &body), 0);
    memcpy(out + len, body.ptr, body.len);
    len += body.len;
    out[len] = '\0';
    return out;
}

static void lossless(worker *w, const char *msg, const char *want)
{
    sluice_txn *t = txn_new(w, w->ch->stages[0]);
    char *got;

    assert_int_equal(host_table.txn_write(t, msg, strlen(msg)), 0);
    got = rebuild(t);
    assert_string_equal(got, want ? want : msg);
    free(got);
    txn_free(t);
}

/* Delivery writes the header array: whatever the parser skipped or cut
 * must still be in it, byte for byte. */
static void test_header_block_lossless(void **state)
{
    char *dir;
    worker *w = start("stage a\nplugin fx\n", &dir);
    char longer[600];

    (void)state;
    lossless(w, "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n", NULL);
    lossless(w, "Subject: hi\r\n folded\r\nnot a field\r\n"
                "From: a@b\r\n\r\nbody\r\n", NULL);
    lossless(w, "From mbox Mon Jan 1\r\nSubject: x\r\n\r\nb\r\n", NULL);
    lossless(w, "Subject: x\r\ntrailing junk\r\n\r\nb\r\n", NULL);
    /* no field at all: everything becomes body behind an empty line */
    lossless(w, "junk\r\nmore\r\n\r\nbody\r\n",
             "\r\njunk\r\nmore\r\n\r\nbody\r\n");
    /* past the count limit and over the length limit */
    w->ch->limits.max_header_count = 2;
    w->ch->limits.max_header_len = 64;
    lossless(w, "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nbody\r\n", NULL);
    memset(longer, 'x', sizeof(longer));
    memcpy(longer, "X-Long: ", 8);
    strcpy(longer + sizeof(longer) - 20, "\r\nS: t\r\n\r\nbody\r\n");
    lossless(w, longer, NULL);
    stop(w, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continue_without_final_tempfails),
        cmocka_unit_test(test_deliver_and_header),
        cmocka_unit_test(test_reject_stops_chain),
        cmocka_unit_test(test_accept_skips_filters_runs_final),
        cmocka_unit_test(test_quarantine_runs_final),
        cmocka_unit_test(test_pending_then_done),
        cmocka_unit_test(test_timeout_applies_on_timeout),
        cmocka_unit_test(test_timeout_continue),
        cmocka_unit_test(test_free_while_pending_aborts),
        cmocka_unit_test(test_rcpt_reject_and_disabled),
        cmocka_unit_test(test_header_edits_need_flags),
        cmocka_unit_test(test_header_block_lossless),
    };
    log_init("test", SLUICE_LOG_ERROR, 0);
    return cmocka_run_group_tests_name("chain", tests, NULL, NULL);
}
