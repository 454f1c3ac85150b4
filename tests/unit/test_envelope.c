/* test_envelope.c - ABI 1.2 on the engine side (envelope.c), on a real
 * libev loop with fixture stages (fx_stage.c: rcpt_add, rcpt_del, send,
 * and a final stage that delivers, defers or refuses per address):
 * recipients changed at EOM reach the final stages, the ingress's own
 * recipients answer the right outcome, the net changes an ingress
 * replays, refusals (undeclared, wrong phase, final stage, old ingress),
 * and messages sent by a stage (after settle, not when deferred). */
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

static void runq_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)loop;
    (void)revents;
    worker_runq_process(i->data);
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
    ev_idle_init(&w->runq_idle, runq_cb);
    w->runq_idle.data = w;
    for (i = 0; i < ch->nstages; i++) {
        ch->stages[i]->worker = w;
        ch->stages[i]->stats = &slot.stages[i];
    }
    *dirp = dir;
    return w;
}

static void stop(worker *w, char *dir)
{
    if (--w->ch->refs == 0)
        chain_free(w->ch);
    free(w);
    tu_rmdir(dir);
}

/* A message from the ingress stand-in stages[0], to r0@ and r1@. */
static sluice_txn *new_txn(worker *w)
{
    const char *msg = "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n";
    sluice_txn *t = txn_new(w, w->ch->stages[0]);

    host_table.txn_set_sender(t, "s@example.org", "");
    host_table.txn_add_rcpt(t, "r0@example.org", "");
    host_table.txn_add_rcpt(t, "r1@example.org", "NOTIFY=NEVER");
    assert_int_equal(host_table.txn_write(t, msg, strlen(msg)), 0);
    return t;
}

static void run_eom(worker *w, sluice_txn *t, run *r)
{
    int spins = 0;

    host_table.txn_run(t, SLUICE_PHASE_EOM, cb, r);
    while (!r->called && spins++ < 100000)
        ev_run(w->loop, EVRUN_ONCE);
    assert_int_equal(r->called, 1);
}

/* Let messages sent by stages run to their end. */
static void drain(worker *w)
{
    for (int i = 0; i < 200 && slot.active_txns > 0; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
}

static long long counter(int stage, const char *name)
{
    for (int i = 0; i < STATS_MAX_COUNTERS; i++)
        if (strcmp(slot.stages[stage].counters[i].name, name) == 0)
            return slot.stages[stage].counters[i].value;
    return 0;
}

static void expect(sluice_txn *t, size_t i, sluice_rcpt_state st,
                   const char *part)
{
    const char *reply = NULL;

    assert_int_equal(host_table.rcpt_state(t, i, &reply), st);
    if (part && (reply == NULL || strstr(reply, part) == NULL))
        fail_msg("recipient %zu: reply \"%s\" lacks \"%s\"", i,
                 reply ? reply : "(null)", part);
}

#define FILTER "stage in\nplugin fx\n\nstage filter\nplugin fx\n"
#define FINAL "\nstage out\nplugin fx_final\ndeliver yes\n"

static void test_redirect(void **state)
{
    char *dir;
    worker *w = start(FILTER "rcpt_add alice@x.test\n"
                             "rcpt_del r0@example.org r1@example.org\n" FINAL,
                      &dir);
    sluice_txn *t = new_txn(w);
    const sluice_rcpt_change *c;
    run r = {0, 0};

    (void)state;
    run_eom(w, t, &r);
    assert_int_equal(counter(1, "add_ok"), 1);
    assert_int_equal(counter(1, "del_ok"), 2);
    /* the ingress's recipients again, answered for alice's delivery */
    assert_int_equal(host_table.rcpt_count(t), 2);
    assert_string_equal(host_table.rcpt(t, 0)->addr, "r0@example.org");
    expect(t, 0, SLUICE_RCPT_DONE, "250 2.0.0 <alice@x.test>: fx ok");
    expect(t, 1, SLUICE_RCPT_DONE, "<alice@x.test>");
    /* what a milter ingress replays */
    assert_int_equal(host_table.rcpt_change_count(t), 3);
    c = host_table.rcpt_change(t, 0);
    assert_int_equal(c->op, SLUICE_RCPT_DEL);
    assert_string_equal(c->addr, "r0@example.org");
    c = host_table.rcpt_change(t, 1);
    assert_int_equal(c->op, SLUICE_RCPT_DEL);
    assert_string_equal(c->params, "NOTIFY=NEVER");
    c = host_table.rcpt_change(t, 2);
    assert_int_equal(c->op, SLUICE_RCPT_ADD);
    assert_string_equal(c->addr, "alice@x.test");
    assert_null(host_table.rcpt_change(t, 3));
    txn_free(t);
    stop(w, dir);
}

static void test_copy_outcomes(void **state)
{
    char *dir;
    run r = {0, 0}, r2 = {0, 0}, r3 = {0, 0};
    worker *w;
    sluice_txn *t;

    (void)state;
    /* an added recipient deferred: every original retries */
    w = start(FILTER "rcpt_add alice@x.test\n" FINAL "defer alice@x.test\n",
              &dir);
    t = new_txn(w);
    run_eom(w, t, &r);
    expect(t, 0, SLUICE_RCPT_TEMPFAIL, "451 4.4.1 <alice@x.test>: fx defer");
    expect(t, 1, SLUICE_RCPT_TEMPFAIL, NULL);
    txn_free(t);
    stop(w, dir);

    /* an original refused by the next hop keeps its own answer */
    w = start(FILTER "rcpt_add alice@x.test\n" FINAL "refuse r0@example.org\n",
              &dir);
    t = new_txn(w);
    run_eom(w, t, &r2);
    expect(t, 0, SLUICE_RCPT_REJECTED, "550 5.1.1 fx refuse");
    expect(t, 1, SLUICE_RCPT_DONE, "250 2.0.0 fx ok");
    txn_free(t);
    stop(w, dir);

    /* a redirect target refused: the originals bounce, never 250 */
    w = start(FILTER "rcpt_add alice@x.test bob@x.test\n"
                     "rcpt_del r0@example.org r1@example.org\n" FINAL
                     "refuse alice@x.test bob@x.test\n",
              &dir);
    t = new_txn(w);
    run_eom(w, t, &r3);
    expect(t, 0, SLUICE_RCPT_REJECTED, "550 5.1.1 <alice@x.test>: fx refuse");
    expect(t, 1, SLUICE_RCPT_REJECTED, NULL);
    txn_free(t);
    stop(w, dir);
}

static void test_delete_and_duplicates(void **state)
{
    char *dir;
    run r = {0, 0};
    worker *w = start(FILTER "rcpt_add R1@EXAMPLE.ORG r0@example.org\n"
                             "rcpt_del r0@example.org nobody@x.test\n" FINAL,
                      &dir);
    sluice_txn *t = new_txn(w);

    (void)state;
    run_eom(w, t, &r);
    /* adding a recipient already there changes nothing */
    assert_int_equal(counter(1, "add_ok"), 2);
    assert_int_equal(counter(1, "del_ok"), 1);
    assert_int_equal(counter(1, "del_refused"), 1);
    /* r0 was added back before it was removed: removed, nothing added */
    expect(t, 0, SLUICE_RCPT_DONE, "recipient removed by the filter");
    expect(t, 1, SLUICE_RCPT_DONE, "250 2.0.0 fx ok");
    assert_int_equal(host_table.rcpt_change_count(t), 1);
    assert_int_equal(host_table.rcpt_change(t, 0)->op, SLUICE_RCPT_DEL);
    txn_free(t);
    stop(w, dir);
}

/* As the milter ingress: every recipient done before EOM, no delivery
 * stage; added ones start done, so nothing is left open. */
static void test_mta_delivers(void **state)
{
    char *dir;
    run r = {0, 0};
    worker *w = start(FILTER "rcpt_add alice@x.test\n"
                             "rcpt_del r0@example.org\n",
                      &dir);
    sluice_txn *t = new_txn(w);

    (void)state;
    host_table.rcpt_set(t, 0, SLUICE_RCPT_DONE, "250 2.0.0 MTA delivers");
    host_table.rcpt_set(t, 1, SLUICE_RCPT_DONE, "250 2.0.0 MTA delivers");
    run_eom(w, t, &r);
    expect(t, 0, SLUICE_RCPT_DONE, NULL);
    expect(t, 1, SLUICE_RCPT_DONE, "MTA delivers");
    assert_int_equal(host_table.rcpt_change_count(t), 2);
    txn_free(t);
    stop(w, dir);
}

static void test_refusals(void **state)
{
    char *dir;
    run r = {0, 0}, r2 = {0, 0};
    worker *w;
    sluice_txn *t;

    (void)state;
    /* a final stage may not change the envelope */
    w = start("stage in\nplugin fx\n\nstage out\nplugin fx_final\n"
              "deliver yes\nrcpt_add alice@x.test\n",
              &dir);
    t = new_txn(w);
    /* outside a hook (no stage running): refused */
    assert_int_equal(host_table.rcpt_add(t, "x@x.test", NULL), -1);
    assert_int_equal(host_table.rcpt_del(t, "r0@example.org"), -1);
    run_eom(w, t, &r);
    assert_int_equal(counter(1, "add_refused"), 1);
    assert_int_equal(host_table.rcpt_change_count(t), 0);
    expect(t, 0, SLUICE_RCPT_DONE, NULL);
    txn_free(t);
    stop(w, dir);

    /* an ingress built for 1.1 cannot honour changes; bad addresses */
    w = start("stage in\nplugin fx_old\n\nstage filter\nplugin fx\n"
              "rcpt_add alice@x.test\n" FINAL,
              &dir);
    t = new_txn(w);
    run_eom(w, t, &r2);
    assert_int_equal(counter(1, "add_refused"), 1);
    expect(t, 0, SLUICE_RCPT_DONE, NULL);
    txn_free(t);
    stop(w, dir);
}

static void test_bad_addresses(void **state)
{
    char *dir;
    run r = {0, 0};
    worker *w =
        start(FILTER "rcpt_add <a@x.test> a>b@x.test x@x.test\n" FINAL, &dir);
    sluice_txn *t = new_txn(w);

    (void)state;
    run_eom(w, t, &r);
    assert_int_equal(counter(1, "add_ok"), 1);
    assert_int_equal(counter(1, "add_refused"), 2);
    txn_free(t);
    stop(w, dir);
}

static void test_send(void **state)
{
    char *dir;
    run r = {0, 0}, r2 = {0, 0}, r3 = {0, 0};
    worker *w;
    sluice_txn *t;

    (void)state;
    /* delivered: the message goes out as a message of its own */
    w = start(FILTER "send admin@x.test\n" FINAL, &dir);
    t = new_txn(w);
    run_eom(w, t, &r);
    assert_int_equal(counter(1, "send_ok"), 1);
    expect(t, 0, SLUICE_RCPT_DONE, NULL);
    txn_free(t);
    drain(w);
    assert_int_equal(slot.txns, 2);
    assert_int_equal(slot.messages, 2);
    assert_int_equal(slot.active_txns, 0);
    /* its filtering stages were skipped: only the final stage ran */
    assert_int_equal(counter(1, "send_ok"), 1);
    stop(w, dir);

    /* every recipient deferred: not sent (the retry will ask again) */
    w = start(FILTER "send admin@x.test\n" FINAL
                     "defer r0@example.org r1@example.org\n",
              &dir);
    t = new_txn(w);
    run_eom(w, t, &r2);
    assert_int_equal(counter(1, "send_ok"), 1);
    txn_free(t);
    drain(w);
    assert_int_equal(slot.txns, 1);
    stop(w, dir);

    /* no delivery stage: refused at once */
    w = start(FILTER "send admin@x.test\n", &dir);
    t = new_txn(w);
    run_eom(w, t, &r3);
    assert_int_equal(counter(1, "send_refused"), 1);
    txn_free(t);
    stop(w, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_copy_outcomes),
        cmocka_unit_test(test_delete_and_duplicates),
        cmocka_unit_test(test_mta_delivers),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_send),
    };
    log_init("test_envelope", SLUICE_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
