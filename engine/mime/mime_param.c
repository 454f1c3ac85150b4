/*
 * mime_param.c - structured MIME header values: Content-Type,
 * Content-Disposition, Content-Transfer-Encoding, and their parameters
 * (RFC 2045 tokens and quoted strings, RFC 822 comments, RFC 2231
 * continuations, charsets and languages).
 *
 * Interface (mime_int.h): mime_ctype_parse, mime_ctype_param,
 * mime_ctype_free.
 *
 * Leniency: folds are removed first; comments are skipped; an unquoted
 * value runs to the next ';' (minus a trailing comment and whitespace), so
 * the '=' of unquoted boundaries and spaces of unquoted file names
 * survive; an unterminated quoted string runs to the end.  Anything else
 * that does not parse sets ct->bad (the caller flags BAD_HEADER) and is
 * skipped up to the next ';'.
 *
 * SECURITY: input is attacker-controlled; every scan moves forward, so the
 * work is linear in the value (RFC 2231 sections are sorted, not searched).
 */
#include "mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int mime_param_tspecial(unsigned char c)
{
    return c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
           c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' ||
           c == '/' || c == '[' || c == ']' || c == '?' || c == '=';
}

static int mime_param_token(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !mime_param_tspecial(c);
}

/* Skip whitespace and (nested) comments. */
static size_t mime_param_cfws(mime_ctype *ct, size_t p, size_t end)
{
    const unsigned char *s = ct->text.data;
    int depth;

    while (p < end) {
        if (s[p] == ' ' || s[p] == '\t') {
            p++;
            continue;
        }
        if (s[p] != '(')
            break;
        depth = 0;
        while (p < end) {
            if (s[p] == '\\' && p + 1 < end) {
                p += 2;
                continue;
            }
            if (s[p] == '(')
                depth++;
            else if (s[p] == ')' && --depth == 0) {
                p++;
                break;
            }
            p++;
        }
        if (depth > 0)
            ct->bad = 1;
    }
    return p;
}

static int mime_param_add(mime_ctype *ct, size_t n0, size_t n1, size_t v0,
                          size_t v1)
{
    const unsigned char *s = ct->text.data;
    mime_param *pa;
    size_t star, k;

    if (ct->nparams == ct->capparams) {
        size_t nc = ct->capparams ? ct->capparams * 2 : 8;
        mime_param *np = realloc(ct->params, nc * sizeof(*np));
        if (np == NULL)
            return -1;
        ct->params = np;
        ct->capparams = nc;
    }
    pa = &ct->params[ct->nparams++];
    pa->name_off = n0;
    pa->name_len = n1 - n0;
    pa->val_off = v0;
    pa->val_len = v1 - v0;
    pa->section = -1;
    pa->extended = 0;
    /* RFC 2231: name*, name*N, name*N* */
    for (star = n0; star < n1 && s[star] != '*'; star++)
        ;
    if (star == n1)
        return 0;
    if (star + 1 == n1) {
        pa->name_len = star - n0;
        pa->extended = 1;
        return 0;
    }
    {
        int num = 0, digits = 0;
        for (k = star + 1; k < n1 && s[k] >= '0' && s[k] <= '9'; k++) {
            if (++digits > 5)
                return 0;
            num = num * 10 + (s[k] - '0');
        }
        if (digits == 0)
            return 0;
        if (k < n1 && s[k] == '*' && k + 1 == n1)
            pa->extended = 1;
        else if (k != n1)
            return 0;
        pa->name_len = star - n0;
        pa->section = num;
    }
    return 0;
}

int mime_ctype_parse(mime_ctype *ct, const char *raw, size_t n, int want_type)
{
    size_t i, p, end, t0, v0, v1;
    const unsigned char *s;

    memset(ct, 0, sizeof(*ct));
    if (mime_buf_reserve(&ct->text, n + 1) < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (raw[i] != '\r' && raw[i] != '\n')
            ct->text.data[ct->text.len++] = (unsigned char)raw[i];
    end = ct->text.len;
    s = ct->text.data;

    p = mime_param_cfws(ct, 0, end);
    if (!want_type && p < end && s[p] == '"') {
        /* A quoted single token ("base64"): seen in the wild. */
        t0 = ++p;
        while (p < end && s[p] != '"')
            p++;
        ct->main_off = t0;
        ct->main_len = p - t0;
        while (ct->main_len && (s[t0 + ct->main_len - 1] == ' ' ||
                                s[t0 + ct->main_len - 1] == '\t'))
            ct->main_len--;
        while (ct->main_len &&
               (s[ct->main_off] == ' ' || s[ct->main_off] == '\t')) {
            ct->main_off++;
            ct->main_len--;
        }
        if (p < end)
            p++;
        ct->bad = 1;
    } else {
        t0 = p;
        while (p < end && mime_param_token(s[p]))
            p++;
        ct->main_off = t0;
        ct->main_len = p - t0;
    }
    if (want_type) {
        p = mime_param_cfws(ct, p, end);
        if (ct->main_len == 0 || p >= end || s[p] != '/') {
            ct->bad = 1;
            ct->main_len = 0;
        } else {
            p = mime_param_cfws(ct, p + 1, end);
            t0 = p;
            while (p < end && mime_param_token(s[p]))
                p++;
            ct->sub_off = t0;
            ct->sub_len = p - t0;
            if (ct->sub_len == 0) {
                ct->bad = 1;
                ct->main_len = 0;
            }
        }
    }
    p = mime_param_cfws(ct, p, end);
    if (p < end && s[p] != ';') {
        ct->bad = 1; /* junk after the type; parameters may follow */
        while (p < end && s[p] != ';')
            p++;
    }

    while (p < end) {
        size_t n0, n1;

        p = mime_param_cfws(ct, p, end);
        if (p < end && s[p] == ';') {
            p++;
            continue;
        }
        if (p >= end)
            break;
        n0 = p;
        while (p < end && mime_param_token(s[p]))
            p++;
        n1 = p;
        p = mime_param_cfws(ct, p, end);
        if (n0 == n1 || p >= end || s[p] != '=') {
            ct->bad = 1;
            while (p < end && s[p] != ';')
                p++;
            continue;
        }
        p = mime_param_cfws(ct, p + 1, end);
        if (p < end && s[p] == '"') {
            size_t q = p + 1;
            int esc = 0;
            while (q < end && s[q] != '"') {
                if (s[q] == '\\' && q + 1 < end) {
                    esc = 1;
                    q++;
                }
                q++;
            }
            if (q >= end)
                ct->bad = 1; /* unterminated: runs to the end */
            v0 = p + 1;
            v1 = q < end ? q : end;
            if (esc) {
                /* Unescape into the tail of the buffer. */
                size_t start = ct->text.len, k;
                if (mime_buf_reserve(&ct->text, v1 - v0) < 0)
                    return -1;
                s = ct->text.data;
                for (k = v0; k < v1; k++) {
                    if (s[k] == '\\' && k + 1 < v1)
                        k++;
                    ct->text.data[ct->text.len++] = s[k];
                }
                v0 = start;
                v1 = ct->text.len;
            }
            p = q < end ? q + 1 : end;
            p = mime_param_cfws(ct, p, end);
            if (p < end && s[p] != ';') {
                ct->bad = 1;
                while (p < end && s[p] != ';')
                    p++;
            }
        } else {
            v0 = p;
            while (p < end && s[p] != ';')
                p++;
            v1 = p;
            /* Drop a trailing "(comment)" and whitespace. */
            if (v1 > v0 && s[v1 - 1] == ')') {
                size_t k = v1;
                while (k > v0 && s[k - 1] != '(')
                    k--;
                if (k > v0 + 1 && (s[k - 2] == ' ' || s[k - 2] == '\t'))
                    v1 = k - 1;
            }
            while (v1 > v0 && (s[v1 - 1] == ' ' || s[v1 - 1] == '\t'))
                v1--;
        }
        if (mime_param_add(ct, n0, n1, v0, v1) < 0)
            return -1;
        s = ct->text.data;
    }
    return 0;
}

void mime_ctype_free(mime_ctype *ct)
{
    mime_buf_free(&ct->text);
    free(ct->params);
    ct->params = NULL;
    ct->nparams = ct->capparams = 0;
}

static int mime_param_is(const mime_ctype *ct, const mime_param *pa,
                         const char *name)
{
    size_t nl = strlen(name);

    return pa->name_len == nl &&
           strncasecmp((const char *)ct->text.data + pa->name_off, name, nl) ==
               0;
}

/* Percent-decode s[0..n) onto b. */
static unsigned mime_param_pct(const unsigned char *s, size_t n, mime_buf *b)
{
    unsigned flags = 0;
    size_t i;
    int h1, h2;

    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && (h1 = mime_cte_hex(s[i + 1])) >= 0 &&
            (h2 = mime_cte_hex(s[i + 2])) >= 0) {
            mime_buf_putc(b, (unsigned char)(h1 << 4 | h2));
            i += 2;
            continue;
        }
        if (s[i] == '%')
            flags |= SLUICE_MIME_BAD_ENCODING;
        mime_buf_putc(b, s[i]);
    }
    return flags;
}

static int mime_param_cmp(const void *a, const void *b)
{
    const mime_param *x = *(const mime_param *const *)a;
    const mime_param *y = *(const mime_param *const *)b;

    if (x->section != y->section)
        return x->section < y->section ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Drop NUL, turn CR/LF into spaces, hand over as a C string. */
static char *mime_param_finish(mime_buf *b)
{
    size_t i, j = 0;

    for (i = 0; i < b->len; i++) {
        unsigned char c = b->data[i];
        if (c == 0)
            continue;
        if (c == '\r' || c == '\n')
            c = ' ';
        b->data[j++] = c;
    }
    b->len = j;
    return (char *)mime_buf_finish(b, NULL);
}

char *mime_ctype_param(mime_ctype *ct, const char *name, int raw_only,
                       mime_charsets *cs, unsigned *flags, int *oom)
{
    const unsigned char *s = ct->text.data;
    mime_param *plain = NULL, *ext = NULL, **sec = NULL;
    size_t i, nsec = 0, cslen = 0;
    const unsigned char *csname = NULL;
    mime_buf raw = {0}, out = {0};
    char *res;

    for (i = 0; i < ct->nparams; i++) {
        mime_param *pa = &ct->params[i];
        if (!mime_param_is(ct, pa, name))
            continue;
        if (pa->section < 0 && !pa->extended) {
            if (plain == NULL)
                plain = pa;
        } else if (pa->section < 0) {
            if (ext == NULL)
                ext = pa;
        } else {
            nsec++;
        }
    }
    if (raw_only) {
        if (plain == NULL)
            return NULL;
        res = malloc(plain->val_len + 1);
        if (res == NULL) {
            *oom = 1;
            return NULL;
        }
        memcpy(res, s + plain->val_off, plain->val_len);
        res[plain->val_len] = '\0';
        return res;
    }
    if (ext == NULL && nsec == 0) {
        if (plain == NULL)
            return NULL;
        res = hdr_decode_cs((const char *)s + plain->val_off, plain->val_len,
                            flags, cs);
        if (res == NULL)
            *oom = 1;
        return res;
    }
    if (ext == NULL) {
        size_t k = 0;
        sec = malloc(nsec * sizeof(*sec));
        if (sec == NULL) {
            *oom = 1;
            return NULL;
        }
        for (i = 0; i < ct->nparams; i++)
            if (ct->params[i].section >= 0 &&
                mime_param_is(ct, &ct->params[i], name))
                sec[k++] = &ct->params[i];
        qsort(sec, nsec, sizeof(*sec), mime_param_cmp);
    }
    for (i = 0; i < (ext ? 1 : nsec); i++) {
        mime_param *pa = ext ? ext : sec[i];
        const unsigned char *v = s + pa->val_off;
        size_t vl = pa->val_len;

        if (!ext && i > 0 && sec[i - 1]->section == pa->section)
            continue; /* duplicate section: first wins */
        if (pa->extended && i == 0 && (ext || pa->section == 0)) {
            /* charset'language'value */
            const unsigned char *q1 = memchr(v, '\'', vl), *q2;
            if (q1 && (q2 = memchr(q1 + 1, '\'', vl - (size_t)(q1 + 1 - v)))) {
                csname = v;
                cslen = (size_t)(q1 - v);
                vl -= (size_t)(q2 + 1 - v);
                v = q2 + 1;
            } else {
                *flags |= SLUICE_MIME_BAD_HEADER;
            }
        }
        if (pa->extended)
            *flags |= mime_param_pct(v, vl, &raw);
        else
            mime_buf_put(&raw, v, vl);
    }
    free(sec);
    *flags |= mime_charset_convert(
        cs, csname ? (const char *)csname : "", cslen,
        raw.data ? raw.data : (const unsigned char *)"", raw.len, &out);
    if (raw.oom)
        out.oom = 1;
    mime_buf_free(&raw);
    res = mime_param_finish(&out);
    if (res == NULL)
        *oom = 1;
    return res;
}
