/*
 * test_deliver_live.c - drives the deliver stage's protocol logic
 * (plugins/deliver/deliver_proto.c) against a real Postfix smtp-sink(1) on
 * a loopback port, with a small blocking client: EHLO keywords as a real
 * server sends them, a message accepted and dumped (content checked:
 * CRLF, dot-stuffing, filtered parameters), and smtp-sink's error
 * injection (-r, -f, -q, -Q) giving the right per-recipient outcomes.
 *
 * smtp-sink must be there (Debian package postfix; $SMTP_SINK overrides
 * the path): if it cannot be started the test fails, it never skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deliver_proto.h"
#include "test_deliver_sink.h"

#define LIVE_MAX_RCPT 4

typedef struct live {
    deliver_features feat;
    int greeting, ehlo, mail, rcpt[LIVE_MAX_RCPT], data, final;
    char final_text[DELIVER_ONELINE_MAX];
    char rcpt_text[LIVE_MAX_RCPT][DELIVER_ONELINE_MAX];
    int broken; /* connection closed or garbled */
} live;

/* ---------------------------------------------------------------- */
/* A blocking client made of deliver_proto's pieces                 */

typedef struct conn {
    int fd;
    char buf[DELIVER_REPLY_MAX * 2];
    size_t len;
} conn;

/* Next reply's code, 0 on EOF / error / garbage. */
static int conn_reply(conn *c, deliver_reply *r)
{
    for (;;) {
        const char *why = NULL;
        ssize_t n = deliver_reply_parse(c->buf, c->len, r, &why);
        if (n < 0)
            return 0;
        if (n > 0) {
            memmove(c->buf, c->buf + n, c->len - (size_t)n);
            c->len -= (size_t)n;
            return r->code;
        }
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n <= 0)
            return 0;
        c->len += (size_t)n;
    }
}

static int conn_send(conn *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends content through the encoder in odd-sized chunks and a small
 * output buffer, as the stage streams it. */
static int conn_content(conn *c, const char *content)
{
    deliver_dot d;
    char out[61];
    size_t len = strlen(content), pos = 0, w;

    deliver_dot_init(&d);
    while (pos < len) {
        size_t chunk = len - pos < 37 ? len - pos : 37, off = 0;
        while (off < chunk) {
            size_t used;
            w = deliver_dot_encode(&d, content + pos + off, chunk - off, &used,
                                   out, sizeof(out));
            if (conn_send(c, out, w) < 0)
                return -1;
            off += used;
        }
        pos += chunk;
    }
    w = deliver_dot_finish(&d, out, sizeof(out));
    return conn_send(c, out, w);
}

static void live_run(int port, const char *sender, const char *sparams,
                     const char *const *rcpts, size_t n, const char *rparams,
                     const char *content, live *L)
{
    conn c;
    deliver_reply r;
    char line[DELIVER_LINE_MAX * 8];
    size_t i, accepted = 0, len;
    ssize_t l;
    int pipelining;

    memset(L, 0, sizeof(*L));
    memset(&c, 0, sizeof(c));
    c.fd = connect_port(port);
    assert_true(c.fd >= 0);
    L->greeting = conn_reply(&c, &r);
    if (L->greeting != 220)
        goto broken;
    conn_send(&c, "EHLO sluice.test\r\n", 18);
    L->ehlo = conn_reply(&c, &r);
    if (L->ehlo != 250)
        goto broken;
    deliver_ehlo_parse(&r, &L->feat);
    pipelining = (L->feat.ext & DELIVER_EXT_PIPELINING) != 0;
    if (L->feat.ext & DELIVER_EXT_XFORWARD) {
        deliver_xfwd x = {"client.example", "192.0.2.7", "ESMTP", "helo x",
                          "QID1",           "REMOTE",    2525};
        int k, ncmd = deliver_cmd_xforward(&x, L->feat.xforward, line,
                                           sizeof(line), &len);
        assert_true(ncmd >= 1);
        conn_send(&c, line, len);
        for (k = 0; k < ncmd; k++)
            if (conn_reply(&c, &r) / 100 != 2)
                goto broken;
    }
    l = deliver_cmd_mail(sender, sparams, &L->feat, line, sizeof(line));
    assert_true(l > 0);
    conn_send(&c, line, (size_t)l);
    if (!pipelining) {
        L->mail = conn_reply(&c, &r);
        if (L->mail == 0)
            goto broken;
        if (L->mail / 100 != 2)
            goto out;
    }
    for (i = 0; i < n; i++) {
        l = deliver_cmd_rcpt(rcpts[i], rparams, &L->feat, line, sizeof(line));
        assert_true(l > 0);
        conn_send(&c, line, (size_t)l);
        if (!pipelining) {
            L->rcpt[i] = conn_reply(&c, &r);
            if (L->rcpt[i] == 0)
                goto broken;
            deliver_reply_format(&r, L->rcpt_text[i], DELIVER_ONELINE_MAX);
        }
    }
    conn_send(&c, "DATA\r\n", 6);
    if (pipelining) {
        if ((L->mail = conn_reply(&c, &r)) == 0)
            goto broken;
        for (i = 0; i < n; i++) {
            if ((L->rcpt[i] = conn_reply(&c, &r)) == 0)
                goto broken;
            deliver_reply_format(&r, L->rcpt_text[i], DELIVER_ONELINE_MAX);
        }
    }
    for (i = 0; i < n; i++)
        if (L->rcpt[i] / 100 == 2)
            accepted++;
    L->data = conn_reply(&c, &r);
    if (L->data == 0)
        goto broken;
    if (L->data == 354) {
        if (accepted > 0 && L->mail / 100 == 2)
            conn_content(&c, content);
        else
            conn_send(&c, ".\r\n", 3);
        L->final = conn_reply(&c, &r);
        if (L->final == 0)
            goto broken;
        deliver_reply_format(&r, L->final_text, sizeof(L->final_text));
    }
out:
    conn_send(&c, "QUIT\r\n", 6);
    conn_reply(&c, &r);
    close(c.fd);
    return;
broken:
    L->broken = 1;
    close(c.fd);
}

static sluice_rcpt_state live_outcome(const live *L, size_t i,
                                      deliver_from *from)
{
    return deliver_outcome(L->mail, L->rcpt[i], L->data, L->final, from);
}

static const char *const two[] = {"one@example.org", "two@example.org"};

static const char content[] = "From: a@example.org\n"
                              "To: one@example.org\n"
                              "Subject: live test\n"
                              "\n"
                              ".a line that starts with a dot\n"
                              "..two dots\n"
                              ".\n"
                              "a line with\ra bare CR\n"
                              "last line without end";

/* ---------------------------------------------------------------- */

static void test_live_accept(void **state)
{
    sink s = {0};
    live L;
    char *dump;
    size_t i;

    sink_start(&s, NULL);
    live_run(s.port, "sender@example.org",
             "SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc XYZ=1", two, 2,
             "NOTIFY=FAILURE ORCPT=rfc822;one@example.org", content, &L);
    assert_false(L.broken);
    /* what smtp-sink announces */
    assert_true(L.feat.ext & DELIVER_EXT_PIPELINING);
    assert_true(L.feat.ext & DELIVER_EXT_8BITMIME);
    assert_true(L.feat.ext & DELIVER_EXT_DSN);
    assert_true(L.feat.ext & DELIVER_EXT_XFORWARD);
    assert_true(L.feat.ext & DELIVER_EXT_ENHANCED);
    assert_false(L.feat.ext & DELIVER_EXT_SIZE);
    assert_true(L.feat.xforward & DELIVER_XF_NAME);
    assert_true(L.feat.xforward & DELIVER_XF_ADDR);
    assert_false(L.feat.xforward & DELIVER_XF_IDENT);
    for (i = 0; i < 2; i++) {
        deliver_from f;
        assert_int_equal(live_outcome(&L, i, &f), SLUICE_RCPT_DONE);
        assert_int_equal(f, DELIVER_FROM_FINAL);
    }
    assert_int_equal(L.final, 250);
    assert_memory_equal(L.final_text, "250 2.0.0", 9);
    dump = sink_dump(&s);
    assert_non_null(dump);
    /* SIZE dropped (no SIZE), XYZ dropped; BODY, RET, ENVID kept */
    assert_non_null(strstr(dump, "X-Mail-Args: <sender@example.org> "
                                 "BODY=8BITMIME RET=HDRS ENVID=abc\n"));
    assert_non_null(strstr(dump,
                           "X-Rcpt-Args: <one@example.org> "
                           "NOTIFY=FAILURE ORCPT=rfc822;one@example.org"));
    /* content arrives unstuffed as it was sent */
    assert_non_null(strstr(dump, "\nSubject: live test\n\n"
                                 ".a line that starts with a dot\n"
                                 "..two dots\n.\n"));
    assert_non_null(strstr(dump, "last line without end\n"));
    free(dump);
    sink_stop(&s);
}

static void test_live_rcpt_tempfail(void **state)
{
    static const char *const opts[] = {"-r", "RCPT", NULL};
    sink s = {0};
    live L;
    size_t i;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 2, "", content, &L);
    assert_false(L.broken);
    assert_false(L.feat.ext & DELIVER_EXT_PIPELINING); /* -r implies -p */
    for (i = 0; i < 2; i++) {
        deliver_from f;
        assert_int_equal(live_outcome(&L, i, &f), SLUICE_RCPT_TEMPFAIL);
        assert_int_equal(f, DELIVER_FROM_RCPT);
        assert_int_equal(L.rcpt[i] / 100, 4);
        assert_memory_equal(L.rcpt_text[i], "450 4.3.0 Error: command failed",
                            31);
    }
    sink_stop(&s);
}

static void test_live_rcpt_reject(void **state)
{
    static const char *const opts[] = {"-f", "RCPT", NULL};
    sink s = {0};
    live L;
    deliver_from f;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 2, "", content, &L);
    assert_false(L.broken);
    assert_int_equal(live_outcome(&L, 0, &f), SLUICE_RCPT_REJECTED);
    assert_int_equal(f, DELIVER_FROM_RCPT);
    assert_int_equal(live_outcome(&L, 1, &f), SLUICE_RCPT_REJECTED);
    assert_int_equal(L.rcpt[1] / 100, 5);
    assert_int_equal(L.final, 0); /* no content was sent */
    sink_stop(&s);
}

static void test_live_final_reject(void **state)
{
    static const char *const opts[] = {"-f", ".", NULL};
    sink s = {0};
    live L;
    size_t i;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 2, "", content, &L);
    assert_false(L.broken);
    for (i = 0; i < 2; i++) {
        deliver_from f;
        assert_int_equal(L.rcpt[i], 250);
        assert_int_equal(live_outcome(&L, i, &f), SLUICE_RCPT_REJECTED);
        assert_int_equal(f, DELIVER_FROM_FINAL);
    }
    assert_int_equal(L.final / 100, 5);
    sink_stop(&s);
}

static void test_live_data_tempfail(void **state)
{
    static const char *const opts[] = {"-r", "DATA", NULL};
    sink s = {0};
    live L;
    deliver_from f;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 2, "", content, &L);
    assert_false(L.broken);
    assert_int_equal(L.data / 100, 4);
    assert_int_equal(live_outcome(&L, 0, &f), SLUICE_RCPT_TEMPFAIL);
    assert_int_equal(f, DELIVER_FROM_DATA);
    assert_int_equal(live_outcome(&L, 1, &f), SLUICE_RCPT_TEMPFAIL);
    sink_stop(&s);
}

static void test_live_disconnect(void **state)
{
    static const char *const opts[] = {"-q", "RCPT", NULL};
    sink s = {0};
    live L;
    deliver_from f;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 2, "", content, &L);
    assert_true(L.broken);
    assert_int_equal(L.mail, 250);
    /* never DONE: the connection went away */
    assert_int_equal(live_outcome(&L, 0, &f), SLUICE_RCPT_TEMPFAIL);
    assert_int_equal(f, DELIVER_FROM_NONE);
    assert_int_equal(live_outcome(&L, 1, &f), SLUICE_RCPT_TEMPFAIL);
    sink_stop(&s);
}

static void test_live_421(void **state)
{
    static const char *const opts[] = {"-Q", "MAIL", NULL};
    sink s = {0};
    live L;
    deliver_from f;

    sink_start(&s, opts);
    live_run(s.port, "s@example.org", "", two, 1, "", content, &L);
    assert_int_equal(L.mail, 421);
    assert_int_equal(live_outcome(&L, 0, &f), SLUICE_RCPT_TEMPFAIL);
    assert_int_equal(f, DELIVER_FROM_MAIL);
    sink_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_accept),
        cmocka_unit_test(test_live_rcpt_tempfail),
        cmocka_unit_test(test_live_rcpt_reject),
        cmocka_unit_test(test_live_final_reject),
        cmocka_unit_test(test_live_data_tempfail),
        cmocka_unit_test(test_live_disconnect),
        cmocka_unit_test(test_live_421),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
