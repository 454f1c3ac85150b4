/*
 * hang.c - the `hang` test stage: at end of message, when the message
 * carries a trigger header, returns SLUICE_PENDING and never calls
 * host->done(), so the engine's per-stage timeout (`timeout`, `on_timeout`
 * in the stage's conf section) must end the transaction.  Implements
 * on_abort as the ABI requires of every PENDING stage.
 *
 * Directives: header (default X-Sluice-Test), value (default "hang").
 * Counters: hung (transactions parked), aborted (on_abort calls).
 *
 * Diagnostics: a warning line per parked message and per abort, each with
 * the message id.
 *
 * SECURITY: test-only; never put it in a production chain.
 */
#include <sluice/stage.h>

#include <stdlib.h>
#include <string.h>

typedef struct hang_conf {
    char *header;
    char *value;
} hang_conf;

typedef struct hang_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    hang_conf *conf;
} hang_inst;

typedef struct hang_slot {
    int pending; /* 1 while we hold the transaction */
} hang_slot;

static const sluice_directive hang_directives[] = {
    {"header", SLUICE_CONF_STRING, offsetof(hang_conf, header),
     "X-Sluice-Test", 0, 0, NULL, "header that carries the trigger"},
    {"value", SLUICE_CONF_STRING, offsetof(hang_conf, value), "hang", 0, 0,
     NULL, "substring of the header value that makes the stage hang"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int hang_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                     void **inst)
{
    hang_inst *hi = calloc(1, sizeof(*hi));

    if (hi == NULL)
        return -1;
    hi->host = host;
    hi->ctx = ctx;
    hi->conf = conf;
    *inst = hi;
    return 0;
}

static void hang_fini(void *inst)
{
    free(inst);
}

static sluice_verdict hang_eom(void *inst, sluice_txn *txn, void *slot)
{
    hang_inst *hi = inst;
    hang_slot *s = slot;
    const sluice_header *h;

    h = hi->host->header_find(txn, hi->conf->header, 0);
    if (h == NULL || h->value == NULL || strstr(h->value, hi->conf->value) == NULL)
        return SLUICE_CONTINUE;
    s->pending = 1;
    hi->host->counter_add(hi->ctx, "hung", 1);
    hi->host->log(hi->ctx, txn, SLUICE_LOG_WARN,
                  "hang: %s: %s found, never calling done()",
                  hi->conf->header, hi->conf->value);
    return SLUICE_PENDING;
}

static void hang_abort(void *inst, sluice_txn *txn, void *slot)
{
    hang_inst *hi = inst;
    hang_slot *s = slot;

    if (!s->pending) {
        hi->host->log(hi->ctx, txn, SLUICE_LOG_ERROR,
                      "hang: on_abort without a pending hook");
        return;
    }
    s->pending = 0;
    hi->host->counter_add(hi->ctx, "aborted", 1);
    hi->host->log(hi->ctx, txn, SLUICE_LOG_WARN, "hang: aborted by the engine");
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "hang",
    .version = "1.0",
    .description = "test only: never finish a trigger message",
    .flags = 0,
    .directives = hang_directives,
    .conf_size = sizeof(hang_conf),
    .slot_size = sizeof(hang_slot),
    .init = hang_init,
    .fini = hang_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = hang_eom},
    .on_abort = hang_abort,
};
