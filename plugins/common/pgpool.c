/*
 * pgpool.c - asynchronous PostgreSQL connection pool on the worker's loop
 * (interface and failure model: pgpool.h).
 *
 * Every libpq call here is one of the non-blocking ones: PQconnectStart-
 * Params/PQconnectPoll to connect, PQsend* to send, PQflush while the
 * output buffer is not empty, PQconsumeInput/PQisBusy/PQgetResult to read.
 * Each connection has one host fd watcher (re-created when PQconnectPoll
 * moves to another socket) and one timer (connect timeout); each request
 * has one timer (query_timeout, counted from submission, and the "fail
 * soon" zero timer when the database is down).
 *
 * Connections: state CONNECTING -> IDLE <-> BUSY (a request's statements,
 * one at a time) or ROLLBACK (after a failed statement inside BEGIN).  A
 * connection that breaks or whose request is abandoned is closed and, if
 * there is demand, replaced after the back-off.  One connection is kept
 * open even when idle, so the first message after a quiet hour does not
 * pay for the connection, and so a dead database is noticed before mail
 * needs it.
 *
 * Diagnostics: state changes (connected, lost, unreachable) are logged
 * through host->log once per change, not per request.  Errors reach the
 * caller as result text with the SQLSTATE.
 *
 * SECURITY: the DSN may hold a password; it is never logged.  Values are
 * sent as parameters, never spliced into SQL.
 */
#include "pgpool.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_CONNECTING, C_IDLE, C_BUSY, C_ROLLBACK };

/* A request's steps: BEGIN (txn only), statements 0..n-1, COMMIT. */
enum { P_PREPARE, P_EXEC };

typedef struct pgpool_conn pgpool_conn;

struct pgpool_res {
    PGresult **results; /* one per statement, NULL until it ran */
    size_t n;
    int ok, timeout;
    char error[512];
    char sqlstate[6];
};

struct pgpool_req {
    pgpool *p;
    pgpool_req *next, *prev;   /* p's queue */
    pgpool_req *anext, *aprev; /* every live request (pgpool_free) */
    pgpool_conn *conn;
    pgpool_stmt *stmts;
    size_t n;
    unsigned flags;
    pgpool_cb cb;
    void *arg;
    sluice_timer *timer;
    int step;  /* -1 BEGIN, 0..n-1, n COMMIT */
    int phase; /* P_PREPARE or P_EXEC for a named statement */
    int queued;
    int failing; /* res.error set; the zero timer reports it */
    pgpool_res res;
};

struct pgpool_conn {
    pgpool *p;
    pgpool_conn *next, *prev;
    PGconn *pg;
    sluice_io *io;
    int fd, state, events;
    sluice_timer *timer;
    pgpool_req *req;
    PGresult *cur; /* the running step's last result */
    int failed;    /* the running step had an error result */
    char err[512], sqlstate[6];
    char **prepared;
    size_t nprepared;
};

struct pgpool {
    const sluice_host *host;
    sluice_ctx *ctx;
    char *dsn;
    char options[64], app[64];
    size_t max_conns;
    double connect_timeout, query_timeout, backoff_min, backoff_max;
    double backoff; /* next delay; 0 while connections succeed */
    int down;       /* last attempt failed and none is up */
    int logged_down;
    sluice_timer *retry; /* reconnection after the back-off */
    int retry_armed;
    pgpool_conn *conns;
    pgpool_req *qhead, *qtail;
    pgpool_req *all;
    pgpool_stats st;
    char last_error[512];
};

static void pgpool_dispatch(pgpool *p);
static void pgpool_conn_io(sluice_io *io, int revents, void *arg);
static void pgpool_step_send(pgpool_conn *c);

/* ---------------------------------------------------------------- helpers */

/* libpq's messages end in a newline (or two lines for some): one line. */
static void pgpool_copy_msg(char *dst, size_t dstsz, const char *src)
{
    size_t n;

    snprintf(dst, dstsz, "%s", src && *src ? src : "unknown error");
    n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
        dst[--n] = '\0';
    for (char *s = dst; *s; s++)
        if (*s == '\n' || *s == '\t')
            *s = ' ';
}

static void pgpool_queue_add(pgpool *p, pgpool_req *r)
{
    r->prev = p->qtail;
    r->next = NULL;
    if (p->qtail)
        p->qtail->next = r;
    else
        p->qhead = r;
    p->qtail = r;
    r->queued = 1;
    p->st.queued++;
}

static void pgpool_queue_del(pgpool *p, pgpool_req *r)
{
    if (!r->queued)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        p->qhead = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        p->qtail = r->prev;
    r->next = r->prev = NULL;
    r->queued = 0;
    p->st.queued--;
}

static void pgpool_req_free(pgpool_req *r)
{
    size_t i;

    if (r->aprev)
        r->aprev->anext = r->anext;
    else if (r->p->all == r)
        r->p->all = r->anext;
    if (r->anext)
        r->anext->aprev = r->aprev;

    if (r->timer)
        r->p->host->timer_free(r->timer);
    for (i = 0; i < r->n; i++)
        PQclear(r->res.results[i]);
    free(r->res.results);
    free(r->stmts);
    free(r);
}

/* Detaches the request from queue and connection, calls back, frees. */
static void pgpool_finish(pgpool_req *r, int ok, const char *err,
                          const char *sqlstate, int timeout)
{
    pgpool *p = r->p;

    pgpool_queue_del(p, r);
    if (r->conn) {
        r->conn->req = NULL;
        r->conn = NULL;
    }
    p->host->timer_stop(r->timer);
    r->res.ok = ok;
    r->res.timeout = timeout;
    if (!ok) {
        if (err != r->res.error) /* else stored by pgpool_fail_later */
            pgpool_copy_msg(r->res.error, sizeof(r->res.error), err);
        if (sqlstate != r->res.sqlstate)
            snprintf(r->res.sqlstate, sizeof(r->res.sqlstate), "%s",
                     sqlstate ? sqlstate : "");
        p->st.failures++;
        if (timeout)
            p->st.timeouts++;
    }
    r->cb(r, &r->res, r->arg);
    pgpool_req_free(r);
}

/*
 * Fails a request from the loop, soon: the failure may be found inside
 * pgpool_submit() (a connection refused at once), where the callback must
 * not run.  The request leaves queue and connection now.
 */
static void pgpool_fail_later(pgpool_req *r, const char *err,
                              const char *sqlstate, int timeout)
{
    pgpool_queue_del(r->p, r);
    if (r->conn) {
        r->conn->req = NULL;
        r->conn = NULL;
    }
    pgpool_copy_msg(r->res.error, sizeof(r->res.error), err);
    snprintf(r->res.sqlstate, sizeof(r->res.sqlstate), "%s", sqlstate);
    r->res.timeout = timeout;
    r->failing = 1;
    r->p->host->timer_stop(r->timer);
    r->p->host->timer_start(r->timer, 0);
}

/* Fails every queued request: the database is down, nobody is trying. */
static void pgpool_fail_queue(pgpool *p, const char *why)
{
    char msg[600];

    snprintf(msg, sizeof(msg), "database unavailable: %s", why);
    while (p->qhead)
        pgpool_fail_later(p->qhead, msg, "08006", 0);
}

/* -------------------------------------------------------- connections */

static void pgpool_conn_watch(pgpool_conn *c, int events)
{
    if (c->io && c->events != events) {
        c->p->host->io_set(c->io, events);
        c->events = events;
    }
}

static void pgpool_conn_free(pgpool_conn *c)
{
    pgpool *p = c->p;
    size_t i;

    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->st.conns--;
    if (c->state == C_CONNECTING)
        p->st.connecting--;
    else if (c->state == C_IDLE)
        p->st.idle--;
    if (c->io)
        p->host->io_free(c->io);
    if (c->timer)
        p->host->timer_free(c->timer);
    PQclear(c->cur);
    if (c->pg)
        PQfinish(c->pg);
    for (i = 0; i < c->nprepared; i++)
        free(c->prepared[i]);
    free(c->prepared);
    free(c);
}

static void pgpool_set_state(pgpool_conn *c, int state)
{
    pgpool *p = c->p;

    if (c->state == C_IDLE)
        p->st.idle--;
    else if (c->state == C_CONNECTING)
        p->st.connecting--;
    c->state = state;
    if (state == C_IDLE)
        p->st.idle++;
    else if (state == C_CONNECTING)
        p->st.connecting++;
}

static int pgpool_up(const pgpool *p)
{
    const pgpool_conn *c;

    for (c = p->conns; c; c = c->next)
        if (c->state != C_CONNECTING)
            return 1;
    return 0;
}

static void pgpool_retry_arm(pgpool *p, double delay)
{
    if (p->retry_armed)
        return;
    p->retry_armed = 1;
    p->host->timer_start(p->retry, delay);
}

/*
 * Closes a connection that failed or was abandoned.  Its request (if still
 * attached) fails with `why`; a replacement comes after the back-off.
 */
static void pgpool_conn_close(pgpool_conn *c, const char *why, int timeout)
{
    pgpool *p = c->p;
    pgpool_req *r = c->req;
    int was_up = c->state != C_CONNECTING;
    char msg[512];

    /* `why` often lives in the connection (PQerrorMessage, c->err). */
    pgpool_copy_msg(msg, sizeof(msg), why);
    why = msg;
    c->req = NULL;
    if (r)
        r->conn = NULL;
    pgpool_conn_free(c);
    if (was_up && !pgpool_up(p) && !p->logged_down) {
        p->host->log(p->ctx, NULL, SLUICE_LOG_WARN,
                     "database connection lost: %s", why);
        p->logged_down = 1;
    }
    if (r)
        pgpool_fail_later(r, why, timeout ? "57014" : "08006", timeout);
    /* A lost connection is replaced soon; failed attempts back off. */
    pgpool_retry_arm(p, p->backoff > 0 ? p->backoff : p->backoff_min);
}

static void pgpool_connect_failed(pgpool_conn *c, const char *why)
{
    pgpool *p = c->p;

    /* copied before the connection (which may own `why`) goes */
    pgpool_copy_msg(p->last_error, sizeof(p->last_error), why);
    p->st.connect_failures++;
    pgpool_conn_free(c);
    p->backoff = p->backoff > 0 ? p->backoff * 2 : p->backoff_min;
    if (p->backoff > p->backoff_max)
        p->backoff = p->backoff_max;
    if (!pgpool_up(p) && p->st.connecting == 0) {
        /* Nobody up, nobody trying: waiting requests would only time
         * out.  Tell them now, and new ones too until a connect works. */
        p->down = 1;
        if (!p->logged_down)
            p->host->log(p->ctx, NULL, SLUICE_LOG_WARN,
                         "database unreachable: %s (retrying with "
                         "back-off up to %.0fs)",
                         p->last_error, p->backoff_max);
        p->logged_down = 1;
        pgpool_fail_queue(p, p->last_error);
    }
    pgpool_retry_arm(p, p->backoff);
}

static void pgpool_connected(pgpool_conn *c)
{
    pgpool *p = c->p;

    p->host->timer_stop(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        pgpool_connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    pgpool_set_state(c, C_IDLE);
    pgpool_conn_watch(c, SLUICE_READ);
    p->st.connects++;
    p->backoff = 0;
    p->down = 0;
    p->last_error[0] = '\0';
    if (p->logged_down) {
        p->host->log(p->ctx, NULL, SLUICE_LOG_INFO,
                     "database connection re-established");
        p->logged_down = 0;
    }
    pgpool_dispatch(p);
}

/* Drives PQconnectPoll; follows the socket when libpq changes it. */
static void pgpool_connect_poll(pgpool_conn *c)
{
    pgpool *p = c->p;
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    int fd = PQsocket(c->pg);

    if (st == PGRES_POLLING_OK) {
        pgpool_connected(c);
        return;
    }
    if (st == PGRES_POLLING_FAILED || fd < 0) {
        pgpool_connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    if (fd != c->fd || c->io == NULL) {
        if (c->io)
            p->host->io_free(c->io);
        c->fd = fd;
        c->events = 0;
        if ((c->io = p->host->io_new(p->ctx, fd, pgpool_conn_io, c)) == NULL) {
            pgpool_connect_failed(c, "cannot watch the socket");
            return;
        }
    }
    pgpool_conn_watch(c,
                      st == PGRES_POLLING_READING ? SLUICE_READ : SLUICE_WRITE);
}

static void pgpool_conn_timeout(sluice_timer *t, void *arg)
{
    pgpool_conn *c = arg;
    char msg[128];

    snprintf(msg, sizeof(msg), "no connection within %.1fs",
             c->p->connect_timeout);
    pgpool_connect_failed(c, msg);
}

static void pgpool_conn_open(pgpool *p)
{
    const char *keys[] = {"application_name", "options", "dbname", NULL};
    const char *vals[] = {p->app, p->options, p->dsn, NULL};
    pgpool_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return;
    c->p = p;
    c->fd = -1;
    c->state = C_CONNECTING;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    p->st.conns++;
    p->st.connecting++;
    /* Defaults first: what the DSN says wins. */
    c->pg = PQconnectStartParams(keys, vals, 1);
    c->timer = p->host->timer_new(p->ctx, pgpool_conn_timeout, c);
    if (c->pg == NULL || c->timer == NULL) {
        pgpool_connect_failed(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        pgpool_connect_failed(c, PQerrorMessage(c->pg));
        return;
    }
    p->host->timer_start(c->timer, p->connect_timeout);
    pgpool_connect_poll(c);
}

static void pgpool_retry_fire(sluice_timer *t, void *arg)
{
    pgpool *p = arg;

    p->retry_armed = 0;
    if (p->st.connecting > 0)
        return;
    /* Keep one connection warm; more only when requests wait. */
    if (p->st.conns == 0 || (p->qhead && p->st.conns < p->max_conns))
        pgpool_conn_open(p);
}

/* ---------------------------------------------------------------- requests */

static int pgpool_is_prepared(const pgpool_conn *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nprepared; i++)
        if (strcmp(c->prepared[i], name) == 0)
            return 1;
    return 0;
}

static void pgpool_add_prepared(pgpool_conn *c, const char *name)
{
    char **np = realloc(c->prepared, (c->nprepared + 1) * sizeof(*np));
    char *s = strdup(name);

    if (np == NULL || s == NULL) {
        free(s); /* not remembered: prepared again next time, and fails */
        if (np)
            c->prepared = np;
        return;
    }
    c->prepared = np;
    c->prepared[c->nprepared++] = s;
}

/* Sends output; watches for writability while libpq has some queued. */
static void pgpool_flush(pgpool_conn *c)
{
    int rc = PQflush(c->pg);

    if (rc < 0) {
        pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
        return;
    }
    pgpool_conn_watch(c, rc == 1 ? SLUICE_READ | SLUICE_WRITE : SLUICE_READ);
}

/* Sends the request's current step. */
static void pgpool_step_send(pgpool_conn *c)
{
    pgpool_req *r = c->req;
    int ok;

    if (c->state == C_ROLLBACK) {
        ok = PQsendQuery(c->pg, "ROLLBACK");
    } else if (r->step < 0) {
        ok = PQsendQuery(c->pg, "BEGIN");
    } else if ((size_t)r->step >= r->n) {
        ok = PQsendQuery(c->pg, "COMMIT");
    } else {
        const pgpool_stmt *s = &r->stmts[r->step];
        if (s->name && r->phase == P_PREPARE &&
            !pgpool_is_prepared(c, s->name)) {
            ok = PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL);
        } else if (s->name) {
            r->phase = P_EXEC;
            ok = PQsendQueryPrepared(c->pg, s->name, s->nparams, s->values,
                                     s->lengths, s->formats, 0);
        } else if (s->nparams == 0) {
            ok = PQsendQuery(c->pg, s->sql);
        } else {
            ok = PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->values,
                                   s->lengths, s->formats, 0);
        }
    }
    if (!ok) {
        pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
        return;
    }
    pgpool_flush(c);
}

static void pgpool_run(pgpool_conn *c, pgpool_req *r)
{
    pgpool_queue_del(c->p, r);
    pgpool_set_state(c, C_BUSY);
    c->req = r;
    r->conn = c;
    r->step = (r->flags & PGPOOL_TXN) ? -1 : 0;
    r->phase = P_PREPARE;
    c->failed = 0;
    pgpool_step_send(c);
}

static void pgpool_dispatch(pgpool *p)
{
    pgpool_conn *c;
    size_t waiting = 0;
    pgpool_req *r;

    /* From the top each time: pgpool_run() may close the connection. */
    while (p->qhead) {
        for (c = p->conns; c && c->state != C_IDLE; c = c->next)
            ;
        if (c == NULL)
            break;
        pgpool_run(c, p->qhead);
    }
    for (r = p->qhead; r; r = r->next)
        waiting++;
    /* More connections for what still waits, unless backing off. */
    while (waiting > p->st.connecting && p->st.conns < p->max_conns &&
           p->backoff == 0 && !p->down) {
        size_t before = p->st.conns;
        pgpool_conn_open(p);
        if (p->st.conns <= before || p->down) /* failed at once */
            break;
    }
}

/* The running step produced all its results (PQgetResult gave NULL). */
static void pgpool_step_done(pgpool_conn *c)
{
    pgpool *p = c->p;
    pgpool_req *r = c->req;
    PGresult *res = c->cur;

    c->cur = NULL;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        PQclear(res);
        pgpool_conn_close(c, c->failed ? c->err : PQerrorMessage(c->pg), 0);
        return;
    }
    if (c->state == C_ROLLBACK) {
        PQclear(res);
        pgpool_set_state(c, C_IDLE);
        pgpool_dispatch(p);
        return;
    }
    if (c->failed) {
        PQclear(res);
        c->failed = 0;
        /* Inside BEGIN (and not the COMMIT itself): roll back before the
         * connection serves anyone else.  The caller hears it now. */
        if ((r->flags & PGPOOL_TXN) && r->step >= 0 && (size_t)r->step < r->n)
            pgpool_set_state(c, C_ROLLBACK);
        else
            pgpool_set_state(c, C_IDLE);
        /* 57014: the server's statement_timeout, a timeout too */
        pgpool_finish(r, 0, c->err, c->sqlstate,
                      strcmp(c->sqlstate, "57014") == 0);
        if (c->state == C_ROLLBACK)
            pgpool_step_send(c);
        else
            pgpool_dispatch(p);
        return;
    }
    if (r->step >= 0 && (size_t)r->step < r->n) {
        const pgpool_stmt *s = &r->stmts[r->step];
        if (s->name && r->phase == P_PREPARE) {
            /* prepared on this connection; now execute it */
            PQclear(res);
            pgpool_add_prepared(c, s->name);
            r->phase = P_EXEC;
            pgpool_step_send(c);
            return;
        }
        r->res.results[r->step] = res;
        r->res.n = (size_t)r->step + 1;
    } else {
        PQclear(res);
    }
    r->step++;
    r->phase = P_PREPARE;
    if ((size_t)r->step < r->n ||
        ((r->flags & PGPOOL_TXN) && (size_t)r->step == r->n)) {
        pgpool_step_send(c);
        return;
    }
    pgpool_set_state(c, C_IDLE);
    pgpool_finish(r, 1, NULL, NULL, 0);
    pgpool_dispatch(p);
}

/* Reads what arrived; finishes steps whose results are complete. */
static void pgpool_conn_read(pgpool_conn *c)
{
    PGnotify *n;

    if (!PQconsumeInput(c->pg)) {
        pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
        return;
    }
    while ((n = PQnotifies(c->pg)) != NULL)
        PQfreemem(n); /* LISTEN is not offered (yet): drop them */
    if (c->state == C_IDLE) {
        /* Unsolicited: the server is going away (shutdown, admin kill). */
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
        } else {
            PGresult *res;
            while (!PQisBusy(c->pg) && (res = PQgetResult(c->pg)) != NULL)
                PQclear(res);
            if (PQstatus(c->pg) == CONNECTION_BAD)
                pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
        }
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        ExecStatusType st;

        if (res == NULL) {
            /* Continues in the same connection state or another; the
             * next step's results come with later socket events. */
            pgpool_step_done(c);
            return;
        }
        st = PQresultStatus(res);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            PQclear(c->cur);
            c->cur = res;
            continue;
        }
        if (!c->failed) {
            const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            c->failed = 1;
            if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
                st == PGRES_COPY_BOTH)
                snprintf(c->err, sizeof(c->err), "COPY is not supported");
            else
                pgpool_copy_msg(c->err, sizeof(c->err),
                                prim ? prim : PQresultErrorMessage(res));
            snprintf(c->sqlstate, sizeof(c->sqlstate), "%s",
                     state ? state : "");
        }
        PQclear(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
            st == PGRES_COPY_BOTH) {
            pgpool_conn_close(c, c->err, 0);
            return;
        }
    }
}

static void pgpool_conn_io(sluice_io *io, int revents, void *arg)
{
    pgpool_conn *c = arg;

    if (c->state == C_CONNECTING) {
        pgpool_connect_poll(c);
        return;
    }
    if (revents & SLUICE_WRITE) {
        int rc = PQflush(c->pg);
        if (rc < 0) {
            pgpool_conn_close(c, PQerrorMessage(c->pg), 0);
            return;
        }
        pgpool_conn_watch(c,
                          rc == 1 ? SLUICE_READ | SLUICE_WRITE : SLUICE_READ);
    }
    if (revents & SLUICE_READ)
        pgpool_conn_read(c);
}

/* query_timeout, or the zero-delay "database down" answer. */
static void pgpool_req_timer(sluice_timer *t, void *arg)
{
    pgpool_req *r = arg;
    pgpool *p = r->p;
    char msg[160];

    if (r->failing) {
        pgpool_finish(r, 0, r->res.error, r->res.sqlstate, r->res.timeout);
        return;
    }
    if (p->down && r->queued && r->step == -2) {
        char why[600];
        snprintf(why, sizeof(why), "database unavailable: %s",
                 p->last_error[0] ? p->last_error : "not connected");
        pgpool_finish(r, 0, why, "08006", 0);
        return;
    }
    snprintf(msg, sizeof(msg), "no answer within %.1fs (query_timeout)",
             p->query_timeout);
    if (r->conn) {
        /* Running: its connection is in an unknown state; close it. */
        pgpool_conn *c = r->conn;
        c->req = NULL;
        r->conn = NULL;
        pgpool_conn_close(c, msg, 1);
    }
    pgpool_finish(r, 0, msg, "57014", 1);
}

pgpool_req *pgpool_submit(pgpool *p, const pgpool_stmt *stmts, size_t n,
                          unsigned flags, pgpool_cb cb, void *arg)
{
    pgpool_req *r;

    if (n == 0 || cb == NULL || (r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->p = p;
    r->n = n;
    r->flags = flags;
    r->cb = cb;
    r->arg = arg;
    r->step = -2; /* not started */
    r->stmts = malloc(n * sizeof(*stmts));
    r->res.results = calloc(n, sizeof(*r->res.results));
    r->timer = p->host->timer_new(p->ctx, pgpool_req_timer, r);
    if (r->stmts == NULL || r->res.results == NULL || r->timer == NULL) {
        pgpool_req_free(r);
        return NULL;
    }
    memcpy(r->stmts, stmts, n * sizeof(*stmts));
    r->anext = p->all;
    if (p->all)
        p->all->aprev = r;
    p->all = r;
    p->st.requests++;
    pgpool_queue_add(p, r);
    if (p->down && p->st.connecting == 0) {
        /* Known down: answer from the loop at once, not after the
         * timeout (the retry timer keeps probing). */
        p->host->timer_start(r->timer, 0);
        return r;
    }
    p->host->timer_start(r->timer, p->query_timeout);
    pgpool_dispatch(p);
    return r;
}

pgpool_req *pgpool_query(pgpool *p, const char *sql, int nparams,
                         const char *const *values, pgpool_cb cb, void *arg)
{
    pgpool_stmt s = {NULL, sql, nparams, values, NULL, NULL};

    return pgpool_submit(p, &s, 1, 0, cb, arg);
}

void pgpool_cancel(pgpool_req *r)
{
    pgpool *p;

    if (r == NULL)
        return;
    p = r->p;
    if (r->conn) {
        /* Mid-flight: the connection's state is unknown; drop it. */
        pgpool_conn *c = r->conn;
        c->req = NULL;
        r->conn = NULL;
        pgpool_conn_free(c);
        pgpool_retry_arm(p, p->backoff > 0 ? p->backoff : p->backoff_min);
    }
    pgpool_queue_del(p, r);
    pgpool_req_free(r);
}

/* ---------------------------------------------------------------- pool */

/* Appends key='value', escaped as libpq's conninfo wants. */
static int pgpool_dsn_kv(char *buf, size_t n, size_t *len, const char *key,
                         const char *val)
{
    size_t l = *len;
    int w = snprintf(buf + l, n - l, "%s%s='", l ? " " : "", key);

    if (w < 0 || (size_t)w >= n - l)
        return -1;
    l += (size_t)w;
    for (; *val; val++) {
        if (l + 3 >= n)
            return -1;
        if (*val == '\\' || *val == '\'')
            buf[l++] = '\\';
        buf[l++] = *val;
    }
    if (l + 2 >= n)
        return -1;
    buf[l++] = '\'';
    buf[l] = '\0';
    *len = l;
    return 0;
}

int pgpool_private_dsn(const char *state_dir, char *buf, size_t n)
{
    char run[4096], pass[4096];
    size_t len = 0;

    if (n == 0)
        return -1;
    buf[0] = '\0';
    if ((size_t)snprintf(run, sizeof(run), "%s/pg/run", state_dir) >=
            sizeof(run) ||
        (size_t)snprintf(pass, sizeof(pass), "%s/pg/pgpass", state_dir) >=
            sizeof(pass))
        return -1;
    if (pgpool_dsn_kv(buf, n, &len, "host", run) < 0 ||
        pgpool_dsn_kv(buf, n, &len, "dbname", "sluice") < 0 ||
        pgpool_dsn_kv(buf, n, &len, "user", "sluice") < 0 ||
        pgpool_dsn_kv(buf, n, &len, "passfile", pass) < 0) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

int pgpool_stage_dsn(const sluice_host *host, sluice_ctx *ctx,
                     const char *own, char *buf, size_t n)
{
    const char *eng = NULL;

    if (n == 0)
        return -1;
    buf[0] = '\0';
    if (SLUICE_HOST_HAS(host, database))
        eng = host->database(ctx);
    if (own == NULL || own[0] == '\0')
        own = eng;
    if (own != NULL && own[0] != '\0') {
        if (strlen(own) >= n)
            return -1;
        memcpy(buf, own, strlen(own) + 1);
        return 0;
    }
    if (!SLUICE_HOST_HAS(host, state_dir))
        return -1;
    return pgpool_private_dsn(host->state_dir(ctx), buf, n);
}

pgpool *pgpool_new(const sluice_host *host, sluice_ctx *ctx,
                   const pgpool_conf *conf, char *err, size_t errlen)
{
    pgpool *p;
    char *perr = NULL;
    PQconninfoOption *opts;

    if (conf->dsn == NULL) {
        snprintf(err, errlen, "no database DSN");
        return NULL;
    }
    /* A syntax error in the DSN is a configuration error, not an outage. */
    if ((opts = PQconninfoParse(conf->dsn, &perr)) == NULL) {
        char m[400];
        pgpool_copy_msg(m, sizeof(m), perr ? perr : "out of memory");
        snprintf(err, errlen, "bad database DSN: %s", m);
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);
    if ((p = calloc(1, sizeof(*p))) == NULL ||
        (p->dsn = strdup(conf->dsn)) == NULL) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->host = host;
    p->ctx = ctx;
    p->max_conns = conf->max_conns ? conf->max_conns : 4;
    p->connect_timeout = conf->connect_timeout > 0 ? conf->connect_timeout : 5;
    p->query_timeout = conf->query_timeout > 0 ? conf->query_timeout : 10;
    p->backoff_min = conf->backoff_min > 0 ? conf->backoff_min : 0.2;
    p->backoff_max = conf->backoff_max > 0 ? conf->backoff_max : 30;
    if (p->backoff_max < p->backoff_min)
        p->backoff_max = p->backoff_min;
    snprintf(p->app, sizeof(p->app), "%s",
             conf->app_name ? conf->app_name : "sluice");
    /* The server gives up too (a second later than we do, so our timer
     * normally speaks first), so an abandoned statement does not run on. */
    snprintf(p->options, sizeof(p->options), "-c statement_timeout=%lld",
             (long long)(p->query_timeout * 1000) + 1000);
    if ((p->retry = host->timer_new(ctx, pgpool_retry_fire, p)) == NULL) {
        free(p->dsn);
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* First connection from the loop, not from here (worker_start). */
    pgpool_retry_arm(p, 0);
    return p;
}

void pgpool_free(pgpool *p)
{
    if (p == NULL)
        return;
    while (p->all) {
        pgpool_req *r = p->all;
        pgpool_queue_del(p, r);
        if (r->conn) {
            r->conn->req = NULL;
            r->conn = NULL;
        }
        pgpool_req_free(r);
    }
    while (p->conns)
        pgpool_conn_free(p->conns);
    p->host->timer_free(p->retry);
    free(p->dsn);
    free(p);
}

void pgpool_stats_get(const pgpool *p, pgpool_stats *st)
{
    *st = p->st;
    st->up = pgpool_up(p);
}

const char *pgpool_last_error(const pgpool *p)
{
    return p->last_error;
}

/* ---------------------------------------------------------------- results */

static const PGresult *pgpool_res_at(const pgpool_res *r, size_t i)
{
    return r && i < r->n ? r->results[i] : NULL;
}

int pgpool_res_ok(const pgpool_res *r)
{
    return r->ok;
}

int pgpool_res_timeout(const pgpool_res *r)
{
    return r->timeout;
}

const char *pgpool_res_error(const pgpool_res *r)
{
    return r->ok ? "" : r->error;
}

const char *pgpool_res_sqlstate(const pgpool_res *r)
{
    return r->sqlstate;
}

size_t pgpool_res_count(const pgpool_res *r)
{
    return r->n;
}

int pgpool_res_rows(const pgpool_res *r, size_t i)
{
    const PGresult *x = pgpool_res_at(r, i);
    return x ? PQntuples(x) : 0;
}

int pgpool_res_cols(const pgpool_res *r, size_t i)
{
    const PGresult *x = pgpool_res_at(r, i);
    return x ? PQnfields(x) : 0;
}

long long pgpool_res_affected(const pgpool_res *r, size_t i)
{
    const PGresult *x = pgpool_res_at(r, i);
    const char *s = x ? PQcmdTuples((PGresult *)x) : "";
    return *s ? atoll(s) : 0;
}

static int pgpool_res_in(const PGresult *x, int row, int col)
{
    return x && row >= 0 && col >= 0 && row < PQntuples(x) &&
           col < PQnfields(x);
}

const char *pgpool_res_value(const pgpool_res *r, size_t i, int row, int col)
{
    const PGresult *x = pgpool_res_at(r, i);
    return pgpool_res_in(x, row, col) ? PQgetvalue(x, row, col) : "";
}

int pgpool_res_length(const pgpool_res *r, size_t i, int row, int col)
{
    const PGresult *x = pgpool_res_at(r, i);
    return pgpool_res_in(x, row, col) ? PQgetlength(x, row, col) : 0;
}

int pgpool_res_isnull(const pgpool_res *r, size_t i, int row, int col)
{
    const PGresult *x = pgpool_res_at(r, i);
    return pgpool_res_in(x, row, col) ? PQgetisnull(x, row, col) : 1;
}
