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
 * The database (`database`, relative to the engine's state_dir) is
 * opened in each worker (read-only map, no lock) and checked for a newer
 * file at most every `refresh` seconds, so training with `sluicectl
 * learn` takes effect without a reload.  Until it holds min_spam and
 * min_ham learned messages the stage abstains (no symbol).  A missing
 * database is normal before the first training (one info line); a
 * damaged one is a warning; either way messages pass unclassified (a
 * Bayes outage must not stop mail).  Classification runs on the loop: it
 * only reads memory (about a millisecond for a large message).
 *
 * Auto-learn (off unless autolearn_spam / autolearn_ham are set): the
 * tokens of the message stay in its slot until on_close, when every stage
 * has run; the message's score without the BAYES_* symbols (the Bayes
 * verdict must not train itself) decides: at or above autolearn_spam it
 * is queued as spam, at or below autolearn_ham as ham.  Messages that
 * were deferred (tempfail) or never reached end of data are not learned.
 * Queued means appended to a journal beside the database (bayes.h,
 * bayes_journal.c: a few microseconds, no lock waited for); at most every
 * `autolearn_apply` seconds (a timer, and the end of each message) a
 * worker that sees a queued journal starts a thread that learns it into
 * the database under the writer lock and commits once; every worker picks
 * the new file up at its next refresh.
 * The environment variable SLUICE_NO_AUTOLEARN (set by `sluicectl scan`)
 * turns auto-learn off: a dry run must not train.
 *
 * SECURITY: message content is attacker-controlled (see bayes_tok.c); the
 * database is trusted as far as its directory is, and checked at open.
 */
#include <sluice/stage.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bayes.h"

#define BSTAGE_NBANDS 9

static const char *const bstage_bands[BSTAGE_NBANDS] = {
    "BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
    "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"};

/* Defaults: the shape -3 .. 4 scaled by 1.25, so BAYES_99 alone reaches
 * the policy's tag_score (5) and no further: any ham sign among the rules
 * (a mailing list's headers) keeps a message Bayes is sure of untagged,
 * and BAYES_95 needs 1.25 points of rules.  The scale was chosen on
 * held-out folds against the shipped rules (bench/accuracy_combined.py
 * --select, README "Accuracy"). */
static const double bstage_default_scores[BSTAGE_NBANDS] = {
    -3.75, -2.5, -1.25, 0.0, 0.0, 1.25, 2.5, 3.75, 5.0};

typedef struct bstage_conf {
    char *database;
    char *header;
    int add_header;
    long long min_spam, min_ham;
    long long max_tokens;
    char **scores; /* BAND SCORE pairs */
    double refresh;
    char *autolearn_spam, *autolearn_ham; /* "off" or a score */
    char *autolearn_journal;
    double autolearn_apply;
    size_t autolearn_max_journal;
} bstage_conf;

/* The auto-learn apply, on a thread of its own (it rewrites the file). */
typedef struct bstage_apply {
    pthread_t tid;
    int running;      /* started and not yet joined (loop thread only) */
    int done;         /* set by the thread, read atomically */
    int rc;
    char *db, *journal;
    bayes_journal_stats st;
    char err[512];
} bstage_apply;

typedef struct bstage {
    const sluice_host *host;
    sluice_ctx *ctx;
    bstage_conf *conf;
    double score[BSTAGE_NBANDS];
    bayes_params params;
    bayes_tok_opts topts;
    bayes_db *db;
    char *dbpath;      /* `database`, absolute */
    double next_check; /* host->now() at which to look at the file again */
    int warned;        /* the current failure was logged */
    int autolearn;     /* either threshold set */
    double al_spam, al_ham; /* NAN: that side off */
    char *journal;
    double next_apply;
    bstage_apply apply;
    sluice_timer *timer; /* per worker: applies while no mail comes */
} bstage;

/* Per message: the tokens, kept for auto-learn until on_close. */
typedef struct bstage_slot {
    bayes_toks tk;
    int have;
} bstage_slot;

typedef struct bstage_io {
    const sluice_host *host;
    sluice_txn *txn;
} bstage_io;

static const sluice_directive bstage_directives[] = {
    {"database", SLUICE_CONF_STRING, offsetof(bstage_conf, database),
     "bayes.db", 0, 0, NULL,
     "token database; relative: under state_dir (sluicectl learn trains it)"},
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
    {"autolearn_spam", SLUICE_CONF_STRING,
     offsetof(bstage_conf, autolearn_spam), "off", 0, 0, NULL,
     "learn as spam from this score (without BAYES_*), or off"},
    {"autolearn_ham", SLUICE_CONF_STRING, offsetof(bstage_conf, autolearn_ham),
     "off", 0, 0, NULL, "learn as ham up to this score (without BAYES_*), or off"},
    {"autolearn_journal", SLUICE_CONF_STRING,
     offsetof(bstage_conf, autolearn_journal), NULL, 0, 0, NULL,
     "queue of auto-learned messages (default: DATABASE.journal)"},
    {"autolearn_apply", SLUICE_CONF_DURATION,
     offsetof(bstage_conf, autolearn_apply), "60s", 0, 0, NULL,
     "how often the queue is learned into the database"},
    {"autolearn_max_journal", SLUICE_CONF_SIZE,
     offsetof(bstage_conf, autolearn_max_journal), "64M", 0, 0, NULL,
     "queue size past which auto-learned messages are dropped"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int bstage_band_index(const char *name)
{
    int i;

    for (i = 0; i < BSTAGE_NBANDS; i++)
        if (strcmp(name, bstage_bands[i]) == 0)
            return i;
    return -1;
}

static void bstage_free(bstage *bs)
{
    bayes_db_close(bs->db);
    free(bs->dbpath);
    free(bs->journal);
    free(bs);
}

/* `p`, absolute: relative paths are under the engine's state_dir. */
static char *bstage_abs(bstage *bs, const char *p)
{
    const sluice_host *h = bs->host;
    const char *dir = NULL;
    size_t n;
    char *out;

    if (p[0] != '/' && SLUICE_HOST_HAS(h, state_dir) && h->state_dir != NULL)
        dir = h->state_dir(bs->ctx);
    if (dir == NULL || dir[0] == '\0')
        return strdup(p);
    n = strlen(dir) + strlen(p) + 2;
    if ((out = malloc(n)) != NULL)
        snprintf(out, n, "%s/%s", dir, p);
    return out;
}

static int bstage_paths(bstage *bs)
{
    const char *j = bs->conf->autolearn_journal;
    size_t n;

    if ((bs->dbpath = bstage_abs(bs, bs->conf->database)) == NULL)
        return -1;
    if (j != NULL && j[0] != '\0') {
        bs->journal = bstage_abs(bs, j);
    } else {
        n = strlen(bs->dbpath) + sizeof(".journal");
        if ((bs->journal = malloc(n)) != NULL)
            snprintf(bs->journal, n, "%s.journal", bs->dbpath);
    }
    return bs->journal != NULL ? 0 : -1;
}

/* "off" (NAN) or a score; -1 if neither. */
static int bstage_threshold(bstage *bs, const char *key, const char *v,
                            double *out)
{
    char *end = NULL;

    *out = NAN;
    if (v == NULL || strcmp(v, "off") == 0 || strcmp(v, "no") == 0)
        return 0;
    *out = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(*out)) {
        bs->host->log(bs->ctx, NULL, SLUICE_LOG_ERROR,
                      "%s: expected a score or off, got \"%s\"", key, v);
        return -1;
    }
    return 0;
}

static int bstage_autolearn_conf(bstage *bs)
{
    const bstage_conf *c = bs->conf;
    const char *off = getenv("SLUICE_NO_AUTOLEARN");

    if (bstage_threshold(bs, "autolearn_spam", c->autolearn_spam,
                         &bs->al_spam) < 0 ||
        bstage_threshold(bs, "autolearn_ham", c->autolearn_ham, &bs->al_ham) <
            0)
        return -1;
    if (!isnan(bs->al_spam) && !isnan(bs->al_ham) && bs->al_ham >= bs->al_spam) {
        bs->host->log(bs->ctx, NULL, SLUICE_LOG_ERROR,
                      "autolearn_ham (%g) must be below autolearn_spam (%g)",
                      bs->al_ham, bs->al_spam);
        return -1;
    }
    bs->autolearn = !isnan(bs->al_spam) || !isnan(bs->al_ham);
    if (bs->autolearn && off != NULL && off[0] != '\0') {
        bs->host->log(bs->ctx, NULL, SLUICE_LOG_INFO,
                      "auto-learn off: SLUICE_NO_AUTOLEARN is set");
        bs->autolearn = 0;
    }
    return 0;
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
            bstage_free(bs);
            return -1;
        }
        bs->score[band] = v;
    }
    bayes_params_default(&bs->params);
    bs->params.min_spam = (uint64_t)c->min_spam;
    bs->params.min_ham = (uint64_t)c->min_ham;
    bayes_tok_opts_default(&bs->topts);
    bs->topts.max_tokens = (size_t)c->max_tokens;
    if (bstage_paths(bs) < 0 || bstage_autolearn_conf(bs) < 0) {
        bstage_free(bs);
        return -1;
    }
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
        struct stat st;
        if (stat(bs->dbpath, &st) < 0 && errno == ENOENT) {
            if (!bs->warned) /* a new installation: not a fault */
                h->log(bs->ctx, txn, SLUICE_LOG_INFO,
                       "no Bayes database at %s yet: the stage abstains "
                       "until `sluicectl learn` trains one",
                       bs->dbpath);
            bs->warned = 1;
            return NULL;
        }
        bs->db = bayes_db_open(bs->dbpath, err, sizeof(err));
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
               bs->dbpath, (unsigned long long)t->nspam,
               (unsigned long long)t->nham);
        bs->warned = 0;
    }
    return bs->db;
}

static void bstage_tick(sluice_timer *t, void *arg);

static int bstage_worker_start(void *inst)
{
    bstage *bs = inst;
    const sluice_host *h = bs->host;

    bstage_db(bs, NULL); /* early word in the log if it is missing */
    if (bs->autolearn && h->timer_new != NULL && bs->timer == NULL &&
        (bs->timer = h->timer_new(bs->ctx, bstage_tick, bs)) != NULL)
        h->timer_start(bs->timer, 1.0);
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

/* Keep the tokens for on_close (auto-learn), else free them. */
static void bstage_keep(bstage *bs, bstage_slot *sl, bayes_toks *tk)
{
    if (bs->autolearn && sl != NULL) {
        sl->tk = *tk;
        sl->have = 1;
    } else {
        bayes_toks_free(tk);
    }
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
        if (!bs->autolearn)
            return SLUICE_CONTINUE; /* nothing to do without one */
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
    if (db == NULL) {
        bstage_keep(bs, slot, &tk);
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
        bstage_keep(bs, slot, &tk);
        return SLUICE_CONTINUE;
    }
    band = bstage_band_index(r.band);
    h->symbol_add(txn, r.band, band >= 0 ? bs->score[band] : 0.0,
                  "Bayes spam probability %.1f%%", r.prob * 100.0);
    snprintf(value, sizeof(value), "%.4f %s tokens=%zu known=%zu", r.prob,
             r.band, tk.count, r.known);
    bstage_set_header(bs, txn, value);
    h->counter_add(bs->ctx, "classified", 1);
    bstage_keep(bs, slot, &tk);
    return SLUICE_CONTINUE;
}

/* ---------------------------------------------------------------- */
/* Auto-learn                                                        */

static void *bstage_apply_main(void *arg)
{
    bstage_apply *a = arg;

    a->rc = bayes_journal_apply(a->db, a->journal, &a->st, a->err,
                                sizeof(a->err));
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Join a finished apply and log its outcome; wait: join even if running. */
static void bstage_apply_reap(bstage *bs, int wait)
{
    bstage_apply *a = &bs->apply;
    const sluice_host *h = bs->host;

    if (!a->running || (!wait && !__atomic_load_n(&a->done, __ATOMIC_ACQUIRE)))
        return;
    pthread_join(a->tid, NULL);
    a->running = 0;
    if (a->rc < 0) {
        h->log(bs->ctx, NULL, SLUICE_LOG_WARN,
               "auto-learn: %s (the queue is kept for the next try)", a->err);
        h->counter_add(bs->ctx, "autolearn_errors", 1);
    } else if (a->st.learned + a->st.skipped + a->st.bad > 0) {
        h->log(bs->ctx, NULL, SLUICE_LOG_INFO,
               "auto-learn: %zu messages learned into %s (%zu already "
               "known, %zu damaged records dropped)",
               a->st.learned, bs->dbpath, a->st.skipped, a->st.bad);
        h->counter_add(bs->ctx, "autolearn_applied", (long long)a->st.learned);
        bs->next_check = 0; /* look at the new database at once */
    }
}

/* Start an apply if it is time and something is queued. */
static void bstage_apply_maybe(bstage *bs)
{
    bstage_apply *a = &bs->apply;
    double now = bs->host->now(bs->ctx);
    struct stat st;

    bstage_apply_reap(bs, 0);
    if (a->running || now < bs->next_apply)
        return;
    bs->next_apply = now + bs->conf->autolearn_apply;
    if (stat(bs->journal, &st) < 0 || st.st_size == 0)
        return;
    a->db = bs->dbpath;
    a->journal = bs->journal;
    a->done = 0;
    if (pthread_create(&a->tid, NULL, bstage_apply_main, a) != 0) {
        bs->host->log(bs->ctx, NULL, SLUICE_LOG_WARN,
                      "auto-learn: cannot start the apply thread");
        return;
    }
    a->running = 1;
}

/* The message's score without the Bayes symbols. */
static double bstage_score_without_bayes(bstage *bs, sluice_txn *txn)
{
    const sluice_host *h = bs->host;
    size_t i, n = h->symbol_count(txn);
    double sum = 0;

    for (i = 0; i < n; i++) {
        double sc = 0;
        const char *name = h->symbol(txn, i, &sc, NULL);
        if (name != NULL && strncmp(name, "BAYES_", 6) != 0)
            sum += sc;
    }
    return sum;
}

static void bstage_close(void *inst, sluice_txn *txn, void *slot)
{
    bstage *bs = inst;
    const sluice_host *h = bs->host;
    bstage_slot *sl = slot;
    char err[600];
    double score;
    int spam = -1, rc;

    if (sl == NULL || !sl->have)
        return;
    if (h->disposition == NULL || h->disposition(txn) != SLUICE_TEMPFAIL) {
        score = bstage_score_without_bayes(bs, txn);
        if (!isnan(bs->al_spam) && score >= bs->al_spam)
            spam = 1;
        else if (!isnan(bs->al_ham) && score <= bs->al_ham)
            spam = 0;
    }
    if (spam >= 0) {
        rc = bayes_journal_append(bs->journal, &sl->tk, spam, bayes_today(),
                                  bs->conf->autolearn_max_journal, err,
                                  sizeof(err));
        if (rc < 0)
            h->log(bs->ctx, txn, SLUICE_LOG_WARN,
                   "auto-learn: %s (message not queued)", err);
        h->counter_add(bs->ctx,
                       rc < 0    ? "autolearn_errors"
                       : rc > 0  ? "autolearn_dropped"
                       : spam    ? "autolearn_spam"
                                 : "autolearn_ham",
                       1);
        if (rc == 0)
            h->log(bs->ctx, txn, SLUICE_LOG_INFO,
                   "auto-learn: queued as %s (score %.1f without Bayes)",
                   spam ? "spam" : "ham", score);
    }
    bayes_toks_free(&sl->tk);
    sl->have = 0;
    bstage_apply_maybe(bs);
}

/* Between messages: start a due apply, collect a finished one. */
static void bstage_tick(sluice_timer *t, void *arg)
{
    bstage *bs = arg;
    double period = bs->conf->autolearn_apply;

    bstage_apply_maybe(bs);
    if (bs->apply.running || period < 0.2)
        period = 0.2; /* reap it soon */
    bs->host->timer_start(t, period);
}

static void bstage_stop(void *inst, int graceful)
{
    bstage *bs = inst;

    (void)graceful;
    if (bs->timer != NULL) {
        bs->host->timer_stop(bs->timer);
        bs->host->timer_free(bs->timer);
        bs->timer = NULL;
    }
    bstage_apply_reap(bs, 1);
}

static void bstage_fini(void *inst)
{
    bstage *bs = inst;

    bstage_stop(bs, 0);
    bstage_free(bs);
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
    .slot_size = sizeof(bstage_slot),
    .init = bstage_init,
    .worker_start = bstage_worker_start,
    .worker_stop = bstage_stop,
    .fini = bstage_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = bstage_eom},
    .on_close = bstage_close,
};
