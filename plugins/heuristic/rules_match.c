/*
 * rules_match.c - compiling a loaded rules_set (meta resolution, matcher
 * groups) and scanning one message with it.
 *
 * Every regex rule belongs to one group: its kind, and for header rules
 * the header (and :raw).  A group is scanned once per message: one
 * Hyperscan call over the buffer finds every Hyperscan pattern of the
 * group at once; the patterns Hyperscan refuses (back-references,
 * lookarounds, some Perl escapes) run through PCRE2 with JIT and match
 * limits, skipped when the rule already hit.  Whether Hyperscan takes a
 * pattern is decided at compile time (hs_expression_info, then the group
 * compile; a pattern the group compile refuses moves to PCRE2).
 *
 * Without Hyperscan (non-amd64 builds, SLUICE_HAVE_HYPERSCAN unset) every
 * pattern goes through PCRE2: slower, same results.
 *
 * Meta rules are ordered at compile time (dependencies first); a cycle or
 * a reference to a rule that cannot run is an error in sluice rule files
 * and makes a SpamAssassin meta rule skipped.  Names that are no rule are
 * symbols of other stages (BAYES_99, RBL_...), looked up per message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

#ifdef SLUICE_HAVE_HYPERSCAN
#include <hs/hs.h>
#endif

#define RULES_HIT_CAP 100
#define MEXPR_STACK 256
/* Hyperscan's compile time grows faster than the pattern count: large
 * rule sets are split into databases of this many rules (a few more
 * passes over the text, a much shorter reload). */
#define RULES_GROUP_MAX 256

/* ---------------------------------------------------------------- meta */

static int meta_resolve(rules_set *rs, rule *r, char *err, size_t errlen,
                        size_t *order, size_t *norder, int depth);

/* Resolve names of r's expression, visit meta dependencies first. */
static int meta_resolve(rules_set *rs, rule *r, char *err, size_t errlen,
                        size_t *order, size_t *norder, int depth)
{
    size_t i;

    if (r->meta_state == 2)
        return 0;
    if (r->meta_state == 1 || depth > 200) {
        if (!r->sa) {
            snprintf(err, errlen, "%s:%d: meta %s: circular reference",
                     r->file, r->line, r->name);
            return -1;
        }
        r->skip = 1;
        return 0;
    }
    r->meta_state = 1;
    for (i = 0; i < r->meta.n && !r->skip; i++) {
        mexpr_op *o = &r->meta.ops[i];
        rule *d;
        if (o->type != MX_EXT)
            continue;
        d = rules_lookup(rs, o->ext, 0);
        if (d == NULL || !d->defined)
            continue; /* a symbol from another stage */
        if (d->kind == RULES_META && !d->skip &&
            meta_resolve(rs, d, err, errlen, order, norder, depth + 1) < 0)
            return -1;
        if (d->skip) {
            if (!r->sa) {
                snprintf(err, errlen, "%s:%d: meta %s: %s cannot run",
                         r->file, r->line, r->name, d->name);
                return -1;
            }
            /* SpamAssassin metas over eval: tests would misfire */
            r->skip = 1;
            rs->st.skipped_other++;
            break;
        }
        free(o->ext);
        o->ext = NULL;
        o->type = MX_REF;
        o->ref = (long)(d - rs->rules);
    }
    r->meta_state = 2;
    if (!r->skip)
        order[(*norder)++] = (size_t)(r - rs->rules);
    return 0;
}

static double meta_eval(const rules_set *rs, const rule *r,
                        const unsigned char *hit, const rules_view *v)
{
    double st[MEXPR_STACK], a, b;
    size_t sp = 0, i;

    for (i = 0; i < r->meta.n; i++) {
        const mexpr_op *o = &r->meta.ops[i];
        switch (o->type) {
        case MX_NUM:
            a = o->num;
            break;
        case MX_REF:
            a = hit[o->ref];
            break;
        case MX_EXT:
            a = v->symbol != NULL && v->symbol(v->symbol_arg, o->ext, NULL);
            break;
        case MX_NOT:
        case MX_NEG:
            if (sp < 1)
                return 0;
            st[sp - 1] = o->type == MX_NOT ? !st[sp - 1] : -st[sp - 1];
            continue;
        default:
            if (sp < 2)
                return 0;
            b = st[--sp];
            a = st[--sp];
            switch (o->op) {
            case '+': a = a + b; break;
            case '-': a = a - b; break;
            case '*': a = a * b; break;
            case '/': a = b != 0 ? a / b : 0; break;
            case '<': a = a < b; break;
            case '>': a = a > b; break;
            case 'l': a = a <= b; break;
            case 'g': a = a >= b; break;
            case '=': a = a == b; break;
            case '!': a = a != b; break;
            case '&': a = a != 0 && b != 0; break;
            default: a = a != 0 || b != 0; break;
            }
        }
        if (sp == MEXPR_STACK)
            return 0;
        st[sp++] = a;
    }
    (void)rs;
    return sp == 1 ? st[0] : 0;
}

/* ---------------------------------------------------------------- groups */

static rules_group *group_for(rules_set *rs, const rule *r)
{
    size_t i;
    rules_group *g;

    for (i = 0; i < rs->ngroups; i++) {
        g = &rs->groups[i];
        if (g->kind == r->kind && g->hdr_raw == r->hdr_raw &&
            g->nall < RULES_GROUP_MAX &&
            (r->kind != RULES_HEADER || strcmp(g->hdr, r->hdr) == 0))
            return g;
    }
    g = realloc(rs->groups, (rs->ngroups + 1) * sizeof(*g));
    if (g == NULL)
        return NULL;
    rs->groups = g;
    g = &rs->groups[rs->ngroups];
    memset(g, 0, sizeof(*g));
    g->kind = r->kind;
    g->hdr_raw = r->hdr_raw;
    if ((g->hdr = strdup(r->kind == RULES_HEADER ? r->hdr : "")) == NULL)
        return NULL;
    rs->ngroups++;
    return g;
}

static int push_idx(size_t **arr, size_t *n, size_t v)
{
    size_t *na = realloc(*arr, (*n + 1) * sizeof(**arr));

    if (na == NULL)
        return -1;
    na[(*n)++] = v;
    *arr = na;
    return 0;
}

static int rx_pcre(rules_set *rs, rule *r, char *why, size_t whylen)
{
    uint32_t opts = 0;
    int ec;
    PCRE2_SIZE eo;

    if (r->rxflags & RX_I)
        opts |= PCRE2_CASELESS;
    if (r->rxflags & RX_M)
        opts |= PCRE2_MULTILINE;
    if (r->rxflags & RX_S)
        opts |= PCRE2_DOTALL;
    if (r->rxflags & RX_X)
        opts |= PCRE2_EXTENDED;
    r->code = pcre2_compile((PCRE2_SPTR)r->re, PCRE2_ZERO_TERMINATED, opts,
                            &ec, &eo, NULL);
    if (r->code == NULL) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(why, whylen, "regex at offset %zu: %s", (size_t)eo,
                 (char *)msg);
        return -1;
    }
    (void)rs;
    (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* else interp. */
    return 0;
}

#ifdef SLUICE_HAVE_HYPERSCAN
static unsigned rx_hs_flags(const rule *r)
{
    unsigned f = HS_FLAG_SINGLEMATCH;

    if (r->rxflags & RX_I)
        f |= HS_FLAG_CASELESS;
    if (r->rxflags & RX_M)
        f |= HS_FLAG_MULTILINE;
    if (r->rxflags & RX_S)
        f |= HS_FLAG_DOTALL;
    if (r->prefilter)
        f |= HS_FLAG_PREFILTER;
    return f;
}

static int rx_hs_try(const rule *r)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *ce = NULL;
    int ok;

    if (r->rxflags & RX_X)
        return 0;
    ok = hs_expression_info(r->re, rx_hs_flags(r), &info, &ce) == HS_SUCCESS;
    if (ce != NULL)
        hs_free_compile_error(ce);
    if (info != NULL) {
        /* a pattern that matches the empty string says nothing */
        if (info->min_width == 0)
            ok = 0;
        free(info);
    }
    return ok;
}

/* Hyperscan takes r as it is, or as a prefilter (a superset of its
 * matches: back-references and lookarounds), confirmed by PCRE2. */
/* Constructs Hyperscan refuses, seen without asking it: its compiler
 * reports a refusal by throwing a C++ exception inside libhs, which
 * AddressSanitizer cannot handle when the stage is dlopen()ed into a C
 * program (sanitizer builds of sluiced); asking less also loads faster. */
static int rx_hs_unsupported(const char *re)
{
    static const char *const bad[] = {"(?=", "(?!", "(?<=", "(?<!", "(?>",
                                      "(?|", "(?(", "\\G", "\\K", NULL};
    const char *p;
    size_t i;

    for (i = 0; bad[i] != NULL; i++)
        if (strstr(re, bad[i]) != NULL)
            return 1;
    for (p = re; *p; p++) {
        if (*p == '\\' && p[1] != '\0') {
            if (p[1] >= '1' && p[1] <= '9')
                return 1; /* back-reference */
            p++;
            continue;
        }
        if ((*p == '+' || *p == '*' || *p == '?' || *p == '}') && p[1] == '+')
            return 1; /* possessive quantifier */
    }
    return 0;
}

static int rx_hs_ok(const rules_set *rs, rule *r)
{
    r->prefilter = 0;
    if (!rx_hs_unsupported(r->re) && rx_hs_try(r))
        return 1;
    if (!rs->lim.prefilter)
        return 0;
    r->prefilter = 1;
    if (rx_hs_try(r))
        return 1;
    r->prefilter = 0;
    return 0;
}

/* The group's patterns and flags as Hyperscan gets them (the cache key). */
static int group_hs_pats(const rules_set *rs, const rules_group *g,
                         const char ***pats, unsigned **flags)
{
    size_t i;

    *pats = calloc(g->nhs + 1, sizeof(**pats));
    *flags = calloc(g->nhs + 1, sizeof(**flags));
    if (*pats == NULL || *flags == NULL) {
        free(*pats), free(*flags);
        *pats = NULL, *flags = NULL;
        return -1;
    }
    for (i = 0; i < g->nhs; i++) {
        const rule *r = &rs->rules[g->hs_rule[i]];
        (*pats)[i] = r->re;
        (*flags)[i] = rx_hs_flags(r);
    }
    return 0;
}

/* A cached compile of the group: the kept patterns stay, the others go
 * to PCRE2 as at the compile that was cached; 1 on a hit. */
static int group_hs_cached(rules_set *rs, rules_group *g, const char **pats,
                           const unsigned *flags, hs_database_t **db)
{
    size_t n = g->nhs, *keep = calloc(n + 1, sizeof(size_t)), nkeep = 0;
    size_t i, k = 0, w = 0;
    void *cdb = NULL;

    if (keep == NULL ||
        rules_cache_get(rs->hs_cache, pats, flags, n, &cdb, keep, &nkeep) < 0) {
        free(keep);
        return 0;
    }
    for (i = 0; i < n; i++) {
        size_t ri = g->hs_rule[i];
        if (k < nkeep && keep[k] == i) {
            g->hs_rule[w++] = ri;
            k++;
            continue;
        }
        rs->rules[ri].prefilter = 0;
        if (push_idx(&g->pc_rule, &g->npc, ri) < 0) {
            free(keep);
            if (cdb != NULL)
                hs_free_database(cdb);
            return -1;
        }
    }
    g->nhs = w;
    *db = cdb;
    free(keep);
    return 1;
}

/* After a compile: which of the first compile's patterns (orig[0..n))
 * the group kept, for the cache. */
static void group_hs_store(const rules_set *rs, const rules_group *g,
                           const char **pats, const unsigned *flags,
                           const size_t *orig, size_t n,
                           const hs_database_t *db)
{
    size_t *keep = calloc(n + 1, sizeof(size_t)), i, k = 0;

    if (keep == NULL)
        return;
    for (i = 0; i < n && k < g->nhs; i++)
        if (orig[i] == g->hs_rule[k])
            keep[k++] = i;
    if (k == g->nhs)
        rules_cache_put(rs->hs_cache, pats, flags, n, db, keep, k);
    free(keep);
}

/* Compile the group's Hyperscan patterns; a pattern the compiler refuses
 * moves to PCRE2 and the group is compiled again.  With a cache
 * directory the result of an earlier compile of the same patterns is
 * taken from there (rules_cache.c), and a new compile is stored. */
static int group_hs_build(rules_set *rs, rules_group *g)
{
    const char **pats, **pats0 = NULL;
    unsigned *flags, *ids, *flags0 = NULL;
    size_t i, n0 = g->nhs, *orig = NULL;
    hs_compile_error_t *ce = NULL;
    hs_database_t *db = NULL;
    int hit = 0;

    if (rs->hs_cache != NULL && n0 > 0 &&
        group_hs_pats(rs, g, &pats0, &flags0) == 0) {
        hit = group_hs_cached(rs, g, pats0, flags0, &db);
        if (hit < 0) {
            free(pats0), free(flags0);
            return -1;
        }
        if (!hit && (orig = malloc(n0 * sizeof(size_t))) != NULL)
            memcpy(orig, g->hs_rule, n0 * sizeof(size_t));
    }
    while (!hit && g->nhs > 0) {
        pats = calloc(g->nhs, sizeof(*pats));
        flags = calloc(g->nhs, sizeof(*flags));
        ids = calloc(g->nhs, sizeof(*ids));
        if (pats == NULL || flags == NULL || ids == NULL) {
            free(pats), free(flags), free(ids);
            return -1;
        }
        for (i = 0; i < g->nhs; i++) {
            rule *r = &rs->rules[g->hs_rule[i]];
            pats[i] = r->re;
            flags[i] = rx_hs_flags(r);
            ids[i] = (unsigned)i;
        }
        if (hs_compile_multi(pats, flags, ids, (unsigned)g->nhs, HS_MODE_BLOCK,
                             NULL, &db, &ce) == HS_SUCCESS) {
            free(pats), free(flags), free(ids);
            break;
        }
        free(pats), free(flags), free(ids);
        if (getenv("SLUICE_RULES_DEBUG") != NULL)
            fprintf(stderr, "hs retry: group %s kind %d n %zu: %s\n", g->hdr,
                    (int)g->kind, g->nhs, ce ? ce->message : "?");
        if (ce == NULL || ce->expression < 0 ||
            (size_t)ce->expression >= g->nhs) {
            /* the whole group is refused: all of it to PCRE2 */
            for (i = 0; i < g->nhs; i++) {
                rs->rules[g->hs_rule[i]].prefilter = 0;
                if (push_idx(&g->pc_rule, &g->npc, g->hs_rule[i]) < 0)
                    return -1;
            }
            g->nhs = 0;
        } else {
            size_t bad = (size_t)ce->expression;
            rs->rules[g->hs_rule[bad]].prefilter = 0;
            if (push_idx(&g->pc_rule, &g->npc, g->hs_rule[bad]) < 0)
                return -1;
            memmove(&g->hs_rule[bad], &g->hs_rule[bad + 1],
                    (g->nhs - bad - 1) * sizeof(size_t));
            g->nhs--;
        }
        if (ce != NULL)
            hs_free_compile_error(ce);
        ce = NULL;
    }
    if (orig != NULL)
        group_hs_store(rs, g, pats0, flags0, orig, n0, db);
    free(orig);
    free(pats0);
    free(flags0);
    for (i = 0; i < g->nhs; i++) {
        rule *r = &rs->rules[g->hs_rule[i]];
        if (!r->prefilter)
            r->in_hs = 1;
        else if (push_idx(&g->pf_rule, &g->npf, g->hs_rule[i]) < 0)
            return -1;
    }
    g->hs_db = db;
    if (db != NULL)
        rs->st.hs_groups++;
    if (db != NULL && hit)
        rs->st.hs_cached++;
    if (db != NULL &&
        hs_alloc_scratch(db, (hs_scratch_t **)&rs->hs_proto) != HS_SUCCESS)
        return -1;
    return 0;
}
#endif

/* Put regex rule r into its group: Hyperscan if it takes it, else PCRE2. */
static int rx_place(rules_set *rs, rule *r, char *err, size_t errlen)
{
    char why[200];
    rules_group *g;

    if ((g = group_for(rs, r)) == NULL)
        return -1;
    if (push_idx(&g->all, &g->nall, (size_t)(r - rs->rules)) < 0)
        return -1;
    if (r->hdr_exists)
        return 0;
    if (rx_pcre(rs, r, why, sizeof(why)) < 0) {
        if (!r->sa) {
            snprintf(err, errlen, "%s:%d: %s: %s", r->file, r->line, r->name,
                     why);
            return -1;
        }
        g->nall--;
        r->skip = 1;
        rs->st.skipped_regex++;
        return 0;
    }
#ifdef SLUICE_HAVE_HYPERSCAN
    if (!rs->lim.pcre_only && rx_hs_ok(rs, r))
        return push_idx(&g->hs_rule, &g->nhs, (size_t)(r - rs->rules));
#endif
    return push_idx(&g->pc_rule, &g->npc, (size_t)(r - rs->rules));
}

int rules_compile(rules_set *rs, char *err, size_t errlen)
{
    size_t i, norder = 0;

    snprintf(err, errlen, "out of memory");
    if (rs->compiled) {
        snprintf(err, errlen, "rule set already compiled");
        return -1;
    }
    rs->compiled = 1;
    if ((rs->mctx = pcre2_match_context_create(NULL)) == NULL)
        return -1;
    pcre2_set_match_limit(rs->mctx, rs->lim.match_limit);
    pcre2_set_depth_limit(rs->mctx, rs->lim.depth_limit);
    for (i = 0; i < rs->n; i++) {
        rule *r = &rs->rules[i];
        if (!r->defined || r->skip)
            continue;
        if (r->kind == RULES_EVAL) {
            if (push_idx(&rs->evals, &rs->nevals, i) < 0)
                return -1;
        } else if (r->kind != RULES_META) {
            if (rx_place(rs, r, err, errlen) < 0)
                return -1;
        }
    }
    if ((rs->metas = calloc(rs->n + 1, sizeof(size_t))) == NULL)
        return -1;
    for (i = 0; i < rs->n; i++) {
        rule *r = &rs->rules[i];
        if (r->defined && !r->skip && r->kind == RULES_META &&
            meta_resolve(rs, r, err, errlen, rs->metas, &norder, 0) < 0)
            return -1;
    }
    rs->nmetas = norder;
#ifdef SLUICE_HAVE_HYPERSCAN
    for (i = 0; i < rs->ngroups; i++)
        if (group_hs_build(rs, &rs->groups[i]) < 0) {
            snprintf(err, errlen, "Hyperscan: out of memory");
            return -1;
        }
#endif
    for (i = 0; i < rs->n; i++) {
        rule *r = &rs->rules[i];
        if (!r->defined || r->skip)
            continue;
        rs->st.loaded++;
        if (r->in_hs)
            rs->st.hyperscan++;
        else if (r->code != NULL)
            rs->st.pcre++;
        if (r->prefilter)
            rs->st.prefiltered++;
        if (r->weight == 0 && strncmp(r->name, "__", 2) != 0)
            rs->st.disabled++;
        if (r->in_hs && r->code != NULL && r->unset == NULL) {
            /* Hyperscan has it: no copy (kept for [if-unset:] text) */
            pcre2_code_free(r->code);
            r->code = NULL;
        }
    }
    err[0] = '\0';
    return 0;
}

void rules_match_free(rules_set *rs)
{
    size_t i;

    for (i = 0; i < rs->ngroups; i++) {
        rules_group *g = &rs->groups[i];
#ifdef SLUICE_HAVE_HYPERSCAN
        if (g->hs_db != NULL)
            hs_free_database(g->hs_db);
#endif
        free(g->hdr);
        free(g->hs_rule);
        free(g->pc_rule);
        free(g->pf_rule);
        free(g->all);
    }
    free(rs->groups);
    rs->groups = NULL;
    rs->ngroups = 0;
    free(rs->hs_cache);
    rs->hs_cache = NULL;
#ifdef SLUICE_HAVE_HYPERSCAN
    if (rs->hs_proto != NULL)
        hs_free_scratch(rs->hs_proto);
#endif
    rs->hs_proto = NULL;
    if (rs->mctx != NULL)
        pcre2_match_context_free(rs->mctx);
    rs->mctx = NULL;
}

/* ---------------------------------------------------------------- scan */

rules_scratch *rules_scratch_new(const rules_set *rs)
{
    rules_scratch *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->n = rs->n;
    s->hit = calloc(rs->n + 1, 1);
    s->md = pcre2_match_data_create(4, NULL);
#ifdef SLUICE_HAVE_HYPERSCAN
    if (rs->hs_proto != NULL &&
        hs_clone_scratch(rs->hs_proto, (hs_scratch_t **)&s->hs) != HS_SUCCESS)
        s->hs = NULL, s->n = 0;
#endif
    if (s->hit == NULL || s->md == NULL ||
        (rs->hs_proto != NULL && s->hs == NULL)) {
        rules_scratch_free(s);
        return NULL;
    }
    return s;
}

void rules_scratch_free(rules_scratch *s)
{
    if (s == NULL)
        return;
#ifdef SLUICE_HAVE_HYPERSCAN
    if (s->hs != NULL)
        hs_free_scratch(s->hs);
#endif
    if (s->md != NULL)
        pcre2_match_data_free(s->md);
    free(s->hit);
    free(s);
}

typedef struct scan_ctx {
    const rules_set *rs;
    rules_scratch *s;
    const rules_group *g;
    size_t limit_hits;
} scan_ctx;

#ifdef SLUICE_HAVE_HYPERSCAN
static int scan_on_match(unsigned id, unsigned long long from,
                         unsigned long long to, unsigned fl, void *arg)
{
    scan_ctx *c = arg;

    (void)from, (void)to, (void)fl;
    if (id < c->g->nhs) {
        size_t ri = c->g->hs_rule[id];
        if (!c->rs->rules[ri].prefilter)
            c->s->hit[ri] = 1;
        else if (c->s->hit[ri] == 0)
            c->s->hit[ri] = 2; /* a candidate: PCRE2 decides */
    }
    return 0;
}
#endif

static void scan_pcre(scan_ctx *c, size_t ri, const char *buf, size_t len)
{
    const rule *r = &c->rs->rules[ri];
    int rc;

    c->s->hit[ri] = 0;
    if (r->code == NULL)
        return;
    rc = pcre2_match(r->code, (PCRE2_SPTR)buf, len, 0, 0, c->s->md,
                     c->rs->mctx);
    if (rc >= 0)
        c->s->hit[ri] = 1;
    else if (rc != PCRE2_ERROR_NOMATCH)
        c->limit_hits++; /* limit or JIT stack: no match */
}

/* Every pattern of group g over buf[0..len). */
static void scan_buf(scan_ctx *c, const char *buf, size_t len)
{
    const rules_group *g = c->g;
    size_t i;

#ifdef SLUICE_HAVE_HYPERSCAN
    if (g->hs_db != NULL && len <= 0xffffffffu)
        (void)hs_scan(g->hs_db, buf, (unsigned)len, 0, c->s->hs,
                      scan_on_match, c);
#endif
    for (i = 0; i < g->npf; i++)
        if (c->s->hit[g->pf_rule[i]] == 2)
            scan_pcre(c, g->pf_rule[i], buf, len);
    for (i = 0; i < g->npc; i++)
        if (!c->s->hit[g->pc_rule[i]])
            scan_pcre(c, g->pc_rule[i], buf, len);
}

static void scan_group(scan_ctx *c, const rules_view *v)
{
    const rules_group *g = c->g;
    const rules_set *rs = c->rs;
    char *val = NULL;
    size_t len = 0, i;

    switch (g->kind) {
    case RULES_HEADER:
        val = rules_header_value(v, g->hdr, g->hdr_raw, &len);
        for (i = 0; i < g->nall; i++) {
            const rule *r = &rs->rules[g->all[i]];
            if (r->hdr_exists)
                c->s->hit[g->all[i]] = val != NULL;
        }
        if (val != NULL) {
            scan_buf(c, val, len);
        } else {
            /* absent: matched against [if-unset:] text, or "" */
            for (i = 0; i < g->nall; i++) {
                size_t ri = g->all[i];
                const rule *r = &rs->rules[ri];
                const char *u = r->unset ? r->unset : "";
                int rc;
                if (r->hdr_exists)
                    continue;
                if (r->code == NULL) { /* Hyperscan only: compile aside */
                    c->s->hit[ri] = 0;
                    if (*u == '\0')
                        continue;
                }
                if (r->code != NULL) {
                    rc = pcre2_match(r->code, (PCRE2_SPTR)u, strlen(u), 0, 0,
                                     c->s->md, rs->mctx);
                    c->s->hit[ri] = rc >= 0;
                }
            }
        }
        for (i = 0; i < g->nall; i++) {
            const rule *r = &rs->rules[g->all[i]];
            if (r->hdr_neg)
                c->s->hit[g->all[i]] = !c->s->hit[g->all[i]];
        }
        free(val);
        return;
    case RULES_BODY:
        scan_buf(c, v->text ? v->text : "", v->text_len);
        return;
    case RULES_RAWBODY:
        scan_buf(c, v->rawtext ? v->rawtext : "", v->rawtext_len);
        return;
    case RULES_FULL:
        len = v->raw_len < rs->lim.max_full ? v->raw_len : rs->lim.max_full;
        scan_buf(c, v->raw ? v->raw : "", v->raw ? len : 0);
        return;
    case RULES_URI:
        for (i = 0; i < v->nuris; i++)
            scan_buf(c, v->uris[i], strlen(v->uris[i]));
        return;
    default:
        return;
    }
}

int rules_scan(const rules_set *rs, rules_scratch *s, const rules_view *v,
               rules_result *r)
{
    scan_ctx c = {rs, s, NULL, 0};
    size_t i;

    memset(r, 0, sizeof(*r));
    if (s->n < rs->n)
        return -1;
    memset(s->hit, 0, rs->n);
    for (i = 0; i < rs->ngroups; i++) {
        c.g = &rs->groups[i];
        scan_group(&c, v);
    }
    for (i = 0; i < rs->nevals; i++)
        s->hit[rs->evals[i]] =
            (unsigned char)rules_eval_run(&rs->rules[rs->evals[i]], v);
    for (i = 0; i < rs->nmetas; i++) {
        double x = meta_eval(rs, &rs->rules[rs->metas[i]], s->hit, v);
        s->hit[rs->metas[i]] = (unsigned char)(x != 0);
    }
    r->limit_hits = c.limit_hits;
    for (i = 0; i < rs->n; i++) {
        const rule *ru = &rs->rules[i];
        rules_hit *nh;
        if (!s->hit[i] || ru->weight == 0 || strncmp(ru->name, "__", 2) == 0)
            continue;
        nh = realloc(r->hits, (r->nhits + 1) * sizeof(*nh));
        if (nh == NULL) {
            rules_result_free(r);
            return -1;
        }
        r->hits = nh;
        r->hits[r->nhits].rule = i;
        r->hits[r->nhits].weight = ru->weight;
        r->nhits++;
        r->score += ru->weight;
    }
    return 0;
}

void rules_result_free(rules_result *r)
{
    free(r->hits);
    r->hits = NULL;
    r->nhits = 0;
}

double rules_probability(double score, double mid, double scale)
{
    if (scale <= 0)
        scale = 1;
    return 1.0 / (1.0 + exp(-(score - mid) / scale));
}
