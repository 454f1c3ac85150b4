/*
 * bayes_tok.c - the Bayes tokenizer: a parsed message in, a bounded set of
 * distinct 64-bit token hashes out.
 *
 * Tokens (the text form is what `sluice-bayes tokens` prints; only the
 * hash is kept):
 *   word            words of decoded text parts, ASCII lower-cased; HTML
 *                   is turned into text first (tags, comments, scripts and
 *                   styles dropped, entities decoded)
 *   a N b           OSB pair: word b with the word N before it (a), N up
 *                   to the window (default 1: plain bigrams, "a 1 b")
 *   U:WORD          a word written in capitals, as written
 *   skip:cN         a word too long to be one (first byte, length / 10)
 *   name:word       words of header `name` (Subject also gets OSB pairs)
 *   H:name          the header field is present
 *   mid:domain      Message-ID's domain
 *   rcvd:...        Received chain: host names (digit runs as #), their
 *                   domains, IPv4 /24s, keywords; rcvd:hops:N
 *   url:host        every URL's host and its parent domains; url:IP for a
 *                   numeric host, url:userinfo, url:pct for odd ones
 *   html:tag        HTML tag names used
 *   html:tag:attr   attribute names of each tag ("html:font:color"): how
 *                   the HTML was written says more than which campaign
 *                   wrote it (tokenizer version 2)
 *   ct: cs: att:    part types, charsets, attachment extensions
 *
 * Words are 2..40 bytes of letters, digits and non-ASCII bytes, with
 * ' - . _ @ & inside.  Pure numbers of more than 5 digits become "#N".
 *
 * Bounded: at most max_tokens distinct tokens (headers first, so a long
 * body cannot push them out) and max_text bytes of decoded text.
 *
 * SECURITY: input is attacker-controlled; every scan is bounded by the
 * lengths it was given, copies go through fixed buffers with checks.
 */
#include "bayes.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TOK_WORD_MAX 40
#define TOK_HDR_MAX 2048 /* bytes of one header value scanned */
#define TOK_OSB_MAX 4
#define TOK_ATTR_MAX 24 /* bytes of an HTML attribute name kept */
_Static_assert(TOK_OSB_MAX <= 9, "tok_osb writes the distance as one digit");

typedef struct tok_ctx {
    const bayes_tok_opts *o;
    bayes_toks *out;
    size_t text_left;
    int oom;
    int window;
    /* the last words, most recent first, for OSB pairs */
    char hist[TOK_OSB_MAX][TOK_WORD_MAX + 1];
    size_t nhist;
    /* HTML-to-text output */
    char *html;
    size_t html_len, html_cap;
} tok_ctx;

typedef void (*tok_word_fn)(tok_ctx *c, const char *w, size_t len,
                            const char *prefix, int osb);

/* ---------------------------------------------------------------- hash */

static uint64_t tok_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    while (n--) {
        h ^= *s++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* FNV-1a spreads poorly in the low bits the table indexes by: finish
 * with a 64-bit avalanche mix. */
static uint64_t tok_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x ? x : 1; /* 0 marks an empty slot */
}

uint64_t bayes_hash(const char *prefix, const void *word, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    if (prefix != NULL && *prefix != '\0') {
        h = tok_fnv(h, prefix, strlen(prefix));
        h = tok_fnv(h, ":", 1);
    }
    return tok_mix(tok_fnv(h, word, len));
}

/* ---------------------------------------------------------------- set */

/* The set starts small and doubles (most messages yield a few hundred
 * tokens; zeroing a set sized for max_tokens cost more than hashing). */
#define TOK_SET_MIN 1024

static int tok_set_init(bayes_toks *t, size_t max)
{
    memset(t, 0, sizeof(*t));
    t->set = calloc(TOK_SET_MIN, sizeof(*t->set));
    t->list = malloc(TOK_SET_MIN / 2 * sizeof(*t->list));
    if (t->set == NULL || t->list == NULL) {
        bayes_toks_free(t);
        return -1;
    }
    t->set_mask = TOK_SET_MIN - 1;
    t->max = max;
    return 0;
}

/* Double the set (and the list) when it is half full. */
static int tok_set_grow(bayes_toks *t)
{
    size_t cap = (t->set_mask + 1) * 2, i, j;
    uint64_t *set = calloc(cap, sizeof(*set));
    uint64_t *list = realloc(t->list, cap / 2 * sizeof(*list));

    if (set == NULL || list == NULL) {
        free(set);
        if (list != NULL)
            t->list = list;
        return -1;
    }
    t->list = list;
    for (i = 0; i < t->count; i++) {
        for (j = list[i] & (cap - 1); set[j] != 0; j = (j + 1) & (cap - 1))
            ;
        set[j] = list[i];
    }
    free(t->set);
    t->set = set;
    t->set_mask = cap - 1;
    return 0;
}

void bayes_toks_free(bayes_toks *t)
{
    free(t->set);
    free(t->list);
    memset(t, 0, sizeof(*t));
}

int bayes_toks_has(const bayes_toks *t, uint64_t h)
{
    size_t i;

    if (t->set == NULL)
        return 0;
    for (i = h & t->set_mask; t->set[i] != 0; i = (i + 1) & t->set_mask)
        if (t->set[i] == h)
            return 1;
    return 0;
}

static void tok_insert(tok_ctx *c, uint64_t h)
{
    bayes_toks *t = c->out;
    size_t i;

    for (i = h & t->set_mask; t->set[i] != 0; i = (i + 1) & t->set_mask)
        if (t->set[i] == h)
            return;
    if (t->count >= t->max) {
        t->truncated = 1;
        return;
    }
    if ((t->count + 1) * 2 > t->set_mask + 1) {
        if (tok_set_grow(t) < 0) {
            c->oom = 1;
            return;
        }
        for (i = h & t->set_mask; t->set[i] != 0; i = (i + 1) & t->set_mask)
            ;
    }
    t->set[i] = h;
    t->list[t->count++] = h;
}

static void tok_add(tok_ctx *c, const char *prefix, const char *w, size_t len)
{
    if (c->o->debug != NULL) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "%s%s%.*s", prefix ? prefix : "",
                         prefix && *prefix ? ":" : "", (int)len, w);
        if (n > 0)
            c->o->debug(c->o->debug_arg, buf,
                        (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    }
    tok_insert(c, bayes_hash(prefix, w, len));
}

/* ---------------------------------------------------------------- words */

static int tok_is_word(unsigned char ch)
{
    return isalnum(ch) || ch >= 0x80;
}

static int tok_is_inner(unsigned char ch)
{
    return ch == '\'' || ch == '-' || ch == '.' || ch == '_' || ch == '@' ||
           ch == '&';
}

/* Bytes of a UTF-8 separator at s (no-break space, general punctuation
 * such as typographic quotes and dashes), or 0: these would otherwise
 * glue words together as "letters". */
static size_t tok_utf8_sep(const unsigned char *s, size_t left)
{
    if (left >= 2 && s[0] == 0xC2 &&
        (s[1] == 0xA0 || s[1] == 0xAB || s[1] == 0xBB))
        return 2;
    if (left >= 3 && s[0] == 0xE2 && (s[1] == 0x80 || s[1] == 0x81))
        return 3;
    return 0;
}

/* Split s[0..len) into words and hand each to fn. */
static void tok_scan(tok_ctx *c, const char *s0, size_t len, const char *prefix,
                     int osb, tok_word_fn fn)
{
    const unsigned char *s = (const unsigned char *)s0;
    size_t i = 0, j, sep;

    while (i < len) {
        if ((sep = tok_utf8_sep(s + i, len - i)) > 0) {
            i += sep;
            continue;
        }
        if (!tok_is_word(s[i]) && s[i] != '$') {
            i++;
            continue;
        }
        for (j = i + 1; j < len; j++) {
            if (tok_utf8_sep(s + j, len - j) > 0)
                break;
            if (tok_is_word(s[j]))
                continue;
            if (tok_is_inner(s[j]) && j + 1 < len && tok_is_word(s[j + 1]))
                continue;
            break;
        }
        fn(c, s0 + i, j - i, prefix, osb);
        i = j;
    }
}

/* "PREVIOUS DISTANCE WORD", built by hand: snprintf() here was a third of
 * the tokenizer's time.  The bytes (and so the hashes) are the same. */
static void tok_osb(tok_ctx *c, const char *prefix, const char *w, size_t len)
{
    char buf[2 * TOK_WORD_MAX + 8];
    size_t d, n, hl;

    for (d = 0; d < c->nhist && d < (size_t)c->window; d++) {
        hl = strlen(c->hist[d]);
        if (hl + len + 3 >= sizeof(buf))
            continue;
        memcpy(buf, c->hist[d], hl);
        n = hl;
        buf[n++] = ' ';
        buf[n++] = (char)('1' + d); /* d < TOK_OSB_MAX <= 9 */
        buf[n++] = ' ';
        memcpy(buf + n, w, len);
        n += len;
        tok_add(c, prefix, buf, n);
    }
    memmove(c->hist[1], c->hist[0], sizeof(c->hist[0]) * (TOK_OSB_MAX - 1));
    memcpy(c->hist[0], w, len);
    c->hist[0][len] = '\0';
    if (c->nhist < TOK_OSB_MAX)
        c->nhist++;
}

static void tok_word(tok_ctx *c, const char *w, size_t len, const char *prefix,
                     int osb)
{
    char low[TOK_WORD_MAX + 1], tmp[32];
    size_t i, upper = 0, lower = 0, digits = 0;
    const char *at;

    if (len < 2)
        return;
    if (len > TOK_WORD_MAX) {
        snprintf(tmp, sizeof(tmp), "%c%zu",
                 isalnum((unsigned char)w[0]) ? tolower((unsigned char)w[0])
                                              : '?',
                 len / 10);
        tok_add(c, "skip", tmp, strlen(tmp));
        return;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)w[i];
        upper += isupper(ch) != 0;
        lower += islower(ch) != 0;
        digits += isdigit(ch) != 0;
        low[i] = (char)tolower(ch);
    }
    low[len] = '\0';
    if (digits == len && len > 5) {
        snprintf(tmp, sizeof(tmp), "#%zu", len);
        tok_add(c, prefix, tmp, strlen(tmp));
        return;
    }
    if (upper >= 3 && lower == 0)
        tok_add(c, "U", w, len);
    tok_add(c, prefix, low, len);
    /* an address also counts for its domain */
    if ((at = memchr(low, '@', len)) != NULL && at + 1 < low + len)
        tok_add(c, prefix, at, (size_t)(low + len - at));
    if (osb && c->window > 0)
        tok_osb(c, prefix, low, len);
}

static void tok_text(tok_ctx *c, const char *prefix, const char *s, size_t len,
                     int osb)
{
    c->nhist = 0;
    tok_scan(c, s, len, prefix, osb, tok_word);
}

/* ---------------------------------------------------------------- URLs */

static int tok_host_char(unsigned char ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '@' || ch == ':' ||
           ch == '_' || ch == '%' || ch >= 0x80;
}

static void tok_url_host(tok_ctx *c, const char *s, size_t len)
{
    char host[256];
    const char *at, *p;
    size_t n = 0, i, dots = 0, labels = 0;
    int numeric = 1;

    while (n < len && n < 255 && tok_host_char((unsigned char)s[n]))
        n++;
    if ((at = memrchr(s, '@', n)) != NULL) {
        tok_add(c, "url", "userinfo", 8);
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    if ((p = memchr(s, ':', n)) != NULL)
        n = (size_t)(p - s);
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0)
        return;
    if (memchr(s, '%', n) != NULL) {
        tok_add(c, "url", "pct", 3);
        return;
    }
    for (i = 0; i < n; i++) {
        host[i] = (char)tolower((unsigned char)s[i]);
        dots += host[i] == '.';
        if (!isdigit((unsigned char)host[i]) && host[i] != '.')
            numeric = 0;
    }
    host[n] = '\0';
    if (numeric) {
        tok_add(c, "url", "IP", 2);
        return;
    }
    tok_add(c, "url", host, n);
    /* parent domains, down to two labels */
    for (i = 0; i < n && dots > 1 && labels < 4; i++) {
        if (host[i] != '.')
            continue;
        dots--;
        labels++;
        tok_add(c, "url", host + i + 1, n - i - 1);
    }
}

/* Find http://, https:// and www. in s and tokenize their hosts. */
static void tok_urls(tok_ctx *c, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i + 4 < len; i++) {
        char ch = (char)tolower((unsigned char)s[i]);
        if (ch == 'h' && i + 7 < len && strncasecmp(s + i, "http", 4) == 0) {
            size_t j = i + 4;
            if (j < len && (s[j] == 's' || s[j] == 'S'))
                j++;
            if (j + 3 <= len && memcmp(s + j, "://", 3) == 0) {
                tok_url_host(c, s + j + 3, len - j - 3);
                i = j + 2;
            }
        } else if (ch == 'w' &&
                   (i == 0 || !tok_is_word((unsigned char)s[i - 1])) &&
                   strncasecmp(s + i, "www.", 4) == 0) {
            tok_url_host(c, s + i, len - i);
            i += 3;
        }
    }
}

/* ---------------------------------------------------------------- HTML */

static int tok_html_put(tok_ctx *c, const char *s, size_t n)
{
    if (c->html_len + n + 1 > c->html_cap) {
        size_t cap = c->html_cap ? c->html_cap : 4096;
        char *p;
        while (cap < c->html_len + n + 1)
            cap *= 2;
        if ((p = realloc(c->html, cap)) == NULL) {
            c->oom = 1;
            return -1;
        }
        c->html = p;
        c->html_cap = cap;
    }
    memcpy(c->html + c->html_len, s, n);
    c->html_len += n;
    return 0;
}

static size_t tok_utf8_encode(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the entity at s[0] == '&'; returns bytes consumed (1 if it is
 * not one: the '&' is then kept as text). */
static size_t tok_html_entity(tok_ctx *c, const char *s, size_t len)
{
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"amp", "&"},   {"lt", "<"},   {"gt", ">"},
                 {"quot", "\""}, {"apos", "'"}, {"nbsp", " "}};
    char name[12], out[4];
    size_t n = 0, i;
    unsigned long cp = 0;

    while (1 + n < len && n < sizeof(name) - 1 &&
           (isalnum((unsigned char)s[1 + n]) || s[1 + n] == '#'))
        name[n] = s[1 + n], n++;
    name[n] = '\0';
    if (n == 0) {
        tok_html_put(c, "&", 1);
        return 1;
    }
    if (name[0] == '#') {
        char *end;
        if (name[1] == 'x' || name[1] == 'X')
            cp = strtoul(name + 2, &end, 16);
        else
            cp = strtoul(name + 1, &end, 10);
        if (cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF))
            tok_html_put(c, out, tok_utf8_encode(cp, out));
    } else {
        for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
            if (strcasecmp(name, named[i].name) == 0)
                break;
        if (i == sizeof(named) / sizeof(named[0])) {
            tok_html_put(c, " ", 1); /* unknown entity: a separator */
        } else {
            tok_html_put(c, named[i].text, strlen(named[i].text));
        }
    }
    if (1 + n < len && s[1 + n] == ';')
        n++;
    return 1 + n;
}

/* The value of attribute `attr` in a tag's attribute text, or NULL. */
static const char *tok_html_attr(const char *a, size_t len, const char *attr,
                                 size_t *vlen)
{
    size_t al = strlen(attr), i, j;

    for (i = 0; i + al < len; i++) {
        /* attr is lower case: its first byte rules out most positions */
        if (tolower((unsigned char)a[i]) != attr[0] ||
            strncasecmp(a + i, attr, al) != 0 ||
            (i > 0 && isalnum((unsigned char)a[i - 1])))
            continue;
        j = i + al;
        while (j < len && isspace((unsigned char)a[j]))
            j++;
        if (j >= len || a[j] != '=')
            continue;
        j++;
        while (j < len && isspace((unsigned char)a[j]))
            j++;
        if (j < len && (a[j] == '"' || a[j] == '\'')) {
            const char *q = memchr(a + j + 1, a[j], len - j - 1);
            *vlen = q ? (size_t)(q - (a + j + 1)) : len - j - 1;
            return a + j + 1;
        }
        for (i = j; i < len && !isspace((unsigned char)a[i]); i++)
            ;
        *vlen = i - j;
        return a + j;
    }
    return NULL;
}

static int tok_html_inline(const char *name)
{
    static const char *const tags[] = {"a",     "b",    "i",  "u",
                                       "font",  "span", "em", "strong",
                                       "small", "big",  "s",  NULL};
    size_t i;

    for (i = 0; tags[i] != NULL; i++)
        if (strcmp(name, tags[i]) == 0)
            return 1;
    return 0;
}

/* "html:TAG:ATTR" for each attribute name in a tag's attribute text a
 * (values skipped, quoted or not). */
static void tok_html_attrs(tok_ctx *c, const char *tag, size_t tn,
                           const char *a, size_t len)
{
    char tok[16 + 1 + TOK_ATTR_MAX];
    size_t i = 0, n;

    memcpy(tok, tag, tn);
    tok[tn] = ':';
    while (i < len) {
        if (a[i] == '"' || a[i] == '\'') {
            const char *q = memchr(a + i + 1, a[i], len - i - 1);
            i = q ? (size_t)(q - a) + 1 : len;
            continue;
        }
        if (!isalpha((unsigned char)a[i]) ||
            (i == 0 || !isspace((unsigned char)a[i - 1]))) {
            i++;
            continue;
        }
        for (n = tn + 1; i < len && (isalnum((unsigned char)a[i]) ||
                                     a[i] == '-' || a[i] == '_' || a[i] == ':');
             i++)
            if (n < tn + 1 + TOK_ATTR_MAX)
                tok[n++] = (char)tolower((unsigned char)a[i]);
        tok_add(c, "html", tok, n);
        /* an unquoted value: skip to the next space */
        while (i < len && isspace((unsigned char)a[i]))
            i++;
        if (i < len && a[i] == '=') {
            for (i++; i < len && isspace((unsigned char)a[i]); i++)
                ;
            if (i < len && a[i] != '"' && a[i] != '\'')
                while (i < len && !isspace((unsigned char)a[i]))
                    i++;
        }
    }
}

/* Skip past "</name ... >" from s; returns the offset after it or len. */
static size_t tok_html_skip_to_close(const char *s, size_t len,
                                     const char *name)
{
    size_t nl = strlen(name), i;
    const char *gt;

    for (i = 0; i + 2 + nl <= len; i++) {
        if (s[i] == '<' && s[i + 1] == '/' &&
            strncasecmp(s + i + 2, name, nl) == 0) {
            gt = memchr(s + i, '>', len - i);
            return gt ? (size_t)(gt - s) + 1 : len;
        }
    }
    return len;
}

/* One tag at s[0] == '<'; returns bytes consumed. */
static size_t tok_html_tag(tok_ctx *c, const char *s, size_t len)
{
    static const char *const url_attrs[] = {"href", "src", "action",
                                            "background", NULL};
    char name[16];
    size_t i = 1, n = 0, end, k, vlen;
    int closing = 0, quote = 0;
    const char *v;

    if (len >= 4 && memcmp(s, "<!--", 4) == 0) {
        const char *e = memmem(s + 4, len - 4, "-->", 3);
        return e ? (size_t)(e - s) + 3 : len;
    }
    if (i < len && s[i] == '/')
        closing = 1, i++;
    while (i < len && n < sizeof(name) - 1 && isalnum((unsigned char)s[i]))
        name[n++] = (char)tolower((unsigned char)s[i++]);
    name[n] = '\0';
    if (n == 0 && !(i < len && s[i] == '!')) {
        tok_html_put(c, "<", 1); /* "a < b": not a tag */
        return 1;
    }
    for (end = i; end < len; end++) {
        if (quote) {
            quote = s[end] == quote ? 0 : quote;
        } else if (s[end] == '"' || s[end] == '\'') {
            /* only quotes that open an attribute value */
            if (end > 0 && s[end - 1] == '=')
                quote = s[end];
        } else if (s[end] == '>') {
            break;
        }
    }
    if (n > 0 && !closing) {
        tok_add(c, "html", name, n);
        tok_html_attrs(c, name, n, s + i, end - i);
        for (k = 0; url_attrs[k] != NULL; k++)
            if ((v = tok_html_attr(s + i, end - i, url_attrs[k], &vlen)))
                tok_urls(c, v, vlen);
    }
    if (!tok_html_inline(name))
        tok_html_put(c, " ", 1);
    if (end < len)
        end++;
    if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0))
        end += tok_html_skip_to_close(s + end, len - end, name);
    return end;
}

static void tok_html(tok_ctx *c, const char *s, size_t len)
{
    size_t i = 0, run;

    c->html_len = 0;
    while (i < len && !c->oom) {
        if (s[i] == '<') {
            i += tok_html_tag(c, s + i, len - i);
        } else if (s[i] == '&') {
            i += tok_html_entity(c, s + i, len - i);
        } else {
            for (run = i; run < len && s[run] != '<' && s[run] != '&'; run++)
                ;
            tok_html_put(c, s + i, run - i);
            i = run;
        }
    }
}

/* ---------------------------------------------------------------- headers */

static void tok_rcvd_word(tok_ctx *c, const char *w, size_t len,
                          const char *prefix, int osb)
{
    char norm[TOK_WORD_MAX + 1];
    size_t i, n = 0, digits = 0, alpha = 0, dots = 0;
    const char *dom;

    if (len < 2 || len > TOK_WORD_MAX)
        return;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)w[i];
        digits += isdigit(ch) != 0;
        alpha += isalpha(ch) != 0;
        dots += ch == '.';
    }
    if (alpha == 0 && dots == 3 && digits >= 4) { /* IPv4: its /24 */
        const char *last = memrchr(w, '.', len);
        tok_add(c, "rcvd:ip", w, (size_t)(last - w));
        return;
    }
    if (alpha == 0 || (digits > 0 && dots == 0))
        return; /* queue ids, versions, dates, times: noise */
    for (i = 0; i < len; i++) {
        if (isdigit((unsigned char)w[i])) {
            if (n == 0 || norm[n - 1] != '#')
                norm[n++] = '#';
        } else {
            norm[n++] = (char)tolower((unsigned char)w[i]);
        }
    }
    tok_add(c, "rcvd", norm, n);
    if (dots >= 2) { /* the registered-looking domain: last two labels */
        dom = norm + n;
        for (i = 0; i < 2 && dom > norm;) {
            dom--;
            if (*dom == '.' && ++i == 2)
                dom++;
        }
        tok_add(c, "rcvd:dom", dom, (size_t)(norm + n - dom));
    }
}

static int tok_hdr_skip(const char *name)
{
    static const char *const skip[] = {"date",          "references",
                                       "in-reply-to",   "content-length",
                                       "lines",         "status",
                                       "x-status",      "x-keywords",
                                       "x-uid",         "x-original-date",
                                       "delivery-date", "x-originalarrivaltime",
                                       "thread-index",  NULL};
    size_t i;

    if (strncmp(name, "x-spam", 6) == 0 || strncmp(name, "x-sluice", 8) == 0)
        return 1; /* verdicts of other filters, or our own */
    for (i = 0; skip[i] != NULL; i++)
        if (strcmp(name, skip[i]) == 0)
            return 1;
    return 0;
}

static void tok_header(tok_ctx *c, const sluice_header *h, size_t *hops)
{
    char name[32], val[64];
    const char *v = h->value ? h->value : "", *at, *semi;
    size_t i, n = h->name.len, vlen = strlen(v);

    if (n == 0 || n >= sizeof(name))
        return;
    for (i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)h->name.ptr[i]);
    name[n] = '\0';
    tok_add(c, "H", name, n);
    if (tok_hdr_skip(name))
        return;
    if (vlen > TOK_HDR_MAX)
        vlen = TOK_HDR_MAX;
    if (strcmp(name, "received") == 0) {
        (*hops)++;
        semi = memrchr(v, ';', vlen); /* the date follows it */
        tok_scan(c, v, semi ? (size_t)(semi - v) : vlen, "rcvd", 0,
                 tok_rcvd_word);
        return;
    }
    if (strcmp(name, "message-id") == 0) {
        if ((at = memrchr(v, '@', vlen)) != NULL) {
            for (n = 0; at + 1 + n < v + vlen && n < sizeof(val) - 1 &&
                        at[1 + n] != '>';
                 n++)
                val[n] = (char)tolower((unsigned char)at[1 + n]);
            tok_add(c, "mid", val, n);
        }
        return;
    }
    if (strcmp(name, "x-mailer") == 0 || strcmp(name, "user-agent") == 0) {
        for (n = 0; n < vlen && n < sizeof(val) - 1; n++)
            val[n] = (char)tolower((unsigned char)v[n]);
        tok_add(c, name, val, n); /* the whole product string */
    }
    tok_urls(c, v, vlen);
    tok_text(c, name, v, vlen, strcmp(name, "subject") == 0);
}

/* ---------------------------------------------------------------- parts */

static void tok_part(tok_ctx *c, const sluice_part *p)
{
    const char *text = (const char *)p->decoded, *ext;
    size_t len = p->decoded_len;

    tok_add(c, "ct", p->type, strlen(p->type));
    if (p->is_multipart)
        return;
    if (p->charset[0] != '\0')
        tok_add(c, "cs", p->charset, strlen(p->charset));
    if (p->is_attachment && (ext = strrchr(p->filename, '.')) != NULL &&
        strlen(ext + 1) <= 10) {
        char e[12];
        size_t i;
        for (i = 0; ext[1 + i] != '\0'; i++)
            e[i] = (char)tolower((unsigned char)ext[1 + i]);
        tok_add(c, "att", e, i);
    }
    if (strncmp(p->type, "text/", 5) != 0 || text == NULL || len == 0)
        return;
    if (len > c->text_left) {
        len = c->text_left;
        c->out->truncated = 1;
    }
    c->text_left -= len;
    c->out->digest = tok_fnv(c->out->digest, text, len);
    if (strcmp(p->type, "text/html") == 0) {
        tok_html(c, text, len);
        text = c->html;
        len = c->html_len;
    }
    if (len == 0)
        return;
    tok_urls(c, text, len);
    tok_text(c, NULL, text, len, 1);
}

void bayes_tok_opts_default(bayes_tok_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_tokens = 4000;
    o->max_text = 256 * 1024;
    o->osb_window = 1;
}

int bayes_tokenize(const bayes_input *in, const bayes_tok_opts *o,
                   bayes_toks *out)
{
    bayes_tok_opts dflt;
    tok_ctx c;
    size_t i, hops = 0;
    const char *mid = NULL;
    char tmp[8];

    if (o == NULL) {
        bayes_tok_opts_default(&dflt);
        o = &dflt;
    }
    if (tok_set_init(out, o->max_tokens ? o->max_tokens : 4000) < 0)
        return -1;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.out = out;
    c.text_left = o->max_text;
    c.window = o->osb_window < 0             ? 0
               : o->osb_window > TOK_OSB_MAX ? TOK_OSB_MAX
                                             : o->osb_window;
    out->digest = 0xcbf29ce484222325ULL;
    for (i = 0; i < in->nheaders; i++) {
        const sluice_header *h = in->header(in->arg, i);
        if (h == NULL)
            continue;
        if (mid == NULL && h->name.len == 10 &&
            strncasecmp(h->name.ptr, "message-id", 10) == 0 && h->value &&
            h->value[0] != '\0')
            mid = h->value;
        tok_header(&c, h, &hops);
    }
    snprintf(tmp, sizeof(tmp), "%zu", hops < 10 ? hops : 10);
    tok_add(&c, "rcvd:hops", tmp, strlen(tmp));
    for (i = 0; i < in->nparts && !c.oom; i++) {
        const sluice_part *p = in->part(in->arg, i);
        if (p != NULL)
            tok_part(&c, p);
    }
    free(c.html);
    if (c.oom) {
        bayes_toks_free(out);
        return -1;
    }
    /* A Message-ID names the message wherever it was relayed; without
     * one, the text it carries does. */
    out->digest =
        mid ? bayes_hash("msgid", mid, strlen(mid)) : tok_mix(out->digest);
    return 0;
}
