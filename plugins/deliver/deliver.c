/*
 * deliver.c - the `deliver` stage: at end of message, reinjects the message
 * into the MTA's second smtpd (Postfix FILTER_README, 127.0.0.1:10026) over
 * SMTP, on the worker's loop, and records every recipient's outcome with
 * host->rcpt_set().  The ingress answers 250 only for recipients this stage
 * marked SLUICE_RCPT_DONE, which is what makes "never lose mail" true.
 * The recipients are the envelope as the stages left it (ABI 1.2: a
 * redirect's addresses), and messages stages send (notifications) come
 * here as messages of their own.
 *
 * Interface: the stage descriptor sluice_stage_v1 (final stage, EOM hook,
 * on_abort, on_close).  Directives: next_hop, helo_name, xforward,
 * connect_timeout, command_timeout, data_timeout, max_connections,
 * max_idle_connections, idle_time.  Counters: delivered_messages,
 * delivered_rcpts, tempfail_rcpts, rejected_rcpts, connections_opened,
 * connections_reused.
 *
 * Connections: per worker (the instance is per worker after fork), up to
 * max_connections; a finished transaction puts its connection in an idle
 * pool (LIFO) for idle_time; a transaction that finds no free connection
 * waits in a FIFO queue.  A reused connection found dead before MAIL was
 * answered is replaced once by a fresh one.
 *
 * Diagnostics: every failure is logged with the message id; recipients
 * that could not be delivered get 451 4.4.1 "reinjection to HOP failed:
 * REASON" (never DONE), or the next hop's own 4xx/5xx reply.
 *
 * SECURITY: talks to a local, trusted MTA, but parses its replies as
 * untrusted (bounded, see deliver_proto.c).  Envelope values are from the
 * original client: control characters are refused before they reach a
 * command line.  Runs with the worker's unprivileged user.
 */
#include <sluice/stage.h>

#include "deliver_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DELIVER_CHUNK 65536 /* body bytes encoded per write round */

typedef struct deliver_conf {
    char *next_hop;
    char *helo_name;
    int xforward;
    double connect_timeout, command_timeout, data_timeout, idle_time;
    long long max_connections, max_idle_connections;
} deliver_conf;

typedef struct deliver_conn deliver_conn;
typedef struct deliver_job deliver_job;

typedef struct deliver_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    deliver_conf *conf;
    struct sockaddr_storage sa;
    socklen_t salen;
    char hop[300];       /* next_hop as shown in replies and logs */
    deliver_conn *conns; /* every open connection */
    deliver_conn *idle;  /* idle pool, most recent first */
    size_t nconns, nidle;
    deliver_job *qhead, *qtail; /* waiting for a connection */
    int stopping;
    int draining; /* deliver_conn_close() is handing out places */
} deliver_inst;

enum {
    CONN_CONNECTING,
    CONN_GREETING,
    CONN_EHLO,
    CONN_HELO,
    CONN_READY, /* set up; idle or about to start */
    CONN_CMDS,  /* RSET/XFORWARD/MAIL/RCPT/DATA replies due */
    CONN_BODY,  /* streaming the content */
    CONN_FINAL  /* waiting for the reply to the dot */
};

enum { CMD_RSET, CMD_XFWD, CMD_MAIL, CMD_RCPT, CMD_DATA };

typedef struct deliver_cmd {
    int kind;
    size_t rcpt;     /* CMD_RCPT: index into job->idx */
    size_t off, len; /* text in conn->ctext */
} deliver_cmd;

struct deliver_conn {
    deliver_inst *in;
    deliver_conn *next, *prev;   /* in->conns */
    deliver_conn *inext, *iprev; /* in->idle */
    int fd, state, idle, dirty, pipelining;
    sluice_io *io;
    sluice_timer *timer;
    deliver_features feat;
    char rbuf[DELIVER_REPLY_MAX * 2];
    size_t rlen;
    char *wbuf;
    size_t wlen, woff, wcap;
    char *ctext;
    size_t clen, ccap;
    deliver_cmd *cmds;
    size_t ncmds, cmdcap, nsent, nreplied;
    deliver_job *job;
    deliver_reply rep;
};

struct deliver_job {
    deliver_inst *in;
    sluice_txn *txn;
    deliver_conn *conn;
    deliver_job *qnext, *qprev;
    int queued, active, reused, retried;
    size_t n;      /* recipients this stage delivers */
    size_t *idx;   /* their indexes in the transaction */
    int *rcode;    /* RCPT reply codes, 0 = none yet */
    char **rreply; /* RCPT replies that were not 2xx */
    size_t naccepted;
    int mail_code, data_code, final_code;
    char mail_reply[DELIVER_ONELINE_MAX], data_reply[DELIVER_ONELINE_MAX];
    char final_reply[DELIVER_ONELINE_MAX];
    /* content source: headers as edited, then the body */
    size_t nhdr, piece, poff;
    sluice_str body;
    deliver_dot dot;
    int content_done;
};

typedef struct deliver_slot {
    deliver_job *job;
} deliver_slot;

static const sluice_directive deliver_directives[] = {
    {"next_hop", SLUICE_CONF_STRING, offsetof(deliver_conf, next_hop),
     "127.0.0.1:10026", 0, 0, NULL,
     "reinjection target: HOST:PORT, [IPV6]:PORT or unix:/PATH"},
    {"helo_name", SLUICE_CONF_STRING, offsetof(deliver_conf, helo_name), "", 0,
     0, NULL, "EHLO name; empty: the engine's host name"},
    {"xforward", SLUICE_CONF_BOOL, offsetof(deliver_conf, xforward), "yes", 0,
     0, NULL, "send XFORWARD with the original client's attributes"},
    {"connect_timeout", SLUICE_CONF_DURATION,
     offsetof(deliver_conf, connect_timeout), "10s", 0, 0, NULL,
     "time limit to connect and read the greeting"},
    {"command_timeout", SLUICE_CONF_DURATION,
     offsetof(deliver_conf, command_timeout), "60s", 0, 0, NULL,
     "time limit for each reply"},
    {"data_timeout", SLUICE_CONF_DURATION, offsetof(deliver_conf, data_timeout),
     "300s", 0, 0, NULL,
     "time limit to send the content and get the final reply"},
    {"max_connections", SLUICE_CONF_INT,
     offsetof(deliver_conf, max_connections), "64", 1, 100000, NULL,
     "connections per worker; more transactions wait"},
    {"max_idle_connections", SLUICE_CONF_INT,
     offsetof(deliver_conf, max_idle_connections), "16", 0, 100000, NULL,
     "idle connections kept for reuse per worker"},
    {"idle_time", SLUICE_CONF_DURATION, offsetof(deliver_conf, idle_time),
     "10s", 0, 0, NULL, "an idle connection is closed after this"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static void deliver_conn_close(deliver_conn *c, int quit);
static int deliver_conn_fail(deliver_conn *c, const char *fmt, ...)
    SLUICE_PRINTF(2, 3);
static int deliver_conn_begin(deliver_conn *c);
static int deliver_conn_open(deliver_inst *in, deliver_job *job);
static void deliver_job_settle(deliver_job *j, const char *reason);

/* ---------------------------------------------------------------- */
/* Set-up                                                           */

static int deliver_parse_hop(deliver_inst *in, const char *hop)
{
    const sluice_host *h = in->host;
    char host[256], port[16];
    const char *colon;
    struct addrinfo hints, *res = NULL;
    int rc;

    snprintf(in->hop, sizeof(in->hop), "%s", hop);
    if (strncmp(hop, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&in->sa;
        size_t pl = strlen(hop + 5);
        if (pl == 0 || pl >= sizeof(un->sun_path)) {
            h->log(in->ctx, NULL, SLUICE_LOG_ERROR,
                   "next_hop %s: bad unix socket path", hop);
            return -1;
        }
        memset(un, 0, sizeof(*un));
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, hop + 5, pl + 1);
        in->salen =
            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1);
        return 0;
    }
    if (hop[0] == '[') {
        const char *rb = strchr(hop, ']');
        if (rb == NULL || rb[1] != ':' ||
            (size_t)(rb - hop - 1) >= sizeof(host))
            goto bad;
        memcpy(host, hop + 1, (size_t)(rb - hop - 1));
        host[rb - hop - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(hop, ':');
        if (colon == NULL || (size_t)(colon - hop) >= sizeof(host) ||
            colon == hop)
            goto bad;
        memcpy(host, hop, (size_t)(colon - hop));
        host[colon - hop] = '\0';
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        goto bad;
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(in->sa)) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "next_hop %s: %s", hop,
               rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&in->sa, res->ai_addr, res->ai_addrlen);
    in->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    h->log(in->ctx, NULL, SLUICE_LOG_ERROR,
           "next_hop '%s': expected HOST:PORT, [IPV6]:PORT or unix:/PATH", hop);
    return -1;
}

static int deliver_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                        void **inst)
{
    deliver_inst *in = calloc(1, sizeof(*in));
    deliver_conf *cf = conf;

    if (in == NULL)
        return -1;
    in->host = host;
    in->ctx = ctx;
    in->conf = cf;
    if (!SLUICE_HOST_HAS(host, body)) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "the engine has no host->body(); deliver needs it");
        free(in);
        return -1;
    }
    if (deliver_parse_hop(in, cf->next_hop ? cf->next_hop : "127.0.0.1:10026") <
        0) {
        free(in);
        return -1;
    }
    if (cf->connect_timeout <= 0 || cf->command_timeout <= 0 ||
        cf->data_timeout <= 0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "connect_timeout, command_timeout and data_timeout must be "
                  "above zero");
        free(in);
        return -1;
    }
    *inst = in;
    return 0;
}

static void deliver_fini(void *inst)
{
    free(inst);
}

/* ---------------------------------------------------------------- */
/* Buffers                                                          */

static int deliver_grow(char **p, size_t *cap, size_t need)
{
    size_t nc = *cap ? *cap : 1024;
    char *np;

    if (need <= *cap)
        return 0;
    while (nc < need)
        nc *= 2;
    if ((np = realloc(*p, nc)) == NULL)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static int deliver_out(deliver_conn *c, const char *s, size_t n)
{
    if (deliver_grow(&c->wbuf, &c->wcap, c->wlen + n) < 0)
        return -1;
    memcpy(c->wbuf + c->wlen, s, n);
    c->wlen += n;
    return 0;
}

static int deliver_cmd_add(deliver_conn *c, int kind, size_t rcpt,
                           const char *s, size_t n)
{
    deliver_cmd *cmd;

    if (c->ncmds == c->cmdcap) {
        size_t nc = c->cmdcap ? c->cmdcap * 2 : 16;
        deliver_cmd *np = realloc(c->cmds, nc * sizeof(*np));
        if (np == NULL)
            return -1;
        c->cmds = np;
        c->cmdcap = nc;
    }
    if (deliver_grow(&c->ctext, &c->ccap, c->clen + n) < 0)
        return -1;
    memcpy(c->ctext + c->clen, s, n);
    cmd = &c->cmds[c->ncmds++];
    cmd->kind = kind;
    cmd->rcpt = rcpt;
    cmd->off = c->clen;
    cmd->len = n;
    c->clen += n;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Jobs                                                             */

static void deliver_queue_remove(deliver_inst *in, deliver_job *j)
{
    if (!j->queued)
        return;
    if (j->qprev)
        j->qprev->qnext = j->qnext;
    else
        in->qhead = j->qnext;
    if (j->qnext)
        j->qnext->qprev = j->qprev;
    else
        in->qtail = j->qprev;
    j->qnext = j->qprev = NULL;
    j->queued = 0;
}

static deliver_job *deliver_queue_pop(deliver_inst *in)
{
    deliver_job *j = in->qhead;

    if (j != NULL)
        deliver_queue_remove(in, j);
    return j;
}

static void deliver_job_reset(deliver_job *j)
{
    size_t i;

    for (i = 0; i < j->n; i++) {
        free(j->rreply[i]);
        j->rreply[i] = NULL;
        j->rcode[i] = 0;
    }
    j->naccepted = 0;
    j->mail_code = j->data_code = j->final_code = 0;
    j->piece = j->poff = 0;
    j->content_done = 0;
    deliver_dot_init(&j->dot);
}

static void deliver_job_free(deliver_job *j)
{
    size_t i;

    if (j == NULL)
        return;
    for (i = 0; i < j->n; i++)
        free(j->rreply[i]);
    free(j->rreply);
    free(j->rcode);
    free(j->idx);
    free(j);
}

/* The transaction is over for this stage: report and hand back. */
static void deliver_job_finish(deliver_job *j, const char *reason)
{
    deliver_inst *in = j->in;

    deliver_queue_remove(in, j);
    j->conn = NULL;
    if (j->active) {
        /* only while the transaction waits for us: after on_abort the
         * engine has settled it */
        deliver_job_settle(j, reason);
        j->active = 0;
        in->host->done(j->txn, SLUICE_CONTINUE);
    }
}

static const char *deliver_reply_for(deliver_job *j, size_t i, deliver_from f)
{
    switch (f) {
    case DELIVER_FROM_MAIL:
        return j->mail_reply;
    case DELIVER_FROM_RCPT:
        return j->rreply[i] ? j->rreply[i] : "";
    case DELIVER_FROM_DATA:
        return j->data_reply;
    case DELIVER_FROM_FINAL:
        return j->final_reply;
    default:
        return "";
    }
}

static void deliver_job_settle(deliver_job *j, const char *reason)
{
    deliver_inst *in = j->in;
    const sluice_host *h = in->host;
    size_t i, done = 0, tmp = 0, rej = 0;
    char line[DELIVER_ONELINE_MAX + 128];

    for (i = 0; i < j->n; i++) {
        deliver_from from;
        sluice_rcpt_state st = deliver_outcome(
            j->mail_code, j->rcode[i], j->data_code, j->final_code, &from);
        const char *r = deliver_reply_for(j, i, from);
        const sluice_addr *a = h->rcpt(j->txn, j->idx[i]);

        if (st == SLUICE_RCPT_DONE) {
            const char *t = r;
            size_t k;
            /* the server's text, without its codes */
            for (k = 0; k < 2 && strchr(t, ' '); k++)
                t = strchr(t, ' ') + 1;
            snprintf(line, sizeof(line), "250 2.0.0 Ok: delivered %s", t);
        } else if (from == DELIVER_FROM_NONE) {
            snprintf(line, sizeof(line),
                     "451 4.4.1 reinjection to %s failed: %s", in->hop,
                     reason ? reason : "no reply");
        } else if (r[0] != (st == SLUICE_RCPT_REJECTED ? '5' : '4')) {
            snprintf(line, sizeof(line),
                     "451 4.4.1 reinjection to %s failed: unexpected reply: "
                     "%s",
                     in->hop, r);
        } else {
            snprintf(line, sizeof(line), "%s", r);
        }
        deliver_safe_text(line);
        h->rcpt_set(j->txn, j->idx[i], st, line);
        if (st == SLUICE_RCPT_DONE) {
            done++;
        } else {
            if (st == SLUICE_RCPT_REJECTED)
                rej++;
            else
                tmp++;
            h->log(in->ctx, j->txn, SLUICE_LOG_WARN,
                   "to=<%s>: not reinjected to %s: %s", a ? a->addr : "?",
                   in->hop, line);
        }
    }
    if (done) {
        h->counter_add(in->ctx, "delivered_messages", 1);
        h->counter_add(in->ctx, "delivered_rcpts", (long long)done);
        h->log(in->ctx, j->txn, SLUICE_LOG_INFO,
               "reinjected to %s for %zu recipient%s: %s", in->hop, done,
               done == 1 ? "" : "s", j->final_reply);
    }
    if (tmp)
        h->counter_add(in->ctx, "tempfail_rcpts", (long long)tmp);
    if (rej)
        h->counter_add(in->ctx, "rejected_rcpts", (long long)rej);
}

/* ---------------------------------------------------------------- */
/* Connections                                                      */

static void deliver_idle_remove(deliver_conn *c)
{
    deliver_inst *in = c->in;

    if (!c->idle)
        return;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        in->idle = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    c->inext = c->iprev = NULL;
    c->idle = 0;
    in->nidle--;
}

static void deliver_conn_events(deliver_conn *c)
{
    deliver_inst *in = c->in;
    int ev = SLUICE_READ;

    if (c->state == CONN_CONNECTING)
        ev = SLUICE_WRITE;
    else if (c->woff < c->wlen || c->state == CONN_BODY)
        ev |= SLUICE_WRITE;
    in->host->io_set(c->io, ev);
}

static void deliver_conn_arm(deliver_conn *c, double secs)
{
    c->in->host->timer_start(c->timer, secs);
}

/* Closes and frees c.  A job still on it is left to the caller. */
static void deliver_conn_close(deliver_conn *c, int quit)
{
    deliver_inst *in = c->in;
    const sluice_host *h = in->host;

    if (quit && c->fd >= 0) {
        static const char q[] = "QUIT\r\n";
        ssize_t rc = send(c->fd, q, sizeof(q) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)rc; /* best effort: we do not wait for the 221 */
    }
    deliver_idle_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        in->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->job && c->job->conn == c)
        c->job->conn = NULL;
    h->io_free(c->io);
    h->timer_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    free(c->wbuf);
    free(c->ctext);
    free(c->cmds);
    free(c);
    in->nconns--;
    /* Waiting transactions can have the freed place.  A connect that fails
     * at once closes again and lands here: the flag keeps that iterative
     * instead of recursing once per queued transaction. */
    if (in->draining)
        return;
    in->draining = 1;
    while (in->qhead != NULL && in->nconns < (size_t)in->conf->max_connections)
        deliver_conn_open(in, deliver_queue_pop(in));
    in->draining = 0;
}

/* Puts c back after a transaction: hand over, pool or close. */
static void deliver_conn_release(deliver_conn *c, int usable)
{
    deliver_inst *in = c->in;
    deliver_job *j;

    c->job = NULL;
    c->ncmds = c->nsent = c->nreplied = 0;
    c->clen = 0;
    c->wlen = c->woff = 0;
    if (!usable) {
        deliver_conn_close(c, 0);
        return;
    }
    c->state = CONN_READY;
    if ((j = deliver_queue_pop(in)) != NULL) {
        c->job = j;
        j->conn = c;
        j->reused = 1;
        in->host->counter_add(in->ctx, "connections_reused", 1);
        deliver_conn_begin(c);
        return;
    }
    if (in->stopping || in->nidle >= (size_t)in->conf->max_idle_connections ||
        in->conf->idle_time <= 0) {
        deliver_conn_close(c, 1);
        return;
    }
    c->idle = 1;
    c->iprev = NULL;
    c->inext = in->idle;
    if (in->idle)
        in->idle->iprev = c;
    in->idle = c;
    in->nidle++;
    deliver_conn_arm(c, in->conf->idle_time);
    deliver_conn_events(c);
}

/* The job on c is done; c goes back if it is in a known state. */
static void deliver_conn_job_done(deliver_conn *c, const char *reason,
                                  int usable)
{
    deliver_job *j = c->job;

    c->job = NULL;
    if (j != NULL) {
        j->conn = NULL;
        deliver_job_finish(j, reason);
    }
    deliver_conn_release(c, usable);
}

/*
 * The connection broke: close it; its job (if any) is retried once on a
 * fresh connection when the connection was reused and nothing was
 * accepted yet, else its open recipients temp-fail.  Returns -1 (c is
 * gone) so callers can `return deliver_conn_fail(...)`.
 */
static int deliver_conn_fail(deliver_conn *c, const char *fmt, ...)
{
    deliver_inst *in = c->in;
    deliver_job *j = c->job;
    char reason[DELIVER_ONELINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    deliver_safe_text(reason);
    c->job = NULL;
    if (j == NULL) {
        deliver_conn_close(c, 0);
        return -1;
    }
    j->conn = NULL;
    if (j->reused && !j->retried && j->mail_code == 0 && j->naccepted == 0 &&
        j->active) {
        in->host->log(in->ctx, j->txn, SLUICE_LOG_INFO,
                      "reused connection to %s failed (%s); retrying on a "
                      "fresh one",
                      in->hop, reason);
        j->retried = 1;
        j->reused = 0;
        deliver_job_reset(j);
        /* frees the place first, then opens anew for this job */
        deliver_conn_close(c, 0);
        if (j->conn == NULL && j->active && !j->queued) {
            if (in->nconns < (size_t)in->conf->max_connections)
                deliver_conn_open(in, j);
            else {
                j->queued = 1;
                j->qprev = NULL;
                j->qnext = in->qhead;
                if (in->qhead)
                    in->qhead->qprev = j;
                else
                    in->qtail = j;
                in->qhead = j;
            }
        }
        return -1;
    }
    in->host->log(in->ctx, j->txn, SLUICE_LOG_WARN,
                  "reinjection to %s failed: %s", in->hop, reason);
    deliver_conn_close(c, 0);
    deliver_job_finish(j, reason);
    return -1;
}

static const char *deliver_state_name(const deliver_conn *c)
{
    switch (c->state) {
    case CONN_CONNECTING:
        return "connecting";
    case CONN_GREETING:
        return "waiting for the greeting";
    case CONN_EHLO:
        return "waiting for the reply to EHLO";
    case CONN_HELO:
        return "waiting for the reply to HELO";
    case CONN_BODY:
        return "sending the message";
    case CONN_FINAL:
        return "waiting for the reply to the end of data";
    case CONN_CMDS: {
        static const char *const k[] = {"RSET", "XFORWARD", "MAIL FROM",
                                        "RCPT TO", "DATA"};
        if (c->nreplied < c->ncmds)
            return k[c->cmds[c->nreplied].kind];
        return "commands";
    }
    default:
        return "idle";
    }
}

static void deliver_timer_cb(sluice_timer *t, void *arg)
{
    deliver_conn *c = arg;

    if (c->idle || (c->job == NULL && c->state == CONN_READY)) {
        deliver_conn_close(c, 1);
        return;
    }
    deliver_conn_fail(c, "timeout (%s)", deliver_state_name(c));
}

/* Writes what is buffered; refills content while streaming.  -1: c gone. */
static int deliver_conn_flush(deliver_conn *c)
{
    deliver_inst *in = c->in;

    for (;;) {
        ssize_t n;
        if (c->woff == c->wlen) {
            c->woff = c->wlen = 0;
            if (c->state == CONN_BODY && c->job != NULL) {
                deliver_job *j = c->job;
                const sluice_host *h = in->host;
                if (deliver_grow(&c->wbuf, &c->wcap, DELIVER_CHUNK) < 0)
                    return deliver_conn_fail(c, "out of memory");
                while (c->wlen + 8 < DELIVER_CHUNK && !j->content_done) {
                    sluice_str src = {NULL, 0};
                    size_t used, np = 4 * j->nhdr + 2;
                    if (j->piece >= np) {
                        c->wlen +=
                            deliver_dot_finish(&j->dot, c->wbuf + c->wlen,
                                               DELIVER_CHUNK - c->wlen);
                        j->content_done = 1;
                        break;
                    }
                    if (j->piece < 4 * j->nhdr) {
                        const sluice_header *hd =
                            h->header(j->txn, j->piece / 4);
                        if (hd != NULL) {
                            switch (j->piece % 4) {
                            case 0:
                                src = hd->name;
                                break;
                            case 1:
                                src.ptr = ":";
                                src.len = 1;
                                break;
                            case 2:
                                src = hd->raw;
                                break;
                            default:
                                src.ptr = "\n";
                                src.len = 1;
                                break;
                            }
                        }
                    } else if (j->piece == 4 * j->nhdr) {
                        src.ptr = "\n"; /* the empty line */
                        src.len = 1;
                    } else {
                        src = j->body;
                    }
                    if (j->poff >= src.len) {
                        j->piece++;
                        j->poff = 0;
                        continue;
                    }
                    c->wlen += deliver_dot_encode(
                        &j->dot, src.ptr + j->poff, src.len - j->poff, &used,
                        c->wbuf + c->wlen, DELIVER_CHUNK - c->wlen);
                    j->poff += used;
                    if (used == 0)
                        break;
                }
                if (c->wlen == 0 && j->content_done) {
                    c->state = CONN_FINAL;
                    deliver_conn_arm(c, in->conf->data_timeout);
                    break;
                }
                continue;
            }
            break;
        }
        n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return deliver_conn_fail(c, "write: %s", strerror(errno));
        }
        c->woff += (size_t)n;
        if (c->state == CONN_BODY)
            deliver_conn_arm(c, in->conf->data_timeout);
    }
    deliver_conn_events(c);
    return 0;
}

/* Queues the commands of c's job and sends the first (or all). */
static int deliver_conn_begin(deliver_conn *c)
{
    deliver_inst *in = c->in;
    const sluice_host *h = in->host;
    deliver_job *j = c->job;
    char line[DELIVER_LINE_MAX * 8];
    ssize_t n;
    size_t i;

    deliver_idle_remove(c);
    c->ncmds = c->nsent = c->nreplied = 0;
    c->clen = 0;
    j->nhdr = h->header_count(j->txn);
    if (c->dirty && deliver_cmd_add(c, CMD_RSET, 0, "RSET\r\n", 6) < 0)
        return deliver_conn_fail(c, "out of memory");
    if (in->conf->xforward && (c->feat.ext & DELIVER_EXT_XFORWARD) &&
        c->feat.xforward != 0) {
        const sluice_client *cl = h->client(j->txn);
        deliver_xfwd x;
        size_t len, off = 0;
        int k, ncmd;
        memset(&x, 0, sizeof(x));
        if (cl != NULL) {
            x.name = cl->name;
            x.addr = cl->addr;
            x.proto = cl->proto;
            x.helo = cl->helo;
            x.ident = cl->ident;
            x.port = cl->port;
        }
        x.source = "REMOTE";
        ncmd = deliver_cmd_xforward(&x, c->feat.xforward, line, sizeof(line),
                                    &len);
        for (k = 0; k < ncmd; k++) {
            char *e = memchr(line + off, '\n', len - off);
            size_t ll = e ? (size_t)(e - (line + off)) + 1 : len - off;
            if (deliver_cmd_add(c, CMD_XFWD, 0, line + off, ll) < 0)
                return deliver_conn_fail(c, "out of memory");
            off += ll;
        }
    }
    {
        const sluice_addr *s = h->sender(j->txn);
        n = deliver_cmd_mail(s ? s->addr : "", s ? s->params : "", &c->feat,
                             line, sizeof(line));
        if (n < 0 || deliver_cmd_add(c, CMD_MAIL, 0, line, (size_t)n) < 0)
            return deliver_conn_fail(c, "cannot build MAIL FROM");
    }
    for (i = 0; i < j->n; i++) {
        const sluice_addr *a = h->rcpt(j->txn, j->idx[i]);
        n = deliver_cmd_rcpt(a ? a->addr : "", a ? a->params : "", &c->feat,
                             line, sizeof(line));
        if (n < 0 || deliver_cmd_add(c, CMD_RCPT, i, line, (size_t)n) < 0)
            return deliver_conn_fail(c, "cannot build RCPT TO");
    }
    if (deliver_cmd_add(c, CMD_DATA, 0, "DATA\r\n", 6) < 0)
        return deliver_conn_fail(c, "out of memory");
    c->pipelining = (c->feat.ext & DELIVER_EXT_PIPELINING) != 0;
    c->state = CONN_CMDS;
    c->wlen = c->woff = 0;
    for (i = 0; i < c->ncmds && (c->pipelining || i == 0); i++) {
        if (deliver_out(c, c->ctext + c->cmds[i].off, c->cmds[i].len) < 0)
            return deliver_conn_fail(c, "out of memory");
        c->nsent++;
    }
    deliver_conn_arm(c, in->conf->command_timeout);
    return deliver_conn_flush(c);
}

/* Without PIPELINING: send the next command. */
static int deliver_conn_next(deliver_conn *c)
{
    deliver_cmd *cmd;

    if (c->nsent >= c->ncmds || c->nsent > c->nreplied)
        return 0;
    cmd = &c->cmds[c->nsent++];
    if (deliver_out(c, c->ctext + cmd->off, cmd->len) < 0)
        return deliver_conn_fail(c, "out of memory");
    deliver_conn_arm(c, c->in->conf->command_timeout);
    return deliver_conn_flush(c);
}

static void deliver_oneline(const deliver_reply *r, char *out, size_t outsz)
{
    deliver_reply_format(r, out, outsz);
}

/* A reply in the CONN_CMDS state.  -1: c is gone or its job finished. */
static int deliver_cmd_reply(deliver_conn *c, const deliver_reply *r)
{
    deliver_inst *in = c->in;
    deliver_job *j = c->job;
    deliver_cmd *cmd;
    char one[DELIVER_ONELINE_MAX];

    if (c->nreplied >= c->nsent)
        return deliver_conn_fail(c, "unexpected reply %d", r->code);
    cmd = &c->cmds[c->nreplied++];
    deliver_oneline(r, one, sizeof(one));
    if (r->code == 421)
        return deliver_conn_fail(c, "server said: %s", one);
    switch (cmd->kind) {
    case CMD_RSET:
        if (r->code / 100 != 2)
            return deliver_conn_fail(c, "RSET refused: %s", one);
        c->dirty = 0;
        break;
    case CMD_XFWD:
        if (r->code / 100 != 2)
            in->host->log(in->ctx, j->txn, SLUICE_LOG_WARN,
                          "%s refused XFORWARD: %s", in->hop, one);
        break;
    case CMD_MAIL:
        c->dirty = 1; /* a transaction is open until the final reply */
        j->mail_code = r->code;
        snprintf(j->mail_reply, sizeof(j->mail_reply), "%s", one);
        if (r->code / 100 != 2 && !c->pipelining) {
            deliver_conn_job_done(c, NULL, 1);
            return -1;
        }
        break;
    case CMD_RCPT:
        j->rcode[cmd->rcpt] = r->code;
        if (r->code / 100 == 2) {
            j->naccepted++;
        } else {
            free(j->rreply[cmd->rcpt]);
            j->rreply[cmd->rcpt] = strdup(one);
        }
        if (!c->pipelining && cmd->rcpt + 1 == j->n && j->naccepted == 0) {
            deliver_conn_job_done(c, NULL, 1);
            return -1;
        }
        break;
    case CMD_DATA:
        j->data_code = r->code;
        snprintf(j->data_reply, sizeof(j->data_reply), "%s", one);
        if (r->code == 354) {
            if (j->mail_code / 100 == 2 && j->naccepted > 0) {
                /* checked in the hook; should it fail now, closing
                 * without the dot makes the server drop the message */
                if (in->host->body(j->txn, &j->body) < 0)
                    return deliver_conn_fail(c, "cannot read the message");
                c->state = CONN_BODY;
                deliver_conn_arm(c, in->conf->data_timeout);
                return deliver_conn_flush(c);
            }
            /* nothing to send to: end the empty message */
            if (deliver_out(c, ".\r\n", 3) < 0)
                return deliver_conn_fail(c, "out of memory");
            c->state = CONN_FINAL;
            deliver_conn_arm(c, in->conf->data_timeout);
            return deliver_conn_flush(c);
        }
        deliver_conn_job_done(c, NULL, 1);
        return -1;
    }
    if (!c->pipelining)
        return deliver_conn_next(c);
    deliver_conn_arm(c, in->conf->command_timeout);
    return 0;
}

static int deliver_conn_reply(deliver_conn *c, const deliver_reply *r)
{
    deliver_inst *in = c->in;
    const sluice_host *h = in->host;
    char one[DELIVER_ONELINE_MAX], line[DELIVER_LINE_MAX];
    int n;

    if (c->idle || (c->job == NULL && c->state == CONN_READY)) {
        deliver_conn_close(c, 0); /* 421 or noise while idle */
        return -1;
    }
    switch (c->state) {
    case CONN_GREETING:
        if (r->code != 220) {
            deliver_oneline(r, one, sizeof(one));
            return deliver_conn_fail(c, "greeting: %s", one);
        }
        {
            const char *helo = in->conf->helo_name && in->conf->helo_name[0]
                                   ? in->conf->helo_name
                                   : h->hostname(in->ctx);
            n = snprintf(line, sizeof(line), "EHLO %s\r\n",
                         helo && helo[0] ? helo : "localhost");
        }
        if (n < 0 || (size_t)n >= sizeof(line) ||
            deliver_out(c, line, (size_t)n) < 0)
            return deliver_conn_fail(c, "cannot build EHLO");
        c->state = CONN_EHLO;
        deliver_conn_arm(c, in->conf->command_timeout);
        return deliver_conn_flush(c);
    case CONN_EHLO:
    case CONN_HELO:
        if (r->code / 100 != 2) {
            deliver_oneline(r, one, sizeof(one));
            if (c->state == CONN_HELO || r->code == 421)
                return deliver_conn_fail(
                    c, "%s refused: %s",
                    c->state == CONN_EHLO ? "EHLO" : "HELO", one);
            {
                const char *helo = in->conf->helo_name && in->conf->helo_name[0]
                                       ? in->conf->helo_name
                                       : h->hostname(in->ctx);
                n = snprintf(line, sizeof(line), "HELO %s\r\n",
                             helo && helo[0] ? helo : "localhost");
            }
            if (n < 0 || (size_t)n >= sizeof(line) ||
                deliver_out(c, line, (size_t)n) < 0)
                return deliver_conn_fail(c, "cannot build HELO");
            c->state = CONN_HELO;
            deliver_conn_arm(c, in->conf->command_timeout);
            return deliver_conn_flush(c);
        }
        if (c->state == CONN_EHLO)
            deliver_ehlo_parse(r, &c->feat);
        else
            memset(&c->feat, 0, sizeof(c->feat));
        c->state = CONN_READY;
        if (c->job == NULL) {
            deliver_conn_release(c, 1);
            return -1;
        }
        if (deliver_conn_begin(c) < 0)
            return -1;
        return 0;
    case CONN_CMDS:
        return deliver_cmd_reply(c, r);
    case CONN_BODY:
    case CONN_FINAL: {
        deliver_job *j = c->job;
        int clean = c->state == CONN_FINAL && r->code != 421;
        j->final_code = r->code;
        deliver_oneline(r, j->final_reply, sizeof(j->final_reply));
        if (c->state == CONN_BODY && r->code / 100 == 2)
            j->final_code = 0; /* a success before the dot is nonsense */
        if (clean)
            c->dirty = 0;
        deliver_conn_job_done(c, "reply before the end of data", clean);
        return -1;
    }
    default:
        return deliver_conn_fail(c, "unexpected reply %d", r->code);
    }
}

static void deliver_conn_read(deliver_conn *c)
{
    ssize_t n;

    n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        if (c->idle) {
            deliver_conn_close(c, 0);
            return;
        }
        deliver_conn_fail(c, "read: %s", strerror(errno));
        return;
    }
    if (n == 0) {
        if (c->idle || (c->job == NULL && c->state == CONN_READY)) {
            deliver_conn_close(c, 0);
            return;
        }
        deliver_conn_fail(c, "connection closed by the server (%s)",
                          deliver_state_name(c));
        return;
    }
    c->rlen += (size_t)n;
    for (;;) {
        const char *why = NULL;
        ssize_t used = deliver_reply_parse(c->rbuf, c->rlen, &c->rep, &why);
        if (used < 0) {
            if (c->idle) {
                deliver_conn_close(c, 0);
                return;
            }
            deliver_conn_fail(c, "%s", why);
            return;
        }
        if (used == 0)
            return;
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
        c->rlen -= (size_t)used;
        if (deliver_conn_reply(c, &c->rep) < 0)
            return;
    }
}

static void deliver_io_cb(sluice_io *io, int ev, void *arg)
{
    deliver_conn *c = arg;

    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err != 0) {
            deliver_conn_fail(c, "connect: %s", strerror(err));
            return;
        }
        c->state = CONN_GREETING;
        deliver_conn_arm(c, c->in->conf->command_timeout);
        deliver_conn_events(c);
        return;
    }
    if ((ev & SLUICE_WRITE) && deliver_conn_flush(c) < 0)
        return;
    if (ev & SLUICE_READ)
        deliver_conn_read(c);
}

/* Opens a new connection for job j.  -1: j was finished (failure). */
static int deliver_conn_open(deliver_inst *in, deliver_job *j)
{
    const sluice_host *h = in->host;
    deliver_conn *c = calloc(1, sizeof(*c));
    int fd = -1, rc;

    if (c == NULL) {
        deliver_job_finish(j, "out of memory");
        return -1;
    }
    fd =
        socket(in->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        char why[200];
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        free(c);
        h->log(in->ctx, j->txn, SLUICE_LOG_WARN, "reinjection to %s failed: %s",
               in->hop, why);
        deliver_job_finish(j, why);
        return -1;
    }
    c->in = in;
    c->fd = fd;
    c->io = h->io_new(in->ctx, fd, deliver_io_cb, c);
    c->timer = h->timer_new(in->ctx, deliver_timer_cb, c);
    c->job = j;
    j->conn = c;
    c->next = in->conns;
    if (in->conns)
        in->conns->prev = c;
    in->conns = c;
    in->nconns++;
    h->counter_add(in->ctx, "connections_opened", 1);
    if (c->io == NULL || c->timer == NULL)
        return deliver_conn_fail(c, "out of memory");
    do
        rc = connect(fd, (struct sockaddr *)&in->sa, in->salen);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS)
        return deliver_conn_fail(c, "connect: %s", strerror(errno));
    c->state = rc == 0 ? CONN_GREETING : CONN_CONNECTING;
    deliver_conn_arm(c, rc == 0 ? in->conf->command_timeout
                                : in->conf->connect_timeout);
    deliver_conn_events(c);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Hooks                                                            */

static int deliver_addr_ok(const sluice_addr *a)
{
    const char *p;
    char tmp[DELIVER_LINE_MAX];
    deliver_features all;

    if (a == NULL || a->addr == NULL)
        return 0;
    for (p = a->addr; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p == 127)
            return 0;
    memset(&all, 0xff, sizeof(all));
    return deliver_params_filter(a->params, &all, 1, tmp, sizeof(tmp)) >= 0 &&
           strlen(a->addr) + 15 + strlen(a->params ? a->params : "") + 3 <
               DELIVER_LINE_MAX;
}

static sluice_verdict deliver_eom(void *inst, sluice_txn *txn, void *slotp)
{
    deliver_inst *in = inst;
    const sluice_host *h = in->host;
    deliver_slot *slot = slotp;
    deliver_job *j;
    size_t n = h->rcpt_count(txn), i;
    sluice_str body;

    if (h->disposition(txn) == SLUICE_QUARANTINE)
        return SLUICE_CONTINUE; /* the quarantine stage owns it */
    if (slot->job != NULL) {
        deliver_job_free(slot->job); /* cannot be active: EOM runs once */
        slot->job = NULL;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (n && ((j->idx = calloc(n, sizeof(*j->idx))) == NULL ||
                            (j->rcode = calloc(n, sizeof(*j->rcode))) == NULL ||
                            (j->rreply = calloc(n, sizeof(char *))) == NULL))) {
        deliver_job_free(j);
        h->log(in->ctx, txn, SLUICE_LOG_ERROR, "out of memory");
        for (i = 0; i < n; i++)
            if (h->rcpt_state(txn, i, NULL) == SLUICE_RCPT_OPEN)
                h->rcpt_set(txn, i, SLUICE_RCPT_TEMPFAIL,
                            "451 4.3.0 reinjection failed: out of memory");
        return SLUICE_CONTINUE;
    }
    j->in = in;
    j->txn = txn;
    deliver_dot_init(&j->dot);
    slot->job = j;
    for (i = 0; i < n; i++) {
        if (h->rcpt_state(txn, i, NULL) != SLUICE_RCPT_OPEN)
            continue; /* another final stage settled it */
        if (!deliver_addr_ok(h->rcpt(txn, i))) {
            h->rcpt_set(txn, i, SLUICE_RCPT_TEMPFAIL,
                        "451 4.1.3 reinjection failed: invalid recipient "
                        "address or parameters");
            h->counter_add(in->ctx, "tempfail_rcpts", 1);
            continue;
        }
        j->idx[j->n++] = i;
    }
    if (j->n == 0)
        return SLUICE_CONTINUE;
    if (!deliver_addr_ok(h->sender(txn)) || h->body(txn, &body) < 0) {
        for (i = 0; i < j->n; i++)
            h->rcpt_set(txn, j->idx[i], SLUICE_RCPT_TEMPFAIL,
                        "451 4.3.0 reinjection failed: invalid sender or "
                        "unreadable message");
        h->counter_add(in->ctx, "tempfail_rcpts", (long long)j->n);
        h->log(in->ctx, txn, SLUICE_LOG_WARN,
               "not reinjected: invalid sender or unreadable message");
        return SLUICE_CONTINUE;
    }
    j->active = 1;
    if (in->idle != NULL) {
        deliver_conn *c = in->idle;
        deliver_idle_remove(c);
        c->job = j;
        j->conn = c;
        j->reused = 1;
        h->counter_add(in->ctx, "connections_reused", 1);
        deliver_conn_begin(c);
    } else if (in->nconns < (size_t)in->conf->max_connections) {
        deliver_conn_open(in, j);
    } else {
        j->queued = 1;
        j->qprev = in->qtail;
        if (in->qtail)
            in->qtail->qnext = j;
        else
            in->qhead = j;
        in->qtail = j;
    }
    return SLUICE_PENDING; /* done() may already have come: the engine
                            * handles a done() inside the hook */
}

static void deliver_cancel(deliver_inst *in, deliver_job *j)
{
    j->active = 0;
    deliver_queue_remove(in, j);
    if (j->conn != NULL) {
        deliver_conn *c = j->conn;
        c->job = NULL;
        j->conn = NULL;
        deliver_conn_close(c, 0); /* mid-transaction: never reused */
    }
}

static void deliver_abort(void *inst, sluice_txn *txn, void *slotp)
{
    deliver_slot *slot = slotp;

    if (slot->job != NULL)
        deliver_cancel(inst, slot->job);
}

static void deliver_close(void *inst, sluice_txn *txn, void *slotp)
{
    deliver_slot *slot = slotp;

    if (slot->job == NULL)
        return;
    deliver_cancel(inst, slot->job);
    deliver_job_free(slot->job);
    slot->job = NULL;
}

static int deliver_worker_start(void *inst)
{
    return 0; /* connections open on demand */
}

static void deliver_worker_stop(void *inst, int graceful)
{
    deliver_inst *in = inst;

    in->stopping = 1;
    while (in->idle != NULL)
        deliver_conn_close(in->idle, 1);
    if (graceful)
        return; /* in-flight transactions finish; then connections close */
    while (in->qhead != NULL) {
        deliver_job *j = deliver_queue_pop(in);
        deliver_job_finish(j, "the worker is stopping");
    }
    while (in->conns != NULL) {
        deliver_conn *c = in->conns;
        deliver_job *j = c->job;
        c->job = NULL;
        if (j != NULL)
            j->conn = NULL;
        deliver_conn_close(c, 0);
        if (j != NULL)
            deliver_job_finish(j, "the worker is stopping");
    }
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(struct sluice_stage),
    .name = "deliver",
    .version = "1.0",
    .description = "reinjects each message to the MTA over SMTP "
                   "(127.0.0.1:10026 by default)",
    .flags = SLUICE_STAGE_FINAL,
    .directives = deliver_directives,
    .conf_size = sizeof(deliver_conf),
    .slot_size = sizeof(deliver_slot),
    .init = deliver_init,
    .worker_start = deliver_worker_start,
    .worker_stop = deliver_worker_stop,
    .fini = deliver_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = deliver_eom},
    .on_abort = deliver_abort,
    .on_close = deliver_close,
};
