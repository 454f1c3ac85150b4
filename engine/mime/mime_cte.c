/*
 * mime_cte.c - transfer decodings: base64, quoted-printable, and the RFC
 * 2047 "Q" encoding.
 *
 * Interface (mime_int.h): mime_cte_base64, mime_cte_qp, mime_cte_qword,
 * mime_cte_hex.
 *
 * Diagnostics: each decoder decodes all it can and returns
 * SLUICE_MIME_BAD_ENCODING if the input was not valid (junk characters
 * and dangling bits in base64; '=' not followed by two hex digits or a
 * line break in quoted-printable, kept literally).  Whitespace in base64
 * and a missing final padding are tolerated silently.
 */
#include "mime_int.h"

#include <string.h>

enum { B64_WS = 64, B64_PAD = 65, B64_BAD = 66 };

/* clang-format off */
#define W B64_WS
#define P B64_PAD
#define X B64_BAD
static const unsigned char mime_cte_b64[256] = {
    X, X, X, X, X, X, X, X, X, W, W, X, X, W, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    W, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, P, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef W
#undef P
#undef X
/* clang-format on */

int mime_cte_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

unsigned mime_cte_base64(const unsigned char *s, size_t n, mime_buf *b)
{
    unsigned char *o;
    uint32_t acc = 0;
    unsigned flags = 0;
    int nb = 0, padded = 0;
    size_t i = 0;

    if (mime_buf_reserve(b, n / 4 * 3 + 3) < 0)
        return 0;
    o = b->data + b->len;
    while (i < n) {
        unsigned v;
        if (nb == 0 && i + 4 <= n) {
            /* Fast path: a whole quantum of valid characters. */
            unsigned v0 = mime_cte_b64[s[i]], v1 = mime_cte_b64[s[i + 1]];
            unsigned v2 = mime_cte_b64[s[i + 2]], v3 = mime_cte_b64[s[i + 3]];
            if ((v0 | v1 | v2 | v3) < 64) {
                uint32_t q = v0 << 18 | v1 << 12 | v2 << 6 | v3;
                o[0] = (unsigned char)(q >> 16);
                o[1] = (unsigned char)(q >> 8);
                o[2] = (unsigned char)q;
                o += 3;
                i += 4;
                if (padded) {
                    flags |= SLUICE_MIME_BAD_ENCODING; /* data after pad */
                    padded = 0;
                }
                continue;
            }
        }
        v = mime_cte_b64[s[i++]];
        if (v < 64) {
            if (padded) {
                flags |= SLUICE_MIME_BAD_ENCODING; /* data after padding */
                padded = 0;
            }
            acc = acc << 6 | v;
            if (++nb == 4) {
                o[0] = (unsigned char)(acc >> 16);
                o[1] = (unsigned char)(acc >> 8);
                o[2] = (unsigned char)acc;
                o += 3;
                nb = 0;
                acc = 0;
            }
        } else if (v == B64_WS) {
            continue;
        } else if (v == B64_PAD) {
            if (nb == 2) {
                *o++ = (unsigned char)(acc >> 4);
            } else if (nb == 3) {
                o[0] = (unsigned char)(acc >> 10);
                o[1] = (unsigned char)(acc >> 2);
                o += 2;
            } else if (nb == 1 || !padded) {
                flags |= SLUICE_MIME_BAD_ENCODING;
            }
            nb = 0;
            acc = 0;
            padded = 1;
        } else {
            flags |= SLUICE_MIME_BAD_ENCODING;
        }
    }
    if (nb == 2) {
        *o++ = (unsigned char)(acc >> 4);
    } else if (nb == 3) {
        o[0] = (unsigned char)(acc >> 10);
        o[1] = (unsigned char)(acc >> 2);
        o += 2;
    } else if (nb == 1) {
        flags |= SLUICE_MIME_BAD_ENCODING;
    }
    b->len = (size_t)(o - b->data);
    return flags;
}

/* Bytes quoted-printable decoding must look at. */
static int mime_cte_qp_special(unsigned char c)
{
    return c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

unsigned mime_cte_qp(const unsigned char *s, size_t n, mime_buf *b)
{
    unsigned char *o, *ws = NULL; /* start of trailing literal WSP */
    unsigned flags = 0;
    size_t i = 0, j;
    int h1, h2;

    if (mime_buf_reserve(b, n) < 0)
        return 0;
    o = b->data + b->len;
    while (i < n) {
        unsigned char c = s[i];
        if (!mime_cte_qp_special(c)) {
            j = i + 1;
            while (j < n && !mime_cte_qp_special(s[j]))
                j++;
            memcpy(o, s + i, j - i);
            o += j - i;
            i = j;
            ws = NULL;
            continue;
        }
        if (c == '=') {
            if (i + 2 < n && (h1 = mime_cte_hex(s[i + 1])) >= 0 &&
                (h2 = mime_cte_hex(s[i + 2])) >= 0) {
                *o++ = (unsigned char)(h1 << 4 | h2);
                i += 3;
                ws = NULL;
                continue;
            }
            /* Soft line break: '=' [WSP] (CRLF | LF | end). */
            j = i + 1;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j >= n) {
                i = n;
                continue;
            }
            if (s[j] == '\n') {
                i = j + 1;
                continue;
            }
            if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') {
                i = j + 2;
                continue;
            }
            flags |= SLUICE_MIME_BAD_ENCODING;
            *o++ = '=';
            i++;
            ws = NULL;
            continue;
        }
        if (c == ' ' || c == '\t') {
            if (ws == NULL)
                ws = o;
            *o++ = c;
            i++;
            continue;
        }
        /* CR or LF: a hard line break drops trailing whitespace. */
        if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            if (ws)
                o = ws;
            ws = NULL;
        }
        *o++ = c;
        i++;
    }
    b->len = (size_t)(o - b->data);
    return flags;
}

unsigned mime_cte_qword(const unsigned char *s, size_t n, mime_buf *b)
{
    unsigned flags = 0;
    size_t i;
    int h1, h2;

    if (mime_buf_reserve(b, n) < 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '_') {
            c = ' ';
        } else if (c == '=') {
            if (i + 2 < n && (h1 = mime_cte_hex(s[i + 1])) >= 0 &&
                (h2 = mime_cte_hex(s[i + 2])) >= 0) {
                c = (unsigned char)(h1 << 4 | h2);
                i += 2;
            } else {
                flags |= SLUICE_MIME_BAD_ENCODING;
            }
        }
        b->data[b->len++] = c;
    }
    return flags;
}
