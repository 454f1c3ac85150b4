/*
 * fuzz_smtp.c - libFuzzer target for the smtp ingress's protocol state
 * machine (plugins/smtp/smtp_proto.c).
 *
 * The input is a script: its first byte picks limits and modes, then
 * repeated records of one control byte and a chunk.  The control byte says
 * how long the chunk fed next is, whether pending decisions are answered
 * now (with a 2xx, 4xx, 5xx, 421 or malformed reply, or per-recipient
 * replies), how much output the "client" reads, and now and then a timeout
 * or shutdown.  Checked invariants: every reply line is "ddd" + SP/'-' and
 * ends in CRLF; buffered input stays within one command line when the
 * session wants input; output stays bounded; events arrive in a legal
 * order (RCPT only inside MAIL, data only after an accepted RCPT).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_proto.h"

typedef struct fz {
    smtp_proto *s;
    int mail, rcpts, pending, sync;
    unsigned rnd;
    size_t data;
    char partial[8]; /* output line check across consume() cuts */
    size_t plen;
    int line_start;
    size_t line_len;
} fz;

static const char *const fz_replies[] = {"250 2.0.0 Ok",
                                         "451 4.3.0 later",
                                         "550 5.7.1 no",
                                         "421 4.3.0 closing",
                                         "junk",
                                         "250",
                                         "452 4.5.3 x\r\ny",
                                         NULL};

static const char *fz_pick(fz *f)
{
    f->rnd = f->rnd * 1103515245u + 12345u;
    return fz_replies[(f->rnd >> 16) % 8];
}

static void fz_answer(fz *f)
{
    if (!f->pending)
        return;
    f->pending = 0;
    if ((f->rnd & 3) == 3) {
        const char *r[3] = {fz_pick(f), fz_pick(f), fz_pick(f)};
        smtp_proto_resume_n(f->s, r, (f->rnd >> 8) % 4);
    } else {
        smtp_proto_resume(f->s, fz_pick(f));
    }
}

static void fz_mail(void *arg, const char *a, const char *p,
                    const smtp_proto_xfwd *xf)
{
    fz *f = arg;
    if (f->mail || f->pending || strlen(a) > 4096)
        abort();
    f->pending = 1;
    if (f->sync)
        fz_answer(f);
}

static void fz_rcpt(void *arg, const char *a, const char *p)
{
    fz *f = arg;
    if (f->pending || a[0] == '\0')
        abort();
    f->pending = 1;
    if (f->sync)
        fz_answer(f);
}

static void fz_eom(void *arg)
{
    fz *f = arg;
    if (f->pending)
        abort();
    f->pending = 1;
    if (f->sync)
        fz_answer(f);
}

static const char *fz_data(void *arg, const char *p, size_t n)
{
    fz *f = arg;
    if (n == 0 || f->pending)
        abort();
    f->data += n;
    return (f->rnd & 0xff) == 7 ? "451 4.3.0 store failed" : NULL;
}

static void fz_reset(void *arg)
{
    fz *f = arg;
    f->pending = 0;
}

/* Checks the reply syntax of what the client reads. */
static void fz_check_out(fz *f, const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (f->line_len < 4) {
            if (f->line_len < 3 && (c < '0' || c > '9'))
                abort();
            if (f->line_len == 3 && c != ' ' && c != '-' && c != '\r')
                abort();
        }
        if (c == '\n') {
            if (f->line_len == 0 || f->partial[0] != '\r')
                abort();
            f->line_len = 0;
            continue;
        }
        if (c == '\0')
            abort();
        f->partial[0] = c;
        f->line_len++;
        if (f->line_len > 600)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtp_proto_conf c;
    smtp_proto_events ev;
    fz f;
    size_t i = 1;

    if (size < 1)
        return 0;
    memset(&f, 0, sizeof(f));
    memset(&c, 0, sizeof(c));
    c.hostname = "fuzz.test";
    c.max_line = (data[0] & 1) ? 512 : 2048;
    c.max_size = (data[0] & 2) ? 300 : 0;
    c.max_rcpts = (data[0] & 4) ? 3 : 1000;
    c.max_errors = (data[0] & 8) ? 0 : 20;
    c.xforward = !(data[0] & 16);
    f.sync = (data[0] & 32) != 0;
    f.rnd = data[0];
    memset(&ev, 0, sizeof(ev));
    ev.arg = &f;
    ev.mail = fz_mail;
    ev.rcpt = fz_rcpt;
    ev.eom = fz_eom;
    ev.data = fz_data;
    ev.reset = fz_reset;
    f.s = smtp_proto_new(&c, &ev);
    if (f.s == NULL)
        return 0;
    while (i < size && !smtp_proto_closing(f.s)) {
        uint8_t ctl = data[i++];
        size_t n = (size_t)(ctl & 0x3f) + 1, avail;
        const char *o;

        f.rnd ^= ctl;
        if (n > size - i)
            n = size - i;
        smtp_proto_feed(f.s, data + i, n);
        i += n;
        if (smtp_proto_wants_input(f.s) && !smtp_proto_in_data(f.s) &&
            smtp_proto_buffered(f.s) >= c.max_line)
            abort();
        if (ctl & 0x40)
            fz_answer(&f);
        o = smtp_proto_output(f.s, &avail);
        if (avail > SMTP_PROTO_OUT_HIGH + 200000)
            abort();
        if (ctl & 0x80) {
            size_t take = avail / ((ctl & 3) + 1);
            fz_check_out(&f, o, take);
            smtp_proto_consume(f.s, take);
            smtp_proto_run(f.s);
        }
        if (ctl == 0xff)
            smtp_proto_timeout(f.s);
        if (ctl == 0xfe)
            smtp_proto_shutdown(f.s);
    }
    fz_answer(&f);
    {
        size_t avail;
        const char *o = smtp_proto_output(f.s, &avail);
        fz_check_out(&f, o, avail);
    }
    smtp_proto_free(f.s);
    return 0;
}
