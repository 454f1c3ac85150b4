/*
 * test_blocklist_stage.c - runs the blocklist stage (plugins/blocklist/
 * blocklist.c) on a libev loop behind a small fake host table, against a
 * fake sluice-blocklistd on the same loop that answers, holds its answers
 * or hangs up on demand: symbols and verdicts (score, reject 554/550),
 * the phase fallback (CONNECT without an address, then MAIL), a message
 * aborted while its query is on the wire (the late answer must go
 * nowhere and the next one to its own message), the query timeout, a
 * daemon that is not there, on_unavailable tempfail, and worker_stop
 * (graceful and not) freeing every watcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sluice/stage.h>

#include "fakehost.h"

extern const struct sluice_stage sluice_stage_v1;

/* ---------------------------------------------------------------- */
/* The fake engine: transactions (the loop part is fakehost.c)      */

struct sluice_txn {
    sluice_client client;
    int done_calls;
    sluice_verdict done_v;
    char syms[512];
    char code[8];
    void *slot;
};

static void fk_done(sluice_txn *t, sluice_verdict v)
{
    t->done_calls++;
    t->done_v = v;
}

static const sluice_client *fk_client(sluice_txn *t)
{
    return &t->client;
}

static void fk_symbol_add(sluice_txn *t, const char *name, double score,
                          const char *fmt, ...) SLUICE_PRINTF(4, 5);
static void fk_symbol_add(sluice_txn *t, const char *name, double score,
                          const char *fmt, ...)
{
    size_t n = strlen(t->syms);
    snprintf(t->syms + n, sizeof(t->syms) - n, "%s%s(%.0f)", n ? "," : "", name,
             score);
}

static void fk_set_reply(sluice_txn *t, const char *code, const char *xcode,
                         const char *text)
{
    snprintf(t->code, sizeof(t->code), "%s", code);
}

static sluice_host fake_host(void)
{
    sluice_host h;

    fakehost_init(&h); /* the tests look at verdicts and symbols, not logs */
    h.done = fk_done;
    h.client = fk_client;
    h.symbol_add = fk_symbol_add;
    h.set_reply = fk_set_reply;
    return h;
}

static sluice_host host;

/* The conf struct is private to blocklist.c: fill it through the
 * directive table, defaults first, the way the engine does. */
static void conf_set(char *conf, const char *name, const char *val)
{
    const sluice_directive *d;

    for (d = sluice_stage_v1.directives; d->name; d++) {
        char *f = conf + d->offset;
        if (strcmp(d->name, name) != 0)
            continue;
        switch (d->type) {
        case SLUICE_CONF_STRING: {
            char *s = strdup(val);
            free(*(char **)f);
            memcpy(f, &s, sizeof(s));
            return;
        }
        case SLUICE_CONF_DOUBLE:
        case SLUICE_CONF_DURATION: {
            double v = strtod(val, NULL);
            if (strstr(val, "ms"))
                v /= 1000.0;
            memcpy(f, &v, sizeof(v));
            return;
        }
        case SLUICE_CONF_ENUM: {
            int i;
            for (i = 0; d->choices[i]; i++)
                if (strcmp(d->choices[i], val) == 0) {
                    memcpy(f, &i, sizeof(i));
                    return;
                }
            fail_msg("%s: bad value %s", name, val);
        }
        case SLUICE_CONF_STRLIST:
            return; /* none in these tests */
        default:
            fail_msg("%s: unhandled type", name);
        }
    }
    fail_msg("no directive %s", name);
}

static char *conf_make(int port)
{
    const sluice_directive *d;
    char *conf = calloc(1, sluice_stage_v1.conf_size);
    char srv[64];

    for (d = sluice_stage_v1.directives; d->name; d++)
        if (d->dflt != NULL)
            conf_set(conf, d->name, d->dflt);
    snprintf(srv, sizeof(srv), "127.0.0.1:%d", port);
    conf_set(conf, "server", srv);
    conf_set(conf, "query_timeout", "300ms");
    return conf;
}

static void conf_free(char *conf)
{
    const sluice_directive *d;

    for (d = sluice_stage_v1.directives; d->name; d++)
        if (d->type == SLUICE_CONF_STRING)
            free(*(char **)(conf + d->offset));
    free(conf);
}

/* ---------------------------------------------------------------- */
/* The fake daemon                                                  */

enum { FD_ANSWER, FD_HOLD, FD_HANGUP };

typedef struct fake_daemon {
    int lfd, cfd, mode, port;
    ev_io lw, cw;
    char held[4096];
    size_t nheld;
} fake_daemon;

static fake_daemon fd_;

/* "Q id ip": listed when ip is in 192.0.2.0/24 (or its mapped form) */
static void fd_answer_lines(char *buf, size_t n)
{
    char out[8192];
    size_t o = 0, off = 0;

    while (off < n) {
        char *nl = memchr(buf + off, '\n', n - off);
        char id[64], ip[64];
        if (nl == NULL)
            break;
        *nl = '\0';
        if (sscanf(buf + off, "Q %63s %63s", id, ip) == 2)
            o += (size_t)snprintf(out + o, sizeof(out) - o, "A %s %s\n", id,
                                  strstr(ip, "192.0.2.") ? "spam" : "-");
        off = (size_t)(nl - buf) + 1;
    }
    if (o > 0 && write(fd_.cfd, out, o) != (ssize_t)o)
        fail_msg("fake daemon: short write");
}

static void fd_client_cb(struct ev_loop *l, ev_io *w, int re)
{
    char buf[4096];
    ssize_t n = read(fd_.cfd, buf, sizeof(buf));

    if (n <= 0 || fd_.mode == FD_HANGUP) {
        ev_io_stop(l, w);
        close(fd_.cfd);
        fd_.cfd = -1;
        return;
    }
    if (fd_.mode == FD_HOLD) {
        if (fd_.nheld + (size_t)n <= sizeof(fd_.held)) {
            memcpy(fd_.held + fd_.nheld, buf, (size_t)n);
            fd_.nheld += (size_t)n;
        }
        return;
    }
    fd_answer_lines(buf, (size_t)n);
}

static void fd_accept_cb(struct ev_loop *l, ev_io *w, int re)
{
    int c = accept(fd_.lfd, NULL, NULL);

    if (c < 0)
        return;
    if (fd_.cfd >= 0) {
        ev_io_stop(l, &fd_.cw);
        close(fd_.cfd);
    }
    fd_.cfd = c;
    ev_io_init(&fd_.cw, fd_client_cb, c, EV_READ);
    ev_io_start(l, &fd_.cw);
}

static void fd_start(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(&fd_, 0, sizeof(fd_));
    fd_.cfd = -1;
    fd_.lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd_.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd_.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd_.lfd, 8), 0);
    getsockname(fd_.lfd, (struct sockaddr *)&sa, &sl);
    fd_.port = ntohs(sa.sin_port);
    ev_io_init(&fd_.lw, fd_accept_cb, fd_.lfd, EV_READ);
    ev_io_start(EV_DEFAULT, &fd_.lw);
}

/* Answers what was held, and answers from now on. */
static void fd_release(void)
{
    fd_.mode = FD_ANSWER;
    fd_answer_lines(fd_.held, fd_.nheld);
    fd_.nheld = 0;
}

static void fd_stop(void)
{
    ev_io_stop(EV_DEFAULT, &fd_.lw);
    if (fd_.cfd >= 0) {
        ev_io_stop(EV_DEFAULT, &fd_.cw);
        close(fd_.cfd);
    }
    close(fd_.lfd);
}

/* ---------------------------------------------------------------- */
/* Helpers                                                          */

typedef struct rig {
    char *conf;
    void *inst;
} rig;

static void run_for(double secs)
{
    ev_tstamp end = ev_time() + secs;

    while (ev_time() < end)
        ev_run(EV_DEFAULT, EVRUN_ONCE | EVRUN_NOWAIT), usleep(1000);
}

static void run_until_done(sluice_txn *t, double secs)
{
    ev_tstamp end = ev_time() + secs;

    while (t->done_calls == 0 && ev_time() < end)
        ev_run(EV_DEFAULT, EVRUN_ONCE | EVRUN_NOWAIT), usleep(500);
}

static void rig_start(rig *r, int port, const char *k1, const char *v1)
{
    r->conf = conf_make(port);
    if (k1)
        conf_set(r->conf, k1, v1);
    host = fake_host();
    assert_int_equal(sluice_stage_v1.init(NULL, &host, r->conf, &r->inst), 0);
    assert_int_equal(sluice_stage_v1.worker_start(r->inst), 0);
    run_for(0.05); /* connected */
}

static void rig_stop(rig *r, int graceful)
{
    sluice_stage_v1.worker_stop(r->inst, graceful);
    run_for(0.05);
    assert_int_equal(fakehost_live(), 0);
    sluice_stage_v1.fini(r->inst);
    conf_free(r->conf);
}

static sluice_txn *txn_make(const char *addr)
{
    sluice_txn *t = calloc(1, sizeof(*t));

    t->client.size = sizeof(t->client);
    t->client.addr = addr;
    t->client.name = t->client.helo = t->client.proto = t->client.ident = "";
    t->slot = calloc(1, sluice_stage_v1.slot_size);
    return t;
}

static void txn_free(rig *r, sluice_txn *t)
{
    sluice_stage_v1.on_close(r->inst, t, t->slot);
    free(t->slot);
    free(t);
}

static sluice_verdict hook(rig *r, sluice_phase p, sluice_txn *t)
{
    return sluice_stage_v1.on_phase[p](r->inst, t, t->slot);
}

/* ---------------------------------------------------------------- */
/* Tests                                                            */

static void test_listed_unlisted(void **state)
{
    rig r;
    sluice_txn *a, *b, *c;

    fd_start();
    rig_start(&r, fd_.port, NULL, NULL);
    a = txn_make("192.0.2.5");
    b = txn_make("203.0.113.1");
    c = txn_make("");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_PENDING);
    /* no address yet: nothing at CONNECT, asked at MAIL */
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, c), SLUICE_CONTINUE);
    c->client.addr = "IPv6:::ffff:192.0.2.9";
    assert_int_equal(hook(&r, SLUICE_PHASE_MAIL, c), SLUICE_PENDING);
    run_until_done(a, 2);
    run_until_done(b, 2);
    run_until_done(c, 2);
    assert_int_equal(a->done_calls, 1);
    assert_int_equal(a->done_v, SLUICE_CONTINUE);
    assert_string_equal(a->syms, "BLOCKLIST_SPAM(10)");
    assert_int_equal(b->done_calls, 1);
    assert_string_equal(b->syms, "");
    assert_int_equal(c->done_calls, 1);
    assert_string_equal(c->syms, "BLOCKLIST_SPAM(10)");
    /* asked once: later phases pass */
    assert_int_equal(hook(&r, SLUICE_PHASE_EOM, a), SLUICE_CONTINUE);
    txn_free(&r, a);
    txn_free(&r, b);
    txn_free(&r, c);
    rig_stop(&r, 1);
    fd_stop();
}

static void test_reject(void **state)
{
    rig r;
    sluice_txn *a, *b;

    fd_start();
    rig_start(&r, fd_.port, "action", "reject");
    a = txn_make("192.0.2.5");
    b = txn_make("192.0.2.6");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    b->client.addr = "";
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_CONTINUE);
    b->client.addr = "192.0.2.6";
    assert_int_equal(hook(&r, SLUICE_PHASE_MAIL, b), SLUICE_PENDING);
    run_until_done(a, 2);
    run_until_done(b, 2);
    assert_int_equal(a->done_v, SLUICE_REJECT);
    assert_string_equal(a->code, "554");
    assert_int_equal(b->done_v, SLUICE_REJECT);
    assert_string_equal(b->code, "550");
    txn_free(&r, a);
    txn_free(&r, b);
    rig_stop(&r, 1);
    fd_stop();
}

static void test_abort_then_late_answer(void **state)
{
    rig r;
    sluice_txn *a, *b;

    fd_start();
    rig_start(&r, fd_.port, "query_timeout", "2s");
    fd_.mode = FD_HOLD;
    a = txn_make("192.0.2.5");
    b = txn_make("203.0.113.1");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_PENDING);
    run_for(0.05);
    /* a's client goes away while its query is on the wire */
    sluice_stage_v1.on_abort(r.inst, a, a->slot);
    txn_free(&r, a);
    fd_release();
    run_until_done(b, 2);
    assert_int_equal(b->done_calls, 1);
    assert_string_equal(b->syms, ""); /* b's answer, not a's */
    txn_free(&r, b);
    rig_stop(&r, 1);
    fd_stop();
}

static void test_timeout(void **state)
{
    rig r;
    sluice_txn *a, *b;
    ev_tstamp t0;

    fd_start();
    rig_start(&r, fd_.port, NULL, NULL);
    fd_.mode = FD_HOLD;
    a = txn_make("192.0.2.5");
    t0 = ev_time();
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    run_until_done(a, 3);
    assert_int_equal(a->done_calls, 1);
    assert_int_equal(a->done_v, SLUICE_CONTINUE);
    assert_string_equal(a->syms, "BLOCKLIST_UNAVAILABLE(0)");
    assert_true(ev_time() - t0 < 1.0);
    /* back to normal: the stage reconnects and is answered again */
    fd_.mode = FD_ANSWER;
    fd_.nheld = 0;
    run_for(0.2);
    b = txn_make("192.0.2.6");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_PENDING);
    run_until_done(b, 2);
    assert_string_equal(b->syms, "BLOCKLIST_SPAM(10)");
    txn_free(&r, a);
    txn_free(&r, b);
    rig_stop(&r, 0);
    fd_stop();
}

static void test_daemon_absent(void **state)
{
    rig r;
    sluice_txn *a, *b;
    int port;

    fd_start(); /* only to find a free port; nobody listens on it then */
    port = fd_.port;
    fd_stop();
    rig_start(&r, port, NULL, NULL);
    a = txn_make("192.0.2.5");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_CONTINUE);
    assert_string_equal(a->syms, "BLOCKLIST_UNAVAILABLE(0)");
    txn_free(&r, a);
    rig_stop(&r, 1);
    rig_start(&r, port, "on_unavailable", "tempfail");
    b = txn_make("192.0.2.5");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_TEMPFAIL);
    assert_string_equal(b->code, "451");
    txn_free(&r, b);
    rig_stop(&r, 1);
}

static void test_hangup_and_stop(void **state)
{
    rig r;
    sluice_txn *a, *b;

    fd_start();
    rig_start(&r, fd_.port, NULL, NULL);
    fd_.mode = FD_HANGUP;
    a = txn_make("192.0.2.5");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    run_until_done(a, 2);
    assert_string_equal(a->syms, "BLOCKLIST_UNAVAILABLE(0)");
    /* graceful stop with a query in flight: it is answered first */
    fd_.mode = FD_HOLD;
    run_for(0.1);
    b = txn_make("203.0.113.9");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, b), SLUICE_PENDING);
    sluice_stage_v1.worker_stop(r.inst, 1);
    assert_int_equal(b->done_calls, 0);
    fd_release();
    run_until_done(b, 2);
    assert_int_equal(b->done_calls, 1);
    assert_string_equal(b->syms, "");
    assert_int_equal(fakehost_live(), 0); /* closed after the last answer */
    txn_free(&r, a);
    txn_free(&r, b);
    rig_stop(&r, 1);
    fd_stop();
}

static void test_stop_now_with_pending(void **state)
{
    rig r;
    sluice_txn *a;

    fd_start();
    rig_start(&r, fd_.port, NULL, NULL);
    fd_.mode = FD_HOLD;
    a = txn_make("192.0.2.5");
    assert_int_equal(hook(&r, SLUICE_PHASE_CONNECT, a), SLUICE_PENDING);
    run_for(0.02);
    sluice_stage_v1.worker_stop(r.inst, 0);
    assert_int_equal(a->done_calls, 1);
    assert_string_equal(a->syms, "BLOCKLIST_UNAVAILABLE(0)");
    txn_free(&r, a);
    rig_stop(&r, 0);
    fd_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_unlisted),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_abort_then_late_answer),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_daemon_absent),
        cmocka_unit_test(test_hangup_and_stop),
        cmocka_unit_test(test_stop_now_with_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
