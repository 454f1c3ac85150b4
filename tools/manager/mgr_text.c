/*
 * mgr_text.c - a stored message turned into headers and text for the
 * Manager (mgr_text.h).
 *
 * Which parts make the text: every inline text/plain leaf; a text/html
 * leaf too, converted to text, unless it is one alternative of a
 * multipart/alternative that also has a text/plain one.  Parts are
 * separated by an empty line.  Everything else is an attachment: listed
 * by name, type and decoded size, never shown.
 *
 * SECURITY: see mgr_text.h.  rules_html_text() drops tags, skips script
 * and style contents and decodes entities; its output is text, cleaned
 * again here like every other string.
 */
#include "mgr_text.h"

#include "mime.h"
#include "rules.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Length of the UTF-8 sequence at s[0..n) if valid, else 0. */
static size_t tx_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

char *mgr_text_clean(const char *s, size_t n, size_t max, int *cut)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t cap = (n < max ? n : max) + 4, o = 0, i = 0;
    char *out = malloc(cap + 1);

    if (cut)
        *cut = 0;
    if (out == NULL)
        return NULL;
    while (i < n) {
        size_t l = tx_utf8_len(p + i, n - i);
        const char *src = (const char *)p + i;
        size_t add = l;
        if (l == 0) {
            src = "\xef\xbf\xbd"; /* U+FFFD */
            add = 3;
            l = 1;
        } else if (l == 1 && ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') ||
                              p[i] == 0x7f)) {
            i++;
            continue;
        }
        if (o + add > max) {
            if (cut)
                *cut = 1;
            break;
        }
        if (o + add > cap) {
            size_t nc = cap * 2 + add;
            char *np = realloc(out, nc + 1);
            if (np == NULL) {
                free(out);
                return NULL;
            }
            out = np;
            cap = nc;
        }
        memcpy(out + o, src, add);
        o += add;
        i += l;
    }
    out[o] = '\0';
    return out;
}

static json_t *tx_str(const char *s, size_t n, size_t max)
{
    char *c = mgr_text_clean(s, n, max, NULL);
    json_t *j;

    if (c == NULL)
        return NULL;
    j = json_string(c);
    free(c);
    return j;
}

static int tx_is_text(const sluice_part *p, const char *type)
{
    return !p->is_multipart && !p->is_attachment && strcmp(p->type, type) == 0;
}

/* An HTML leaf whose multipart/alternative parent has a text/plain. */
static int tx_has_plain_sibling(const mime_msg *m, const sluice_part *p)
{
    const sluice_part *parent;
    size_t i, n = mime_part_count(m);

    if (p->parent < 0 || (parent = mime_part(m, (size_t)p->parent)) == NULL ||
        strcmp(parent->type, "multipart/alternative") != 0)
        return 0;
    for (i = 0; i < n; i++) {
        const sluice_part *q = mime_part(m, i);
        if (q->parent == p->parent && tx_is_text(q, "text/plain"))
            return 1;
    }
    return 0;
}

static int tx_append(char **buf, size_t *len, const char *s, size_t n)
{
    char *nb = realloc(*buf, *len + n + 3);

    if (nb == NULL)
        return -1;
    *buf = nb;
    if (*len > 0) {
        memcpy(nb + *len, "\n\n", 2);
        *len += 2;
    }
    memcpy(nb + *len, s, n);
    *len += n;
    nb[*len] = '\0';
    return 0;
}

static json_t *tx_headers(const mime_msg *m)
{
    json_t *a = json_array();
    size_t i, n = mime_header_count(m);

    for (i = 0; i < n && i < MGR_TEXT_MAX_HDRS; i++) {
        const sluice_header *h = mime_header(m, i);
        json_t *pair = json_array();
        json_array_append_new(pair, tx_str(h->name.ptr, h->name.len, 256));
        json_array_append_new(pair, tx_str(h->value ? h->value : "",
                                           h->value ? strlen(h->value) : 0,
                                           MGR_TEXT_MAX_HDR));
        json_array_append_new(a, pair);
    }
    return a;
}

json_t *mgr_text_view(const unsigned char *raw, size_t len, size_t max_text)
{
    mime_msg *m = mime_parse(raw, len, NULL);
    json_t *o, *att;
    char *text = NULL, *clean;
    size_t tl = 0, i, n;
    int cut = 0;

    if (m == NULL)
        return NULL;
    o = json_object();
    att = json_array();
    json_object_set_new(o, "headers", tx_headers(m));
    n = mime_part_count(m);
    for (i = 0; i < n; i++) {
        const sluice_part *p = mime_part(m, i);
        const char *d = (const char *)p->decoded;
        if (p->is_multipart)
            continue;
        if (tl > max_text) {
            cut = 1;
        } else if (tx_is_text(p, "text/plain") ||
                   (strncmp(p->type, "text/", 5) == 0 &&
                    strcmp(p->type, "text/html") != 0 && !p->is_attachment &&
                    i == 0)) {
            if (tx_append(&text, &tl, d ? d : "", d ? p->decoded_len : 0) < 0)
                goto oom;
            continue;
        } else if (tx_is_text(p, "text/html")) {
            size_t hl = 0;
            char *h;
            if (tx_has_plain_sibling(m, p))
                continue;
            h = rules_html_text(d ? d : "", d ? p->decoded_len : 0,
                                max_text + 1, &hl, NULL);
            if (h == NULL || tx_append(&text, &tl, h, hl) < 0) {
                free(h);
                goto oom;
            }
            free(h);
            continue;
        }
        if (!tx_is_text(p, "text/plain") && !tx_is_text(p, "text/html")) {
            json_t *a = json_object();
            json_object_set_new(a, "filename",
                                tx_str(p->filename, strlen(p->filename), 512));
            json_object_set_new(a, "type",
                                tx_str(p->type, strlen(p->type), 256));
            json_object_set_new(a, "size",
                                json_integer((json_int_t)p->decoded_len));
            json_array_append_new(att, a);
        }
    }
    clean = mgr_text_clean(text ? text : "", tl, max_text, &cut);
    if (clean == NULL)
        goto oom;
    json_object_set_new(o, "text", json_string(clean));
    json_object_set_new(o, "text_truncated", json_boolean(cut));
    json_object_set_new(o, "attachments", att);
    free(clean);
    free(text);
    mime_free(m);
    return o;
oom:
    free(text);
    json_decref(att);
    json_decref(o);
    mime_free(m);
    return NULL;
}
