/*
 * pg_bench.c - load generator for bench/pg.sh: the stages' PostgreSQL
 * pool (plugins/common/pgpool.c) on a libev loop, as a worker drives it.
 *
 * Usage: pg_bench DSN MODE COUNT INFLIGHT CONNS [FILE...]
 *   MODE select   COUNT round trips of "SELECT 1"
 *   MODE store    COUNT quarantine stores: one transaction each, the
 *                 message (the FILEs, in turn, as a binary parameter) and
 *                 its recipient, as the quarantine stage will store them
 * INFLIGHT requests are kept outstanding over CONNS connections.  Prints
 * one line: mode, count, seconds, requests/s, MB/s, failures.
 *
 * Figures only; nothing is asserted (exit 1 only if it cannot run).
 */
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sluice/stage.h>

#include "pgpool.h"

/* ---------------------------------------------------------------- host */

struct sluice_io {
    ev_io w;
    sluice_io_cb cb;
    void *arg;
};

struct sluice_timer {
    ev_timer w;
    sluice_timer_cb cb;
    void *arg;
};

static struct ev_loop *loop;

static void b_vlog(sluice_ctx *c, sluice_txn *t, int l, const char *f,
                   va_list ap) SLUICE_PRINTF(4, 0);
static void b_log(sluice_ctx *c, sluice_txn *t, int l, const char *f, ...)
    SLUICE_PRINTF(4, 5);

static void b_vlog(sluice_ctx *c, sluice_txn *t, int l, const char *f,
                   va_list ap)
{
    fputs("pg_bench: ", stderr);
    vfprintf(stderr, f, ap);
    fputc('\n', stderr);
}

static void b_log(sluice_ctx *c, sluice_txn *t, int l, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    b_vlog(c, t, l, f, ap);
    va_end(ap);
}

static void b_io_thunk(struct ev_loop *l, ev_io *w, int rev)
{
    sluice_io *io = (sluice_io *)w;
    io->cb(io,
           (rev & EV_READ ? SLUICE_READ : 0) |
               (rev & EV_WRITE ? SLUICE_WRITE : 0),
           io->arg);
}

static sluice_io *b_io_new(sluice_ctx *c, int fd, sluice_io_cb cb, void *arg)
{
    sluice_io *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return NULL;
    ev_io_init(&io->w, b_io_thunk, fd, 0);
    io->cb = cb;
    io->arg = arg;
    return io;
}

static void b_io_set(sluice_io *io, int ev)
{
    ev_io_stop(loop, &io->w);
    if (ev) {
        ev_io_set(&io->w, io->w.fd,
                  (ev & SLUICE_READ ? EV_READ : 0) |
                      (ev & SLUICE_WRITE ? EV_WRITE : 0));
        ev_io_start(loop, &io->w);
    }
}

static void b_io_free(sluice_io *io)
{
    ev_io_stop(loop, &io->w);
    free(io);
}

static void b_timer_thunk(struct ev_loop *l, ev_timer *w, int rev)
{
    sluice_timer *t = (sluice_timer *)w;
    t->cb(t, t->arg);
}

static sluice_timer *b_timer_new(sluice_ctx *c, sluice_timer_cb cb, void *arg)
{
    sluice_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    ev_init(&t->w, b_timer_thunk);
    t->cb = cb;
    t->arg = arg;
    return t;
}

static void b_timer_start(sluice_timer *t, double s)
{
    ev_timer_stop(loop, &t->w);
    ev_timer_set(&t->w, s, 0.);
    ev_timer_start(loop, &t->w);
}

static void b_timer_stop(sluice_timer *t)
{
    ev_timer_stop(loop, &t->w);
}

static void b_timer_free(sluice_timer *t)
{
    ev_timer_stop(loop, &t->w);
    free(t);
}

/* ---------------------------------------------------------------- load */

typedef struct msgfile {
    char *data;
    int len;
} msgfile;

static pgpool *pool;
static int store_mode;
static long total, sent, finished, failures;
static msgfile *files;
static size_t nfiles;
static double bytes;
static char first_error[512];

/* Parameters of one store: live until its callback. */
typedef struct job {
    char msgid[32], size[16];
    const char *vals[4];
    int lens[4], fmts[4];
} job;

static void submit_one(void);

static void on_done(pgpool_req *req, const pgpool_res *res, void *arg)
{
    free(arg);
    finished++;
    if (!pgpool_res_ok(res)) {
        if (failures++ == 0)
            snprintf(first_error, sizeof(first_error), "%s",
                     pgpool_res_error(res));
    }
    if (sent < total)
        submit_one();
    else if (finished == total)
        ev_break(loop, EVBREAK_ALL);
}

static void submit_one(void)
{
    static const char *store_sql =
        "WITH m AS (INSERT INTO quarantine_message (node, msg_id, sender, "
        "subject, client_addr, size, score, raw) VALUES ('bench', $1, "
        "'sender@example.org', 'bench', '192.0.2.1', $2, 12.5, $3) "
        "RETURNING id) INSERT INTO quarantine_rcpt (message_id, rcpt) "
        "SELECT id, $4 FROM m";
    job *j = calloc(1, sizeof(*j));
    long n = sent++;

    if (j == NULL) {
        fprintf(stderr, "pg_bench: out of memory\n");
        exit(1);
    }
    if (!store_mode) {
        if (pgpool_query(pool, "SELECT 1", 0, NULL, on_done, j) == NULL)
            exit(1);
        return;
    }
    {
        const msgfile *f = &files[(size_t)n % nfiles];
        pgpool_stmt s = {"bench_store", store_sql, 4,
                         j->vals,       j->lens,   j->fmts};
        snprintf(j->msgid, sizeof(j->msgid), "B%ld-%d", n, (int)getpid());
        snprintf(j->size, sizeof(j->size), "%d", f->len);
        j->vals[0] = j->msgid;
        j->vals[1] = j->size;
        j->vals[2] = f->data;
        j->vals[3] = "rcpt@example.net";
        j->lens[2] = f->len;
        j->fmts[2] = 1; /* the message as bytes, no escaping */
        bytes += f->len;
        if (pgpool_submit(pool, &s, 1, PGPOOL_TXN, on_done, j) == NULL)
            exit(1);
    }
}

static int load_file(const char *path, msgfile *f)
{
    FILE *fp = fopen(path, "rb");
    long n;

    if (fp == NULL || fseek(fp, 0, SEEK_END) < 0 || (n = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) < 0) {
        if (fp)
            fclose(fp);
        return -1;
    }
    f->data = malloc((size_t)n + 1);
    if (f->data == NULL || fread(f->data, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        return -1;
    }
    fclose(fp);
    f->len = (int)n;
    return 0;
}

int main(int argc, char **argv)
{
    static sluice_host host;
    pgpool_conf conf = {0};
    char err[256];
    long inflight, i;
    double t0, dt;

    if (argc < 6) {
        fprintf(stderr, "usage: pg_bench DSN select|store COUNT INFLIGHT "
                        "CONNS [FILE...]\n");
        return 1;
    }
    store_mode = strcmp(argv[2], "store") == 0;
    total = atol(argv[3]);
    inflight = atol(argv[4]);
    if (store_mode) {
        nfiles = (size_t)(argc - 6);
        files = calloc(nfiles + 1, sizeof(*files));
        for (i = 0; i < (long)nfiles; i++)
            if (load_file(argv[6 + i], &files[i]) < 0) {
                fprintf(stderr, "pg_bench: cannot read %s\n", argv[6 + i]);
                return 1;
            }
        if (nfiles == 0) {
            fprintf(stderr, "pg_bench: store needs message files\n");
            return 1;
        }
    }
    loop = ev_default_loop(0);
    host.size = sizeof(host);
    host.log = b_log;
    host.vlog = b_vlog;
    host.io_new = b_io_new;
    host.io_set = b_io_set;
    host.io_free = b_io_free;
    host.timer_new = b_timer_new;
    host.timer_start = b_timer_start;
    host.timer_stop = b_timer_stop;
    host.timer_free = b_timer_free;
    conf.dsn = argv[1];
    conf.max_conns = (size_t)atol(argv[5]);
    conf.query_timeout = 30;
    if ((pool = pgpool_new(&host, NULL, &conf, err, sizeof(err))) == NULL) {
        fprintf(stderr, "pg_bench: %s\n", err);
        return 1;
    }
    t0 = ev_time();
    for (i = 0; i < inflight && sent < total; i++)
        submit_one();
    ev_run(loop, 0);
    dt = ev_time() - t0;
    printf("%-6s %7ld requests  %6.2f s  %8.0f req/s  %6.1f MB/s  "
           "conns %s  in flight %ld  failures %ld%s%s\n",
           argv[2], total, dt, (double)total / dt, bytes / dt / 1e6, argv[5],
           inflight, failures, failures ? ": " : "", first_error);
    pgpool_free(pool);
    for (i = 0; i < (long)nfiles; i++)
        free(files[i].data);
    free(files);
    return 0;
}
