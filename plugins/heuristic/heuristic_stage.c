/*
 * heuristic_stage.c - the `heuristic` stage: runs the weighted rules
 * (rules.h) at end of message, adds one symbol per rule that hit, then
 * turns every symbol of the message (its own and those of the bayes, dns
 * and blocklist stages before it) into the raw score and a spam
 * probability, written to headers and the log for the policy stage.
 *
 * Score and probability
 *   score = host->score(txn), the sum of the weights of all symbols;
 *   probability = 1 / (1 + exp(-(score - threshold) / scale)), so a score
 *   at `threshold` is 50 %, and every `scale` points further multiply the
 *   odds by e (defaults 5 and 1.5: score 0 is 3.4 %, 7.3 is 82 %, 10 is
 *   96 %).
 *   Headers: X-Sluice-Score: 7.3, X-Sluice-Probability: 82%,
 *   X-Sluice-Symbols: the `top_symbols` heaviest symbols with weights.
 *
 * Rules are loaded and compiled in init() (the master, at load and each
 * reload; with cache_dir the Hyperscan databases of unchanged rules are
 * read from there, rules_cache.c); each worker gets its own scan scratch
 * in worker_start().  A
 * bad sluice rule file fails the load with file:line; SpamAssassin files
 * (sa_rules, off by default) never do: their skipped rules are counted in
 * one log line.
 *
 * SECURITY: message content is attacker-controlled; the rule engine bounds
 * every scan (rules.h).  Rule files are trusted as the configuration is.
 */
#include <sluice/stage.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules.h"

#ifndef SLUICE_RULES_DIR
#define SLUICE_RULES_DIR "/usr/local/share/sluice/rules"
#endif

typedef struct hstage_conf {
    char **rules;
    char **sa_rules;
    double threshold;
    double scale;
    int add_headers;
    long long top_symbols;
    size_t max_text;
    int prefilter;
    char *cache_dir;
} hstage_conf;

typedef struct hstage {
    const sluice_host *host;
    sluice_ctx *ctx;
    hstage_conf *conf;
    rules_set *rs;
    rules_scratch *scratch; /* per worker (after fork) */
} hstage;

typedef struct hstage_io {
    const sluice_host *host;
    sluice_txn *txn;
} hstage_io;

static const sluice_directive hstage_directives[] = {
    {"rules", SLUICE_CONF_STRLIST, offsetof(hstage_conf, rules), NULL, 0, 0,
     NULL, "sluice rule files or globs (relative: to the working directory)"},
    {"sa_rules", SLUICE_CONF_STRLIST, offsetof(hstage_conf, sa_rules), NULL,
     0, 0, NULL, "SpamAssassin .cf files or globs (off unless given)"},
    {"threshold", SLUICE_CONF_DOUBLE, offsetof(hstage_conf, threshold), "5",
     -100, 100, NULL, "score at which the spam probability is 50 %"},
    {"scale", SLUICE_CONF_DOUBLE, offsetof(hstage_conf, scale), "1.5", 0, 100,
     NULL, "score points per factor e of the spam odds"},
    {"add_headers", SLUICE_CONF_BOOL, offsetof(hstage_conf, add_headers),
     "yes", 0, 0, NULL, "add X-Sluice-Score, -Probability and -Symbols"},
    {"top_symbols", SLUICE_CONF_INT, offsetof(hstage_conf, top_symbols), "5",
     0, 100, NULL, "symbols named in X-Sluice-Symbols"},
    {"max_text", SLUICE_CONF_SIZE, offsetof(hstage_conf, max_text), "256k", 0,
     64 * 1024 * 1024, NULL, "decoded text bytes the rules scan"},
    {"prefilter", SLUICE_CONF_BOOL, offsetof(hstage_conf, prefilter), "no", 0,
     0, NULL, "Hyperscan prefilters PCRE2-only regexes (faster scan, slower "
     "load)"},
    {"cache_dir", SLUICE_CONF_STRING, offsetof(hstage_conf, cache_dir), "",
     0, 0, NULL, "compiled Hyperscan databases kept here (empty: none)"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

/* Load every file a pattern names; a pattern that matches nothing is a
 * warning (an empty rules directory must not stop mail). */
static int hstage_load_glob(hstage *hs, const char *pat, int fmt)
{
    const sluice_host *h = hs->host;
    char err[512], alt[4096];
    glob_t g;
    size_t i;
    int rc;

    rc = glob(pat, 0, NULL, &g);
    if (rc == GLOB_NOMATCH && pat[0] != '/') {
        /* relative and not here: the rules shipped with the build */
        globfree(&g);
        snprintf(alt, sizeof(alt), "%s/../%s", SLUICE_RULES_DIR, pat);
        rc = glob(alt, 0, NULL, &g);
    }
    if (rc == GLOB_NOMATCH) {
        h->log(hs->ctx, NULL, SLUICE_LOG_WARN, "no rule file matches %s", pat);
        globfree(&g);
        return 0;
    }
    if (rc != 0) {
        h->log(hs->ctx, NULL, SLUICE_LOG_ERROR, "%s: cannot expand", pat);
        globfree(&g);
        return -1;
    }
    for (i = 0; i < g.gl_pathc; i++)
        if (rules_load_file(hs->rs, g.gl_pathv[i], fmt, err, sizeof(err)) <
            0) {
            h->log(hs->ctx, NULL, SLUICE_LOG_ERROR, "%s", err);
            globfree(&g);
            return -1;
        }
    globfree(&g);
    return 0;
}

/* cache_dir: relative paths are under the engine's state_dir, so that
 * test and development instances keep their cache with their state. */
static int hstage_set_cache(hstage *hs, const char *dir)
{
    const char *base = NULL;
    char *path;
    size_t n;
    int rc;

    if (dir != NULL && dir[0] != '\0' && dir[0] != '/' &&
        SLUICE_HOST_HAS(hs->host, state_dir) && hs->host->state_dir != NULL)
        base = hs->host->state_dir(hs->ctx);
    if (base == NULL || base[0] == '\0')
        return rules_set_cache(hs->rs, dir);
    n = strlen(base) + strlen(dir) + 2;
    if ((path = malloc(n)) == NULL)
        return -1;
    snprintf(path, n, "%s/%s", base, dir);
    rc = rules_set_cache(hs->rs, path);
    free(path);
    return rc;
}

static int hstage_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                       void **inst)
{
    hstage_conf *c = conf;
    rules_limits lim = {.max_text = c->max_text, .prefilter = c->prefilter};
    const rules_stats *st;
    hstage *hs;
    char err[512];
    size_t i;

    if ((hs = calloc(1, sizeof(*hs))) == NULL)
        return -1;
    hs->host = host;
    hs->ctx = ctx;
    hs->conf = c;
    if ((hs->rs = rules_new(&lim)) == NULL)
        goto fail;
    for (i = 0; c->rules != NULL && c->rules[i] != NULL; i++)
        if (hstage_load_glob(hs, c->rules[i], RULES_FMT_SLUICE) < 0)
            goto fail;
    for (i = 0; c->sa_rules != NULL && c->sa_rules[i] != NULL; i++)
        if (hstage_load_glob(hs, c->sa_rules[i], RULES_FMT_SA) < 0)
            goto fail;
    if (hstage_set_cache(hs, c->cache_dir) < 0)
        goto fail;
    if (rules_compile(hs->rs, err, sizeof(err)) < 0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR, "%s", err);
        goto fail;
    }
    st = rules_get_stats(hs->rs);
    host->log(ctx, NULL, SLUICE_LOG_INFO,
              "rules: %zu loaded (%zu Hyperscan, %zu PCRE2, %zu of them "
              "prefiltered); skipped: %zu eval, %zu regex, %zu other; %zu "
              "directives ignored; %zu Hyperscan databases, %zu of them "
              "from the cache",
              st->loaded, st->hyperscan, st->pcre, st->prefiltered,
              st->skipped_eval,
              st->skipped_regex, st->skipped_other, st->ignored_lines,
              st->hs_groups, st->hs_cached);
    *inst = hs;
    return 0;
fail:
    rules_free(hs->rs);
    free(hs);
    return -1;
}

static int hstage_worker_start(void *inst)
{
    hstage *hs = inst;

    if (hs->scratch == NULL && (hs->scratch = rules_scratch_new(hs->rs)) == NULL) {
        hs->host->log(hs->ctx, NULL, SLUICE_LOG_ERROR,
                      "rules: cannot allocate scan scratch");
        return -1;
    }
    return 0;
}

static const sluice_header *hstage_header(void *arg, size_t i)
{
    hstage_io *io = arg;

    return io->host->header(io->txn, i);
}

static const sluice_part *hstage_part(void *arg, size_t i)
{
    hstage_io *io = arg;

    return io->host->part(io->txn, i);
}

static int hstage_symbol(void *arg, const char *name, double *score)
{
    hstage_io *io = arg;
    size_t i, n = io->host->symbol_count(io->txn);

    for (i = 0; i < n; i++) {
        double sc;
        const char *s = io->host->symbol(io->txn, i, &sc, NULL);
        if (s != NULL && strcmp(s, name) == 0) {
            if (score != NULL)
                *score = sc;
            return 1;
        }
    }
    return 0;
}

/* "NAME(2.5) NAME(1.0) ..." the heaviest symbols first. */
static void hstage_top(hstage *hs, sluice_txn *txn, char *out, size_t outsz)
{
    const sluice_host *h = hs->host;
    size_t n = h->symbol_count(txn), k, i, len = 0;
    unsigned char *used = calloc(n + 1, 1);

    out[0] = '\0';
    if (used == NULL)
        return;
    for (k = 0; k < (size_t)hs->conf->top_symbols && k < n; k++) {
        double best = 0, sc;
        size_t bi = n;
        for (i = 0; i < n; i++) {
            if (used[i] || h->symbol(txn, i, &sc, NULL) == NULL)
                continue;
            if (bi == n || (sc < 0 ? -sc : sc) > (best < 0 ? -best : best)) {
                best = sc;
                bi = i;
            }
        }
        if (bi == n)
            break;
        used[bi] = 1;
        int w = snprintf(out + len, outsz - len, "%s%s(%.1f)", len ? " " : "",
                         h->symbol(txn, bi, NULL, NULL), best);
        if (w < 0 || (size_t)w >= outsz - len) {
            out[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
    free(used);
}

static sluice_verdict hstage_eom(void *inst, sluice_txn *txn, void *slot)
{
    hstage *hs = inst;
    const sluice_host *h = hs->host;
    hstage_io io = {h, txn};
    const sluice_addr *snd = h->sender != NULL ? h->sender(txn) : NULL;
    rules_view v;
    rules_result r;
    sluice_str raw = {NULL, 0};
    char val[64], top[512];
    rules_limits vl = {.max_text = hs->conf->max_text ? hs->conf->max_text
                                                      : 262144,
                       .max_uris = 200};
    double score, prob;
    size_t i;

    (void)slot;
    if (hs->scratch == NULL && hstage_worker_start(hs) < 0)
        return SLUICE_CONTINUE;
    memset(&v, 0, sizeof(v));
    v.in.arg = &io;
    v.in.nheaders = h->header_count(txn);
    v.in.header = hstage_header;
    v.in.nparts = h->part_count(txn);
    v.in.part = hstage_part;
    if (h->message(txn, &raw) == 0) {
        v.raw = raw.ptr;
        v.raw_len = raw.len;
    }
    v.env_from = snd != NULL ? snd->addr : NULL;
    v.now = time(NULL);
    v.symbol = hstage_symbol;
    v.symbol_arg = &io;
    if (rules_view_build(&v, &vl) < 0 ||
        rules_scan(hs->rs, hs->scratch, &v, &r) < 0) {
        h->log(hs->ctx, txn, SLUICE_LOG_WARN, "rules: out of memory");
        rules_view_free(&v);
        return SLUICE_CONTINUE;
    }
    for (i = 0; i < r.nhits; i++) {
        const char *desc;
        double w;
        const char *name = rules_info(hs->rs, r.hits[i].rule, &w, &desc, NULL);
        h->symbol_add(txn, name, r.hits[i].weight, "%s", desc);
    }
    if (r.limit_hits > 0)
        h->counter_add(hs->ctx, "regex_limit", (long long)r.limit_hits);
    h->counter_add(hs->ctx, "scanned", 1);
    rules_result_free(&r);
    rules_view_free(&v);

    score = h->score(txn);
    prob = rules_probability(score, hs->conf->threshold, hs->conf->scale);
    hstage_top(hs, txn, top, sizeof(top));
    h->log(hs->ctx, txn, SLUICE_LOG_INFO, "score=%.1f probability=%.0f%% %s",
           score, prob * 100.0, top);
    if (hs->conf->add_headers) {
        snprintf(val, sizeof(val), "%.1f", score);
        (void)h->header_add(txn, "X-Sluice-Score", val);
        snprintf(val, sizeof(val), "%.0f%%", prob * 100.0);
        (void)h->header_add(txn, "X-Sluice-Probability", val);
        if (top[0] != '\0')
            (void)h->header_add(txn, "X-Sluice-Symbols", top);
    }
    return SLUICE_CONTINUE;
}

static void hstage_fini(void *inst)
{
    hstage *hs = inst;

    rules_scratch_free(hs->scratch);
    rules_free(hs->rs);
    free(hs);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "heuristic",
    .version = "1.0",
    .description = "weighted rules; score and spam probability of all symbols",
    .flags = SLUICE_STAGE_ADD_HEADERS,
    .directives = hstage_directives,
    .conf_size = sizeof(hstage_conf),
    .init = hstage_init,
    .worker_start = hstage_worker_start,
    .fini = hstage_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = hstage_eom},
};
