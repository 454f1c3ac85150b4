/*
 * fakehost.c - the fake engine host table for unit tests (fakehost.h):
 * fd watchers and timers on libev's default loop, now(), a log captured in
 * memory, a counter_add() that counts nothing.
 *
 * To fake a new host function for every test: write it here and add one
 * line to fakehost_table below.
 *
 * SECURITY: test code only, never linked into sluiced or a stage.
 */
#include "fakehost.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A line is kept only when this much room is left: a test looking for a
 * message finds it whole or not at all. */
#define FAKEHOST_LOG_LINE 700

fakehost_state fakehost;

static void fakehost_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                          const char *fmt, va_list ap) SLUICE_PRINTF(4, 0);
static void fakehost_log(sluice_ctx *ctx, sluice_txn *txn, int level,
                         const char *fmt, ...) SLUICE_PRINTF(4, 5);

static void fakehost_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                          const char *fmt, va_list ap)
{
    size_t n = strlen(fakehost.log);
    va_list copy;

    if (fakehost.verbose || getenv("FAKEHOST_VERBOSE") != NULL) {
        va_copy(copy, ap);
        fprintf(stderr, "[%d %s] ", level,
                txn && fakehost.txn_label ? fakehost.txn_label(txn) : "-");
        vfprintf(stderr, fmt, copy);
        fputc('\n', stderr);
        va_end(copy);
    }
    if (n + FAKEHOST_LOG_LINE < sizeof(fakehost.log)) {
        vsnprintf(fakehost.log + n, sizeof(fakehost.log) - n - 1, fmt, ap);
        n = strlen(fakehost.log);
        fakehost.log[n] = '\n';
        fakehost.log[n + 1] = '\0';
    }
}

static void fakehost_log(sluice_ctx *ctx, sluice_txn *txn, int level,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fakehost_vlog(ctx, txn, level, fmt, ap);
    va_end(ap);
}

static void fakehost_io_thunk(struct ev_loop *loop, ev_io *w, int revents)
{
    sluice_io *io = (sluice_io *)w;

    if (revents & EV_WRITE)
        fakehost.io_write_events++;
    io->cb(io,
           (revents & EV_READ ? SLUICE_READ : 0) |
               (revents & EV_WRITE ? SLUICE_WRITE : 0),
           io->arg);
}

static sluice_io *fakehost_io_new(sluice_ctx *ctx, int fd, sluice_io_cb cb,
                                  void *arg)
{
    sluice_io *io = calloc(1, sizeof(*io));

    if (io == NULL)
        return NULL;
    ev_io_init(&io->w, fakehost_io_thunk, fd, 0);
    io->cb = cb;
    io->arg = arg;
    fakehost.live_io++;
    return io;
}

static void fakehost_io_set(sluice_io *io, int events)
{
    int ev = (events & SLUICE_READ ? EV_READ : 0) |
             (events & SLUICE_WRITE ? EV_WRITE : 0);

    ev_io_stop(EV_DEFAULT, &io->w);
    if (ev & EV_WRITE)
        fakehost.io_write_sets++;
    if (ev) {
        ev_io_set(&io->w, io->w.fd, ev);
        ev_io_start(EV_DEFAULT, &io->w);
    }
}

static void fakehost_io_free(sluice_io *io)
{
    if (io == NULL)
        return;
    ev_io_stop(EV_DEFAULT, &io->w);
    fakehost.live_io--;
    free(io);
}

static void fakehost_timer_thunk(struct ev_loop *loop, ev_timer *w, int revents)
{
    sluice_timer *t = (sluice_timer *)w;

    t->cb(t, t->arg);
}

static sluice_timer *fakehost_timer_new(sluice_ctx *ctx, sluice_timer_cb cb,
                                        void *arg)
{
    sluice_timer *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    ev_timer_init(&t->w, fakehost_timer_thunk, 0., 0.);
    t->cb = cb;
    t->arg = arg;
    fakehost.live_timer++;
    return t;
}

static void fakehost_timer_start(sluice_timer *t, double seconds)
{
    ev_timer_stop(EV_DEFAULT, &t->w);
    ev_timer_set(&t->w, seconds, 0.);
    ev_timer_start(EV_DEFAULT, &t->w);
}

static void fakehost_timer_stop(sluice_timer *t)
{
    ev_timer_stop(EV_DEFAULT, &t->w);
}

static void fakehost_timer_free(sluice_timer *t)
{
    if (t == NULL)
        return;
    ev_timer_stop(EV_DEFAULT, &t->w);
    fakehost.live_timer--;
    free(t);
}

static double fakehost_now(sluice_ctx *ctx)
{
    return ev_now(EV_DEFAULT);
}

static void fakehost_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
}

/* The defaults: one line per faked host function. */
static const sluice_host fakehost_table = {
    .size = sizeof(sluice_host),
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .log = fakehost_log,
    .vlog = fakehost_vlog,
    .io_new = fakehost_io_new,
    .io_set = fakehost_io_set,
    .io_free = fakehost_io_free,
    .timer_new = fakehost_timer_new,
    .timer_start = fakehost_timer_start,
    .timer_stop = fakehost_timer_stop,
    .timer_free = fakehost_timer_free,
    .now = fakehost_now,
    .counter_add = fakehost_counter_add,
};

void fakehost_init(sluice_host *h)
{
    *h = fakehost_table;
}

const sluice_host *fakehost_default(void)
{
    return &fakehost_table;
}

int fakehost_live(void)
{
    return fakehost.live_io + fakehost.live_timer;
}

void fakehost_log_clear(void)
{
    fakehost.log[0] = '\0';
}
