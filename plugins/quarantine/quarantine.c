/*
 * quarantine.c - the `quarantine` stage: a final stage that, for a message
 * whose disposition is SLUICE_QUARANTINE, stores the raw message and its
 * metadata (sender, From, subject, client, size, score, symbols, one row
 * per recipient; the message as deliver would have sent it, header edits
 * included) in PostgreSQL in one transaction, and only after the
 * COMMIT marks each recipient done ("250 2.0.0 Ok: quarantined as ID").
 * The ingress answers 250 only for recipients marked done, so the MTA
 * hears 250 only once the message is safe in the database.
 *
 * Interface: the stage descriptor sluice_stage_v1 (final stage, EOM hook,
 * on_abort, on_close).  Directives: database (libpq DSN; empty: the
 * engine's `database`, else the private instance under
 * host->state_dir()), node, max_connections,
 * query_timeout, connect_timeout.  Counters: stored, duplicates, failed.
 *
 * Exactly once: every transaction of one queued message (the MTA re-sends
 * it when our 250 was lost after a COMMIT) computes the same dedup_key, a
 * SHA-256 over the MTA's queue id, the envelope sender, the Message-ID and
 * the body; the message row is an upsert on it (db/migrations/0003), and
 * recipients and symbols are inserted "ON CONFLICT DO NOTHING".  The
 * engine's message id alone would not do: it is new for every SMTP
 * transaction.
 *
 * Diagnostics: a database error, an unreachable database or a timeout
 * temp-fails the stored recipients with 451 4.3.0 (the MTA keeps the
 * message and retries), logged with the message id and the SQLSTATE.
 *
 * SECURITY: everything stored is attacker-controlled; it goes as query
 * parameters, never into SQL text.  Text is made valid UTF-8 (invalid
 * bytes become '?') so that a hostile sender cannot make the store fail
 * forever.  The DSN may carry a password: it is never logged.  Runs with
 * the worker's unprivileged user.
 */
#include <sluice/stage.h>

#include "pgpool.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QR_TEXT_MAX 4096 /* subject, From, names: longer is cut */

typedef struct qr_conf {
    char *database;
    char *node;
    long long max_connections;
    double query_timeout, connect_timeout;
} qr_conf;

typedef struct qr_job qr_job;

typedef struct qr_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    qr_conf *conf;
    char dsn[9000];
    char node[256];
    pgpool *pool;
    size_t inflight;
    qr_job *jobs; /* in flight: their requests die with the pool */
    int stopping;
    sluice_timer *reaper; /* frees the pool from the loop after a stop */
} qr_inst;

/* One store in flight; everything pgpool points at lives here. */
struct qr_job {
    qr_inst *in;
    qr_job *next, *prev; /* in->jobs while req is set */
    sluice_txn *txn;
    pgpool_req *req;
    pgpool_stmt *stmts;
    size_t nstmts;
    const char **vals;
    int *lens, *fmts;
    char **owned; /* strings to free */
    size_t nowned, capowned;
    size_t *ridx; /* the recipients this store takes */
    size_t nr;
    char key[65];
    char score[32], size[32];
    char (*symscore)[32];
};

typedef struct qr_slot {
    qr_job *job;
} qr_slot;

static const sluice_directive qr_directives[] = {
    {"database", SLUICE_CONF_STRING, offsetof(qr_conf, database), "", 0, 0,
     NULL, "libpq DSN; empty: the engine's database, else the private one"},
    {"node", SLUICE_CONF_STRING, offsetof(qr_conf, node), "", 0, 0, NULL,
     "this gateway's name in the rows; empty: the engine's host name"},
    {"max_connections", SLUICE_CONF_INT, offsetof(qr_conf, max_connections),
     "4", 1, 64, NULL, "database connections per worker"},
    {"query_timeout", SLUICE_CONF_DURATION, offsetof(qr_conf, query_timeout),
     "20s", 0, 0, NULL,
     "one store, queueing included; then 451 (keep the stage's timeout above)"},
    {"connect_timeout", SLUICE_CONF_DURATION,
     offsetof(qr_conf, connect_timeout), "5s", 0, 0, NULL,
     "one connection attempt"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static const char qr_sql_msg[] =
    "INSERT INTO quarantine_message (node, msg_id, mta_id, sender, "
    "header_from, subject, client_addr, client_name, helo, size, score, "
    "reason, raw, dedup_key) VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8, "
    "$9, $10::bigint, $11::float8, $12, $13, $14) "
    "ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL "
    "DO UPDATE SET dedup_key = EXCLUDED.dedup_key "
    "RETURNING id, msg_id, (xmax = 0) AS inserted";
static const char qr_sql_rcpt[] =
    "INSERT INTO quarantine_rcpt (message_id, rcpt) "
    "SELECT id, lower($2) FROM quarantine_message WHERE dedup_key = $1 "
    "ON CONFLICT DO NOTHING";
static const char qr_sql_sym[] =
    "INSERT INTO quarantine_symbol (message_id, name, score, reason) "
    "SELECT id, $2, $3::float8, $4 FROM quarantine_message "
    "WHERE dedup_key = $1 ON CONFLICT DO NOTHING";

enum { QR_MSG_PARAMS = 14 };

/* ---------------------------------------------------------------- */
/* Text                                                             */

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t qr_utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* A copy of s that PostgreSQL takes as text: valid UTF-8 (invalid bytes
 * become '?'), at most `max` bytes, cut on a character boundary. */
static char *qr_text(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0, i = 0, o = 0;
    char *out;

    if (n > max)
        n = max;
    if ((out = malloc(n + 1)) == NULL)
        return NULL;
    while (i < n) {
        size_t k = qr_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, s + i, k);
        o += k;
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* The client address as PostgreSQL's inet takes it, or NULL. */
static char *qr_inet(const char *a)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (a == NULL || a[0] == '\0')
        return NULL;
    if (strncasecmp(a, "ipv6:", 5) == 0) /* Postfix's XFORWARD form */
        a += 5;
    if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1)
        return NULL; /* "[UNAVAILABLE]" and the like */
    return strdup(a);
}

/* ---------------------------------------------------------------- */
/* Jobs                                                             */

static void qr_job_free(qr_job *j)
{
    size_t i;

    if (j == NULL)
        return;
    for (i = 0; i < j->nowned; i++)
        free(j->owned[i]);
    free(j->owned);
    free(j->stmts);
    free(j->vals);
    free(j->lens);
    free(j->fmts);
    free(j->ridx);
    free(j->symscore);
    free(j);
}

/* Keeps s until the job ends; NULL s (out of memory) fails the job. */
static const char *qr_own(qr_job *j, char *s, int *ok)
{
    if (s == NULL) {
        *ok = 0;
        return NULL;
    }
    if (j->nowned == j->capowned) {
        size_t nc = j->capowned ? j->capowned * 2 : 32;
        char **np = realloc(j->owned, nc * sizeof(*np));
        if (np == NULL) {
            free(s);
            *ok = 0;
            return NULL;
        }
        j->owned = np;
        j->capowned = nc;
    }
    j->owned[j->nowned++] = s;
    return s;
}

static const char *qr_own_text(qr_job *j, const char *s, int *ok)
{
    return qr_own(j, qr_text(s, QR_TEXT_MAX), ok);
}

/* dedup_key: the same for every MTA transaction of one queued message. */
static int qr_dedup_key(qr_inst *in, sluice_txn *txn, char out[65])
{
    const sluice_host *h = in->host;
    const sluice_client *c = h->client(txn);
    const sluice_header *mid = h->header_find(txn, "Message-ID", 0);
    sluice_str body = {NULL, 0};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, i;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    int ok;

    if (x == NULL)
        return -1;
    if (h->body(txn, &body) < 0)
        body.len = 0;
    ok = EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(x, "sluice-q1", 10) == 1 &&
         EVP_DigestUpdate(x, c->ident ? c->ident : "",
                          c->ident ? strlen(c->ident) + 1 : 1) == 1 &&
         EVP_DigestUpdate(x, h->sender(txn)->addr,
                          strlen(h->sender(txn)->addr) + 1) == 1 &&
         EVP_DigestUpdate(x, mid ? mid->raw.ptr : "",
                          mid ? mid->raw.len : 0) == 1 &&
         EVP_DigestUpdate(x, "", 1) == 1 &&
         (body.len == 0 || EVP_DigestUpdate(x, body.ptr, body.len) == 1) &&
         EVP_DigestFinal_ex(x, md, &mdlen) == 1;
    EVP_MD_CTX_free(x);
    if (!ok || mdlen != 32)
        return -1;
    for (i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The message as deliver would send it: the header fields as the stages
 * left them (name, colon, raw value), the empty line, the body.  (The
 * host's message() is the message as received, before any edit.) */
static char *qr_message(const sluice_host *h, sluice_txn *txn, size_t *len)
{
    size_t n = h->header_count(txn), i, total = 2, o = 0;
    sluice_str body = {NULL, 0};
    char *out;

    if (h->body(txn, &body) < 0)
        return NULL;
    for (i = 0; i < n; i++) {
        const sluice_header *hd = h->header(txn, i);
        if (hd != NULL)
            total += hd->name.len + hd->raw.len + 3;
    }
    total += body.len;
    if (total > (size_t)INT_MAX || (out = malloc(total + 1)) == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        const sluice_header *hd = h->header(txn, i);
        if (hd == NULL)
            continue;
        memcpy(out + o, hd->name.ptr, hd->name.len);
        o += hd->name.len;
        out[o++] = ':';
        memcpy(out + o, hd->raw.ptr, hd->raw.len);
        o += hd->raw.len;
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o++] = '\r';
    out[o++] = '\n';
    if (body.len)
        memcpy(out + o, body.ptr, body.len);
    o += body.len;
    out[o] = '\0';
    *len = o;
    return out;
}

/* The statements of one store: the message, then each recipient still
 * open, then each symbol.  0, or -1 (out of memory, message too big). */
static int qr_job_build(qr_job *j)
{
    qr_inst *in = j->in;
    const sluice_host *h = in->host;
    sluice_txn *txn = j->txn;
    const sluice_client *c = h->client(txn);
    const sluice_header *from = h->header_find(txn, "From", 0);
    const sluice_header *subj = h->header_find(txn, "Subject", 0);
    const char *code = NULL, *xcode = NULL, *text = NULL;
    size_t nrc = h->rcpt_count(txn), nsym = h->symbol_count(txn), i, k;
    size_t nparams;
    size_t rawlen = 0;
    char *raw;
    const char **v;
    int ok = 1;

    if ((raw = qr_message(h, txn, &rawlen)) == NULL)
        return -1;
    qr_own(j, raw, &ok);
    if (qr_dedup_key(in, txn, j->key) < 0)
        return -1;
    j->ridx = calloc(nrc ? nrc : 1, sizeof(*j->ridx));
    j->symscore = calloc(nsym ? nsym : 1, sizeof(*j->symscore));
    j->stmts = calloc(1 + nrc + nsym, sizeof(*j->stmts));
    nparams = QR_MSG_PARAMS + 2 * nrc + 4 * nsym;
    j->vals = calloc(nparams, sizeof(*j->vals));
    j->lens = calloc(nparams, sizeof(*j->lens));
    j->fmts = calloc(nparams, sizeof(*j->fmts));
    if (!j->ridx || !j->symscore || !j->stmts || !j->vals || !j->lens ||
        !j->fmts)
        return -1;

    h->txn_reply(txn, &code, &xcode, &text);
    snprintf(j->size, sizeof(j->size), "%zu", rawlen);
    snprintf(j->score, sizeof(j->score), "%.4f", h->score(txn));
    v = j->vals;
    v[0] = in->node;
    v[1] = h->txn_id(txn);
    v[2] = qr_own_text(j, c->ident, &ok);
    v[3] = qr_own_text(j, h->sender(txn)->addr, &ok);
    v[4] = qr_own_text(j, from ? from->value : "", &ok);
    v[5] = qr_own_text(j, subj ? subj->value : "", &ok);
    v[6] = qr_inet(c->addr); /* NULL is SQL NULL */
    if (v[6] != NULL)
        qr_own(j, (char *)v[6], &ok);
    v[7] = qr_own_text(j, c->name, &ok);
    v[8] = qr_own_text(j, c->helo, &ok);
    v[9] = j->size;
    v[10] = j->score;
    v[11] = qr_own_text(j, text ? text : "", &ok);
    v[12] = raw;
    j->lens[12] = (int)rawlen;
    j->fmts[12] = 1; /* binary: the bytes as they are */
    v[13] = j->key;
    j->stmts[0] = (pgpool_stmt){"qr_msg", qr_sql_msg, QR_MSG_PARAMS, v,
                                j->lens, j->fmts};
    j->nstmts = 1;
    k = QR_MSG_PARAMS;

    for (i = 0; i < nrc; i++) {
        if (h->rcpt_state(txn, i, NULL) != SLUICE_RCPT_OPEN)
            continue; /* another final stage settled it */
        j->ridx[j->nr++] = i;
        v[k] = j->key;
        v[k + 1] = qr_own_text(j, h->rcpt(txn, i)->addr, &ok);
        j->stmts[j->nstmts++] = (pgpool_stmt){"qr_rcpt", qr_sql_rcpt, 2,
                                              v + k, j->lens + k, j->fmts + k};
        k += 2;
    }
    for (i = 0; i < nsym; i++) {
        double sc = 0;
        const char *reason = NULL;
        const char *name = h->symbol(txn, i, &sc, &reason);
        if (name == NULL)
            continue;
        snprintf(j->symscore[i], sizeof(j->symscore[i]), "%.4f", sc);
        v[k] = j->key;
        v[k + 1] = qr_own_text(j, name, &ok);
        v[k + 2] = j->symscore[i];
        v[k + 3] = qr_own_text(j, reason ? reason : "", &ok);
        j->stmts[j->nstmts++] = (pgpool_stmt){"qr_sym", qr_sql_sym, 4,
                                              v + k, j->lens + k, j->fmts + k};
        k += 4;
    }
    return ok ? 0 : -1;
}

/* Every recipient this store took gets the same temporary failure. */
static void qr_tempfail(qr_inst *in, sluice_txn *txn, const size_t *idx,
                        size_t n, const char *why)
{
    const sluice_host *h = in->host;
    char line[300];
    size_t i;

    snprintf(line, sizeof(line),
             "451 4.3.0 %s: quarantine not available, try again later",
             h->txn_id(txn));
    for (i = 0; i < n; i++)
        h->rcpt_set(txn, idx[i], SLUICE_RCPT_TEMPFAIL, line);
    h->log(in->ctx, txn, SLUICE_LOG_WARN,
           "not quarantined (%s): %zu recipient(s) temp-failed, the MTA "
           "keeps the message",
           why, n);
    h->counter_add(in->ctx, "failed", 1);
}

/* The job's request is over (answered, cancelled or freed). */
static void qr_job_unlink(qr_job *j)
{
    qr_inst *in = j->in;

    j->req = NULL;
    if (j->prev)
        j->prev->next = j->next;
    else
        in->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->next = j->prev = NULL;
    in->inflight--;
    if (in->stopping && in->inflight == 0 && in->reaper)
        in->host->timer_start(in->reaper, 0); /* pgpool_free not from here */
}

static void qr_reap_cb(sluice_timer *t, void *arg)
{
    qr_inst *in = arg;

    (void)t;
    if (in->pool != NULL && in->inflight == 0) {
        pgpool_free(in->pool); /* the loop can end: no more watchers */
        in->pool = NULL;
    }
}

static void qr_store_done(pgpool_req *req, const pgpool_res *res, void *arg)
{
    qr_job *j = arg;
    qr_inst *in = j->in;
    const sluice_host *h = in->host;
    sluice_txn *txn = j->txn;
    char line[300];
    size_t i;

    (void)req;
    qr_job_unlink(j);
    if (!pgpool_res_ok(res) || pgpool_res_rows(res, 0) != 1) {
        char why[400];
        snprintf(why, sizeof(why), "%s%s%s%s",
                 pgpool_res_timeout(res) ? "timeout: " : "",
                 pgpool_res_error(res),
                 pgpool_res_sqlstate(res)[0] ? " SQLSTATE " : "",
                 pgpool_res_sqlstate(res));
        qr_tempfail(in, txn, j->ridx, j->nr, why);
    } else {
        const char *id = pgpool_res_value(res, 0, 0, 1);
        int fresh = strcmp(pgpool_res_value(res, 0, 0, 2), "t") == 0;
        snprintf(line, sizeof(line), "250 2.0.0 Ok: quarantined as %s", id);
        for (i = 0; i < j->nr; i++)
            h->rcpt_set(txn, j->ridx[i], SLUICE_RCPT_DONE, line);
        h->log(in->ctx, txn, SLUICE_LOG_INFO,
               "quarantined as %s (row %s%s), %zu recipient(s), %s bytes",
               id, pgpool_res_value(res, 0, 0, 0),
               fresh ? "" : ", already stored: a retry", j->nr, j->size);
        h->counter_add(in->ctx, fresh ? "stored" : "duplicates", 1);
    }
    h->done(txn, SLUICE_CONTINUE);
}

/* ---------------------------------------------------------------- */
/* Hooks                                                            */

static sluice_verdict qr_eom(void *inst, sluice_txn *txn, void *slotp)
{
    qr_inst *in = inst;
    const sluice_host *h = in->host;
    qr_slot *slot = slotp;
    qr_job *j;

    if (h->disposition(txn) != SLUICE_QUARANTINE)
        return SLUICE_CONTINUE;
    qr_job_free(slot->job);
    slot->job = j = calloc(1, sizeof(*j));
    if (j == NULL)
        return SLUICE_TEMPFAIL;
    j->in = in;
    j->txn = txn;
    if (qr_job_build(j) < 0) {
        size_t i, n = h->rcpt_count(txn);
        /* ridx may be missing: take every open recipient */
        for (i = 0; i < n; i++)
            if (h->rcpt_state(txn, i, NULL) == SLUICE_RCPT_OPEN)
                h->rcpt_set(txn, i, SLUICE_RCPT_TEMPFAIL,
                            "451 4.3.0 quarantine: out of memory");
        h->log(in->ctx, txn, SLUICE_LOG_ERROR,
               "cannot prepare the store (out of memory or message too "
               "big); temp-failed");
        h->counter_add(in->ctx, "failed", 1);
        return SLUICE_CONTINUE;
    }
    if (j->nr == 0)
        return SLUICE_CONTINUE; /* nothing left to take */
    if (in->pool == NULL) { /* stopping, or the worker never started it */
        qr_tempfail(in, txn, j->ridx, j->nr, "worker stopping");
        return SLUICE_CONTINUE;
    }
    j->req = pgpool_submit(in->pool, j->stmts, j->nstmts, PGPOOL_TXN,
                           qr_store_done, j);
    if (j->req == NULL) {
        qr_tempfail(in, txn, j->ridx, j->nr, "out of memory");
        return SLUICE_CONTINUE;
    }
    in->inflight++;
    j->next = in->jobs;
    if (in->jobs)
        in->jobs->prev = j;
    in->jobs = j;
    return SLUICE_PENDING;
}

static void qr_abort(void *inst, sluice_txn *txn, void *slotp)
{
    qr_inst *in = inst;
    qr_slot *slot = slotp;

    (void)txn;
    /* A COMMIT may still happen on the server: the retry's upsert on
     * dedup_key then finds the row instead of storing a second one. */
    (void)in;
    if (slot->job && slot->job->req) {
        pgpool_cancel(slot->job->req);
        qr_job_unlink(slot->job);
    }
}

static void qr_close(void *inst, sluice_txn *txn, void *slotp)
{
    qr_slot *slot = slotp;

    qr_abort(inst, txn, slotp);
    qr_job_free(slot->job);
    slot->job = NULL;
}

static int qr_worker_start(void *inst)
{
    qr_inst *in = inst;
    const sluice_host *h = in->host;
    pgpool_conf pc;
    char err[256];

    memset(&pc, 0, sizeof(pc));
    pc.dsn = in->dsn;
    pc.max_conns = (size_t)in->conf->max_connections;
    pc.query_timeout = in->conf->query_timeout;
    pc.connect_timeout = in->conf->connect_timeout;
    pc.app_name = "sluice-quarantine";
    if ((in->pool = pgpool_new(h, in->ctx, &pc, err, sizeof(err))) == NULL) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "database: %s", err);
        return -1;
    }
    if ((in->reaper = h->timer_new(in->ctx, qr_reap_cb, in)) == NULL)
        return -1;
    return 0;
}

static void qr_worker_stop(void *inst, int graceful)
{
    qr_inst *in = inst;

    in->stopping = 1;
    /* Graceful: stores in flight finish; the pool goes with the last.
     * Otherwise their requests go with the pool, unanswered: the engine
     * aborts those messages and the MTA keeps them. */
    if (in->pool != NULL && (!graceful || in->inflight == 0)) {
        while (in->jobs != NULL)
            qr_job_unlink(in->jobs);
        pgpool_free(in->pool);
        in->pool = NULL;
    }
}

static int qr_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                   void **inst)
{
    qr_inst *in;
    qr_conf *cf = conf;

    if (!SLUICE_HOST_HAS(host, state_dir) || !SLUICE_HOST_HAS(host, body)) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "the engine is too old (needs ABI 1.1 with state_dir)");
        return -1;
    }
    if (cf->query_timeout <= 0 || cf->connect_timeout <= 0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "query_timeout and connect_timeout must be above zero");
        return -1;
    }
    if ((in = calloc(1, sizeof(*in))) == NULL)
        return -1;
    in->host = host;
    in->ctx = ctx;
    in->conf = cf;
    /* its own `database`, else the engine's, else the private one */
    if (pgpool_stage_dsn(host, ctx, cf->database, in->dsn, sizeof(in->dsn)) <
        0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "database: DSN or state_dir path too long");
        free(in);
        return -1;
    }
    snprintf(in->node, sizeof(in->node), "%s",
             cf->node && cf->node[0] ? cf->node : host->hostname(ctx));
    *inst = in;
    return 0;
}

static void qr_fini(void *inst)
{
    qr_inst *in = inst;

    if (in == NULL)
        return;
    if (in->pool)
        pgpool_free(in->pool);
    if (in->reaper)
        in->host->timer_free(in->reaper);
    free(in);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "quarantine",
    .version = "1.0",
    .description = "stores quarantined messages in PostgreSQL, then 250",
    .flags = SLUICE_STAGE_FINAL,
    .directives = qr_directives,
    .conf_size = sizeof(qr_conf),
    .slot_size = sizeof(qr_slot),
    .init = qr_init,
    .worker_start = qr_worker_start,
    .worker_stop = qr_worker_stop,
    .fini = qr_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = qr_eom},
    .on_abort = qr_abort,
    .on_close = qr_close,
};
