/*
 * verdict.c - the `verdict` test stage: answers the verdict a test asks
 * for, in the phase it asks, so ingress tests can check how each verdict
 * reaches the MTA.
 *
 * Triggers (WORD is accept, reject, tempfail, discard or quarantine):
 *   CONNECT  client name (or HELO-less address) "WORD.connect.test"
 *   HELO     HELO name "WORD.helo.test"
 *   MAIL     sender "WORD-mail@..."
 *   RCPT     recipient "WORD-rcpt@..." (that recipient only)
 *   EOM      header `X-Sluice-Test` (directive `header`) containing WORD;
 *            also "tag" (add X-Sluice-Verdict-Test: tagged, insert
 *            X-Sluice-Top at the top, change Subject, delete the first
 *            X-Sluice-Delete-Me), "body" (replace the body) and
 *            "whoami" (reject with the client facts as the reply text),
 *            "score=N" (add the symbol TEST_SCORE with score N).
 * A refusal carries the reply text "sluice test: WORD in PHASE".
 * Messages without a trigger pass (CONTINUE).
 *
 * SECURITY: test-only; never put it in a production chain.  It reads
 * envelope and one header through the host's bounded accessors.
 */
#include <sluice/stage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct verdict_conf {
    char *header;
} verdict_conf;

typedef struct verdict_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    verdict_conf *conf;
} verdict_inst;

static const sluice_directive verdict_directives[] = {
    {"header", SLUICE_CONF_STRING, offsetof(verdict_conf, header),
     "X-Sluice-Test", 0, 0, NULL, "header that carries the EOM trigger"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static const char *const verdict_words[] = {"accept",  "reject",     "tempfail",
                                            "discard", "quarantine", NULL};
static const sluice_verdict verdict_values[] = {SLUICE_ACCEPT, SLUICE_REJECT,
                                                SLUICE_TEMPFAIL, SLUICE_DISCARD,
                                                SLUICE_QUARANTINE};

/* The verdict whose word starts `s` and is followed by `suffix`. */
static int verdict_match(const char *s, const char *suffix)
{
    int i;

    for (i = 0; s && verdict_words[i]; i++) {
        size_t n = strlen(verdict_words[i]);
        if (strncmp(s, verdict_words[i], n) == 0 &&
            strncmp(s + n, suffix, strlen(suffix)) == 0)
            return i;
    }
    return -1;
}

static sluice_verdict verdict_give(verdict_inst *vi, sluice_txn *txn, int i,
                                   const char *phase)
{
    char text[128];

    if (i < 0)
        return SLUICE_CONTINUE;
    snprintf(text, sizeof(text), "sluice test: %s in %s", verdict_words[i],
             phase);
    if (verdict_values[i] == SLUICE_REJECT)
        vi->host->set_reply(txn, "550", "5.7.1", text);
    else if (verdict_values[i] == SLUICE_TEMPFAIL)
        vi->host->set_reply(txn, "451", "4.7.1", text);
    else
        vi->host->set_reply(txn, NULL, NULL, text);
    vi->host->log(vi->ctx, txn, SLUICE_LOG_INFO, "%s", text);
    return verdict_values[i];
}

static sluice_verdict verdict_connect(void *inst, sluice_txn *txn, void *slot)
{
    verdict_inst *vi = inst;
    const sluice_client *c = vi->host->client(txn);

    (void)slot;
    return verdict_give(vi, txn, verdict_match(c->name, ".connect.test"),
                        "connect");
}

static sluice_verdict verdict_helo(void *inst, sluice_txn *txn, void *slot)
{
    verdict_inst *vi = inst;
    const sluice_client *c = vi->host->client(txn);

    (void)slot;
    return verdict_give(vi, txn, verdict_match(c->helo, ".helo.test"), "helo");
}

static sluice_verdict verdict_mail(void *inst, sluice_txn *txn, void *slot)
{
    verdict_inst *vi = inst;

    (void)slot;
    return verdict_give(
        vi, txn, verdict_match(vi->host->sender(txn)->addr, "-mail@"), "mail");
}

static sluice_verdict verdict_rcpt(void *inst, sluice_txn *txn, void *slot)
{
    verdict_inst *vi = inst;
    long i = vi->host->rcpt_current(txn);
    const sluice_addr *a = i >= 0 ? vi->host->rcpt(txn, (size_t)i) : NULL;

    (void)slot;
    return verdict_give(vi, txn, a ? verdict_match(a->addr, "-rcpt@") : -1,
                        "rcpt");
}

static sluice_verdict verdict_eom(void *inst, sluice_txn *txn, void *slot)
{
    verdict_inst *vi = inst;
    const sluice_host *h = vi->host;
    const sluice_header *hd = h->header_find(txn, vi->conf->header, 0);
    const char *v = hd && hd->value ? hd->value : "", *sc;
    int i;

    (void)slot;
    if (strstr(v, "tag") != NULL) {
        h->header_add(txn, "X-Sluice-Verdict-Test", "tagged");
        h->header_insert(txn, 0, "X-Sluice-Top", "first");
        if (h->header_find(txn, "Subject", 0))
            h->header_change(txn, "Subject", 0, "[tagged] by sluice");
        if (h->header_find(txn, "X-Sluice-Delete-Me", 0))
            h->header_change(txn, "X-Sluice-Delete-Me", 0, NULL);
    }
    if (strstr(v, "body") != NULL) {
        static const char nb[] = "This body was replaced by sluice.\r\n";
        h->body_replace(txn, nb, sizeof(nb) - 1);
    }
    if (strstr(v, "whoami") != NULL) { /* the client facts, as a reply */
        const sluice_client *c = h->client(txn);
        char text[600];
        snprintf(text, sizeof(text),
                 "whoami addr=%s name=%s helo=%s ident=%s auth=%s from=%s "
                 "rcpts=%zu",
                 c->addr, c->name, c->helo, c->ident,
                 c->size > offsetof(sluice_client, auth) ? c->auth : "-",
                 h->sender(txn)->addr, h->rcpt_count(txn));
        h->set_reply(txn, "550", "5.7.0", text);
        return SLUICE_REJECT;
    }
    if ((sc = strstr(v, "score=")) != NULL) /* a finding for the policy */
        h->symbol_add(txn, "TEST_SCORE", strtod(sc + 6, NULL),
                      "test score from %s", vi->conf->header);
    for (i = 0; verdict_words[i]; i++)
        if (strstr(v, verdict_words[i]) != NULL)
            return verdict_give(vi, txn, i, "eom");
    return SLUICE_CONTINUE;
}

static int verdict_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                        void **inst)
{
    verdict_inst *vi = calloc(1, sizeof(*vi));

    if (vi == NULL)
        return -1;
    vi->host = host;
    vi->ctx = ctx;
    vi->conf = conf;
    *inst = vi;
    return 0;
}

static void verdict_fini(void *inst)
{
    free(inst);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "verdict",
    .version = "1.0",
    .description = "test only: verdicts on demand in every phase",
    .flags = SLUICE_STAGE_ADD_HEADERS | SLUICE_STAGE_CHG_HEADERS |
             SLUICE_STAGE_CHG_BODY,
    .directives = verdict_directives,
    .conf_size = sizeof(verdict_conf),
    .init = verdict_init,
    .fini = verdict_fini,
    .on_phase = {[SLUICE_PHASE_CONNECT] = verdict_connect,
                 [SLUICE_PHASE_HELO] = verdict_helo,
                 [SLUICE_PHASE_MAIL] = verdict_mail,
                 [SLUICE_PHASE_RCPT] = verdict_rcpt,
                 [SLUICE_PHASE_EOM] = verdict_eom},
};
