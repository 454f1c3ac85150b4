/*
 * rules_view.c - the message as the rules see it (decoded text with HTML
 * turned into text, raw text parts, URIs, links, header values), and the
 * built-in tests written in C (eval rules).
 *
 * The HTML-to-text conversion here is separate from the Bayes
 * tokenizer's, which feeds words straight into its hash set: the rules
 * need the text itself, and the links (anchor text with its href) for
 * the link-mismatch test.
 *
 * SECURITY: every input is attacker-controlled.  Output buffers are
 * bounded by rules_limits (max_text, max_uris); header values are capped
 * at RV_MAX_HDR bytes; the date parser reads digits into bounded fields.
 * URIs come from the one HTML walk and the one text scan (no extra pass):
 * attribute values are cut at RV_MAX_URI and entity-decoded in place (an
 * entity's text is never longer than the entity); CSS url( and meta
 * refresh values are scanned once, and a url( in a <style> block stops at
 * '<' so its closing tag is still found.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rules_int.h"

#define RV_MAX_HDR (64 * 1024)
#define RV_MAX_URI 2048

/* ---------------------------------------------------------------- buffers */

typedef struct rv_buf {
    char *p;
    size_t len, cap, max;
} rv_buf;

static int rv_put(rv_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->max)
        n = b->max > b->len ? b->max - b->len : 0;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        char *np;
        while (nc < b->len + n + 1)
            nc *= 2;
        if ((np = realloc(b->p, nc)) == NULL)
            return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- headers */

static int rv_name_is(const sluice_header *h, const char *name)
{
    return h->name.len == strlen(name) &&
           strncasecmp(h->name.ptr, name, h->name.len) == 0;
}

static int rv_hdr_append(rv_buf *b, const sluice_header *h, int raw,
                         int with_name)
{
    int rc = 0;

    if (b->len > 0 && !with_name)
        rc |= rv_put(b, "\n", 1);
    if (with_name) {
        rc |= rv_put(b, h->name.ptr, h->name.len);
        rc |= rv_put(b, ": ", 2);
    }
    if (raw)
        rc |= rv_put(b, h->raw.ptr, h->raw.len);
    else
        rc |= rv_put(b, h->value, strlen(h->value));
    if (with_name)
        rc |= rv_put(b, "\n", 1);
    return rc;
}

char *rules_header_value(const rules_view *v, const char *name, int raw,
                         size_t *len)
{
    rv_buf b = {NULL, 0, 0, RV_MAX_HDR};
    const bayes_input *in = &v->in;
    int all = strcmp(name, "all") == 0, tocc = strcmp(name, "tocc") == 0;
    int found = 0;
    size_t i;

    if (strcmp(name, "envelopefrom") == 0) {
        if (v->env_from == NULL)
            return NULL;
        *len = strlen(v->env_from);
        return strdup(v->env_from);
    }
    if (strcmp(name, "messageid") == 0)
        name = "message-id";
    for (i = 0; i < in->nheaders; i++) {
        const sluice_header *h = in->header(in->arg, i);
        if (h == NULL)
            continue;
        if (all || (tocc && (rv_name_is(h, "to") || rv_name_is(h, "cc"))) ||
            rv_name_is(h, name)) {
            found = 1;
            if (rv_hdr_append(&b, h, raw, all) < 0) {
                free(b.p);
                return NULL;
            }
        }
    }
    if (!found)
        return NULL;
    if (b.p == NULL && rv_put(&b, "", 0) < 0)
        return NULL;
    *len = b.len;
    return b.p;
}

static const sluice_header *rv_find(const rules_view *v, const char *name,
                                    size_t nth)
{
    size_t i;

    for (i = 0; i < v->in.nheaders; i++) {
        const sluice_header *h = v->in.header(v->in.arg, i);
        if (h != NULL && rv_name_is(h, name) && nth-- == 0)
            return h;
    }
    return NULL;
}

/* ---------------------------------------------------------------- URIs */

static int rv_uri_add(rules_view *v, const char *s, size_t n,
                      const rules_limits *lim)
{
    char **nu;

    while (n > 0 && strchr(".,;:!?)]}>'\"", s[n - 1]) != NULL)
        n--;
    if (n < 4 || v->nuris >= lim->max_uris)
        return 0;
    if (n > RV_MAX_URI)
        n = RV_MAX_URI;
    if (v->nuris == v->auris) {
        size_t na = v->auris ? v->auris * 2 : 16;
        if ((nu = realloc(v->uris, na * sizeof(*nu))) == NULL)
            return -1;
        v->uris = nu;
        v->auris = na;
    }
    if ((v->uris[v->nuris] = rules_strndup(s, n)) == NULL)
        return -1;
    v->nuris++;
    return 0;
}

static int rv_uri_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '"' && c != '<' && c != '>' &&
           c != '\'' && c != '`';
}

/* Does a plain-text URI start at s[i] (i + 4 < len), whose first byte
 * in lower case is c0?  One comparison per candidate byte. */
static int rv_text_uri_at(const char *s, size_t len, size_t i,
                          unsigned char c0)
{
    if (c0 == 'h')
        return (len - i > 7 && strncasecmp(s + i, "http://", 7) == 0) ||
               (len - i > 8 && strncasecmp(s + i, "https://", 8) == 0);
    if (i > 0 && isalnum((unsigned char)s[i - 1]))
        return 0;
    if (c0 == 'w')
        return strncasecmp(s + i, "www.", 4) == 0;
    return len - i > 8 && strncasecmp(s + i, "mailto:", 7) == 0 &&
           rv_uri_char((unsigned char)s[i + 7]); /* not a bare mailto: */
}

/* URIs written in plain text: http://, https://, www., mailto: */
static int rv_text_uris(rules_view *v, const char *s, size_t len,
                        const rules_limits *lim)
{
    size_t i = 0;

    while (i + 4 < len && v->nuris < lim->max_uris) {
        size_t st = i, e;
        unsigned char c0 = (unsigned char)s[i] | 0x20;
        if (c0 != 'h' && c0 != 'w' && c0 != 'm') { /* most bytes */
            i++;
            continue;
        }
        if (rv_text_uri_at(s, len, i, c0)) {
            for (e = st; e < len && rv_uri_char((unsigned char)s[e]); e++)
                ;
            if (rv_uri_add(v, s + st, e - st, lim) < 0)
                return -1;
            i = e;
        } else {
            i++;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- HTML */

/* Colours of the open elements, for text written in the colour of its
 * background (html_color_hidden).  RV_INHERIT: the element sets none;
 * RV_UNKNOWN: a colour (or background image) this code cannot tell. */
#define RV_CSTACK 48
#define RV_INHERIT (-1)
#define RV_UNKNOWN (-2)

typedef struct rv_color {
    char tag[16];
    long fg, bg;
} rv_color;

typedef struct rv_html {
    rv_buf out;
    rules_view *v;
    const rules_limits *lim;
    char *href;      /* open <a>: its href */
    size_t a_start;  /* out.len when it opened */
    int space;       /* last output was white space */
    rv_color cs[RV_CSTACK];
    int ncs, over;   /* open elements kept, and those beyond RV_CSTACK */
    long root_bg;    /* white, or RV_UNKNOWN if a <style> sets backgrounds */
    int hidden_now;  /* text written now is in the background's colour */
    size_t hidden;   /* visible bytes written so */
    size_t imgs;     /* <img> tags */
} rv_html;

static int rv_html_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Text as it shows: each run of white space one space; runs of other
 * bytes copied at once. */
static void rv_text(rv_html *h, const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n) {
        if (rv_html_space((unsigned char)s[i])) {
            if (!h->space)
                (void)rv_put(&h->out, " ", 1);
            h->space = 1;
            i++;
            continue;
        }
        for (j = i + 1; j < n && !rv_html_space((unsigned char)s[j]); j++)
            ;
        (void)rv_put(&h->out, s + i, j - i);
        if (h->hidden_now)
            h->hidden += j - i;
        h->space = 0;
        i = j;
    }
}

/* Entity at s[0] == '&': its text is (*out, *outlen), in buf (8 bytes),
 * a constant, or s itself when it is not an entity this code knows.
 * Returns the bytes it spans; the text is never longer than that, so
 * decoding in place is safe (rv_attr_decode). */
static size_t rv_entity_dec(const char *s, size_t len, char *buf,
                            const char **out, size_t *outlen)
{
    static const struct {
        const char *name;
        const char *text;
    } ents[] = {{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""},
                {"apos", "'"}, {"nbsp", " "}, {"copy", "(c)"},
                {"reg", "(r)"}, {"zwnj", ""}, {"zwj", ""}, {"shy", ""}};
    size_t i, n;

    for (n = 1; n < len && n < 12 && s[n] != ';'; n++)
        ;
    if (n >= len || s[n] != ';') {
        *out = s;
        *outlen = 1;
        return 1;
    }
    if (s[1] == '#') {
        /* strtoul stops at the ';' found above at the latest */
        unsigned long cp = s[2] == 'x' || s[2] == 'X'
                           ? strtoul(s + 3, NULL, 16) : strtoul(s + 2, NULL, 10);
        size_t k = 0;
        if (cp == 0 || cp > 0x10ffff)
            cp = 0xfffd;
        if (cp < 0x80) {
            buf[k++] = (char)cp;
        } else if (cp < 0x800) {
            buf[k++] = (char)(0xc0 | (cp >> 6));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            buf[k++] = (char)(0xe0 | (cp >> 12));
            buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        } else {
            buf[k++] = (char)(0xf0 | (cp >> 18));
            buf[k++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            buf[k++] = (char)(0x80 | (cp & 0x3f));
        }
        *out = buf;
        *outlen = k;
        return n + 1;
    }
    for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
        if (strlen(ents[i].name) == n - 1 &&
            strncasecmp(s + 1, ents[i].name, n - 1) == 0) {
            *out = ents[i].text;
            *outlen = strlen(ents[i].text);
            return n + 1;
        }
    *out = s; /* unknown entity: as written */
    *outlen = n + 1;
    return n + 1;
}

static size_t rv_entity(rv_html *h, const char *s, size_t len)
{
    char buf[8];
    const char *o;
    size_t ol, n = rv_entity_dec(s, len, buf, &o, &ol);

    rv_text(h, o, ol);
    return n;
}

/* Decode the entities of attribute value a (NUL-terminated) in place;
 * one pass, each entity at most 12 bytes looked at. */
static void rv_attr_decode(char *a)
{
    size_t len, r = 0, w = 0;
    char buf[8];

    if (strchr(a, '&') == NULL)
        return;
    len = strlen(a);
    while (r < len) {
        if (a[r] == '&') {
            const char *o;
            size_t ol, n = rv_entity_dec(a + r, len - r, buf, &o, &ol);
            memmove(a + w, o, ol); /* ol <= n: never past a + r + n */
            w += ol;
            r += n;
        } else {
            a[w++] = a[r++];
        }
    }
    a[w] = '\0';
}

/* Value of attribute `attr` in tag text a[0..len), malloc'd, or NULL. */
static char *rv_attr(const char *a, size_t len, const char *attr)
{
    size_t al = strlen(attr), i;

    for (i = 0; i + al < len; i++) {
        size_t j;
        char q;
        if ((a[i] | 0x20) != attr[0] || /* attr is lower case */
            (i > 0 && !isspace((unsigned char)a[i - 1])) ||
            strncasecmp(a + i, attr, al) != 0)
            continue;
        j = i + al;
        while (j < len && isspace((unsigned char)a[j]))
            j++;
        if (j >= len || a[j] != '=')
            continue;
        j++;
        while (j < len && isspace((unsigned char)a[j]))
            j++;
        q = j < len && (a[j] == '"' || a[j] == '\'') ? a[j++] : 0;
        i = j;
        while (j < len && (q ? a[j] != q : !isspace((unsigned char)a[j]) &&
                                                a[j] != '>'))
            j++;
        return rules_strndup(a + i, j - i < RV_MAX_URI ? j - i : RV_MAX_URI);
    }
    return NULL;
}

/* URI s[0..n) found in the HTML (nothing without a view): 0, -1 OOM. */
static int rv_html_uri(rv_html *h, const char *s, size_t n)
{
    return h->v != NULL ? rv_uri_add(h->v, s, n, h->lim) : 0;
}

/* Attribute value u that is a URI: entity-decoded in place, then noted.
 * A value written with numeric entities (&#104;ttp, http://&#101;x...)
 * is noted as written too, for the rules about such hiding. */
static int rv_html_uri_attr(rv_html *h, char *u)
{
    if (h->v == NULL)
        return 0;
    if (strstr(u, "&#") != NULL &&
        rv_uri_add(h->v, u, strlen(u), h->lim) < 0)
        return -1;
    rv_attr_decode(u);
    return rv_uri_add(h->v, u, strlen(u), h->lim);
}

/* CSS url( at s[0]: notes the URL; returns the bytes it spans (at least
 * 4).  The URL ends at its quote, ')', white space, '<' or '>' so a
 * closing </style> is never skipped. */
static size_t rv_css_url(rv_html *h, const char *s, size_t len)
{
    size_t j = 4, st;
    char q = 0;

    while (j < len && rv_html_space((unsigned char)s[j]))
        j++;
    if (j < len && (s[j] == '"' || s[j] == '\''))
        q = s[j++];
    st = j;
    while (j < len && s[j] != ')' && s[j] != '<' && s[j] != '>' &&
           (q ? s[j] != q : !rv_html_space((unsigned char)s[j])))
        j++;
    (void)rv_html_uri(h, s + st, j - st);
    return j;
}

/* Every url(...) of CSS text s[0..len) (a style attribute). */
static void rv_css_urls(rv_html *h, const char *s, size_t len)
{
    size_t i = 0;

    while (i + 4 < len) {
        if ((s[i] | 0x20) == 'u' && strncasecmp(s + i, "url(", 4) == 0)
            i += rv_css_url(h, s + i, len - i);
        else
            i++;
    }
}

/* <meta http-equiv=refresh content="5; url=http://...">: the URL. */
static void rv_meta_refresh(rv_html *h, const char *s, size_t e)
{
    char *he = rv_attr(s, e, "http-equiv"), *c = NULL, *p;
    size_t n;

    if (he == NULL || strncasecmp(he, "refresh", 7) != 0 ||
        (c = rv_attr(s, e, "content")) == NULL)
        goto done;
    rv_attr_decode(c);
    for (p = c; *p != '\0'; p++) {
        const char *u;
        if ((*p | 0x20) != 'u' || strncasecmp(p, "url", 3) != 0)
            continue;
        u = p + 3;
        while (rv_html_space((unsigned char)*u))
            u++;
        if (*u != '=')
            continue;
        u++;
        while (rv_html_space((unsigned char)*u))
            u++;
        if (*u == '"' || *u == '\'') {
            const char *q = strchr(u + 1, *u);
            n = q != NULL ? (size_t)(q - u - 1) : strlen(u + 1);
            u++;
        } else {
            n = strlen(u);
        }
        (void)rv_html_uri(h, u, n);
        break;
    }
done:
    free(he);
    free(c);
}

/* A CSS or HTML colour: 0xRRGGBB, RV_INHERIT (empty, transparent,
 * inherit) or RV_UNKNOWN. */
static long rv_color_parse(const char *s, size_t n)
{
    static const struct {
        const char *name;
        long rgb;
    } names[] = {{"white", 0xffffff}, {"black", 0}, {"red", 0xff0000},
                 {"green", 0x008000}, {"blue", 0x0000ff}, {"yellow", 0xffff00},
                 {"gray", 0x808080}, {"grey", 0x808080}, {"silver", 0xc0c0c0},
                 {"navy", 0x000080}, {"maroon", 0x800000},
                 {"orange", 0xffa500}, {"purple", 0x800080},
                 {"lime", 0x00ff00}, {"aqua", 0x00ffff}, {"teal", 0x008080},
                 {"fuchsia", 0xff00ff}, {"olive", 0x808000},
                 {"whitesmoke", 0xf5f5f5}, {"snow", 0xfffafa}};
    size_t i, k;
    long v = 0;

    while (n > 0 && (isspace((unsigned char)*s) || *s == '"' || *s == '\''))
        s++, n--;
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '"' ||
                     s[n - 1] == '\''))
        n--;
    if (n >= 10 && strncasecmp(s + n - 10, "!important", 10) == 0)
        for (n -= 10; n > 0 && isspace((unsigned char)s[n - 1]); n--)
            ;
    if (n == 0 || (n == 11 && strncasecmp(s, "transparent", 11) == 0) ||
        (n == 7 && strncasecmp(s, "inherit", 7) == 0))
        return RV_INHERIT;
    if (*s == '#')
        s++, n--;
    if (n == 3 || n == 6) {
        for (i = 0; i < n && isxdigit((unsigned char)s[i]); i++) {
            int d = isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                 : (s[i] | 0x20) - 'a' + 10;
            v = n == 3 ? v * 256 + d * 17 : v * 16 + d;
        }
        if (i == n)
            return v;
    }
    if (n > 5 && strncasecmp(s, "rgb(", 4) == 0) {
        const char *p = s + 4, *e = s + n;
        v = 0;
        for (k = 0; k < 3; k++) {
            long c = 0;
            int nd = 0;
            while (p < e && (*p == ' ' || *p == ','))
                p++;
            while (p < e && isdigit((unsigned char)*p) && nd < 4)
                c = c * 10 + (*p++ - '0'), nd++;
            if (nd == 0 || c > 255 || (p < e && *p == '%'))
                return RV_UNKNOWN;
            v = v * 256 + c;
        }
        return v;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && strncasecmp(s, names[i].name, n) == 0)
            return names[i].rgb;
    return RV_UNKNOWN;
}

/* color, background-color, background and background-image of a style
 * attribute. */
static void rv_style_colors(const char *st, long *fg, long *bg)
{
    const char *p = st;

    while (*p) {
        const char *colon, *semi = strchr(p, ';'), *e;
        size_t pl;
        if (semi == NULL)
            semi = p + strlen(p);
        colon = memchr(p, ':', (size_t)(semi - p));
        while (p < semi && isspace((unsigned char)*p))
            p++;
        if (colon != NULL) {
            for (e = colon; e > p && isspace((unsigned char)e[-1]); e--)
                ;
            pl = (size_t)(e - p);
            if (pl == 5 && strncasecmp(p, "color", 5) == 0) {
                *fg = rv_color_parse(colon + 1, (size_t)(semi - colon - 1));
            } else if (pl == 16 && strncasecmp(p, "background-color", 16) == 0) {
                *bg = rv_color_parse(colon + 1, (size_t)(semi - colon - 1));
            } else if (pl == 16 && strncasecmp(p, "background-image", 16) == 0) {
                *bg = RV_UNKNOWN;
            } else if (pl == 10 && strncasecmp(p, "background", 10) == 0) {
                /* shorthand: its first word, if that is a colour */
                const char *w = colon + 1, *we;
                while (w < semi && isspace((unsigned char)*w))
                    w++;
                for (we = w; we < semi && !isspace((unsigned char)*we); we++)
                    ;
                *bg = rv_color_parse(w, (size_t)(we - w));
                if (*bg == RV_INHERIT && we < semi)
                    *bg = RV_UNKNOWN;
            }
        }
        p = *semi ? semi + 1 : semi;
    }
}

/* The colour text has now against the background it has now. */
static void rv_color_update(rv_html *h)
{
    long fg = RV_INHERIT, bg = RV_INHERIT, d;
    int i;

    for (i = h->ncs - 1; i >= 0 && (fg == RV_INHERIT || bg == RV_INHERIT);
         i--) {
        if (fg == RV_INHERIT)
            fg = h->cs[i].fg;
        if (bg == RV_INHERIT)
            bg = h->cs[i].bg;
    }
    if (fg == RV_INHERIT)
        fg = 0; /* black text */
    if (bg == RV_INHERIT)
        bg = h->root_bg;
    h->hidden_now = 0;
    if (fg < 0 || bg < 0)
        return;
    d = labs(((fg >> 16) & 255) - ((bg >> 16) & 255)) +
        labs(((fg >> 8) & 255) - ((bg >> 8) & 255)) +
        labs((fg & 255) - (bg & 255));
    h->hidden_now = d <= 24;
}

static int rv_void_tag(const char *name)
{
    static const char *const v[] = {"br", "img", "hr", "meta", "link",
                                    "input", "area", "base", "col", "wbr",
                                    "source", "basefont", "param", NULL};
    size_t i;

    if (name[0] == '\0')
        return 1; /* <!doctype>, <?xml ...> */
    for (i = 0; v[i] != NULL; i++)
        if (strcmp(name, v[i]) == 0)
            return 1;
    return 0;
}

/* Keep track of the colours of open elements: tag s[0..e), its name. */
static void rv_color_tag(rv_html *h, const char *s, size_t e,
                         const char *name, int close)
{
    rv_color *c;
    char *a, *bgi = NULL, *st = NULL;
    int i;

    if (close) {
        if (h->over > 0) {
            h->over--;
            return;
        }
        /* the nearest open element of that name, not too deep down */
        for (i = h->ncs - 1; i >= 0 && i >= h->ncs - 8; i--)
            if (strcmp(h->cs[i].tag, name) == 0) {
                h->ncs = i;
                rv_color_update(h);
                return;
            }
        return;
    }
    if (e > strlen(name) + 3) { /* attributes: URIs of any element */
        bgi = rv_attr(s, e, "background");
        if (bgi != NULL)
            (void)rv_html_uri_attr(h, bgi);
        if ((st = rv_attr(s, e, "style")) != NULL) {
            rv_attr_decode(st);
            rv_css_urls(h, st, strlen(st));
        }
    }
    if (rv_void_tag(name) || (e >= 2 && s[e - 2] == '/'))
        goto out;
    if (h->ncs >= RV_CSTACK) {
        h->over++;
        goto out;
    }
    c = &h->cs[h->ncs++];
    snprintf(c->tag, sizeof(c->tag), "%s", name);
    c->fg = c->bg = RV_INHERIT;
    if (e <= strlen(name) + 3) /* no attributes */
        goto done;
    if ((a = rv_attr(s, e, "bgcolor")) != NULL) {
        c->bg = rv_color_parse(a, strlen(a));
        free(a);
    }
    if (bgi != NULL)
        c->bg = RV_UNKNOWN; /* an image */
    if ((a = rv_attr(s, e, strcmp(name, "body") == 0 ? "text" : "color")) !=
        NULL) {
        c->fg = rv_color_parse(a, strlen(a));
        free(a);
    }
    if (st != NULL)
        rv_style_colors(st, &c->fg, &c->bg);
done:
    rv_color_update(h);
out:
    free(bgi);
    free(st);
}

static void rv_link_close(rv_html *h)
{
    rules_view *v = h->v;
    rules_link *nl;
    size_t s = h->a_start, e = h->out.len;

    if (h->href == NULL)
        return;
    if (v != NULL && v->nlinks < h->lim->max_uris) {
        if (v->nlinks == v->alinks) {
            size_t na = v->alinks ? v->alinks * 2 : 8;
            if ((nl = realloc(v->links, na * sizeof(*nl))) == NULL)
                goto done;
            v->links = nl;
            v->alinks = na;
        }
        while (s < e && h->out.p[s] == ' ')
            s++;
        while (e > s && h->out.p[e - 1] == ' ')
            e--;
        v->links[v->nlinks].text = rules_strndup(h->out.p ? h->out.p + s : "",
                                                 e - s);
        v->links[v->nlinks].href = h->href;
        if (v->links[v->nlinks].text != NULL) {
            v->nlinks++;
            h->href = NULL;
        }
    }
done:
    free(h->href);
    h->href = NULL;
}

/* The attribute of element `name` that holds a URI, or NULL
 * (<a href> is handled apart: it opens a link; background= and style
 * url() are looked for on every element in rv_color_tag). */
static const char *rv_uri_attr_of(const char *name)
{
    static const struct {
        const char *tag, *attr;
    } t[] = {{"img", "src"},    {"form", "action"}, {"iframe", "src"},
             {"frame", "src"},  {"area", "href"},   {"base", "href"}};
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(name, t[i].tag) == 0)
            return t[i].attr;
    return NULL;
}

/* Tag at s[0] == '<'; returns the bytes it spans. */
static size_t rv_tag(rv_html *h, const char *s, size_t len)
{
    size_t e, nl = 0;
    char name[16];
    int close = 0;
    const char *n = s + 1;

    if (len >= 4 && strncmp(s, "<!--", 4) == 0) {
        const char *c = NULL;
        for (e = 4; e + 2 < len; e++)
            if (s[e] == '-' && s[e + 1] == '-' && s[e + 2] == '>') {
                c = s + e;
                break;
            }
        return c ? (size_t)(c - s) + 3 : len;
    }
    e = 1;
    while (e < len && s[e] != '>')
        e++;
    if (e < len)
        e++;
    if (*n == '/') {
        close = 1;
        n++;
    }
    while (n + nl < s + e && nl < sizeof(name) - 1 &&
           isalnum((unsigned char)n[nl])) {
        name[nl] = (char)tolower((unsigned char)n[nl]);
        nl++;
    }
    name[nl] = '\0';
    if (!close && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0)) {
        /* skip the contents up to the closing tag; a style sheet that
         * sets backgrounds leaves the page's background unknown */
        size_t k;
        for (k = e; k + nl + 2 < len; k++) {
            if (s[k] == '<' && s[k + 1] == '/' &&
                strncasecmp(s + k + 2, name, nl) == 0)
                return k;
            if (name[1] == 't' && (s[k] | 0x20) == 'b' && k + 10 < len &&
                strncasecmp(s + k, "background", 10) == 0) {
                h->root_bg = RV_UNKNOWN;
                rv_color_update(h);
            }
            if (name[1] == 't' && (s[k] | 0x20) == 'u' && k + 4 < len &&
                strncasecmp(s + k, "url(", 4) == 0)
                k += rv_css_url(h, s + k, len - k) - 1;
        }
        return len;
    }
    if (strcmp(name, "a") == 0) {
        if (close) {
            rv_link_close(h);
        } else {
            rv_link_close(h);
            h->href = rv_attr(s, e, "href");
            h->a_start = h->out.len;
            if (h->href != NULL && rv_html_uri_attr(h, h->href) < 0)
                return e;
        }
    } else if (!close && h->v != NULL) {
        const char *ua = rv_uri_attr_of(name);
        char *u;
        if (strcmp(name, "img") == 0)
            h->imgs++;
        else if (strcmp(name, "meta") == 0)
            rv_meta_refresh(h, s, e);
        if (ua != NULL && (u = rv_attr(s, e, ua)) != NULL) {
            (void)rv_html_uri_attr(h, u);
            free(u);
        }
    }
    rv_color_tag(h, s, e, name, close);
    if (strcmp(name, "br") == 0 || strcmp(name, "p") == 0 ||
        strcmp(name, "div") == 0 || strcmp(name, "tr") == 0 ||
        strcmp(name, "li") == 0 || strcmp(name, "td") == 0)
        rv_text(h, " ", 1);
    return e;
}

char *rules_html_text(const char *html, size_t len, size_t max,
                      size_t *outlen, rules_view *v)
{
    rules_limits lim = {.max_uris = 200};
    rv_html h;
    size_t i = 0;

    memset(&h, 0, sizeof(h));
    h.out.max = max;
    h.v = v;
    h.lim = &lim;
    h.space = 1;
    h.root_bg = 0xffffff;
    while (i < len && h.out.len < max) {
        if (html[i] == '<')
            i += rv_tag(&h, html + i, len - i);
        else if (html[i] == '&')
            i += rv_entity(&h, html + i, len - i);
        else {
            size_t j = i;
            while (j < len && html[j] != '<' && html[j] != '&')
                j++;
            rv_text(&h, html + i, j - i);
            i = j;
        }
    }
    rv_link_close(&h);
    if (v != NULL) {
        v->html_imgs += h.imgs;
        v->html_hidden += h.hidden;
    }
    if (h.out.p == NULL && rv_put(&h.out, "", 0) < 0)
        return NULL;
    *outlen = h.out.len;
    return h.out.p;
}

/* ---------------------------------------------------------------- view */

/* Note text part p (index i) whose text starts at `start`, the first 64
 * only: 1 noted, 0 not, -1 out of memory. */
static int rv_tpart_add(rules_view *v, const sluice_part *p, int i,
                        size_t start)
{
    rules_tpart *t;

    if (v->ntparts == v->atparts) {
        size_t na = v->atparts ? v->atparts * 2 : 4;
        if (na > 64)
            return 0;

        if ((t = realloc(v->tparts, na * sizeof(*t))) == NULL)
            return -1;
        v->tparts = t;
        v->atparts = na;
    }
    t = &v->tparts[v->ntparts++];
    t->part = i;
    t->parent = p->parent;
    t->html = strcmp(p->type, "text/html") == 0;
    t->off = start;
    t->len = 0;
    return 1;
}

int rules_view_build(rules_view *v, const rules_limits *lim)
{
    rv_buf text = {NULL, 0, 0, lim->max_text};
    rv_buf raw = {NULL, 0, 0, lim->max_text};
    const sluice_header *subj = rv_find(v, "subject", 0);
    size_t i;

    if (subj != NULL) {
        (void)rv_put(&text, subj->value, strlen(subj->value));
        (void)rv_put(&text, "\n", 1);
    }
    v->body_off = text.len;
    for (i = 0; i < v->in.nparts; i++) {
        const sluice_part *p = v->in.part(v->in.arg, i);
        const char *d;
        size_t dl, start = text.len;
        int noted;
        if (p == NULL || p->is_multipart || p->is_attachment ||
            p->decoded == NULL || strncmp(p->type, "text/", 5) != 0)
            continue;
        d = (const char *)p->decoded;
        dl = p->decoded_len;
        if ((noted = rv_tpart_add(v, p, (int)i, start)) < 0)
            goto oom;
        (void)rv_put(&raw, d, dl);
        (void)rv_put(&raw, "\n", 1);
        if (strcmp(p->type, "text/html") == 0) {
            size_t tl = 0;
            char *t = rules_html_text(d, dl, lim->max_text, &tl, v);
            if (t == NULL)
                goto oom;
            v->html_bytes += dl;
            v->html_text += tl;
            (void)rv_put(&text, t, tl);
            free(t);
        } else {
            (void)rv_put(&text, d, dl);
            if (rv_text_uris(v, d, dl < lim->max_text ? dl : lim->max_text,
                             lim) < 0)
                goto oom;
        }
        if (noted)
            v->tparts[v->ntparts - 1].len = text.len - start;
        (void)rv_put(&text, "\n", 1);
    }
    if ((text.p == NULL && rv_put(&text, "", 0) < 0) ||
        (raw.p == NULL && rv_put(&raw, "", 0) < 0))
        goto oom;
    v->text = text.p;
    v->text_len = text.len;
    v->rawtext = raw.p;
    v->rawtext_len = raw.len;
    return 0;
oom:
    free(text.p);
    free(raw.p);
    return -1;
}

void rules_view_free(rules_view *v)
{
    size_t i;

    free(v->text);
    free(v->rawtext);
    for (i = 0; i < v->nuris; i++)
        free(v->uris[i]);
    free(v->uris);
    for (i = 0; i < v->nlinks; i++) {
        free(v->links[i].text);
        free(v->links[i].href);
    }
    free(v->links);
    free(v->tparts);
    v->tparts = NULL;
    v->ntparts = v->atparts = 0;
    v->text = v->rawtext = NULL;
    v->uris = NULL;
    v->links = NULL;
    v->nuris = v->nlinks = v->auris = v->alinks = 0;
}

/* ---------------------------------------------------------------- dates */

/* sscanf's %Nd: white space skipped, then a sign and digits, N bytes at
 * most with the sign; at least one digit. */
static int rv_scan_int(const char **pp, int width, int *out)
{
    const char *p = *pp;
    int neg = 0, v = 0, nd = 0;

    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
        width--;
    }
    while (nd < width && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0)
        return -1;
    *out = neg ? -v : v;
    *pp = p;
    return 0;
}

/* sscanf's " %3s" into out[4]. */
static int rv_scan_word(const char **pp, char *out)
{
    const char *p = *pp;
    int n = 0;

    while (isspace((unsigned char)*p))
        p++;
    while (n < 3 && *p != '\0' && !isspace((unsigned char)*p))
        out[n++] = *p++;
    if (n == 0)
        return -1;
    out[n] = '\0';
    *pp = p;
    return 0;
}

/* RFC 5322 date ("Tue, 1 Dec 2026 09:14:35 +0000", day name optional,
 * zone optional) to a time_t; -1 if it does not parse. */
static time_t rv_date(const char *s)
{
    static const char mons[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    struct tm tm;
    int d, y, hh, mm, ss = 0, off = 0, n;
    char mon[4] = "";
    const char *p = s, *m;
    long days;

    while (*p == ' ' || *p == '\t')
        p++;
    if (isalpha((unsigned char)*p)) { /* day name */
        while (isalpha((unsigned char)*p))
            p++;
        while (*p == ',' || *p == ' ')
            p++;
    }
    /* what sscanf(p, "%2d %3s %4d %2d:%2d", ...) reads, without its cost */
    if (rv_scan_int(&p, 2, &d) < 0 || rv_scan_word(&p, mon) < 0 ||
        rv_scan_int(&p, 4, &y) < 0 || rv_scan_int(&p, 2, &hh) < 0 ||
        *p++ != ':' || rv_scan_int(&p, 2, &mm) < 0)
        return -1;
    if (*p == ':') {
        p++;
        if (rv_scan_int(&p, 2, &ss) < 0)
            return -1;
    }
    while (*p == ' ')
        p++;
    if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1])) {
        int z = atoi(p + 1) % 10000;
        off = (z / 100 * 60 + z % 100) * 60 * (*p == '-' ? -1 : 1);
    }
    if (y < 100)
        y += y < 50 ? 2000 : 1900;
    for (n = 0; n < 3; n++)
        mon[n] = (char)tolower((unsigned char)mon[n]);
    if ((m = strstr(mons, mon)) == NULL || (m - mons) % 3 != 0 || d < 1 ||
        d > 31 || y < 1900 || y > 9999 || hh > 23 || mm > 59 || ss > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = (int)((m - mons) / 3);
    tm.tm_mday = d;
    /* days since the epoch without timegm() (not in C11) */
    {
        int yy = y - (tm.tm_mon < 2), era = (yy >= 0 ? yy : yy - 399) / 400;
        int yoe = yy - era * 400;
        int mp = (tm.tm_mon + 9) % 12;
        int doy = (153 * mp + 2) / 5 + d - 1;
        int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        days = (long)era * 146097 + doe - 719468;
    }
    return (time_t)(days * 86400L + hh * 3600L + mm * 60L + ss - off);
}

/* ---------------------------------------------------------------- evals */

static const char *const rv_eval_names[EV_COUNT] = {
    "html_text_ratio", "obfuscated_words", "date_future", "date_past",
    "received_short", "received_forged", "link_mismatch", "subject_all_caps",
    "charset_mismatch", "missing_header",
    /* rules_eval.c */
    "html_only", "mime_no_text", "body_caps_ratio", "exclaim_density",
    "money_density", "alternative_mismatch", "image_only_html",
    "from_name_address", "reply_to_other_domain", "subject_trailing_id",
    "many_recipients", "helo_ip_mismatch", "html_color_hidden"};

const sluice_header *rules_view_header(const rules_view *v, const char *name,
                                       size_t nth)
{
    return rv_find(v, name, nth);
}

int rules_eval_lookup(const char *name)
{
    int i;

    for (i = 0; i < EV_COUNT; i++)
        if (strcmp(name, rv_eval_names[i]) == 0)
            return i;
    return -1;
}

/* Words spelt to dodge filters: "v.i.a.g.r.a", "F R E E" (five or more
 * single letters, one repeated separator) and "v1agra", "m0ney" (letters
 * around one look-alike digit, nothing else).  Only whole words between
 * white space or sentence punctuation: addresses, URLs and identifiers
 * ("user_01a", "host1.example") are no obfuscation. */
static int ev_word_edge(const char *s, size_t n, size_t i)
{
    return i >= n || s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
           s[i] == '\t' || s[i] == ',' || s[i] == '!' || s[i] == '?' ||
           s[i] == '"' || s[i] == '(' || s[i] == ')';
}

static int ev_obfuscated(const rules_view *v, double min)
{
    const char *s = v->text;
    size_t n = v->text_len, i = 0;
    int count = 0;

    while (i < n && count < min) {
        size_t j = i, letters = 0, subs = 0, k;
        if (!isalpha((unsigned char)s[i]) || (i > 0 && !ev_word_edge(s, n, i - 1))) {
            i++;
            continue;
        }
        /* spaced letters: X.X.X.X.X, X X X X X */
        if (i + 2 < n && (s[i + 1] == ' ' || s[i + 1] == '.' ||
                          s[i + 1] == '-' || s[i + 1] == '*')) {
            char sep = s[i + 1];
            k = i;
            while (k + 2 < n && isalpha((unsigned char)s[k]) &&
                   s[k + 1] == sep && isalpha((unsigned char)s[k + 2]) &&
                   (k + 3 >= n || !isalnum((unsigned char)s[k + 3]))) {
                letters++;
                k += 2;
            }
            if (letters + 1 >= 5 && ev_word_edge(s, n, k + 1)) {
                count++;
                i = k + 1;
                continue;
            }
            letters = 0;
        }
        /* look-alike digits inside a word */
        while (j < n && (isalpha((unsigned char)s[j]) ||
                         s[j] == '0' || s[j] == '1' || s[j] == '3')) {
            if (isalpha((unsigned char)s[j]))
                letters++;
            else if (j > i && j + 1 < n && isalpha((unsigned char)s[j + 1]))
                subs++;
            else
                break;
            j++;
        }
        if (subs == 1 && letters >= 4 &&
            (ev_word_edge(s, n, j) || (j < n && s[j] == '.' &&
                                       ev_word_edge(s, n, j + 1))))
            count++;
        while (j < n && !ev_word_edge(s, n, j))
            j++;
        i = j > i ? j : i + 1;
    }
    return count >= min;
}

/* When the message arrived: the newest Received field's date (mail
 * scanned later, e.g. by sluicectl scan, keeps its age), -1 if none. */
static time_t rv_arrival(const rules_view *v);

static int ev_date(const rules_view *v, int future, double arg)
{
    const sluice_header *h = rv_find(v, "date", 0);
    time_t t;

    time_t ref = rv_arrival(v);

    if (ref == (time_t)-1) {
        if (!future)
            return 0; /* arrival unknown: age says nothing */
        ref = v->now;
    }
    if (h == NULL || (t = rv_date(h->value)) == (time_t)-1)
        return 0;
    if (future)
        return (double)t > (double)ref + arg * 3600.0;
    return (double)t < (double)ref - arg * 86400.0;
}

static time_t rv_arrival(const rules_view *v)
{
    const sluice_header *h = rv_find(v, "received", 0);
    const char *semi;
    time_t t;

    if (h != NULL && (semi = strrchr(h->value, ';')) != NULL &&
        (t = rv_date(semi + 1)) != (time_t)-1)
        return t;
    return (time_t)-1;
}

/* A hop dated more than three days after the hop above it (which
 * received the message later): clocks are often off by hours, forged
 * hops inserted by spam tools are off by days. */
static int ev_forged(const rules_view *v)
{
    const sluice_header *h;
    time_t newer = -1;
    size_t k, seen = 0;

    /* the first 50 Received fields, in one pass over the header */
    for (k = 0; k < v->in.nheaders && seen < 50; k++) {
        const char *semi;
        time_t t;
        h = v->in.header(v->in.arg, k);
        if (h == NULL || !rv_name_is(h, "received"))
            continue;
        seen++;
        semi = strrchr(h->value, ';');
        if (semi == NULL || (t = rv_date(semi + 1)) == (time_t)-1)
            continue;
        if (newer != (time_t)-1 && t > newer + 3 * 86400)
            return 1;
        newer = t;
    }
    return 0;
}

/* Registrable-ish part of a host: its last two labels, lower case. */
static void rv_domain(const char *s, char *out, size_t outsz)
{
    const char *b = s, *e, *p, *dot1 = NULL, *dot2 = NULL;
    size_t n;

    if (strncasecmp(b, "http://", 7) == 0)
        b += 7;
    else if (strncasecmp(b, "https://", 8) == 0)
        b += 8;
    for (e = b; *e && *e != '/' && *e != ':' && *e != '?' && *e != '#' &&
                *e != ' ';
         e++)
        ;
    if ((p = memchr(b, '@', (size_t)(e - b))) != NULL)
        b = p + 1;
    while (e > b && e[-1] == '.')
        e--;
    for (p = b; p < e; p++)
        if (*p == '.') {
            dot2 = dot1;
            dot1 = p;
        }
    if (dot1 == NULL) {
        out[0] = '\0';
        return;
    }
    if (dot2 != NULL)
        b = dot2 + 1;
    n = (size_t)(e - b) < outsz - 1 ? (size_t)(e - b) : outsz - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)b[i]);
    out[n] = '\0';
}

void rules_host_domain(const char *s, char *out, size_t outsz)
{
    rv_domain(s, out, outsz);
}

static int ev_link_mismatch(const rules_view *v)
{
    char a[256], b[256];
    size_t i;

    for (i = 0; i < v->nlinks; i++) {
        const rules_link *l = &v->links[i];
        const char *t = l->text;
        if (strchr(t, ' ') != NULL || strchr(t, '.') == NULL ||
            (strncasecmp(l->href, "http://", 7) != 0 &&
             strncasecmp(l->href, "https://", 8) != 0))
            continue;
        if (strncasecmp(t, "http", 4) != 0 && strncasecmp(t, "www.", 4) != 0)
            continue; /* only text that reads as an address */
        rv_domain(t, a, sizeof(a));
        rv_domain(l->href, b, sizeof(b));
        if (a[0] && b[0] && strcmp(a, b) != 0)
            return 1;
    }
    return 0;
}

static int ev_caps(const rules_view *v, double min)
{
    const sluice_header *h = rv_find(v, "subject", 0);
    const char *p;
    int up = 0, low = 0;

    if (h == NULL)
        return 0;
    for (p = h->value; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            up++;
        else if (*p >= 'a' && *p <= 'z')
            low++;
    }
    return low == 0 && up >= min;
}

/* A text part declared in a Cyrillic or CJK charset whose decoded text
 * hardly uses that script (spam declares exotic charsets to slip past
 * filters, or is generated with the wrong one). */
static int ev_charset(const rules_view *v)
{
    static const char *const cyr[] = {"koi8-r", "koi8-u", "windows-1251",
                                      "cp1251", "iso-8859-5", NULL};
    static const char *const cjk[] = {"gb2312", "gbk", "gb18030", "big5",
                                      "euc-kr", "ks_c_5601-1987", "euc-jp",
                                      "iso-2022-jp", "shift_jis", "iso-2022-kr",
                                      NULL};
    size_t i, k;

    for (i = 0; i < v->in.nparts; i++) {
        const sluice_part *p = v->in.part(v->in.arg, i);
        size_t latin = 0, script = 0;
        int fam = 0;
        if (p == NULL || p->decoded == NULL ||
            strncmp(p->type, "text/", 5) != 0)
            continue;
        for (k = 0; cyr[k] != NULL && fam == 0; k++)
            if (strcmp(p->charset, cyr[k]) == 0)
                fam = 1;
        for (k = 0; cjk[k] != NULL && fam == 0; k++)
            if (strcmp(p->charset, cjk[k]) == 0)
                fam = 2;
        if (fam == 0)
            continue;
        for (k = 0; k < p->decoded_len && k < 65536; k++) {
            unsigned char c = p->decoded[k];
            if (isalpha(c))
                latin++;
            else if (fam == 1 && (c == 0xd0 || c == 0xd1)) /* U+0400.. */
                script++;
            else if (fam == 2 && c >= 0xe3 && c <= 0xed) /* U+3000..U+DFFF */
                script++;
        }
        if (latin + script >= 50 && script * 20 < latin + script)
            return 1;
    }
    return 0;
}

int rules_eval_run(const rule *r, const rules_view *v)
{
    size_t n = 0;

    switch (r->fn) {
    case EV_HTML_TEXT_RATIO:
        return v->html_bytes >= 200 &&
               (double)v->html_text < r->arg * (double)v->html_bytes;
    case EV_OBFUSCATED_WORDS:
        return ev_obfuscated(v, r->arg);
    case EV_DATE_FUTURE:
        return ev_date(v, 1, r->arg);
    case EV_DATE_PAST:
        return ev_date(v, 0, r->arg);
    case EV_RECEIVED_SHORT: {
        size_t k;
        for (k = 0; k < v->in.nheaders && n < 100; k++) {
            const sluice_header *h = v->in.header(v->in.arg, k);
            if (h != NULL && rv_name_is(h, "received"))
                n++;
        }
        return (double)n < r->arg;
    }
    case EV_RECEIVED_FORGED:
        return ev_forged(v);
    case EV_LINK_MISMATCH:
        return ev_link_mismatch(v);
    case EV_SUBJECT_ALL_CAPS:
        return ev_caps(v, r->arg);
    case EV_CHARSET_MISMATCH:
        return ev_charset(v);
    case EV_MISSING_HEADER:
        return rv_find(v, r->sarg, 0) == NULL;
    default:
        return rules_eval_more(r, v);
    }
}
