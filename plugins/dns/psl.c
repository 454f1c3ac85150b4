/*
 * psl.c - Public Suffix List matcher.  See psl.h.
 *
 * The rules sit in one open-addressing hash set keyed by the rule text
 * without its `!` or `*.` prefix, with a kind per key (a key can be both
 * a normal rule and a wildcard's base).  A lookup walks the name's
 * suffixes from the longest: the first exception, exact or wildcard hit
 * is the longest public suffix, which is what the list's algorithm asks.
 */
#include "psl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PSL_EXACT = 1, PSL_WILD = 2, PSL_EXCEPT = 4 };

typedef struct psl_slot {
    char *key;
    unsigned kinds;
} psl_slot;

struct psl {
    psl_slot *slots;
    size_t nslots; /* power of two */
    size_t count;
};

static unsigned psl_hash(const char *s, size_t n)
{
    unsigned h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static psl_slot *psl_find(const psl *p, const char *key, size_t n)
{
    size_t i = psl_hash(key, n) & (p->nslots - 1);

    while (p->slots[i].key) {
        if (strlen(p->slots[i].key) == n &&
            memcmp(p->slots[i].key, key, n) == 0)
            return &p->slots[i];
        i = (i + 1) & (p->nslots - 1);
    }
    return &p->slots[i];
}

static int psl_grow(psl *p)
{
    psl old = *p;
    size_t i;

    p->nslots = old.nslots ? old.nslots * 2 : 1024;
    if ((p->slots = calloc(p->nslots, sizeof(*p->slots))) == NULL) {
        *p = old;
        return -1;
    }
    for (i = 0; i < old.nslots; i++) {
        if (old.slots[i].key) {
            psl_slot *s =
                psl_find(p, old.slots[i].key, strlen(old.slots[i].key));
            *s = old.slots[i];
        }
    }
    free(old.slots);
    return 0;
}

static int psl_add(psl *p, const char *rule)
{
    unsigned kind = PSL_EXACT;
    psl_slot *s;
    size_t n;

    if (rule[0] == '!') {
        kind = PSL_EXCEPT;
        rule++;
    } else if (rule[0] == '*' && rule[1] == '.') {
        kind = PSL_WILD;
        rule += 2;
    } else if (rule[0] == '*' && rule[1] == '\0') {
        return 0; /* the implicit default rule */
    }
    n = strlen(rule);
    if (n == 0 || n > 253)
        return 0;
    if ((p->count + 1) * 2 > p->nslots && psl_grow(p) < 0)
        return -1;
    s = psl_find(p, rule, n);
    if (s->key == NULL) {
        if ((s->key = strdup(rule)) == NULL)
            return -1;
        for (char *c = s->key; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        p->count++;
    }
    s->kinds |= kind;
    return 0;
}

/* One line of the list: the rule is its first word; `//` comments. */
static int psl_line(psl *p, char *line)
{
    char *s = line, *e;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || (s[0] == '/' && s[1] == '/'))
        return 0;
    for (e = s; *e && *e != ' ' && *e != '\t' && *e != '\r' && *e != '\n'; e++)
        ;
    *e = '\0';
    return psl_add(p, s);
}

psl *psl_from_text(const char *text)
{
    psl *p = calloc(1, sizeof(*p));
    char *copy, *line, *save = NULL;

    if (p == NULL || psl_grow(p) < 0 || (copy = strdup(text)) == NULL) {
        psl_free(p);
        return NULL;
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (psl_line(p, line) < 0) {
            free(copy);
            psl_free(p);
            return NULL;
        }
    }
    free(copy);
    return p;
}

psl *psl_load(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    psl *p;
    char line[1024];

    if (fp == NULL) {
        snprintf(err, errlen,
                 "%s: cannot open (install the publicsuffix "
                 "package, or name the file with "
                 "public_suffix_list)",
                 path);
        return NULL;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || psl_grow(p) < 0) {
        fclose(fp);
        psl_free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    while (fgets(line, sizeof(line), fp)) {
        if (psl_line(p, line) < 0) {
            fclose(fp);
            psl_free(p);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    fclose(fp);
    if (p->count < 10) {
        snprintf(err, errlen, "%s: only %zu rules: not a public suffix list",
                 path, p->count);
        psl_free(p);
        return NULL;
    }
    return p;
}

static unsigned psl_kinds(const psl *p, const char *key, size_t n)
{
    const psl_slot *s = psl_find(p, key, n);
    return s->key ? s->kinds : 0;
}

int psl_registered(const psl *p, const char *domain, char *out, size_t outlen)
{
    char d[256];
    size_t n = strlen(domain), starts[128], nl = 0, i, sfx;

    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)domain[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return -1;
        d[i] = (char)tolower(c);
    }
    d[n] = '\0';
    /* label starts; empty labels make it no host name */
    for (i = 0; i < n; i++) {
        if (i == 0 || d[i - 1] == '.') {
            if (d[i] == '.' || nl >= 127)
                return -1;
            starts[nl++] = i;
        }
    }
    if (d[n - 1] == '.')
        return -1;
    /* the longest public suffix: label index sfx where it starts */
    sfx = nl - 1; /* default rule "*": the last label */
    for (i = 0; i < nl; i++) {
        const char *cand = d + starts[i];
        size_t cl = n - starts[i];
        unsigned k = psl_kinds(p, cand, cl);
        if (k & PSL_EXCEPT) {
            sfx = i + 1; /* the exception's parent is the suffix */
            break;
        }
        if (k & PSL_EXACT) {
            sfx = i;
            break;
        }
        if (i + 1 < nl &&
            (psl_kinds(p, d + starts[i + 1], n - starts[i + 1]) & PSL_WILD)) {
            sfx = i;
            break;
        }
    }
    if (sfx == 0 || sfx >= nl + 1)
        return -1; /* the name is a public suffix itself */
    i = starts[sfx - 1];
    if (n - i + 1 > outlen)
        return -1;
    memcpy(out, d + i, n - i + 1);
    return 0;
}

size_t psl_rule_count(const psl *p)
{
    return p->count;
}

void psl_free(psl *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nslots; i++)
        free(p->slots[i].key);
    free(p->slots);
    free(p);
}
