/*
 * bayes_stage.c - the `bayes` stage: classifies each message at end of
 * data with the Bayes token database (bayes.h) and reports the result as
 * a BAYES_xx symbol and a header.  A stand-in until the `heuristic` stage
 * (rules + Bayes + the combined score) takes the classifier over.
 *
 * Symbols: one of BAYES_00, 05, 20, 40, 50, 60, 80, 95, 99 (the band of
 * the spam probability), with the score configured for that band.
 * Header (optional): `X-Sluice-Bayes: 0.9968 BAYES_99 tokens=412 known=377`
 * or `X-Sluice-Bayes: untrained (12 spam, 40 ham learned)`.
 *
 * The database is opened in each worker (read-only map, no lock) and
 * checked for a newer file at most every `refresh` seconds, so training
 * with sluice-bayes takes effect without a reload.  A missing or damaged
 * database is a warning, not a failure: messages pass unclassified (a
 * Bayes outage must not stop mail).  Classification runs on the loop: it
 * only reads memory (about a millisecond for a large message).
 *
 * SECURITY: message content is attacker-controlled (see bayes_tok.c); the
 * database is trusted as far as its directory is, and checked at open.
 */
#include <sluice/stage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bayes.h"

#define BSTAGE_NBANDS 9

static const char *const bstage_bands[BSTAGE_NBANDS] = {
    "BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
    "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"};

/* Defaults: roughly symmetric, growing with the certainty of the band. */
static const double bstage_default_scores[BSTAGE_NBANDS] = {
    -3.0, -2.0, -1.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0};

typedef struct bstage_conf {
    char *database;
    char *header;
    int add_header;
    long long min_spam, min_ham;
    long long max_tokens;
    char **scores; /* BAND SCORE pairs */
    double refresh;
} bstage_conf;

typedef struct bstage {
    const sluice_host *host;
    sluice_ctx *ctx;
    bstage_conf *conf;
    double score[BSTAGE_NBANDS];
    bayes_params params;
    bayes_tok_opts topts;
    bayes_db *db;
    double next_check; /* host->now() at which to look at the file again */
    int warned;        /* the current failure was logged */
} bstage;

typedef struct bstage_io {
    const sluice_host *host;
    sluice_txn *txn;
} bstage_io;

static const sluice_directive bstage_directives[] = {
    {"database", SLUICE_CONF_STRING, offsetof(bstage_conf, database),
     "/var/lib/sluice/bayes.db", 0, 0, NULL,
     "token database (sluice-bayes learns into it)"},
    {"header", SLUICE_CONF_STRING, offsetof(bstage_conf, header),
     "X-Sluice-Bayes", 0, 0, NULL, "name of the result header"},
    {"add_header", SLUICE_CONF_BOOL, offsetof(bstage_conf, add_header), "yes",
     0, 0, NULL, "add the result header"},
    {"min_spam", SLUICE_CONF_INT, offsetof(bstage_conf, min_spam), "50", 1,
     1000000000, NULL, "spam messages learned before classifying"},
    {"min_ham", SLUICE_CONF_INT, offsetof(bstage_conf, min_ham), "50", 1,
     1000000000, NULL, "ham messages learned before classifying"},
    {"max_tokens", SLUICE_CONF_INT, offsetof(bstage_conf, max_tokens), "4000",
     100, 1000000, NULL, "distinct tokens taken from one message"},
    {"score", SLUICE_CONF_STRLIST, offsetof(bstage_conf, scores), NULL, 0, 0,
     NULL, "BAND SCORE: score of a band, e.g. score BAYES_99 5"},
    {"refresh", SLUICE_CONF_DURATION, offsetof(bstage_conf, refresh), "1s", 0,
     0, NULL, "how often to look for a newly trained database"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int bstage_band_index(const char *name)
{
    int i;

    for (i = 0; i < BSTAGE_NBANDS; i++)
        if (strcmp(name, bstage_bands[i]) == 0)
            return i;
    return -1;
}

static int bstage_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                       void **inst)
{
    bstage_conf *c = conf;
    bstage *bs;
    size_t i;

    if ((bs = calloc(1, sizeof(*bs))) == NULL)
        return -1;
    bs->host = host;
    bs->ctx = ctx;
    bs->conf = c;
    memcpy(bs->score, bstage_default_scores, sizeof(bs->score));
    for (i = 0; c->scores != NULL && c->scores[i] != NULL; i += 2) {
        char *end = NULL;
        int band = bstage_band_index(c->scores[i]);
        double v = 0;
        if (c->scores[i + 1] != NULL)
            v = strtod(c->scores[i + 1], &end);
        if (band < 0 || c->scores[i + 1] == NULL || end == c->scores[i + 1] ||
            *end != '\0') {
            host->log(ctx, NULL, SLUICE_LOG_ERROR,
                      "score: expected BAND SCORE pairs with BAND one of "
                      "BAYES_00 .. BAYES_99, got \"%s%s%s\"",
                      c->scores[i], c->scores[i + 1] ? " " : "",
                      c->scores[i + 1] ? c->scores[i + 1] : "");
            free(bs);
            return -1;
        }
        bs->score[band] = v;
    }
    bayes_params_default(&bs->params);
    bs->params.min_spam = (uint64_t)c->min_spam;
    bs->params.min_ham = (uint64_t)c->min_ham;
    bayes_tok_opts_default(&bs->topts);
    bs->topts.max_tokens = (size_t)c->max_tokens;
    *inst = bs;
    return 0;
}

/* The database, opened or refreshed if it is time to; NULL if none. */
static bayes_db *bstage_db(bstage *bs, sluice_txn *txn)
{
    const sluice_host *h = bs->host;
    double now = h->now(bs->ctx);
    char err[512];
    int rc = 0;

    if (now < bs->next_check)
        return bs->db;
    bs->next_check = now + bs->conf->refresh;
    if (bs->db == NULL) {
        bs->db = bayes_db_open(bs->conf->database, err, sizeof(err));
        rc = bs->db == NULL ? -1 : 1;
    } else {
        rc = bayes_db_refresh(bs->db, err, sizeof(err));
    }
    if (rc < 0 && !bs->warned) {
        h->log(bs->ctx, txn, SLUICE_LOG_WARN, "Bayes database: %s%s", err,
               bs->db ? " (keeping the one loaded)"
                      : "; messages pass unclassified");
        bs->warned = 1;
    } else if (rc > 0) {
        const bayes_table *t = bayes_db_table(bs->db);
        h->log(bs->ctx, txn, SLUICE_LOG_INFO,
               "Bayes database %s loaded: %llu spam, %llu ham learned",
               bs->conf->database, (unsigned long long)t->nspam,
               (unsigned long long)t->nham);
        bs->warned = 0;
    }
    return bs->db;
}

static int bstage_worker_start(void *inst)
{
    bstage *bs = inst;

    bstage_db(bs, NULL); /* early word in the log if it is missing */
    return 0;
}

static const sluice_header *bstage_header(void *arg, size_t i)
{
    bstage_io *io = arg;

    return io->host->header(io->txn, i);
}

static const sluice_part *bstage_part(void *arg, size_t i)
{
    bstage_io *io = arg;

    return io->host->part(io->txn, i);
}

static void bstage_set_header(bstage *bs, sluice_txn *txn, const char *value)
{
    if (bs->conf->add_header &&
        bs->host->header_add(txn, bs->conf->header, value) < 0)
        bs->host->log(bs->ctx, txn, SLUICE_LOG_WARN,
                      "could not add the %s header", bs->conf->header);
}

static sluice_verdict bstage_eom(void *inst, sluice_txn *txn, void *slot)
{
    bstage *bs = inst;
    const sluice_host *h = bs->host;
    bayes_db *db = bstage_db(bs, txn);
    bstage_io io = {h, txn};
    bayes_input in;
    bayes_toks tk;
    bayes_result r;
    char value[160];
    int band;

    if (db == NULL) {
        h->counter_add(bs->ctx, "no_database", 1);
        return SLUICE_CONTINUE;
    }
    in.arg = &io;
    in.nheaders = h->header_count(txn);
    in.header = bstage_header;
    in.nparts = h->part_count(txn);
    in.part = bstage_part;
    if (bayes_tokenize(&in, &bs->topts, &tk) < 0) {
        h->log(bs->ctx, txn, SLUICE_LOG_WARN, "Bayes: out of memory");
        return SLUICE_CONTINUE;
    }
    if (bayes_classify(bayes_db_table(db), &tk, &bs->params, &r) < 0) {
        const bayes_table *t = bayes_db_table(db);
        snprintf(value, sizeof(value),
                 "untrained (%llu spam, %llu ham "
                 "learned)",
                 (unsigned long long)t->nspam, (unsigned long long)t->nham);
        bstage_set_header(bs, txn, value);
        h->counter_add(bs->ctx, "untrained", 1);
        bayes_toks_free(&tk);
        return SLUICE_CONTINUE;
    }
    band = bstage_band_index(r.band);
    h->symbol_add(txn, r.band, band >= 0 ? bs->score[band] : 0.0,
                  "Bayes spam probability %.1f%%", r.prob * 100.0);
    snprintf(value, sizeof(value), "%.4f %s tokens=%zu known=%zu", r.prob,
             r.band, tk.count, r.known);
    bstage_set_header(bs, txn, value);
    h->counter_add(bs->ctx, "classified", 1);
    bayes_toks_free(&tk);
    return SLUICE_CONTINUE;
}

static void bstage_fini(void *inst)
{
    bstage *bs = inst;

    bayes_db_close(bs->db);
    free(bs);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "bayes",
    .version = "1.0",
    .description = "Bayes token classifier: BAYES_xx symbol and header",
    .flags = SLUICE_STAGE_ADD_HEADERS,
    .directives = bstage_directives,
    .conf_size = sizeof(bstage_conf),
    .init = bstage_init,
    .worker_start = bstage_worker_start,
    .fini = bstage_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = bstage_eom},
};
