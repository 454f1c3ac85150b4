/*
 * rules_parse.c - rule files into a rules_set: sluice's own format, the
 * SpamAssassin format, and meta expressions.
 *
 * sluice format, one rule per line ('#' starts a comment line):
 *
 *     KIND NAME WEIGHT "DESCRIPTION" SPEC
 *
 *   header NAME W "d" Header =~ /re/flags      (also !~, Header:raw,
 *                                               [if-unset: text] at end)
 *   header NAME W "d" exists:Header
 *   body|rawbody|full|uri NAME W "d" /re/flags (or m{re}flags, m!re!...)
 *   meta NAME W "d" EXPR   (rule and symbol names, numbers, ! - * / + -
 *                           < > <= >= == != && || and parentheses)
 *   eval NAME W "d" FUNCTION(ARG)
 *
 * Every mistake is an error with file:line; a name defined twice too.
 *
 * SpamAssassin format: header/body/rawbody/full/uri/meta define a rule,
 * score/describe/tflags annotate it (before or after), ifplugin/if/else/
 * endif blocks are followed where sluice can tell (ifplugin: yes; if
 * version: compared to 4.0; if can(...): no).  Nothing is an error:
 * Perl eval: tests, header forms sluice lacks and other directives are
 * counted in rules_stats and skipped.  Later definitions replace earlier
 * ones, as in SpamAssassin.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "rules_int.h"

#define RULES_MAX_LINE 65536
#define RULES_MAX_NAME 128
#define RULES_MAX_IFDEPTH 32
#define MEXPR_MAX_DEPTH 64
#define MEXPR_MAX_OPS 4096

static const char *const rules_kind_names[] = {
    "header", "body", "rawbody", "full", "uri", "eval", "meta"};

char *rules_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---------------------------------------------------------------- set */

rules_set *rules_new(const rules_limits *lim)
{
    rules_set *rs = calloc(1, sizeof(*rs));

    if (rs == NULL)
        return NULL;
    rs->lim.max_text = 256 * 1024;
    rs->lim.max_full = 512 * 1024;
    rs->lim.max_uris = 200;
    rs->lim.match_limit = 100000;
    rs->lim.depth_limit = 1000;
    if (lim != NULL) {
        if (lim->max_text)
            rs->lim.max_text = lim->max_text;
        if (lim->max_full)
            rs->lim.max_full = lim->max_full;
        if (lim->max_uris)
            rs->lim.max_uris = lim->max_uris;
        if (lim->match_limit)
            rs->lim.match_limit = lim->match_limit;
        if (lim->depth_limit)
            rs->lim.depth_limit = lim->depth_limit;
        rs->lim.pcre_only = lim->pcre_only;
        rs->lim.prefilter = lim->prefilter;
    }
    return rs;
}

static void rule_clear_def(rule *r)
{
    size_t i;

    free(r->hdr);
    free(r->unset);
    free(r->re);
    free(r->sarg);
    free(r->meta_src);
    for (i = 0; i < r->meta.n; i++)
        free(r->meta.ops[i].ext);
    free(r->meta.ops);
    if (r->code != NULL)
        pcre2_code_free(r->code);
    r->hdr = r->unset = r->re = r->sarg = r->meta_src = NULL;
    r->meta.ops = NULL;
    r->meta.n = 0;
    r->code = NULL;
    r->hdr_raw = r->hdr_neg = r->hdr_exists = 0;
    r->rxflags = 0;
    r->skip = 0;
}

void rules_free(rules_set *rs)
{
    size_t i;

    if (rs == NULL)
        return;
    rules_match_free(rs);
    for (i = 0; i < rs->n; i++) {
        rule_clear_def(&rs->rules[i]);
        free(rs->rules[i].name);
        free(rs->rules[i].desc);
        free(rs->rules[i].file);
    }
    free(rs->rules);
    free(rs->hash);
    free(rs->evals);
    free(rs->metas);
    free(rs);
}

static size_t rules_hash_name(const char *s)
{
    size_t h = 1469598103934665603ULL & (size_t)-1;

    while (*s)
        h = (h ^ (unsigned char)*s++) * (size_t)1099511628211ULL;
    return h;
}

static int rules_rehash(rules_set *rs)
{
    size_t cap = rs->hmask ? (rs->hmask + 1) * 2 : 256, i;
    size_t *t = calloc(cap, sizeof(*t));

    if (t == NULL)
        return -1;
    for (i = 0; i < rs->n; i++) {
        size_t j = rules_hash_name(rs->rules[i].name) & (cap - 1);
        while (t[j] != 0)
            j = (j + 1) & (cap - 1);
        t[j] = i + 1;
    }
    free(rs->hash);
    rs->hash = t;
    rs->hmask = cap - 1;
    return 0;
}

/* The rule called `name`; created (undefined) if `create`. */
rule *rules_lookup(rules_set *rs, const char *name, int create)
{
    size_t j;
    rule *r;

    if (rs->hash != NULL) {
        j = rules_hash_name(name) & rs->hmask;
        while (rs->hash[j] != 0) {
            r = &rs->rules[rs->hash[j] - 1];
            if (strcmp(r->name, name) == 0)
                return r;
            j = (j + 1) & rs->hmask;
        }
    }
    if (!create)
        return NULL;
    if (rs->n == rs->alloc) {
        size_t na = rs->alloc ? rs->alloc * 2 : 64;
        rule *nr = realloc(rs->rules, na * sizeof(*nr));
        if (nr == NULL)
            return NULL;
        rs->rules = nr;
        rs->alloc = na;
    }
    r = &rs->rules[rs->n];
    memset(r, 0, sizeof(*r));
    if ((r->name = strdup(name)) == NULL)
        return NULL;
    r->weight = 1.0;
    rs->n++;
    if (rs->hash == NULL || rs->n * 2 > rs->hmask + 1) {
        if (rules_rehash(rs) < 0) {
            rs->n--;
            free(r->name);
            return NULL;
        }
    } else {
        j = rules_hash_name(name) & rs->hmask;
        while (rs->hash[j] != 0)
            j = (j + 1) & rs->hmask;
        rs->hash[j] = rs->n;
    }
    return r;
}

long rules_find(const rules_set *rs, const char *name)
{
    rule *r = rules_lookup((rules_set *)rs, name, 0);

    return r != NULL && r->defined ? (long)(r - rs->rules) : -1;
}

const rules_stats *rules_get_stats(const rules_set *rs)
{
    return &rs->st;
}

size_t rules_count(const rules_set *rs)
{
    return rs->n;
}

const char *rules_info(const rules_set *rs, size_t i, double *weight,
                       const char **desc, rules_kind *kind)
{
    if (i >= rs->n)
        return NULL;
    if (weight != NULL)
        *weight = rs->rules[i].weight;
    if (desc != NULL)
        *desc = rs->rules[i].desc ? rs->rules[i].desc : "";
    if (kind != NULL)
        *kind = rs->rules[i].kind;
    return rs->rules[i].name;
}

/* ---------------------------------------------------------------- lexing */

typedef struct rules_src {
    rules_set *rs;
    const char *file;
    int line;
    int fmt;
    char *err;
    size_t errlen;
} rules_src;

static int src_err(rules_src *s, const char *fmt, ...) SLUICE_PRINTF(2, 3);
static int src_err(rules_src *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(s->err, s->errlen, "%s:%d: ", s->file, s->line);
    if (n < 0 || (size_t)n >= s->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Next whitespace-delimited word of *pp into buf; 0 if none. */
static size_t next_word(const char **pp, char *buf, size_t bufsz)
{
    const char *p = skip_ws(*pp), *b = p;
    size_t n;

    while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
    n = (size_t)(p - b);
    if (n == 0 || n >= bufsz)
        return 0;
    memcpy(buf, b, n);
    buf[n] = '\0';
    *pp = skip_ws(p);
    return n;
}

static int name_ok(const char *n)
{
    if (!isalpha((unsigned char)*n) && *n != '_')
        return 0;
    for (; *n; n++)
        if (!isalnum((unsigned char)*n) && *n != '_')
            return 0;
    return 1;
}

/* Parse a Perl-style regex literal: /re/flags or m<d>re<d>flags, where the
 * literal ends at the last closing delimiter.  `tail` (may be NULL) gets
 * what follows the flags.  0 or -1 with a reason in *why. */
static int parse_regex(const char *p, char **re, unsigned *flags,
                       const char **why)
{
    char open = '/', close = '/';
    const char *b, *e, *f;
    size_t len = strlen(p);

    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len >= 2 && p[0] == 'm' && !isalnum((unsigned char)p[1]) &&
        p[1] != ' ') {
        open = p[1];
        close = open == '{' ? '}' : open == '(' ? ')' : open == '['
                ? ']' : open == '<' ? '>' : open;
        b = p + 2;
    } else if (len >= 1 && p[0] == '/') {
        b = p + 1;
    } else {
        *why = "expected a regex: /pattern/flags";
        return -1;
    }
    /* the last closing delimiter followed only by flag letters */
    for (e = p + len - 1; e >= b && *e != close; e--)
        if (!isalpha((unsigned char)*e)) {
            *why = "regex: junk after the closing delimiter";
            return -1;
        }
    if (e < b) {
        *why = "regex: no closing delimiter";
        return -1;
    }
    (void)open;
    *flags = 0;
    for (f = e + 1; f < p + len; f++) {
        switch (*f) {
        case 'i': *flags |= RX_I; break;
        case 'm': *flags |= RX_M; break;
        case 's': *flags |= RX_S; break;
        case 'x': *flags |= RX_X; break;
        case 'g': case 'o': break; /* no meaning for a yes/no match */
        default:
            *why = "regex: unknown flag (i, m, s, x, g, o)";
            return -1;
        }
    }
    if (e == b) {
        *why = "regex: empty pattern";
        return -1;
    }
    if ((*re = rules_strndup(b, (size_t)(e - b))) == NULL) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

/* "Header[:raw] =~ /re/ [if-unset: x]" or "exists:Header" into r. */
static int parse_header_spec(rule *r, const char *p, const char **why)
{
    const char *op, *q, *u;
    char *spec, *colon;
    size_t hl;

    if (strncmp(p, "exists:", 7) == 0) {
        q = p + 7;
        hl = strcspn(q, " \t");
        if (hl == 0 || *skip_ws(q + hl) != '\0') {
            *why = "exists: expects one header name";
            return -1;
        }
        r->hdr_exists = 1;
        r->hdr = rules_strndup(q, hl);
        goto lower;
    }
    op = strstr(p, "=~");
    if (op == NULL || ((q = strstr(p, "!~")) != NULL && q < op))
        op = strstr(p, "!~");
    if (op == NULL) {
        *why = "header rule: expected `Header =~ /re/` or `exists:Header`";
        return -1;
    }
    r->hdr_neg = op[0] == '!';
    hl = (size_t)(op - p);
    while (hl > 0 && (p[hl - 1] == ' ' || p[hl - 1] == '\t'))
        hl--;
    if (hl == 0 || memchr(p, ' ', hl) != NULL) {
        *why = "header rule: one header name before =~";
        return -1;
    }
    r->hdr = rules_strndup(p, hl);
    if (r->hdr == NULL)
        goto oom;
    if ((colon = strchr(r->hdr, ':')) != NULL) {
        /* :raw keeps the value as written; the address and name forms
         * are matched against the decoded value (close enough) */
        r->hdr_raw = strcmp(colon, ":raw") == 0;
        *colon = '\0';
    }
    q = skip_ws(op + 2);
    if ((spec = strdup(q)) == NULL)
        goto oom;
    if ((u = strstr(spec, "[if-unset:")) != NULL) {
        const char *ue = strrchr(u, ']');
        size_t off = (size_t)(u - spec);
        if (ue == NULL) {
            free(spec);
            *why = "header rule: unterminated [if-unset:";
            return -1;
        }
        q = skip_ws(u + 10);
        r->unset = rules_strndup(q, (size_t)(ue - q));
        spec[off] = '\0';
    }
    if (parse_regex(spec, &r->re, &r->rxflags, why) < 0) {
        free(spec);
        return -1;
    }
    free(spec);
lower:
    if (r->hdr == NULL)
        goto oom;
    for (colon = r->hdr; *colon; colon++)
        *colon = (char)tolower((unsigned char)*colon);
    return 0;
oom:
    *why = "out of memory";
    return -1;
}

/* ---------------------------------------------------------------- meta */

typedef struct mlex {
    const char *p;
    mexpr *out;
    size_t alloc;
    int depth;
    const char *why;
} mlex;

static int mx_push(mlex *m, mexpr_op op)
{
    if (m->out->n == m->alloc) {
        size_t na = m->alloc ? m->alloc * 2 : 16;
        mexpr_op *n;
        if (na > MEXPR_MAX_OPS) {
            m->why = "meta: expression too long";
            free(op.ext);
            return -1;
        }
        if ((n = realloc(m->out->ops, na * sizeof(*n))) == NULL) {
            m->why = "out of memory";
            free(op.ext);
            return -1;
        }
        m->out->ops = n;
        m->alloc = na;
    }
    m->out->ops[m->out->n++] = op;
    return 0;
}

static int mx_bin(mlex *m, int op)
{
    mexpr_op o = {MX_BIN, op, 0, -1, NULL};

    return mx_push(m, o);
}

static int mx_or(mlex *m);

static int mx_primary(mlex *m)
{
    mexpr_op o = {MX_NUM, 0, 0, -1, NULL};
    const char *p;

    m->p = skip_ws(m->p);
    p = m->p;
    if (*p == '(') {
        m->p++;
        if (mx_or(m) < 0)
            return -1;
        m->p = skip_ws(m->p);
        if (*m->p != ')') {
            m->why = "meta: missing )";
            return -1;
        }
        m->p++;
        return 0;
    }
    if (isdigit((unsigned char)*p) || *p == '.') {
        char *end;
        o.num = strtod(p, &end);
        if (end == p) {
            m->why = "meta: bad number";
            return -1;
        }
        m->p = end;
        return mx_push(m, o);
    }
    if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*m->p) || *m->p == '_')
            m->p++;
        if ((size_t)(m->p - p) >= RULES_MAX_NAME) {
            m->why = "meta: name too long";
            return -1;
        }
        o.type = MX_EXT; /* resolved to MX_REF by rules_compile() */
        if ((o.ext = rules_strndup(p, (size_t)(m->p - p))) == NULL) {
            m->why = "out of memory";
            return -1;
        }
        return mx_push(m, o);
    }
    m->why = *p ? "meta: unexpected character" : "meta: expression ends early";
    return -1;
}

static int mx_unary(mlex *m)
{
    mexpr_op o = {MX_NOT, 0, 0, -1, NULL};
    int rc;

    m->p = skip_ws(m->p);
    if ((*m->p == '!' && m->p[1] != '=') || *m->p == '-') {
        o.type = *m->p == '!' ? MX_NOT : MX_NEG;
        m->p++;
        if (++m->depth > MEXPR_MAX_DEPTH) {
            m->why = "meta: nested too deeply";
            return -1;
        }
        rc = mx_unary(m);
        m->depth--;
        return rc < 0 ? -1 : mx_push(m, o);
    }
    return mx_primary(m);
}

static int mx_mul(mlex *m)
{
    if (mx_unary(m) < 0)
        return -1;
    for (;;) {
        int op;
        m->p = skip_ws(m->p);
        if (*m->p != '*' && *m->p != '/')
            return 0;
        op = *m->p++;
        if (mx_unary(m) < 0 || mx_bin(m, op) < 0)
            return -1;
    }
}

static int mx_add(mlex *m)
{
    if (mx_mul(m) < 0)
        return -1;
    for (;;) {
        int op;
        m->p = skip_ws(m->p);
        if (*m->p != '+' && *m->p != '-')
            return 0;
        op = *m->p++;
        if (mx_mul(m) < 0 || mx_bin(m, op) < 0)
            return -1;
    }
}

static int mx_cmp(mlex *m)
{
    int op = 0;

    if (mx_add(m) < 0)
        return -1;
    m->p = skip_ws(m->p);
    if (m->p[0] == '<' && m->p[1] == '=')
        op = 'l';
    else if (m->p[0] == '>' && m->p[1] == '=')
        op = 'g';
    else if (m->p[0] == '=' && m->p[1] == '=')
        op = '=';
    else if (m->p[0] == '!' && m->p[1] == '=')
        op = '!';
    else if (m->p[0] == '<' || m->p[0] == '>')
        op = m->p[0];
    if (op == 0)
        return 0;
    m->p += (op == '<' || op == '>') ? 1 : 2;
    if (mx_add(m) < 0)
        return -1;
    return mx_bin(m, op);
}

static int mx_and(mlex *m)
{
    if (mx_cmp(m) < 0)
        return -1;
    for (;;) {
        m->p = skip_ws(m->p);
        if (m->p[0] != '&' || m->p[1] != '&')
            return 0;
        m->p += 2;
        if (mx_cmp(m) < 0 || mx_bin(m, '&') < 0)
            return -1;
    }
}

static int mx_or(mlex *m)
{
    int rc = 0;

    if (++m->depth > MEXPR_MAX_DEPTH) {
        m->why = "meta: nested too deeply";
        return -1;
    }
    if (mx_and(m) < 0)
        rc = -1;
    while (rc == 0) {
        m->p = skip_ws(m->p);
        if (m->p[0] != '|' || m->p[1] != '|')
            break;
        m->p += 2;
        if (mx_and(m) < 0 || mx_bin(m, '|') < 0)
            rc = -1;
    }
    m->depth--;
    return rc;
}

/* Compile r->meta_src into r->meta (names still unresolved). */
int rules_meta_parse(rules_set *rs, rule *r, char *err, size_t errlen)
{
    mlex m = {r->meta_src, &r->meta, 0, 0, NULL};

    (void)rs;
    if (mx_or(&m) == 0 && *skip_ws(m.p) != '\0')
        m.why = "meta: unexpected text after the expression";
    if (m.why != NULL) {
        snprintf(err, errlen, "%s", m.why);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- defs */

/* A fresh definition of rule `name` (kind) at the current line. */
static rule *def_rule(rules_src *s, const char *name, rules_kind kind)
{
    rule *r;

    if (!name_ok(name) || strlen(name) >= RULES_MAX_NAME) {
        if (s->fmt == RULES_FMT_SLUICE)
            src_err(s, "bad rule name \"%s\" ([A-Za-z_][A-Za-z0-9_]*)",
                    name);
        return NULL;
    }
    if ((r = rules_lookup(s->rs, name, 1)) == NULL) {
        src_err(s, "out of memory");
        return NULL;
    }
    if (r->defined && s->fmt == RULES_FMT_SLUICE) {
        src_err(s, "rule %s already defined at %s:%d", name, r->file,
                r->line);
        return NULL;
    }
    rule_clear_def(r);
    free(r->file);
    r->file = strdup(s->file);
    r->line = s->line;
    r->kind = kind;
    r->defined = 1;
    r->sa = s->fmt == RULES_FMT_SA;
    if (r->sa && !r->has_score)
        r->weight = strncmp(name, "__", 2) == 0 ? 0.0
                    : strncmp(name, "T_", 2) == 0 ? 0.01 : 1.0;
    return r;
}

/* The definition part shared by both formats: SPEC for kind. */
static int def_spec(rules_src *s, rule *r, const char *spec)
{
    const char *why = NULL;
    char mer[160];

    spec = skip_ws(spec);
    switch (r->kind) {
    case RULES_HEADER:
        if (parse_header_spec(r, spec, &why) < 0)
            return src_err(s, "%s", why);
        return 0;
    case RULES_BODY:
    case RULES_RAWBODY:
    case RULES_FULL:
    case RULES_URI:
        if (parse_regex(spec, &r->re, &r->rxflags, &why) < 0)
            return src_err(s, "%s", why);
        return 0;
    case RULES_META:
        if ((r->meta_src = strdup(spec)) == NULL)
            return src_err(s, "out of memory");
        if (rules_meta_parse(s->rs, r, mer, sizeof(mer)) < 0)
            return src_err(s, "%s", mer);
        return 0;
    case RULES_EVAL: {
        const char *open = strchr(spec, '('), *close = strrchr(spec, ')');
        char fname[64];
        size_t fl;
        int fn;
        if (open == NULL || close == NULL || close < open ||
            *skip_ws(close + 1) != '\0')
            return src_err(s, "eval: expected FUNCTION(ARG)");
        fl = (size_t)(open - spec);
        while (fl > 0 && spec[fl - 1] == ' ')
            fl--;
        if (fl == 0 || fl >= sizeof(fname))
            return src_err(s, "eval: expected FUNCTION(ARG)");
        memcpy(fname, spec, fl);
        fname[fl] = '\0';
        if ((fn = rules_eval_lookup(fname)) < 0)
            return src_err(s, "eval: unknown function %s", fname);
        r->fn = (rules_eval_fn)fn;
        r->sarg = rules_strndup(open + 1, (size_t)(close - open - 1));
        if (r->sarg == NULL)
            return src_err(s, "out of memory");
        switch (rules_eval_args(r->fn)) {
        case EVA_HEADER:
            if (!name_ok(r->sarg) && strchr(r->sarg, '-') == NULL)
                return src_err(s, "eval: %s() takes a header name", fname);
            break;
        case EVA_NONE:
            if (*skip_ws(r->sarg) != '\0')
                return src_err(s, "eval: %s() takes no argument", fname);
            break;
        case EVA_NUM: {
            char *end;
            r->arg = strtod(r->sarg, &end);
            if (end == r->sarg || *skip_ws(end) != '\0')
                return src_err(s, "eval: %s() takes a number", fname);
            break;
        }
        default: { /* EVA_NUM2: two numbers, "A, B" */
            char *end, *end2;
            r->arg = strtod(r->sarg, &end);
            if (end == r->sarg)
                return src_err(s, "eval: %s() takes two numbers", fname);
            end = (char *)skip_ws(end);
            if (*end != ',' ||
                (r->arg2 = strtod(end + 1, &end2), end2 == end + 1) ||
                *skip_ws(end2) != '\0')
                return src_err(s, "eval: %s() takes two numbers", fname);
            break;
        }
        }
        if (!isfinite(r->arg) || r->arg < 0 || !isfinite(r->arg2) ||
            r->arg2 < 0)
            return src_err(s, "eval: %s() takes numbers >= 0", fname);
        return 0;
    }
    default:
        return src_err(s, "internal: bad kind");
    }
}

/* KIND NAME WEIGHT "DESCRIPTION" SPEC */
static int line_sluice(rules_src *s, const char *p)
{
    char kw[32], name[RULES_MAX_NAME + 1], wbuf[64], *end;
    const char *q;
    size_t k;
    double w;
    rule *r;
    char *desc;
    size_t dl = 0;

    if (next_word(&p, kw, sizeof(kw)) == 0)
        return src_err(s, "expected a rule kind");
    for (k = 0; k < RULES_KIND_COUNT; k++)
        if (strcmp(kw, rules_kind_names[k]) == 0)
            break;
    if (k == RULES_KIND_COUNT)
        return src_err(s, "unknown rule kind \"%s\" (header, body, rawbody, "
                          "full, uri, eval, meta)", kw);
    if (next_word(&p, name, sizeof(name)) == 0)
        return src_err(s, "%s: expected a rule name", kw);
    if (next_word(&p, wbuf, sizeof(wbuf)) == 0)
        return src_err(s, "%s %s: expected a weight", kw, name);
    errno = 0;
    w = strtod(wbuf, &end);
    if (*end != '\0' || errno != 0 || w != w || w > 1000 || w < -1000)
        return src_err(s, "%s %s: bad weight \"%s\"", kw, name, wbuf);
    if (*p != '"')
        return src_err(s, "%s %s: expected a \"description\"", kw, name);
    if ((desc = malloc(strlen(p))) == NULL)
        return src_err(s, "out of memory");
    for (q = p + 1; *q != '\0' && *q != '"'; q++) {
        if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
            q++;
        desc[dl++] = *q;
    }
    desc[dl] = '\0';
    if (*q != '"' || dl == 0) {
        free(desc);
        return src_err(s, "%s %s: %s", kw, name,
                       dl ? "unterminated description"
                          : "empty description");
    }
    if ((r = def_rule(s, name, (rules_kind)k)) == NULL) {
        free(desc);
        return -1;
    }
    free(r->desc);
    r->desc = desc;
    r->weight = w;
    r->has_score = 1;
    q = skip_ws(q + 1);
    if (*q == '\0')
        return src_err(s, "%s %s: missing the rule itself", kw, name);
    return def_spec(s, r, q);
}

/* ---------------------------------------------------------------- SA */

typedef struct sa_ifs {
    int active[RULES_MAX_IFDEPTH];
    int depth;
    int skipping; /* depth count of skipped levels above depth */
} sa_ifs;

/* `if` expressions sluice can evaluate: version comparisons (against
 * 4.0), can(...) (false: those name plugin features sluice lacks) and
 * their negation; anything else is skipped. */
static int sa_if_eval(const char *e)
{
    int neg = 0;
    double v;
    const char *p;

    e = skip_ws(e);
    while (*e == '(')
        e = skip_ws(e + 1);
    if (*e == '!') {
        neg = 1;
        e = skip_ws(e + 1);
        while (*e == '(')
            e = skip_ws(e + 1);
    }
    if (strncmp(e, "can(", 4) == 0)
        return neg;
    if (strncmp(e, "version", 7) == 0) {
        p = skip_ws(e + 7);
        if (strncmp(p, ">=", 2) == 0) {
            v = strtod(skip_ws(p + 2), NULL);
            return (4.000000 >= v) != neg;
        }
        if (*p == '>') {
            v = strtod(skip_ws(p + 1), NULL);
            return (4.000000 > v) != neg;
        }
        if (*p == '<') {
            v = strtod(skip_ws(p + (p[1] == '=' ? 2 : 1)), NULL);
            return (p[1] == '=' ? 4.0 <= v : 4.0 < v) != neg;
        }
    }
    return 0;
}

static int sa_active(const sa_ifs *f)
{
    int i;

    for (i = 0; i < f->depth; i++)
        if (!f->active[i])
            return 0;
    return 1;
}

static int line_sa(rules_src *s, const char *p, sa_ifs *f)
{
    char kw[32], name[RULES_MAX_NAME + 1];
    size_t k;
    rule *r;

    if (next_word(&p, kw, sizeof(kw)) == 0) {
        s->rs->st.ignored_lines++;
        return 0;
    }
    if (strcmp(kw, "ifplugin") == 0 || strcmp(kw, "if") == 0) {
        if (f->depth < RULES_MAX_IFDEPTH)
            f->active[f->depth] = kw[1] == 'f' && kw[2] == 'p'
                                  ? 1 : sa_if_eval(p);
        f->depth++;
        return 0;
    }
    if (strcmp(kw, "else") == 0) {
        if (f->depth > 0 && f->depth <= RULES_MAX_IFDEPTH)
            f->active[f->depth - 1] = !f->active[f->depth - 1];
        return 0;
    }
    if (strcmp(kw, "endif") == 0) {
        if (f->depth > 0)
            f->depth--;
        return 0;
    }
    if (f->depth > RULES_MAX_IFDEPTH || !sa_active(f))
        return 0;
    if (next_word(&p, name, sizeof(name)) == 0) {
        s->rs->st.ignored_lines++;
        return 0;
    }
    if (strcmp(kw, "score") == 0 || strcmp(kw, "describe") == 0 ||
        strcmp(kw, "tflags") == 0) {
        if (!name_ok(name) || (r = rules_lookup(s->rs, name, 1)) == NULL)
            return 0;
        if (kw[0] == 's') {
            /* one score, or four (sets: plain, net, Bayes, Bayes+net):
             * sluice runs Bayes, so set 2 */
            double sc[4];
            int n = 0;
            char *end;
            while (n < 4 && *p) {
                sc[n] = strtod(p, &end);
                if (end == p)
                    break;
                n++;
                p = skip_ws(end);
            }
            if (n > 0) {
                r->weight = n == 4 ? sc[2] : sc[0];
                r->has_score = 1;
            }
        } else if (kw[0] == 'd') {
            free(r->desc);
            r->desc = strdup(p);
        } else {
            r->multiple = strstr(p, "multiple") != NULL;
        }
        return 0;
    }
    for (k = 0; k < RULES_KIND_COUNT; k++)
        if (k != RULES_EVAL && strcmp(kw, rules_kind_names[k]) == 0)
            break;
    if (k == RULES_KIND_COUNT) {
        s->rs->st.ignored_lines++;
        return 0;
    }
    if ((r = def_rule(s, name, (rules_kind)k)) == NULL)
        return 0;
    if (k != RULES_META && (strncmp(p, "eval:", 5) == 0 ||
                            strstr(p, "=~ eval:") != NULL)) {
        r->skip = 1;
        s->rs->st.skipped_eval++;
        return 0;
    }
    if (k == RULES_HEADER && (strncmp(p, "ALL-", 4) == 0 ||
                              strncmp(p, "X-Spam-Relays", 13) == 0)) {
        r->skip = 1; /* SpamAssassin's own pseudo-headers */
        s->rs->st.skipped_other++;
        return 0;
    }
    if (def_spec(s, r, p) < 0) {
        if (getenv("SLUICE_RULES_DEBUG") != NULL)
            fprintf(stderr, "skipped: %s\n", s->err);
        r->skip = 1;
        s->rs->st.skipped_other++;
        s->err[0] = '\0';
    }
    return 0;
}

/* ---------------------------------------------------------------- files */

int rules_load_buffer(rules_set *rs, const char *name, const char *buf,
                      size_t len, int fmt, char *err, size_t errlen)
{
    rules_src s = {rs, name, 0, fmt, err, errlen};
    sa_ifs ifs;
    char *line = malloc(RULES_MAX_LINE + 1);
    size_t off = 0;
    int rc = 0;

    if (line == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    memset(&ifs, 0, sizeof(ifs));
    if (rs->compiled) {
        free(line);
        snprintf(err, errlen, "%s: rule set already compiled", name);
        return -1;
    }
    while (off < len && rc == 0) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - (buf + off)) : len - off;
        const char *p;
        s.line++;
        if (ll > RULES_MAX_LINE) {
            rc = src_err(&s, "line too long");
            break;
        }
        memcpy(line, buf + off, ll);
        line[ll] = '\0';
        off += ll + 1;
        while (ll > 0 && (line[ll - 1] == '\r' || line[ll - 1] == ' ' ||
                          line[ll - 1] == '\t'))
            line[--ll] = '\0';
        if (memchr(line, '\0', ll) != NULL) {
            if (fmt == RULES_FMT_SLUICE)
                rc = src_err(&s, "NUL byte in the line");
            continue;
        }
        p = skip_ws(line);
        if (*p == '\0' || *p == '#')
            continue;
        if (fmt == RULES_FMT_SA)
            rc = line_sa(&s, p, &ifs);
        else
            rc = line_sluice(&s, p);
    }
    free(line);
    return rc;
}

int rules_load_file(rules_set *rs, const char *path, int fmt, char *err,
                    size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    int rc;

    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (cap - len < 65536) {
            char *nb;
            if (cap > 64u * 1024 * 1024) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: file too large", path);
                return -1;
            }
            cap = cap ? cap * 2 : 131072;
            if ((nb = realloc(buf, cap)) == NULL) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        fclose(fp);
        free(buf);
        return -1;
    }
    fclose(fp);
    rc = rules_load_buffer(rs, path, buf, len, fmt, err, errlen);
    free(buf);
    return rc;
}
