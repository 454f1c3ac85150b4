/*
 * hello.c - an example third-party sluice stage.
 *
 * It shows the whole ABI surface a typical stage needs: a directive table
 * (validated by the engine, errors with file:line), per-instance state from
 * init(), a per-message slot, a synchronous hook (RCPT: count recipients),
 * an asynchronous hook (EOM: wait `delay` on a host timer, then done()),
 * the abort hook every PENDING stage needs, a symbol, a header edit it
 * declared in `flags`, a counter, and a log line that carries the message
 * id.  Build it with the Makefile beside it; it includes <sluice/stage.h>
 * only and links nothing.
 */
#include <sluice/stage.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct hello_conf {
    char *header;  /* header to add */
    double delay;  /* simulated asynchronous work */
    double score;  /* score of the HELLO symbol */
} hello_conf;

typedef struct hello {
    const sluice_host *host;
    sluice_ctx *ctx;
    hello_conf *conf;
} hello;

typedef struct hello_slot {
    long rcpts;
    hello *h;            /* for the timer callback */
    sluice_txn *txn;
    sluice_timer *timer; /* non-NULL while the EOM hook is pending */
} hello_slot;

static const sluice_directive hello_directives[] = {
    {"header", SLUICE_CONF_STRING, offsetof(hello_conf, header), "X-Hello",
     0, 0, NULL, "name of the header this stage adds"},
    {"delay", SLUICE_CONF_DURATION, offsetof(hello_conf, delay), "0", 0, 60,
     NULL, "how long the simulated asynchronous work takes"},
    {"score", SLUICE_CONF_DOUBLE, offsetof(hello_conf, score), "0", -100, 100,
     NULL, "score of the HELLO symbol"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int hello_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                      void **inst)
{
    hello *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return -1;
    h->host = host;
    h->ctx = ctx;
    h->conf = conf;
    *inst = h;
    return 0;
}

static void hello_fini(void *inst)
{
    free(inst);
}

static sluice_verdict hello_rcpt(void *inst, sluice_txn *txn, void *slot)
{
    hello_slot *s = slot;

    (void)inst;
    (void)txn;
    s->rcpts++;
    return SLUICE_CONTINUE;
}

static void hello_finish(hello *h, sluice_txn *txn, hello_slot *s)
{
    char value[128];

    snprintf(value, sizeof(value), "stage %s saw %ld recipient(s) of %s",
             h->host->stage_name(h->ctx), s->rcpts, h->host->txn_id(txn));
    h->host->header_add(txn, h->conf->header, value);
    h->host->symbol_add(txn, "HELLO", h->conf->score, "the example stage ran");
    h->host->counter_add(h->ctx, "greeted", 1);
}

static void hello_timer(sluice_timer *t, void *arg)
{
    hello_slot *s = arg;
    hello *h = s->h;

    h->host->timer_free(t);
    s->timer = NULL;
    hello_finish(h, s->txn, s);
    h->host->done(s->txn, SLUICE_CONTINUE); /* exactly once */
}

static sluice_verdict hello_eom(void *inst, sluice_txn *txn, void *slot)
{
    hello *h = inst;
    hello_slot *s = slot;

    h->host->log(h->ctx, txn, SLUICE_LOG_DEBUG, "%ld recipient(s)", s->rcpts);
    if (h->conf->delay <= 0) {
        hello_finish(h, txn, s);
        return SLUICE_CONTINUE;
    }
    s->h = h;
    s->txn = txn;
    s->timer = h->host->timer_new(h->ctx, hello_timer, s);
    if (s->timer == NULL)
        return SLUICE_TEMPFAIL;
    h->host->timer_start(s->timer, h->conf->delay);
    return SLUICE_PENDING;
}

/* The engine gave up on us (timeout, client gone): cancel, no done(). */
static void hello_abort(void *inst, sluice_txn *txn, void *slot)
{
    hello *h = inst;
    hello_slot *s = slot;

    (void)txn;
    if (s->timer) {
        h->host->timer_free(s->timer);
        s->timer = NULL;
    }
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "hello",
    .version = "1.0",
    .description = "example out-of-tree stage: adds a header and a symbol",
    .flags = SLUICE_STAGE_ADD_HEADERS,
    .directives = hello_directives,
    .conf_size = sizeof(hello_conf),
    .slot_size = sizeof(hello_slot),
    .init = hello_init,
    .fini = hello_fini,
    .on_phase = {[SLUICE_PHASE_RCPT] = hello_rcpt,
                 [SLUICE_PHASE_EOM] = hello_eom},
    .on_abort = hello_abort,
    .on_close = hello_abort, /* same cleanup when the message ends */
};
