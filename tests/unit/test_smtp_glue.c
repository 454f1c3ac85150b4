/*
 * test_smtp_glue.c - the smtp ingress stage (plugins/smtp/smtp.c) end to
 * end over real loopback sockets, against a fake host table: a libev loop
 * plus a scripted chain that answers every phase asynchronously (from a
 * timer, never inside txn_run) with verdicts chosen by the addresses:
 *
 *   sender containing "reject" / "tempfail"   MAIL refused
 *   recipient containing "nobody"             RCPT refused (550)
 *   recipient containing "bounce" / "later"   settled REJECTED / TEMPFAIL
 *                                             at EOM; others DONE
 *
 * A client thread talks the protocol (pipelined) and records the replies;
 * the loop runs in the main thread, which checks the transcript and what
 * the fake engine saw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sluice/stage.h>

#include "fakehost.h"

extern const struct sluice_stage sluice_stage_v1;

/* ---------------------------------------------------------------- */
/* The fake engine: the chain (the loop part is fakehost.c)          */

typedef struct fk_rcpt {
    char *addr, *params, *reply;
    sluice_rcpt_state st;
} fk_rcpt;

struct sluice_txn {
    char id[16];
    char *caddr, *cname, *chelo, *cproto, *cident;
    int cport;
    char *sender, *sparams;
    fk_rcpt r[64];
    size_t nr;
    char *msg;
    size_t mlen;
    ev_timer t;
    sluice_run_cb cb;
    void *arg;
    sluice_phase phase;
    sluice_verdict v;
    char reply[3][128];
    int running;
};

static struct ev_loop *loop;
static int n_new, n_free, n_eom, n_aborted;
static int small_sndbuf; /* shrink the server side of new sessions */
static char last_msg[8192];
static size_t last_mlen;
static char last_client[512], last_sender[256];
static long long c_sessions, c_refused, c_errors, c_timeouts;
static int txn_seq;

/* fakehost's io_new(), shrinking the send buffer of a session first */
static sluice_io *fh_io_new(sluice_ctx *ctx, int fd, sluice_io_cb cb, void *arg)
{
    int acc = 0, sz = 4096;
    socklen_t len = sizeof(acc);

    if (small_sndbuf &&
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && !acc)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    return fakehost_default()->io_new(ctx, fd, cb, arg);
}

static void fh_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
    if (strcmp(name, "sessions") == 0)
        c_sessions += n;
    else if (strcmp(name, "sessions_refused") == 0)
        c_refused += n;
    else if (strcmp(name, "protocol_errors") == 0)
        c_errors += n;
    else if (strcmp(name, "timeouts") == 0)
        c_timeouts += n;
}

static sluice_txn *fh_txn_new(sluice_ctx *ctx)
{
    sluice_txn *t = calloc(1, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "TX%d", ++txn_seq);
    n_new++;
    return t;
}

static void fh_txn_free(sluice_txn *t)
{
    size_t i;

    if (t->running) {
        ev_timer_stop(loop, &t->t);
        n_aborted++;
    }
    free(t->caddr);
    free(t->cname);
    free(t->chelo);
    free(t->cproto);
    free(t->cident);
    free(t->sender);
    free(t->sparams);
    for (i = 0; i < t->nr; i++) {
        free(t->r[i].addr);
        free(t->r[i].params);
        free(t->r[i].reply);
    }
    free(t->msg);
    n_free++;
    free(t);
}

static void fh_txn_set_client(sluice_txn *t, const sluice_client *c)
{
    t->caddr = strdup(c->addr);
    t->cname = strdup(c->name);
    t->chelo = strdup(c->helo);
    t->cproto = strdup(c->proto);
    t->cident = strdup(c->ident);
    t->cport = c->port;
}

static int fh_txn_set_sender(sluice_txn *t, const char *a, const char *p)
{
    t->sender = strdup(a);
    t->sparams = strdup(p);
    return 0;
}

static int fh_txn_add_rcpt(sluice_txn *t, const char *a, const char *p)
{
    if (t->nr == 64)
        return -1;
    t->r[t->nr].addr = strdup(a);
    t->r[t->nr].params = strdup(p);
    t->r[t->nr].st = SLUICE_RCPT_OPEN;
    t->nr++;
    return 0;
}

static void fh_txn_drop_rcpt(sluice_txn *t)
{
    assert_true(t->nr > 0);
    t->nr--;
    free(t->r[t->nr].addr);
    free(t->r[t->nr].params);
}

static int fh_txn_write(sluice_txn *t, const void *p, size_t n)
{
    t->msg = realloc(t->msg, t->mlen + n);
    memcpy(t->msg + t->mlen, p, n);
    t->mlen += n;
    return 0;
}

static void fh_refuse(sluice_txn *t, sluice_verdict v, const char *code,
                      const char *xcode, const char *text)
{
    t->v = v;
    snprintf(t->reply[0], sizeof(t->reply[0]), "%s", code);
    snprintf(t->reply[1], sizeof(t->reply[1]), "%s", xcode);
    snprintf(t->reply[2], sizeof(t->reply[2]), "%s", text);
}

static void fh_run_fire(struct ev_loop *l, ev_timer *w, int re)
{
    sluice_txn *t = w->data;
    size_t i;

    t->running = 0;
    t->v = SLUICE_CONTINUE;
    switch (t->phase) {
    case SLUICE_PHASE_MAIL:
        snprintf(last_client, sizeof(last_client),
                 "addr=%s name=%s helo=%s proto=%s ident=%s port=%d", t->caddr,
                 t->cname, t->chelo, t->cproto, t->cident, t->cport);
        snprintf(last_sender, sizeof(last_sender), "<%s> [%s]", t->sender,
                 t->sparams);
        if (strstr(t->sender, "reject"))
            fh_refuse(t, SLUICE_REJECT, "550", "5.7.1",
                      "sender refused by test");
        else if (strstr(t->sender, "weird")) /* a broken stage reply */
            fh_refuse(t, SLUICE_REJECT, "250", "2.0.0", "odd");
        else if (strstr(t->sender, "tempfail"))
            fh_refuse(t, SLUICE_TEMPFAIL, "451", "4.7.1", "not now");
        break;
    case SLUICE_PHASE_RCPT:
        if (strstr(t->r[t->nr - 1].addr, "nobody"))
            fh_refuse(t, SLUICE_REJECT, "550", "5.1.1", "no such user");
        break;
    default:
        n_eom++;
        last_mlen = t->mlen < sizeof(last_msg) ? t->mlen : sizeof(last_msg);
        memcpy(last_msg, t->msg ? t->msg : "", last_mlen);
        for (i = 0; i < t->nr; i++) {
            if (strstr(t->r[i].addr, "bounce")) {
                t->r[i].st = SLUICE_RCPT_REJECTED;
                t->r[i].reply = strdup("554 5.7.1 refused at end");
            } else if (strstr(t->r[i].addr, "later")) {
                t->r[i].st = SLUICE_RCPT_TEMPFAIL;
                t->r[i].reply = strdup("451 4.7.1 try later");
            } else {
                t->r[i].st = SLUICE_RCPT_DONE;
                t->r[i].reply = strdup("250 2.0.0 Ok: queued as FAKE");
            }
        }
        break;
    }
    t->cb(t, t->v, t->arg); /* may free t */
}

static void fh_txn_run(sluice_txn *t, sluice_phase ph, sluice_run_cb cb,
                       void *arg)
{
    assert_false(t->running);
    t->phase = ph;
    t->cb = cb;
    t->arg = arg;
    t->running = 1;
    ev_timer_init(&t->t, fh_run_fire,
                  (t->sender && strstr(t->sender, "slow")) ? 0.3 : 0.005, 0.);
    t->t.data = t;
    ev_timer_start(loop, &t->t);
}

static void fh_txn_reply(sluice_txn *t, const char **c, const char **x,
                         const char **tx)
{
    *c = t->reply[0];
    *x = t->reply[1];
    *tx = t->reply[2];
}

static size_t fh_rcpt_count(sluice_txn *t)
{
    return t->nr;
}

static sluice_rcpt_state fh_rcpt_state(sluice_txn *t, size_t i,
                                       const char **reply)
{
    *reply = t->r[i].reply;
    return t->r[i].st;
}

static const char *fh_txn_id(sluice_txn *t)
{
    return t->id;
}

static size_t fh_max_size(sluice_ctx *ctx)
{
    return 4096;
}

static const char *fh_hostname(sluice_ctx *ctx)
{
    return "gw.test";
}

static sluice_host fake_host;

static void fake_host_init(void)
{
    fakehost_init(&fake_host);
    fakehost.verbose = getenv("SMTP_GLUE_VERBOSE") != NULL;
    fakehost.txn_label = fh_txn_id;
    fake_host.io_new = fh_io_new;
    fake_host.counter_add = fh_counter_add;
    fake_host.txn_new = fh_txn_new;
    fake_host.txn_free = fh_txn_free;
    fake_host.txn_set_client = fh_txn_set_client;
    fake_host.txn_set_sender = fh_txn_set_sender;
    fake_host.txn_add_rcpt = fh_txn_add_rcpt;
    fake_host.txn_drop_rcpt = fh_txn_drop_rcpt;
    fake_host.txn_write = fh_txn_write;
    fake_host.txn_run = fh_txn_run;
    fake_host.txn_reply = fh_txn_reply;
    fake_host.rcpt_count = fh_rcpt_count;
    fake_host.rcpt_state = fh_rcpt_state;
    fake_host.txn_id = fh_txn_id;
    fake_host.max_message_size = fh_max_size;
    fake_host.hostname = fh_hostname;
}

/* ---------------------------------------------------------------- */
/* The stage, configured through its own directive table             */

typedef struct stage_run {
    void *conf;
    void *inst;
    int port;
    int fd;
} stage_run;

static void conf_set(void *conf, const char *name, const char *val, int *port,
                     int *lfd)
{
    const sluice_directive *d;

    for (d = sluice_stage_v1.directives; d->name; d++)
        if (strcmp(d->name, name) == 0)
            break;
    assert_non_null(d->name);
    char *field = (char *)conf + d->offset;
    switch (d->type) {
    case SLUICE_CONF_LISTEN: {
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 16), 0);
        getsockname(fd, (struct sockaddr *)&sa, &len);
        *port = ntohs(sa.sin_port);
        *lfd = fd;
        memcpy(field, &fd, sizeof(fd));
        break;
    }
    case SLUICE_CONF_INT: {
        long long v = atoll(val);
        memcpy(field, &v, sizeof(v));
        break;
    }
    case SLUICE_CONF_DURATION: {
        double v = atof(val); /* "300s" -> 300 */
        memcpy(field, &v, sizeof(v));
        break;
    }
    case SLUICE_CONF_SIZE: {
        size_t v = (size_t)atoll(val);
        memcpy(field, &v, sizeof(v));
        break;
    }
    case SLUICE_CONF_BOOL: {
        int v = strcmp(val, "yes") == 0;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case SLUICE_CONF_STRING: {
        const char *v = val;
        memcpy(field, &v, sizeof(v));
        break;
    }
    default:
        fail();
    }
}

/* Defaults from the table, then "name=value" overrides. */
static void stage_start(stage_run *sr, const char *const *over)
{
    const sluice_directive *d;
    int port = 0, fd = -1;

    memset(sr, 0, sizeof(*sr));
    sr->conf = calloc(1, sluice_stage_v1.conf_size);
    for (d = sluice_stage_v1.directives; d->name; d++) {
        assert_non_null(d->dflt);
        conf_set(sr->conf, d->name, d->dflt, &port, &fd);
    }
    for (; over && *over; over++) {
        char name[64];
        const char *eq = strchr(*over, '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *over), *over);
        conf_set(sr->conf, name, eq + 1, &port, &fd);
    }
    sr->port = port;
    sr->fd = fd;
    assert_int_equal(
        sluice_stage_v1.init(NULL, &fake_host, sr->conf, &sr->inst), 0);
    assert_int_equal(sluice_stage_v1.worker_start(sr->inst), 0);
}

static void stage_end(stage_run *sr)
{
    sluice_stage_v1.worker_stop(sr->inst, 0);
    sluice_stage_v1.fini(sr->inst);
    close(sr->fd);
    free(sr->conf);
    assert_int_equal(fakehost.live_io, 0);
    assert_int_equal(fakehost.live_timer, 0);
    assert_int_equal(n_new, n_free); /* every transaction freed */
}

/* ---------------------------------------------------------------- */
/* Clients (threads) and the loop                                    */

typedef struct client {
    int port;
    const char *script; /* sent after the greeting */
    size_t script_len;
    int hangup;        /* close after sending, without reading */
    double delay;      /* before sending */
    double pre_delay;  /* before connecting */
    int rcvbuf;        /* small receive buffer: back the server up */
    size_t total;      /* bytes received (got keeps the first 16 KB) */
    double read_delay; /* after sending, before reading the replies */
    char got[16384];
    size_t glen;
    atomic_int done;
} client;

static int client_connect(int port, int rcvbuf)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void *client_main(void *arg)
{
    client *c = arg;
    int fd;
    ssize_t n;

    if (c->pre_delay > 0)
        usleep((useconds_t)(c->pre_delay * 1e6));
    fd = client_connect(c->port, c->rcvbuf);
    if (fd >= 0) {
        /* the greeting first */
        n = recv(fd, c->got, sizeof(c->got) - 1, 0);
        if (n > 0)
            c->glen = (size_t)n;
        if (c->delay > 0)
            usleep((useconds_t)(c->delay * 1e6));
        if (c->script_len)
            (void)!send(fd, c->script, c->script_len, MSG_NOSIGNAL);
        if (c->read_delay > 0)
            usleep((useconds_t)(c->read_delay * 1e6));
        c->total = c->glen;
        while (!c->hangup) {
            char more[4096];
            if (c->glen < sizeof(c->got) - 1)
                n = recv(fd, c->got + c->glen, sizeof(c->got) - 1 - c->glen, 0);
            else
                n = recv(fd, more, sizeof(more), 0);
            if (n <= 0)
                break;
            if (c->glen < sizeof(c->got) - 1)
                c->glen += (size_t)n;
            c->total += (size_t)n;
        }
        close(fd);
    }
    c->got[c->glen] = '\0';
    if (getenv("SMTP_GLUE_VERBOSE"))
        fprintf(stderr, "--- client got:\n%s---\n", c->got);
    atomic_store(&c->done, 1);
    return NULL;
}

static client *watch[4];
static int nwatch;
static double loop_deadline;

static void poll_cb(struct ev_loop *l, ev_timer *w, int re)
{
    int i, all = 1;

    for (i = 0; i < nwatch; i++)
        if (!atomic_load(&watch[i]->done))
            all = 0;
    if (all || ev_now(l) > loop_deadline)
        ev_break(l, EVBREAK_ONE);
}

/* Run the loop until every client is done (and 50 ms more). */
static void run_clients(client **cs, int n, pthread_t *th)
{
    ev_timer poll;
    int i;

    nwatch = n;
    for (i = 0; i < n; i++) {
        watch[i] = cs[i];
        pthread_create(&th[i], NULL, client_main, cs[i]);
    }
    loop_deadline = ev_now(loop) + 10;
    ev_timer_init(&poll, poll_cb, 0.01, 0.01);
    ev_timer_start(loop, &poll);
    ev_run(loop, 0);
    ev_timer_stop(loop, &poll);
    for (i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    /* let the server notice closes */
    ev_timer_init(&poll, poll_cb, 0.05, 0.);
    ev_timer_start(loop, &poll);
    ev_run(loop, 0);
    ev_timer_stop(loop, &poll);
}

static void loop_for(double seconds)
{
    ev_timer t;

    loop_deadline = 0; /* poll_cb breaks at its first call */
    nwatch = 0;
    ev_timer_init(&t, poll_cb, seconds, 0.);
    ev_timer_start(loop, &t);
    ev_run(loop, 0);
    ev_timer_stop(loop, &t);
}

static void run_one(client *c)
{
    pthread_t th;
    run_clients(&c, 1, &th);
}

static void client_init(client *c, int port, const char *script)
{
    memset(c, 0, sizeof(*c));
    c->port = port;
    c->script = script;
    c->script_len = strlen(script);
}

static void counts_reset(void)
{
    n_new = n_free = n_eom = n_aborted = txn_seq = 0;
    c_sessions = c_refused = c_errors = c_timeouts = 0;
    last_mlen = 0;
    last_client[0] = last_sender[0] = '\0';
}

/* ---------------------------------------------------------------- */

static void test_smtp_session(void **state)
{
    stage_run sr;
    client c;

    counts_reset();
    stage_start(&sr, NULL);
    client_init(&c, sr.port,
                "EHLO mta.test\r\n"
                "XFORWARD NAME=client.example ADDR=192.0.2.7 PORT=5555 "
                "PROTO=ESMTP HELO=bad+2Bhelo IDENT=4XyZ SOURCE=REMOTE\r\n"
                "MAIL FROM:<s@example.org> BODY=8BITMIME RET=HDRS\r\n"
                "RCPT TO:<a@example.net> NOTIFY=NEVER\r\n"
                "RCPT TO:<nobody@example.net>\r\n"
                "RCPT TO:<b@example.net>\r\n"
                "DATA\r\n"
                "Subject: t\r\n\r\n..dot\r\nbare\nlf\r\n.\r\n"
                "QUIT\r\n");
    run_one(&c);
    assert_string_equal(
        c.got, "220 gw.test ESMTP sluice\r\n"
               "250-gw.test\r\n250-PIPELINING\r\n250-SIZE 4096\r\n"
               "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
               "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE\r\n"
               "250 2.0.0 Ok\r\n"
               "250 2.1.0 Ok\r\n"
               "250 2.1.5 Ok\r\n"
               "550 5.1.1 no such user\r\n"
               "250 2.1.5 Ok\r\n"
               "354 End data with <CR><LF>.<CR><LF>\r\n"
               "250 2.0.0 Ok: TX1 Ok: queued as FAKE\r\n"
               "221 2.0.0 Bye\r\n");
    assert_string_equal(last_client,
                        "addr=192.0.2.7 name=client.example helo=bad+helo "
                        "proto=ESMTP ident=4XyZ port=5555");
    assert_string_equal(last_sender,
                        "<s@example.org> [BODY=8BITMIME RET=HDRS]");
    assert_int_equal(last_mlen,
                     strlen("Subject: t\r\n\r\n.dot\r\nbare\nlf\r\n"));
    assert_memory_equal(last_msg, "Subject: t\r\n\r\n.dot\r\nbare\nlf\r\n",
                        last_mlen);
    assert_int_equal(n_eom, 1);
    assert_int_equal(c_sessions, 1);
    stage_end(&sr);
}

static void test_outcomes_smtp_and_lmtp(void **state)
{
    stage_run sr;
    client c1, c2, c3, c4;
    const char *o;

    counts_reset();
    stage_start(&sr, NULL);
    /* no XFORWARD: the TCP peer and the greeting */
    client_init(&c1, sr.port,
                "HELO peer.test\r\nMAIL FROM:<weird@x>\r\n"
                "MAIL FROM:<reject@x>\r\n"
                "MAIL FROM:<tempfail@x>\r\nMAIL FROM:<ok@x>\r\n"
                "RCPT TO:<a@x>\r\nRCPT TO:<bounce@x>\r\nDATA\r\nhi\r\n.\r\n"
                "MAIL FROM:<ok@x>\r\nRCPT TO:<bounce@x>\r\n"
                "RCPT TO:<bounce2@x>\r\nDATA\r\nhi\r\n.\r\n"
                "MAIL FROM:<ok@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<later@x>\r\n"
                "DATA\r\nhi\r\n.\r\nQUIT\r\n");
    run_one(&c1);
    o = c1.got;
    assert_non_null(strstr(o, "250 gw.test\r\n550 5.7.1 odd\r\n"
                              "550 5.7.1 sender refused by test\r\n"
                              "451 4.7.1 not now\r\n250 2.1.0 Ok\r\n"));
    assert_non_null(strstr(o, "\r\n451 4.3.0 TX4 Error: 1 of 2 recipients "
                              "rejected, the others delivered; retrying "
                              "(use LMTP for per-recipient answers)\r\n"));
    assert_non_null(strstr(o, "\r\n554 5.7.1 refused at end\r\n"));
    assert_non_null(strstr(o, "\r\n451 4.3.0 TX6 Error: 1 of 2 recipients "
                              "deferred: try later\r\n221 2.0.0 Bye\r\n"));
    assert_null(strstr(o, "250 2.0.0 Ok: TX"));
    assert_non_null(strstr(last_client, "addr=127.0.0.1 name= "
                                        "helo=peer.test proto=SMTP ident="));
    assert_int_equal(n_eom, 3);

    /* LMTP: one answer per accepted recipient, in order */
    client_init(&c2, sr.port,
                "LHLO mta\r\nMAIL FROM:<ok@x>\r\nRCPT TO:<a@x>\r\n"
                "RCPT TO:<nobody@x>\r\nRCPT TO:<bounce@x>\r\n"
                "RCPT TO:<later@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhi\r\n.\r\n"
                "QUIT\r\n");
    run_one(&c2);
    assert_non_null(strstr(c2.got, "354 End data with <CR><LF>.<CR><LF>\r\n"
                                   "250 2.0.0 Ok: queued as FAKE\r\n"
                                   "554 5.7.1 refused at end\r\n"
                                   "451 4.7.1 try later\r\n"
                                   "250 2.0.0 Ok: queued as FAKE\r\n"
                                   "221 2.0.0 Bye\r\n"));
    assert_non_null(strstr(last_client, "proto=LMTP"));

    /* size limit (the host says 4096): read, dropped, 552, no EOM */
    {
        static char big[6000];
        int before = n_eom;
        memset(big, 0, sizeof(big));
        strcpy(big, "EHLO m\r\nMAIL FROM:<ok@x> SIZE=5000\r\n"
                    "MAIL FROM:<ok@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n");
        memset(big + strlen(big), 'x', 4500);
        strcat(big, "\r\n.\r\nQUIT\r\n");
        client_init(&c3, sr.port, big);
        run_one(&c3);
        assert_non_null(strstr(c3.got, "552 5.3.4 Error: message file too "
                                       "big\r\n250 2.1.0 Ok\r\n"));
        assert_non_null(strstr(c3.got, "354 End data with <CR><LF>.<CR><LF>"
                                       "\r\n552 5.3.4 Error: message file "
                                       "too big\r\n221 2.0.0 Bye\r\n"));
        assert_int_equal(n_eom, before);
    }

    /* protocol errors are counted */
    client_init(&c4, sr.port, "FOO\r\nRCPT TO:<a@b>\r\nQUIT\r\n");
    run_one(&c4);
    assert_non_null(strstr(c4.got, "502 5.5.2"));
    assert_int_equal(c_errors, 2);
    stage_end(&sr);
}

/* A client that pipelines far more than it reads: the server stops
 * reading while its output is backed up, and every reply arrives. */
static void test_backpressure(void **state)
{
    stage_run sr;
    client c;
    char *script = malloc(6 * 12000 + 16);
    size_t i, lines = 0;
    const char *p;

    counts_reset();
    stage_start(&sr, NULL);
    assert_non_null(script);
    for (i = 0; i < 12000; i++)
        memcpy(script + 6 * i, "NOOP\r\n", 6);
    strcpy(script + 6 * 12000, "QUIT\r\n");
    client_init(&c, sr.port, script);
    c.rcvbuf = 4096;
    c.delay = 0.1;
    c.read_delay = 0.3;
    fakehost.io_write_events = 0;
    small_sndbuf = 1;
    run_one(&c);
    small_sndbuf = 0;
    free(script);
    for (p = c.got; (p = strstr(p, "250 2.0.0 Ok\r\n")) != NULL; p++)
        lines++;
    if (getenv("SMTP_GLUE_VERBOSE"))
        fprintf(stderr,
                "backpressure: %d write events, %zu bytes, %zu "
                "lines\n",
                fakehost.io_write_events, c.total, lines);
    assert_true(lines > 1000);       /* in the first 16 KB */
    assert_true(fakehost.io_write_events > 0); /* output did back up */
    assert_int_equal(c.total, strlen("220 gw.test ESMTP sluice\r\n") +
                                  12000 * strlen("250 2.0.0 Ok\r\n") +
                                  strlen("221 2.0.0 Bye\r\n"));
    stage_end(&sr);
}

static void test_limits_and_timeouts(void **state)
{
    static const char *const over[] = {"max_sessions=1", "idle_timeout=0.2",
                                       "data_timeout=0.3", NULL};
    stage_run sr;
    client a, b, d;
    client *both[2] = {&a, &b};
    pthread_t th[2];

    counts_reset();
    stage_start(&sr, over);
    /* a holds the only session (and then times out); b is refused */
    client_init(&a, sr.port, "EHLO a\r\nMAIL FROM:<x@y>\r\n");
    client_init(&b, sr.port, "");
    b.pre_delay = 0.1;
    run_clients(both, 2, th);
    assert_non_null(strstr(a.got, "250 2.1.0 Ok\r\n421 4.4.2 gw.test Error: "
                                  "timeout exceeded\r\n"));
    assert_string_equal(b.got, "421 4.7.0 gw.test Error: too many "
                               "sessions\r\n");
    assert_int_equal(c_refused, 1);
    assert_int_equal(c_timeouts, 1);
    assert_int_equal(n_new, n_free);

    /* timeout inside DATA aborts the transaction: no EOM */
    client_init(&d, sr.port,
                "EHLO a\r\nMAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nDATA\r\npart");
    run_one(&d);
    assert_non_null(strstr(d.got, "354 End data with <CR><LF>.<CR><LF>\r\n"
                                  "421 4.4.2 gw.test Error: timeout "
                                  "exceeded\r\n"));
    assert_int_equal(n_eom, 0);
    stage_end(&sr);
}

static void test_client_gone(void **state)
{
    stage_run sr;
    client c, p;

    counts_reset();
    stage_start(&sr, NULL);
    /* truncated DATA: nothing delivered, nothing answered */
    client_init(&c, sr.port,
                "EHLO a\r\nMAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nDATA\r\n"
                "Subject: cut\r\n\r\nhalf a mess");
    c.hangup = 1;
    c.delay = 0;
    run_one(&c);
    assert_int_equal(n_eom, 0);
    assert_int_equal(n_new, n_free);
    /* gone while the chain decides (slow MAIL): input is not read while
     * paused, so the close is noticed once the decision is in */
    client_init(&p, sr.port, "EHLO a\r\nMAIL FROM:<slow@y>\r\n");
    p.hangup = 1;
    run_one(&p);
    assert_int_equal(n_new, 2);
    loop_for(0.5);
    assert_int_equal(n_new, n_free);
    assert_int_equal(fakehost.live_io, 1);    /* the listener only */
    assert_int_equal(fakehost.live_timer, 1); /* its accept pause timer */
    stage_end(&sr);
}

static void guard_cb(struct ev_loop *l, ev_timer *w, int re)
{
    ev_break(l, EVBREAK_ALL);
}

/* Graceful stop: idle sessions hear 421 now; one in a transaction
 * finishes it first; the stage then owns no watcher or timer. */
static void test_graceful_stop(void **state)
{
    stage_run sr;
    client idle, busy;
    pthread_t th[2];
    ev_timer guard;

    counts_reset();
    stage_start(&sr, NULL);
    /* idle: at a prompt after a transaction; a connection that carried
     * no mail yet would be served one transaction first */
    client_init(&idle, sr.port,
                "EHLO idle\r\nMAIL FROM:<i@y>\r\nRCPT TO:<a@b>\r\n"
                "DATA\r\nx\r\n.\r\n");
    client_init(&busy, sr.port,
                "EHLO busy\r\nMAIL FROM:<slow@y>\r\nRCPT TO:<a@b>\r\n"
                "DATA\r\nx\r\n.\r\nNOOP\r\n");
    /* stop 150 ms in: idle is at a prompt, busy waits on its slow MAIL */
    nwatch = 2;
    watch[0] = &idle;
    watch[1] = &busy;
    pthread_create(&th[0], NULL, client_main, &idle);
    pthread_create(&th[1], NULL, client_main, &busy);
    usleep(50000);
    /* let the loop accept both and handle their first commands */
    loop_for(0.15);
    sluice_stage_v1.worker_stop(sr.inst, 1);
    /* the loop must end by itself once the sessions are done (a guard
     * that does not hold the loop ends a hang after 10 s) */
    ev_timer_init(&guard, guard_cb, 10., 0.);
    ev_timer_start(loop, &guard);
    ev_unref(loop);
    ev_run(loop, 0);
    ev_ref(loop);
    assert_true(ev_is_active(&guard)); /* ended by itself, not by it */
    ev_timer_stop(loop, &guard);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    assert_non_null(strstr(idle.got, "Ok: queued as FAKE\r\n"
                                     "421 4.3.2 gw.test Service shutting "
                                     "down\r\n"));
    assert_null(strstr(idle.got, "250 2.0.0 Ok: TX1 Ok: queued as FAKE\r\n"
                                 "250 2.0.0"));
    assert_non_null(strstr(busy.got, "Ok: queued as FAKE\r\n"
                                     "421 4.3.2 gw.test Service shutting "
                                     "down\r\n"));
    assert_int_equal(fakehost.live_io, 0);
    assert_int_equal(fakehost.live_timer, 0);
    assert_int_equal(n_eom, 2);
    sluice_stage_v1.fini(sr.inst);
    close(sr.fd);
    free(sr.conf);
    assert_int_equal(n_new, n_free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_session),
        cmocka_unit_test(test_outcomes_smtp_and_lmtp),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_limits_and_timeouts),
        cmocka_unit_test(test_client_gone),
        cmocka_unit_test(test_graceful_stop),
    };

    loop = ev_default_loop(0);
    fake_host_init();
    if (getenv("SMTP_GLUE_ONLY"))
        cmocka_set_test_filter(getenv("SMTP_GLUE_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
