/*
 * test_deliver_stage.c - runs the whole deliver stage (plugins/deliver/
 * deliver.c) on a libev loop behind a small fake host table, against a
 * real smtp-sink(1): delivery and per-recipient replies, edited headers on
 * the wire, a large streamed message, connection reuse, the retry of a
 * dead pooled connection, max_connections queueing, connect failures,
 * timeouts, on_abort, quarantine pass-through and worker_stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sluice/stage.h>

#include "fakehost.h"
#include "test_deliver_sink.h"

extern const struct sluice_stage sluice_stage_v1;

/* ---------------------------------------------------------------- */
/* The fake engine: transactions (the loop part is fakehost.c)      */

#define MAXR 8
#define MAXH 256

struct sluice_txn {
    char id[16];
    sluice_client client;
    sluice_addr sender;
    sluice_addr rcpts[MAXR];
    size_t nrcpt;
    sluice_rcpt_state st[MAXR];
    char *reply[MAXR];
    sluice_header hdr[MAXH];
    size_t nhdr;
    const char *msg;
    size_t msglen, body_off;
    sluice_verdict disposition;
    int in_hook, done_calls;
    sluice_verdict done_v;
    void *slot;
};

typedef struct counters {
    long long delivered_messages, delivered_rcpts, tempfail_rcpts,
        rejected_rcpts, connections_opened, connections_reused;
} counters;

static counters ctr;

static void fk_done(sluice_txn *t, sluice_verdict v)
{
    t->done_calls++;
    t->done_v = v;
}

static const char *fk_txn_id(sluice_txn *t)
{
    return t->id;
}
static const sluice_client *fk_client(sluice_txn *t)
{
    return &t->client;
}
static const sluice_addr *fk_sender(sluice_txn *t)
{
    return &t->sender;
}
static size_t fk_rcpt_count(sluice_txn *t)
{
    return t->nrcpt;
}
static const sluice_addr *fk_rcpt(sluice_txn *t, size_t i)
{
    return i < t->nrcpt ? &t->rcpts[i] : NULL;
}
static sluice_verdict fk_disposition(sluice_txn *t)
{
    return t->disposition;
}
static size_t fk_header_count(sluice_txn *t)
{
    return t->nhdr;
}
static const sluice_header *fk_header(sluice_txn *t, size_t i)
{
    return i < t->nhdr ? &t->hdr[i] : NULL;
}
static int fk_body(sluice_txn *t, sluice_str *out)
{
    out->ptr = t->msg + t->body_off;
    out->len = t->msglen - t->body_off;
    return 0;
}
static void fk_rcpt_set(sluice_txn *t, size_t i, sluice_rcpt_state st,
                        const char *reply)
{
    assert_true(i < t->nrcpt);
    t->st[i] = st;
    free(t->reply[i]);
    t->reply[i] = strdup(reply ? reply : "");
}
static sluice_rcpt_state fk_rcpt_state(sluice_txn *t, size_t i,
                                       const char **reply)
{
    if (reply)
        *reply = t->reply[i];
    return t->st[i];
}

static void fk_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
#define C(f)                                                                   \
    do {                                                                       \
        if (strcmp(name, #f) == 0) {                                           \
            ctr.f += n;                                                        \
            return;                                                            \
        }                                                                      \
    } while (0)
    C(delivered_messages);
    C(delivered_rcpts);
    C(tempfail_rcpts);
    C(rejected_rcpts);
    C(connections_opened);
    C(connections_reused);
#undef C
    fail_msg("unknown counter %s", name);
}
static const char *fk_hostname(sluice_ctx *ctx)
{
    return "gw.sluice.test";
}

static sluice_host fake_host(void)
{
    sluice_host h;
    fakehost_init(&h);
    h.done = fk_done;
    h.txn_id = fk_txn_id;
    h.client = fk_client;
    h.sender = fk_sender;
    h.rcpt_count = fk_rcpt_count;
    h.rcpt = fk_rcpt;
    h.disposition = fk_disposition;
    h.header_count = fk_header_count;
    h.header = fk_header;
    h.rcpt_set = fk_rcpt_set;
    h.rcpt_state = fk_rcpt_state;
    h.counter_add = fk_counter_add;
    h.hostname = fk_hostname;
    h.body = fk_body;
    return h;
}

/* The stage's conf struct is private to deliver.c: fill it by offsets
 * from the directive table, the way the engine does. */
static void *conf_make(const char *hop, double timeout, long long maxc,
                       long long maxidle)
{
    const sluice_directive *d;
    char *conf = calloc(1, sluice_stage_v1.conf_size);

    for (d = sluice_stage_v1.directives; d->name; d++) {
        void *p = conf + d->offset;
        if (strcmp(d->name, "next_hop") == 0)
            *(char **)p = (char *)hop;
        else if (strcmp(d->name, "helo_name") == 0)
            *(char **)p = (char *)"";
        else if (strcmp(d->name, "xforward") == 0)
            *(int *)p = 1;
        else if (strcmp(d->name, "max_connections") == 0)
            *(long long *)p = maxc;
        else if (strcmp(d->name, "max_idle_connections") == 0)
            *(long long *)p = maxidle;
        else if (strcmp(d->name, "idle_time") == 0)
            *(double *)p = 10;
        else if (d->type == SLUICE_CONF_DURATION)
            *(double *)p = timeout;
        else
            fail_msg("directive %s not handled by the test", d->name);
    }
    return conf;
}

typedef struct rig {
    sluice_host host;
    void *conf, *inst;
    char hop[160];
} rig;

static void rig_init_hop(rig *r, const char *hop, double timeout,
                         long long maxc, long long maxidle)
{
    memset(r, 0, sizeof(*r));
    memset(&ctr, 0, sizeof(ctr));
    fakehost_log_clear();
    r->host = fake_host();
    snprintf(r->hop, sizeof(r->hop), "%s", hop);
    r->conf = conf_make(r->hop, timeout, maxc, maxidle);
    assert_int_equal(sluice_stage_v1.init(NULL, &r->host, r->conf, &r->inst),
                     0);
    assert_int_equal(sluice_stage_v1.worker_start(r->inst), 0);
}

static void rig_fini(rig *r)
{
    sluice_stage_v1.worker_stop(r->inst, 0);
    assert_int_equal(fakehost_live(), 0);
    sluice_stage_v1.fini(r->inst);
    free(r->conf);
}

static void rig_init(rig *r, int port, double timeout, long long maxc,
                     long long maxidle)
{
    char hop[64];

    snprintf(hop, sizeof(hop), "127.0.0.1:%d", port);
    rig_init_hop(r, hop, timeout, maxc, maxidle);
}

/* Headers: fields up to the first empty line, folds kept; a line without
 * a colon ends the header block (it becomes body, as the engine would
 * flag it).  msg may hold NULs: its length is len. */
static sluice_txn *txn_make_len(const char *id, const char *msg, size_t len,
                                size_t nrcpt)
{
    sluice_txn *t = calloc(1, sizeof(*t));
    const char *p = msg, *end = msg + len;
    size_t i;
    static const char *const rc[MAXR] = {
        "one@example.org", "two@example.org", "three@example.org", "four@x",
        "five@x",          "six@x",           "seven@x",           "8@x"};

    snprintf(t->id, sizeof(t->id), "%s", id);
    t->client.size = sizeof(t->client);
    t->client.addr = "192.0.2.9";
    t->client.name = "mail.client.example";
    t->client.helo = "client helo";
    t->client.proto = "ESMTP";
    t->client.ident = "QID42";
    t->client.port = 4025;
    t->sender.size = sizeof(t->sender);
    t->sender.addr = "sender@example.org";
    t->sender.params = "BODY=8BITMIME SIZE=99";
    for (i = 0; i < nrcpt; i++) {
        t->rcpts[i].size = sizeof(t->rcpts[i]);
        t->rcpts[i].addr = rc[i];
        t->rcpts[i].params = "";
    }
    t->nrcpt = nrcpt;
    t->disposition = SLUICE_CONTINUE;
    t->msg = msg;
    t->msglen = len;
    t->slot = calloc(1, sluice_stage_v1.slot_size);
    while (p < end && *p != '\n' &&
           !(*p == '\r' && p + 1 < end && p[1] == '\n') && t->nhdr < MAXH) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)((nl ? nl : end) - p));
        const char *e = nl;
        sluice_header *h;
        if (colon == NULL || nl == NULL)
            break;
        while (e + 1 < end && (e[1] == ' ' || e[1] == '\t')) {
            const char *n2 = memchr(e + 1, '\n', (size_t)(end - e - 1));
            if (n2 == NULL)
                break;
            e = n2;
        }
        h = &t->hdr[t->nhdr++];
        h->size = sizeof(*h);
        h->name.ptr = p;
        h->name.len = (size_t)(colon - p);
        h->raw.ptr = colon + 1;
        h->raw.len = (size_t)(e - colon - 1);
        if (h->raw.len > 0 && e[-1] == '\r')
            h->raw.len--;
        p = e + 1;
    }
    if (p < end && *p == '\n')
        p++;
    else if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
        p += 2;
    t->body_off = (size_t)(p - msg);
    return t;
}

static sluice_txn *txn_make(const char *id, const char *msg, size_t nrcpt)
{
    return txn_make_len(id, msg, strlen(msg), nrcpt);
}

static void txn_free(rig *r, sluice_txn *t)
{
    size_t i;
    sluice_stage_v1.on_close(r->inst, t, t->slot);
    for (i = 0; i < t->nrcpt; i++)
        free(t->reply[i]);
    free(t->slot);
    free(t);
}

/* Runs the EOM hook; returns its verdict. */
static sluice_verdict txn_eom(rig *r, sluice_txn *t)
{
    sluice_verdict v;
    t->in_hook = 1;
    v = sluice_stage_v1.on_phase[SLUICE_PHASE_EOM](r->inst, t, t->slot);
    t->in_hook = 0;
    return v;
}

static void loop_guard_cb(struct ev_loop *l, ev_timer *w, int re)
{
    ev_break(l, EVBREAK_ALL);
    *(int *)w->data = 1;
}

/* Runs the loop until every txn in ts has had done() (or `secs` pass). */
static void loop_until_done(sluice_txn **ts, size_t n, double secs)
{
    ev_timer guard;
    int expired = 0;

    ev_timer_init(&guard, loop_guard_cb, secs, 0);
    guard.data = &expired;
    ev_timer_start(EV_DEFAULT, &guard);
    for (;;) {
        size_t i, pending = 0;
        for (i = 0; i < n; i++)
            if (ts[i]->done_calls == 0)
                pending++;
        if (pending == 0 || expired)
            break;
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    }
    ev_timer_stop(EV_DEFAULT, &guard);
    if (expired)
        fail_msg("transactions not done within %.1fs; log:\n%s", secs,
                 fakehost.log);
}

static const char msg1[] =
    "Received: from x\n\tby y; Sun, 1 Jan 2026 00:00:00 +0000\n"
    "From: <sender@example.org>\n"
    "Subject: stage test\n"
    "\n"
    ".dotted line\n"
    "plain\r\n"
    "..\n"
    "end";

/* ---------------------------------------------------------------- */

static void test_stage_deliver_and_reuse(void **state)
{
    static const char *const verbose[] = {"-v", NULL};
    sink s = {0};
    rig r;
    sluice_txn *t, *t2;
    char *dump, *log;
    static const char added_name[] = "X-Sluice-Status";
    static const char added_raw[] = " clean; score=0.0";

    sink_start(&s, verbose);
    rig_init(&r, s.port, 5, 4, 4);
    t = txn_make("T1", msg1, 2);
    /* an edit made by an earlier stage: a header inserted at the top */
    memmove(&t->hdr[1], &t->hdr[0], t->nhdr * sizeof(t->hdr[0]));
    t->nhdr++;
    t->hdr[0].name.ptr = added_name;
    t->hdr[0].name.len = strlen(added_name);
    t->hdr[0].raw.ptr = added_raw;
    t->hdr[0].raw.len = strlen(added_raw);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->done_calls, 1);
    assert_int_equal(t->done_v, SLUICE_CONTINUE);
    assert_int_equal(t->st[0], SLUICE_RCPT_DONE);
    assert_int_equal(t->st[1], SLUICE_RCPT_DONE);
    assert_string_equal(t->reply[0], "250 2.0.0 Ok: delivered Ok");
    assert_int_equal(ctr.delivered_messages, 1);
    assert_int_equal(ctr.delivered_rcpts, 2);
    assert_int_equal(ctr.connections_opened, 1);
    dump = sink_dump(&s);
    assert_non_null(dump);
    if (getenv("DELIVER_TEST_SHOW"))
        fprintf(stderr, "%s", dump);
    assert_non_null(strstr(dump, "X-Mail-Args: <sender@example.org> "
                                 "BODY=8BITMIME\n"));
    assert_non_null(strstr(dump, "\nX-Sluice-Status: clean; score=0.0\n"
                                 "Received: from x\n\tby y; Sun, 1 Jan 2026 "
                                 "00:00:00 +0000\nFrom: <sender@example.org>\n"
                                 "Subject: stage test\n\n.dotted line\nplain\n"
                                 "..\nend\n"));
    free(dump);
    txn_free(&r, t);
    /* XFORWARD with what smtp-sink lists (NAME ADDR PROTO HELO) */
    log = sink_log(&s);
    assert_non_null(log);
    assert_non_null(strstr(log, "EHLO gw.sluice.test\n"));
    assert_non_null(strstr(log, "XFORWARD NAME=mail.client.example "
                                "ADDR=192.0.2.9 PROTO=ESMTP "
                                "HELO=client+20helo\n"));
    assert_null(strstr(log, "RSET"));
    free(log);

    /* the second message reuses the pooled connection */
    t2 = txn_make("T2", msg1, 1);
    assert_int_equal(txn_eom(&r, t2), SLUICE_PENDING);
    loop_until_done(&t2, 1, 5);
    assert_int_equal(t2->st[0], SLUICE_RCPT_DONE);
    assert_int_equal(ctr.connections_opened, 1);
    assert_int_equal(ctr.connections_reused, 1);
    txn_free(&r, t2);
    /* the first transaction ended cleanly: no RSET before the second */
    log = sink_log(&s);
    assert_null(strstr(log, "RSET"));
    free(log);

    /* a rejected transaction leaves the connection dirty: RSET first */
    t2 = txn_make("T3", msg1, 1);
    t2->sender.params = "SIZE=\x01";
    assert_int_equal(txn_eom(&r, t2), SLUICE_CONTINUE); /* refused locally */
    assert_int_equal(t2->st[0], SLUICE_RCPT_TEMPFAIL);
    txn_free(&r, t2);
    rig_fini(&r);
    sink_stop(&s);
}

static void test_stage_large_message(void **state)
{
    sink s = {0};
    rig r;
    sluice_txn *t;
    size_t n = 3 * 1024 * 1024, i;
    char *msg = malloc(n + 64), *dump;
    size_t o;

    o = (size_t)snprintf(msg, 64, "Subject: big\n\n");
    for (i = 0; o < n; i++) {
        /* lines of 71 chars; every 5th starts with a dot */
        int k;
        if (i % 5 == 0)
            msg[o++] = '.';
        for (k = 0; k < 70; k++)
            msg[o++] = (char)('a' + (i + (size_t)k) % 26);
        msg[o++] = '\n';
    }
    msg[o] = '\0';
    sink_start(&s, NULL);
    rig_init(&r, s.port, 20, 4, 4);
    t = txn_make("BIG", msg, 1);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    loop_until_done(&t, 1, 30);
    assert_int_equal(t->st[0], SLUICE_RCPT_DONE);
    dump = sink_dump(&s);
    assert_non_null(dump);
    /* the body came through byte for byte (after the dump's own headers) */
    assert_non_null(strstr(dump, msg + strlen("Subject: big\n\n")));
    free(dump);
    txn_free(&r, t);
    rig_fini(&r);
    sink_stop(&s);
    free(msg);
}

static void test_stage_replies(void **state)
{
    static const char *const frcpt[] = {"-f", "RCPT", NULL};
    static const char *const rdot[] = {"-r", ".", NULL};
    sink s = {0};
    rig r;
    sluice_txn *t;

    sink_start(&s, frcpt);
    rig_init(&r, s.port, 5, 4, 4);
    t = txn_make("R1", msg1, 2);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->st[0], SLUICE_RCPT_REJECTED);
    assert_int_equal(t->st[1], SLUICE_RCPT_REJECTED);
    assert_string_equal(t->reply[1], "500 5.3.0 Error: command failed");
    assert_int_equal(ctr.rejected_rcpts, 2);
    assert_int_equal(t->done_calls, 1);
    txn_free(&r, t);
    rig_fini(&r);
    sink_stop(&s);

    memset(&s, 0, sizeof(s));
    sink_start(&s, rdot);
    rig_init(&r, s.port, 5, 4, 4);
    t = txn_make("R2", msg1, 2);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->st[0], SLUICE_RCPT_TEMPFAIL);
    assert_string_equal(t->reply[0], "450 4.3.0 Error: command failed");
    assert_int_equal(ctr.tempfail_rcpts, 2);
    txn_free(&r, t);
    rig_fini(&r);
    sink_stop(&s);

    /* without PIPELINING, one command at a time, delivered */
    {
        static const char *const nopipe[] = {"-p", "-v", NULL};
        char *log;
        memset(&s, 0, sizeof(s));
        sink_start(&s, nopipe);
        rig_init(&r, s.port, 5, 4, 4);
        t = txn_make("R3", msg1, 3);
        assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
        loop_until_done(&t, 1, 5);
        assert_int_equal(t->st[0], SLUICE_RCPT_DONE);
        assert_int_equal(t->st[2], SLUICE_RCPT_DONE);
        txn_free(&r, t);
        log = sink_log(&s);
        assert_non_null(strstr(log, "RCPT TO:<three@example.org>"));
        free(log);
        rig_fini(&r);
        sink_stop(&s);
    }

    /* MAIL refused: every recipient gets that reply; the next
     * transaction on the same connection starts with RSET */
    {
        static const char *const fmail[] = {"-f", "MAIL", "-v", NULL};
        char *log;
        memset(&s, 0, sizeof(s));
        sink_start(&s, fmail);
        rig_init(&r, s.port, 5, 4, 4);
        t = txn_make("R4", msg1, 2);
        txn_eom(&r, t);
        loop_until_done(&t, 1, 5);
        assert_int_equal(t->st[0], SLUICE_RCPT_REJECTED);
        assert_string_equal(t->reply[1], "500 5.3.0 Error: command failed");
        txn_free(&r, t);
        t = txn_make("R5", msg1, 1);
        txn_eom(&r, t);
        loop_until_done(&t, 1, 5);
        assert_int_equal(t->st[0], SLUICE_RCPT_REJECTED);
        assert_int_equal(ctr.connections_reused, 1);
        txn_free(&r, t);
        log = sink_log(&s);
        assert_non_null(strstr(log, "RSET"));
        free(log);
        rig_fini(&r);
        sink_stop(&s);
    }
}

static void test_stage_refused(void **state)
{
    rig r;
    sluice_txn *t;
    int port = free_port(); /* nobody listens there */
    char want[128];

    rig_init(&r, port, 5, 4, 4);
    t = txn_make("C1", msg1, 2);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    if (t->done_calls == 0)
        loop_until_done(&t, 1, 5);
    assert_int_equal(t->done_calls, 1);
    snprintf(want, sizeof(want),
             "451 4.4.1 reinjection to 127.0.0.1:%d failed: connect: "
             "Connection refused",
             port);
    assert_int_equal(t->st[0], SLUICE_RCPT_TEMPFAIL);
    assert_string_equal(t->reply[0], want);
    assert_string_equal(t->reply[1], want);
    assert_int_equal(ctr.tempfail_rcpts, 2);
    assert_non_null(strstr(fakehost.log, "Connection refused"));
    txn_free(&r, t);
    rig_fini(&r);
}

static void test_stage_dead_pooled_connection(void **state)
{
    sink s = {0};
    rig r;
    sluice_txn *t;

    sink_start(&s, NULL);
    rig_init(&r, s.port, 5, 4, 4);
    t = txn_make("D1", msg1, 1);
    txn_eom(&r, t);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->st[0], SLUICE_RCPT_DONE);
    txn_free(&r, t);
    /* the server goes away and comes back while the loop does not run:
     * the pooled connection is dead, and nobody noticed yet */
    sink_kill(&s);
    sink_start(&s, NULL);
    t = txn_make("D2", msg1, 2);
    txn_eom(&r, t);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->st[0], SLUICE_RCPT_DONE);
    assert_int_equal(t->st[1], SLUICE_RCPT_DONE);
    assert_int_equal(ctr.connections_reused, 1);
    assert_int_equal(ctr.connections_opened, 2);
    assert_non_null(strstr(fakehost.log, "retrying on a fresh one"));
    txn_free(&r, t);
    rig_fini(&r);
    sink_stop(&s);
}

static void test_stage_queueing(void **state)
{
    sink s = {0};
    rig r;
    sluice_txn *ts[6];
    size_t i;

    sink_start(&s, NULL);
    rig_init(&r, s.port, 5, 2, 1);
    for (i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof(id), "Q%zu", i);
        ts[i] = txn_make(id, msg1, 1 + i % 3);
        assert_int_equal(txn_eom(&r, ts[i]), SLUICE_PENDING);
    }
    loop_until_done(ts, 6, 10);
    for (i = 0; i < 6; i++) {
        size_t k;
        assert_int_equal(ts[i]->done_calls, 1);
        for (k = 0; k < ts[i]->nrcpt; k++)
            assert_int_equal(ts[i]->st[k], SLUICE_RCPT_DONE);
        txn_free(&r, ts[i]);
    }
    assert_true(ctr.connections_opened <= 2);
    assert_int_equal(ctr.connections_opened + ctr.connections_reused, 6);
    assert_int_equal(ctr.delivered_messages, 6);
    rig_fini(&r);
    sink_stop(&s);
}

/* A server that accepts (in the kernel backlog) but never says a word. */
static int mute_server(int *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_stage_timeout_and_abort(void **state)
{
    rig r;
    sluice_txn *t;
    int port, lfd = mute_server(&port);

    rig_init(&r, port, 0.3, 4, 4);
    t = txn_make("TO", msg1, 1);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    loop_until_done(&t, 1, 5);
    assert_int_equal(t->st[0], SLUICE_RCPT_TEMPFAIL);
    assert_non_null(strstr(t->reply[0], "failed: timeout (waiting for the "
                                        "greeting)"));
    txn_free(&r, t);

    /* the engine gives up first: on_abort, and no done() afterwards */
    t = txn_make("AB", msg1, 1);
    assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
    ev_run(EV_DEFAULT, EVRUN_NOWAIT);
    sluice_stage_v1.on_abort(r.inst, t, t->slot);
    assert_int_equal(fakehost_live(), 0); /* its connection is gone */
    {
        struct timespec ts = {0, 400 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ev_run(EV_DEFAULT, EVRUN_NOWAIT);
    }
    assert_int_equal(t->done_calls, 0);
    assert_int_equal(t->st[0], SLUICE_RCPT_OPEN);
    txn_free(&r, t);
    rig_fini(&r);
    close(lfd);
}

/* Queued transactions when the next hop dies: every one temp-fails once. */
static void test_stage_queue_failures(void **state)
{
    rig r;
    sluice_txn *ts[8];
    int port, lfd = mute_server(&port);
    size_t i;

    rig_init(&r, port, 0.5, 2, 2);
    for (i = 0; i < 8; i++) {
        char id[8];
        snprintf(id, sizeof(id), "F%zu", i);
        ts[i] = txn_make(id, msg1, 2);
        assert_int_equal(txn_eom(&r, ts[i]), SLUICE_PENDING);
    }
    assert_int_equal(ctr.connections_opened, 2);
    ev_run(EV_DEFAULT, EVRUN_NOWAIT);
    close(lfd); /* the two connected ones are reset, the rest refused */
    loop_until_done(ts, 8, 5);
    for (i = 0; i < 8; i++) {
        assert_int_equal(ts[i]->done_calls, 1);
        assert_int_equal(ts[i]->st[0], SLUICE_RCPT_TEMPFAIL);
        assert_int_equal(ts[i]->st[1], SLUICE_RCPT_TEMPFAIL);
        assert_memory_equal(ts[i]->reply[0], "451 4.4.1 reinjection to ", 25);
        txn_free(&r, ts[i]);
    }
    assert_int_equal(ctr.tempfail_rcpts, 16);
    assert_int_equal(ctr.delivered_rcpts, 0);
    rig_fini(&r);
}

#ifndef DELIVER_CORPUS
#error "DELIVER_CORPUS: the corpus path comes from tests/unit/deliver.cmake"
#endif

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The body as smtp-sink dumps it: CRLF as LF, a final line end added, and
 * the empty line smtp-sink writes after each message. */
static char *dumped_form(const char *b, size_t n, size_t *outlen)
{
    char *o = malloc(n + 3);
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n')
            continue;
        o[k++] = b[i];
    }
    if (k > 0 && o[k - 1] == '\r')
        o[k - 1] = '\n';
    if (k == 0 || o[k - 1] != '\n')
        o[k++] = '\n';
    o[k++] = '\n';
    *outlen = k;
    return o;
}

/* Real messages, streamed through one reused connection, arrive with
 * their bodies intact (sample of each corpus directory). */
static void test_stage_corpus(void **state)
{
    static const char *const sub[] = {"ham", "spam"};
    sink s = {0};
    rig r;
    size_t d, total = 0;

    sink_start(&s, NULL);
    rig_init(&r, s.port, 10, 1, 1);
    for (d = 0; d < 2; d++) {
        char dir[512], *names[4096];
        size_t n = 0, i;
        DIR *dp;
        struct dirent *e;

        snprintf(dir, sizeof(dir), "%s/%s", DELIVER_CORPUS, sub[d]);
        dp = opendir(dir);
        if (dp == NULL)
            fail_msg("corpus directory %s missing", dir);
        while ((e = readdir(dp)) != NULL && n < 4096)
            if (e->d_name[0] != '.')
                names[n++] = strdup(e->d_name);
        closedir(dp);
        qsort(names, n, sizeof(names[0]), name_cmp);
        for (i = 0; i < n; i++) {
            /* every n/25th file: a spread sample, 25 per directory */
            if (n >= 25 && i % (n / 25) == 0 && i / (n / 25) < 25) {
                char path[1024], *msg, *dump, *want;
                FILE *fp;
                long len;
                size_t wl, dl;
                sluice_txn *t;

                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                fp = fopen(path, "rb");
                assert_non_null(fp);
                fseek(fp, 0, SEEK_END);
                len = ftell(fp);
                rewind(fp);
                msg = malloc((size_t)len + 1);
                assert_int_equal(fread(msg, 1, (size_t)len, fp), (size_t)len);
                fclose(fp);
                t = txn_make_len(names[i], msg, (size_t)len, 1);
                txn_eom(&r, t);
                loop_until_done(&t, 1, 10);
                if (t->st[0] != SLUICE_RCPT_DONE)
                    fail_msg("%s: %s", path, t->reply[0]);
                dump = sink_dump(&s);
                assert_non_null(dump);
                want = dumped_form(msg + t->body_off, (size_t)len - t->body_off,
                                   &wl);
                dl = strlen(dump);
                if (memchr(want, '\0', wl) == NULL &&
                    (dl < wl || memcmp(dump + dl - wl, want, wl) != 0)) {
                    if (getenv("DELIVER_TEST_SHOW")) {
                        FILE *o = fopen("/tmp/deliver-dump.txt", "wb");
                        fwrite(dump, 1, dl, o);
                        fclose(o);
                        o = fopen("/tmp/deliver-want.txt", "wb");
                        fwrite(want, 1, wl, o);
                        fclose(o);
                    }
                    fail_msg("%s: body differs after reinjection", path);
                }
                free(want);
                free(dump);
                txn_free(&r, t);
                free(msg);
                total++;
                /* one dump at a time */
                {
                    DIR *dd = opendir(s.dir);
                    struct dirent *de;
                    while (dd && (de = readdir(dd)) != NULL) {
                        char pp[600];
                        if (de->d_name[0] == '.')
                            continue;
                        snprintf(pp, sizeof(pp), "%s/%s", s.dir, de->d_name);
                        unlink(pp);
                    }
                    if (dd)
                        closedir(dd);
                }
            }
        }
        for (i = 0; i < n; i++)
            free(names[i]);
    }
    assert_int_equal(total, 50);
    assert_int_equal(ctr.delivered_messages, 50);
    assert_int_equal(ctr.connections_opened, 1);
    rig_fini(&r);
    sink_stop(&s);
}

/* next_hop as unix:/path and [::1]:port; a bad next_hop fails init. */
static void test_stage_next_hop_forms(void **state)
{
    static const char *const fam[] = {"unix", "v6"};
    static const char *const bad[] = {
        "127.0.0.1",     "host:", "[::1]10026",   "[::1:25",
        "1.2.3.4:99999", "unix:", "127.0.0.1:25x"};
    size_t f;

    for (f = 0; f < 2; f++) {
        sink s = {0};
        rig r;
        sluice_txn *t;
        char hop[160];

        snprintf(s.family, sizeof(s.family), "%s", fam[f]);
        sink_start(&s, NULL);
        if (f == 0)
            snprintf(hop, sizeof(hop), "unix:%s", s.unix_path);
        else
            snprintf(hop, sizeof(hop), "[::1]:%d", s.port);
        rig_init_hop(&r, hop, 5, 4, 4);
        t = txn_make("H", msg1, 1);
        assert_int_equal(txn_eom(&r, t), SLUICE_PENDING);
        loop_until_done(&t, 1, 5);
        if (t->st[0] != SLUICE_RCPT_DONE)
            fail_msg("%s: %s", hop, t->reply[0]);
        txn_free(&r, t);
        rig_fini(&r);
        sink_stop(&s);
    }
    for (f = 0; f < sizeof(bad) / sizeof(bad[0]); f++) {
        sluice_host h = fake_host();
        void *conf = conf_make(bad[f], 5, 4, 4), *inst = NULL;
        fakehost_log_clear();
        if (sluice_stage_v1.init(NULL, &h, conf, &inst) != -1)
            fail_msg("next_hop '%s' was accepted", bad[f]);
        assert_non_null(strstr(fakehost.log, "next_hop"));
        free(conf);
    }
}

static void test_stage_quarantine_and_stop(void **state)
{
    sink s = {0};
    rig r;
    sluice_txn *t;

    sink_start(&s, NULL);
    rig_init(&r, s.port, 5, 4, 4);
    t = txn_make("QU", msg1, 1);
    t->disposition = SLUICE_QUARANTINE;
    assert_int_equal(txn_eom(&r, t), SLUICE_CONTINUE);
    assert_int_equal(t->st[0], SLUICE_RCPT_OPEN);
    assert_int_equal(ctr.connections_opened, 0);
    txn_free(&r, t);

    t = txn_make("ST", msg1, 1);
    txn_eom(&r, t);
    loop_until_done(&t, 1, 5);
    assert_int_equal(fakehost_live(), 2); /* the pooled connection */
    txn_free(&r, t);
    /* a graceful stop closes the pool; then the loop has nothing left */
    sluice_stage_v1.worker_stop(r.inst, 1);
    assert_int_equal(fakehost_live(), 0);
    ev_run(EV_DEFAULT, 0); /* returns: no watchers left */
    rig_fini(&r);
    sink_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_deliver_and_reuse),
        cmocka_unit_test(test_stage_large_message),
        cmocka_unit_test(test_stage_replies),
        cmocka_unit_test(test_stage_refused),
        cmocka_unit_test(test_stage_dead_pooled_connection),
        cmocka_unit_test(test_stage_queueing),
        cmocka_unit_test(test_stage_timeout_and_abort),
        cmocka_unit_test(test_stage_queue_failures),
        cmocka_unit_test(test_stage_corpus),
        cmocka_unit_test(test_stage_next_hop_forms),
        cmocka_unit_test(test_stage_quarantine_and_stop),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
