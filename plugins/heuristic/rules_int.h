/*
 * rules_int.h - what rules_parse.c, rules_match.c and rules_view.c share:
 * the rule record, the compiled meta expression, the matcher groups.
 * Not installed, not part of any interface.
 */
#ifndef SLUICE_RULES_INT_H
#define SLUICE_RULES_INT_H

#include "rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Regex flags, as in Perl's trailing modifiers. */
enum { RX_I = 1, RX_M = 2, RX_S = 4, RX_X = 8 };

/* Built-in tests (RULES_EVAL). */
typedef enum rules_eval_fn {
    EV_HTML_TEXT_RATIO = 0, /* visible text / HTML bytes below arg */
    EV_OBFUSCATED_WORDS,    /* at least arg obfuscated words */
    EV_DATE_FUTURE,         /* Date more than arg hours ahead */
    EV_DATE_PAST,           /* Date more than arg days back */
    EV_RECEIVED_SHORT,      /* fewer than arg Received fields */
    EV_RECEIVED_FORGED,     /* malformed or time-travelling chain */
    EV_LINK_MISMATCH,       /* anchor text names another domain */
    EV_SUBJECT_ALL_CAPS,    /* at least arg letters, none lower case */
    EV_CHARSET_MISMATCH,    /* declared charset vs script of the text */
    EV_MISSING_HEADER,      /* header `sarg` absent */
    /* rules_eval.c: structural signs */
    EV_HTML_ONLY,           /* text/html without a text/plain part */
    EV_MIME_NO_TEXT,        /* parts, none of them text */
    EV_BODY_CAPS_RATIO,     /* >= arg % capitals of >= arg2 letters */
    EV_EXCLAIM_DENSITY,     /* >= arg '!', >= arg2 per 1000 bytes */
    EV_MONEY_DENSITY,       /* >= arg amounts, >= arg2 per 1000 bytes */
    EV_ALTERNATIVE_MISMATCH, /* plain/html alternatives share < arg */
    EV_IMAGE_ONLY_HTML,     /* images, fewer than arg visible letters */
    EV_FROM_NAME_ADDRESS,   /* display name is an address elsewhere */
    EV_REPLY_TO_OTHER_DOMAIN, /* Reply-To domain is not From's */
    EV_SUBJECT_TRAILING_ID, /* >= arg blanks then an id at the end */
    EV_MANY_RECIPIENTS,     /* >= arg addresses in To and Cc */
    EV_HELO_IP_MISMATCH,    /* a HELO IP is not the client's */
    EV_HTML_COLOR_HIDDEN,   /* >= arg letters in the background colour */
    EV_COUNT
} rules_eval_fn;

/* What an eval function takes (rules_eval_args()). */
enum { EVA_NONE = 0, EVA_NUM, EVA_NUM2, EVA_HEADER };

/* Meta expression in postfix form. */
enum { MX_NUM, MX_REF, MX_EXT, MX_NOT, MX_NEG, MX_BIN };
typedef struct mexpr_op {
    int type;
    int op;       /* MX_BIN: one of '+','-','*','/','<','>','l'(<=),
                   * 'g'(>=),'=','!','&','|' */
    double num;   /* MX_NUM */
    long ref;     /* MX_REF: rule index */
    char *ext;    /* MX_EXT: symbol name from another stage */
} mexpr_op;

typedef struct mexpr {
    mexpr_op *ops;
    size_t n;
} mexpr;

typedef struct rule {
    char *name;
    char *desc;
    double weight;
    rules_kind kind;
    int defined;   /* a definition was seen (not just score/describe) */
    int skip;      /* never evaluated */
    int sa;        /* from a SpamAssassin file */
    int has_score;
    int multiple;  /* tflags multiple: count hits (capped) */
    char *file;
    int line;
    /* header rules */
    char *hdr;     /* lower case; "all", "tocc", "messageid", "envfrom" */
    int hdr_raw;
    int hdr_neg;   /* !~ */
    int hdr_exists;
    char *unset;   /* [if-unset: ...] */
    /* regex rules */
    char *re;
    unsigned rxflags;
    pcre2_code *code; /* when PCRE2 matches it */
    int in_hs;        /* when Hyperscan matches it */
    int prefilter;    /* Hyperscan finds candidates, PCRE2 confirms */
    /* eval rules */
    rules_eval_fn fn;
    double arg, arg2;
    char *sarg;
    /* meta rules */
    char *meta_src;
    mexpr meta;
    int meta_state; /* 0 new, 1 visiting, 2 done (compile-time walk) */
} rule;

/* One matcher: the rules of one kind (and header) scanned together. */
typedef struct rules_group {
    rules_kind kind;
    char *hdr;     /* header groups: lower-case name; */
    int hdr_raw;
    void *hs_db;   /* hs_database_t *, NULL if none */
    size_t *hs_rule; /* Hyperscan id -> rule index */
    size_t nhs;
    size_t *pc_rule; /* PCRE2 rules */
    size_t npc;
    size_t *pf_rule; /* prefiltered rules (also in hs_rule) */
    size_t npf;
    size_t *all;     /* every rule of the group (for !~) */
    size_t nall;
} rules_group;

struct rules_set {
    rules_limits lim;
    rule *rules;
    size_t n, alloc;
    size_t *hash;  /* open addressing on name: index + 1, 0 empty */
    size_t hmask;
    rules_group *groups;
    size_t ngroups;
    size_t *evals, nevals;
    size_t *metas, nmetas; /* in dependency order */
    void *hs_proto;        /* hs_scratch_t * sized for every database */
    pcre2_match_context *mctx;
    rules_stats st;
    int compiled;
    char *hs_cache;        /* rules_set_cache(): directory or NULL */
};

struct rules_scratch {
    void *hs;               /* hs_scratch_t * */
    pcre2_match_data *md;
    unsigned char *hit;     /* per rule: hit count (capped) */
    size_t n;
};

rule *rules_lookup(rules_set *rs, const char *name, int create);
int rules_meta_parse(rules_set *rs, rule *r, char *err, size_t errlen);
int rules_match_build(rules_set *rs, char *err, size_t errlen);
void rules_match_free(rules_set *rs);
/* Evaluate built-in test r on v: hit count (0 or 1). */
int rules_eval_run(const rule *r, const rules_view *v);
int rules_eval_lookup(const char *name);
/* EVA_* for function fn (rules_eval.c). */
int rules_eval_args(rules_eval_fn fn);
/* The tests of rules_eval.c (fn >= EV_HTML_ONLY): hit count (0 or 1). */
int rules_eval_more(const rule *r, const rules_view *v);
/* rules_view.c helpers rules_eval.c shares. */
const sluice_header *rules_view_header(const rules_view *v, const char *name,
                                       size_t nth);
void rules_host_domain(const char *s, char *out, size_t outsz);
char *rules_strndup(const char *s, size_t n);
/* rules_cache.c (Hyperscan builds): the database compiled from pats[] /
 * flags[] before, and the indices of the patterns it kept (keep[] has
 * room for n); 0 on a hit, -1 on a miss.  _put stores a compile's result
 * (db NULL when every pattern was refused); failures are silent. */
int rules_cache_get(const char *dir, const char *const *pats,
                    const unsigned *flags, size_t n, void **db, size_t *keep,
                    size_t *nkeep);
void rules_cache_put(const char *dir, const char *const *pats,
                     const unsigned *flags, size_t n, const void *db,
                     const size_t *keep, size_t nkeep);
/* Value of header `name` (all fields joined by "\n", decoded or raw), in
 * a malloc'd string; NULL if absent. */
char *rules_header_value(const rules_view *v, const char *name, int raw,
                         size_t *len);

#endif /* SLUICE_RULES_INT_H */
