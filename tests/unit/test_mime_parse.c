/*
 * test_mime_parse.c - unit tests for mime_parse (engine/mime): defaults,
 * nested multipart, message/rfc822, digest, boundaries (missing close,
 * none at all, trailing whitespace, CRLF, preamble/epilogue), transfer
 * decodings, charset conversion, RFC 2231/2047 file names, limits (parts,
 * depth, header count, header length), NUL bytes, empty input, headers
 * only, and scale (10,000 parts, a 1 MB header line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime.h"

static mime_msg *parse(const char *msg, const mime_limits *lim)
{
    mime_msg *m = mime_parse((const unsigned char *)msg, strlen(msg), lim);

    assert_non_null(m);
    return m;
}

static const sluice_part *part(const mime_msg *m, size_t i)
{
    const sluice_part *p = mime_part(m, i);

    assert_non_null(p);
    assert_int_equal(p->size, sizeof(*p));
    assert_int_equal(p->index, (int)i);
    return p;
}

static void decoded_is(const sluice_part *p, const char *want)
{
    assert_non_null(p->decoded);
    assert_int_equal(p->decoded_len, strlen(want));
    assert_memory_equal(p->decoded, want, strlen(want));
    assert_int_equal(p->decoded[p->decoded_len], 0);
}

/* The raw bytes of part p are exactly `want`. */
static void raw_is(const char *msg, const sluice_part *p, const char *want)
{
    assert_int_equal(p->length, strlen(want));
    assert_memory_equal(msg + p->offset, want, strlen(want));
}

static void test_simple(void **state)
{
    static const char msg[] = "Subject: hi\nFrom: a@b\n\nHello\n";
    mime_msg *m = parse(msg, NULL);
    const sluice_part *p;
    const sluice_header *h;

    assert_int_equal(mime_part_count(m), 1);
    assert_null(mime_part(m, 1));
    p = part(m, 0);
    assert_int_equal(p->parent, -1);
    assert_int_equal(p->depth, 0);
    assert_string_equal(p->type, "text/plain");
    assert_string_equal(p->charset, "");
    assert_string_equal(p->encoding, "7bit");
    assert_string_equal(p->disposition, "");
    assert_string_equal(p->filename, "");
    assert_false(p->is_multipart);
    assert_false(p->is_attachment);
    assert_int_equal(p->offset, 0);
    assert_int_equal(p->length, sizeof(msg) - 1);
    assert_int_equal(p->body_offset, 23);
    assert_int_equal(p->body_length, 6);
    decoded_is(p, "Hello\n");
    assert_int_equal(mime_flags(m), 0);
    assert_int_equal(mime_header_count(m), 2);
    h = mime_header(m, 0);
    assert_non_null(h);
    assert_int_equal(h->size, sizeof(*h));
    assert_int_equal(h->name.len, 7);
    assert_ptr_equal(h->name.ptr, msg);
    assert_ptr_equal(h->raw.ptr, msg + 8);
    assert_int_equal(h->raw.len, 3);
    assert_string_equal(h->value, "hi");
    assert_null(mime_header(m, 2));
    mime_free(m);
}

static void test_empty_and_headers_only(void **state)
{
    mime_msg *m = mime_parse((const unsigned char *)"", 0, NULL);
    const sluice_part *p;

    assert_non_null(m);
    assert_int_equal(mime_part_count(m), 1);
    p = part(m, 0);
    assert_string_equal(p->type, "text/plain");
    assert_int_equal(p->length, 0);
    decoded_is(p, "");
    assert_int_equal(mime_header_count(m), 0);
    mime_free(m);

    m = parse("Subject: x\r\nContent-Type: text/html\r\n", NULL);
    p = part(m, 0);
    assert_string_equal(p->type, "text/html");
    assert_int_equal(p->body_length, 0);
    assert_int_equal(p->body_offset, p->length);
    decoded_is(p, "");
    assert_int_equal(mime_header_count(m), 2);
    mime_free(m);
}

static const char nested[] =
    "From: a@b\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "preamble\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=outer-inner\n"
    "\n"
    "--outer-inner\n"
    "Content-Type: text/plain; charset=\"UTF-8\"\n"
    "\n"
    "plain text\n"
    "--outer-inner\n"
    "Content-Type: TEXT/HTML\n"
    "\n"
    "<p>html</p>\n"
    "--outer-inner--\n"
    "--outer\n"
    "Content-Type: application/pdf; name=\"doc.pdf\"\n"
    "Content-Disposition: attachment\n"
    "Content-Transfer-Encoding: BASE64\n"
    "\n"
    "JVBERi0=\n"
    "--outer--\n"
    "epilogue\n";

static void test_nested(void **state)
{
    mime_msg *m = parse(nested, NULL);
    const sluice_part *p;

    assert_int_equal(mime_part_count(m), 5);
    p = part(m, 0);
    assert_string_equal(p->type, "multipart/mixed");
    assert_true(p->is_multipart);
    assert_null(p->decoded);
    p = part(m, 1);
    assert_string_equal(p->type, "multipart/alternative");
    assert_int_equal(p->parent, 0);
    assert_int_equal(p->depth, 1);
    p = part(m, 2);
    assert_string_equal(p->type, "text/plain");
    assert_string_equal(p->charset, "utf-8");
    assert_int_equal(p->parent, 1);
    assert_int_equal(p->depth, 2);
    raw_is(nested, p,
           "Content-Type: text/plain; charset=\"UTF-8\"\n\n"
           "plain text");
    decoded_is(p, "plain text");
    p = part(m, 3);
    assert_string_equal(p->type, "text/html");
    decoded_is(p, "<p>html</p>");
    p = part(m, 4);
    assert_int_equal(p->parent, 0);
    assert_int_equal(p->depth, 1);
    assert_string_equal(p->type, "application/pdf");
    assert_string_equal(p->encoding, "base64");
    assert_string_equal(p->disposition, "attachment");
    assert_string_equal(p->filename, "doc.pdf");
    assert_true(p->is_attachment);
    decoded_is(p, "%PDF-");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
}

static void test_crlf_boundary_ws(void **state)
{
    static const char msg[] =
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b  \t\r\n"
        "\r\n"
        "one\r\n"
        "--b\r\n"
        "\r\n"
        "two\r\n\r\n"
        "--b-- \r\n";
    mime_msg *m = parse(msg, NULL);

    assert_int_equal(mime_part_count(m), 3);
    decoded_is(part(m, 1), "one");
    decoded_is(part(m, 2), "two\r\n");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
}

static void test_rfc822(void **state)
{
    static const char msg[] = "Content-Type: message/rfc822\n\n"
                              "Subject: inner\n"
                              "Content-Type: multipart/mixed; boundary=z\n\n"
                              "--z\n\ninner text\n--z--\n";
    mime_msg *m = parse(msg, NULL);
    const sluice_part *p;

    assert_int_equal(mime_part_count(m), 3);
    p = part(m, 0);
    assert_string_equal(p->type, "message/rfc822");
    assert_true(p->is_multipart);
    p = part(m, 1);
    assert_string_equal(p->type, "multipart/mixed");
    assert_int_equal(p->parent, 0);
    assert_int_equal(p->depth, 1);
    assert_int_equal(p->offset, part(m, 0)->body_offset);
    p = part(m, 2);
    assert_int_equal(p->depth, 2);
    decoded_is(p, "inner text");
    mime_free(m);
}

static void test_digest(void **state)
{
    static const char msg[] = "Content-Type: multipart/digest; boundary=d\n\n"
                              "--d\n\nSubject: one\n\nfirst\n"
                              "--d\nContent-Type: text/plain\n\nsecond\n"
                              "--d--\n";
    mime_msg *m = parse(msg, NULL);
    const sluice_part *p;

    assert_int_equal(mime_part_count(m), 4);
    p = part(m, 1);
    assert_string_equal(p->type, "message/rfc822");
    assert_true(p->is_multipart);
    p = part(m, 2);
    assert_int_equal(p->parent, 1);
    assert_string_equal(p->type, "text/plain");
    decoded_is(p, "first");
    p = part(m, 3);
    assert_int_equal(p->parent, 0);
    assert_string_equal(p->type, "text/plain");
    decoded_is(p, "second");
    mime_free(m);
}

static void test_missing_close(void **state)
{
    static const char msg[] = "Content-Type: multipart/mixed; boundary=b\n\n"
                              "--b\n\none\n--b\n\ntwo\nthree\n";
    mime_msg *m = parse(msg, NULL);

    assert_int_equal(mime_part_count(m), 3);
    assert_true(part(m, 0)->flags & SLUICE_MIME_BAD_BOUNDARY);
    decoded_is(part(m, 1), "one");
    decoded_is(part(m, 2), "two\nthree\n");
    assert_int_equal(part(m, 2)->offset + part(m, 2)->length, sizeof(msg) - 1);
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_BOUNDARY);
    mime_free(m);
}

static void test_no_delimiter(void **state)
{
    static const char msg[] =
        "Content-Type: multipart/alternative; boundary=nope\n\n"
        "--other\n\nhidden text\n";
    static const char msg2[] =
        "Content-Type: multipart/mixed\n\nno boundary parameter\n";
    mime_msg *m = parse(msg, NULL);

    assert_int_equal(mime_part_count(m), 2);
    assert_true(part(m, 0)->flags & SLUICE_MIME_BAD_BOUNDARY);
    assert_string_equal(part(m, 1)->type, "text/plain");
    decoded_is(part(m, 1), "--other\n\nhidden text\n");
    mime_free(m);

    m = parse(msg2, NULL);
    assert_int_equal(mime_part_count(m), 2);
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_BOUNDARY);
    decoded_is(part(m, 1), "no boundary parameter\n");
    mime_free(m);
}

static void test_base64(void **state)
{
    static const char ok[] = "Content-Transfer-Encoding: base64\n"
                             "Content-Type: application/octet-stream\n\n"
                             "aGVs\r\n bG8g\t\nd29y bGQ=\n";
    static const char junk[] = "Content-Transfer-Encoding: base64\n"
                               "Content-Type: application/octet-stream\n\n"
                               "aGVs*bG8!gd29y\x80"
                               "bGQ=\n";
    mime_msg *m = parse(ok, NULL);

    decoded_is(part(m, 0), "hello world");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
    m = parse(junk, NULL);
    decoded_is(part(m, 0), "hello world");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_ENCODING);
    mime_free(m);
}

static void test_qp(void **state)
{
    static const char msg[] = "Content-Transfer-Encoding: quoted-printable\n"
                              "Content-Type: text/plain; charset=utf-8\n\n"
                              "soft=\nbreak=  \r\nhere caf=C3=A9 =3D  \n"
                              "bad =ZZ and =\tx end=";
    mime_msg *m = parse(msg, NULL);

    decoded_is(part(m, 0), "softbreakhere caf\xc3\xa9 =\nbad =ZZ and =\tx end");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_ENCODING);
    mime_free(m);
    m = parse("Content-Transfer-Encoding: \"Quoted-Printable\"\n\nx=3Dy\n",
              NULL);
    assert_string_equal(part(m, 0)->encoding, "quoted-printable");
    decoded_is(part(m, 0), "x=y\n");
    mime_free(m);
    m = parse("Content-Transfer-Encoding: quoted-printable\n\na=3Db=\n", NULL);
    decoded_is(part(m, 0), "a=b");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
}

static void test_charsets(void **state)
{
    mime_msg *m;

    m = parse("Content-Type: text/plain; charset=ISO-8859-1\n"
              "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 =80\n",
              NULL);
    assert_string_equal(part(m, 0)->charset, "iso-8859-1");
    decoded_is(part(m, 0), "caf\xc3\xa9 \xe2\x82\xac\n");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);

    m = parse("Content-Type: text/plain; charset=x-bogus\n\ncaf\xe9\n", NULL);
    decoded_is(part(m, 0), "caf\xc3\xa9\n");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_CHARSET);
    mime_free(m);

    m = parse("Content-Type: text/plain; charset=\"ks_c_5601-1987\"\n"
              "Content-Transfer-Encoding: base64\n\nx9GxuQ==\n",
              NULL);
    decoded_is(part(m, 0), "\xed\x95\x9c\xea\xb5\xad");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);

    m = parse("Content-Type: text/plain; charset=utf-8\n\nok \xff!\n", NULL);
    decoded_is(part(m, 0), "ok \xef\xbf\xbd!\n");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_CHARSET);
    mime_free(m);

    /* us-ascii / undeclared: valid UTF-8 kept, else windows-1252. */
    m = parse("Content-Type: text/plain; charset=us-ascii\n\n\xc3\xa9\n", NULL);
    decoded_is(part(m, 0), "\xc3\xa9\n");
    mime_free(m);
    m = parse("\n\x93quoted\x94\n", NULL);
    decoded_is(part(m, 0), "\xe2\x80\x9cquoted\xe2\x80\x9d\n");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);

    /* Non-text leaves are not converted. */
    m = parse("Content-Type: image/gif\n\nGIF\xff\n", NULL);
    decoded_is(part(m, 0), "GIF\xff\n");
    mime_free(m);
}

static void test_filenames(void **state)
{
    mime_msg *m;

    m = parse("Content-Type: application/pdf\n"
              "Content-Disposition: attachment;\n"
              " filename*0*=utf-8''%E2%82%AC%20;\n"
              " filename*2=\"pdf\"; filename*1=\"report.\"\n\nx",
              NULL);
    assert_string_equal(part(m, 0)->filename, "\xe2\x82\xac report.pdf");
    assert_true(part(m, 0)->is_attachment);
    mime_free(m);

    m = parse("Content-Type: application/octet-stream;\n"
              " name=\"=?iso-8859-1?Q?r=E9sum=E9.doc?=\"\n\nx",
              NULL);
    assert_string_equal(part(m, 0)->filename, "r\xc3\xa9sum\xc3\xa9.doc");
    assert_true(part(m, 0)->is_attachment);
    assert_string_equal(part(m, 0)->disposition, "");
    mime_free(m);

    m = parse("Content-Disposition: inline; filename*=iso-8859-1'fr'caf%E9"
              ".txt; filename=\"plain.txt\"\n\nx",
              NULL);
    assert_string_equal(part(m, 0)->filename, "caf\xc3\xa9.txt");
    assert_string_equal(part(m, 0)->disposition, "inline");
    mime_free(m);

    /* Disposition filename wins over Content-Type name. */
    m = parse("Content-Type: text/plain; name=a.txt\n"
              "Content-Disposition: attachment; filename=\"b \\\"q\\\".txt\""
              "\n\nx",
              NULL);
    assert_string_equal(part(m, 0)->filename, "b \"q\".txt");
    mime_free(m);
}

static void test_malformed_ctype(void **state)
{
    mime_msg *m;

    m = parse("Content-Type: garbage\n\nbody", NULL);
    assert_string_equal(part(m, 0)->type, "text/plain");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_HEADER);
    mime_free(m);
    m = parse("Content-Type: text/\n\nbody", NULL);
    assert_string_equal(part(m, 0)->type, "text/plain");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_HEADER);
    mime_free(m);
    m = parse("Content-Type: Text/HTML (comment) ; charset=\"UTF-8\"\n\nb",
              NULL);
    assert_string_equal(part(m, 0)->type, "text/html");
    assert_string_equal(part(m, 0)->charset, "utf-8");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
}

static char *build_parts(size_t n)
{
    size_t cap = 200 + n * 40, len;
    char *s = malloc(cap), *o = s;
    size_t i;

    assert_non_null(s);
    o += snprintf(o, cap, "Content-Type: multipart/mixed; boundary=q\n\n");
    for (i = 0; i < n; i++)
        o += snprintf(o, cap - (size_t)(o - s), "--q\n\npart %zu\n", i);
    len = (size_t)(o - s);
    snprintf(o, cap - len, "--q--\n");
    return s;
}

static void test_limit_parts(void **state)
{
    char *msg = build_parts(10);
    mime_limits lim;
    mime_msg *m;

    mime_limits_default(&lim);
    lim.max_parts = 4;
    m = parse(msg, &lim);
    assert_int_equal(mime_part_count(m), 4);
    assert_true(part(m, 0)->flags & SLUICE_MIME_TRUNCATED);
    decoded_is(part(m, 3), "part 2");
    mime_free(m);
    m = parse(msg, NULL);
    assert_int_equal(mime_part_count(m), 11);
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);
    free(msg);
}

static char *build_nested(int levels)
{
    size_t cap = 100 + (size_t)levels * 120;
    char *s = malloc(cap), *o = s;
    int i;

    assert_non_null(s);
    for (i = 0; i < levels; i++)
        o += snprintf(o, cap - (size_t)(o - s),
                      "Content-Type: multipart/mixed; boundary=l%d\n\n--l%d\n",
                      i, i);
    o += snprintf(o, cap - (size_t)(o - s), "\ndeep\n");
    for (i = levels - 1; i >= 0; i--)
        o += snprintf(o, cap - (size_t)(o - s), "--l%d--\n", i);
    return s;
}

static void test_limit_depth(void **state)
{
    char *msg = build_nested(6);
    mime_limits lim;
    mime_msg *m;
    size_t i;

    m = parse(msg, NULL);
    assert_int_equal(mime_part_count(m), 7);
    assert_int_equal(part(m, 6)->depth, 6);
    decoded_is(part(m, 6), "deep");
    assert_int_equal(mime_flags(m), 0);
    mime_free(m);

    mime_limits_default(&lim);
    lim.max_depth = 2;
    m = parse(msg, &lim);
    assert_int_equal(mime_part_count(m), 3);
    for (i = 0; i < mime_part_count(m); i++)
        assert_true(part(m, i)->depth <= 2);
    assert_true(part(m, 0)->flags & SLUICE_MIME_TRUNCATED);
    /* The deepest part kept is a leaf with its raw content. */
    assert_false(part(m, 2)->is_multipart);
    assert_non_null(part(m, 2)->decoded);
    mime_free(m);
    free(msg);

    /* A deep nest of message/rfc822 stops at the limit too. */
    {
        size_t cap = 30 * 100;
        char *deep = malloc(cap), *o = deep;
        int k;
        assert_non_null(deep);
        for (k = 0; k < 30; k++)
            o += snprintf(o, cap - (size_t)(o - deep),
                          "Content-Type: message/rfc822\n\n");
        snprintf(o, cap - (size_t)(o - deep), "end\n");
        m = parse(deep, NULL);
        assert_int_equal(mime_part_count(m), 21);
        assert_true(mime_flags(m) & SLUICE_MIME_TRUNCATED);
        mime_free(m);
        free(deep);
    }
}

static void test_limit_headers(void **state)
{
    mime_limits lim;
    mime_msg *m;

    mime_limits_default(&lim);
    lim.max_header_count = 2;
    m = parse("A: 1\nB: 2\nC: 3\n\nbody", &lim);
    assert_int_equal(mime_header_count(m), 2);
    assert_true(mime_flags(m) & SLUICE_MIME_TRUNCATED);
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_HEADER);
    decoded_is(part(m, 0), "body");
    mime_free(m);

    mime_limits_default(&lim);
    lim.max_header_len = 16;
    m = parse("Subject: a long subject line\n\nbody", &lim);
    assert_string_equal(mime_header(m, 0)->value, "a long");
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_HEADER);
    mime_free(m);
}

static void test_nul(void **state)
{
    static const char m1[] = "Subject: a\0b\n\nbody";
    static const char m2[] = "Subject: ab\n\nbo\0dy";
    mime_msg *m;

    m = mime_parse((const unsigned char *)m1, sizeof(m1) - 1, NULL);
    assert_non_null(m);
    assert_true(mime_flags(m) & SLUICE_MIME_NUL);
    assert_string_equal(mime_header(m, 0)->value, "ab");
    mime_free(m);
    m = mime_parse((const unsigned char *)m2, sizeof(m2) - 1, NULL);
    assert_non_null(m);
    assert_true(mime_flags(m) & SLUICE_MIME_NUL);
    assert_int_equal(part(m, 0)->decoded_len, 5);
    mime_free(m);
}

static void test_scale(void **state)
{
    char *msg = build_parts(10000);
    mime_limits lim;
    mime_msg *m;
    clock_t t0 = clock();
    size_t n = 1 << 20;
    char *big;

    mime_limits_default(&lim);
    lim.max_parts = 20000;
    m = parse(msg, &lim);
    assert_int_equal(mime_part_count(m), 10001);
    decoded_is(part(m, 10000), "part 9999");
    mime_free(m);
    free(msg);

    big = malloc(n + 32);
    assert_non_null(big);
    memcpy(big, "Subject: ", 9);
    memset(big + 9, 'x', n);
    memcpy(big + 9 + n, "\n\nbody", 7);
    m = parse(big, NULL);
    assert_true(mime_flags(m) & SLUICE_MIME_LONG_LINE);
    assert_true(mime_flags(m) & SLUICE_MIME_BAD_HEADER);
    decoded_is(part(m, 0), "body");
    mime_free(m);
    free(big);
    /* Generous bound: both together take milliseconds when linear. */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_empty_and_headers_only),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_crlf_boundary_ws),
        cmocka_unit_test(test_rfc822),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_missing_close),
        cmocka_unit_test(test_no_delimiter),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_filenames),
        cmocka_unit_test(test_malformed_ctype),
        cmocka_unit_test(test_limit_parts),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_headers),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
