/*
 * test_deliver_proto.c - unit tests of the deliver stage's I/O-free SMTP
 * client logic (plugins/deliver/deliver_proto.c): reply parsing (single,
 * multi-line, partial, garbled, oversized), reply formatting, EHLO
 * keywords, xtext, XFORWARD splitting, parameter filtering, command lines,
 * CRLF normalisation and dot-stuffing across chunk boundaries, and the
 * per-recipient outcome table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver_proto.h"

/* ---------------------------------------------------------------- */
/* Replies                                                          */

static void test_reply_single(void **state)
{
    deliver_reply r;
    const char *why = NULL;
    const char in[] = "250 2.0.0 Ok: queued as ABC\r\nextra";

    assert_int_equal(deliver_reply_parse(in, strlen(in), &r, &why),
                     (ssize_t)strlen("250 2.0.0 Ok: queued as ABC\r\n"));
    assert_int_equal(r.code, 250);
    assert_int_equal(r.lines, 1);
    assert_string_equal(r.text, "2.0.0 Ok: queued as ABC");
}

static void test_reply_multiline(void **state)
{
    deliver_reply r;
    const char *why = NULL;
    const char in[] = "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

    assert_int_equal(deliver_reply_parse(in, strlen(in), &r, &why),
                     (ssize_t)strlen(in));
    assert_int_equal(r.code, 250);
    assert_int_equal(r.lines, 3);
    assert_string_equal(r.text, "mx.example\nPIPELINING\n8BITMIME");
}

static void test_reply_bare_lf_and_code_only(void **state)
{
    deliver_reply r;
    const char *why = NULL;

    assert_int_equal(deliver_reply_parse("354\n", 4, &r, &why), 4);
    assert_int_equal(r.code, 354);
    assert_string_equal(r.text, "");
    assert_int_equal(deliver_reply_parse("221 bye\n", 8, &r, &why), 8);
    assert_int_equal(r.code, 221);
    assert_string_equal(r.text, "bye");
}

static void test_reply_partial(void **state)
{
    deliver_reply r;
    const char *why = NULL;
    const char in[] = "250-first\r\n250-second\r\n250 last\r\n";
    size_t i;

    /* every strict prefix is "need more" */
    for (i = 0; i < strlen(in); i++)
        assert_int_equal(deliver_reply_parse(in, i, &r, &why), 0);
    assert_int_equal(deliver_reply_parse(in, strlen(in), &r, &why),
                     (ssize_t)strlen(in));
}

static void test_reply_garbled(void **state)
{
    static const char *const bad[] = {
        "hello\r\n",          /* no code */
        "25\r\n",             /* short */
        "2x0 ok\r\n",         /* not digits */
        "250_ok\r\n",         /* bad separator */
        "250-a\r\n251 b\r\n", /* code changes */
        "150 what\r\n",       /* not a 2..5 class */
        "650 what\r\n",
        "\r\n",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        deliver_reply r;
        const char *why = NULL;
        assert_int_equal(deliver_reply_parse(bad[i], strlen(bad[i]), &r, &why),
                         -1);
        assert_non_null(why);
    }
}

static void test_reply_too_long(void **state)
{
    deliver_reply r;
    const char *why = NULL;
    size_t n = 5000, i;
    char *big = malloc(n + 8);

    /* one line that never ends */
    memcpy(big, "250 ", 4);
    for (i = 4; i < n; i++)
        big[i] = 'x';
    assert_int_equal(deliver_reply_parse(big, n, &r, &why), -1);
    assert_non_null(why);
    /* many continuation lines over 4 KiB in total */
    for (i = 0; i + 8 <= n; i += 8)
        memcpy(big + i, "250-abc\n", 8);
    why = NULL;
    assert_int_equal(deliver_reply_parse(big, i, &r, &why), -1);
    assert_non_null(why);
    /* just under the limit still works */
    memcpy(big, "250 ", 4);
    for (i = 4; i < 4000; i++)
        big[i] = 'y';
    big[i++] = '\r';
    big[i++] = '\n';
    assert_int_equal(deliver_reply_parse(big, i, &r, &why), (ssize_t)i);
    assert_int_equal(r.len, 3996);
    free(big);
}

static void test_reply_format(void **state)
{
    deliver_reply r;
    const char *why;
    char out[DELIVER_ONELINE_MAX];
    const char m[] = "550-5.1.1 <a@b>: no such user\r\n550 5.1.1 see "
                     "\x01help\r\n";

    assert_true(deliver_reply_parse(m, strlen(m), &r, &why) > 0);
    deliver_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "550 5.1.1 <a@b>: no such user see ?help");

    assert_true(deliver_reply_parse("452 too many\r\n", 14, &r, &why) > 0);
    deliver_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "452 4.0.0 too many");

    /* an enhanced code of the wrong class is text, not a code */
    assert_true(deliver_reply_parse("451 5.1.1 odd\r\n", 15, &r, &why) > 0);
    deliver_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "451 4.0.0 5.1.1 odd");

    assert_true(deliver_reply_parse("250\r\n", 5, &r, &why) > 0);
    deliver_reply_format(&r, out, sizeof(out));
    assert_string_equal(out, "250 2.0.0");

    /* truncation is safe */
    assert_true(deliver_reply_parse("250 2.0.0 abcdefghij\r\n", 22, &r, &why) >
                0);
    assert_int_equal(deliver_reply_format(&r, out, 12), 11);
    assert_int_equal(strlen(out), 11);
}

static void test_safe_text(void **state)
{
    char s[] = "a\r\nb\x7f\xc3\xa9";

    deliver_safe_text(s);
    assert_string_equal(s, "a??b???");
}

/* ---------------------------------------------------------------- */
/* EHLO                                                             */

static void test_ehlo(void **state)
{
    deliver_reply r;
    deliver_features f;
    const char *why;
    const char m[] = "250-localhost.example\r\n"
                     "250-PIPELINING\r\n"
                     "250-SIZE 10240000\r\n"
                     "250-VRFY\r\n"
                     "250-ETRN\r\n"
                     "250-ENHANCEDSTATUSCODES\r\n"
                     "250-8bitmime\r\n"
                     "250-DSN\r\n"
                     "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"
                     "250 SMTPUTF8\r\n";

    assert_true(deliver_reply_parse(m, strlen(m), &r, &why) > 0);
    deliver_ehlo_parse(&r, &f);
    assert_int_equal(f.ext, DELIVER_EXT_PIPELINING | DELIVER_EXT_SIZE |
                                DELIVER_EXT_ENHANCED | DELIVER_EXT_8BITMIME |
                                DELIVER_EXT_DSN | DELIVER_EXT_XFORWARD |
                                DELIVER_EXT_SMTPUTF8);
    assert_int_equal(f.size_limit, 10240000ULL);
    assert_int_equal(f.xforward, DELIVER_XF_NAME | DELIVER_XF_ADDR |
                                     DELIVER_XF_PROTO | DELIVER_XF_HELO |
                                     DELIVER_XF_SOURCE | DELIVER_XF_PORT |
                                     DELIVER_XF_IDENT);
}

static void test_ehlo_minimal(void **state)
{
    deliver_reply r;
    deliver_features f;
    const char *why;
    const char m[] = "250-host\r\n250-XFORWARD NAME ADDR\r\n250-SIZE\r\n"
                     "250 PIPELININGX\r\n";

    assert_true(deliver_reply_parse(m, strlen(m), &r, &why) > 0);
    deliver_ehlo_parse(&r, &f);
    assert_int_equal(f.ext, DELIVER_EXT_XFORWARD | DELIVER_EXT_SIZE);
    assert_int_equal(f.size_limit, 0);
    assert_int_equal(f.xforward, DELIVER_XF_NAME | DELIVER_XF_ADDR);
    /* the greeting line alone: no extension, even if it names one */
    assert_true(deliver_reply_parse("250 PIPELINING\r\n", 16, &r, &why) > 0);
    deliver_ehlo_parse(&r, &f);
    assert_int_equal(f.ext, 0);
}

/* ---------------------------------------------------------------- */
/* Commands                                                         */

static void test_xtext(void **state)
{
    char out[64];

    assert_int_equal(deliver_xtext("a+b=c d\x01~", out, sizeof(out)), 17);
    assert_string_equal(out, "a+2Bb+3Dc+20d+01~");
    assert_int_equal(deliver_xtext("", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(deliver_xtext("\xff", out, sizeof(out)), 3);
    assert_string_equal(out, "+FF");
    assert_int_equal(deliver_xtext("abcdef", out, 6), -1); /* no room */
    assert_int_equal(deliver_xtext("++", out, 6), -1);
}

static void test_xforward(void **state)
{
    deliver_xfwd x = {"mail.example.org", "192.0.2.1", "ESMTP", "helo name",
                      "ABC123",           "REMOTE",    25};
    char out[4096];
    size_t len;
    unsigned all = (1u << DELIVER_XF_COUNT) - 1;

    assert_int_equal(deliver_cmd_xforward(&x, all, out, sizeof(out), &len), 1);
    assert_string_equal(out, "XFORWARD NAME=mail.example.org ADDR=192.0.2.1 "
                             "PORT=25 PROTO=ESMTP HELO=helo+20name "
                             "IDENT=ABC123 SOURCE=REMOTE\r\n");
    assert_int_equal(len, strlen(out));

    /* only what the server listed; unknowns are [UNAVAILABLE] */
    x.name = "";
    x.port = 0;
    x.addr = "2001:db8::1";
    assert_int_equal(deliver_cmd_xforward(&x,
                                          DELIVER_XF_NAME | DELIVER_XF_ADDR |
                                              DELIVER_XF_PORT,
                                          out, sizeof(out), &len),
                     1);
    assert_string_equal(out, "XFORWARD NAME=[UNAVAILABLE] "
                             "ADDR=IPV6:2001:db8::1 PORT=[UNAVAILABLE]\r\n");
    assert_int_equal(deliver_cmd_xforward(&x, 0, out, sizeof(out), &len), 0);
    assert_int_equal(len, 0);
    /* too small a buffer */
    assert_int_equal(deliver_cmd_xforward(&x, all, out, 20, &len), -1);
}

static void test_xforward_split(void **state)
{
    char name[256], helo[400], out[4096];
    deliver_xfwd x;
    size_t len, start = 0, i;
    unsigned all = (1u << DELIVER_XF_COUNT) - 1;
    int n, lines = 0;

    memset(name, 'n', 250);
    name[250] = '\0';
    memset(helo, 'h', 300);
    helo[300] = '\0';
    memset(&x, 0, sizeof(x));
    x.name = name;
    x.helo = helo;
    x.addr = "198.51.100.7";
    x.proto = "SMTP";
    x.ident = "Q1";
    x.source = "REMOTE";
    x.port = 4242;
    n = deliver_cmd_xforward(&x, all, out, sizeof(out), &len);
    assert_true(n >= 2);
    for (i = 0; i < len; i++) {
        if (out[i] == '\n') {
            assert_true(i + 1 - start <= DELIVER_LINE_MAX);
            assert_memory_equal(out + start, "XFORWARD ", 9);
            assert_int_equal(out[i - 1], '\r');
            start = i + 1;
            lines++;
        }
    }
    assert_int_equal(lines, n);
    assert_int_equal(start, len);
    assert_non_null(strstr(out, "HELO=hhhh"));
    assert_non_null(strstr(out, "NAME=nnnn"));
    assert_non_null(strstr(out, "PORT=4242"));

    /* a single value too long for any line becomes [UNAVAILABLE] */
    {
        char huge[600];
        memset(huge, 'z', 550);
        huge[550] = '\0';
        x.helo = huge;
        n = deliver_cmd_xforward(&x, DELIVER_XF_HELO, out, sizeof(out), &len);
        assert_int_equal(n, 1);
        assert_string_equal(out, "XFORWARD HELO=[UNAVAILABLE]\r\n");
    }
}

static void test_params_filter(void **state)
{
    deliver_features none, all;
    char out[DELIVER_LINE_MAX];

    memset(&none, 0, sizeof(none));
    memset(&all, 0, sizeof(all));
    all.ext = DELIVER_EXT_SIZE | DELIVER_EXT_8BITMIME | DELIVER_EXT_DSN |
              DELIVER_EXT_SMTPUTF8;
    const char *mp = "SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=x+2By SMTPUTF8 "
                     "AUTH=<> XYZ=1";
    assert_int_equal(deliver_params_filter(mp, &all, 1, out, sizeof(out)),
                     (ssize_t)strlen(" SIZE=1234 BODY=8BITMIME RET=HDRS "
                                     "ENVID=x+2By SMTPUTF8"));
    assert_string_equal(
        out, " SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=x+2By SMTPUTF8");
    assert_int_equal(deliver_params_filter(mp, &none, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    {
        deliver_features s = none;
        s.ext = DELIVER_EXT_SIZE;
        deliver_params_filter(mp, &s, 1, out, sizeof(out));
        assert_string_equal(out, " SIZE=1234");
        s.ext = DELIVER_EXT_DSN;
        deliver_params_filter(mp, &s, 1, out, sizeof(out));
        assert_string_equal(out, " RET=HDRS ENVID=x+2By");
        s.ext = DELIVER_EXT_8BITMIME;
        deliver_params_filter(mp, &s, 1, out, sizeof(out));
        assert_string_equal(out, " BODY=8BITMIME");
    }
    /* RCPT: NOTIFY and ORCPT need DSN; MAIL keywords are not RCPT's */
    deliver_params_filter("NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b SIZE=1",
                          &all, 0, out, sizeof(out));
    assert_string_equal(out, " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b");
    deliver_params_filter("NOTIFY=NEVER", &none, 0, out, sizeof(out));
    assert_string_equal(out, "");
    /* case-insensitive keywords, extra spaces */
    deliver_params_filter("  size=5   body=7BIT ", &all, 1, out, sizeof(out));
    assert_string_equal(out, " size=5 body=7BIT");
    /* control characters are refused, not passed on */
    assert_int_equal(
        deliver_params_filter("SIZE=1\r\nRSET", &all, 1, out, sizeof(out)), -1);
    assert_int_equal(deliver_params_filter(NULL, &all, 1, out, sizeof(out)), 0);
    /* no room */
    assert_int_equal(deliver_params_filter("SIZE=12345", &all, 1, out, 5), -1);
}

static void test_cmd_mail_rcpt(void **state)
{
    deliver_features f;
    char out[DELIVER_LINE_MAX];

    memset(&f, 0, sizeof(f));
    f.ext = DELIVER_EXT_SIZE | DELIVER_EXT_DSN;
    assert_int_equal(deliver_cmd_mail("a@b.example", "SIZE=10 BODY=8BITMIME",
                                      &f, out, sizeof(out)),
                     (ssize_t)strlen("MAIL FROM:<a@b.example> SIZE=10\r\n"));
    assert_string_equal(out, "MAIL FROM:<a@b.example> SIZE=10\r\n");
    deliver_cmd_mail("", "", &f, out, sizeof(out));
    assert_string_equal(out, "MAIL FROM:<>\r\n");
    deliver_cmd_rcpt("c@d", "NOTIFY=NEVER", &f, out, sizeof(out));
    assert_string_equal(out, "RCPT TO:<c@d> NOTIFY=NEVER\r\n");
    /* injection attempts */
    assert_int_equal(deliver_cmd_rcpt("c@d>\r\nRSET", "", &f, out, sizeof(out)),
                     -1);
    assert_int_equal(deliver_cmd_mail("x\ny", "", &f, out, sizeof(out)), -1);
    /* UTF-8 addresses pass as they are */
    assert_true(
        deliver_cmd_rcpt("j\xc3\xb6rg@example", "", &f, out, sizeof(out)) > 0);
    /* does not fit */
    assert_int_equal(deliver_cmd_rcpt("c@d", "", &f, out, 10), -1);
}

/* ---------------------------------------------------------------- */
/* Content                                                          */

/* Encodes `in` fed in chunks of `chunk` bytes through an output buffer of
 * `outsz` bytes; returns the wire form (malloc'd). */
static char *encode(const char *in, size_t chunk, size_t outsz)
{
    deliver_dot d;
    size_t len = strlen(in), pos = 0, o = 0;
    char *res = malloc(len * 3 + 16), *buf = malloc(outsz);

    deliver_dot_init(&d);
    while (pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk, off = 0;
        while (off < n) {
            size_t used, w = deliver_dot_encode(&d, in + pos + off, n - off,
                                                &used, buf, outsz);
            assert_true(used > 0 || w == 0);
            assert_true(used > 0); /* outsz >= 2 always makes progress */
            memcpy(res + o, buf, w);
            o += w;
            off += used;
        }
        pos += n;
    }
    o += deliver_dot_finish(&d, res + o, 16);
    res[o] = '\0';
    free(buf);
    return res;
}

static void check_encode(const char *in, const char *want)
{
    size_t chunk, outsz;

    for (chunk = 1; chunk <= strlen(in) + 1; chunk++) {
        for (outsz = 2; outsz <= 8; outsz += 3) {
            char *got = encode(in, chunk, outsz);
            assert_string_equal(got, want);
            free(got);
        }
    }
}

static void test_dot_lf_to_crlf(void **state)
{
    check_encode("a\nb\n", "a\r\nb\r\n.\r\n");
    check_encode("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
    check_encode("mixed\r\nlf\nend", "mixed\r\nlf\r\nend\r\n.\r\n");
    check_encode("", ".\r\n");
    check_encode("\n\n", "\r\n\r\n.\r\n");
}

static void test_dot_bare_cr(void **state)
{
    /* a bare CR is left alone and does not start a line */
    check_encode("a\rb\n", "a\rb\r\n.\r\n");
    check_encode("a\r.b\n", "a\r.b\r\n.\r\n");
    /* content ending in a bare CR gets its line ended */
    check_encode("end\r", "end\r\n.\r\n");
}

static void test_dot_stuffing(void **state)
{
    check_encode(".\n", "..\r\n.\r\n");
    check_encode("a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n");
    check_encode("..x\r\n", "...x\r\n.\r\n");
    check_encode("x.y\n.z", "x.y\r\n..z\r\n.\r\n");
    check_encode("a\r\n.\r\n", "a\r\n..\r\n.\r\n");
}

static void test_dot_chunk_boundaries(void **state)
{
    deliver_dot d;
    char out[32];
    size_t used, w;

    /* a '.' at the start of a chunk that continues a line: kept */
    deliver_dot_init(&d);
    w = deliver_dot_encode(&d, "abc", 3, &used, out, sizeof(out));
    assert_int_equal(w, 3);
    w = deliver_dot_encode(&d, ".def\n", 5, &used, out, sizeof(out));
    assert_int_equal(used, 5);
    assert_int_equal(w, 6);
    assert_memory_equal(out, ".def\r\n", 6);

    /* a '.' at the start of a chunk that starts a line: doubled */
    deliver_dot_init(&d);
    w = deliver_dot_encode(&d, "abc\n", 4, &used, out, sizeof(out));
    assert_int_equal(w, 5);
    w = deliver_dot_encode(&d, ".def", 4, &used, out, sizeof(out));
    assert_int_equal(w, 5);
    assert_memory_equal(out, "..def", 5);

    /* CR at the end of one chunk, LF at the start of the next */
    deliver_dot_init(&d);
    w = deliver_dot_encode(&d, "abc\r", 4, &used, out, sizeof(out));
    assert_memory_equal(out, "abc\r", 4);
    w = deliver_dot_encode(&d, "\n.", 2, &used, out, sizeof(out));
    assert_int_equal(w, 3);
    assert_memory_equal(out, "\n..", 3);

    /* the output buffer cuts a CRLF or a "..": nothing is half-written */
    deliver_dot_init(&d);
    w = deliver_dot_encode(&d, "a\n", 2, &used, out, 2);
    assert_int_equal(used, 1);
    assert_int_equal(w, 1);
    w = deliver_dot_encode(&d, "\n", 1, &used, out, 1);
    assert_int_equal(used, 0);
    assert_int_equal(w, 0);
    w = deliver_dot_encode(&d, "\n", 1, &used, out, 2);
    assert_int_equal(used, 1);
    assert_memory_equal(out, "\r\n", 2);
    w = deliver_dot_encode(&d, ".", 1, &used, out, 1);
    assert_int_equal(used, 0);
    w = deliver_dot_encode(&d, ".", 1, &used, out, 2);
    assert_memory_equal(out, "..", 2);
    /* finish needs five bytes */
    assert_int_equal(deliver_dot_finish(&d, out, 4), 0);
    assert_int_equal(deliver_dot_finish(&d, out, 5), 5);
    assert_memory_equal(out, "\r\n.\r\n", 5);
}

static void test_dot_corpus_like(void **state)
{
    /* a bigger pseudo-random text, chunked at odd sizes, round-trips */
    size_t n = 20000, i;
    char *in = malloc(n + 1), *got, *want, *p;
    unsigned seed = 12345;

    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 8) {
        case 0:
            in[i] = '\n';
            break;
        case 1:
            in[i] = '.';
            break;
        case 2:
            in[i] = '\r';
            break;
        default:
            in[i] = (char)('a' + (seed >> 8) % 26);
        }
    }
    in[n] = '\0';
    got = encode(in, 7, 5);
    /* unstuff + check: no line of the wire form starts with a single '.'
     * except the terminator; every LF is preceded by CR */
    for (p = got; *p; p++) {
        if (*p == '\n')
            assert_int_equal(p[-1], '\r');
    }
    assert_true(strlen(got) >= 5);
    assert_string_equal(got + strlen(got) - 5, "\r\n.\r\n");
    for (p = got; p < got + strlen(got) - 3; p++) {
        if ((p == got || (p[-1] == '\n')) && p[0] == '.')
            assert_int_equal(p[1], '.');
        if ((p == got || (p[-1] == '\n')) && p[0] == '.')
            p++;
    }
    want = encode(in, n, 64);
    assert_string_equal(got, want);
    free(want);
    free(got);
    free(in);
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                         */

static void test_outcome_table(void **state)
{
    static const struct {
        int mail, rcpt, data, final;
        sluice_rcpt_state st;
        deliver_from from;
    } t[] = {
        {250, 250, 354, 250, SLUICE_RCPT_DONE, DELIVER_FROM_FINAL},
        {250, 251, 354, 250, SLUICE_RCPT_DONE, DELIVER_FROM_FINAL},
        {250, 550, 354, 250, SLUICE_RCPT_REJECTED, DELIVER_FROM_RCPT},
        {250, 450, 354, 250, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_RCPT},
        {250, 250, 354, 552, SLUICE_RCPT_REJECTED, DELIVER_FROM_FINAL},
        {250, 250, 354, 451, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_FINAL},
        {250, 250, 554, 0, SLUICE_RCPT_REJECTED, DELIVER_FROM_DATA},
        {250, 250, 451, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_DATA},
        {550, 503, 503, 0, SLUICE_RCPT_REJECTED, DELIVER_FROM_MAIL},
        {451, 503, 503, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_MAIL},
        {250, 550, 554, 0, SLUICE_RCPT_REJECTED, DELIVER_FROM_RCPT},
        /* no reply: the connection failed somewhere */
        {0, 0, 0, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_NONE},
        {250, 0, 0, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_NONE},
        {250, 250, 0, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_NONE},
        {250, 250, 354, 0, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_NONE},
        {250, 550, 0, 0, SLUICE_RCPT_REJECTED, DELIVER_FROM_RCPT},
        /* protocol oddities never become DONE */
        {250, 250, 250, 250, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_DATA},
        {250, 354, 354, 250, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_RCPT},
        {250, 250, 354, 354, SLUICE_RCPT_TEMPFAIL, DELIVER_FROM_FINAL},
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        deliver_from from = (deliver_from)99;
        sluice_rcpt_state st =
            deliver_outcome(t[i].mail, t[i].rcpt, t[i].data, t[i].final, &from);
        if (st != t[i].st || from != t[i].from)
            fail_msg("row %zu: state %d from %d, want %d from %d", i, (int)st,
                     (int)from, (int)t[i].st, (int)t[i].from);
    }
    assert_int_equal(deliver_code_state(250), SLUICE_RCPT_DONE);
    assert_int_equal(deliver_code_state(421), SLUICE_RCPT_TEMPFAIL);
    assert_int_equal(deliver_code_state(554), SLUICE_RCPT_REJECTED);
    assert_int_equal(deliver_code_state(0), SLUICE_RCPT_TEMPFAIL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_single),
        cmocka_unit_test(test_reply_multiline),
        cmocka_unit_test(test_reply_bare_lf_and_code_only),
        cmocka_unit_test(test_reply_partial),
        cmocka_unit_test(test_reply_garbled),
        cmocka_unit_test(test_reply_too_long),
        cmocka_unit_test(test_reply_format),
        cmocka_unit_test(test_safe_text),
        cmocka_unit_test(test_ehlo),
        cmocka_unit_test(test_ehlo_minimal),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_xforward),
        cmocka_unit_test(test_xforward_split),
        cmocka_unit_test(test_params_filter),
        cmocka_unit_test(test_cmd_mail_rcpt),
        cmocka_unit_test(test_dot_lf_to_crlf),
        cmocka_unit_test(test_dot_bare_cr),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_dot_chunk_boundaries),
        cmocka_unit_test(test_dot_corpus_like),
        cmocka_unit_test(test_outcome_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
