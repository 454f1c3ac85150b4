/*
 * test_smtp_proto.c - unit tests of the smtp ingress's protocol state
 * machine (plugins/smtp/smtp_proto.c), driven with a fake owner that
 * records every event and answers decisions at once or later.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"

typedef struct fake {
    smtp_proto *s;
    char ev[16384];
    size_t evlen;
    char *data;
    size_t dlen, dcap;
    int sync;               /* answer decisions inside the event */
    const char *mail_reply; /* sync answers */
    const char *rcpt_reply;
    const char *eom_reply;
    const char *data_err;
    int resets, errors, eoms;
    char xf[1024];
} fake;

static void fake_log(fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fake_log(fake *f, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(f->ev + f->evlen, sizeof(f->ev) - f->evlen, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(f->ev) - f->evlen);
    f->evlen += (size_t)n;
}

static void fk_helo(void *arg, int greet, const char *name)
{
    fake_log(arg, "HELO%d %s\n", greet, name);
}

static void fk_mail(void *arg, const char *addr, const char *params,
                    const smtp_proto_xfwd *xf)
{
    fake *f = arg;

    fake_log(f, "MAIL <%s> [%s]\n", addr, params);
    snprintf(f->xf, sizeof(f->xf),
             "name=%s addr=%s helo=%s proto=%s "
             "ident=%s source=%s port=%d",
             xf->name ? xf->name : "-", xf->addr ? xf->addr : "-",
             xf->helo ? xf->helo : "-", xf->proto ? xf->proto : "-",
             xf->ident ? xf->ident : "-", xf->source ? xf->source : "-",
             xf->port);
    if (f->sync)
        smtp_proto_resume(f->s, f->mail_reply ? f->mail_reply : "250 2.1.0 Ok");
}

static void fk_rcpt(void *arg, const char *addr, const char *params)
{
    fake *f = arg;

    fake_log(f, "RCPT <%s> [%s]\n", addr, params);
    if (f->sync)
        smtp_proto_resume(f->s, f->rcpt_reply ? f->rcpt_reply : "250 2.1.5 Ok");
}

static void fk_eom(void *arg)
{
    fake *f = arg;

    f->eoms++;
    fake_log(f, "EOM %zu\n", f->dlen);
    if (f->sync)
        smtp_proto_resume(f->s,
                          f->eom_reply ? f->eom_reply : "250 2.0.0 Ok: queued");
}

static const char *fk_data(void *arg, const char *p, size_t n)
{
    fake *f = arg;

    assert_true(n > 0);
    if (f->dlen + n > f->dcap) {
        f->dcap = (f->dlen + n) * 2;
        f->data = realloc(f->data, f->dcap);
        assert_non_null(f->data);
    }
    memcpy(f->data + f->dlen, p, n);
    f->dlen += n;
    return f->data_err;
}

static void fk_reset(void *arg)
{
    fake *f = arg;

    f->resets++;
    fake_log(f, "RESET\n");
}

static void fk_error(void *arg, const char *cmd, const char *reply)
{
    fake *f = arg;

    f->errors++;
    assert_non_null(cmd);
    assert_true(reply[0] == '5' || reply[0] == '4');
}

static smtp_proto_conf test_conf(void)
{
    smtp_proto_conf c;

    memset(&c, 0, sizeof(c));
    c.hostname = "mx.test";
    c.max_line = 2048;
    c.max_size = 100000;
    c.max_rcpts = 1000;
    c.max_errors = 20;
    c.xforward = 1;
    return c;
}

static fake *fake_new_conf(const smtp_proto_conf *c, int sync)
{
    fake *f = calloc(1, sizeof(*f));
    smtp_proto_events ev;

    assert_non_null(f);
    memset(&ev, 0, sizeof(ev));
    ev.arg = f;
    ev.helo = fk_helo;
    ev.mail = fk_mail;
    ev.rcpt = fk_rcpt;
    ev.eom = fk_eom;
    ev.data = fk_data;
    ev.reset = fk_reset;
    ev.error = fk_error;
    f->sync = sync;
    f->s = smtp_proto_new(c, &ev);
    assert_non_null(f->s);
    return f;
}

static fake *fake_new(int sync)
{
    smtp_proto_conf c = test_conf();
    return fake_new_conf(&c, sync);
}

static void fake_free(fake *f)
{
    smtp_proto_free(f->s);
    free(f->data);
    free(f);
}

/* Everything the session wants to send, consumed. */
static char *out(fake *f)
{
    static char buf[1 << 20];
    size_t n;
    const char *p = smtp_proto_output(f->s, &n);

    assert_true(n < sizeof(buf));
    memcpy(buf, p, n);
    buf[n] = '\0';
    smtp_proto_consume(f->s, n);
    return buf;
}

static void feed(fake *f, const char *s)
{
    smtp_proto_feed(f->s, s, strlen(s));
}

static void ev_clear(fake *f)
{
    f->evlen = 0;
    f->ev[0] = '\0';
}

/* ---------------------------------------------------------------- */

static void test_greeting_ehlo(void **state)
{
    fake *f = fake_new(1);
    const char *o;

    assert_string_equal(out(f), "220 mx.test ESMTP sluice\r\n");
    feed(f, "EHLO client.test\r\n");
    o = out(f);
    assert_string_equal(o, "250-mx.test\r\n250-PIPELINING\r\n"
                           "250-SIZE 100000\r\n250-8BITMIME\r\n"
                           "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
                           "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT "
                           "SOURCE\r\n");
    assert_string_equal(f->ev, "HELO2 client.test\n");
    assert_int_equal(smtp_proto_greeting(f->s), SMTP_PROTO_EHLO);
    feed(f, "HELO other\r\n");
    assert_string_equal(out(f), "250 mx.test\r\n");
    feed(f, "LHLO lmtp.test\r\n");
    assert_true(strstr(out(f), "250 XFORWARD") != NULL);
    assert_int_equal(smtp_proto_greeting(f->s), SMTP_PROTO_LHLO);
    feed(f, "EHLO\r\n");
    assert_string_equal(out(f), "501 5.5.4 Syntax: EHLO hostname\r\n");
    fake_free(f);
}

static void test_ehlo_no_xforward_banner(void **state)
{
    smtp_proto_conf c = test_conf();
    fake *f;
    const char *o;

    c.xforward = 0;
    c.banner = "gate.example";
    f = fake_new_conf(&c, 1);
    assert_string_equal(out(f), "220 gate.example ESMTP sluice\r\n");
    feed(f, "ehlo x\r\n");
    o = out(f);
    assert_null(strstr(o, "XFORWARD"));
    assert_true(strstr(o, "250 DSN\r\n") != NULL);
    feed(f, "XFORWARD NAME=a\r\n");
    assert_string_equal(out(f), "502 5.5.2 Error: command not recognized\r\n");
    fake_free(f);
}

static void test_simple_transaction(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "EHLO c\r\nMAIL FROM:<a@b.example> BODY=8BITMIME\r\n"
            "RCPT TO:<x@y.example> NOTIFY=NEVER\r\nDATA\r\n");
    assert_string_equal(out(f), "250-mx.test\r\n250-PIPELINING\r\n"
                                "250-SIZE 100000\r\n250-8BITMIME\r\n"
                                "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
                                "250 XFORWARD NAME ADDR PORT PROTO HELO "
                                "IDENT SOURCE\r\n"
                                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                                "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_true(smtp_proto_in_data(f->s));
    feed(f, "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    assert_string_equal(out(f), "250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
    assert_int_equal(f->dlen, strlen("Subject: hi\r\n\r\nbody\r\n"));
    assert_memory_equal(f->data, "Subject: hi\r\n\r\nbody\r\n", f->dlen);
    assert_string_equal(f->ev, "HELO2 c\nMAIL <a@b.example> [BODY=8BITMIME]\n"
                               "RCPT <x@y.example> [NOTIFY=NEVER]\n"
                               "EOM 21\n");
    assert_true(smtp_proto_closing(f->s));
    assert_int_equal(f->resets, 0);
    fake_free(f);
}

/* The whole group in one read, each decision answered later. */
static void test_pipelining_paused(void **state)
{
    fake *f = fake_new(0);

    out(f);
    feed(f, "EHLO c\r\n");
    out(f);
    feed(f, "MAIL FROM:<s@e>\r\nRCPT TO:<r1@e>\r\nRCPT TO:<r2@e>\r\n"
            "DATA\r\nhello\r\n.\r\nQUIT\r\n");
    assert_string_equal(out(f), "");
    assert_true(smtp_proto_paused(f->s));
    assert_false(smtp_proto_wants_input(f->s));
    assert_string_equal(f->ev, "HELO2 c\nMAIL <s@e> []\n");
    assert_true(smtp_proto_buffered(f->s) > 0);
    /* more pipelined input while paused is only buffered */
    smtp_proto_resume(f->s, "250 2.1.0 Sender ok");
    assert_string_equal(out(f), "250 2.1.0 Sender ok\r\n");
    assert_string_equal(f->ev, "HELO2 c\nMAIL <s@e> []\nRCPT <r1@e> []\n");
    smtp_proto_resume(f->s, "550 5.1.1 No such user");
    assert_string_equal(out(f), "550 5.1.1 No such user\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    assert_string_equal(out(f), "250 2.1.5 Ok\r\n354 End data with "
                                "<CR><LF>.<CR><LF>\r\n");
    assert_int_equal(f->eoms, 1);
    assert_true(smtp_proto_paused(f->s));
    assert_memory_equal(f->data, "hello\r\n", 7);
    smtp_proto_resume(f->s, "250 2.0.0 Ok: ABC");
    assert_string_equal(out(f), "250 2.0.0 Ok: ABC\r\n221 2.0.0 Bye\r\n");
    assert_true(smtp_proto_closing(f->s));
    /* a late resume is ignored */
    smtp_proto_resume(f->s, "250 late");
    assert_string_equal(out(f), "");
    fake_free(f);
}

/* Dot-unstuffing and the end marker, split at every offset. */
static void test_data_split_everywhere(void **state)
{
    static const char wire[] = "..leading\r\n"
                               ".\rodd\r\n"
                               "a.b\r\n"
                               "bare\nLF\n.\nstill\r\n"
                               "...two\r\n"
                               "..\r\n"
                               "\r\n"
                               "end\r\n"
                               ".\r\n"
                               "NOOP\r\n";
    static const char content[] = ".leading\r\n"
                                  "\rodd\r\n"
                                  "a.b\r\n"
                                  "bare\nLF\n.\nstill\r\n"
                                  "..two\r\n"
                                  ".\r\n"
                                  "\r\n"
                                  "end\r\n";
    size_t wlen = strlen(wire), cut, cut2;

    for (cut = 0; cut <= wlen; cut++) {
        for (cut2 = cut; cut2 <= wlen; cut2 += (cut2 < cut + 8 ? 1 : 7)) {
            fake *f = fake_new(1);
            out(f);
            feed(f, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@e>\r\nDATA\r\n");
            out(f);
            smtp_proto_feed(f->s, wire, cut);
            smtp_proto_feed(f->s, wire + cut, cut2 - cut);
            smtp_proto_feed(f->s, wire + cut2, wlen - cut2);
            assert_int_equal(f->dlen, strlen(content));
            assert_memory_equal(f->data, content, f->dlen);
            assert_int_equal(f->eoms, 1);
            assert_string_equal(out(f), "250 2.0.0 Ok: queued\r\n"
                                        "250 2.0.0 Ok\r\n");
            fake_free(f);
        }
    }
}

static void test_data_byte_by_byte(void **state)
{
    static const char wire[] = "a\r\n..\r\n.x\r\n\r\n.\r\n";
    fake *f = fake_new(1);
    size_t i;

    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@e>\r\nDATA\r\n");
    out(f);
    for (i = 0; i < strlen(wire); i++)
        smtp_proto_feed(f->s, wire + i, 1);
    assert_int_equal(f->eoms, 1);
    assert_int_equal(f->dlen, strlen("a\r\n.\r\nx\r\n\r\n"));
    assert_memory_equal(f->data, "a\r\n.\r\nx\r\n\r\n", f->dlen);
    /* an empty message: the dot right away */
    feed(f, "MAIL FROM:<>\r\nRCPT TO:<r@e>\r\nDATA\r\n.\r\n");
    assert_int_equal(f->eoms, 2);
    assert_int_equal(f->dlen, strlen("a\r\n.\r\nx\r\n\r\n"));
    fake_free(f);
}

static void test_long_lines(void **state)
{
    smtp_proto_conf c = test_conf();
    fake *f;
    char line[2000];
    size_t i;

    c.max_line = 512;
    f = fake_new_conf(&c, 1);
    out(f);
    /* exactly 512 with CRLF: accepted */
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', 505);
    memcpy(line + 510, "\r\n", 3);
    assert_int_equal(strlen(line), 512);
    feed(f, line);
    assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
    /* 513: refused, the rest of the line dropped, in step afterwards */
    memcpy(line + 510, "y\r\n", 4);
    feed(f, line);
    assert_string_equal(out(f), "500 5.5.2 Error: line too long\r\n");
    /* a huge line arriving in pieces gets one answer */
    memset(line, 'z', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    for (i = 0; i < 5; i++)
        feed(f, line);
    assert_string_equal(out(f), "");
    assert_true(smtp_proto_buffered(f->s) < 600);
    feed(f, "zz\r\nNOOP\r\n");
    assert_string_equal(out(f), "500 5.5.2 Error: line too long\r\n"
                                "250 2.0.0 Ok\r\n");
    assert_int_equal(f->errors, 2);
    /* but DATA has no line length limit */
    feed(f, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@e>\r\nDATA\r\n");
    out(f);
    for (i = 0; i < 5; i++)
        feed(f, line);
    feed(f, "\r\n.\r\n");
    assert_int_equal(f->eoms, 1);
    assert_int_equal(f->dlen, 5 * strlen(line) + 2);
    fake_free(f);
}

static void test_nul_and_syntax(void **state)
{
    fake *f = fake_new(1);

    out(f);
    smtp_proto_feed(f->s, "NOOP\0x\r\n", 8);
    assert_string_equal(out(f),
                        "500 5.5.2 Error: NUL character in command\r\n");
    feed(f, "\r\n");
    assert_string_equal(out(f), "500 5.5.2 Error: bad syntax\r\n");
    feed(f, "FOO bar\r\nEXPN x\r\nBDAT 10\r\n");
    assert_string_equal(out(f), "502 5.5.2 Error: command not recognized\r\n"
                                "502 5.5.2 Error: command not recognized\r\n"
                                "502 5.5.2 Error: command not recognized\r\n");
    feed(f, "NOOP\nnoop\r\nVRFY x\r\nVRFY\r\nHELP\r\n");
    assert_string_equal(out(f),
                        "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
                        "252 2.0.0 Send some mail, I'll try my best\r\n"
                        "501 5.5.4 Syntax: VRFY address\r\n"
                        "214 2.0.0 Commands: EHLO HELO LHLO MAIL RCPT DATA "
                        "RSET NOOP QUIT VRFY HELP XFORWARD\r\n");
    assert_int_equal(f->errors, 6);
    fake_free(f);
}

static void test_out_of_order(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "MAIL FROM:<a@b>\r\n");
    assert_string_equal(out(f), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    feed(f, "RCPT TO:<a@b>\r\nDATA\r\n");
    assert_string_equal(out(f), "503 5.5.1 Error: need MAIL command\r\n"
                                "503 5.5.1 Error: need MAIL command\r\n");
    feed(f, "EHLO c\r\n");
    out(f);
    feed(f, "MAIL FROM:<a@b>\r\nMAIL FROM:<c@d>\r\nDATA\r\nDATA x\r\n");
    assert_string_equal(out(f), "250 2.1.0 Ok\r\n"
                                "503 5.5.1 Error: nested MAIL command\r\n"
                                "554 5.5.1 Error: no valid recipients\r\n"
                                "501 5.5.4 Syntax: DATA\r\n");
    feed(f, "XFORWARD NAME=x\r\n");
    assert_string_equal(out(f),
                        "503 5.5.1 Error: MAIL transaction in progress\r\n");
    assert_int_equal(f->resets, 0);
    feed(f, "RSET\r\n");
    assert_string_equal(out(f), "250 2.0.0 Ok\r\n");
    assert_int_equal(f->resets, 1);
    feed(f, "RCPT TO:<a@b>\r\n");
    assert_string_equal(out(f), "503 5.5.1 Error: need MAIL command\r\n");
    fake_free(f);
}

static void test_paths(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "EHLO c\r\n");
    out(f);
    feed(f, "MAIL FROM:<>\r\nRSET\r\n"
            "MAIL FROM: <@r1,@r2:u@d> SIZE=10\r\nRSET\r\n"
            "mail from:<\"john doe\\\"<x>\"@d>  RET=HDRS ENVID=a+2Bb  \r\n"
            "RSET\r\n"
            "MAIL FROM:bare@d\r\nRSET\r\n");
    assert_string_equal(f->ev,
                        "HELO2 c\nMAIL <> []\nRESET\n"
                        "MAIL <u@d> [SIZE=10]\nRESET\n"
                        "MAIL <\"john doe\\\"<x>\"@d> [RET=HDRS ENVID=a+2Bb]\n"
                        "RESET\nMAIL <bare@d> []\nRESET\n");
    ev_clear(f);
    out(f);
    feed(f, "MAIL FROM:<a@b\r\nMAIL FROM:<a@b>x\r\nMAIL TO:<a@b>\r\n"
            "MAIL FROM:<a b@c>\r\nMAIL FROM:\r\nMAIL FROM:<@r:a@b\r\n");
    assert_string_equal(out(f), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
                                "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    assert_string_equal(f->ev, "");
    feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<>\r\nRCPT TO:<Postmaster> "
            "ORCPT=rfc822;x+40y\r\nRCPT TO x\r\n");
    assert_string_equal(out(f),
                        "250 2.1.0 Ok\r\n"
                        "501 5.1.3 Error: bad recipient address syntax\r\n"
                        "250 2.1.5 Ok\r\n"
                        "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    assert_true(strstr(f->ev, "RCPT <Postmaster> [ORCPT=rfc822;x+40y]\n") !=
                NULL);
    fake_free(f);
}

static void test_lmtp_per_rcpt(void **state)
{
    fake *f = fake_new(0);
    const char *r[3] = {"250 2.0.0 Ok: A", "451 4.3.0 later", "550 5.7.1 no"};

    out(f);
    feed(f, "LHLO mta\r\n");
    out(f);
    feed(f, "MAIL FROM:<s@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.0 Ok");
    feed(f, "RCPT TO:<a@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    feed(f, "RCPT TO:<bad@e>\r\n");
    smtp_proto_resume(f->s, "550 5.1.1 unknown");
    feed(f, "RCPT TO:<b@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    feed(f, "RCPT TO:<c@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    out(f);
    feed(f, "DATA\r\nx\r\n.\r\n");
    assert_string_equal(out(f), "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_int_equal(f->eoms, 1);
    smtp_proto_resume_n(f->s, r, 3);
    assert_string_equal(out(f), "250 2.0.0 Ok: A\r\n451 4.3.0 later\r\n"
                                "550 5.7.1 no\r\n");
    assert_false(smtp_proto_in_txn(f->s));
    /* size limit in LMTP: one 552 per recipient */
    feed(f, "MAIL FROM:<s@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.0 Ok");
    feed(f, "RCPT TO:<a@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    feed(f, "RCPT TO:<b@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    out(f);
    feed(f, "DATA\r\n");
    out(f);
    {
        char *big = malloc(200001);
        assert_non_null(big);
        memset(big, 'a', 200000);
        big[200000] = '\0';
        feed(f, big);
        free(big);
    }
    feed(f, "\r\n.\r\n");
    assert_string_equal(out(f), "552 5.3.4 Error: message file too big\r\n"
                                "552 5.3.4 Error: message file too big\r\n");
    assert_int_equal(f->eoms, 1);
    assert_int_equal(f->resets, 1);
    fake_free(f);
}

static void test_xforward(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "XFORWARD NAME=a\r\n");
    assert_string_equal(out(f), "503 5.5.1 Error: send HELO/EHLO first\r\n");
    feed(f, "EHLO c\r\n");
    out(f);
    feed(f, "XFORWARD NAME=mail.example.com ADDR=192.0.2.1 PORT=4711\r\n"
            "xforward proto=ESMTP helo=helo+2Bname ident=ABC123 "
            "source=REMOTE\r\n"
            "MAIL FROM:<a@b>\r\n");
    assert_string_equal(out(f), "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
                                "250 2.1.0 Ok\r\n");
    assert_string_equal(f->xf, "name=mail.example.com addr=192.0.2.1 "
                               "helo=helo+name proto=ESMTP ident=ABC123 "
                               "source=REMOTE port=4711");
    /* the facts last until the end of the transaction */
    feed(f, "RSET\r\nMAIL FROM:<a@b>\r\nRSET\r\n");
    assert_string_equal(f->xf, "name=- addr=- helo=- proto=- ident=- "
                               "source=- port=0");
    out(f);
    feed(f, "XFORWARD NAME=[UNAVAILABLE] ADDR=IPv6:2001:db8::1 "
            "HELO=[TEMPUNAVAIL] PORT=[UNAVAILABLE]\r\nMAIL FROM:<a@b>\r\n"
            "RSET\r\n");
    assert_string_equal(f->xf, "name=- addr=2001:db8::1 helo=- proto=- "
                               "ident=- source=- port=0");
    out(f);
    /* errors: all or nothing */
    feed(f, "XFORWARD NAME=good FOO=bar\r\n"
            "XFORWARD NAME=a+ZZ\r\n"
            "XFORWARD NAME=a+00\r\n"
            "XFORWARD NAME\r\n"
            "XFORWARD\r\n"
            "XFORWARD PORT=99999\r\n"
            "XFORWARD PORT=12x\r\n"
            "MAIL FROM:<a@b>\r\n");
    assert_string_equal(out(f),
                        "501 5.5.4 Error: bad XFORWARD attribute name\r\n"
                        "501 5.5.4 Error: bad XFORWARD attribute value\r\n"
                        "501 5.5.4 Error: bad XFORWARD attribute value\r\n"
                        "501 5.5.4 Error: bad XFORWARD attribute syntax\r\n"
                        "501 5.5.4 Syntax: XFORWARD attribute=value...\r\n"
                        "501 5.5.4 Error: bad XFORWARD port\r\n"
                        "501 5.5.4 Error: bad XFORWARD port\r\n"
                        "250 2.1.0 Ok\r\n");
    assert_string_equal(f->xf, "name=- addr=- helo=- proto=- ident=- "
                               "source=- port=0");
    fake_free(f);
}

static void test_xtext(void **state)
{
    char o[16];

    assert_int_equal(smtp_proto_xtext_decode("a+2Bb+3D", 8, o, sizeof(o)), 0);
    assert_string_equal(o, "a+b=");
    assert_int_equal(smtp_proto_xtext_decode("", 0, o, sizeof(o)), 0);
    assert_string_equal(o, "");
    assert_int_equal(smtp_proto_xtext_decode("a+2", 3, o, sizeof(o)), -1);
    assert_int_equal(smtp_proto_xtext_decode("a+2b", 4, o, sizeof(o)), -1);
    assert_int_equal(smtp_proto_xtext_decode("a=b", 3, o, sizeof(o)), -1);
    assert_int_equal(smtp_proto_xtext_decode("a\x01", 2, o, sizeof(o)), -1);
    assert_int_equal(
        smtp_proto_xtext_decode("0123456789abcdef", 16, o, sizeof(o)),
        -1); /* does not fit with its NUL */
    assert_int_equal(
        smtp_proto_xtext_decode("0123456789abcde", 15, o, sizeof(o)), 0);
}

static void test_size_limits(void **state)
{
    smtp_proto_conf c = test_conf();
    fake *f;
    char body[1200];

    c.max_size = 1000;
    f = fake_new_conf(&c, 1);
    out(f);
    feed(f, "EHLO c\r\n");
    assert_true(strstr(out(f), "250-SIZE 1000\r\n") != NULL);
    feed(f, "MAIL FROM:<a@b> SIZE=1001\r\nMAIL FROM:<a@b> SIZE=x\r\n"
            "MAIL FROM:<a@b> SIZE=99999999999999999999999999\r\n"
            "MAIL FROM:<a@b> SIZE=1000\r\n");
    assert_string_equal(out(f), "552 5.3.4 Error: message file too big\r\n"
                                "501 5.5.4 Error: bad message size syntax\r\n"
                                "552 5.3.4 Error: message file too big\r\n"
                                "250 2.1.0 Ok\r\n");
    feed(f, "RCPT TO:<r@e>\r\nDATA\r\n");
    out(f);
    /* exactly at the limit: fine */
    memset(body, 'b', 998);
    memcpy(body + 998, "\r\n.\r\n", 6);
    feed(f, body);
    assert_string_equal(out(f), "250 2.0.0 Ok: queued\r\n");
    assert_int_equal(f->dlen, 1000);
    /* one byte over: read to the end, dropped, 552, no EOM */
    feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<r@e>\r\nDATA\r\n");
    out(f);
    memset(body, 'b', 999);
    memcpy(body + 999, "\r\n.\r\nNOOP\r\n", 12);
    feed(f, body);
    assert_string_equal(out(f), "552 5.3.4 Error: message file too big\r\n"
                                "250 2.0.0 Ok\r\n");
    assert_int_equal(f->eoms, 1);
    assert_int_equal(f->resets, 1);
    assert_false(smtp_proto_in_txn(f->s));
    fake_free(f);
}

static void test_data_error_from_owner(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@e>\r\nDATA\r\n");
    out(f);
    f->data_err = "451 4.3.0 Error: cannot store";
    feed(f, "x\r\ny\r\n.\r\n");
    assert_string_equal(out(f), "451 4.3.0 Error: cannot store\r\n");
    assert_int_equal(f->eoms, 0);
    assert_int_equal(f->resets, 1);
    fake_free(f);
}

static void test_rejects_and_rcpt_limit(void **state)
{
    smtp_proto_conf c = test_conf();
    fake *f;

    c.max_rcpts = 2;
    f = fake_new_conf(&c, 1);
    out(f);
    feed(f, "HELO c\r\n");
    out(f);
    f->mail_reply = "550 5.7.1 go away";
    feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
    assert_string_equal(out(f), "550 5.7.1 go away\r\n"
                                "503 5.5.1 Error: need MAIL command\r\n");
    f->mail_reply = NULL;
    f->rcpt_reply = "450 4.2.0 later";
    feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
    assert_string_equal(out(f), "250 2.1.0 Ok\r\n450 4.2.0 later\r\n"
                                "554 5.5.1 Error: no valid recipients\r\n");
    f->rcpt_reply = NULL;
    feed(f, "RCPT TO:<1@y>\r\nRCPT TO:<2@y>\r\nRCPT TO:<3@y>\r\n");
    assert_string_equal(out(f), "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                                "452 4.5.3 Error: too many recipients\r\n");
    fake_free(f);
}

static void test_error_limit(void **state)
{
    smtp_proto_conf c = test_conf();
    fake *f;

    c.max_errors = 3;
    f = fake_new_conf(&c, 1);
    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\nX\r\nY\r\nZ\r\nNOOP\r\n");
    assert_string_equal(out(f), "250 mx.test\r\n250 2.1.0 Ok\r\n"
                                "502 5.5.2 Error: command not recognized\r\n"
                                "502 5.5.2 Error: command not recognized\r\n"
                                "502 5.5.2 Error: command not recognized\r\n"
                                "421 4.7.0 mx.test Error: too many errors\r\n");
    assert_true(smtp_proto_closing(f->s));
    assert_int_equal(f->resets, 1);
    assert_int_equal(f->errors, 3);
    feed(f, "NOOP\r\n");
    assert_string_equal(out(f), "");
    fake_free(f);
}

static void test_reply_cleaning(void **state)
{
    fake *f = fake_new(0);

    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\n");
    out(f);
    smtp_proto_resume(f->s, "550 5.7.1 bad\r\n250 injected");
    assert_string_equal(out(f), "550 5.7.1 bad  250 injected\r\n");
    feed(f, "MAIL FROM:<a@b>\r\n");
    smtp_proto_resume(f->s, "garbage");
    assert_string_equal(out(f),
                        "451 4.3.0 Error: internal error (no valid reply)\r\n");
    assert_false(smtp_proto_in_txn(f->s));
    feed(f, "MAIL FROM:<a@b>\r\n");
    smtp_proto_resume(f->s, "421 4.3.0 engine trouble");
    assert_string_equal(out(f), "421 4.3.0 engine trouble\r\n");
    assert_true(smtp_proto_closing(f->s));
    fake_free(f);
}

static void test_timeout_and_quit(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<r@e>\r\nDATA\r\npart");
    out(f);
    smtp_proto_timeout(f->s);
    assert_string_equal(out(f),
                        "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    assert_int_equal(f->resets, 1);
    assert_true(smtp_proto_closing(f->s));
    assert_false(smtp_proto_wants_input(f->s));
    fake_free(f);

    f = fake_new(1);
    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\nQUIT\r\nNOOP\r\n");
    assert_string_equal(out(f), "250 mx.test\r\n250 2.1.0 Ok\r\n"
                                "221 2.0.0 Bye\r\n");
    assert_int_equal(f->resets, 1);
    fake_free(f);
}

static void test_shutdown(void **state)
{
    fake *f = fake_new(1);

    out(f);
    feed(f, "HELO c\r\n");
    out(f);
    /* a connection that carried no mail yet may have been accepted just
     * before the stop: it gets one transaction, then 421 */
    smtp_proto_shutdown(f->s);
    assert_string_equal(out(f), "");
    assert_false(smtp_proto_closing(f->s));
    feed(f, "MAIL FROM:<a@b>\r\nRCPT TO:<r@e>\r\nDATA\r\nx\r\n.\r\n");
    assert_non_null(strstr(out(f), "354 End data with <CR><LF>.<CR><LF>\r\n"
                                   "250 2.0.0 Ok: queued\r\n"
                                   "421 4.3.2 mx.test Service shutting "
                                   "down\r\n"));
    assert_int_equal(f->eoms, 1);
    assert_true(smtp_proto_closing(f->s));
    fake_free(f);

    /* idle after a transaction: 421 at once */
    f = fake_new(1);
    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<r@e>\r\nDATA\r\nx\r\n.\r\n");
    assert_non_null(strstr(out(f), "250 2.0.0 Ok: queued\r\n"));
    assert_false(smtp_proto_closing(f->s));
    smtp_proto_shutdown(f->s);
    assert_string_equal(out(f), "421 4.3.2 mx.test Service shutting down\r\n");
    assert_true(smtp_proto_closing(f->s));
    fake_free(f);

    /* inside a transaction: it finishes, then 421 */
    f = fake_new(0);
    out(f);
    feed(f, "HELO c\r\nMAIL FROM:<a@b>\r\n");
    smtp_proto_resume(f->s, "250 2.1.0 Ok");
    out(f);
    smtp_proto_shutdown(f->s);
    assert_string_equal(out(f), "");
    assert_false(smtp_proto_closing(f->s));
    feed(f, "RCPT TO:<r@e>\r\n");
    smtp_proto_resume(f->s, "250 2.1.5 Ok");
    feed(f, "DATA\r\nx\r\n.\r\n");
    assert_string_equal(out(f), "250 2.1.5 Ok\r\n"
                                "354 End data with <CR><LF>.<CR><LF>\r\n");
    smtp_proto_resume(f->s, "250 2.0.0 Ok: done");
    assert_string_equal(out(f), "250 2.0.0 Ok: done\r\n"
                                "421 4.3.2 mx.test Service shutting down\r\n");
    assert_true(smtp_proto_closing(f->s));
    assert_int_equal(f->resets, 0);
    fake_free(f);
}

/* A client that never reads: processing stops at the high-water mark. */
static void test_output_backpressure(void **state)
{
    fake *f = fake_new(1);
    size_t i, n, total = 0;
    char *many = malloc(6 * 20000 + 1);

    assert_non_null(many);
    for (i = 0; i < 20000; i++)
        memcpy(many + 6 * i, "NOOP\r\n", 6);
    many[6 * 20000] = '\0';
    out(f);
    feed(f, many);
    free(many);
    smtp_proto_output(f->s, &n);
    assert_true(n >= SMTP_PROTO_OUT_HIGH);
    assert_true(n < SMTP_PROTO_OUT_HIGH + 64);
    assert_false(smtp_proto_wants_input(f->s));
    while ((smtp_proto_output(f->s, &n), n) > 0) {
        total += n;
        smtp_proto_consume(f->s, n);
        smtp_proto_run(f->s);
    }
    assert_int_equal(total, 20000 * strlen("250 2.0.0 Ok\r\n"));
    assert_true(smtp_proto_wants_input(f->s));
    fake_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_ehlo),
        cmocka_unit_test(test_ehlo_no_xforward_banner),
        cmocka_unit_test(test_simple_transaction),
        cmocka_unit_test(test_pipelining_paused),
        cmocka_unit_test(test_data_split_everywhere),
        cmocka_unit_test(test_data_byte_by_byte),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_nul_and_syntax),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_lmtp_per_rcpt),
        cmocka_unit_test(test_xforward),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_data_error_from_owner),
        cmocka_unit_test(test_rejects_and_rcpt_limit),
        cmocka_unit_test(test_error_limit),
        cmocka_unit_test(test_reply_cleaning),
        cmocka_unit_test(test_timeout_and_quit),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_output_backpressure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
