/*
 * test_mime_hdr.c - unit tests for hdr_parse and hdr_decode (engine/mime):
 * line endings, folding, malformed lines, mbox From, NUL/8-bit/long lines,
 * header count and length limits; unfolding, RFC 2047 B and Q words in
 * several charsets, adjacent words, malformed words, raw 8-bit text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mime.h"

#define S(lit) (const unsigned char *)(lit), sizeof(lit) - 1

/* Field i's name and raw value as strings, for comparisons. */
static void field_is(const unsigned char *buf, const hdr_block *b, size_t i,
                     const char *name, const char *raw)
{
    assert_true(i < b->count);
    assert_int_equal(b->fields[i].name_len, strlen(name));
    assert_memory_equal(buf + b->fields[i].name_off, name, strlen(name));
    assert_int_equal(b->fields[i].raw_len, strlen(raw));
    assert_memory_equal(buf + b->fields[i].raw_off, raw, strlen(raw));
}

static void test_hdr_crlf_and_lf(void **state)
{
    static const char msg[] = "A: 1\r\nB:2\nC :  three \r\n\r\nbody\r\n";
    const unsigned char *buf = (const unsigned char *)msg;
    hdr_block b;

    assert_int_equal(hdr_parse(S(msg), NULL, &b), 0);
    assert_int_equal(b.count, 3);
    field_is(buf, &b, 0, "A", " 1");
    field_is(buf, &b, 1, "B", "2");
    field_is(buf, &b, 2, "C", "  three ");
    assert_int_equal(b.fields[0].end_off, 6);
    assert_int_equal(b.fields[1].end_off, 10);
    assert_string_equal(msg + b.body_off, "body\r\n");
    assert_int_equal(b.flags, 0);
    hdr_block_free(&b);
}

static void test_hdr_folding(void **state)
{
    static const char msg[] = "Subject: a\r\n b\r\n\tc\r\nX: y\n\n";
    const unsigned char *buf = (const unsigned char *)msg;
    hdr_block b;
    char *v;

    assert_int_equal(hdr_parse(S(msg), NULL, &b), 0);
    assert_int_equal(b.count, 2);
    field_is(buf, &b, 0, "Subject", " a\r\n b\r\n\tc");
    assert_int_equal(b.fields[0].end_off,
                     strlen("Subject: a\r\n b\r\n\tc\r\n"));
    v = hdr_decode(msg + b.fields[0].raw_off, b.fields[0].raw_len, NULL);
    assert_string_equal(v, "a b\tc");
    free(v);
    hdr_block_free(&b);
}

static void test_hdr_no_body(void **state)
{
    static const char msg[] = "A: 1\nB: 2";
    hdr_block b;

    assert_int_equal(hdr_parse(S(msg), NULL, &b), 0);
    assert_int_equal(b.count, 2);
    field_is((const unsigned char *)msg, &b, 1, "B", " 2");
    assert_int_equal(b.body_off, sizeof(msg) - 1);
    assert_int_equal(b.fields[1].end_off, sizeof(msg) - 1);
    hdr_block_free(&b);
}

static void test_hdr_empty(void **state)
{
    hdr_block b;

    assert_int_equal(hdr_parse((const unsigned char *)"", 0, NULL, &b), 0);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.body_off, 0);
    hdr_block_free(&b);
    /* Only an empty line: no fields, body right after it. */
    assert_int_equal(hdr_parse(S("\r\nbody"), NULL, &b), 0);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.body_off, 2);
    assert_int_equal(b.flags, 0);
    hdr_block_free(&b);
}

static void test_hdr_bad_lines(void **state)
{
    static const char m1[] = " continued\nA: 1\n\n";
    static const char m2[] = "A: 1\nno colon here\n more\nB: 2\n\n";
    static const char m3[] = "From foo@example.com Mon Jan  1 00:00:00 2024\n"
                             "A: 1\n\n";
    static const char m4[] = "Bad Name: x\n: empty\nOk: y\n\n";
    hdr_block b;

    assert_int_equal(hdr_parse(S(m1), NULL, &b), 0);
    assert_int_equal(b.count, 1);
    field_is((const unsigned char *)m1, &b, 0, "A", " 1");
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);

    assert_int_equal(hdr_parse(S(m2), NULL, &b), 0);
    assert_int_equal(b.count, 2);
    field_is((const unsigned char *)m2, &b, 0, "A", " 1");
    field_is((const unsigned char *)m2, &b, 1, "B", " 2");
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);

    assert_int_equal(hdr_parse(S(m3), NULL, &b), 0);
    assert_int_equal(b.count, 1);
    field_is((const unsigned char *)m3, &b, 0, "A", " 1");
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);

    assert_int_equal(hdr_parse(S(m4), NULL, &b), 0);
    assert_int_equal(b.count, 1);
    field_is((const unsigned char *)m4, &b, 0, "Ok", " y");
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);
}

static void test_hdr_nul_8bit_long(void **state)
{
    static const char m1[] = "A: x\0y\n\nbody\0";
    static const char m2[] = "A: caf\xc3\xa9\n\n";
    char m3[1200];
    hdr_block b;

    assert_int_equal(hdr_parse(S(m1), NULL, &b), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.fields[0].raw_len, 4);
    assert_int_equal(b.flags, SLUICE_MIME_NUL);
    hdr_block_free(&b);

    assert_int_equal(hdr_parse(S(m2), NULL, &b), 0);
    assert_int_equal(b.flags, SLUICE_MIME_8BIT_HEADER);
    hdr_block_free(&b);

    memcpy(m3, "A: ", 3);
    memset(m3 + 3, 'x', 1000);
    memcpy(m3 + 1003, "\nB: ok\n\n", 8);
    assert_int_equal(hdr_parse((const unsigned char *)m3, 1011, NULL, &b), 0);
    assert_int_equal(b.count, 2);
    assert_int_equal(b.fields[0].raw_len, 1001);
    assert_int_equal(b.flags, SLUICE_MIME_LONG_LINE);
    hdr_block_free(&b);
}

static void test_hdr_limit_count(void **state)
{
    static const char msg[] = "A: 1\nB: 2\nC: 3\nD: 4\nE: 5\n\nbody";
    mime_limits lim;
    hdr_block b;

    mime_limits_default(&lim);
    lim.max_header_count = 3;
    assert_int_equal(hdr_parse(S(msg), &lim, &b), 0);
    assert_int_equal(b.count, 3);
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    assert_true(b.flags & SLUICE_MIME_TRUNCATED);
    assert_string_equal(msg + b.body_off, "body");
    hdr_block_free(&b);
    /* Within the default limit: no flags. */
    assert_int_equal(hdr_parse(S(msg), NULL, &b), 0);
    assert_int_equal(b.count, 5);
    assert_int_equal(b.flags, 0);
    hdr_block_free(&b);
}

static void test_hdr_limit_len(void **state)
{
    static const char msg[] = "Subject: 0123456789\r\n 0123456789\r\n"
                              " 0123456789\r\nX: y\r\n\r\n";
    mime_limits lim;
    hdr_block b;

    mime_limits_default(&lim);
    lim.max_header_len = 25;
    assert_int_equal(hdr_parse(S(msg), &lim, &b), 0);
    assert_int_equal(b.count, 2);
    /* "Subject:" is 8 bytes, so 17 bytes of value remain. */
    assert_int_equal(b.fields[0].raw_len, 17);
    assert_int_equal(b.fields[0].end_off,
                     strlen("Subject: 0123456789\r\n 0123456789\r\n"
                            " 0123456789\r\n"));
    field_is((const unsigned char *)msg, &b, 1, "X", " y");
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);
}

static void test_hdr_huge_line(void **state)
{
    size_t n = 1 << 20, i;
    unsigned char *m = malloc(n + 16);
    hdr_block b;

    assert_non_null(m);
    memcpy(m, "X: ", 3);
    for (i = 3; i < n; i++)
        m[i] = (unsigned char)(i % 7 ? 'a' : ' ');
    memcpy(m + n, "\n\nbody", 6);
    assert_int_equal(hdr_parse(m, n + 6, NULL, &b), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.fields[0].raw_len, 65536 - 2);
    assert_int_equal(b.body_off, n + 2);
    assert_true(b.flags & SLUICE_MIME_LONG_LINE);
    assert_true(b.flags & SLUICE_MIME_BAD_HEADER);
    hdr_block_free(&b);
    free(m);
}

/* ---- hdr_decode ------------------------------------------------ */

static void dec_is(const char *raw, const char *want, unsigned want_flags)
{
    unsigned fl = 0;
    char *v = hdr_decode(raw, strlen(raw), &fl);

    assert_non_null(v);
    assert_string_equal(v, want);
    assert_int_equal(fl, want_flags);
    free(v);
}

static void test_dec_plain(void **state)
{
    dec_is("  hello  world \t", "hello  world", 0);
    dec_is("", "", 0);
    dec_is("a\r\n b", "a b", 0);
    dec_is("x = y ?= z", "x = y ?= z", 0);
}

static void test_dec_b_q(void **state)
{
    dec_is("=?utf-8?B?R3LDvMOfZQ==?=",
           "Gr\xc3\xbc\xc3\x9f"
           "e",
           0);
    dec_is("=?ISO-8859-1?Q?caf=E9_cr=E8me?=", "caf\xc3\xa9 cr\xc3\xa8me", 0);
    dec_is("=?iso-8859-1?q?=A4?=", "\xc2\xa4", 0);
    dec_is("=?windows-1252?Q?=80uro?=",
           "\xe2\x82\xac"
           "uro",
           0);
    dec_is("=?utf-8?b?4oKsdXJv?=",
           "\xe2\x82\xac"
           "uro",
           0);
}

static void test_dec_cjk(void **state)
{
    dec_is("=?shift_jis?B?k/qWew==?=", "\xe6\x97\xa5\xe6\x9c\xac", 0);
    dec_is("=?ISO-2022-JP?B?GyRCRnxLXBsoQg==?=", "\xe6\x97\xa5\xe6\x9c\xac", 0);
    dec_is("=?ks_c_5601-1987?B?x9GxuQ==?=", "\xed\x95\x9c\xea\xb5\xad", 0);
}

static void test_dec_adjacent(void **state)
{
    /* Whitespace between encoded words goes, around text it stays. */
    dec_is("=?utf-8?q?a?= =?utf-8?q?b?=", "ab", 0);
    dec_is("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab", 0);
    dec_is("x =?utf-8?q?a?= y", "x a y", 0);
    dec_is("=?utf-8?q?a?= =?iso-8859-1?q?=E9?=", "a\xc3\xa9", 0);
    /* A character split across two words survives. */
    dec_is("=?utf-8?Q?=E2=82?= =?utf-8?Q?=AC?=", "\xe2\x82\xac", 0);
    /* RFC 2231 language suffix. */
    dec_is("=?utf-8*en?q?hi?=", "hi", 0);
}

static void test_dec_malformed(void **state)
{
    dec_is("=?utf-8?x?abc?=", "=?utf-8?x?abc?=", 0);
    dec_is("=?utf-8?q?abc", "=?utf-8?q?abc", 0);
    dec_is("=??q?abc?=", "=??q?abc?=", 0);
    dec_is("=?utf-8?q?a b?=", "=?utf-8?q?a b?=", 0);
    /* Invalid content: decoded as far as possible, flagged. */
    dec_is("=?utf-8?B?4oK*sdXJv?=",
           "\xe2\x82\xac"
           "uro",
           SLUICE_MIME_BAD_ENCODING);
    dec_is("=?utf-8?q?a=ZZ?=", "a=ZZ", SLUICE_MIME_BAD_ENCODING);
    dec_is("=?utf-8?q?a=FFb?=",
           "a\xef\xbf\xbd"
           "b",
           SLUICE_MIME_BAD_CHARSET);
    dec_is("=?x-no-such-cs?q?caf=E9?=", "caf\xc3\xa9", SLUICE_MIME_BAD_CHARSET);
    dec_is("=?a/b?q?x?=", "=?a/b?q?x?=", 0);
}

static void test_dec_raw_8bit(void **state)
{
    dec_is("caf\xc3\xa9", "caf\xc3\xa9", SLUICE_MIME_8BIT_HEADER);
    dec_is("caf\xe9 \x80", "caf\xc3\xa9 \xe2\x82\xac", SLUICE_MIME_8BIT_HEADER);
}

static void test_dec_controls(void **state)
{
    unsigned fl = 0;
    char *v = hdr_decode("a\0b", 3, &fl);

    assert_string_equal(v, "ab");
    free(v);
    /* Encoded CR/LF/NUL never reach the value. */
    dec_is("=?utf-8?q?a=0D=0Abcc:_x=00y?=", "a  bcc: xy", 0);
    v = hdr_decode(NULL, 0, NULL);
    assert_string_equal(v, "");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_crlf_and_lf),
        cmocka_unit_test(test_hdr_folding),
        cmocka_unit_test(test_hdr_no_body),
        cmocka_unit_test(test_hdr_empty),
        cmocka_unit_test(test_hdr_bad_lines),
        cmocka_unit_test(test_hdr_nul_8bit_long),
        cmocka_unit_test(test_hdr_limit_count),
        cmocka_unit_test(test_hdr_limit_len),
        cmocka_unit_test(test_hdr_huge_line),
        cmocka_unit_test(test_dec_plain),
        cmocka_unit_test(test_dec_b_q),
        cmocka_unit_test(test_dec_cjk),
        cmocka_unit_test(test_dec_adjacent),
        cmocka_unit_test(test_dec_malformed),
        cmocka_unit_test(test_dec_raw_8bit),
        cmocka_unit_test(test_dec_controls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
