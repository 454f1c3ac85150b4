/*
 * blocklist.c - the `blocklist` stage: asks sluice-blocklistd (127.0.0.1:
 * 4466) whether the client's address is listed, and adds one symbol per
 * list that holds it (BLOCKLIST_<LIST>), or rejects with `action reject`.
 *
 * When: at CONNECT if the ingress knows the client's address by then (the
 * smtp ingress opens its transaction at MAIL with the XFORWARD address, so
 * its CONNECT phase has it; a milter connect does too), else at MAIL, else
 * at end of message.  One query per message.
 *
 * Interface: the stage descriptor sluice_stage_v1; directives server,
 * action, score, list_score, symbol_prefix, query_timeout,
 * on_unavailable, unavailable_score, max_backoff; counters queries,
 * listed, unavailable, rejected, reconnects.
 *
 * Connection: one per worker, persistent and pipelined (answers come in
 * request order, so a FIFO of queries matches them).  Each query has its
 * own timer (query_timeout, default 1s, well under the stage timeout): if
 * it fires, the connection is considered stuck and is closed, and every
 * query on it ends "unavailable".  A closed or refused connection is
 * retried with a doubling back-off (up to max_backoff); meanwhile queries
 * end "unavailable" at once, so a dead daemon never delays mail.
 * Unavailable: symbol BLOCKLIST_UNAVAILABLE (score unavailable_score,
 * default 0) and the verdict on_unavailable (continue, or tempfail).
 *
 * Diagnostics: connection trouble is logged once per state change, not
 * per message; each listed client is logged with the message id.
 *
 * SECURITY: the client address comes from the MTA (XFORWARD / milter);
 * it is checked with inet_pton before it goes on the wire.  The daemon's
 * answers are parsed strictly (bls_reply.c); anything unexpected drops the
 * connection.  Runs in the worker, unprivileged.
 */
#include <sluice/stage.h>

#include "bls_reply.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BLS_RBUF 8192
#define BLS_ADDR_MAX 64
#define BLS_BACKOFF_MIN 0.5

enum { BLS_ACTION_SCORE, BLS_ACTION_REJECT };
enum { BLS_UNAV_CONTINUE, BLS_UNAV_TEMPFAIL };
enum { BLS_DOWN, BLS_CONNECTING, BLS_UP };

typedef struct bls_conf {
    char *server;
    int action;
    double score;
    char **list_score; /* NAME SCORE NAME SCORE ... */
    char *symbol_prefix;
    double query_timeout;
    int on_unavailable;
    double unavailable_score;
    double max_backoff;
} bls_conf;

typedef struct bls_slot bls_slot;
typedef struct bls_q bls_q;
typedef struct bls_inst bls_inst;

/* One query on the wire (or about to be).  Orphaned (txn NULL) when its
 * message ended first; it stays in the FIFO until its answer comes. */
struct bls_q {
    bls_inst *in;
    bls_q *next;
    unsigned long id;
    sluice_txn *txn;
    bls_slot *slot;
    sluice_timer *timer;
    char addr[BLS_ADDR_MAX];
};

struct bls_slot {
    bls_q *q;
    int asked;
    sluice_phase phase; /* when it was asked: the reject code depends */
};

struct bls_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    bls_conf *conf;
    struct sockaddr_storage sa;
    socklen_t salen;
    /* per worker (set up in worker_start, after fork) */
    int state, fd, stopping, down_logged;
    sluice_io *io;
    sluice_timer *conn_timer;  /* connect timeout */
    sluice_timer *retry_timer; /* back-off */
    double backoff;
    unsigned long next_id;
    bls_q *head, *tail;
    char rbuf[BLS_RBUF];
    size_t rlen;
    char *wbuf;
    size_t wlen, woff, wcap;
};

static const char *const bls_actions[] = {"score", "reject", NULL};
static const char *const bls_unav[] = {"continue", "tempfail", NULL};

static const sluice_directive bls_directives[] = {
    {"server", SLUICE_CONF_STRING, offsetof(bls_conf, server), "127.0.0.1:4466",
     0, 0, NULL, "sluice-blocklistd: HOST:PORT, [IPV6]:PORT or unix:/PATH"},
    {"action", SLUICE_CONF_ENUM, offsetof(bls_conf, action), "score", 0, 0,
     bls_actions, "a listed client: add symbols (score) or reject"},
    {"score", SLUICE_CONF_DOUBLE, offsetof(bls_conf, score), "10", -1000, 1000,
     NULL, "score of each BLOCKLIST_<LIST> symbol"},
    {"list_score", SLUICE_CONF_STRLIST, offsetof(bls_conf, list_score), NULL, 0,
     0, NULL, "LIST SCORE: another score for one list (repeatable)"},
    {"symbol_prefix", SLUICE_CONF_STRING, offsetof(bls_conf, symbol_prefix),
     "BLOCKLIST_", 0, 0, NULL, "symbol name = prefix + list name in capitals"},
    {"query_timeout", SLUICE_CONF_DURATION, offsetof(bls_conf, query_timeout),
     "1s", 0, 0, NULL, "time limit to connect and for each answer"},
    {"on_unavailable", SLUICE_CONF_ENUM, offsetof(bls_conf, on_unavailable),
     "continue", 0, 0, bls_unav,
     "daemon down or slow: continue (with BLOCKLIST_UNAVAILABLE) or "
     "tempfail"},
    {"unavailable_score", SLUICE_CONF_DOUBLE,
     offsetof(bls_conf, unavailable_score), "0", -1000, 1000, NULL,
     "score of BLOCKLIST_UNAVAILABLE"},
    {"max_backoff", SLUICE_CONF_DURATION, offsetof(bls_conf, max_backoff),
     "30s", 0, 0, NULL, "longest wait between reconnection attempts"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static void bls_conn_fail(bls_inst *in, const char *why);
static void bls_conn_open(bls_inst *in);

/* ---------------------------------------------------------------- */
/* Set-up                                                           */

static int bls_parse_server(bls_inst *in, const char *s)
{
    char host[256], port[16];
    const char *colon, *hs = s;
    size_t hl;
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&in->sa, 0, sizeof(in->sa));
    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&in->sa;
        size_t pl = strlen(s + 5);
        if (pl == 0 || pl >= sizeof(un->sun_path))
            goto bad;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, s + 5, pl + 1);
        in->salen =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1);
        return 0;
    }
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            goto bad;
        hs = s + 1;
        hl = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        if ((colon = strrchr(s, ':')) == NULL)
            goto bad;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(host) || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof(port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        goto bad;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0 ||
        res->ai_addrlen > sizeof(in->sa)) {
        in->host->log(in->ctx, NULL, SLUICE_LOG_ERROR,
                      "server %s: %s (a numeric address is needed)", s,
                      rc ? gai_strerror(rc) : "address too long");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&in->sa, res->ai_addr, res->ai_addrlen);
    in->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    in->host->log(in->ctx, NULL, SLUICE_LOG_ERROR,
                  "server '%s': expected HOST:PORT, [IPV6]:PORT or "
                  "unix:/PATH",
                  s);
    return -1;
}

static int bls_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                    void **inst)
{
    bls_inst *in = calloc(1, sizeof(*in));
    bls_conf *cf = conf;
    size_t i;

    if (in == NULL)
        return -1;
    in->host = host;
    in->ctx = ctx;
    in->conf = cf;
    in->fd = -1;
    if (bls_parse_server(in, cf->server ? cf->server : "127.0.0.1:4466") < 0)
        goto fail;
    if (cf->query_timeout <= 0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR, "query_timeout must be above 0");
        goto fail;
    }
    for (i = 0; cf->list_score && cf->list_score[i]; i += 2) {
        char *e;
        if (cf->list_score[i + 1] == NULL) {
            host->log(ctx, NULL, SLUICE_LOG_ERROR,
                      "list_score %s: expected LIST SCORE", cf->list_score[i]);
            goto fail;
        }
        (void)strtod(cf->list_score[i + 1], &e);
        if (*e != '\0' || e == cf->list_score[i + 1]) {
            host->log(ctx, NULL, SLUICE_LOG_ERROR,
                      "list_score %s: '%s' is not a number", cf->list_score[i],
                      cf->list_score[i + 1]);
            goto fail;
        }
    }
    *inst = in;
    return 0;
fail:
    free(in);
    return -1;
}

static void bls_fini(void *inst)
{
    free(inst);
}

/* ---------------------------------------------------------------- */
/* Results                                                          */

static double bls_list_score(bls_inst *in, const char *list)
{
    char **ls = in->conf->list_score;
    size_t i;

    for (i = 0; ls && ls[i] && ls[i + 1]; i += 2)
        if (strcasecmp(ls[i], list) == 0)
            return strtod(ls[i + 1], NULL);
    return in->conf->score;
}

/* Ends q's message (if it still waits) with verdict v. */
static void bls_q_finish(bls_q *q, sluice_verdict v)
{
    bls_inst *in = q->in;
    sluice_txn *txn = q->txn;

    if (q->timer != NULL) {
        in->host->timer_free(q->timer);
        q->timer = NULL;
    }
    if (txn == NULL)
        return;
    q->slot->q = NULL;
    q->txn = NULL;
    q->slot = NULL;
    in->host->done(txn, v);
}

static sluice_verdict bls_unavailable(bls_inst *in, sluice_txn *txn,
                                      const char *why)
{
    const sluice_host *h = in->host;

    h->counter_add(in->ctx, "unavailable", 1);
    h->symbol_add(txn, "BLOCKLIST_UNAVAILABLE", in->conf->unavailable_score,
                  "%s", why);
    if (in->conf->on_unavailable == BLS_UNAV_TEMPFAIL) {
        h->set_reply(txn, "451", "4.7.1",
                     "Blocklist service unavailable, try again later");
        return SLUICE_TEMPFAIL;
    }
    return SLUICE_CONTINUE;
}

/* The daemon's answer for q's client: symbols, and the verdict. */
static sluice_verdict bls_listed(bls_inst *in, sluice_txn *txn, bls_slot *slot,
                                 const char *addr, const bls_reply *r)
{
    const sluice_host *h = in->host;
    const char *prefix =
        in->conf->symbol_prefix ? in->conf->symbol_prefix : "BLOCKLIST_";
    char lists[512];
    size_t i, off = 0;

    if (r->nlists == 0)
        return SLUICE_CONTINUE;
    lists[0] = '\0';
    for (i = 0; i < r->nlists; i++) {
        char sym[128];
        size_t k, pl = strlen(prefix);
        snprintf(sym, sizeof(sym), "%s%s", prefix, r->lists[i]);
        for (k = pl; sym[k]; k++) {
            if (sym[k] >= 'a' && sym[k] <= 'z')
                sym[k] = (char)(sym[k] - 'a' + 'A');
            else if (sym[k] == '-' || sym[k] == '.')
                sym[k] = '_';
        }
        h->symbol_add(txn, sym, bls_list_score(in, r->lists[i]),
                      "client %s listed in %s", addr, r->lists[i]);
        if (off < sizeof(lists))
            off += (size_t)snprintf(lists + off, sizeof(lists) - off, "%s%s",
                                    i ? "," : "", r->lists[i]);
    }
    h->counter_add(in->ctx, "listed", 1);
    if (in->conf->action != BLS_ACTION_REJECT) {
        h->log(in->ctx, txn, SLUICE_LOG_INFO, "client %s listed in %s", addr,
               lists);
        return SLUICE_CONTINUE;
    }
    {
        char text[700];
        snprintf(text, sizeof(text), "Client host [%s] blocked using %s", addr,
                 lists);
        h->set_reply(txn, slot->phase == SLUICE_PHASE_CONNECT ? "554" : "550",
                     "5.7.1", text);
    }
    h->counter_add(in->ctx, "rejected", 1);
    h->log(in->ctx, txn, SLUICE_LOG_INFO, "client %s listed in %s: rejected",
           addr, lists);
    return SLUICE_REJECT;
}

/* ---------------------------------------------------------------- */
/* The connection                                                   */

static void bls_q_free_head(bls_inst *in)
{
    bls_q *q = in->head;

    in->head = q->next;
    if (in->head == NULL)
        in->tail = NULL;
    free(q);
}

static void bls_conn_close(bls_inst *in)
{
    const sluice_host *h = in->host;

    if (in->io != NULL) {
        h->io_free(in->io);
        in->io = NULL;
    }
    if (in->fd >= 0) {
        close(in->fd);
        in->fd = -1;
    }
    if (in->conn_timer != NULL)
        h->timer_stop(in->conn_timer);
    in->state = BLS_DOWN;
    in->rlen = 0;
    in->wlen = in->woff = 0;
}

/* Frees the per-worker watchers once nothing is in flight. */
static void bls_worker_release(bls_inst *in)
{
    const sluice_host *h = in->host;

    bls_conn_close(in);
    if (in->conn_timer != NULL) {
        h->timer_free(in->conn_timer);
        in->conn_timer = NULL;
    }
    if (in->retry_timer != NULL) {
        h->timer_free(in->retry_timer);
        in->retry_timer = NULL;
    }
    free(in->wbuf);
    in->wbuf = NULL;
    in->wcap = 0;
}

/* Ends every query on the connection as unavailable. */
static void bls_fail_all(bls_inst *in, const char *why)
{
    while (in->head != NULL) {
        bls_q *q = in->head;
        if (q->txn != NULL)
            bls_q_finish(q, bls_unavailable(in, q->txn, why));
        else if (q->timer != NULL)
            bls_q_finish(q, SLUICE_CONTINUE);
        bls_q_free_head(in);
    }
}

/* The connection failed: close, end its queries, schedule a retry. */
static void bls_conn_fail(bls_inst *in, const char *why)
{
    const sluice_host *h = in->host;
    char reason[300];

    snprintf(reason, sizeof(reason), "blocklist daemon: %s", why);
    if (!in->down_logged)
        h->log(in->ctx, NULL, SLUICE_LOG_WARN,
               "%s; queries answer BLOCKLIST_UNAVAILABLE until it is back",
               reason);
    in->down_logged = 1;
    bls_conn_close(in);
    bls_fail_all(in, reason);
    if (in->stopping) {
        bls_worker_release(in);
        return;
    }
    h->timer_start(in->retry_timer, in->backoff);
    in->backoff =
        in->backoff < BLS_BACKOFF_MIN ? BLS_BACKOFF_MIN : in->backoff * 2;
    if (in->backoff > in->conf->max_backoff)
        in->backoff = in->conf->max_backoff;
}

static void bls_conn_events(bls_inst *in)
{
    int ev = SLUICE_READ;

    if (in->state == BLS_CONNECTING)
        ev = SLUICE_WRITE;
    else if (in->woff < in->wlen)
        ev |= SLUICE_WRITE;
    in->host->io_set(in->io, ev);
}

/* Sends what is buffered.  -1: the connection failed (and is closed). */
static int bls_conn_flush(bls_inst *in)
{
    while (in->state == BLS_UP && in->woff < in->wlen) {
        ssize_t n = send(in->fd, in->wbuf + in->woff, in->wlen - in->woff,
                         MSG_NOSIGNAL);
        if (n < 0) {
            char why[200];
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            snprintf(why, sizeof(why), "write: %s", strerror(errno));
            bls_conn_fail(in, why);
            return -1;
        }
        in->woff += (size_t)n;
    }
    if (in->woff == in->wlen)
        in->woff = in->wlen = 0;
    if (in->state != BLS_DOWN)
        bls_conn_events(in);
    return 0;
}

/* One answer line from the daemon. -1: protocol error (connection gone). */
static int bls_conn_answer(bls_inst *in, char *line)
{
    bls_reply r;
    bls_q *q = in->head;

    if (bls_reply_parse(line, &r) < 0 || q == NULL ||
        (r.id != q->id && !(r.error && r.id == (unsigned long)-1))) {
        bls_conn_fail(in, "unexpected answer");
        return -1;
    }
    in->backoff = 0;
    if (in->down_logged)
        in->host->log(in->ctx, NULL, SLUICE_LOG_INFO,
                      "blocklist daemon: answering again");
    in->down_logged = 0;
    if (q->txn != NULL) {
        sluice_verdict v;
        if (r.error) {
            char why[300];
            snprintf(why, sizeof(why),
                     "blocklist daemon refused the query: %.200s", r.reason);
            in->host->log(in->ctx, q->txn, SLUICE_LOG_WARN, "%s", why);
            v = bls_unavailable(in, q->txn, why);
        } else {
            v = bls_listed(in, q->txn, q->slot, q->addr, &r);
        }
        bls_q_finish(q, v);
    } else {
        bls_q_finish(q, SLUICE_CONTINUE); /* orphan: frees its timer */
    }
    bls_q_free_head(in);
    return 0;
}

static void bls_conn_read(bls_inst *in)
{
    for (;;) {
        ssize_t n = recv(in->fd, in->rbuf + in->rlen,
                         sizeof(in->rbuf) - in->rlen - 1, 0);
        size_t off = 0;
        char *nl;
        if (n < 0) {
            char why[200];
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            snprintf(why, sizeof(why), "read: %s", strerror(errno));
            bls_conn_fail(in, why);
            return;
        }
        if (n == 0) {
            bls_conn_fail(in, "connection closed by the daemon");
            return;
        }
        in->rlen += (size_t)n;
        while ((nl = memchr(in->rbuf + off, '\n', in->rlen - off)) != NULL) {
            *nl = '\0';
            if (bls_conn_answer(in, in->rbuf + off) < 0)
                return;
            off = (size_t)(nl - in->rbuf) + 1;
        }
        memmove(in->rbuf, in->rbuf + off, in->rlen - off);
        in->rlen -= off;
        if (in->rlen >= sizeof(in->rbuf) - 1) {
            bls_conn_fail(in, "answer line too long");
            return;
        }
        if (in->stopping && in->head == NULL) {
            bls_worker_release(in); /* the last answer came */
            return;
        }
    }
}

static void bls_io_cb(sluice_io *io, int ev, void *arg)
{
    bls_inst *in = arg;

    if (in->state == BLS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(in->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err != 0) {
            char why[200];
            snprintf(why, sizeof(why), "connect: %s", strerror(err));
            bls_conn_fail(in, why);
            return;
        }
        /* the back-off is reset by an answer, not by the connect: a hung
         * daemon's kernel still accepts connections */
        in->state = BLS_UP;
        in->host->timer_stop(in->conn_timer);
        bls_conn_flush(in);
        return;
    }
    if ((ev & SLUICE_WRITE) && bls_conn_flush(in) < 0)
        return;
    if ((ev & SLUICE_READ) && in->state == BLS_UP)
        bls_conn_read(in);
}

static void bls_conn_timer_cb(sluice_timer *t, void *arg)
{
    bls_conn_fail(arg, "connect: timed out");
}

static void bls_retry_cb(sluice_timer *t, void *arg)
{
    bls_inst *in = arg;

    if (in->state == BLS_DOWN && !in->stopping) {
        in->host->counter_add(in->ctx, "reconnects", 1);
        bls_conn_open(in);
    }
}

static void bls_conn_open(bls_inst *in)
{
    const sluice_host *h = in->host;
    int rc, one = 1;
    char why[200];

    in->fd =
        socket(in->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (in->fd < 0) {
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        bls_conn_fail(in, why);
        return;
    }
    if (in->sa.ss_family != AF_UNIX)
        setsockopt(in->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((in->io = h->io_new(in->ctx, in->fd, bls_io_cb, in)) == NULL) {
        bls_conn_fail(in, "out of memory");
        return;
    }
    do
        rc = connect(in->fd, (struct sockaddr *)&in->sa, in->salen);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        bls_conn_fail(in, why);
        return;
    }
    in->state = BLS_CONNECTING; /* even at once: the io callback settles */
    h->timer_start(in->conn_timer, in->conf->query_timeout);
    bls_conn_events(in);
}

/* A query took too long: the daemon is stuck or gone. */
static void bls_q_timer_cb(sluice_timer *t, void *arg)
{
    bls_q *q = arg;
    bls_inst *in = q->in;

    in->host->counter_add(in->ctx, "timeouts", 1);
    bls_conn_fail(in, "no answer in time");
}

/* ---------------------------------------------------------------- */
/* Hooks                                                            */

/* The client address in the form the daemon takes, or -1 if none. */
static int bls_client_addr(bls_inst *in, sluice_txn *txn, char *out,
                           size_t outsz)
{
    const sluice_client *c = in->host->client(txn);
    const char *a;
    unsigned char b[16];

    if (c == NULL || c->addr == NULL || c->addr[0] == '\0')
        return -1;
    a = c->addr;
    if (strncasecmp(a, "IPv6:", 5) == 0) /* Postfix's XFORWARD form */
        a += 5;
    if (strlen(a) >= outsz)
        return -1;
    snprintf(out, outsz, "%s", a);
    if (inet_pton(AF_INET, out, b) != 1 && inet_pton(AF_INET6, out, b) != 1)
        return -1;
    return 0;
}

static sluice_verdict bls_ask(bls_inst *in, sluice_txn *txn, bls_slot *slot,
                              sluice_phase phase)
{
    const sluice_host *h = in->host;
    char addr[BLS_ADDR_MAX], line[BLS_ADDR_MAX + 32];
    bls_q *q;
    int n;

    if (slot->asked)
        return SLUICE_CONTINUE;
    if (bls_client_addr(in, txn, addr, sizeof(addr)) < 0) {
        if (phase == SLUICE_PHASE_EOM) {
            const sluice_client *c = h->client(txn);
            h->counter_add(in->ctx, "no_address", 1);
            if (c && c->addr && c->addr[0])
                h->log(in->ctx, txn, SLUICE_LOG_WARN,
                       "client address '%.80s' is not an IP address; not "
                       "checked",
                       c->addr);
        }
        return SLUICE_CONTINUE; /* maybe later: MAIL, EOM */
    }
    slot->asked = 1;
    slot->phase = phase;
    h->counter_add(in->ctx, "queries", 1);
    if (in->state == BLS_DOWN || in->stopping || in->io == NULL)
        return bls_unavailable(in, txn, "blocklist daemon not connected");
    if ((q = calloc(1, sizeof(*q))) == NULL ||
        (q->timer = h->timer_new(in->ctx, bls_q_timer_cb, q)) == NULL) {
        free(q);
        return bls_unavailable(in, txn, "out of memory");
    }
    n = snprintf(line, sizeof(line), "Q %lu %s\n", in->next_id, addr);
    if (in->wlen + (size_t)n > in->wcap) {
        size_t nc = in->wcap ? in->wcap * 2 : 4096;
        char *nb;
        while (nc < in->wlen + (size_t)n)
            nc *= 2;
        if ((nb = realloc(in->wbuf, nc)) == NULL) {
            h->timer_free(q->timer);
            free(q);
            return bls_unavailable(in, txn, "out of memory");
        }
        in->wbuf = nb;
        in->wcap = nc;
    }
    memcpy(in->wbuf + in->wlen, line, (size_t)n);
    in->wlen += (size_t)n;
    q->in = in;
    q->id = in->next_id++;
    q->txn = txn;
    q->slot = slot;
    snprintf(q->addr, sizeof(q->addr), "%s", addr);
    if (in->tail)
        in->tail->next = q;
    else
        in->head = q;
    in->tail = q;
    slot->q = q;
    h->timer_start(q->timer, in->conf->query_timeout);
    bls_conn_flush(in); /* a failure ends q at once: done() in the hook */
    return SLUICE_PENDING;
}

static sluice_verdict bls_connect(void *inst, sluice_txn *txn, void *slot)
{
    return bls_ask(inst, txn, slot, SLUICE_PHASE_CONNECT);
}

static sluice_verdict bls_mail(void *inst, sluice_txn *txn, void *slot)
{
    return bls_ask(inst, txn, slot, SLUICE_PHASE_MAIL);
}

static sluice_verdict bls_eom(void *inst, sluice_txn *txn, void *slot)
{
    return bls_ask(inst, txn, slot, SLUICE_PHASE_EOM);
}

/* The message ended while waiting: the query becomes an orphan. */
static void bls_abort(void *inst, sluice_txn *txn, void *slotp)
{
    bls_inst *in = inst;
    bls_slot *slot = slotp;
    bls_q *q = slot->q;

    if (q == NULL)
        return;
    if (q->timer != NULL) {
        in->host->timer_free(q->timer);
        q->timer = NULL;
    }
    q->txn = NULL;
    q->slot = NULL;
    slot->q = NULL;
}

static int bls_worker_start(void *inst)
{
    bls_inst *in = inst;
    const sluice_host *h = in->host;

    in->fd = -1;
    in->state = BLS_DOWN;
    in->conn_timer = h->timer_new(in->ctx, bls_conn_timer_cb, in);
    in->retry_timer = h->timer_new(in->ctx, bls_retry_cb, in);
    if (in->conn_timer == NULL || in->retry_timer == NULL)
        return -1;
    bls_conn_open(in); /* the first message should not pay for it */
    return 0;
}

static void bls_worker_stop(void *inst, int graceful)
{
    bls_inst *in = inst;

    in->stopping = 1;
    if (in->retry_timer != NULL)
        in->host->timer_stop(in->retry_timer);
    if (graceful && in->state == BLS_UP && in->head != NULL)
        return; /* closes after the last answer */
    bls_conn_close(in);
    bls_fail_all(in, "the worker is stopping");
    bls_worker_release(in);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = 0, /* needs nothing newer than ABI 1.0 */
    .size = sizeof(struct sluice_stage),
    .name = "blocklist",
    .version = "1.0",
    .description = "client IP against sluice-blocklistd (127.0.0.1:4466)",
    .flags = 0,
    .directives = bls_directives,
    .conf_size = sizeof(bls_conf),
    .slot_size = sizeof(bls_slot),
    .init = bls_init,
    .worker_start = bls_worker_start,
    .worker_stop = bls_worker_stop,
    .fini = bls_fini,
    .on_phase = {[SLUICE_PHASE_CONNECT] = bls_connect,
                 [SLUICE_PHASE_MAIL] = bls_mail,
                 [SLUICE_PHASE_EOM] = bls_eom},
    .on_abort = bls_abort,
    .on_close = bls_abort,
};
