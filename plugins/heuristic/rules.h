/*
 * rules.h - the rule engine of the `heuristic` stage: rule files (sluice's
 * own format and SpamAssassin's), one compiled matcher per rule kind, and
 * the scan of one message.  Static library sluice_rules, used by the
 * stage, bench/rules and the tests.
 *
 * Interface
 *   rules_new() makes an empty set; rules_load_file() / rules_load_buffer()
 *   parse rule files into it (RULES_FMT_SLUICE or RULES_FMT_SA);
 *   rules_compile() resolves meta rules and builds the matchers: one
 *   Hyperscan multi-pattern database per rule kind (per header name for
 *   header rules) for the patterns Hyperscan accepts, PCRE2 (JIT, match
 *   limits) for the rest.  A compiled set is read-only: rules_scan() needs
 *   only a per-thread rules_scratch.
 *
 *   rules_view_build() turns a message (headers and parts as bayes_input
 *   gives them, plus the raw message) into what the rules look at: the
 *   decoded text with HTML turned into text, the raw text parts, the URIs,
 *   the links (anchor text and href) and HTML statistics.
 *
 * Diagnostics
 *   Load errors of the sluice format are returned (-1) with "file:line:
 *   reason" in err.  In SpamAssassin files nothing is an error: what
 *   cannot be used (Perl eval: tests sluice does not implement, regexes
 *   neither Hyperscan nor PCRE2 accept, unknown directives) is counted in
 *   rules_stats and skipped.  rules_scan() never fails: a regex that hits
 *   its match limit is treated as no match and counted.
 *
 * SECURITY
 *   Rule files are trusted as far as their owner (the operator).  Message
 *   bytes are attacker-controlled: every buffer scanned is bounded
 *   (rules_limits), PCRE2 runs with match and depth limits, and Hyperscan
 *   is linear in its input by construction.
 */
#ifndef SLUICE_RULES_H
#define SLUICE_RULES_H

#include <stddef.h>
#include <time.h>
#include <sluice/stage.h>

#include "bayes.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { RULES_FMT_SLUICE = 0, RULES_FMT_SA = 1 };

typedef enum rules_kind {
    RULES_HEADER = 0,
    RULES_BODY,    /* decoded text, HTML as text, Subject first */
    RULES_RAWBODY, /* decoded text parts, HTML tags kept */
    RULES_FULL,    /* the raw message */
    RULES_URI,     /* each URI alone */
    RULES_EVAL,    /* a built-in test written in C */
    RULES_META,    /* expression over other rules and symbols */
    RULES_KIND_COUNT
} rules_kind;

typedef struct rules_stats {
    size_t loaded;          /* rules that will be evaluated */
    size_t hyperscan;       /* ... of which matched by Hyperscan */
    size_t pcre;            /* ... of which matched by PCRE2 */
    size_t prefiltered;     /* ... of those, Hyperscan-prefiltered */
    size_t skipped_eval;    /* SA eval: tests not implemented */
    size_t skipped_regex;   /* regexes neither engine accepts */
    size_t skipped_other;   /* unsupported header forms, dead metas */
    size_t ignored_lines;   /* SA directives sluice does not use */
    size_t disabled;        /* score 0 */
    size_t hs_groups;       /* Hyperscan databases ... */
    size_t hs_cached;       /* ... of which read from the cache */
} rules_stats;

typedef struct rules_limits {
    size_t max_text;    /* body / rawbody bytes scanned, default 256k */
    size_t max_full;    /* full-message bytes scanned, default 512k */
    size_t max_uris;    /* default 200 */
    unsigned match_limit; /* PCRE2 match limit, default 100000 */
    unsigned depth_limit; /* PCRE2 depth limit, default 1000 */
    int pcre_only;        /* 1: no Hyperscan (faster compile, slower scan) */
    int prefilter;        /* 1: Hyperscan prefilters the PCRE2-only
                           * patterns, PCRE2 confirms (measured slower
                           * with the SA rules: bench/rules.sh) */
} rules_limits;

typedef struct rules_set rules_set;

rules_set *rules_new(const rules_limits *lim); /* lim may be NULL */
void rules_free(rules_set *rs);
/* Parse one file (format RULES_FMT_*); 0, or -1 with "file:line: why". */
int rules_load_file(rules_set *rs, const char *path, int fmt, char *err,
                    size_t errlen);
int rules_load_buffer(rules_set *rs, const char *name, const char *buf,
                      size_t len, int fmt, char *err, size_t errlen);
/* Resolve meta rules (cycles and bad references are errors for sluice
 * rules, skips for SA rules) and build the matchers.  0 or -1. */
/* Keep compiled Hyperscan databases in directory dir (created 0700 if
 * missing; NULL or "": no cache), read back by later rules_compile()s of
 * the same patterns.  Call before rules_compile(); 0, or -1 out of memory.
 * The directory must belong to the effective user and be writable by
 * nobody else, or it is not used (rules_cache.c). */
int rules_set_cache(rules_set *rs, const char *dir);
int rules_compile(rules_set *rs, char *err, size_t errlen);
const rules_stats *rules_get_stats(const rules_set *rs);
size_t rules_count(const rules_set *rs);
/* Rule i: name, weight, description; NULL past the end. */
const char *rules_info(const rules_set *rs, size_t i, double *weight,
                       const char **desc, rules_kind *kind);
/* Index of a rule by name, or -1. */
long rules_find(const rules_set *rs, const char *name);

/* ------------------------------------------------------------------ */
/* The message as the rules see it                                    */
/* ------------------------------------------------------------------ */

typedef struct rules_link {
    char *text; /* anchor text (visible), trimmed */
    char *href;
} rules_link;

/* A text part's place in rules_view.text (decoded; HTML as text). */
typedef struct rules_tpart {
    int part;              /* index for in.part() */
    int parent;            /* its multipart's index, -1 for none */
    int html;              /* text/html */
    size_t off, len;       /* bytes of rules_view.text */
} rules_tpart;

typedef struct rules_view {
    bayes_input in;        /* headers and parts */
    const char *raw;       /* the whole message, may be NULL */
    size_t raw_len;
    const char *env_from;  /* envelope sender or NULL */
    time_t now;            /* reference time for the date tests */
    /* Symbols other stages added: 1 if `name` is there (may be NULL). */
    int (*symbol)(void *arg, const char *name, double *score);
    void *symbol_arg;
    /* Built by rules_view_build(): */
    char *text;            /* Subject line + decoded text (HTML as text) */
    size_t text_len;
    char *rawtext;         /* decoded text parts as they are */
    size_t rawtext_len;
    char **uris;
    size_t nuris, auris;
    rules_link *links;
    size_t nlinks, alinks;
    size_t html_bytes;     /* decoded HTML parts */
    size_t html_text;      /* visible text those parts yield */
    size_t html_imgs;      /* <img> tags in them */
    size_t html_hidden;    /* visible bytes in the background's colour */
    size_t body_off;       /* where the text after the Subject line starts */
    rules_tpart *tparts;   /* the text parts, in order */
    size_t ntparts, atparts;
} rules_view;

/* Build the derived fields of v (in, raw, env_from, now already set).
 * -1 only on ENOMEM. */
int rules_view_build(rules_view *v, const rules_limits *lim);
void rules_view_free(rules_view *v);
/* HTML to visible text (tags dropped, script/style skipped, entities
 * decoded), appended to a malloc'd buffer; links collected into v if v is
 * not NULL.  Exposed for the tests. */
char *rules_html_text(const char *html, size_t len, size_t max,
                      size_t *outlen, rules_view *v);

/* ------------------------------------------------------------------ */
/* Scanning                                                           */
/* ------------------------------------------------------------------ */

typedef struct rules_scratch rules_scratch;
rules_scratch *rules_scratch_new(const rules_set *rs);
void rules_scratch_free(rules_scratch *s);

typedef struct rules_hit {
    size_t rule;   /* index for rules_info() */
    double weight; /* weight x hits for `multiple` rules */
} rules_hit;

typedef struct rules_result {
    rules_hit *hits;
    size_t nhits;
    double score;         /* sum of the hits' weights */
    size_t limit_hits;    /* PCRE2 matches stopped by a limit */
} rules_result;

/* Evaluate every rule on the view (built).  -1 only on ENOMEM. */
int rules_scan(const rules_set *rs, rules_scratch *s, const rules_view *v,
               rules_result *r);
void rules_result_free(rules_result *r);

/* The documented mapping of a score to a spam probability:
 * 1 / (1 + exp(-(score - mid) / scale)), in 0..1. */
double rules_probability(double score, double mid, double scale);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_RULES_H */
