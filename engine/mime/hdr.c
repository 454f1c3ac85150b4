/*
 * hdr.c - header blocks: zero-copy field splitting (hdr_parse) and value
 * decoding (hdr_decode: unfolding, RFC 2047 encoded words, raw 8-bit).
 *
 * Interface (mime.h): hdr_parse, hdr_block_free, hdr_decode; internal
 * (mime_int.h): hdr_scan (hdr_parse reusing the field array), hdr_decode_cs
 * (with a per-parse charset cache), hdr_limits.
 *
 * Parsing rules: lines end in LF, optionally preceded by CR.  A line
 * starting with SP/HT continues the previous field.  A field name is
 * 1*(%d33-126 except ':') optionally followed by whitespace before the
 * colon.  Anything else (no colon, bad name, a continuation with no field
 * before it, an mbox "From " line at the very start) sets BAD_HEADER and
 * is skipped.  The block ends at the first empty line, or at the end of
 * the buffer.  LONG_LINE: a line over 998 octets; NUL; 8BIT_HEADER.
 * Fields past max_header_count are ignored (BAD_HEADER|TRUNCATED); a
 * field longer than max_header_len has its raw value cut (BAD_HEADER).
 *
 * Decoding rules: see hdr_decode in mime.h.  Encoded words are recognised
 * wherever they stand (as mail readers do), must be well-formed
 * (=?charset?B|Q?text?= with no whitespace inside), and adjacent ones in
 * the same charset are converted together so a character split across two
 * words survives.
 *
 * Diagnostics: -1 / NULL on ENOMEM only; everything else is a flag.
 *
 * SECURITY: the input is attacker-controlled.  Every loop moves forward;
 * the work is linear in the input.  Decoded values never contain NUL, CR
 * or LF (CR/LF produced by encoded words become spaces).
 */
#include "mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HDR_LINE_MAX 998

void hdr_limits(const mime_limits *lim, mime_limits *eff)
{
    mime_limits_default(eff);
    if (lim == NULL)
        return;
    if (lim->max_parts)
        eff->max_parts = lim->max_parts;
    if (lim->max_depth > 0)
        eff->max_depth = lim->max_depth;
    if (eff->max_depth > MIME_DEPTH_CAP)
        eff->max_depth = MIME_DEPTH_CAP;
    if (lim->max_header_count)
        eff->max_header_count = lim->max_header_count;
    if (lim->max_header_len)
        eff->max_header_len = lim->max_header_len;
}

static int hdr_name_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ':';
}

/* Cap a field's raw value so that the field stays within max bytes. */
static void hdr_cap(hdr_field *f, size_t val_end, size_t max, unsigned *flags)
{
    size_t head = f->raw_off - f->name_off;
    size_t room = max > head ? max - head : 0;
    size_t want = val_end - f->raw_off;

    if (want > room) {
        want = room;
        *flags |= SLUICE_MIME_BAD_HEADER;
    }
    f->raw_len = want;
}

int hdr_scan(const unsigned char *buf, size_t len, const mime_limits *lim,
             hdr_block *out, size_t *cap)
{
    enum { ST_NONE, ST_FIELD, ST_SKIP } st = ST_NONE;
    mime_limits L;
    unsigned flags = 0;
    size_t p = 0;

    hdr_limits(lim, &L);
    out->count = 0;
    out->body_off = len;
    if (len >= 5 && memcmp(buf, "From ", 5) == 0) {
        flags |= SLUICE_MIME_BAD_HEADER;
        st = ST_SKIP; /* its (unlikely) continuation lines go with it */
        while (p < len && buf[p] != '\n')
            p++;
        if (p < len)
            p++;
    }
    while (p < len) {
        size_t ls = p, e, ce, next;
        unsigned char any = 0;

        /* One pass over the line: its end, NULs, 8-bit bytes; eight bytes
         * at a time while none of those is in sight. */
        for (e = p; e + 8 <= len; e += 8) {
            uint64_t w, lf;
            memcpy(&w, buf + e, 8);
            lf = w ^ UINT64_C(0x0a0a0a0a0a0a0a0a);
            if ((((w - UINT64_C(0x0101010101010101)) & ~w) |
                 ((lf - UINT64_C(0x0101010101010101)) & ~lf) | w) &
                UINT64_C(0x8080808080808080))
                break;
        }
        for (; e < len; e++) {
            unsigned char c = buf[e];
            if (c == '\n')
                break;
            if (c == 0)
                flags |= SLUICE_MIME_NUL;
            any |= c;
        }
        if (any & 0x80)
            flags |= SLUICE_MIME_8BIT_HEADER;
        next = e < len ? e + 1 : len;
        ce = (e < len && e > ls && buf[e - 1] == '\r') ? e - 1 : e;
        if (ce - ls > HDR_LINE_MAX)
            flags |= SLUICE_MIME_LONG_LINE;
        if (ce == ls && e < len) {
            out->body_off = next; /* the empty line */
            break;
        }
        if (buf[ls] == ' ' || buf[ls] == '\t') {
            if (st == ST_FIELD) {
                hdr_field *f = &out->fields[out->count - 1];
                hdr_cap(f, ce, L.max_header_len, &flags);
                f->end_off = next;
            } else if (st == ST_NONE) {
                flags |= SLUICE_MIME_BAD_HEADER;
                st = ST_SKIP;
            }
        } else {
            size_t q = ls, name_end;
            while (q < ce && hdr_name_char(buf[q]))
                q++;
            name_end = q;
            while (q < ce && (buf[q] == ' ' || buf[q] == '\t'))
                q++;
            if (name_end == ls || q >= ce || buf[q] != ':') {
                flags |= SLUICE_MIME_BAD_HEADER;
                st = ST_SKIP;
            } else if (out->count >= L.max_header_count) {
                flags |= SLUICE_MIME_BAD_HEADER | SLUICE_MIME_TRUNCATED;
                st = ST_SKIP;
            } else {
                hdr_field *f;
                if (out->count == *cap) {
                    size_t nc = *cap ? *cap * 2 : 32;
                    hdr_field *nf = realloc(out->fields, nc * sizeof(*nf));
                    if (nf == NULL)
                        return -1;
                    out->fields = nf;
                    *cap = nc;
                }
                f = &out->fields[out->count++];
                f->name_off = ls;
                f->name_len = name_end - ls;
                f->raw_off = q + 1;
                hdr_cap(f, ce, L.max_header_len, &flags);
                f->end_off = next;
                st = ST_FIELD;
            }
        }
        p = next;
    }
    out->flags = flags;
    return 0;
}

int hdr_parse(const unsigned char *buf, size_t len, const mime_limits *lim,
              hdr_block *out)
{
    size_t cap = 0;

    memset(out, 0, sizeof(*out));
    if (buf == NULL)
        len = 0;
    if (hdr_scan(buf, len, lim, out, &cap) < 0) {
        hdr_block_free(out);
        return -1;
    }
    return 0;
}

void hdr_block_free(hdr_block *b)
{
    if (b == NULL)
        return;
    free(b->fields);
    b->fields = NULL;
    b->count = 0;
}

/* ---------------------------------------------------------------- */
/* hdr_decode                                                        */

static int hdr_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hdr_ew_cschar(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '?' && c != '=' && c != '(' &&
           c != ')' && c != '<' && c != '>' && c != '@' && c != ',' &&
           c != ';' && c != ':' && c != '"' && c != '/' && c != '[' && c != ']';
}

typedef struct hdr_ew {
    size_t len;
    const unsigned char *cs;
    size_t cslen;
    unsigned char enc;
    const unsigned char *text;
    size_t textlen;
} hdr_ew;

/* s[0..n) starts with "=?"; 1 if it is a well-formed encoded word. */
static int hdr_ew_parse(const unsigned char *s, size_t n, hdr_ew *ew)
{
    size_t j = 2, k;

    while (j < n && hdr_ew_cschar(s[j]))
        j++;
    if (j == 2 || j + 2 >= n || s[j] != '?' || s[j + 2] != '?')
        return 0;
    ew->enc = s[j + 1] | 0x20;
    if (ew->enc != 'b' && ew->enc != 'q')
        return 0;
    for (k = j + 3; k < n && s[k] != '?' && s[k] > 0x20 && s[k] < 0x7f; k++)
        ;
    if (k + 1 >= n || s[k] != '?' || s[k + 1] != '=')
        return 0;
    ew->cs = s + 2;
    ew->cslen = j - 2;
    ew->text = s + j + 3;
    ew->textlen = k - (j + 3);
    ew->len = k + 2;
    return 1;
}

/* 1: the value needs no work beyond trimming (printable ASCII and tabs,
 * no "=?"); 2: the same with line breaks to unfold; 0: full decoding. */
static int hdr_decode_plain(const unsigned char *s, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t high = UINT64_C(0x8080808080808080);
    int folded = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c;
        /* eight bytes at once while none is below 0x20, 8-bit or '=' */
        while (i + 8 <= n) {
            uint64_t w, eq;
            memcpy(&w, s + i, 8);
            eq = w ^ (ones * '=');
            if ((((w - ones * 0x20) & ~w) | ((eq - ones) & ~eq) | w) & high)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '=')
            continue;
        if (c == '\t')
            continue;
        if (c == '\r' || c == '\n') {
            folded = 1;
            continue;
        }
        if (c == '=' && (i + 1 >= n || s[i + 1] != '?'))
            continue;
        return 0;
    }
    return 1 + folded;
}

static void hdr_decode_flush(mime_charsets *cs, mime_buf *pend,
                             const unsigned char *pcs, size_t pcslen,
                             mime_buf *out, unsigned *fl)
{
    if (pcs == NULL)
        return;
    *fl |= mime_charset_convert(
        cs, (const char *)pcs, pcslen,
        pend->data ? pend->data : (const unsigned char *)"", pend->len, out);
    if (pend->oom)
        out->oom = 1;
    pend->len = 0;
}

char *hdr_decode_cs(const char *raw, size_t len, unsigned *flags,
                    mime_charsets *cs)
{
    const unsigned char *s = (const unsigned char *)raw;
    const unsigned char *pcs = NULL; /* charset of pending encoded bytes */
    size_t pcslen = 0, i = 0, end = len, ws0 = 0, ws1 = 0, j;
    mime_buf out = {0}, pend = {0};
    mime_charsets local;
    unsigned fl = 0;
    int last_ew = 0, have_ws = 0;
    hdr_ew ew;
    char *res;

    if (s == NULL) {
        s = (const unsigned char *)"";
        end = 0;
    }
    while (i < end && hdr_ws(s[i]))
        i++;
    while (end > i && hdr_ws(s[end - 1]))
        end--;
    switch (hdr_decode_plain(s + i, end - i)) {
    case 1:
        res = malloc(end - i + 1);
        if (res == NULL)
            return NULL;
        if (end > i)
            memcpy(res, s + i, end - i);
        res[end - i] = '\0';
        return res;
    case 2:
        res = malloc(end - i + 1);
        if (res == NULL)
            return NULL;
        for (j = 0; i < end; i++)
            if (s[i] != '\r' && s[i] != '\n')
                res[j++] = (char)s[i];
        res[j] = '\0';
        return res;
    default:
        break;
    }
    if (cs == NULL) {
        mime_charsets_init(&local);
        cs = &local;
    }
    mime_buf_reserve(&out, end - i + 16);
    while (i < end) {
        unsigned char c = s[i];
        if (hdr_ws(c)) {
            for (j = i; j < end && hdr_ws(s[j]); j++)
                ;
            ws0 = i;
            ws1 = j;
            have_ws = 1;
            i = j;
            continue;
        }
        if (c == '=' && i + 1 < end && s[i + 1] == '?' &&
            hdr_ew_parse(s + i, end - i, &ew)) {
            if (!last_ew) {
                /* Whitespace between encoded words is dropped; before one,
                 * after text, it stays. */
                if (have_ws)
                    for (j = ws0; j < ws1; j++)
                        if (s[j] == ' ' || s[j] == '\t')
                            mime_buf_putc(&out, s[j]);
            }
            have_ws = 0;
            if (pcs && (pcslen != ew.cslen ||
                        strncasecmp((const char *)pcs, (const char *)ew.cs,
                                    pcslen) != 0)) {
                hdr_decode_flush(cs, &pend, pcs, pcslen, &out, &fl);
                pcs = NULL;
            }
            if (ew.enc == 'b')
                fl |= mime_cte_base64(ew.text, ew.textlen, &pend);
            else
                fl |= mime_cte_qword(ew.text, ew.textlen, &pend);
            pcs = ew.cs;
            pcslen = ew.cslen;
            last_ew = 1;
            i += ew.len;
            continue;
        }
        /* Literal text up to the next whitespace or '='. */
        for (j = i + 1; j < end && !hdr_ws(s[j]) && s[j] != '='; j++)
            ;
        hdr_decode_flush(cs, &pend, pcs, pcslen, &out, &fl);
        pcs = NULL;
        if (have_ws)
            for (size_t k = ws0; k < ws1; k++)
                if (s[k] == ' ' || s[k] == '\t')
                    mime_buf_putc(&out, s[k]);
        have_ws = 0;
        if (mime_ascii_prefix(s + i, j - i) != j - i) {
            fl |= SLUICE_MIME_8BIT_HEADER;
            mime_utf8_lenient(&out, s + i, j - i);
        } else {
            mime_buf_put(&out, s + i, j - i);
        }
        last_ew = 0;
        i = j;
    }
    hdr_decode_flush(cs, &pend, pcs, pcslen, &out, &fl);
    mime_buf_free(&pend);
    if (cs == &local)
        mime_charsets_close(&local);
    /* No NUL, CR or LF in a decoded value. */
    {
        size_t k, w = 0;
        for (k = 0; k < out.len; k++) {
            unsigned char c = out.data[k];
            if (c == 0)
                continue;
            if (c == '\r' || c == '\n')
                c = ' ';
            out.data[w++] = c;
        }
        out.len = w;
    }
    if (flags)
        *flags |= fl;
    return (char *)mime_buf_finish(&out, NULL);
}

char *hdr_decode(const char *raw, size_t len, unsigned *flags)
{
    return hdr_decode_cs(raw, len, flags, NULL);
}
