/*
 * crash.c - the `crash` test stage: kills its worker process at end of
 * message when the message carries a trigger header, so the integration
 * tests can check that a crashing stage loses no mail (the MTA keeps the
 * message, other mail keeps flowing, the master restarts the worker).
 *
 * Directives: header (default X-Sluice-Test), value (substring of the
 * header's value that triggers, default "crash"), how (abort | segv |
 * exit, default abort).  Messages without the trigger pass (CONTINUE).
 *
 * Diagnostics: logs an error line with the message id just before dying.
 *
 * SECURITY: test-only; never put it in a production chain.  It reads one
 * header through the host's bounded accessors.
 */
#include <sluice/stage.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct crash_conf {
    char *header;
    char *value;
    int how; /* index into crash_hows */
} crash_conf;

typedef struct crash_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    crash_conf *conf;
} crash_inst;

static const char *const crash_hows[] = {"abort", "segv", "exit", NULL};

static const sluice_directive crash_directives[] = {
    {"header", SLUICE_CONF_STRING, offsetof(crash_conf, header),
     "X-Sluice-Test", 0, 0, NULL, "header that carries the trigger"},
    {"value", SLUICE_CONF_STRING, offsetof(crash_conf, value), "crash", 0, 0,
     NULL, "substring of the header value that triggers the crash"},
    {"how", SLUICE_CONF_ENUM, offsetof(crash_conf, how), "abort", 0, 0,
     crash_hows, "abort(), SIGSEGV or _exit(3)"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int crash_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                      void **inst)
{
    crash_inst *ci = calloc(1, sizeof(*ci));

    if (ci == NULL)
        return -1;
    ci->host = host;
    ci->ctx = ctx;
    ci->conf = conf;
    *inst = ci;
    return 0;
}

static void crash_fini(void *inst)
{
    free(inst);
}

static sluice_verdict crash_eom(void *inst, sluice_txn *txn, void *slot)
{
    crash_inst *ci = inst;
    const sluice_header *h;

    (void)slot;
    h = ci->host->header_find(txn, ci->conf->header, 0);
    if (h == NULL || h->value == NULL || strstr(h->value, ci->conf->value) == NULL)
        return SLUICE_CONTINUE;
    ci->host->log(ci->ctx, txn, SLUICE_LOG_ERROR,
                  "crash: %s: %s found, crashing the worker (%s) as asked",
                  ci->conf->header, ci->conf->value, crash_hows[ci->conf->how]);
    switch (ci->conf->how) {
    case 1:
        raise(SIGSEGV);
        break;
    case 2:
        _exit(3);
    default:
        break;
    }
    abort();
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "crash",
    .version = "1.0",
    .description = "test only: crash the worker on a trigger header",
    .flags = 0,
    .directives = crash_directives,
    .conf_size = sizeof(crash_conf),
    .init = crash_init,
    .fini = crash_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = crash_eom},
};
