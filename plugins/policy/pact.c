/*
 * pact.c - the policy stage's envelope actions: redirect and notify
 * (interface and SECURITY notes in pact.h).
 *
 * redirect: the addresses are added first, then (without :copy, keep
 * cancelled) every other recipient is removed, so a redirect to one of
 * the message's own recipients keeps that recipient as it was.
 *
 * notify: the notification is text/plain UTF-8, From the script's :from
 * or the stage's notify_from, To the mailto URI's addresses, Subject the
 * URI's subject, else the :message, else "Notification: SUBJECT";
 * "Auto-Submitted: auto-notified" (RFC 5436 2.7) so that no policy
 * notifies about it again; the envelope sender is <> (RFC 3834: nothing
 * bounces back at an automatic message).  The body is the URI's body or
 * the :message, then a summary of the triggering message.
 */
#include "pact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PACT_MAX_RCPTS 200 /* recipients copied before removals */

/* ---------------------------------------------------------------- redirect */

int pact_redirect(const sluice_host *h, sluice_ctx *ctx, sluice_txn *txn,
                  const plang_result *r)
{
    char **old = NULL;
    size_t n, i, k;
    int rc = 0;

    if (r->nredirects == 0)
        return 0;
    if (!SLUICE_HOST_HAS(h, rcpt_del)) {
        h->log(ctx, txn, SLUICE_LOG_ERROR,
               "redirect needs an engine with ABI 1.2 or later");
        return -1;
    }
    n = h->rcpt_count(txn);
    if (r->keep_cancelled) {
        if (n > PACT_MAX_RCPTS ||
            (old = calloc(n ? n : 1, sizeof(char *))) == NULL) {
            h->log(ctx, txn, SLUICE_LOG_ERROR,
                   "redirect: %zu recipients, cannot replace them", n);
            return -1;
        }
        for (i = 0; i < n; i++) {
            const sluice_addr *a = h->rcpt(txn, i);
            if ((old[i] = strdup(a ? a->addr : "")) == NULL)
                rc = -1;
        }
    }
    for (i = 0; rc == 0 && i < r->nredirects; i++)
        if (h->rcpt_add(txn, r->redirects[i], NULL) < 0)
            rc = -1;
    for (i = 0; rc == 0 && old && i < n; i++) {
        int target = 0;
        for (k = 0; k < r->nredirects; k++)
            target |= strcasecmp(old[i], r->redirects[k]) == 0;
        if (!target && h->rcpt_del(txn, old[i]) < 0)
            rc = -1;
    }
    for (i = 0; old && i < n; i++)
        free(old[i]);
    free(old);
    if (rc < 0)
        h->log(ctx, txn, SLUICE_LOG_ERROR,
               "redirect could not change the recipients; tempfail");
    else
        h->log(ctx, txn, SLUICE_LOG_INFO, "redirected to <%s>%s%s",
               r->redirects[0], r->nredirects > 1 ? " and others" : "",
               r->keep_cancelled ? "" : " (copy; original recipients kept)");
    return rc;
}

/* ---------------------------------------------------------------- text */

typedef struct pact_buf {
    char *p;
    size_t len, cap;
    int oom;
} pact_buf;

static void pact_add(pact_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *np;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((np = realloc(b->p, cap)) == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void pact_printf(pact_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pact_printf(pact_buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        pact_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* One line of text: control characters become spaces, cut at max. */
static void pact_clean(char *out, size_t outsz, const char *s, size_t max)
{
    size_t o = 0;

    for (; s && *s && o + 1 < outsz && o < max; s++)
        out[o++] = ((unsigned char)*s < 32 || *s == 127) ? ' ' : *s;
    out[o] = '\0';
}

static int pact_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s > 126)
            return 0;
    return 1;
}

/* A header value: as is when ASCII, else RFC 2047 B-encoded words. */
static void pact_hvalue(pact_buf *b, const char *v)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(v), i = 0;

    if (pact_ascii(v)) {
        pact_add(b, v, n);
        return;
    }
    while (i < n) {
        /* 45 bytes -> 60 base64 characters: a word stays under 76 */
        size_t chunk = n - i > 45 ? 45 : n - i;
        while (chunk < n - i && chunk > 1 &&
               ((unsigned char)v[i + chunk] & 0xC0) == 0x80)
            chunk--; /* never split a UTF-8 sequence */
        pact_add(b, i ? "\r\n =?utf-8?B?" : "=?utf-8?B?", i ? 13 : 10);
        for (size_t k = 0; k < chunk; k += 3) {
            unsigned x = (unsigned char)v[i + k] << 16;
            char q[4];
            if (k + 1 < chunk)
                x |= (unsigned char)v[i + k + 1] << 8;
            if (k + 2 < chunk)
                x |= (unsigned char)v[i + k + 2];
            q[0] = b64[(x >> 18) & 63];
            q[1] = b64[(x >> 12) & 63];
            q[2] = k + 1 < chunk ? b64[(x >> 6) & 63] : '=';
            q[3] = k + 2 < chunk ? b64[x & 63] : '=';
            pact_add(b, q, 4);
        }
        pact_add(b, "?=", 2);
        i += chunk;
    }
}

/* Body text: every line ending becomes CRLF, lines cut at 990 bytes. */
static void pact_body(pact_buf *b, const char *s)
{
    size_t col = 0;

    for (; *s; s++) {
        if (*s == '\r')
            continue;
        if (*s == '\n' || col >= 990) {
            pact_add(b, "\r\n", 2);
            col = 0;
            if (*s == '\n')
                continue;
        }
        if ((unsigned char)*s < 32 && *s != '\t')
            pact_add(b, " ", 1);
        else
            pact_add(b, s, 1);
        col++;
    }
    if (col)
        pact_add(b, "\r\n", 2);
}

char *pact_message(const pact_info *in, const plang_notify *n, size_t *len)
{
    pact_buf b = {0};
    char subj[400], tmp[600], date[64];
    struct tm tm;
    const char *from = n->from && n->from[0] ? n->from : in->from;

    if (n->subject[0])
        pact_clean(subj, sizeof(subj), n->subject, 200);
    else if (n->message[0])
        pact_clean(subj, sizeof(subj), n->message, 200);
    else {
        pact_clean(tmp, sizeof(tmp), in->subject ? in->subject : "", 160);
        snprintf(subj, sizeof(subj), "Notification: %s",
                 tmp[0] ? tmp : "a message for you");
    }
    gmtime_r(&in->now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    pact_printf(&b, "From: %s\r\nTo: ", from);
    for (size_t i = 0; i < n->nrcpts; i++)
        pact_printf(&b, "%s%s", i ? ", " : "", n->rcpts[i]);
    pact_add(&b, "\r\nSubject: ", 11);
    pact_hvalue(&b, subj);
    pact_printf(&b,
                "\r\nDate: %s\r\nMessage-ID: <%s.notify%u@%s>\r\n"
                "Auto-Submitted: auto-notified\r\n",
                date, in->id, in->seq, in->hostname);
    if (n->importance == 1)
        pact_add(&b, "Importance: high\r\nX-Priority: 1\r\n", 33);
    else if (n->importance == 3)
        pact_add(&b, "Importance: low\r\nX-Priority: 5\r\n", 32);
    pact_printf(&b,
                "X-Sluice-Notify: %s\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n",
                in->id);
    pact_body(&b, n->body[0] ? n->body : n->message[0] ? n->message : subj);
    pact_add(&b, "\r\n-- \r\nAbout this message:\r\n", 28);
    pact_printf(&b, "  Id:        %s%s%s%s\r\n", in->id,
                in->mta_id[0] ? " (MTA queue id " : "", in->mta_id,
                in->mta_id[0] ? ")" : "");
    pact_clean(tmp, sizeof(tmp), in->sender, 300);
    pact_printf(&b, "  Sender:    <%s>\r\n", tmp);
    pact_clean(tmp, sizeof(tmp), in->rcpts, 500);
    pact_printf(&b, "  To:        %s\r\n", tmp);
    pact_clean(tmp, sizeof(tmp), in->hfrom ? in->hfrom : "", 300);
    pact_printf(&b, "  From:      %s\r\n", tmp);
    pact_clean(tmp, sizeof(tmp), in->subject ? in->subject : "", 300);
    pact_printf(&b, "  Subject:   %s\r\n", tmp);
    pact_printf(&b, "  Score:     %.2f\r\n  Action:    %s\r\n", in->score,
                in->action);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---------------------------------------------------------------- notify */

void pact_notify(const sluice_host *h, sluice_ctx *ctx, sluice_txn *txn,
                 const plang_result *r, const char *from, const char *action)
{
    pact_info in;
    char dflt[300], rcpts[520], act[700];
    const sluice_header *hs, *hf;
    size_t o = 0, n;

    if (r->nnotifies == 0)
        return;
    if (!SLUICE_HOST_HAS(h, message_send)) {
        h->log(ctx, txn, SLUICE_LOG_WARN,
               "notify needs an engine with ABI 1.2 or later; not sent");
        return;
    }
    memset(&in, 0, sizeof(in));
    snprintf(dflt, sizeof(dflt), "postmaster@%s", h->hostname(ctx));
    in.from = from && *from ? from : dflt;
    in.hostname = h->hostname(ctx);
    in.id = h->txn_id(txn);
    in.mta_id = h->client(txn)->ident;
    in.sender = h->sender(txn)->addr;
    rcpts[0] = '\0';
    n = h->rcpt_count(txn);
    for (size_t i = 0; i < n && o + 3 < sizeof(rcpts); i++) {
        const sluice_addr *a = h->rcpt(txn, i);
        int w = snprintf(rcpts + o, sizeof(rcpts) - o, "%s<%s>", i ? ", " : "",
                         a ? a->addr : "");
        if (w < 0 || (size_t)w >= sizeof(rcpts) - o)
            break;
        o += (size_t)w;
    }
    in.rcpts = rcpts;
    hs = h->header_find(txn, "Subject", 0);
    hf = h->header_find(txn, "From", 0);
    in.subject = hs ? hs->value : NULL;
    in.hfrom = hf ? hf->value : NULL;
    in.score = h->score(txn);
    snprintf(act, sizeof(act), "%s%s%s", action, r->text[0] ? ": " : "",
             r->text);
    in.action = act;
    in.now = time(NULL);
    for (size_t i = 0; i < r->nnotifies; i++) {
        const plang_notify *nt = &r->notifies[i];
        size_t len;
        char *msg;

        in.seq = (unsigned)i + 1;
        if ((msg = pact_message(&in, nt, &len)) == NULL) {
            h->log(ctx, txn, SLUICE_LOG_WARN,
                   "notify %s: out of memory; not sent", nt->method);
            continue;
        }
        if (h->message_send(txn, "", (const char *const *)nt->rcpts, nt->nrcpts,
                            msg, len) < 0)
            h->log(ctx, txn, SLUICE_LOG_DEBUG, "notify %s: not sent",
                   nt->method); /* the engine logged why */
        else
            h->counter_add(ctx, "notifications", 1);
        free(msg);
    }
}
