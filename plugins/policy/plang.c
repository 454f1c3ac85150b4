/*
 * plang.c - the policy language: lexer, parser, checker and interpreter
 * (see plang.h for the language and the interface).
 *
 * A script is parsed into a tree of nodes (commands and tests share one
 * node type), every node allocated from one arena so that a failed
 * compile frees everything at once.  The checker then resolves each node:
 * its kind, its tagged arguments (match type, comparator, address part,
 * relational operator) and its positional arguments, so that evaluation
 * only walks resolved nodes and never looks at a name again.  Errors stop
 * at the first one, with the line and column of the offending token.
 *
 * Evaluation keeps its variables in a small per-call table; strings with
 * "${" are expanded at run time into bounded buffers.
 */
#include "plang.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PL_MAX_DEPTH 32 /* nesting of blocks and tests */
#define PL_MAX_VARS 128
#define PL_MAX_FIELDS 1000 /* fields of one name looked at */
#define PL_MAX_EDITS 1000

/* ------------------------------------------------------------ arena */

typedef struct pl_blk {
    struct pl_blk *next;
    max_align_t data[];
} pl_blk;

/* ------------------------------------------------------------ tree */

enum { A_STR, A_LIST, A_NUM, A_TAG };

typedef struct pl_strlist {
    char **v;
    size_t n;
} pl_strlist;

typedef struct pl_arg {
    int type, line, col;
    char *tag;
    long long num;
    pl_strlist sl; /* A_STR: one string */
} pl_arg;

enum { /* node kinds */
       K_IF = 1,
       K_STOP,
       K_KEEP,
       K_DISCARD,
       K_REJECT,
       K_TEMPFAIL,
       K_QUARANTINE,
       K_TAGSUBJECT,
       K_ADDHEADER,
       K_DELHEADER,
       K_SET,
       K_NOTIFY,
       K_REQUIRE,
       K_REDIRECT,
       /* tests */
       T_TRUE,
       T_FALSE,
       T_NOT,
       T_ALLOF,
       T_ANYOF,
       T_HEADER,
       T_ADDRESS,
       T_ENVELOPE,
       T_EXISTS,
       T_SIZE,
       T_SCORE,
       T_SYMBOL,
       T_LIST,
       T_CLIENT,
       T_DIRECTION,
       T_VALIDNOTIFY
};

enum { M_IS = 0, M_CONTAINS, M_MATCHES, M_VALUE, M_COUNT, M_CIDR };
enum { C_CASEMAP = 0, C_OCTET, C_NUMERIC };
enum { P_ALL = 0, P_LOCAL, P_DOMAIN, P_USER, P_DETAIL };
enum { R_GT = 0, R_GE, R_LT, R_LE, R_EQ, R_NE };

typedef struct pl_node {
    const char *name;
    int line, col;
    pl_arg *args;
    size_t nargs;
    struct pl_node **tests;
    size_t ntests;
    struct pl_node *block; /* first command of the block */
    struct pl_node *next;  /* next command */
    struct pl_node *els;   /* if: the elsif/else that follows */
    int is_else;
    int tlist; /* tests came as a (test-list) */
    /* resolved by the checker */
    int kind, match, cmp, part, rel, last, mods;
    long long num;
    pl_strlist a, b; /* header names / keys; name / value ... */
    int copy;        /* redirect :copy */
    pl_strlist c, d; /* notify :from, :importance */
} pl_node;

struct plang_script {
    pl_blk *arena;
    pl_node *first;
    unsigned caps;
    char **vars; /* "name=value" presets */
    size_t nvars;
    plang_net *internal;
    size_t ninternal;
};

enum { /* capabilities */
       CAP_ENVELOPE = 1u << 0,
       CAP_VARIABLES = 1u << 1,
       CAP_EDITHEADER = 1u << 2,
       CAP_RELATIONAL = 1u << 3,
       CAP_SUBADDRESS = 1u << 4,
       CAP_REJECT = 1u << 5,
       CAP_SLUICE = 1u << 6,
       CAP_NOTIFY = 1u << 7,
       CAP_NUMERIC = 1u << 8,
       CAP_COPY = 1u << 9
};

static const struct {
    const char *name;
    unsigned cap;
} pl_caps[] = {
    {"envelope", CAP_ENVELOPE},
    {"variables", CAP_VARIABLES},
    {"editheader", CAP_EDITHEADER},
    {"relational", CAP_RELATIONAL},
    {"subaddress", CAP_SUBADDRESS},
    {"reject", CAP_REJECT},
    {"sluice", CAP_SLUICE},
    {"enotify", CAP_NOTIFY},
    {"notify", CAP_NOTIFY},
    {"comparator-i;ascii-numeric", CAP_NUMERIC},
    {"comparator-i;octet", 0},
    {"comparator-i;ascii-casemap", 0},
    {"copy", CAP_COPY},
};

/* ------------------------------------------------------------ compiler */

enum {
    TK_EOF,
    TK_ID,
    TK_TAG,
    TK_STR,
    TK_NUM,
    TK_LBRACK,
    TK_RBRACK,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACE,
    TK_RBRACE,
    TK_SEMI,
    TK_COMMA
};

typedef struct pl_comp {
    plang_script *s;
    const char *p, *end;
    int line, col;
    /* current token */
    int tk, tline, tcol;
    char *tstr;
    long long tnum;
    int depth;
    jmp_buf fail;
    char *err;
    size_t errlen;
} pl_comp;

static void *pl_alloc(pl_comp *c, size_t n);

static _Noreturn void pl_error(pl_comp *c, int line, int col, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));

static void pl_error(pl_comp *c, int line, int col, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(c->err, c->errlen, "%d:%d: ", line, col);

    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    longjmp(c->fail, 1);
}

static void *pl_alloc(pl_comp *c, size_t n)
{
    pl_blk *b = calloc(1, sizeof(*b) + n);

    if (b == NULL)
        pl_error(c, c->line, c->col, "out of memory");
    b->next = c->s->arena;
    c->s->arena = b;
    return b->data;
}

static char *pl_strndup(pl_comp *c, const char *p, size_t n)
{
    char *d = pl_alloc(c, n + 1);

    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static int pl_peekc(pl_comp *c, size_t i)
{
    return c->p + i < c->end ? (unsigned char)c->p[i] : -1;
}

static void pl_adv(pl_comp *c)
{
    if (c->p >= c->end)
        return;
    if (*c->p == '\n') {
        c->line++;
        c->col = 1;
    } else {
        c->col++;
    }
    c->p++;
}

static void pl_skip_space(pl_comp *c)
{
    for (;;) {
        int ch = pl_peekc(c, 0);
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            pl_adv(c);
        } else if (ch == '#') {
            while (c->p < c->end && *c->p != '\n')
                pl_adv(c);
        } else if (ch == '/' && pl_peekc(c, 1) == '*') {
            int l = c->line, col = c->col;
            pl_adv(c);
            pl_adv(c);
            while (!(pl_peekc(c, 0) == '*' && pl_peekc(c, 1) == '/')) {
                if (c->p >= c->end)
                    pl_error(c, l, col, "unterminated comment");
                pl_adv(c);
            }
            pl_adv(c);
            pl_adv(c);
        } else {
            return;
        }
    }
}

/* A quoted string: backslash takes the next character literally. */
static void pl_lex_quoted(pl_comp *c)
{
    size_t cap = 64, n = 0;
    char *buf = pl_alloc(c, cap);

    pl_adv(c);
    for (;;) {
        int ch = pl_peekc(c, 0);
        if (ch < 0)
            pl_error(c, c->tline, c->tcol, "unterminated string");
        if (ch == '"') {
            pl_adv(c);
            break;
        }
        if (ch == '\\') {
            pl_adv(c);
            ch = pl_peekc(c, 0);
            if (ch < 0)
                pl_error(c, c->tline, c->tcol, "unterminated string");
        }
        if (n + 1 >= cap) {
            char *nb = pl_alloc(c, cap * 2);
            memcpy(nb, buf, n);
            buf = nb;
            cap *= 2;
        }
        buf[n++] = (char)ch;
        pl_adv(c);
    }
    buf[n] = '\0';
    c->tstr = buf;
    c->tk = TK_STR;
}

/* text: ... multi-line string up to a line holding a lone ".". */
static void pl_lex_text(pl_comp *c)
{
    const char *start;
    size_t cap, n = 0;
    char *buf;

    while (pl_peekc(c, 0) == ' ' || pl_peekc(c, 0) == '\t')
        pl_adv(c);
    if (pl_peekc(c, 0) == '#')
        while (c->p < c->end && *c->p != '\n')
            pl_adv(c);
    if (pl_peekc(c, 0) == '\r')
        pl_adv(c);
    if (pl_peekc(c, 0) != '\n')
        pl_error(c, c->line, c->col, "text: must end its line");
    pl_adv(c);
    start = c->p;
    cap = (size_t)(c->end - start) + 1;
    buf = pl_alloc(c, cap);
    for (;;) {
        const char *eol = memchr(c->p, '\n', (size_t)(c->end - c->p));
        size_t len = eol ? (size_t)(eol - c->p) : (size_t)(c->end - c->p);
        size_t l2 = len > 0 && c->p[len - 1] == '\r' ? len - 1 : len;
        const char *line = c->p;

        if (c->p >= c->end)
            pl_error(c, c->tline, c->tcol, "text: without its final \".\"");
        while (c->p < line + len)
            pl_adv(c);
        pl_adv(c);
        if (l2 == 1 && line[0] == '.')
            break;
        if (l2 > 0 && line[0] == '.') { /* dot-stuffed */
            line++;
            l2--;
        }
        memcpy(buf + n, line, l2);
        n += l2;
        buf[n++] = '\n';
    }
    buf[n] = '\0';
    c->tstr = buf;
    c->tk = TK_STR;
}

static void pl_next(pl_comp *c)
{
    int ch;

    pl_skip_space(c);
    c->tline = c->line;
    c->tcol = c->col;
    ch = pl_peekc(c, 0);
    if (ch < 0) {
        c->tk = TK_EOF;
        return;
    }
    if (isalpha(ch) || ch == '_' || ch == ':') {
        const char *s = c->p;
        int tag = ch == ':';
        if (tag)
            pl_adv(c);
        while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '_'))
            pl_adv(c);
        if (c->p - s == tag)
            pl_error(c, c->tline, c->tcol, "\":\" without a tag name");
        if (!tag && c->p - s == 4 && strncasecmp(s, "text", 4) == 0 &&
            pl_peekc(c, 0) == ':') {
            pl_adv(c);
            pl_lex_text(c);
            return;
        }
        c->tstr = pl_strndup(c, s + tag, (size_t)(c->p - s - tag));
        for (char *q = c->tstr; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        c->tk = tag ? TK_TAG : TK_ID;
        return;
    }
    if (isdigit(ch)) {
        unsigned long long v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (1ull << 40))
                pl_error(c, c->tline, c->tcol, "number too large");
            v = v * 10 + (unsigned)(*c->p - '0');
            pl_adv(c);
        }
        ch = pl_peekc(c, 0);
        if (ch == 'K' || ch == 'k' || ch == 'M' || ch == 'm' || ch == 'G' ||
            ch == 'g') {
            v <<= (ch == 'K' || ch == 'k')   ? 10
                  : (ch == 'M' || ch == 'm') ? 20
                                             : 30;
            pl_adv(c);
        }
        c->tnum = (long long)v;
        c->tk = TK_NUM;
        return;
    }
    if (ch == '"') {
        pl_lex_quoted(c);
        return;
    }
    pl_adv(c);
    switch (ch) {
    case '[':
        c->tk = TK_LBRACK;
        return;
    case ']':
        c->tk = TK_RBRACK;
        return;
    case '(':
        c->tk = TK_LPAREN;
        return;
    case ')':
        c->tk = TK_RPAREN;
        return;
    case '{':
        c->tk = TK_LBRACE;
        return;
    case '}':
        c->tk = TK_RBRACE;
        return;
    case ';':
        c->tk = TK_SEMI;
        return;
    case ',':
        c->tk = TK_COMMA;
        return;
    }
    if (isprint(ch))
        pl_error(c, c->tline, c->tcol, "unexpected character '%c'", ch);
    pl_error(c, c->tline, c->tcol, "unexpected byte 0x%02x", ch);
}

static const char *pl_tkname(int tk)
{
    static const char *const names[] = {
        "end of script", "identifier", "tag",   "string", "number",
        "\"[\"",         "\"]\"",      "\"(\"", "\")\"",  "\"{\"",
        "\"}\"",         "\";\"",      "\",\""};
    return names[tk];
}

static void pl_expect(pl_comp *c, int tk, const char *where)
{
    if (c->tk != tk)
        pl_error(c, c->tline, c->tcol, "expected %s %s, found %s",
                 pl_tkname(tk), where, pl_tkname(c->tk));
    pl_next(c);
}

static pl_node *pl_parse_test(pl_comp *c);

/* Grows a pointer array allocated in the arena (old copies stay there,
 * freed with the rest: scripts are small). */
static void *pl_grow(pl_comp *c, void *old, size_t n, size_t elem)
{
    void *nv;

    if ((n & (n - 1)) != 0 && n != 0)
        return old;
    nv = pl_alloc(c, (n ? n * 2 : 1) * elem);
    if (old)
        memcpy(nv, old, n * elem);
    return nv;
}

static void pl_parse_args(pl_comp *c, pl_node *n)
{
    for (;;) {
        pl_arg *a;
        if (c->tk != TK_STR && c->tk != TK_LBRACK && c->tk != TK_NUM &&
            c->tk != TK_TAG)
            break;
        n->args = pl_grow(c, n->args, n->nargs, sizeof(*a));
        a = &n->args[n->nargs++];
        a->line = c->tline;
        a->col = c->tcol;
        if (c->tk == TK_STR) {
            a->type = A_STR;
            a->sl.v = pl_alloc(c, sizeof(char *));
            a->sl.v[0] = c->tstr;
            a->sl.n = 1;
            pl_next(c);
        } else if (c->tk == TK_NUM) {
            a->type = A_NUM;
            a->num = c->tnum;
            pl_next(c);
        } else if (c->tk == TK_TAG) {
            a->type = A_TAG;
            a->tag = c->tstr;
            pl_next(c);
        } else {
            a->type = A_LIST;
            pl_next(c);
            for (;;) {
                if (c->tk != TK_STR)
                    pl_error(c, c->tline, c->tcol,
                             "expected a string in the list, found %s",
                             pl_tkname(c->tk));
                a->sl.v = pl_grow(c, a->sl.v, a->sl.n, sizeof(char *));
                a->sl.v[a->sl.n++] = c->tstr;
                pl_next(c);
                if (c->tk == TK_RBRACK)
                    break;
                pl_expect(c, TK_COMMA, "between list strings");
            }
            pl_next(c);
        }
    }
    if (c->tk == TK_ID) {
        n->tests = pl_alloc(c, sizeof(pl_node *));
        n->tests[0] = pl_parse_test(c);
        n->ntests = 1;
    } else if (c->tk == TK_LPAREN) {
        n->tlist = 1;
        pl_next(c);
        for (;;) {
            n->tests = pl_grow(c, n->tests, n->ntests, sizeof(pl_node *));
            n->tests[n->ntests++] = pl_parse_test(c);
            if (c->tk == TK_RPAREN)
                break;
            pl_expect(c, TK_COMMA, "between tests");
        }
        pl_next(c);
    }
}

static pl_node *pl_parse_test(pl_comp *c)
{
    pl_node *n;

    if (c->tk != TK_ID)
        pl_error(c, c->tline, c->tcol, "expected a test, found %s",
                 pl_tkname(c->tk));
    if (++c->depth > PL_MAX_DEPTH)
        pl_error(c, c->tline, c->tcol, "tests nested too deeply");
    n = pl_alloc(c, sizeof(*n));
    n->name = c->tstr;
    n->line = c->tline;
    n->col = c->tcol;
    pl_next(c);
    pl_parse_args(c, n);
    c->depth--;
    return n;
}

static pl_node *pl_parse_commands(pl_comp *c, int in_block);

static pl_node *pl_parse_command(pl_comp *c)
{
    pl_node *n;

    if (c->tk != TK_ID)
        pl_error(c, c->tline, c->tcol, "expected a command, found %s",
                 pl_tkname(c->tk));
    n = pl_alloc(c, sizeof(*n));
    n->name = c->tstr;
    n->line = c->tline;
    n->col = c->tcol;
    pl_next(c);
    pl_parse_args(c, n);
    if (c->tk == TK_LBRACE) {
        int l = c->tline, col = c->tcol;
        if (++c->depth > PL_MAX_DEPTH)
            pl_error(c, l, col, "blocks nested too deeply");
        pl_next(c);
        n->block = pl_parse_commands(c, 1);
        n->is_else = 1; /* marks "has a block" until checked */
        pl_expect(c, TK_RBRACE, "to close the block");
        c->depth--;
    } else if (strcmp(n->name, "if") == 0 || strcmp(n->name, "elsif") == 0 ||
               strcmp(n->name, "else") == 0) {
        pl_error(c, c->tline, c->tcol,
                 "expected \"{\" to open the %s block, "
                 "found %s",
                 n->name, pl_tkname(c->tk));
    } else {
        pl_expect(c, TK_SEMI, "after the command");
    }
    return n;
}

static pl_node *pl_parse_commands(pl_comp *c, int in_block)
{
    pl_node *first = NULL, **tail = &first, *prev_if = NULL;

    while (c->tk != TK_EOF && !(in_block && c->tk == TK_RBRACE)) {
        pl_node *n = pl_parse_command(c);
        int has_block = n->is_else;

        n->is_else = 0;
        if (strcmp(n->name, "elsif") == 0 || strcmp(n->name, "else") == 0) {
            if (prev_if == NULL)
                pl_error(c, n->line, n->col, "%s without a preceding if",
                         n->name);
            if (!has_block)
                pl_error(c, n->line, n->col, "%s needs a block", n->name);
            prev_if->els = n;
            prev_if = strcmp(n->name, "elsif") == 0 ? n : NULL;
            continue;
        }
        if (strcmp(n->name, "if") == 0) {
            if (!has_block)
                pl_error(c, n->line, n->col, "if needs a block");
            prev_if = n;
        } else {
            if (has_block)
                pl_error(c, n->line, n->col, "%s takes no block", n->name);
            prev_if = NULL;
        }
        *tail = n;
        tail = &n->next;
    }
    return first;
}

/* ------------------------------------------------------------ checker */

enum { /* tag value kinds */
       TV_NONE = 0,
       TV_STR,
       TV_NUM,
       TV_LIST
};

enum { /* tag groups a command may allow */
       G_MATCH = 1u << 0,
       G_CMP = 1u << 1,
       G_PART = 1u << 2,
       G_SIZE = 1u << 3,
       G_LAST = 1u << 4,
       G_INDEX = 1u << 5,
       G_MODS = 1u << 6,
       G_NOTIFY = 1u << 7,
       G_CIDR = 1u << 8,
       G_SCORE = 1u << 9,
       G_COPY = 1u << 10
};

static const struct {
    const char *name;
    unsigned group;
    int value;
    int id;
} pl_tags[] = {
    {"is", G_MATCH, TV_NONE, M_IS},
    {"contains", G_MATCH, TV_NONE, M_CONTAINS},
    {"matches", G_MATCH, TV_NONE, M_MATCHES},
    {"value", G_MATCH, TV_STR, M_VALUE},
    {"count", G_MATCH, TV_STR, M_COUNT},
    {"comparator", G_CMP, TV_STR, 0},
    {"all", G_PART, TV_NONE, P_ALL},
    {"localpart", G_PART, TV_NONE, P_LOCAL},
    {"domain", G_PART, TV_NONE, P_DOMAIN},
    {"user", G_PART, TV_NONE, P_USER},
    {"detail", G_PART, TV_NONE, P_DETAIL},
    {"over", G_SIZE | G_SCORE, TV_NONE, R_GT},
    {"under", G_SIZE | G_SCORE, TV_NONE, R_LT},
    {"last", G_LAST, TV_NONE, 0},
    {"index", G_INDEX, TV_NUM, 0},
    {"lower", G_MODS, TV_NONE, 1},
    {"upper", G_MODS, TV_NONE, 2},
    {"lowerfirst", G_MODS, TV_NONE, 4},
    {"upperfirst", G_MODS, TV_NONE, 8},
    {"quotewildcard", G_MODS, TV_NONE, 16},
    {"length", G_MODS, TV_NONE, 32},
    {"from", G_NOTIFY, TV_STR, 2},
    {"importance", G_NOTIFY, TV_STR, 3},
    {"options", G_NOTIFY, TV_LIST, 0},
    {"message", G_NOTIFY, TV_STR, 1},
    {"copy", G_COPY, TV_NONE, 0},
    {"cidr", G_CIDR, TV_NONE, M_CIDR},
};

static int pl_rel(const char *s)
{
    static const char *const r[] = {"gt", "ge", "lt", "le", "eq", "ne"};

    for (int i = 0; i < 6; i++)
        if (strcasecmp(s, r[i]) == 0)
            return i;
    return -1;
}

static void pl_need(pl_comp *c, pl_node *n, unsigned cap, const char *ext)
{
    if (!(c->s->caps & cap))
        pl_error(c, n->line, n->col, "%s needs require \"%s\"", n->name, ext);
}

static int pl_has_var(const char *s)
{
    return strstr(s, "${") != NULL;
}

/* Consumes the tagged arguments allowed by `groups`; returns the index of
 * the first positional one.  Tags must come before positional arguments. */
static size_t pl_check_tags(pl_comp *c, pl_node *n, unsigned groups)
{
    size_t i = 0;
    int seen_match = 0, seen_part = 0, seen_cmp = 0;

    n->match = (groups & G_CIDR) ? M_CIDR : M_IS;
    for (; i < n->nargs && n->args[i].type == A_TAG; i++) {
        pl_arg *a = &n->args[i];
        size_t t;

        for (t = 0; t < sizeof(pl_tags) / sizeof(pl_tags[0]); t++)
            if (strcmp(pl_tags[t].name, a->tag) == 0 &&
                (pl_tags[t].group & groups))
                break;
        if (t == sizeof(pl_tags) / sizeof(pl_tags[0]))
            pl_error(c, a->line, a->col, "%s does not take :%s", n->name,
                     a->tag);
        if (pl_tags[t].value != TV_NONE) {
            pl_arg *v = i + 1 < n->nargs ? &n->args[i + 1] : NULL;
            int ok = v && ((pl_tags[t].value == TV_STR && v->type == A_STR) ||
                           (pl_tags[t].value == TV_NUM && v->type == A_NUM) ||
                           (pl_tags[t].value == TV_LIST &&
                            (v->type == A_LIST || v->type == A_STR)));
            if (!ok)
                pl_error(c, a->line, a->col, ":%s needs a %s after it", a->tag,
                         pl_tags[t].value == TV_NUM ? "number" : "string");
        }
        switch (pl_tags[t].group & groups) {
        case G_MATCH:
        case G_CIDR:
            if (seen_match++)
                pl_error(c, a->line, a->col, "more than one match type");
            n->match = pl_tags[t].id;
            if (n->match == M_VALUE || n->match == M_COUNT) {
                if (!(c->s->caps & CAP_RELATIONAL))
                    pl_error(c, a->line, a->col,
                             ":%s needs require \"relational\"", a->tag);
                n->rel = pl_rel(n->args[i + 1].sl.v[0]);
                if (n->rel < 0)
                    pl_error(c, n->args[i + 1].line, n->args[i + 1].col,
                             "unknown relational operator \"%s\" (gt ge lt "
                             "le eq ne)",
                             n->args[i + 1].sl.v[0]);
                i++;
            }
            break;
        case G_CMP: {
            const char *cmp = n->args[i + 1].sl.v[0];
            if (seen_cmp++)
                pl_error(c, a->line, a->col, "more than one comparator");
            if (strcmp(cmp, "i;ascii-casemap") == 0)
                n->cmp = C_CASEMAP;
            else if (strcmp(cmp, "i;octet") == 0)
                n->cmp = C_OCTET;
            else if (strcmp(cmp, "i;ascii-numeric") == 0)
                n->cmp = C_NUMERIC;
            else
                pl_error(c, n->args[i + 1].line, n->args[i + 1].col,
                         "unknown comparator \"%s\"", cmp);
            i++;
            break;
        }
        case G_PART:
            if (seen_part++)
                pl_error(c, a->line, a->col, "more than one address part");
            if ((pl_tags[t].id == P_USER || pl_tags[t].id == P_DETAIL) &&
                !(c->s->caps & CAP_SUBADDRESS))
                pl_error(c, a->line, a->col, ":%s needs require \"subaddress\"",
                         a->tag);
            n->part = pl_tags[t].id;
            break;
        case G_SIZE | G_SCORE:
        case G_SIZE:
        case G_SCORE:
            if (seen_match++)
                pl_error(c, a->line, a->col, "more than one of :over, :under");
            n->match = M_VALUE;
            n->rel = pl_tags[t].id;
            break;
        case G_LAST:
            n->last = 1;
            break;
        case G_INDEX:
            if (n->args[i + 1].num < 1)
                pl_error(c, a->line, a->col, ":index counts from 1");
            n->num = n->args[i + 1].num;
            i++;
            break;
        case G_MODS:
            n->mods |= pl_tags[t].id;
            break;
        case G_NOTIFY:
            if (pl_tags[t].id == 1)
                n->b = n->args[i + 1].sl;
            else if (pl_tags[t].id == 2)
                n->c = n->args[i + 1].sl;
            else if (pl_tags[t].id == 3)
                n->d = n->args[i + 1].sl;
            i++;
            break;
        case G_COPY:
            if (!(c->s->caps & CAP_COPY))
                pl_error(c, a->line, a->col, ":copy needs require \"copy\"");
            n->copy = 1;
            break;
        default:
            pl_error(c, a->line, a->col, "%s does not take :%s", n->name,
                     a->tag);
        }
    }
    for (size_t j = i; j < n->nargs; j++)
        if (n->args[j].type == A_TAG)
            pl_error(c, n->args[j].line, n->args[j].col,
                     "tag :%s after a positional argument", n->args[j].tag);
    return i;
}

/* Positional arguments: `spec` is a string of 's' (string), 'l' (string
 * list or string) and 'n' (number); an upper-case letter is optional. */
static void pl_check_pos(pl_comp *c, pl_node *n, size_t first, const char *spec,
                         pl_strlist **out, long long *num)
{
    size_t i = first, k = 0;

    for (const char *s = spec; *s; s++) {
        int opt = isupper((unsigned char)*s);
        int want = tolower((unsigned char)*s);
        pl_arg *a = i < n->nargs ? &n->args[i] : NULL;
        int ok =
            a && ((want == 's' && a->type == A_STR) ||
                  (want == 'l' && (a->type == A_STR || a->type == A_LIST)) ||
                  (want == 'n' && a->type == A_NUM));
        if (!ok) {
            if (opt && a == NULL)
                break;
            if (a == NULL)
                pl_error(c, n->line, n->col, "%s: missing %s argument", n->name,
                         want == 'n'   ? "a number"
                         : want == 's' ? "a string"
                                       : "a string list");
            pl_error(c, a->line, a->col, "%s: expected %s here", n->name,
                     want == 'n'   ? "a number"
                     : want == 's' ? "a string"
                                   : "a string list");
        }
        if (want == 'n')
            *num = a->num;
        else
            *out[k++] = a->sl;
        i++;
    }
    if (i < n->nargs)
        pl_error(c, n->args[i].line, n->args[i].col, "%s: too many arguments",
                 n->name);
}

static void pl_check_cidrs(pl_comp *c, pl_node *n)
{
    plang_net net;

    if (n->match != M_CIDR)
        return;
    for (size_t i = 0; i < n->b.n; i++)
        if (!pl_has_var(n->b.v[i]) && plang_net_parse(n->b.v[i], &net) < 0)
            pl_error(c, n->line, n->col, "%s: \"%s\" is not a network", n->name,
                     n->b.v[i]);
}

static void pl_check_test(pl_comp *c, pl_node *n)
{
    pl_strlist *two[2] = {&n->a, &n->b}, *one[1] = {&n->b};
    size_t p;
    const char *nm = n->name;

    if (n->ntests && strcmp(nm, "not") && strcmp(nm, "allof") &&
        strcmp(nm, "anyof"))
        pl_error(c, n->tests[0]->line, n->tests[0]->col, "%s takes no test",
                 nm);
    if (strcmp(nm, "true") == 0 || strcmp(nm, "false") == 0) {
        n->kind = nm[0] == 't' ? T_TRUE : T_FALSE;
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "", NULL, NULL);
    } else if (strcmp(nm, "not") == 0 || strcmp(nm, "allof") == 0 ||
               strcmp(nm, "anyof") == 0) {
        n->kind = nm[0] == 'n' ? T_NOT : nm[1] == 'l' ? T_ALLOF : T_ANYOF;
        if (n->nargs)
            pl_error(c, n->args[0].line, n->args[0].col, "%s takes tests only",
                     nm);
        if (n->ntests == 0 || (n->kind == T_NOT) == n->tlist)
            pl_error(c, n->line, n->col, "%s needs %s", nm,
                     n->kind == T_NOT ? "one test" : "a test list");
        for (size_t i = 0; i < n->ntests; i++)
            pl_check_test(c, n->tests[i]);
    } else if (strcmp(nm, "header") == 0) {
        n->kind = T_HEADER;
        p = pl_check_tags(c, n, G_MATCH | G_CMP);
        pl_check_pos(c, n, p, "ll", two, NULL);
    } else if (strcmp(nm, "address") == 0 || strcmp(nm, "envelope") == 0) {
        n->kind = nm[0] == 'a' ? T_ADDRESS : T_ENVELOPE;
        if (n->kind == T_ENVELOPE)
            pl_need(c, n, CAP_ENVELOPE, "envelope");
        p = pl_check_tags(c, n, G_MATCH | G_CMP | G_PART);
        pl_check_pos(c, n, p, "ll", two, NULL);
        for (size_t i = 0; n->kind == T_ENVELOPE && i < n->a.n; i++)
            if (strcasecmp(n->a.v[i], "from") && strcasecmp(n->a.v[i], "to"))
                pl_error(c, n->line, n->col,
                         "envelope: only \"from\" and \"to\", not \"%s\"",
                         n->a.v[i]);
    } else if (strcmp(nm, "exists") == 0) {
        n->kind = T_EXISTS;
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "l", one, NULL);
    } else if (strcmp(nm, "size") == 0) {
        n->kind = T_SIZE;
        p = pl_check_tags(c, n, G_SIZE);
        if (n->match != M_VALUE)
            pl_error(c, n->line, n->col, "size needs :over or :under");
        pl_check_pos(c, n, p, "n", NULL, &n->num);
    } else if (strcmp(nm, "score") == 0 || strcmp(nm, "sluice_score") == 0) {
        n->kind = T_SCORE;
        pl_need(c, n, CAP_SLUICE, "sluice");
        { /* :value is native to score: no require "relational" */
            unsigned caps = c->s->caps;
            c->s->caps |= CAP_RELATIONAL;
            p = pl_check_tags(c, n, G_MATCH | G_SCORE);
            c->s->caps = caps;
        }
        if (n->match != M_VALUE)
            pl_error(c, n->line, n->col,
                     "score needs :value \"REL\", :over or :under");
        if (p < n->nargs && n->args[p].type == A_NUM) {
            n->num = n->args[p].num;
            n->mods = 1; /* numeric literal */
            if (p + 1 < n->nargs)
                pl_error(c, n->args[p + 1].line, n->args[p + 1].col,
                         "score: too many arguments");
        } else {
            pl_check_pos(c, n, p, "l", one, NULL);
            for (size_t i = 0; i < n->b.n; i++) {
                char *e;
                if (pl_has_var(n->b.v[i]))
                    continue;
                errno = 0;
                (void)strtod(n->b.v[i], &e);
                if (e == n->b.v[i] || *e != '\0' || errno)
                    pl_error(c, n->line, n->col,
                             "score: \"%s\" is not a number", n->b.v[i]);
            }
        }
    } else if (strcmp(nm, "symbol") == 0) {
        n->kind = T_SYMBOL;
        pl_need(c, n, CAP_SLUICE, "sluice");
        p = pl_check_tags(c, n, G_MATCH | G_CMP);
        if (n->match == M_VALUE)
            pl_error(c, n->line, n->col,
                     "symbol: use :is, :contains, "
                     ":matches or :count");
        pl_check_pos(c, n, p, "l", one, NULL);
    } else if (strcmp(nm, "list") == 0) {
        n->kind = T_LIST;
        pl_need(c, n, CAP_SLUICE, "sluice");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "l", one, NULL);
        for (size_t i = 0; i < n->b.n; i++)
            if (strcmp(n->b.v[i], "allow") && strcmp(n->b.v[i], "block"))
                pl_error(c, n->line, n->col,
                         "list: \"allow\" or \"block\", not \"%s\"", n->b.v[i]);
    } else if (strcmp(nm, "client") == 0 || strcmp(nm, "address_in") == 0) {
        n->kind = T_CLIENT;
        pl_need(c, n, CAP_SLUICE, "sluice");
        p = pl_check_tags(c, n, G_CIDR | G_MATCH | G_CMP);
        if (n->match == M_VALUE || n->match == M_COUNT)
            pl_error(c, n->line, n->col, "client: no relational match");
        pl_check_pos(c, n, p, "l", one, NULL);
        pl_check_cidrs(c, n);
    } else if (strcmp(nm, "valid_notify_method") == 0) {
        n->kind = T_VALIDNOTIFY;
        pl_need(c, n, CAP_NOTIFY, "enotify");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "l", one, NULL);
    } else if (strcmp(nm, "direction") == 0) {
        n->kind = T_DIRECTION;
        pl_need(c, n, CAP_SLUICE, "sluice");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "l", one, NULL);
        for (size_t i = 0; i < n->b.n; i++)
            if (strcmp(n->b.v[i], "inbound") && strcmp(n->b.v[i], "outbound"))
                pl_error(c, n->line, n->col,
                         "direction: \"inbound\" or \"outbound\", not \"%s\"",
                         n->b.v[i]);
    } else {
        pl_error(c, n->line, n->col, "unknown test \"%s\"", nm);
    }
}

static void pl_check_commands(pl_comp *c, pl_node *n, int first_ok);

/* notify: the method and :importance, when they hold no variable. */
static void pl_check_notify(pl_comp *c, pl_node *n)
{
    plang_notify t;
    char err[160];
    const pl_arg *m = &n->args[n->nargs - 1];

    if (!pl_has_var(n->a.v[0])) {
        memset(&t, 0, sizeof(t));
        if (plang_mailto(n->a.v[0], &t, err, sizeof(err)) < 0) {
            plang_notify_free(&t);
            pl_error(c, m->line, m->col, "notify: %s", err);
        }
        plang_notify_free(&t);
    }
    if (n->d.n && !pl_has_var(n->d.v[0]) && strcmp(n->d.v[0], "1") &&
        strcmp(n->d.v[0], "2") && strcmp(n->d.v[0], "3"))
        pl_error(c, n->line, n->col,
                 "notify: :importance is \"1\", \"2\" or \"3\", not \"%s\"",
                 n->d.v[0]);
}

static void pl_check_command(pl_comp *c, pl_node *n, int may_require)
{
    pl_strlist *one[1] = {&n->b}, *two[2] = {&n->a, &n->b};
    const char *nm = n->name;
    size_t p;

    if (n->ntests && strcmp(nm, "if") && strcmp(nm, "elsif"))
        pl_error(c, n->tests[0]->line, n->tests[0]->col, "%s takes no test",
                 nm);
    if (strcmp(nm, "require") == 0) {
        n->kind = K_REQUIRE;
        if (!may_require)
            pl_error(c, n->line, n->col,
                     "require must come before any other command");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "l", one, NULL);
        for (size_t i = 0; i < n->b.n; i++) {
            size_t k;
            for (k = 0; k < sizeof(pl_caps) / sizeof(pl_caps[0]); k++)
                if (strcmp(pl_caps[k].name, n->b.v[i]) == 0)
                    break;
            if (k == sizeof(pl_caps) / sizeof(pl_caps[0]))
                pl_error(c, n->args[0].line, n->args[0].col,
                         "unsupported extension \"%s\"", n->b.v[i]);
            c->s->caps |= pl_caps[k].cap;
        }
    } else if (strcmp(nm, "if") == 0 || strcmp(nm, "elsif") == 0) {
        n->kind = K_IF;
        if (n->ntests != 1 || n->nargs || n->tlist)
            pl_error(c, n->line, n->col, "%s needs exactly one test", nm);
        pl_check_test(c, n->tests[0]);
        pl_check_commands(c, n->block, 0);
        if (n->els)
            pl_check_command(c, n->els, 0);
    } else if (strcmp(nm, "else") == 0) {
        n->kind = K_IF; /* an if whose test is always true */
        if (n->nargs || n->ntests)
            pl_error(c, n->line, n->col, "else takes no arguments");
        pl_check_commands(c, n->block, 0);
    } else if (strcmp(nm, "stop") == 0 || strcmp(nm, "keep") == 0 ||
               strcmp(nm, "discard") == 0 || strcmp(nm, "deliver") == 0) {
        n->kind = nm[0] == 's'                   ? K_STOP
                  : nm[0] == 'd' && nm[1] == 'i' ? K_DISCARD
                                                 : K_KEEP;
        if (strcmp(nm, "deliver") == 0)
            pl_need(c, n, CAP_SLUICE, "sluice");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "", NULL, NULL);
    } else if (strcmp(nm, "reject") == 0) {
        n->kind = K_REJECT;
        pl_need(c, n, CAP_REJECT, "reject");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "S", one, NULL);
    } else if (strcmp(nm, "tempfail") == 0 || strcmp(nm, "quarantine") == 0) {
        n->kind = nm[0] == 't' ? K_TEMPFAIL : K_QUARANTINE;
        pl_need(c, n, CAP_SLUICE, "sluice");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "S", one, NULL);
    } else if (strcmp(nm, "tagsubject") == 0) {
        n->kind = K_TAGSUBJECT;
        pl_need(c, n, CAP_SLUICE, "sluice");
        pl_check_pos(c, n, pl_check_tags(c, n, 0), "s", one, NULL);
    } else if (strcmp(nm, "addheader") == 0) {
        n->kind = K_ADDHEADER;
        pl_need(c, n, CAP_EDITHEADER, "editheader");
        pl_check_pos(c, n, pl_check_tags(c, n, G_LAST), "ss", two, NULL);
    } else if (strcmp(nm, "deleteheader") == 0) {
        n->kind = K_DELHEADER;
        pl_need(c, n, CAP_EDITHEADER, "editheader");
        p = pl_check_tags(c, n, G_INDEX | G_LAST | G_MATCH | G_CMP);
        if (n->match == M_VALUE || n->match == M_COUNT)
            pl_error(c, n->line, n->col, "deleteheader: no relational match");
        n->b.n = 0;
        pl_check_pos(c, n, p, "sL", two, NULL);
    } else if (strcmp(nm, "set") == 0) {
        n->kind = K_SET;
        pl_need(c, n, CAP_VARIABLES, "variables");
        pl_check_pos(c, n, pl_check_tags(c, n, G_MODS), "ss", two, NULL);
        for (const char *q = n->a.v[0]; *q; q++)
            if (!isalnum((unsigned char)*q) && *q != '_')
                pl_error(c, n->line, n->col, "set: bad variable name \"%s\"",
                         n->a.v[0]);
        if (n->a.v[0][0] == '\0' || isdigit((unsigned char)n->a.v[0][0]))
            pl_error(c, n->line, n->col, "set: bad variable name \"%s\"",
                     n->a.v[0]);
    } else if (strcmp(nm, "notify") == 0) {
        n->kind = K_NOTIFY;
        pl_need(c, n, CAP_NOTIFY, "enotify");
        pl_check_pos(c, n, pl_check_tags(c, n, G_NOTIFY), "s", two, NULL);
        pl_check_notify(c, n);
    } else if (strcmp(nm, "redirect") == 0) {
        n->kind = K_REDIRECT;
        pl_check_pos(c, n, pl_check_tags(c, n, G_COPY), "s", one, NULL);
        if (!pl_has_var(n->b.v[0]) && !plang_addr_ok(n->b.v[0]))
            pl_error(c, n->args[n->nargs - 1].line, n->args[n->nargs - 1].col,
                     "redirect: \"%s\" is not an address", n->b.v[0]);
    } else if (strcmp(nm, "fileinto") == 0) {
        pl_error(c, n->line, n->col,
                 "fileinto is not supported: a gateway has no folders (use "
                 "redirect or quarantine)");
    } else {
        pl_error(c, n->line, n->col, "unknown command \"%s\"", nm);
    }
}

static void pl_check_commands(pl_comp *c, pl_node *n, int first_ok)
{
    int may_require = first_ok;

    for (; n; n = n->next) {
        pl_check_command(c, n, may_require);
        may_require = may_require && n->kind == K_REQUIRE;
    }
}

static int pl_compile_opts(pl_comp *c, const plang_opts *o)
{
    plang_script *s = c->s;

    for (size_t i = 0; o && o->vars && o->vars[i]; i++) {
        const char *eq = strchr(o->vars[i], '=');
        if (eq == NULL || eq == o->vars[i]) {
            snprintf(c->err, c->errlen, "variable \"%s\" is not name=value",
                     o->vars[i]);
            return -1;
        }
        s->vars = pl_grow(c, s->vars, s->nvars, sizeof(char *));
        s->vars[s->nvars++] = pl_strndup(c, o->vars[i], strlen(o->vars[i]));
    }
    for (size_t i = 0; o && o->internal && o->internal[i]; i++) {
        s->internal = pl_grow(c, s->internal, s->ninternal, sizeof(plang_net));
        if (plang_net_parse(o->internal[i], &s->internal[s->ninternal++]) < 0) {
            snprintf(c->err, c->errlen,
                     "internal network \"%s\" is not a "
                     "network",
                     o->internal[i]);
            return -1;
        }
    }
    return 0;
}

plang_script *plang_compile(const char *text, size_t len,
                            const plang_opts *opts, char *err, size_t errlen)
{
    pl_comp c;
    /* volatile: read after a longjmp back into this frame */
    plang_script *volatile s = calloc(1, sizeof(*s));
    char dummy[8];

    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (len > PLANG_MAX_SCRIPT) {
        snprintf(err, errlen, "script over %u bytes", PLANG_MAX_SCRIPT);
        free(s);
        return NULL;
    }
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.p = text;
    c.end = text + len;
    c.line = c.col = 1;
    c.err = err;
    c.errlen = errlen;
    if (setjmp(c.fail) != 0) {
        plang_free(s);
        return NULL;
    }
    if (pl_compile_opts(&c, opts) < 0) {
        plang_free(s);
        return NULL;
    }
    pl_next(&c);
    s->first = pl_parse_commands(&c, 0);
    if (c.tk != TK_EOF)
        pl_error(&c, c.tline, c.tcol, "unexpected %s", pl_tkname(c.tk));
    pl_check_commands(&c, s->first, 1);
    return s;
}

void plang_free(plang_script *s)
{
    if (s == NULL)
        return;
    while (s->arena) {
        pl_blk *b = s->arena;
        s->arena = b->next;
        free(b);
    }
    free(s);
}

/* ------------------------------------------------------------ networks */

int plang_net_parse(const char *s, plang_net *n)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    int max;

    memset(n, 0, sizeof(*n));
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = 6;
        max = 128;
    } else {
        return -1;
    }
    n->prefix = max;
    if (slash) {
        char *e;
        long v;
        errno = 0;
        v = strtol(slash + 1, &e, 10);
        if (e == slash + 1 || *e != '\0' || errno || v < 0 || v > max)
            return -1;
        n->prefix = (int)v;
    }
    return 0;
}

int plang_net_contains(const plang_net *n, const char *addr)
{
    unsigned char a[16];
    int bytes, bits;
    const char *p = addr;

    if (n->family == 4) {
        if (inet_pton(AF_INET, p, a) != 1) {
            /* an IPv4-mapped IPv6 client matches IPv4 networks */
            if (strncasecmp(p, "::ffff:", 7) != 0 ||
                inet_pton(AF_INET, p + 7, a) != 1)
                return 0;
        }
    } else if (inet_pton(AF_INET6, p, a) != 1) {
        return 0;
    }
    bytes = n->prefix / 8;
    bits = n->prefix % 8;
    if (memcmp(a, n->addr, (size_t)bytes) != 0)
        return 0;
    if (bits) {
        unsigned char mask = (unsigned char)(0xffu << (8 - bits));
        if ((a[bytes] & mask) != (n->addr[bytes] & mask))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ interpreter */

typedef struct pl_run {
    const plang_script *s;
    const plang_facts *f;
    plang_result *r;
    char *vname[PL_MAX_VARS], *vval[PL_MAX_VARS];
    size_t nv;
    int stopped, oom;
    int redirect_cancels; /* a redirect without :copy ran */
} pl_run;

static const char *pl_var_get(pl_run *x, const char *name, size_t len)
{
    for (size_t i = 0; i < x->nv; i++)
        if (strlen(x->vname[i]) == len &&
            strncasecmp(x->vname[i], name, len) == 0)
            return x->vval[i];
    return NULL;
}

static void pl_var_set(pl_run *x, const char *name, size_t nlen,
                       const char *val)
{
    char *v = strndup(val, PLANG_MAX_VALUE);
    size_t i;

    if (v == NULL) {
        x->oom = 1;
        return;
    }
    for (i = 0; i < x->nv; i++)
        if (strlen(x->vname[i]) == nlen &&
            strncasecmp(x->vname[i], name, nlen) == 0) {
            free(x->vval[i]);
            x->vval[i] = v;
            return;
        }
    if (x->nv == PL_MAX_VARS) { /* RFC 5229 allows a limit */
        free(v);
        return;
    }
    x->vname[x->nv] = strndup(name, nlen);
    if (x->vname[x->nv] == NULL) {
        free(v);
        x->oom = 1;
        return;
    }
    x->vval[x->nv++] = v;
}

/* Expands ${name} into buf (PLANG_MAX_VALUE); unknown names expand to "",
 * anything that is not a valid reference stays as written. */
static const char *pl_expand(pl_run *x, const char *s, char *buf)
{
    size_t n = 0;

    if (!(x->s->caps & CAP_VARIABLES) || strstr(s, "${") == NULL)
        return s;
    while (*s && n + 1 < PLANG_MAX_VALUE) {
        if (s[0] == '$' && s[1] == '{') {
            const char *q = s + 2;
            while (isalnum((unsigned char)*q) || *q == '_' || *q == '.')
                q++;
            if (*q == '}' && q > s + 2) {
                const char *v = pl_var_get(x, s + 2, (size_t)(q - s - 2));
                for (; v && *v && n + 1 < PLANG_MAX_VALUE; v++)
                    buf[n++] = *v;
                s = q + 1;
                continue;
            }
        }
        buf[n++] = *s++;
    }
    buf[n] = '\0';
    return buf;
}

static void pl_trace(pl_run *x, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pl_trace(pl_run *x, int line, const char *fmt, ...)
{
    plang_result *r = x->r;
    char buf[600];
    int n;
    va_list ap;

    if (r->ntrace == r->trace_cap) {
        size_t cap = r->trace_cap ? r->trace_cap * 2 : 16;
        char **nt = realloc(r->trace, cap * sizeof(*nt));
        if (nt == NULL) {
            x->oom = 1;
            return;
        }
        r->trace = nt;
        r->trace_cap = cap;
    }
    n = snprintf(buf, sizeof(buf), "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if ((r->trace[r->ntrace] = strdup(buf)) == NULL)
        x->oom = 1;
    else
        r->ntrace++;
}

static void pl_edit(pl_run *x, plang_edit_op op, const char *name,
                    const char *value, size_t nth)
{
    plang_result *r = x->r;
    plang_edit *e;

    if (r->nedits >= PL_MAX_EDITS)
        return;
    if (r->nedits == r->edits_cap) {
        size_t cap = r->edits_cap ? r->edits_cap * 2 : 8;
        plang_edit *ne = realloc(r->edits, cap * sizeof(*ne));
        if (ne == NULL) {
            x->oom = 1;
            return;
        }
        r->edits = ne;
        r->edits_cap = cap;
    }
    e = &r->edits[r->nedits];
    memset(e, 0, sizeof(*e));
    e->op = op;
    e->nth = nth;
    e->name = strdup(name);
    e->value = value ? strdup(value) : NULL;
    if (e->name == NULL || (value && e->value == NULL)) {
        free(e->name);
        free(e->value);
        x->oom = 1;
        return;
    }
    r->nedits++;
}

/* Wildcard match (* and ?, backslash escapes), iterative with one
 * backtrack point: O(len(s) * len(p)) at worst, never recursive. */
static int pl_glob(const char *s, const char *p, int fold)
{
    const char *star = NULL, *ss = NULL;

    while (*s) {
        if (*p == '*') {
            star = ++p;
            ss = s;
            continue;
        }
        if (*p == '?') {
            p++;
            s++;
            continue;
        }
        {
            const char *pc = p;
            if (*pc == '\\' && pc[1])
                pc++;
            if (*pc && (fold ? tolower((unsigned char)*pc) ==
                                   tolower((unsigned char)*s)
                             : *pc == *s)) {
                p = pc + 1;
                s++;
                continue;
            }
        }
        if (star == NULL)
            return 0;
        p = star;
        s = ++ss;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static const char *pl_strcasestr(const char *h, const char *n)
{
    size_t nl = strlen(n);

    for (; *h; h++)
        if (strncasecmp(h, n, nl) == 0)
            return h;
    return nl == 0 ? h : NULL;
}

/* i;ascii-numeric: the leading digits as a number; none is "infinity". */
static int pl_numcmp(const char *a, const char *b)
{
    int ia = isdigit((unsigned char)*a), ib = isdigit((unsigned char)*b);

    if (!ia || !ib)
        return ia == ib ? 0 : ia ? -1 : 1;
    while (*a == '0' && isdigit((unsigned char)a[1]))
        a++;
    while (*b == '0' && isdigit((unsigned char)b[1]))
        b++;
    {
        size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
        if (la != lb)
            return la < lb ? -1 : 1;
        int c = strncmp(a, b, la);
        return c < 0 ? -1 : c > 0;
    }
}

static int pl_relop(int rel, int c)
{
    switch (rel) {
    case R_GT:
        return c > 0;
    case R_GE:
        return c >= 0;
    case R_LT:
        return c < 0;
    case R_LE:
        return c <= 0;
    case R_EQ:
        return c == 0;
    default:
        return c != 0;
    }
}

static int pl_cmp(int cmp, const char *a, const char *b)
{
    int c = cmp == C_NUMERIC ? pl_numcmp(a, b)
            : cmp == C_OCTET ? strcmp(a, b)
                             : strcasecmp(a, b);
    return c < 0 ? -1 : c > 0;
}

/* Does `value` match key `k` under the node's comparator and match type? */
static int pl_match1(const pl_node *n, const char *value, const char *k)
{
    int fold = n->cmp != C_OCTET;

    switch (n->match) {
    case M_CONTAINS:
        return fold ? pl_strcasestr(value, k) != NULL
                    : strstr(value, k) != NULL;
    case M_MATCHES:
        return pl_glob(value, k, fold);
    case M_VALUE:
        return pl_relop(n->rel, pl_cmp(n->cmp, value, k));
    default:
        return pl_cmp(n->cmp, value, k) == 0;
    }
}

static int pl_match_keys(pl_run *x, const pl_node *n, const char *value)
{
    char buf[PLANG_MAX_VALUE];

    for (size_t i = 0; i < n->b.n; i++)
        if (pl_match1(n, value, pl_expand(x, n->b.v[i], buf)))
            return 1;
    return 0;
}

static int pl_count_match(pl_run *x, const pl_node *n, size_t count)
{
    char num[32], buf[PLANG_MAX_VALUE];

    snprintf(num, sizeof(num), "%zu", count);
    for (size_t i = 0; i < n->b.n; i++)
        if (pl_relop(n->rel, pl_numcmp(num, pl_expand(x, n->b.v[i], buf))))
            return 1;
    return 0;
}

/* One address out of a header value: the part inside <> if there is one,
 * else the trimmed text.  `part` selects what is compared. */
static void pl_addr_part(const char *a, size_t len, int part, char *out,
                         size_t outlen)
{
    const char *lt = memchr(a, '<', len), *at, *plus;
    size_t n;

    if (lt) {
        const char *gt = memchr(lt, '>', len - (size_t)(lt - a));
        if (gt) {
            len = (size_t)(gt - lt - 1);
            a = lt + 1;
        }
    }
    while (len && isspace((unsigned char)*a))
        a++, len--;
    while (len && isspace((unsigned char)a[len - 1]))
        len--;
    at = NULL;
    for (size_t i = len; i > 0; i--)
        if (a[i - 1] == '@') {
            at = a + i - 1;
            break;
        }
    switch (part) {
    case P_LOCAL:
    case P_USER:
    case P_DETAIL:
        if (at)
            len = (size_t)(at - a);
        plus = memchr(a, '+', len);
        if (part == P_USER && plus)
            len = (size_t)(plus - a);
        else if (part == P_DETAIL) {
            if (plus == NULL) {
                len = 0;
            } else {
                len -= (size_t)(plus + 1 - a);
                a = plus + 1;
            }
        }
        break;
    case P_DOMAIN:
        if (at) {
            len -= (size_t)(at + 1 - a);
            a = at + 1;
        } else {
            len = 0;
        }
        break;
    }
    n = len < outlen - 1 ? len : outlen - 1;
    memcpy(out, a, n);
    out[n] = '\0';
}

/* Calls match/count on each address of a header value (comma separated
 * outside quotes and angle brackets). */
static int pl_each_addr(pl_run *x, const pl_node *n, const char *v,
                        size_t *count)
{
    char one[PLANG_MAX_VALUE];
    int quote = 0, angle = 0;
    const char *start = v;

    for (const char *p = v;; p++) {
        if (*p == '"')
            quote = !quote;
        else if (*p == '<' && !quote)
            angle = 1;
        else if (*p == '>' && !quote)
            angle = 0;
        if (*p == '\0' || (*p == ',' && !quote && !angle)) {
            size_t len = (size_t)(p - start);
            if (len > 0) {
                pl_addr_part(start, len, n->part, one, sizeof(one));
                (*count)++;
                if (n->match != M_COUNT && pl_match_keys(x, n, one))
                    return 1;
            }
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    return 0;
}

static int pl_test_header(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE];
    size_t count = 0;

    for (size_t i = 0; i < n->a.n; i++) {
        const char *name = pl_expand(x, n->a.v[i], buf), *v;
        char nm[256];
        snprintf(nm, sizeof(nm), "%s", name);
        for (size_t k = 0;
             k < PL_MAX_FIELDS && (v = x->f->header(x->f->arg, nm, k)) != NULL;
             k++) {
            if (n->kind == T_ADDRESS) {
                if (pl_each_addr(x, n, v, &count))
                    return 1;
            } else {
                count++;
                if (n->match != M_COUNT && pl_match_keys(x, n, v))
                    return 1;
            }
        }
    }
    return n->match == M_COUNT && pl_count_match(x, n, count);
}

static int pl_test_envelope(pl_run *x, const pl_node *n)
{
    size_t count = 0;

    for (size_t i = 0; i < n->a.n; i++) {
        if (strcasecmp(n->a.v[i], "from") == 0) {
            char one[PLANG_MAX_VALUE];
            pl_addr_part(x->f->sender, strlen(x->f->sender), n->part, one,
                         sizeof(one));
            count++;
            if (n->match != M_COUNT && pl_match_keys(x, n, one))
                return 1;
            continue;
        }
        for (size_t r = 0; r < x->f->nrcpt; r++) {
            const char *a = x->f->rcpt(x->f->arg, r);
            char one[PLANG_MAX_VALUE];
            if (a == NULL)
                continue;
            pl_addr_part(a, strlen(a), n->part, one, sizeof(one));
            count++;
            if (n->match != M_COUNT && pl_match_keys(x, n, one))
                return 1;
        }
    }
    return n->match == M_COUNT && pl_count_match(x, n, count);
}

static int pl_test_score(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE];
    double s = x->f->score;

    if (n->mods)
        return pl_relop(n->rel, s > (double)n->num   ? 1
                                : s < (double)n->num ? -1
                                                     : 0);
    for (size_t i = 0; i < n->b.n; i++) {
        const char *k = pl_expand(x, n->b.v[i], buf);
        char *e;
        double t = strtod(k, &e);
        if (e == k) /* a variable that is not a number: no match */
            continue;
        if (pl_relop(n->rel, s > t ? 1 : s < t ? -1 : 0))
            return 1;
    }
    return 0;
}

static int pl_test_symbol(pl_run *x, const pl_node *n)
{
    size_t count = 0;

    for (size_t i = 0; i < x->f->nsym; i++) {
        double sc;
        const char *name = x->f->symbol(x->f->arg, i, &sc);
        if (name == NULL)
            continue;
        count++;
        if (n->match != M_COUNT && pl_match_keys(x, n, name))
            return 1;
    }
    return n->match == M_COUNT && pl_count_match(x, n, count);
}

static int pl_is_internal(pl_run *x)
{
    for (size_t i = 0; i < x->s->ninternal; i++)
        if (plang_net_contains(&x->s->internal[i], x->f->client_addr))
            return 1;
    return 0;
}

static int pl_test_client(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE];
    plang_net net;

    if (n->match != M_CIDR)
        return pl_match_keys(x, n, x->f->client_addr);
    for (size_t i = 0; i < n->b.n; i++)
        if (plang_net_parse(pl_expand(x, n->b.v[i], buf), &net) == 0 &&
            plang_net_contains(&net, x->f->client_addr))
            return 1;
    return 0;
}

static int pl_test(pl_run *x, const pl_node *n)
{
    size_t i;

    switch (n->kind) {
    case T_TRUE:
        return 1;
    case T_FALSE:
        return 0;
    case T_NOT:
        return !pl_test(x, n->tests[0]);
    case T_ALLOF:
        for (i = 0; i < n->ntests; i++)
            if (!pl_test(x, n->tests[i]))
                return 0;
        return 1;
    case T_ANYOF:
        for (i = 0; i < n->ntests; i++)
            if (pl_test(x, n->tests[i]))
                return 1;
        return 0;
    case T_HEADER:
    case T_ADDRESS:
        return pl_test_header(x, n);
    case T_ENVELOPE:
        return pl_test_envelope(x, n);
    case T_EXISTS:
        for (i = 0; i < n->b.n; i++)
            if (x->f->header(x->f->arg, n->b.v[i], 0) == NULL)
                return 0;
        return 1;
    case T_SIZE:
        return n->rel == R_GT ? x->f->size > (size_t)n->num
                              : x->f->size < (size_t)n->num;
    case T_SCORE:
        return pl_test_score(x, n);
    case T_SYMBOL:
        return pl_test_symbol(x, n);
    case T_LIST:
        for (i = 0; i < n->b.n; i++)
            if (x->f->listed && x->f->listed(x->f->arg, n->b.v[i]) == 1)
                return 1;
        return 0;
    case T_CLIENT:
        return pl_test_client(x, n);
    case T_VALIDNOTIFY:
        for (i = 0; i < n->b.n; i++) {
            char buf[PLANG_MAX_VALUE], err[8];
            plang_notify t;
            int ok;
            memset(&t, 0, sizeof(t));
            ok = plang_mailto(pl_expand(x, n->b.v[i], buf), &t, err,
                              sizeof(err)) == 0;
            plang_notify_free(&t);
            if (!ok)
                return 0;
        }
        return 1;
    case T_DIRECTION: {
        const char *dir = pl_is_internal(x) ? "outbound" : "inbound";
        for (i = 0; i < n->b.n; i++)
            if (strcmp(n->b.v[i], dir) == 0)
                return 1;
        return 0;
    }
    }
    return 0;
}

static void pl_set(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE], out[PLANG_MAX_VALUE];
    const char *v = pl_expand(x, n->b.v[0], buf);
    size_t len = strnlen(v, PLANG_MAX_VALUE - 1), o = 0;

    for (size_t i = 0; i < len && o + 2 < sizeof(out); i++) {
        char ch = v[i];
        if (n->mods & 1)
            ch = (char)tolower((unsigned char)ch);
        if (n->mods & 2)
            ch = (char)toupper((unsigned char)ch);
        if (i == 0 && (n->mods & 4))
            ch = (char)tolower((unsigned char)ch);
        if (i == 0 && (n->mods & 8))
            ch = (char)toupper((unsigned char)ch);
        if ((n->mods & 16) && (ch == '*' || ch == '?' || ch == '\\'))
            out[o++] = '\\';
        out[o++] = ch;
    }
    out[o] = '\0';
    if (n->mods & 32)
        snprintf(out, sizeof(out), "%zu", o);
    pl_var_set(x, n->a.v[0], strlen(n->a.v[0]), out);
}

static void pl_delheader(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE];
    const char *name = pl_expand(x, n->a.v[0], buf), *v;
    char nm[256];
    size_t hits[64], nh = 0, k, total = 0;

    snprintf(nm, sizeof(nm), "%s", name);
    for (k = 0; k < PL_MAX_FIELDS && x->f->header(x->f->arg, nm, k); k++)
        total++;
    for (k = 0; k < total && nh < sizeof(hits) / sizeof(hits[0]); k++) {
        size_t pos = n->last ? total - 1 - k : k;
        if (n->num && (long long)k + 1 != n->num)
            continue;
        v = x->f->header(x->f->arg, nm, pos);
        if (v && (n->b.n == 0 || pl_match_keys(x, n, v)))
            hits[nh++] = pos;
    }
    /* highest first: every later nth still names the same field */
    for (size_t i = 0; i < nh; i++)
        for (size_t j = i + 1; j < nh; j++)
            if (hits[j] > hits[i]) {
                size_t t = hits[i];
                hits[i] = hits[j];
                hits[j] = t;
            }
    for (size_t i = 0; i < nh; i++)
        pl_edit(x, PLANG_EDIT_DELETE, nm, NULL, hits[i]);
    pl_trace(x, n->line, "deleteheader \"%s\" (%zu field%s)", nm, nh,
             nh == 1 ? "" : "s");
}

/* A run-time error: execution ends, the implicit keep is taken. */
static void pl_rt_error(pl_run *x, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pl_rt_error(pl_run *x, int line, const char *fmt, ...)
{
    va_list ap;

    if (x->r->error[0] == '\0') {
        int n = snprintf(x->r->error, sizeof(x->r->error), "line %d: ", line);
        va_start(ap, fmt);
        vsnprintf(x->r->error + n, sizeof(x->r->error) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    pl_trace(x, line, "run-time error: %s; implicit keep", x->r->error);
    x->stopped = 1;
}

static void pl_redirect(pl_run *x, const pl_node *n)
{
    char buf[PLANG_MAX_VALUE];
    const char *a = pl_expand(x, n->b.v[0], buf);
    plang_result *r = x->r;
    char **nv;

    if (!plang_addr_ok(a)) {
        pl_rt_error(x, n->line, "redirect to an invalid address \"%.200s\"", a);
        return;
    }
    if (!n->copy)
        x->redirect_cancels = 1;
    pl_trace(x, n->line, "redirect%s \"%s\"", n->copy ? " :copy" : "", a);
    for (size_t i = 0; i < r->nredirects; i++)
        if (strcasecmp(r->redirects[i], a) == 0)
            return; /* RFC 5228 2.10.3: once per address */
    if (r->nredirects >= PLANG_MAX_REDIRECTS) {
        pl_rt_error(x, n->line, "more than %d redirects", PLANG_MAX_REDIRECTS);
        return;
    }
    if ((nv = realloc(r->redirects, (r->nredirects + 1) * sizeof(*nv))) ==
        NULL) {
        x->oom = 1;
        return;
    }
    r->redirects = nv;
    if ((r->redirects[r->nredirects] = strdup(a)) == NULL) {
        x->oom = 1;
        return;
    }
    r->nredirects++;
}

/* RFC 5436: no notification about a message that is auto-submitted. */
static int pl_auto_submitted(pl_run *x)
{
    const char *v = x->f->header(x->f->arg, "Auto-Submitted", 0);

    if (v == NULL)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    return !(strncasecmp(v, "no", 2) == 0 &&
             (v[2] == '\0' || v[2] == ';' || v[2] == ' ' || v[2] == '\t' ||
              v[2] == '('));
}

static void pl_notify(pl_run *x, const pl_node *n)
{
    char b1[PLANG_MAX_VALUE], b2[PLANG_MAX_VALUE], b3[PLANG_MAX_VALUE],
        err[160];
    const char *method = pl_expand(x, n->a.v[0], b1);
    const char *msg = n->b.n ? pl_expand(x, n->b.v[0], b2) : "";
    const char *from = n->c.n ? pl_expand(x, n->c.v[0], b3) : "";
    plang_result *r = x->r;
    plang_notify t, *nn;

    if (pl_auto_submitted(x)) {
        pl_trace(x, n->line, "notify skipped: the message is auto-submitted");
        return;
    }
    memset(&t, 0, sizeof(t));
    if (plang_mailto(method, &t, err, sizeof(err)) < 0) {
        plang_notify_free(&t);
        pl_rt_error(x, n->line, "notify: %s", err);
        return;
    }
    t.importance = 2;
    if (n->d.n) {
        char ib[PLANG_MAX_VALUE];
        const char *imp = pl_expand(x, n->d.v[0], ib);
        if (imp[0] >= '1' && imp[0] <= '3' && imp[1] == '\0')
            t.importance = imp[0] - '0';
    }
    if (*from) { /* "Name <addr>" or addr */
        const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        char addr[300];
        if (lt && gt && gt > lt)
            snprintf(addr, sizeof(addr), "%.*s", (int)(gt - lt - 1), lt + 1);
        else
            snprintf(addr, sizeof(addr), "%s", from);
        if (plang_addr_ok(addr))
            t.from = strdup(addr);
        else
            pl_trace(x, n->line,
                     "notify: :from \"%.200s\" is not an "
                     "address; the default sender is used",
                     from);
    }
    t.message = strdup(msg);
    if (t.from == NULL)
        t.from = strdup("");
    if (t.message == NULL || t.from == NULL) {
        plang_notify_free(&t);
        x->oom = 1;
        return;
    }
    for (size_t i = 0; i < r->nnotifies; i++)
        if (strcmp(r->notifies[i].method, t.method) == 0 &&
            strcmp(r->notifies[i].message, t.message) == 0) {
            plang_notify_free(&t); /* the same one twice: once */
            return;
        }
    if (r->nnotifies >= PLANG_MAX_NOTIFY) {
        plang_notify_free(&t);
        pl_trace(x, n->line, "notify: more than %d; not sent",
                 PLANG_MAX_NOTIFY);
        return;
    }
    nn = realloc(r->notifies, (r->nnotifies + 1) * sizeof(*nn));
    if (nn == NULL) {
        plang_notify_free(&t);
        x->oom = 1;
        return;
    }
    r->notifies = nn;
    r->notifies[r->nnotifies++] = t;
    pl_trace(x, n->line, "notify \"%.200s\" \"%.200s\"", t.method, t.message);
}

static void pl_decide(pl_run *x, const pl_node *n, plang_action a)
{
    char buf[PLANG_MAX_VALUE];
    const char *text = n->b.n ? pl_expand(x, n->b.v[0], buf) : "";

    x->r->action = a;
    snprintf(x->r->text, sizeof(x->r->text), "%s", text);
    if (*text)
        pl_trace(x, n->line, "%s \"%s\"", n->name, x->r->text);
    else
        pl_trace(x, n->line, "%s", n->name);
}

static void pl_exec(pl_run *x, const pl_node *n)
{
    char b1[PLANG_MAX_VALUE], b2[PLANG_MAX_VALUE];

    for (; n && !x->stopped && !x->oom; n = n->next) {
        switch (n->kind) {
        case K_REQUIRE:
            break;
        case K_IF: {
            const pl_node *branch = n;
            while (branch) {
                if (branch->ntests == 0 || pl_test(x, branch->tests[0])) {
                    pl_trace(x, branch->line, "%s matched", branch->name);
                    pl_exec(x, branch->block);
                    break;
                }
                branch = branch->els;
            }
            break;
        }
        case K_STOP:
            pl_trace(x, n->line, "stop");
            x->stopped = 1;
            break;
        case K_KEEP:
            x->r->explicit_keep = 1;
            pl_decide(x, n, PLANG_KEEP);
            break;
        case K_DISCARD:
            pl_decide(x, n, PLANG_DISCARD);
            break;
        case K_REJECT:
            pl_decide(x, n, PLANG_REJECT);
            break;
        case K_TEMPFAIL:
            pl_decide(x, n, PLANG_TEMPFAIL);
            break;
        case K_QUARANTINE:
            pl_decide(x, n, PLANG_QUARANTINE);
            break;
        case K_TAGSUBJECT: {
            const char *v = pl_expand(x, n->b.v[0], b1);
            pl_edit(x, PLANG_EDIT_SUBJECT, "Subject", v, 0);
            pl_trace(x, n->line, "tagsubject \"%s\"", v);
            break;
        }
        case K_ADDHEADER: {
            const char *nm = pl_expand(x, n->a.v[0], b1);
            const char *v = pl_expand(x, n->b.v[0], b2);
            pl_edit(x, n->last ? PLANG_EDIT_ADD : PLANG_EDIT_INSERT, nm, v, 0);
            pl_trace(x, n->line, "addheader \"%s: %.200s\"", nm, v);
            break;
        }
        case K_DELHEADER:
            pl_delheader(x, n);
            break;
        case K_SET:
            pl_set(x, n);
            break;
        case K_NOTIFY:
            pl_notify(x, n);
            break;
        case K_REDIRECT:
            pl_redirect(x, n);
            break;
        }
    }
}

/* Read-only facts as variables: score, symbols (the top five, highest
 * first), direction; then the operator's presets. */
static void pl_preset(pl_run *x)
{
    char buf[PLANG_MAX_VALUE];
    size_t n = 0, used[5], nused = 0;

    snprintf(buf, sizeof(buf), "%.2f", x->f->score);
    pl_var_set(x, "score", 5, buf);
    buf[0] = '\0';
    while (nused < 5) {
        size_t best = (size_t)-1;
        double bs = 0;
        for (size_t i = 0; i < x->f->nsym && i < 100000; i++) {
            double sc;
            int dup = 0;
            if (x->f->symbol(x->f->arg, i, &sc) == NULL)
                continue;
            for (size_t k = 0; k < nused; k++)
                dup |= used[k] == i;
            if (!dup && (best == (size_t)-1 || sc > bs)) {
                best = i;
                bs = sc;
            }
        }
        if (best == (size_t)-1)
            break;
        used[nused++] = best;
        {
            double sc;
            const char *name = x->f->symbol(x->f->arg, best, &sc);
            int w = snprintf(buf + n, sizeof(buf) - n, "%s%s(%.2f)",
                             n ? " " : "", name, sc);
            if (w < 0 || (size_t)w >= sizeof(buf) - n)
                break;
            n += (size_t)w;
        }
    }
    pl_var_set(x, "symbols", 7, buf);
    pl_var_set(x, "direction", 9, pl_is_internal(x) ? "outbound" : "inbound");
    for (size_t i = 0; i < x->s->nvars; i++) {
        const char *eq = strchr(x->s->vars[i], '=');
        pl_var_set(x, x->s->vars[i], (size_t)(eq - x->s->vars[i]), eq + 1);
    }
}

static void pl_drop_actions(plang_result *r)
{
    for (size_t i = 0; i < r->nredirects; i++)
        free(r->redirects[i]);
    free(r->redirects);
    r->redirects = NULL;
    r->nredirects = 0;
    for (size_t i = 0; i < r->nnotifies; i++)
        plang_notify_free(&r->notifies[i]);
    free(r->notifies);
    r->notifies = NULL;
    r->nnotifies = 0;
}

/* The actions together: implicit keep, redirect, discard (RFC 5228 2.10). */
static void pl_finish(pl_run *x)
{
    plang_result *r = x->r;

    if (r->error[0]) {
        pl_drop_actions(r);
        r->action = PLANG_KEEP;
        r->text[0] = '\0';
        return;
    }
    if (r->nredirects == 0)
        return;
    switch (r->action) {
    case PLANG_REJECT:
    case PLANG_TEMPFAIL:
        pl_trace(x, 0, "redirect not done: the message is refused");
        for (size_t i = 0; i < r->nredirects; i++)
            free(r->redirects[i]);
        free(r->redirects);
        r->redirects = NULL;
        r->nredirects = 0;
        break;
    case PLANG_DISCARD: /* discard only cancels the implicit keep */
        r->action = PLANG_REDIRECT;
        r->keep_cancelled = 1;
        break;
    default:
        r->keep_cancelled = x->redirect_cancels && !r->explicit_keep;
        if (r->action == PLANG_KEEP && r->keep_cancelled)
            r->action = PLANG_REDIRECT;
        break;
    }
}

int plang_eval(const plang_script *s, const plang_facts *f, plang_result *r)
{
    pl_run x;

    memset(r, 0, sizeof(*r));
    memset(&x, 0, sizeof(x));
    x.s = s;
    x.f = f;
    x.r = r;
    pl_preset(&x);
    pl_exec(&x, s->first);
    pl_finish(&x);
    for (size_t i = 0; i < x.nv; i++) {
        free(x.vname[i]);
        free(x.vval[i]);
    }
    return x.oom ? -1 : 0;
}

void plang_result_free(plang_result *r)
{
    for (size_t i = 0; i < r->nedits; i++) {
        free(r->edits[i].name);
        free(r->edits[i].value);
    }
    free(r->edits);
    for (size_t i = 0; i < r->ntrace; i++)
        free(r->trace[i]);
    free(r->trace);
    pl_drop_actions(r);
    memset(r, 0, sizeof(*r));
}

const char *plang_action_name(plang_action a)
{
    static const char *const names[] = {"keep",     "discard",    "reject",
                                        "tempfail", "quarantine", "redirect"};
    return (unsigned)a < 6 ? names[a] : "?";
}

/* ------------------------------------------------------------ mailto */

int plang_addr_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;
    const char *at = a ? strrchr(a, '@') : NULL;

    if (n == 0 || n > 254 || at == NULL || at == a || at[1] == '\0')
        return 0;
    for (; *a; a++) {
        unsigned char ch = (unsigned char)*a;
        if (ch <= 32 || ch == 127 || ch == '<' || ch == '>' || ch == ',' ||
            ch == '"' || ch == '\\')
            return 0;
    }
    return 1;
}

static int pl_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into a new string; NULL if bad or it holds NUL. */
static char *pl_pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;

    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n) {
                free(o);
                return NULL;
            }
            h = pl_hex((unsigned char)s[i + 1]);
            l = pl_hex((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(o);
                return NULL;
            }
            o[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

static int pl_mailto_addrs(plang_notify *nt, const char *s, size_t n, char *err,
                           size_t errlen)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;
        char *a;
        while (j < n && s[j] != ',')
            j++;
        if (j > i) {
            if ((a = pl_pct_decode(s + i, j - i)) == NULL) {
                snprintf(err, errlen, "bad %%-escape in the mailto URI");
                return -1;
            }
            if (!plang_addr_ok(a)) {
                snprintf(err, errlen, "\"%.100s\" is not an address", a);
                free(a);
                return -1;
            }
            if (nt->nrcpts >= PLANG_MAX_NOTIFY_RCPTS) {
                snprintf(err, errlen, "more than %d addresses",
                         PLANG_MAX_NOTIFY_RCPTS);
                free(a);
                return -1;
            }
            nt->rcpts[nt->nrcpts++] = a;
        }
        i = j + 1;
    }
    return 0;
}

int plang_mailto(const char *uri, plang_notify *nt, char *err, size_t errlen)
{
    const char *p, *q;
    size_t len;

    if (strncasecmp(uri, "mailto:", 7) != 0) {
        snprintf(err, errlen,
                 "\"%.60s\": only the mailto notification method is "
                 "supported",
                 uri);
        return -1;
    }
    nt->rcpts = calloc(PLANG_MAX_NOTIFY_RCPTS, sizeof(char *));
    nt->method = strdup(uri);
    nt->subject = strdup("");
    nt->body = strdup("");
    if (nt->rcpts == NULL || nt->method == NULL || nt->subject == NULL ||
        nt->body == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p = uri + 7;
    q = strchr(p, '?');
    len = q ? (size_t)(q - p) : strlen(p);
    if (pl_mailto_addrs(nt, p, len, err, errlen) < 0)
        return -1;
    for (p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&'), *eq;
        size_t fl = amp ? (size_t)(amp - p) : strlen(p), nl;
        char *v;
        eq = memchr(p, '=', fl);
        if (eq == NULL) {
            snprintf(err, errlen, "hfield without '=' in the mailto URI");
            return -1;
        }
        nl = (size_t)(eq - p);
        if (nl == 2 && strncasecmp(p, "to", 2) == 0) {
            if (pl_mailto_addrs(nt, eq + 1, fl - nl - 1, err, errlen) < 0)
                return -1;
        } else if ((nl == 7 && strncasecmp(p, "subject", 7) == 0) ||
                   (nl == 4 && strncasecmp(p, "body", 4) == 0)) {
            if ((v = pl_pct_decode(eq + 1, fl - nl - 1)) == NULL) {
                snprintf(err, errlen, "bad %%-escape in the mailto URI");
                return -1;
            }
            if (nl == 4) {
                free(nt->body);
                nt->body = v;
            } else {
                free(nt->subject);
                nt->subject = v;
            }
        } /* other hfields (cc, from, ...) are ignored: RFC 5436 2.7 */
        p = amp ? amp + 1 : NULL;
    }
    if (nt->nrcpts == 0) {
        snprintf(err, errlen, "the mailto URI has no address");
        return -1;
    }
    return 0;
}

void plang_notify_free(plang_notify *n)
{
    for (size_t i = 0; n->rcpts && i < n->nrcpts; i++)
        free(n->rcpts[i]);
    free(n->rcpts);
    free(n->method);
    free(n->subject);
    free(n->body);
    free(n->from);
    free(n->message);
    memset(n, 0, sizeof(*n));
}
