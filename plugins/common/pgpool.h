/*
 * pgpool.h - asynchronous PostgreSQL for stages: a small per-worker pool of
 * libpq connections driven by the host's fd watchers and timers.
 *
 * A stage creates one pool per worker (in worker_start: libpq connections
 * must not cross a fork) and submits requests: one or more statements, run
 * in order on one connection, optionally inside BEGIN ... COMMIT.  The
 * callback comes exactly once per request, always from the loop (never from
 * inside pgpool_submit()), unless the request was cancelled first.  libpq's
 * types stay inside pgpool.c: results are read through the accessors here.
 *
 * Failure model: a request fails (callback with ok == 0) when a statement
 * fails, when its whole time (queueing included) exceeds query_timeout,
 * when its connection breaks, or at once when the database is known to be
 * down (the last connection attempt failed and none is up).  Connections
 * are re-established with a doubling back-off (backoff_min .. backoff_max).
 * A request that timed out or was cancelled while running closes its
 * connection (no blocking PQcancel): the server rolls its transaction back
 * when it notices.  NOTE: a COMMIT that timed out may still have committed;
 * callers that must not store twice make their writes idempotent.
 *
 * Parameters and SQL text are NOT copied: they must stay valid until the
 * callback or pgpool_cancel().  (A quarantined message is passed as a
 * parameter; copying megabytes per store would be waste.)
 */
#ifndef SLUICE_PGPOOL_H
#define SLUICE_PGPOOL_H

#include <sluice/stage.h>
#include <stddef.h>

typedef struct pgpool pgpool;
typedef struct pgpool_req pgpool_req;
typedef struct pgpool_res pgpool_res;

typedef struct pgpool_conf {
    const char *dsn;        /* libpq conninfo or URI (copied) */
    size_t max_conns;       /* connections per pool; 0: 4 */
    double connect_timeout; /* one connection attempt; 0: 5 s */
    double query_timeout;   /* one request, queueing included; 0: 10 s.
                             * Also the server's statement_timeout. */
    double backoff_min;     /* first reconnection delay; 0: 0.2 s */
    double backoff_max;     /* longest; 0: 30 s */
    const char *app_name;   /* application_name; NULL: "sluice" */
} pgpool_conf;

/* One statement.  nparams == 0 and name == NULL: sent with the simple
 * protocol, so `sql` may hold several statements (the last one's result
 * is kept).  With a name, the statement is prepared once per connection
 * and then executed by name. */
typedef struct pgpool_stmt {
    const char *name; /* prepared statement name, or NULL */
    const char *sql;
    int nparams;
    const char *const *values; /* NULL entries are SQL NULL */
    const int *lengths;        /* binary parameters' lengths, or NULL */
    const int *formats;        /* 1 = binary, 0 = text; NULL: all text */
} pgpool_stmt;

enum {
    PGPOOL_TXN = 1u << 0 /* BEGIN before, COMMIT after; ROLLBACK on error */
};

typedef void (*pgpool_cb)(pgpool_req *req, const pgpool_res *res, void *arg);

typedef struct pgpool_stats {
    size_t conns, idle, connecting, queued;
    unsigned long long connects, connect_failures, requests, failures, timeouts;
    int up; /* at least one connection is established */
} pgpool_stats;

/* The DSN of the private instance that tools/sluice-pg runs under
 * state_dir (socket STATE/pg/run, passfile STATE/pg/pgpass), quoted for
 * libpq.  0, or -1 if it does not fit in `n`. */
int pgpool_private_dsn(const char *state_dir, char *buf, size_t n);

/* The DSN a stage uses: `own` (its `database` option) if set, else the
 * engine section's `database` (host->database(), ABI 1.2), else the
 * private instance under host->state_dir().  0, or -1 if it does not fit
 * in `n` (an engine older than 1.1 without state_dir: -1 too). */
int pgpool_stage_dsn(const sluice_host *host, sluice_ctx *ctx,
                     const char *own, char *buf, size_t n);

/* NULL with err filled on a bad configuration (nothing is connected
 * yet: the first connection starts at once, from the loop). */
pgpool *pgpool_new(const sluice_host *host, sluice_ctx *ctx,
                   const pgpool_conf *conf, char *err, size_t errlen);
/* Closes every connection and frees every request without calling its
 * callback.  Not from inside a pgpool callback. */
void pgpool_free(pgpool *p);

/* NULL only if out of memory or n == 0 (then cb is never called). */
pgpool_req *pgpool_submit(pgpool *p, const pgpool_stmt *stmts, size_t n,
                          unsigned flags, pgpool_cb cb, void *arg);
/* One statement with text parameters. */
pgpool_req *pgpool_query(pgpool *p, const char *sql, int nparams,
                         const char *const *values, pgpool_cb cb, void *arg);
/* The callback will not be called; safe until the callback has run. */
void pgpool_cancel(pgpool_req *req);

void pgpool_stats_get(const pgpool *p, pgpool_stats *st);
/* The last connection error ("" if none). */
const char *pgpool_last_error(const pgpool *p);

/* Results, valid during the callback only.  `i` is the statement's index
 * in the request. */
int pgpool_res_ok(const pgpool_res *r);
int pgpool_res_timeout(const pgpool_res *r);       /* failed by query_timeout */
const char *pgpool_res_error(const pgpool_res *r); /* "" when ok */
const char *pgpool_res_sqlstate(const pgpool_res *r); /* "" if none */
size_t pgpool_res_count(const pgpool_res *r); /* statements with results */
int pgpool_res_rows(const pgpool_res *r, size_t i);
int pgpool_res_cols(const pgpool_res *r, size_t i);
long long pgpool_res_affected(const pgpool_res *r, size_t i);
/* NUL-terminated text (or raw bytes of a binary result); "" if NULL. */
const char *pgpool_res_value(const pgpool_res *r, size_t i, int row, int col);
int pgpool_res_length(const pgpool_res *r, size_t i, int row, int col);
int pgpool_res_isnull(const pgpool_res *r, size_t i, int row, int col);

#endif
