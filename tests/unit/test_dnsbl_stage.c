/* test_dnsbl_stage.c - the dns stage's per-message logic behind a fake
 * host whose DNS and timers the test drives by hand: one query per name
 * (zones sharing a suffix share it), return codes per zone, done()
 * exactly once, the deadline (unanswered zones become NAME_UNAVAILABLE,
 * their queries cancelled), on_abort (everything cancelled, no done()),
 * no resolver, max_queries, error codes.  The stage's source is included
 * so its private types are at hand. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../plugins/dns/dnsbl.c"

/* ---------------------------------------------------------------- */
/* The fake host                                                     */

#define FQ_MAX 256

struct sluice_dns_query {
    char name[512];
    sluice_dns_cb cb;
    void *arg;
    int live; /* neither answered nor cancelled */
};

struct sluice_timer {
    sluice_timer_cb cb;
    void *arg;
    int armed;
};

static struct {
    struct sluice_dns_query qs[FQ_MAX];
    int nq, cancelled, no_resolver;
    int done_calls;
    sluice_verdict done_v;
    struct sluice_timer *timer;
    int timers_live;
    char syms[64][96];
    double scores[64];
    int nsyms;
    sluice_client client;
    sluice_addr sender;
    sluice_header from;
    int have_from;
} fh;

static void fh_log(sluice_ctx *ctx, sluice_txn *txn, int level, const char *fmt,
                   ...)
{
    (void)ctx;
    (void)txn;
    (void)level;
    (void)fmt;
}

static const sluice_client *fh_client(sluice_txn *t)
{
    return &fh.client;
}

static const sluice_addr *fh_sender(sluice_txn *t)
{
    return &fh.sender;
}

static const sluice_header *fh_header_find(sluice_txn *t, const char *name,
                                           size_t nth)
{
    if (strcasecmp(name, "From") == 0 && nth == 0 && fh.have_from)
        return &fh.from;
    return NULL;
}

static size_t fh_part_count(sluice_txn *t)
{
    return 0;
}

static const sluice_part *fh_part(sluice_txn *t, size_t i)
{
    return NULL;
}

static void fh_symbol_add(sluice_txn *t, const char *name, double score,
                          const char *fmt, ...)
{
    if (fh.nsyms < 64) {
        snprintf(fh.syms[fh.nsyms], sizeof(fh.syms[0]), "%s", name);
        fh.scores[fh.nsyms++] = score;
    }
}

static int has_sym(const char *name)
{
    for (int i = 0; i < fh.nsyms; i++)
        if (strcmp(fh.syms[i], name) == 0)
            return 1;
    return 0;
}

static void fh_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
}

static sluice_timer *fh_timer_new(sluice_ctx *ctx, sluice_timer_cb cb,
                                  void *arg)
{
    struct sluice_timer *t = calloc(1, sizeof(*t));
    t->cb = cb;
    t->arg = arg;
    fh.timer = t;
    fh.timers_live++;
    return t;
}

static void fh_timer_start(sluice_timer *t, double s)
{
    t->armed = 1;
}

static void fh_timer_free(sluice_timer *t)
{
    if (fh.timer == t)
        fh.timer = NULL;
    fh.timers_live--;
    free(t);
}

static sluice_dns_query *fh_dns_query(sluice_ctx *ctx, sluice_txn *txn,
                                      const char *name, int type,
                                      sluice_dns_cb cb, void *arg)
{
    struct sluice_dns_query *q;

    if (fh.no_resolver || fh.nq >= FQ_MAX)
        return NULL;
    q = &fh.qs[fh.nq++];
    snprintf(q->name, sizeof(q->name), "%s", name);
    q->cb = cb;
    q->arg = arg;
    q->live = 1;
    return q;
}

static void fh_dns_cancel(sluice_dns_query *q)
{
    assert_true(q->live);
    q->live = 0;
    fh.cancelled++;
}

static void fh_done(sluice_txn *t, sluice_verdict v)
{
    fh.done_calls++;
    fh.done_v = v;
}

static sluice_host fh_host;

static struct sluice_dns_query *find_q(const char *name)
{
    for (int i = 0; i < fh.nq; i++)
        if (strcmp(fh.qs[i].name, name) == 0)
            return &fh.qs[i];
    return NULL;
}

/* Answer the query for `name` with one A record, or a status. */
static void answer(const char *name, sluice_dns_status st, const char *rec)
{
    struct sluice_dns_query *q = find_q(name);
    const char *recs[1] = {rec};
    sluice_dns_answer a;

    assert_non_null(q);
    assert_true(q->live);
    q->live = 0;
    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.status = st;
    a.type = SLUICE_DNS_A;
    a.count = rec ? 1 : 0;
    a.records = recs;
    q->cb(q, &a, q->arg);
}

/* ---------------------------------------------------------------- */
/* Harness                                                           */

typedef struct fx {
    dnsbl_conf conf;
    void *inst;
    dnsbl_msg slot;
    char *zones[64];
    sluice_txn *txn;
} fx;

static void fx_zone(fx *f, const char *line)
{
    size_t n = 0;
    char *copy = strdup(line), *tok, *save = NULL;

    while (f->zones[n])
        n++;
    for (tok = strtok_r(copy, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save))
        f->zones[n++] = strdup(tok);
    f->zones[n] = NULL;
    free(copy);
}

static fx *fx_new(long long max_queries)
{
    fx *f = calloc(1, sizeof(*f));

    memset(&fh, 0, sizeof(fh));
    fh_host.size = sizeof(fh_host);
    fh_host.abi_major = SLUICE_ABI_MAJOR;
    fh_host.abi_minor = SLUICE_ABI_MINOR;
    fh_host.log = fh_log;
    fh_host.done = fh_done;
    fh_host.client = fh_client;
    fh_host.sender = fh_sender;
    fh_host.header_find = fh_header_find;
    fh_host.part_count = fh_part_count;
    fh_host.part = fh_part;
    fh_host.symbol_add = fh_symbol_add;
    fh_host.counter_add = fh_counter_add;
    fh_host.timer_new = fh_timer_new;
    fh_host.timer_start = fh_timer_start;
    fh_host.timer_free = fh_timer_free;
    fh_host.dns_query = fh_dns_query;
    fh_host.dns_cancel = fh_dns_cancel;
    fh.client.size = sizeof(fh.client);
    fh.client.addr = "192.0.2.99";
    fh.client.helo = "";
    fh.sender.size = sizeof(fh.sender);
    fh.sender.addr = "";
    f->conf.zones = f->zones;
    f->conf.received = 0;
    f->conf.deadline = 5;
    f->conf.max_queries = max_queries;
    f->conf.max_urls = 10;
    f->conf.max_attachments = 1;
    f->conf.scan_limit = 1 << 20;
    f->conf.psl_path = "/usr/share/publicsuffix/public_suffix_list.dat";
    f->conf.sxl_hash = DNSBL_HASH_SHA1;
    f->txn = (sluice_txn *)f; /* opaque to the stage */
    return f;
}

static void fx_init(fx *f)
{
    assert_int_equal(dnsbl_init((sluice_ctx *)f, &fh_host, &f->conf, &f->inst),
                     0);
}

static void fx_free(fx *f)
{
    dnsbl_close(f->inst, f->txn, &f->slot);
    dnsbl_fini(f->inst);
    for (int i = 0; f->zones[i]; i++)
        free(f->zones[i]);
    assert_int_equal(fh.timers_live, 0);
    free(f);
}

/* ---------------------------------------------------------------- */
/* Tests                                                             */

static void test_shared_suffix_codes(void **state)
{
    fx *f = fx_new(100);

    (void)state;
    fx_zone(f, "BL dnsbl bl.test 127.0.0.2 RBL_TWO 3");
    fx_zone(f, "BL4 dnsbl bl.test 127.0.0.4 RBL_FOUR 1");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_PENDING);
    assert_int_equal(fh.nq, 1); /* one name, two zones */
    assert_string_equal(fh.qs[0].name, "99.2.0.192.bl.test");
    assert_int_equal(fh.done_calls, 0);
    answer("99.2.0.192.bl.test", SLUICE_DNS_OK, "127.0.0.4");
    assert_int_equal(fh.done_calls, 1);
    assert_int_equal(fh.done_v, SLUICE_CONTINUE);
    assert_true(has_sym("RBL_FOUR"));
    assert_false(has_sym("RBL_TWO"));
    fx_free(f);
}

static void test_deadline(void **state)
{
    fx *f = fx_new(100);

    (void)state;
    fh.sender.addr = "bounce@spam.example";
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_zone(f, "RHS rhsbl rhs.test any RHS 2");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_PENDING);
    assert_int_equal(fh.nq, 2);
    assert_non_null(find_q("spam.example.rhs.test"));
    answer("99.2.0.192.bl.test", SLUICE_DNS_NXDOMAIN, NULL);
    assert_int_equal(fh.done_calls, 0);
    assert_non_null(fh.timer);
    assert_true(fh.timer->armed);
    fh.timer->cb(fh.timer, fh.timer->arg); /* the deadline */
    assert_int_equal(fh.done_calls, 1);
    assert_int_equal(fh.cancelled, 1);
    assert_true(has_sym("RHS_UNAVAILABLE"));
    assert_false(has_sym("BL_UNAVAILABLE"));
    for (int i = 0; i < fh.nsyms; i++)
        assert_true(fh.scores[i] == 0);
    fx_free(f);
    assert_int_equal(fh.done_calls, 1);
}

static void test_abort(void **state)
{
    fx *f = fx_new(100);

    (void)state;
    fh.sender.addr = "bounce@spam.example";
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_zone(f, "RHS rhsbl rhs.test any RHS 2");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_PENDING);
    dnsbl_abort(f->inst, f->txn, &f->slot); /* stage timeout, client gone */
    assert_int_equal(fh.cancelled, 2);
    assert_int_equal(fh.done_calls, 0);
    assert_int_equal(fh.timers_live, 0);
    fx_free(f);
    assert_int_equal(fh.done_calls, 0);
}

static void test_failures(void **state)
{
    fx *f = fx_new(100);

    (void)state;
    fh.sender.addr = "bounce@spam.example";
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_zone(f, "RHS rhsbl rhs.test any RHS 2");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_PENDING);
    answer("99.2.0.192.bl.test", SLUICE_DNS_OK, "127.255.255.254");
    answer("spam.example.rhs.test", SLUICE_DNS_SERVFAIL, NULL);
    assert_int_equal(fh.done_calls, 1);
    assert_true(has_sym("BL_UNAVAILABLE")); /* an error code, not a hit */
    assert_false(has_sym("RBL"));
    assert_true(has_sym("RHS_UNAVAILABLE"));
    fx_free(f);
}

static void test_no_resolver(void **state)
{
    fx *f = fx_new(100);

    (void)state;
    fh.no_resolver = 1;
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_CONTINUE);
    assert_true(has_sym("BL_UNAVAILABLE"));
    assert_int_equal(fh.done_calls, 0);
    fx_free(f);
}

static void test_max_queries_and_trusted(void **state)
{
    fx *f = fx_new(2);

    (void)state;
    fh.sender.addr = "a@one.example";
    fh.client.helo = "mx.two.example";
    fh.from.size = sizeof(fh.from);
    fh.from.value = "Three <x@three.example>";
    fh.have_from = 1;
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_zone(f, "RHS rhsbl rhs.test any RHS 2");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_PENDING);
    assert_int_equal(fh.nq, 2); /* client IP, sender; From and HELO over */
    assert_int_equal(f->slot.dropped, 2);
    dnsbl_abort(f->inst, f->txn, &f->slot);
    fx_free(f);

    /* a trusted client is not looked up; nothing to do: no pending */
    f = fx_new(100);
    fh.client.addr = "10.1.2.3";
    fx_zone(f, "BL dnsbl bl.test any RBL 3");
    fx_init(f);
    assert_int_equal(dnsbl_eom(f->inst, f->txn, &f->slot), SLUICE_CONTINUE);
    assert_int_equal(fh.nq, 0);
    fx_free(f);
}

static void test_bad_zone_refused(void **state)
{
    fx *f = fx_new(100);
    void *inst = NULL;

    (void)state;
    fx_zone(f, "BL dnsbl bl.test any RBL"); /* 5 words */
    assert_int_equal(dnsbl_init((sluice_ctx *)f, &fh_host, &f->conf, &inst),
                     -1);
    for (int i = 0; f->zones[i]; i++)
        free(f->zones[i]);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_suffix_codes),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_no_resolver),
        cmocka_unit_test(test_max_queries_and_trusted),
        cmocka_unit_test(test_bad_zone_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
