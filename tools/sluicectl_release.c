/*
 * sluicectl_release.c - release quarantined messages over one SMTP session.
 * See sluicectl_release.h for the interface, the transaction rules and the
 * SECURITY note.
 */
#include "sluicectl_release.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* SMTP client                                                      */

typedef struct rel_smtp {
    int fd;
    char buf[8192];
    size_t len;
    char last[512]; /* the last reply line, for messages */
} rel_smtp;

static int rel_smtp_connect(rel_smtp *s, const char *hop, double timeout)
{
    char host[256], port[16];
    const char *colon;
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv;

    s->fd = -1;
    s->len = 0;
    if (hop[0] == '[') {
        const char *rb = strchr(hop, ']');
        if (rb == NULL || rb[1] != ':' ||
            (size_t)(rb - hop - 1) >= sizeof(host))
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(rb - hop - 1), hop + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(hop, ':');
        if (colon == NULL || colon == hop ||
            (size_t)(colon - hop) >= sizeof(host))
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - hop), hop);
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    tv.tv_sec = (time_t)timeout;
    tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
    for (ai = res; ai; ai = ai->ai_next) {
        s->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (s->fd < 0)
            continue;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(s->fd);
        s->fd = -1;
    }
    freeaddrinfo(res);
    return s->fd < 0 ? -1 : 0;
}

static int rel_smtp_write(rel_smtp *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one (possibly multi-line) reply; its code, or -1. */
static int rel_smtp_reply(rel_smtp *s)
{
    for (;;) {
        char *nl = memchr(s->buf, '\n', s->len);
        if (nl != NULL) {
            size_t ll = (size_t)(nl - s->buf) + 1;
            int more = ll >= 4 && s->buf[3] == '-';
            int code = ll >= 4 && isdigit((unsigned char)s->buf[0])
                           ? atoi(s->buf)
                           : -1;
            size_t tl = ll;
            while (tl > 0 && (s->buf[tl - 1] == '\n' || s->buf[tl - 1] == '\r'))
                tl--;
            snprintf(s->last, sizeof(s->last), "%.*s", (int)tl, s->buf);
            memmove(s->buf, s->buf + ll, s->len - ll);
            s->len -= ll;
            if (code < 0)
                return -1;
            if (!more)
                return code;
            continue;
        }
        if (s->len == sizeof(s->buf))
            return -1; /* a line too long: not an MTA we know */
        ssize_t r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(s->last, sizeof(s->last), "connection %s",
                     r == 0 ? "closed" : strerror(errno));
            return -1;
        }
        s->len += (size_t)r;
    }
}

static int rel_smtp_cmd(rel_smtp *s, const char *line)
{
    char buf[1300];
    int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

    /* one write per command: a line and its CRLF in two segments would
     * wait for the peer's delayed ACK (Nagle), 40 ms per command */
    if (n < 0 || (size_t)n >= sizeof(buf) ||
        rel_smtp_write(s, buf, (size_t)n) < 0) {
        snprintf(s->last, sizeof(s->last), "write failed: %s", strerror(errno));
        return -1;
    }
    return rel_smtp_reply(s);
}

/* The message as SMTP data: CRLF lines, dot-stuffed, then ".". */
static int rel_smtp_data(rel_smtp *s, const char *p, size_t n)
{
    char out[65536];
    size_t o = 0, i;
    int bol = 1;

    for (i = 0; i < n; i++) {
        if (o + 4 > sizeof(out)) {
            if (rel_smtp_write(s, out, o) < 0)
                return -1;
            o = 0;
        }
        if (bol && p[i] == '.')
            out[o++] = '.';
        bol = 0;
        if (p[i] == '\n') {
            if (i == 0 || p[i - 1] != '\r')
                out[o++] = '\r';
            out[o++] = '\n';
            bol = 1;
        } else if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')) {
            out[o++] = '\r'; /* a bare CR becomes a line end */
            out[o++] = '\n';
            bol = 1;
        } else {
            out[o++] = p[i];
        }
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    if (o + 3 > sizeof(out)) {
        if (rel_smtp_write(s, out, o) < 0)
            return -1;
        o = 0;
    }
    memcpy(out + o, ".\r\n", 3); /* with the last bytes: no Nagle wait */
    o += 3;
    if (rel_smtp_write(s, out, o) < 0)
        return -1;
    return 0;
}

static int rel_addr_ok(const char *a)
{
    for (; *a; a++)
        if ((unsigned char)*a < 0x20 || *a == 0x7f || *a == '<' || *a == '>')
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- */
/* One release run                                                  */

typedef struct rel_run {
    PGconn *c;
    const sluicectl_release_opts *o;
    const char *hop;
    double timeout;
    rel_smtp s;
    int connected;
    int hop_down; /* a connection failed: the rest fail at once */
    char down_why[300];
    char helo[256];
    char err[600];
} rel_run;

static void rel_err(rel_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rel_err(rel_run *r, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    n = strlen(r->err);
    while (n > 0 && (r->err[n - 1] == '\n' || r->err[n - 1] == ' '))
        r->err[--n] = '\0';
}

/* The result of sql, or NULL with r->err set. */
static PGresult *rel_exec(rel_run *r, const char *sql, int n,
                          const char *const *v, int binary)
{
    PGresult *res = PQexecParams(r->c, sql, n, NULL, v, NULL, NULL, binary);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    rel_err(r, "database: %s",
            res ? PQresultErrorMessage(res) : PQerrorMessage(r->c));
    PQclear(res);
    return NULL;
}

static int rel_simple(rel_run *r, const char *sql)
{
    PGresult *res = rel_exec(r, sql, 0, NULL, 0);

    PQclear(res);
    return res ? 0 : -1;
}

static void rel_close(rel_run *r)
{
    if (r->connected) {
        close(r->s.fd);
        r->connected = 0;
    }
}

/* An open session, greeted and EHLO'd; 0, or -1 with r->err. */
static int rel_session(rel_run *r)
{
    char line[300];
    int code;

    if (r->connected)
        return 0;
    if (r->hop_down) {
        rel_err(r, "%s", r->down_why);
        return -1;
    }
    memset(&r->s, 0, sizeof(r->s));
    errno = 0;
    if (rel_smtp_connect(&r->s, r->hop, r->timeout) < 0) {
        snprintf(r->down_why, sizeof(r->down_why), "cannot connect to %s%s%s",
                 r->hop, errno ? ": " : "", errno ? strerror(errno) : "");
        r->hop_down = 1;
        rel_err(r, "%s", r->down_why);
        return -1;
    }
    r->connected = 1;
    snprintf(line, sizeof(line), "EHLO %s", r->helo);
    if ((code = rel_smtp_reply(&r->s)) != 220 ||
        (code = rel_smtp_cmd(&r->s, line)) != 250) {
        snprintf(r->down_why, sizeof(r->down_why), "%s: %s", r->hop,
                 r->s.last[0] ? r->s.last : "no greeting");
        r->hop_down = 1;
        rel_err(r, "%s", r->down_why);
        rel_close(r);
        return -1;
    }
    return 0;
}

/* After a refused command: RSET (a broken session is closed instead). */
static void rel_reset(rel_run *r, int code)
{
    if (code < 0 || rel_smtp_cmd(&r->s, "RSET") != 250)
        rel_close(r);
}

/* One mail transaction; ok[i] set for each recipient taken.  0 when the
 * MTA took the data (some recipients may be refused), -1 otherwise. */
static int rel_send(rel_run *r, const char *sender, const char *const *rc,
                    size_t n, const char *raw, size_t rawlen, int *ok)
{
    char line[1200];
    size_t i, accepted = 0;
    int code, retried = 0;

again:
    if (rel_session(r) < 0)
        return -1;
    snprintf(line, sizeof(line), "MAIL FROM:<%s>", sender);
    if ((code = rel_smtp_cmd(&r->s, line)) != 250) {
        if (code < 0 && !retried) {
            /* an idle session the MTA closed (its timeout): once more */
            rel_close(r);
            retried = 1;
            goto again;
        }
        rel_err(r, "%s: MAIL: %s", r->hop, r->s.last);
        rel_reset(r, code);
        return -1;
    }
    for (i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "RCPT TO:<%s>", rc[i]);
        code = rel_smtp_cmd(&r->s, line);
        if (code >= 200 && code < 300) {
            ok[i] = 1;
            accepted++;
        } else {
            size_t l = strlen(r->err);
            snprintf(r->err + l, sizeof(r->err) - l, "%s<%s> refused: %s",
                     l ? "; " : "", rc[i], r->s.last);
            if (code < 0)
                goto broken;
        }
    }
    if (accepted == 0) {
        rel_reset(r, 0);
        return -1;
    }
    if ((code = rel_smtp_cmd(&r->s, "DATA")) != 354) {
        rel_err(r, "%s: DATA: %s", r->hop, r->s.last);
        rel_reset(r, code);
        goto none;
    }
    if (rel_smtp_data(&r->s, raw, rawlen) < 0 ||
        (code = rel_smtp_reply(&r->s)) != 250) {
        rel_err(r, "%s: end of data: %s", r->hop,
                r->s.last[0] ? r->s.last : "no reply");
        if (code < 400)
            rel_close(r); /* no clear refusal: never reuse the session */
        goto none;
    }
    return 0;
broken:
    rel_close(r);
none:
    for (i = 0; i < n; i++)
        ok[i] = 0;
    return -1;
}

/* See sluicectl_release.h. */
long long sluicectl_quarantine_ref(PGconn *c, const char *ref, int lock,
                                   char *err, size_t errsz)
{
    const char *v[1] = {ref};
    PGresult *res;
    long long rid = 0;
    size_t n;

    res = PQexecParams(c,
                       lock ? "SELECT id FROM quarantine_message WHERE "
                              "id::text = $1 OR msg_id = $1 ORDER BY id "
                              "LIMIT 2 FOR UPDATE"
                            : "SELECT id FROM quarantine_message WHERE "
                              "id::text = $1 OR msg_id = $1 ORDER BY id "
                              "LIMIT 2",
                       1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errsz, "database: %s",
                 res ? PQresultErrorMessage(res) : PQerrorMessage(c));
        n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        rid = -1;
    } else if (PQntuples(res) != 1) {
        snprintf(err, errsz, "%s '%s'%s",
                 PQntuples(res) ? "more than one message is" : "no message",
                 ref, PQntuples(res) ? ": give the row id" : "");
    } else {
        rid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rid;
}

static const char rel_mark_sql[] =
    "INSERT INTO quarantine_rcpt (message_id, rcpt, status, status_by) "
    "VALUES ($1, lower($2), 'released', $3) ON CONFLICT (message_id, rcpt) "
    "DO UPDATE SET status = 'released', status_at = now(), status_by = $3";

/* Back to synchronous commits, and one that waits for the WAL flush of
 * every commit before it (a transaction with an id writes a commit
 * record; flushing it flushes all earlier WAL). */
static void rel_flush(rel_run *r)
{
    (void)rel_simple(r, "RESET synchronous_commit");
    if (rel_simple(r, "BEGIN") == 0) {
        PGresult *res = rel_exec(r, "SELECT txid_current()", 0, NULL, 0);
        PQclear(res);
        (void)rel_simple(r, res ? "COMMIT" : "ROLLBACK");
    }
}

/* Releases one message, reports it to cb, its status in *status.  0, or
 * -1 if the database connection broke. */
static int rel_one(rel_run *r, const char *ref, sluicectl_release_cb cb,
                   void *arg, int *status)
{
    sluicectl_release_result res;
    char idbuf[32];
    const char *p[3];
    const char *by = r->o->by ? r->o->by : "sluicectl";
    PGresult *m = NULL, *rr = NULL;
    const char **rc = NULL;
    int *ok = NULL, dbgone = 0;
    size_t n = 0, i;
    long long rid;

    memset(&res, 0, sizeof(res));
    res.ref = ref;
    res.status = SLUICECTL_REL_FAILED;
    r->err[0] = '\0';
    if (rel_simple(r, "BEGIN") < 0)
        goto out;
    if ((rid = sluicectl_quarantine_ref(r->c, ref, 1, r->err, sizeof(r->err))) <= 0) {
        if (rid == 0)
            res.status = SLUICECTL_REL_NOTFOUND;
        goto rollback;
    }
    res.id = rid;
    snprintf(idbuf, sizeof(idbuf), "%lld", rid);
    p[0] = idbuf;
    if ((m = rel_exec(r,
                      "SELECT raw, sender FROM quarantine_message WHERE id = "
                      "$1",
                      1, p, 1)) == NULL)
        goto rollback;
    if (r->o->nto == 0) {
        if ((rr = rel_exec(r,
                           "SELECT rcpt FROM quarantine_rcpt WHERE "
                           "message_id = $1 AND status = 'quarantined' "
                           "ORDER BY rcpt",
                           1, p, 0)) == NULL)
            goto rollback;
        n = (size_t)PQntuples(rr);
    } else {
        n = r->o->nto;
    }
    if (n == 0) {
        rel_err(r, "no recipient left in quarantine (use --to ADDR)");
        res.status = SLUICECTL_REL_NOTFOUND;
        goto rollback;
    }
    rc = calloc(n, sizeof(*rc));
    ok = calloc(n, sizeof(*ok));
    if (rc == NULL || ok == NULL) {
        rel_err(r, "out of memory");
        goto rollback;
    }
    res.rcpts = rc;
    res.released = ok;
    res.nrcpts = n;
    for (i = 0; i < n; i++) {
        rc[i] = r->o->nto ? r->o->to[i] : PQgetvalue(rr, (int)i, 0);
        if (!rel_addr_ok(rc[i])) {
            rel_err(r, "bad recipient address");
            goto rollback;
        }
    }
    /* a binary text value is its bytes; libpq appends a NUL */
    if (!rel_addr_ok(PQgetvalue(m, 0, 1))) {
        rel_err(r, "bad stored sender");
        goto rollback;
    }
    if (rel_send(r, PQgetvalue(m, 0, 1), rc, n, PQgetvalue(m, 0, 0),
                 (size_t)PQgetlength(m, 0, 0), ok) < 0)
        goto rollback;
    /* the MTA has it: from here a failure means "delivered, unrecorded" */
    res.status = SLUICECTL_REL_UNRECORDED;
    {
        char keep[sizeof(r->err)];
        snprintf(keep, sizeof(keep), "%s", r->err); /* refused rcpts */
        for (i = 0; i < n; i++) {
            PGresult *u;
            if (!ok[i])
                continue;
            p[1] = rc[i];
            p[2] = by;
            if ((u = rel_exec(r, rel_mark_sql, 3, p, 0)) == NULL)
                goto rollback;
            PQclear(u);
            res.nreleased++;
        }
        if (rel_simple(r, "COMMIT") < 0) {
            res.nreleased = 0;
            goto out;
        }
        snprintf(r->err, sizeof(r->err), "%s", keep);
    }
    res.status = res.nreleased == n ? SLUICECTL_REL_OK : SLUICECTL_REL_PARTIAL;
    goto out;
rollback:
    if (res.status == SLUICECTL_REL_UNRECORDED)
        res.nreleased = 0;
    {
        char keep[sizeof(r->err)];
        snprintf(keep, sizeof(keep), "%s", r->err);
        (void)rel_simple(r, "ROLLBACK");
        snprintf(r->err, sizeof(r->err), "%s", keep);
    }
out:
    if (res.status == SLUICECTL_REL_UNRECORDED) {
        char keep[sizeof(r->err)];
        snprintf(keep, sizeof(keep), "%s", r->err);
        rel_err(r,
                "delivered to %s, but the database could not record it (the "
                "rows still say quarantined): %s",
                r->hop, keep);
    }
    dbgone = PQstatus(r->c) != CONNECTION_OK;
    res.error = r->err;
    *status = res.status;
    cb(&res, arg);
    PQclear(m);
    PQclear(rr);
    free(rc);
    free(ok);
    return dbgone ? -1 : 0;
}

int sluicectl_release(PGconn *c, const char *const *ids, size_t n,
                      const sluicectl_release_opts *o, sluicectl_release_cb cb,
                      void *arg)
{
    rel_run r;
    size_t i;
    int bad = 0;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.o = o;
    r.hop = o->next_hop ? o->next_hop : "127.0.0.1:10026";
    r.timeout = o->timeout > 0 ? o->timeout : 60;
    if (o->helo)
        snprintf(r.helo, sizeof(r.helo), "%s", o->helo);
    else if (gethostname(r.helo, sizeof(r.helo)) != 0 || r.helo[0] == '\0')
        snprintf(r.helo, sizeof(r.helo), "localhost");
    r.helo[sizeof(r.helo) - 1] = '\0';
    /* Each message's COMMIT does not wait for its WAL flush (one fsync
     * per message would bound the rate to the disk's); the run ends with
     * one synchronous commit, which flushes them all (rel_flush). */
    (void)rel_simple(&r, "SET synchronous_commit = off");
    for (i = 0; i < n; i++) {
        sluicectl_release_result res;
        int st = SLUICECTL_REL_FAILED;
        int rc = rel_one(&r, ids[i], cb, arg, &st);
        if (st != SLUICECTL_REL_OK)
            bad++;
        if (rc < 0) {
            /* the database is gone: report the rest, try nothing more */
            for (i++; i < n; i++) {
                memset(&res, 0, sizeof(res));
                res.ref = ids[i];
                res.status = SLUICECTL_REL_SKIPPED;
                res.error = "not tried: the database connection broke";
                cb(&res, arg);
                bad++;
            }
            if (r.connected)
                (void)rel_smtp_cmd(&r.s, "QUIT");
            rel_close(&r);
            return -1;
        }
    }
    if (r.connected)
        (void)rel_smtp_cmd(&r.s, "QUIT");
    rel_close(&r);
    rel_flush(&r);
    return bad;
}

const char *sluicectl_release_status_name(int status)
{
    static const char *const names[] = {"released", "partial",    "not found",
                                        "failed",   "unrecorded", "skipped"};

    if (status < 0 || status > SLUICECTL_REL_SKIPPED)
        return "invalid";
    return names[status];
}
