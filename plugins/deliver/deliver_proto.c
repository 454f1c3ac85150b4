/*
 * deliver_proto.c - the I/O-free SMTP client logic of the `deliver` stage:
 * reply parsing, EHLO keywords, command lines, xtext, ESMTP parameter
 * filtering, content encoding and per-recipient outcomes.  See
 * deliver_proto.h for the interface.
 *
 * Diagnostics: none logged; errors are return values (-1, 0 bytes) and,
 * for replies, a reason string literal.
 *
 * SECURITY: replies are from the next hop (trusted to speak SMTP, not
 * trusted to be well-formed): every line is length-checked and a reply is
 * capped at DELIVER_REPLY_MAX octets.  Envelope addresses and parameters
 * come from the original client: control characters are refused so they
 * cannot inject commands.
 */
#include "deliver_proto.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- */
/* Replies                                                          */

ssize_t deliver_reply_parse(const char *buf, size_t len, deliver_reply *r,
                            const char **why)
{
    size_t pos = 0;
    int code = 0;

    r->code = 0;
    r->lines = 0;
    r->len = 0;
    r->text[0] = '\0';
    for (;;) {
        const char *nl, *line = buf + pos;
        size_t avail = len - pos, ll, tl;
        int c, last;

        nl = memchr(line, '\n', avail);
        if (nl == NULL) {
            if (len > DELIVER_REPLY_MAX) {
                *why = "reply longer than 4096 octets";
                return -1;
            }
            return 0;
        }
        ll = (size_t)(nl - line);
        if (pos + ll + 1 > DELIVER_REPLY_MAX) {
            *why = "reply longer than 4096 octets";
            return -1;
        }
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll < 3 || !isdigit((unsigned char)line[0]) ||
            !isdigit((unsigned char)line[1]) ||
            !isdigit((unsigned char)line[2]) || line[0] < '2' ||
            line[0] > '5') {
            *why = "garbled reply (no status code)";
            return -1;
        }
        if (ll > 3 && line[3] != ' ' && line[3] != '-') {
            *why = "garbled reply (bad separator)";
            return -1;
        }
        c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code != 0 && c != code) {
            *why = "garbled reply (status code changes between lines)";
            return -1;
        }
        code = c;
        last = (ll == 3 || line[3] == ' ');
        tl = ll > 4 ? ll - 4 : 0;
        if (r->len + (r->lines ? 1 : 0) + tl > DELIVER_REPLY_MAX) {
            *why = "reply longer than 4096 octets";
            return -1;
        }
        if (r->lines)
            r->text[r->len++] = '\n';
        if (tl > 0)
            memcpy(r->text + r->len, line + 4, tl);
        r->len += tl;
        r->text[r->len] = '\0';
        r->lines++;
        pos += (size_t)(nl - line) + 1;
        if (last) {
            r->code = code;
            return (ssize_t)pos;
        }
    }
}

void deliver_safe_text(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
            *s = '?';
}

static int deliver_is_xcode(const char *t, int cls, size_t *n)
{
    size_t i = 0, d;

    if (t[0] != '0' + cls || t[1] != '.')
        return 0;
    i = 2;
    for (d = 0; isdigit((unsigned char)t[i]) && d < 3; d++)
        i++;
    if (d == 0 || t[i] != '.')
        return 0;
    i++;
    for (d = 0; isdigit((unsigned char)t[i]) && d < 3; d++)
        i++;
    if (d == 0 || (t[i] != ' ' && t[i] != '\0' && t[i] != '\n'))
        return 0;
    *n = i;
    return 1;
}

size_t deliver_reply_format(const deliver_reply *r, char *out, size_t outsz)
{
    size_t o, i, xn = 0;
    int cls = r->code / 100;
    const char *t = r->text;

    if (outsz == 0)
        return 0;
    if (deliver_is_xcode(t, cls, &xn)) {
        o = (size_t)snprintf(out, outsz, "%03d %.*s", r->code, (int)xn, t);
        t += xn;
    } else {
        o = (size_t)snprintf(out, outsz, "%03d %d.0.0", r->code, cls);
    }
    if (o >= outsz)
        o = outsz - 1;
    for (i = 0; t[i] != '\0' && o + 1 < outsz; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') {
            /* a continuation line: skip its repeated enhanced code */
            size_t n2;
            out[o++] = ' ';
            if (deliver_is_xcode(t + i + 1, cls, &n2))
                i += n2;
            continue;
        }
        if (c == ' ' && o > 0 && out[o - 1] == ' ')
            continue;
        if (o > 0 && out[o - 1] != ' ' && i == 0 && c != ' ')
            out[o++] = ' ';
        if (o + 1 >= outsz)
            break;
        out[o++] = (c < 32 || c > 126) ? '?' : (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return o;
}

/* ---------------------------------------------------------------- */
/* EHLO                                                             */

static int deliver_word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

static void deliver_ehlo_line(const char *l, size_t n, deliver_features *f)
{
    size_t kl = 0;

    while (kl < n && l[kl] != ' ' && l[kl] != '=')
        kl++;
    if (deliver_word_is(l, kl, "PIPELINING")) {
        f->ext |= DELIVER_EXT_PIPELINING;
    } else if (deliver_word_is(l, kl, "SIZE")) {
        f->ext |= DELIVER_EXT_SIZE;
        f->size_limit = 0;
        if (kl < n) {
            size_t i;
            unsigned long long v = 0;
            for (i = kl + 1; i < n && isdigit((unsigned char)l[i]); i++) {
                if (v > (~0ULL - 9) / 10)
                    break;
                v = v * 10 + (unsigned)(l[i] - '0');
            }
            f->size_limit = v;
        }
    } else if (deliver_word_is(l, kl, "8BITMIME")) {
        f->ext |= DELIVER_EXT_8BITMIME;
    } else if (deliver_word_is(l, kl, "DSN")) {
        f->ext |= DELIVER_EXT_DSN;
    } else if (deliver_word_is(l, kl, "SMTPUTF8")) {
        f->ext |= DELIVER_EXT_SMTPUTF8;
    } else if (deliver_word_is(l, kl, "ENHANCEDSTATUSCODES")) {
        f->ext |= DELIVER_EXT_ENHANCED;
    } else if (deliver_word_is(l, kl, "AUTH")) {
        f->ext |= DELIVER_EXT_AUTH;
    } else if (deliver_word_is(l, kl, "XFORWARD")) {
        static const char *const names[DELIVER_XF_COUNT] = {
            "NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"};
        size_t i = kl;
        f->ext |= DELIVER_EXT_XFORWARD;
        while (i < n) {
            size_t s, k;
            while (i < n && l[i] == ' ')
                i++;
            s = i;
            while (i < n && l[i] != ' ')
                i++;
            for (k = 0; k < DELIVER_XF_COUNT; k++)
                if (deliver_word_is(l + s, i - s, names[k]))
                    f->xforward |= 1u << k;
        }
    }
}

void deliver_ehlo_parse(const deliver_reply *r, deliver_features *f)
{
    const char *p = r->text, *e = r->text + r->len;

    memset(f, 0, sizeof(*f));
    p = memchr(p, '\n', (size_t)(e - p)); /* the first line is the greeting */
    while (p != NULL && p < e) {
        const char *nl;
        p++;
        nl = memchr(p, '\n', (size_t)(e - p));
        deliver_ehlo_line(p, nl ? (size_t)(nl - p) : (size_t)(e - p), f);
        p = nl;
    }
}

/* ---------------------------------------------------------------- */
/* Commands                                                         */

ssize_t deliver_xtext(const char *in, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= '!' && c <= '~' && c != '+' && c != '=') {
            if (o + 1 >= outsz)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outsz)
                return -1;
            out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outsz)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}

int deliver_cmd_xforward(const deliver_xfwd *x, unsigned attrs, char *out,
                         size_t outsz, size_t *outlen)
{
    static const char *const names[DELIVER_XF_COUNT] = {
        "NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"};
    static const char unav[] = "[UNAVAILABLE]";
    char attr[DELIVER_LINE_MAX + 64], val[DELIVER_LINE_MAX];
    size_t o = 0, line_start = 0;
    int k, ncmd = 0, open = 0;

    *outlen = 0;
    for (k = 0; k < DELIVER_XF_COUNT; k++) {
        const char *v = NULL;
        char portbuf[16], addrbuf[80];
        int n;
        size_t al;

        if (!(attrs & (1u << k)))
            continue;
        switch (1u << k) {
        case DELIVER_XF_NAME:
            v = x->name;
            break;
        case DELIVER_XF_ADDR:
            v = x->addr;
            if (v != NULL && strchr(v, ':') != NULL &&
                strncasecmp(v, "IPV6:", 5) != 0 && strlen(v) < 60) {
                snprintf(addrbuf, sizeof(addrbuf), "IPV6:%s", v);
                v = addrbuf;
            }
            break;
        case DELIVER_XF_PORT:
            if (x->port > 0 && x->port < 65536) {
                snprintf(portbuf, sizeof(portbuf), "%d", x->port);
                v = portbuf;
            }
            break;
        case DELIVER_XF_PROTO:
            v = x->proto;
            break;
        case DELIVER_XF_HELO:
            v = x->helo;
            break;
        case DELIVER_XF_IDENT:
            v = x->ident;
            break;
        default:
            v = x->source;
            break;
        }
        /* 9 = "XFORWARD ", 2 = CRLF: an attribute alone must fit a line */
        if (v == NULL || v[0] == '\0' ||
            deliver_xtext(v, val, sizeof(val)) < 0 ||
            strlen(names[k]) + 1 + strlen(val) + 9 + 2 > DELIVER_LINE_MAX)
            snprintf(val, sizeof(val), "%s", unav);
        n = snprintf(attr, sizeof(attr), "%s=%s", names[k], val);
        if (n < 0 || (size_t)n >= sizeof(attr))
            return -1;
        al = (size_t)n;
        if (open && (o - line_start) + 1 + al + 2 > DELIVER_LINE_MAX) {
            if (o + 2 >= outsz)
                return -1;
            memcpy(out + o, "\r\n", 2);
            o += 2;
            open = 0;
        }
        if (!open) {
            if (o + 9 >= outsz)
                return -1;
            line_start = o;
            memcpy(out + o, "XFORWARD", 8);
            o += 8;
            open = 1;
            ncmd++;
        }
        if (o + 1 + al >= outsz)
            return -1;
        out[o++] = ' ';
        memcpy(out + o, attr, al);
        o += al;
    }
    if (open) {
        if (o + 2 >= outsz)
            return -1;
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    if (o < outsz)
        out[o] = '\0';
    *outlen = o;
    return ncmd;
}

static int deliver_param_ok(const char *p, size_t n, const deliver_features *f,
                            int is_mail)
{
    size_t kl = 0;
    unsigned need;

    while (kl < n && p[kl] != '=')
        kl++;
#define KW(s) deliver_word_is(p, kl, s)
    if (is_mail) {
        if (KW("SIZE"))
            need = DELIVER_EXT_SIZE;
        else if (KW("BODY"))
            need = DELIVER_EXT_8BITMIME;
        else if (KW("RET") || KW("ENVID"))
            need = DELIVER_EXT_DSN;
        else if (KW("SMTPUTF8"))
            need = DELIVER_EXT_SMTPUTF8;
        else if (KW("AUTH"))
            need = DELIVER_EXT_AUTH;
        else
            return 0;
    } else {
        if (KW("NOTIFY") || KW("ORCPT"))
            need = DELIVER_EXT_DSN;
        else
            return 0;
    }
#undef KW
    return (f->ext & need) != 0;
}

ssize_t deliver_params_filter(const char *params, const deliver_features *f,
                              int is_mail, char *out, size_t outsz)
{
    const char *p = params ? params : "";
    size_t o = 0;

    if (outsz == 0)
        return -1;
    out[0] = '\0';
    while (*p) {
        const char *s;
        size_t n;
        while (*p == ' ' || *p == '\t')
            p++;
        s = p;
        while (*p && *p != ' ' && *p != '\t') {
            if ((unsigned char)*p < 32 || (unsigned char)*p == 127)
                return -1;
            p++;
        }
        n = (size_t)(p - s);
        if (n == 0 || !deliver_param_ok(s, n, f, is_mail))
            continue;
        if (o + 1 + n >= outsz)
            return -1;
        out[o++] = ' ';
        memcpy(out + o, s, n);
        o += n;
        out[o] = '\0';
    }
    return (ssize_t)o;
}

static ssize_t deliver_cmd_addr(const char *verb, const char *addr,
                                const char *params, int is_mail,
                                const deliver_features *f, char *out,
                                size_t outsz)
{
    char pbuf[DELIVER_LINE_MAX];
    const char *a;
    ssize_t pl;
    int n;

    for (a = addr; *a; a++)
        if ((unsigned char)*a < 32 || (unsigned char)*a == 127)
            return -1;
    pl = deliver_params_filter(params, f, is_mail, pbuf, sizeof(pbuf));
    if (pl < 0)
        return -1;
    n = snprintf(out, outsz, "%s<%s>%s\r\n", verb, addr, pbuf);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    return n;
}

ssize_t deliver_cmd_mail(const char *addr, const char *params,
                         const deliver_features *f, char *out, size_t outsz)
{
    return deliver_cmd_addr("MAIL FROM:", addr, params, 1, f, out, outsz);
}

ssize_t deliver_cmd_rcpt(const char *addr, const char *params,
                         const deliver_features *f, char *out, size_t outsz)
{
    return deliver_cmd_addr("RCPT TO:", addr, params, 0, f, out, outsz);
}

/* ---------------------------------------------------------------- */
/* Content                                                          */

void deliver_dot_init(deliver_dot *d)
{
    d->bol = 1;
    d->cr = 0;
}

size_t deliver_dot_encode(deliver_dot *d, const char *in, size_t inlen,
                          size_t *used, char *out, size_t outsz)
{
    size_t i = 0, o = 0;

    while (i < inlen) {
        char c = in[i];
        if (c == '\n') {
            if (d->cr) {
                if (o + 1 > outsz)
                    break;
                out[o++] = '\n';
            } else {
                if (o + 2 > outsz)
                    break;
                out[o++] = '\r';
                out[o++] = '\n';
            }
            d->bol = 1;
            d->cr = 0;
        } else if (c == '\r') {
            if (o + 1 > outsz)
                break;
            out[o++] = '\r';
            d->cr = 1;
            d->bol = 0;
        } else {
            if (d->bol && c == '.') {
                if (o + 2 > outsz)
                    break;
                out[o++] = '.';
            } else if (o + 1 > outsz) {
                break;
            }
            out[o++] = c;
            d->bol = 0;
            d->cr = 0;
        }
        i++;
    }
    *used = i;
    return o;
}

size_t deliver_dot_finish(deliver_dot *d, char *out, size_t outsz)
{
    size_t o = 0;

    if (outsz < 5)
        return 0;
    if (!d->bol) {
        if (!d->cr)
            out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    o += 3;
    d->bol = 1;
    d->cr = 0;
    return o;
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                         */

sluice_rcpt_state deliver_code_state(int code)
{
    if (code >= 200 && code <= 299)
        return SLUICE_RCPT_DONE;
    if (code >= 500 && code <= 599)
        return SLUICE_RCPT_REJECTED;
    return SLUICE_RCPT_TEMPFAIL;
}

static sluice_rcpt_state deliver_bad(int code, deliver_from f,
                                     deliver_from *from)
{
    *from = code == 0 ? DELIVER_FROM_NONE : f;
    if (code == 0)
        return SLUICE_RCPT_TEMPFAIL;
    /* a success code where a failure was expected is a protocol error */
    if (code / 100 == 2 || code / 100 == 3)
        return SLUICE_RCPT_TEMPFAIL;
    return deliver_code_state(code);
}

sluice_rcpt_state deliver_outcome(int mail, int rcpt, int data, int final,
                                  deliver_from *from)
{
    if (mail / 100 != 2)
        return deliver_bad(mail, DELIVER_FROM_MAIL, from);
    if (rcpt / 100 != 2)
        return deliver_bad(rcpt, DELIVER_FROM_RCPT, from);
    if (data != 354)
        return deliver_bad(data, DELIVER_FROM_DATA, from);
    if (final / 100 != 2)
        return deliver_bad(final, DELIVER_FROM_FINAL, from);
    *from = DELIVER_FROM_FINAL;
    return SLUICE_RCPT_DONE;
}
