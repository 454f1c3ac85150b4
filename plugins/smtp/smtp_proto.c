/*
 * smtp_proto.c - the SMTP/LMTP server state machine of the `smtp` ingress
 * (RFC 5321, 1652 8BITMIME, 1870 SIZE, 2920 PIPELINING, 2034/3463 enhanced
 * status codes, 3461 DSN, 2033 LMTP, Postfix XFORWARD).  No I/O: see
 * smtp_proto.h for the interface.
 *
 * Commands: HELO, EHLO, LHLO, XFORWARD, MAIL, RCPT, DATA, RSET, NOOP,
 * QUIT, HELP, VRFY (252).  Anything else is 502 5.5.2.  A command line is
 * ended by LF (CRLF or bare LF) and may not exceed max_line bytes with its
 * line end; a longer one is read to its end and answered 500 5.5.2, so a
 * pipelining client stays in step.
 *
 * DATA: the content is dot-unstuffed (a CRLF-started line's leading dot is
 * dropped) and otherwise passed on byte for byte; only CRLF "." CRLF ends
 * it.  Past max_size the rest is read and dropped and the answer is 552.
 *
 * Diagnostics: see smtp_proto.h.
 *
 * SECURITY: all input is attacker-controlled.  Every copy is bounded by
 * the line buffer (max_line + 1 bytes, allocated once per session); the
 * input buffer holds at most one partial command line beyond what the
 * owner fed while the session was paused.
 */
#include "smtp_proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { P_NONE = 0, P_MAIL, P_RCPT, P_EOM };
enum { D_BOL = 0, D_MID, D_CR, D_DOT, D_DOTCR };

#define SMTP_PROTO_REPLY_MAX 512 /* RFC 5321 4.5.3.1.5, CRLF included */
#define SMTP_PROTO_XF_MAX 255    /* one XFORWARD value, decoded */

typedef struct smtp_proto_buf {
    char *data;
    size_t len, cap, off; /* off: consumed from the front */
} smtp_proto_buf;

struct smtp_proto {
    smtp_proto_conf conf;
    smtp_proto_events ev;
    smtp_proto_buf in, out;
    char *line; /* max_line + 1: the command being processed */
    char *addr; /* max_line + 1: the path of MAIL/RCPT */
    char logcmd[128];
    char data_err[SMTP_PROTO_REPLY_MAX];
    int greet;
    int mail_open;
    size_t nrcpt;
    int pending;
    int running;
    int in_data, dstate, over;
    size_t dsize;
    int skipping;
    unsigned errors;
    int stopping, closing, nomem;
    int served; /* a transaction has ended on this connection */
    smtp_proto_xfwd xf;
};

/* ---------------------------------------------------------------- */
/* Buffers                                                           */

static int smtp_proto_buf_add(smtp_proto *s, smtp_proto_buf *b, const void *p,
                              size_t n)
{
    if (s->nomem)
        return -1;
    if (n == 0)
        return 0;
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (n > b->cap - b->len) {
        size_t need, cap;
        char *d;
        if (b->off > 0) { /* compact first */
            memmove(b->data, b->data + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (n > (size_t)-1 / 2 - b->len)
            goto fail;
        need = b->len + n;
        cap = b->cap ? b->cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap != b->cap) {
            if ((d = realloc(b->data, cap)) == NULL)
                goto fail;
            b->data = d;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
fail:
    s->nomem = 1;
    s->closing = 1;
    return -1;
}

/* ---------------------------------------------------------------- */
/* Replies                                                           */

static void smtp_proto_say(smtp_proto *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtp_proto_say(smtp_proto *s, const char *fmt, ...)
{
    char line[SMTP_PROTO_REPLY_MAX + 2];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 3)
        n = (int)(sizeof(line) - 3);
    line[n++] = '\r';
    line[n++] = '\n';
    smtp_proto_buf_add(s, &s->out, line, (size_t)n);
}

/* A reply from the owner: one line, cleaned; 0 if not a valid reply. */
static int smtp_proto_say_owner(smtp_proto *s, const char *reply)
{
    char line[SMTP_PROTO_REPLY_MAX];
    size_t n = 0;

    if (reply == NULL || strlen(reply) < 3 || reply[0] < '2' ||
        reply[0] > '5' || !isdigit((unsigned char)reply[1]) ||
        !isdigit((unsigned char)reply[2]) ||
        (reply[3] != '\0' && reply[3] != ' ')) {
        smtp_proto_say(s, "451 4.3.0 Error: internal error (no valid reply)");
        return 451;
    }
    for (; reply[n] != '\0' && n < sizeof(line) - 3; n++) {
        unsigned char c = (unsigned char)reply[n];
        line[n] =
            (c == '\r' || c == '\n' || c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    line[n++] = '\r';
    line[n++] = '\n';
    smtp_proto_buf_add(s, &s->out, line, n);
    return (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
}

static void smtp_proto_xf_clear(smtp_proto_xfwd *xf)
{
    free(xf->name);
    free(xf->addr);
    free(xf->helo);
    free(xf->proto);
    free(xf->ident);
    free(xf->source);
    memset(xf, 0, sizeof(*xf));
}

/* Forget the transaction (and the XFORWARD facts that went with it). */
static void smtp_proto_txn_reset(smtp_proto *s)
{
    int had = s->mail_open || s->pending != P_NONE || s->in_data;

    s->mail_open = 0;
    s->nrcpt = 0;
    s->in_data = 0;
    s->pending = P_NONE;
    smtp_proto_xf_clear(&s->xf);
    if (had && s->ev.reset)
        s->ev.reset(s->ev.arg);
}

static void smtp_proto_close(smtp_proto *s)
{
    smtp_proto_txn_reset(s);
    s->closing = 1;
}

static void smtp_proto_logcmd(smtp_proto *s, const char *p, size_t n)
{
    size_t i, m = n < sizeof(s->logcmd) - 1 ? n : sizeof(s->logcmd) - 1;

    for (i = 0; i < m; i++) {
        unsigned char c = (unsigned char)p[i];
        s->logcmd[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    s->logcmd[m] = '\0';
}

/* Answer a protocol error, report it, count it. */
static void smtp_proto_error(smtp_proto *s, const char *reply)
{
    smtp_proto_say(s, "%s", reply);
    s->errors++;
    if (s->ev.error)
        s->ev.error(s->ev.arg, s->logcmd, reply);
    if (s->conf.max_errors && s->errors >= s->conf.max_errors) {
        smtp_proto_say(s, "421 4.7.0 %s Error: too many errors",
                       s->conf.hostname);
        smtp_proto_close(s);
    }
}

/* ---------------------------------------------------------------- */
/* Parsing helpers                                                   */

int smtp_proto_xtext_decode(const char *in, size_t len, char *out,
                            size_t outsize)
{
    size_t i, o = 0;

    if (outsize == 0)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            int v = 0, k;
            if (len - i < 3)
                return -1;
            for (k = 1; k <= 2; k++) {
                unsigned char h = (unsigned char)in[i + (size_t)k];
                if (h >= '0' && h <= '9')
                    v = v * 16 + (h - '0');
                else if (h >= 'A' && h <= 'F')
                    v = v * 16 + (h - 'A' + 10);
                else
                    return -1;
            }
            if (v == 0)
                return -1; /* no NUL smuggled into a C string */
            c = (unsigned char)v;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        if (o + 1 >= outsize)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static const char *smtp_proto_skip_sp(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* "<path>" or a bare address; route dropped.  0, or -1 on bad syntax. */
static int smtp_proto_path(smtp_proto *s, const char *p, const char **rest)
{
    size_t o = 0, cap = s->conf.max_line;
    int quoted = 0;

    p = smtp_proto_skip_sp(p);
    if (*p != '<') { /* tolerated: MAIL FROM:user@example.com */
        while (*p != '\0' && *p != ' ' && *p != '\t' && o < cap)
            s->addr[o++] = *p++;
        s->addr[o] = '\0';
        if (o == 0 || strchr(s->addr, '<') || strchr(s->addr, '>'))
            return -1;
        *rest = smtp_proto_skip_sp(p);
        return 0;
    }
    p++;
    if (*p == '@') { /* source route: @a,@b:user@c */
        const char *colon = strchr(p, ':');
        const char *gt = strchr(p, '>');
        if (colon == NULL || (gt != NULL && gt < colon))
            return -1;
        p = colon + 1;
    }
    for (;; p++) {
        if (*p == '\0')
            return -1;
        if (quoted) {
            if (*p == '\\' && p[1] != '\0') {
                if (o + 2 > cap)
                    return -1;
                s->addr[o++] = *p++;
            } else if (*p == '"') {
                quoted = 0;
            }
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == '>') {
            break;
        } else if (*p == '<' || *p == ' ' || *p == '\t') {
            return -1;
        }
        if (o + 1 > cap)
            return -1;
        s->addr[o++] = *p;
    }
    s->addr[o] = '\0';
    p++;
    if (*p != '\0' && *p != ' ' && *p != '\t')
        return -1;
    *rest = smtp_proto_skip_sp(p);
    return 0;
}

/* Checks the MAIL parameters we act on (SIZE); NULL or an error reply. */
static const char *smtp_proto_mail_params(smtp_proto *s, const char *p)
{
    while (*p != '\0') {
        const char *kw = p, *eq;
        size_t n;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        n = (size_t)(p - kw);
        eq = memchr(kw, '=', n);
        if (eq == kw)
            return "501 5.5.4 Error: bad parameter syntax";
        if ((eq ? (size_t)(eq - kw) : n) == 4 &&
            strncasecmp(kw, "SIZE", 4) == 0) {
            const char *v = eq ? eq + 1 : kw + n;
            size_t val = 0;
            if (v >= kw + n)
                return "501 5.5.4 Error: bad message size syntax";
            for (; v < kw + n; v++) {
                if (!isdigit((unsigned char)*v))
                    return "501 5.5.4 Error: bad message size syntax";
                if (val > ((size_t)-1 - 9) / 10)
                    val = (size_t)-1; /* saturate: surely too big */
                else
                    val = val * 10 + (size_t)(*v - '0');
            }
            if (s->conf.max_size && val > s->conf.max_size)
                return "552 5.3.4 Error: message file too big";
        }
        p = smtp_proto_skip_sp(p);
    }
    return NULL;
}

/* Trailing blanks off a parameter string, in place. */
static void smtp_proto_rtrim(char *p)
{
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        p[--n] = '\0';
}

/* ---------------------------------------------------------------- */
/* Commands                                                          */

static void smtp_proto_cmd_helo(smtp_proto *s, int greet, char *arg)
{
    char *end;

    if (*arg == '\0') {
        smtp_proto_error(
            s, greet == SMTP_PROTO_HELO   ? "501 5.5.4 Syntax: HELO hostname"
               : greet == SMTP_PROTO_EHLO ? "501 5.5.4 Syntax: EHLO hostname"
                                          : "501 5.5.4 Syntax: LHLO hostname");
        return;
    }
    /* the name ends at the first blank; trailing words are ignored */
    end = arg;
    while (*end != '\0' && *end != ' ' && *end != '\t')
        end++;
    *end = '\0';
    smtp_proto_txn_reset(s);
    s->greet = greet;
    if (s->ev.helo)
        s->ev.helo(s->ev.arg, greet, arg);
    if (greet == SMTP_PROTO_HELO) {
        smtp_proto_say(s, "250 %s", s->conf.hostname);
        return;
    }
    smtp_proto_say(s, "250-%s", s->conf.hostname);
    smtp_proto_say(s, "250-PIPELINING");
    smtp_proto_say(s, "250-SIZE %zu", s->conf.max_size);
    smtp_proto_say(s, "250-8BITMIME");
    smtp_proto_say(s, "250-ENHANCEDSTATUSCODES");
    if (s->conf.xforward) {
        smtp_proto_say(s, "250-DSN");
        smtp_proto_say(s, "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT "
                          "SOURCE");
    } else {
        smtp_proto_say(s, "250 DSN");
    }
}

static void smtp_proto_cmd_xforward(smtp_proto *s, char *arg)
{
    smtp_proto_xfwd nx;
    char val[SMTP_PROTO_XF_MAX + 1];
    static const char *const names[] = {"NAME", "ADDR",  "PORT",  "PROTO",
                                        "HELO", "IDENT", "SOURCE"};
    char *p = arg;

    if (s->greet == SMTP_PROTO_NONE) {
        smtp_proto_error(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->mail_open) {
        smtp_proto_error(s, "503 5.5.1 Error: MAIL transaction in progress");
        return;
    }
    if (*p == '\0') {
        smtp_proto_error(s, "501 5.5.4 Syntax: XFORWARD attribute=value...");
        return;
    }
    /* work on a copy: all or nothing */
    memset(&nx, 0, sizeof(nx));
    nx.port = s->xf.port;
#define XF_DUP(f) nx.f = s->xf.f ? strdup(s->xf.f) : NULL
    XF_DUP(name);
    XF_DUP(addr);
    XF_DUP(helo);
    XF_DUP(proto);
    XF_DUP(ident);
    XF_DUP(source);
#undef XF_DUP
    while (*p != '\0') {
        char *tok = p, *eq, *v;
        size_t i, vlen;
        char **slot = NULL;
        const char *bad = NULL;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '\0')
            *p++ = '\0';
        p = (char *)smtp_proto_skip_sp(p);
        if ((eq = strchr(tok, '=')) == NULL) {
            bad = "501 5.5.4 Error: bad XFORWARD attribute syntax";
            goto fail;
        }
        *eq = '\0';
        v = eq + 1;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (strcasecmp(tok, names[i]) == 0)
                break;
        if (i == sizeof(names) / sizeof(names[0])) {
            bad = "501 5.5.4 Error: bad XFORWARD attribute name";
            goto fail;
        }
        vlen = strlen(v);
        if (smtp_proto_xtext_decode(v, vlen, val, sizeof(val)) < 0) {
            bad = "501 5.5.4 Error: bad XFORWARD attribute value";
            goto fail;
        }
        switch (i) {
        case 0:
            slot = &nx.name;
            break;
        case 1:
            slot = &nx.addr;
            break;
        case 3:
            slot = &nx.proto;
            break;
        case 4:
            slot = &nx.helo;
            break;
        case 5:
            slot = &nx.ident;
            break;
        case 6:
            slot = &nx.source;
            break;
        default:
            break;
        }
        if (strcasecmp(val, "[UNAVAILABLE]") == 0 ||
            strcasecmp(val, "[TEMPUNAVAIL]") == 0) {
            if (slot) {
                free(*slot);
                *slot = NULL;
            } else {
                nx.port = 0;
            }
            continue;
        }
        if (i == 2) { /* PORT */
            char *e;
            long port = strtol(val, &e, 10);
            if (val[0] == '\0' || *e != '\0' ||
                !isdigit((unsigned char)val[0]) || port < 0 || port > 65535) {
                bad = "501 5.5.4 Error: bad XFORWARD port";
                goto fail;
            }
            nx.port = (int)port;
            continue;
        }
        if (i == 1 && strncasecmp(val, "IPv6:", 5) == 0)
            memmove(val, val + 5, strlen(val + 5) + 1);
        free(*slot);
        if ((*slot = strdup(val)) == NULL) {
            smtp_proto_xf_clear(&nx);
            smtp_proto_say(s, "421 4.3.0 %s Error: out of memory",
                           s->conf.hostname);
            smtp_proto_close(s);
            return;
        }
        continue;
    fail:
        smtp_proto_xf_clear(&nx);
        smtp_proto_error(s, bad);
        return;
    }
    smtp_proto_xf_clear(&s->xf);
    s->xf = nx;
    smtp_proto_say(s, "250 2.0.0 Ok");
}

static void smtp_proto_cmd_mail(smtp_proto *s, char *arg)
{
    const char *rest, *bad;

    if (s->greet == SMTP_PROTO_NONE) {
        smtp_proto_error(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->mail_open) {
        smtp_proto_error(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0 ||
        smtp_proto_path(s, arg + 5, &rest) < 0) {
        smtp_proto_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    smtp_proto_rtrim((char *)rest);
    if ((bad = smtp_proto_mail_params(s, rest)) != NULL) {
        if (bad[0] == '5' && bad[1] == '5' && bad[2] == '2')
            smtp_proto_say(s, "%s", bad); /* a limit, not a protocol error */
        else
            smtp_proto_error(s, bad);
        return;
    }
    s->pending = P_MAIL;
    if (s->ev.mail)
        s->ev.mail(s->ev.arg, s->addr, rest, &s->xf);
    else
        smtp_proto_resume(s, "250 2.1.0 Ok");
}

static void smtp_proto_cmd_rcpt(smtp_proto *s, char *arg)
{
    const char *rest;

    if (!s->mail_open) {
        smtp_proto_error(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0 ||
        smtp_proto_path(s, arg + 3, &rest) < 0) {
        smtp_proto_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (s->addr[0] == '\0') {
        smtp_proto_error(s, "501 5.1.3 Error: bad recipient address syntax");
        return;
    }
    if (s->conf.max_rcpts && s->nrcpt >= s->conf.max_rcpts) {
        smtp_proto_say(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    smtp_proto_rtrim((char *)rest);
    s->pending = P_RCPT;
    if (s->ev.rcpt)
        s->ev.rcpt(s->ev.arg, s->addr, rest);
    else
        smtp_proto_resume(s, "250 2.1.5 Ok");
}

static void smtp_proto_cmd_data(smtp_proto *s, const char *arg)
{
    if (*arg != '\0') {
        smtp_proto_error(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (!s->mail_open) {
        smtp_proto_error(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (s->nrcpt == 0) {
        smtp_proto_error(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    s->in_data = 1;
    s->dstate = D_BOL;
    s->dsize = 0;
    s->over = 0;
    s->data_err[0] = '\0';
    smtp_proto_say(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void smtp_proto_command(smtp_proto *s, size_t n)
{
    char *line = s->line, *arg;
    size_t vlen;

    smtp_proto_logcmd(s, line, n);
    if (memchr(line, '\0', n) != NULL) {
        smtp_proto_error(s, "500 5.5.2 Error: NUL character in command");
        return;
    }
    line[n] = '\0';
    if (s->stopping && !s->mail_open && s->served) {
        smtp_proto_say(s, "421 4.3.2 %s Service shutting down",
                       s->conf.hostname);
        smtp_proto_close(s);
        return;
    }
    for (vlen = 0;
         line[vlen] != '\0' && line[vlen] != ' ' && line[vlen] != '\t'; vlen++)
        ;
    arg = (char *)smtp_proto_skip_sp(line + vlen);
    if (vlen == 0) {
        smtp_proto_error(s, "500 5.5.2 Error: bad syntax");
        return;
    }
#define IS(v) (vlen == sizeof(v) - 1 && strncasecmp(line, v, vlen) == 0)
    if (IS("EHLO")) {
        smtp_proto_cmd_helo(s, SMTP_PROTO_EHLO, arg);
    } else if (IS("HELO")) {
        smtp_proto_cmd_helo(s, SMTP_PROTO_HELO, arg);
    } else if (IS("LHLO")) {
        smtp_proto_cmd_helo(s, SMTP_PROTO_LHLO, arg);
    } else if (IS("MAIL")) {
        smtp_proto_cmd_mail(s, arg);
    } else if (IS("RCPT")) {
        smtp_proto_cmd_rcpt(s, arg);
    } else if (IS("DATA")) {
        smtp_proto_cmd_data(s, arg);
    } else if (IS("RSET")) {
        smtp_proto_txn_reset(s);
        smtp_proto_say(s, "250 2.0.0 Ok");
    } else if (IS("NOOP")) {
        smtp_proto_say(s, "250 2.0.0 Ok");
    } else if (IS("QUIT")) {
        smtp_proto_say(s, "221 2.0.0 Bye");
        smtp_proto_close(s);
    } else if (IS("XFORWARD") && s->conf.xforward) {
        smtp_proto_cmd_xforward(s, arg);
    } else if (IS("VRFY")) {
        if (*arg == '\0')
            smtp_proto_error(s, "501 5.5.4 Syntax: VRFY address");
        else
            smtp_proto_say(s, "252 2.0.0 Send some mail, I'll try my best");
    } else if (IS("HELP")) {
        smtp_proto_say(s,
                       "214 2.0.0 Commands: EHLO HELO LHLO MAIL RCPT "
                       "DATA RSET NOOP QUIT VRFY HELP%s",
                       s->conf.xforward ? " XFORWARD" : "");
    } else {
        smtp_proto_error(s, "502 5.5.2 Error: command not recognized");
    }
#undef IS
}

/* ---------------------------------------------------------------- */
/* DATA                                                              */

static void smtp_proto_emit(smtp_proto *s, const char *p, size_t n)
{
    const char *err;

    if (n == 0)
        return;
    if (s->over || s->data_err[0] != '\0') {
        s->dsize += (n > (size_t)-1 - s->dsize) ? 0 : n;
        return;
    }
    if (s->conf.max_size && n > s->conf.max_size - s->dsize) {
        s->over = 1;
        return;
    }
    s->dsize += n;
    if (s->ev.data && (err = s->ev.data(s->ev.arg, p, n)) != NULL)
        snprintf(s->data_err, sizeof(s->data_err), "%s", err);
}

static void smtp_proto_data_end(smtp_proto *s)
{
    const char *fail = NULL;
    char big[128];
    size_t i, k;

    s->in_data = 0;
    if (s->over) {
        snprintf(big, sizeof(big), "552 5.3.4 Error: message file too big");
        fail = big;
    } else if (s->data_err[0] != '\0') {
        fail = s->data_err;
    }
    if (fail == NULL) {
        s->pending = P_EOM;
        if (s->ev.eom)
            s->ev.eom(s->ev.arg);
        else
            smtp_proto_resume(s, "250 2.0.0 Ok");
        return;
    }
    /* LMTP: one reply per accepted recipient */
    k = s->greet == SMTP_PROTO_LHLO ? s->nrcpt : 1;
    for (i = 0; i < k; i++)
        smtp_proto_say_owner(s, fail);
    smtp_proto_txn_reset(s);
}

/* Consume content from the input buffer until it is empty or the end. */
static void smtp_proto_data_step(smtp_proto *s)
{
    const char *base = s->in.data;
    const char *p = base + s->in.off, *end = base + s->in.len;
    const char *run = p;

    while (p < end) {
        char c = *p;
        switch (s->dstate) {
        case D_BOL:
            if (c == '.') {
                smtp_proto_emit(s, run, (size_t)(p - run));
                p++;
                run = p;
                s->dstate = D_DOT;
                continue;
            }
            s->dstate = D_MID;
            continue;
        case D_MID:
            if (c == '\r')
                s->dstate = D_CR;
            p++;
            continue;
        case D_CR:
            s->dstate = c == '\n' ? D_BOL : c == '\r' ? D_CR : D_MID;
            p++;
            continue;
        case D_DOT:
            if (c == '\r') {
                p++;
                run = p; /* the CR waits: it may be the end */
                s->dstate = D_DOTCR;
            } else {
                s->dstate = D_MID; /* the dot was stuffing: dropped */
            }
            continue;
        default: /* D_DOTCR */
            if (c == '\n') {
                s->in.off = (size_t)(p + 1 - base);
                smtp_proto_data_end(s);
                return;
            }
            smtp_proto_emit(s, "\r", 1);
            s->dstate = D_CR;
            continue;
        }
    }
    smtp_proto_emit(s, run, (size_t)(p - run));
    s->in.off = s->in.len;
}

/* ---------------------------------------------------------------- */
/* Driving                                                           */

/* Stopping, and the connection has carried its mail: an idle session
 * hears 421 now rather than at its next command. */
static void smtp_proto_stop_if_idle(smtp_proto *s)
{
    if (s->stopping && s->served && !s->closing && !s->running &&
        s->pending == P_NONE && !smtp_proto_in_txn(s) && !s->in_data &&
        s->in.off == s->in.len) {
        smtp_proto_say(s, "421 4.3.2 %s Service shutting down",
                       s->conf.hostname);
        smtp_proto_close(s);
    }
}

void smtp_proto_run(smtp_proto *s)
{
    if (s->running)
        return; /* re-entered from an event: the outer loop goes on */
    s->running = 1;
    while (!s->closing && s->pending == P_NONE &&
           s->out.len - s->out.off < SMTP_PROTO_OUT_HIGH) {
        size_t avail = s->in.len - s->in.off, linelen;
        const char *start, *lf;

        if (avail == 0)
            break; /* (in.data may still be NULL) */
        start = s->in.data + s->in.off;
        if (s->in_data) {
            smtp_proto_data_step(s);
            continue;
        }
        lf = memchr(start, '\n', avail);
        if (s->skipping) {
            if (lf == NULL) {
                s->in.off = s->in.len;
                break;
            }
            s->in.off += (size_t)(lf - start) + 1;
            s->skipping = 0;
            smtp_proto_error(s, "500 5.5.2 Error: line too long");
            continue;
        }
        if (lf == NULL) {
            if (avail >= s->conf.max_line) {
                smtp_proto_logcmd(s, start, avail);
                s->skipping = 1;
                s->in.off = s->in.len;
            }
            break;
        }
        linelen = (size_t)(lf - start) + 1;
        s->in.off += linelen;
        if (linelen > s->conf.max_line) {
            smtp_proto_logcmd(s, start, linelen);
            smtp_proto_error(s, "500 5.5.2 Error: line too long");
            continue;
        }
        linelen--;
        if (linelen > 0 && start[linelen - 1] == '\r')
            linelen--;
        memcpy(s->line, start, linelen);
        smtp_proto_command(s, linelen);
    }
    if (s->in.off == s->in.len)
        s->in.off = s->in.len = 0;
    s->running = 0;
    smtp_proto_stop_if_idle(s);
}

void smtp_proto_feed(smtp_proto *s, const void *p, size_t n)
{
    if (s->closing || n == 0)
        return;
    if (s->in.off > 0 && s->in.off == s->in.len)
        s->in.off = s->in.len = 0;
    if (smtp_proto_buf_add(s, &s->in, p, n) < 0)
        return;
    smtp_proto_run(s);
}

void smtp_proto_resume_n(smtp_proto *s, const char *const *replies, size_t n)
{
    int pending = s->pending, code = 0, c;
    size_t i;

    if (pending == P_NONE || s->closing)
        return; /* stale: the transaction was given up */
    if (n == 0) {
        code = smtp_proto_say_owner(s, NULL);
    } else {
        for (i = 0; i < n; i++) {
            c = smtp_proto_say_owner(s, replies[i]);
            if (i == 0 || c == 421)
                code = c;
        }
    }
    s->pending = P_NONE;
    switch (pending) {
    case P_MAIL:
        if (code / 100 == 2) {
            s->mail_open = 1;
            s->nrcpt = 0;
        }
        break;
    case P_RCPT:
        if (code / 100 == 2)
            s->nrcpt++;
        break;
    default: /* P_EOM: the transaction is over */
        s->served = 1;
        s->mail_open = 0;
        s->nrcpt = 0;
        smtp_proto_xf_clear(&s->xf);
        break;
    }
    if (code == 421) { /* the owner gives up: so does the session */
        smtp_proto_close(s);
        return;
    }
    smtp_proto_run(s);
}

void smtp_proto_resume(smtp_proto *s, const char *reply)
{
    smtp_proto_resume_n(s, &reply, 1);
}

void smtp_proto_timeout(smtp_proto *s)
{
    if (s->closing)
        return;
    smtp_proto_say(s, "421 4.4.2 %s Error: timeout exceeded", s->conf.hostname);
    smtp_proto_close(s);
}

void smtp_proto_shutdown(smtp_proto *s)
{
    if (s->closing)
        return;
    s->stopping = 1;
    if (s->mail_open || s->pending != P_NONE || s->in_data)
        return; /* finish the transaction; 421 at the next command */
    /* A connection that has not carried mail yet may have been accepted
     * an instant before the stop, its client unaware: serve it one
     * transaction (the idle and shutdown timeouts still bound it), so
     * a reload refuses nobody. */
    if (!s->served)
        return;
    smtp_proto_say(s, "421 4.3.2 %s Service shutting down", s->conf.hostname);
    smtp_proto_close(s);
}

const char *smtp_proto_output(smtp_proto *s, size_t *len)
{
    *len = s->out.len - s->out.off;
    return s->out.data ? s->out.data + s->out.off : "";
}

void smtp_proto_consume(smtp_proto *s, size_t n)
{
    size_t have = s->out.len - s->out.off;

    s->out.off += n < have ? n : have;
    if (s->out.off == s->out.len)
        s->out.off = s->out.len = 0;
}

int smtp_proto_paused(const smtp_proto *s)
{
    return s->pending != P_NONE;
}

int smtp_proto_in_data(const smtp_proto *s)
{
    return s->in_data;
}

int smtp_proto_in_txn(const smtp_proto *s)
{
    return s->mail_open || s->pending != P_NONE;
}

int smtp_proto_closing(const smtp_proto *s)
{
    return s->closing;
}

int smtp_proto_wants_input(const smtp_proto *s)
{
    return !s->closing && s->pending == P_NONE &&
           s->out.len - s->out.off < SMTP_PROTO_OUT_HIGH;
}

int smtp_proto_greeting(const smtp_proto *s)
{
    return s->greet;
}

size_t smtp_proto_buffered(const smtp_proto *s)
{
    return s->in.len - s->in.off;
}

smtp_proto *smtp_proto_new(const smtp_proto_conf *conf,
                           const smtp_proto_events *ev)
{
    smtp_proto *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->conf = *conf;
    if (s->conf.hostname == NULL || s->conf.hostname[0] == '\0')
        s->conf.hostname = "localhost";
    if (s->conf.max_line < 512)
        s->conf.max_line = 512; /* RFC 5321 4.5.3.1.4 */
    if (ev)
        s->ev = *ev;
    s->line = malloc(s->conf.max_line + 1);
    s->addr = malloc(s->conf.max_line + 1);
    if (s->line == NULL || s->addr == NULL) {
        smtp_proto_free(s);
        return NULL;
    }
    smtp_proto_say(s, "220 %s ESMTP sluice",
                   conf->banner && conf->banner[0] ? conf->banner
                                                   : s->conf.hostname);
    if (s->nomem) {
        smtp_proto_free(s);
        return NULL;
    }
    return s;
}

void smtp_proto_free(smtp_proto *s)
{
    if (s == NULL)
        return;
    smtp_proto_xf_clear(&s->xf);
    free(s->in.data);
    free(s->out.data);
    free(s->line);
    free(s->addr);
    free(s);
}
