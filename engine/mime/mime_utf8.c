/*
 * mime_utf8.c - UTF-8 validation and repair, windows-1252 to UTF-8.
 *
 * Interface (mime_int.h): mime_utf8_seq, mime_utf8_valid_prefix,
 * mime_utf8_valid, mime_ascii_prefix, mime_utf8_put, mime_utf8_lenient,
 * mime_utf8_repair, mime_cp1252_put.
 *
 * Validation is strict (Unicode table 3-7: no overlongs, no surrogates,
 * nothing above U+10FFFF), so everything these functions emit is valid
 * UTF-8.  Diagnostics: none; allocation failure is sticky in the mime_buf.
 */
#include "mime_int.h"

#include <string.h>

/* windows-1252 0x80..0x9f; the five undefined bytes map to the C1 control
 * of the same value, as the WHATWG encoding standard does. */
static const uint16_t mime_utf8_cp1252[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

size_t mime_ascii_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    uint64_t w;

    while (i + 8 <= n) {
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080))
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

size_t mime_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xF0) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

size_t mime_utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0, k;

    for (;;) {
        i += mime_ascii_prefix(s + i, n - i);
        if (i >= n)
            return n;
        k = mime_utf8_seq(s + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
}

int mime_utf8_valid(const unsigned char *s, size_t n)
{
    return mime_utf8_valid_prefix(s, n) == n;
}

void mime_utf8_put(mime_buf *b, uint32_t cp)
{
    unsigned char u[4];
    size_t k;

    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    mime_buf_put(b, u, k);
}

static void mime_utf8_cp1252_byte(mime_buf *b, unsigned char c)
{
    if (c < 0x80)
        mime_buf_putc(b, c);
    else if (c < 0xA0)
        mime_utf8_put(b, mime_utf8_cp1252[c - 0x80]);
    else
        mime_utf8_put(b, c);
}

void mime_cp1252_put(mime_buf *b, const unsigned char *s, size_t n)
{
    size_t i = 0, a;

    if (mime_buf_reserve(b, n + n / 2) < 0)
        return;
    while (i < n) {
        a = mime_ascii_prefix(s + i, n - i);
        mime_buf_put(b, s + i, a);
        i += a;
        if (i < n)
            mime_utf8_cp1252_byte(b, s[i++]);
    }
}

void mime_utf8_lenient(mime_buf *b, const unsigned char *s, size_t n)
{
    size_t i = 0, v, k;

    while (i < n) {
        v = mime_utf8_valid_prefix(s + i, n - i);
        mime_buf_put(b, s + i, v);
        i += v;
        if (i >= n)
            break;
        k = mime_utf8_seq(s + i, n - i);
        if (k == 0)
            mime_utf8_cp1252_byte(b, s[i++]);
    }
}

size_t mime_utf8_repair(mime_buf *b, const unsigned char *s, size_t n)
{
    size_t i = 0, v, bad = 0;

    while (i < n) {
        v = mime_utf8_valid_prefix(s + i, n - i);
        mime_buf_put(b, s + i, v);
        i += v;
        if (i >= n)
            break;
        /* One U+FFFD per maximal invalid subpart: skip the lead byte and
         * any continuation bytes that follow it. */
        mime_utf8_put(b, 0xFFFD);
        bad++;
        i++;
        while (i < n && (s[i] & 0xC0) == 0x80)
            i++;
    }
    return bad;
}
