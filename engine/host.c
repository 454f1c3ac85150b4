/*
 * host.c - the host function table handed to every stage (struct
 * sluice_host): logging, envelope, headers and MIME, symbols, replies,
 * per-recipient outcomes, event-loop watchers, counters, and the
 * transaction API that ingress stages drive.
 *
 * Diagnostics: misuse by a stage (an edit it did not declare, an invalid
 * header name, an index out of range) returns -1/NULL and logs a warning
 * with the stage name and message id; it never aborts the worker.
 *
 * SECURITY: header names and values added by stages are checked for
 * CR/LF and NUL so a stage cannot smuggle header lines.
 */
#include "engine.h"
#include "dns.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- */
/* Logging                                                           */

static void host_vlog(struct sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void host_vlog(struct sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap)
{
    char line[4096];

    vsnprintf(line, sizeof(line), fmt, ap);
    log_msg(level, txn ? txn->id : NULL, "%s: %s",
            ctx ? ctx->name : (txn && txn->cur_stage ? txn->cur_stage->name
                                                     : "stage"),
            line);
}

void host_log(struct sluice_ctx *ctx, sluice_txn *txn, int level,
              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    host_vlog(ctx, txn, level, fmt, ap);
    va_end(ap);
}

/* The stage a txn-only call comes from: the one running, else ingress. */
static struct sluice_ctx *host_caller(sluice_txn *t)
{
    return t->cur_stage ? t->cur_stage : t->ingress;
}

static void *host_instance(struct sluice_ctx *ctx)
{
    return ctx->inst;
}

static void *host_slot(struct sluice_ctx *ctx, sluice_txn *t)
{
    if (ctx->chain != t->ch || ctx->index < 0 ||
        (size_t)ctx->index >= t->ch->nstages)
        return NULL;
    return t->slots[ctx->index];
}

static const char *host_stage_name(struct sluice_ctx *ctx)
{
    return ctx->name;
}

static void host_done(sluice_txn *t, sluice_verdict v)
{
    txn_done(t, v);
}

/* ---------------------------------------------------------------- */
/* Envelope                                                          */

static const char *host_txn_id(sluice_txn *t)
{
    return t->id;
}

static const sluice_client *host_client(sluice_txn *t)
{
    return &t->client;
}

static const sluice_addr *host_sender(sluice_txn *t)
{
    return &t->sender;
}

/* 1.2: during the EOM run, the envelope as stages changed it (envelope.c) */
static size_t host_rcpt_count(sluice_txn *t)
{
    size_t n;

    (void)envelope_view(t, &n);
    return n;
}

static const sluice_addr *host_rcpt(sluice_txn *t, size_t i)
{
    size_t n;
    txn_rcpt *l = envelope_view(t, &n);

    return i < n ? &l[i].a : NULL;
}

static long host_rcpt_current(sluice_txn *t)
{
    return t->rcpt_cur;
}

static sluice_verdict host_disposition(sluice_txn *t)
{
    return t->disposition;
}

static int host_message(sluice_txn *t, sluice_str *out)
{
    out->ptr = t->msg.data;
    out->len = t->msg.len;
    return 0;
}

static int host_body(sluice_txn *t, sluice_str *out)
{
    if (txn_headers(t) < 0)
        return -1;
    out->ptr = t->msg.data + t->body_off;
    out->len = t->msg.len - t->body_off;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Headers                                                           */

static size_t host_header_count(sluice_txn *t)
{
    return txn_headers(t) < 0 ? 0 : t->nhdrs;
}

static const sluice_header *host_header(sluice_txn *t, size_t i)
{
    txn_hdr *h;

    if (txn_headers(t) < 0 || i >= t->nhdrs)
        return NULL;
    h = &t->hdrs[i];
    if (h->value == NULL)
        h->value = hdr_decode(h->h.raw.ptr, h->h.raw.len, NULL);
    h->h.value = h->value;
    return &h->h;
}

static long host_header_index(sluice_txn *t, const char *name, size_t nth)
{
    size_t i, nl = strlen(name);

    if (txn_headers(t) < 0)
        return -1;
    for (i = 0; i < t->nhdrs; i++) {
        if (t->hdrs[i].h.name.len == nl &&
            strncasecmp(t->hdrs[i].h.name.ptr, name, nl) == 0 && nth-- == 0)
            return (long)i;
    }
    return -1;
}

static const sluice_header *host_header_find(sluice_txn *t, const char *name,
                                             size_t nth)
{
    long i = host_header_index(t, name, nth);
    return i < 0 ? NULL : host_header(t, (size_t)i);
}

static int host_valid_name(const char *n)
{
    if (*n == '\0' || strlen(n) > 200)
        return 0;
    for (; *n; n++)
        if (*n <= 32 || *n >= 127 || *n == ':')
            return 0;
    return 1;
}

static int host_valid_value(const char *v)
{
    if (strlen(v) > 16384)
        return 0;
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return 0;
    return 1;
}

static int host_may(sluice_txn *t, unsigned flag, const char *what)
{
    struct sluice_ctx *s = host_caller(t);

    if (s && (s->desc.flags & flag))
        return 1;
    log_msg(SLUICE_LOG_WARN, t->id,
            "stage %s tried to %s without declaring it; refused",
            s ? s->name : "?", what);
    return 0;
}

static void host_hdr_fill(txn_hdr *h, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    free(h->own);
    free(h->value);
    h->own = util_malloc(nl + vl + 3);
    memcpy(h->own, name, nl);
    h->own[nl] = '\0';
    h->own[nl + 1] = ' ';
    memcpy(h->own + nl + 2, value, vl + 1);
    h->h.size = sizeof(h->h);
    h->h.name.ptr = h->own;
    h->h.name.len = nl;
    h->h.raw.ptr = h->own + nl + 1;
    h->h.raw.len = vl + 1;
    h->value = util_strdup(value);
    h->h.value = h->value;
}

/* Record an edit for ingress stages that replay them to an MTA (milter). */
static void host_edit_record(sluice_txn *t, sluice_header_op op,
                             const char *name, const char *value, size_t index,
                             size_t nth)
{
    txn_hdr_edit *e;

    t->edits = util_realloc(t->edits, (t->nedits + 1) * sizeof(*t->edits));
    e = &t->edits[t->nedits++];
    memset(e, 0, sizeof(*e));
    e->name = util_strdup(name);
    e->value = value ? util_strdup(value) : NULL;
    e->e.size = sizeof(e->e);
    e->e.op = op;
    e->e.name = e->name;
    e->e.value = e->value;
    e->e.index = index;
    e->e.nth = nth;
}

static int host_header_insert(sluice_txn *t, size_t index, const char *name,
                              const char *value)
{
    txn_hdr nh;
    int append = index == (size_t)-1;

    if (!host_may(t, SLUICE_STAGE_ADD_HEADERS, "add a header"))
        return -1;
    if (!host_valid_name(name) || !host_valid_value(value)) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "stage %s: invalid header name or value; refused",
                host_caller(t) ? host_caller(t)->name : "?");
        return -1;
    }
    if (txn_headers(t) < 0)
        return -1;
    memset(&nh, 0, sizeof(nh));
    host_hdr_fill(&nh, name, value);
    if (index > t->nhdrs)
        index = t->nhdrs;
    t->hdrs = util_realloc(t->hdrs, (t->nhdrs + 1) * sizeof(*t->hdrs));
    memmove(&t->hdrs[index + 1], &t->hdrs[index],
            (t->nhdrs - index) * sizeof(*t->hdrs));
    t->hdrs[index] = nh;
    t->nhdrs++;
    host_edit_record(t, append ? SLUICE_HDR_ADD : SLUICE_HDR_INSERT, name,
                     value, index, 0);
    /* pointers to values stay valid: h.value points at h->value's heap */
    return 0;
}

static int host_header_add(sluice_txn *t, const char *name, const char *value)
{
    return host_header_insert(t, (size_t)-1, name, value);
}

static int host_header_change(sluice_txn *t, const char *name, size_t nth,
                              const char *value)
{
    long i;

    if (!host_may(t, SLUICE_STAGE_CHG_HEADERS, "change a header"))
        return -1;
    if (value != NULL && !host_valid_value(value))
        return -1;
    if ((i = host_header_index(t, name, nth)) < 0)
        return -1;
    host_edit_record(t, value ? SLUICE_HDR_CHANGE : SLUICE_HDR_DELETE, name,
                     value, 0, nth);
    if (value == NULL) {
        free(t->hdrs[i].own);
        free(t->hdrs[i].value);
        memmove(&t->hdrs[i], &t->hdrs[i + 1],
                (t->nhdrs - (size_t)i - 1) * sizeof(*t->hdrs));
        t->nhdrs--;
        return 0;
    }
    {
        char *nm = util_strndup(t->hdrs[i].h.name.ptr, t->hdrs[i].h.name.len);
        host_hdr_fill(&t->hdrs[i], nm, value);
        free(nm);
    }
    return 0;
}

static size_t host_header_edit_count(sluice_txn *t)
{
    return t->nedits;
}

static const sluice_header_edit *host_header_edit(sluice_txn *t, size_t i)
{
    return i < t->nedits ? &t->edits[i].e : NULL;
}

/* Does the header block end with its empty line? */
static int host_has_separator(sluice_txn *t)
{
    return t->body_off > 0 &&
           txn_header_end(t->msg.data, t->body_off) != t->body_off;
}

/* The header block stays as it is; the body after it is replaced.  The
 * old buffer is kept until the message ends because unedited header
 * fields still point into it; the MIME tree is parsed again on demand. */
static int host_body_replace(sluice_txn *t, const void *data, size_t len)
{
    buf nb;

    if (!host_may(t, SLUICE_STAGE_CHG_BODY, "replace the body"))
        return -1;
    if (txn_headers(t) < 0)
        return -1;
    if (len > t->ch->ec.max_message_size ||
        t->body_off > t->ch->ec.max_message_size - len) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "stage %s: new body of %zu bytes is over the size limit; "
                "refused",
                host_caller(t) ? host_caller(t)->name : "?", len);
        return -1;
    }
    buf_init(&nb);
    buf_add(&nb, t->msg.data, t->body_off);
    if (t->body_off > 0 && !host_has_separator(t)) {
        /* a header block without its empty line: give the body one */
        buf_add(&nb, "\r\n", 2);
        t->body_off += 2;
    }
    buf_add(&nb, data, len);
    t->old_msgs =
        util_realloc(t->old_msgs, (t->nold_msgs + 1) * sizeof(*t->old_msgs));
    t->old_msgs[t->nold_msgs++] = t->msg;
    t->msg = nb;
    if (t->mime) {
        mime_free(t->mime);
        t->mime = NULL;
    }
    return 0;
}

static int host_body_changed(sluice_txn *t)
{
    return t->nold_msgs > 0; /* each replacement keeps the old buffer */
}

/* ---------------------------------------------------------------- */
/* MIME                                                              */

static size_t host_part_count(sluice_txn *t)
{
    return txn_mime(t) < 0 ? 0 : mime_part_count(t->mime);
}

static const sluice_part *host_part(sluice_txn *t, size_t i)
{
    return txn_mime(t) < 0 ? NULL : mime_part(t->mime, i);
}

static unsigned host_msg_flags(sluice_txn *t)
{
    return txn_mime(t) < 0 ? 0 : mime_flags(t->mime);
}

/* ---------------------------------------------------------------- */
/* Symbols and replies                                               */

static void host_symbol_add(sluice_txn *t, const char *name, double score,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void host_symbol_add(sluice_txn *t, const char *name, double score,
                            const char *fmt, ...)
{
    size_t i;
    char reason[512] = "";
    va_list ap;

    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
    }
    for (i = 0; i < t->nsyms; i++) {
        if (strcmp(t->syms[i].name, name) == 0) {
            if (score > t->syms[i].score) {
                t->score += score - t->syms[i].score;
                t->syms[i].score = score;
                free(t->syms[i].reason);
                t->syms[i].reason = util_strdup(reason);
            }
            return;
        }
    }
    t->syms = util_realloc(t->syms, (t->nsyms + 1) * sizeof(*t->syms));
    t->syms[t->nsyms].name = util_strdup(name);
    t->syms[t->nsyms].score = score;
    t->syms[t->nsyms].reason = util_strdup(reason);
    t->nsyms++;
    t->score += score;
}

static size_t host_symbol_count(sluice_txn *t)
{
    return t->nsyms;
}

static const char *host_symbol(sluice_txn *t, size_t i, double *score,
                               const char **reason)
{
    if (i >= t->nsyms)
        return NULL;
    if (score)
        *score = t->syms[i].score;
    if (reason)
        *reason = t->syms[i].reason;
    return t->syms[i].name;
}

static double host_score(sluice_txn *t)
{
    return t->score;
}

/* Keep reply text to one line of printable ASCII. */
static char *host_clean_text(const char *s, size_t max)
{
    size_t n = strlen(s), i;
    char *o;

    if (n > max)
        n = max;
    o = util_strndup(s, n);
    for (i = 0; i < n; i++)
        if ((unsigned char)o[i] < 32 || (unsigned char)o[i] > 126)
            o[i] = ' ';
    return o;
}

static void host_set_reply(sluice_txn *t, const char *code, const char *xcode,
                           const char *text)
{
    if (code && strlen(code) == 3 && (code[0] == '4' || code[0] == '5') &&
        isdigit((unsigned char)code[1]) && isdigit((unsigned char)code[2]))
        snprintf(t->reply_code, sizeof(t->reply_code), "%s", code);
    if (xcode && strlen(xcode) < sizeof(t->reply_xcode))
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "%s", xcode);
    if (t->reply_xcode[0] == '\0' && t->reply_code[0])
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "%c.0.0",
                 t->reply_code[0]);
    if (text) {
        free(t->reply_text);
        t->reply_text = host_clean_text(text, 400);
    }
}

static void host_rcpt_set(sluice_txn *t, size_t i, sluice_rcpt_state st,
                          const char *reply)
{
    size_t n;
    txn_rcpt *l = envelope_view(t, &n);

    if (i >= n || st > SLUICE_RCPT_REJECTED)
        return;
    l[i].state = st;
    free(l[i].reply);
    l[i].reply = reply ? host_clean_text(reply, 500) : NULL;
}

static sluice_rcpt_state host_rcpt_state(sluice_txn *t, size_t i,
                                         const char **reply)
{
    size_t n;
    txn_rcpt *l = envelope_view(t, &n);

    if (i >= n) {
        if (reply)
            *reply = NULL;
        return SLUICE_RCPT_TEMPFAIL;
    }
    if (reply)
        *reply = l[i].reply;
    return l[i].state;
}

/* ---------------------------------------------------------------- */
/* Event loop                                                        */

struct sluice_io {
    ev_io io;
    struct sluice_ctx *ctx;
    sluice_io_cb cb;
    void *arg;
    int fd;
};

struct sluice_timer {
    ev_timer t;
    struct sluice_ctx *ctx;
    sluice_timer_cb cb;
    void *arg;
};

static void host_io_thunk(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sluice_io *io = (struct sluice_io *)w;
    int ev = 0;

    if (revents & EV_READ)
        ev |= SLUICE_READ;
    if (revents & EV_WRITE)
        ev |= SLUICE_WRITE;
    io->cb(io, ev, io->arg);
}

static struct ev_loop *host_loop(struct sluice_ctx *ctx)
{
    return ctx->worker ? ctx->worker->loop : EV_DEFAULT;
}

static sluice_io *host_io_new(struct sluice_ctx *ctx, int fd, sluice_io_cb cb,
                              void *arg)
{
    struct sluice_io *io = util_calloc(1, sizeof(*io));

    ev_io_init(&io->io, host_io_thunk, fd, 0);
    io->ctx = ctx;
    io->cb = cb;
    io->arg = arg;
    io->fd = fd;
    return io;
}

static void host_io_set(sluice_io *io, int events)
{
    struct ev_loop *loop = host_loop(io->ctx);
    int ev = 0;

    if (events & SLUICE_READ)
        ev |= EV_READ;
    if (events & SLUICE_WRITE)
        ev |= EV_WRITE;
    if (ev_is_active(&io->io) && (io->io.events & (EV_READ | EV_WRITE)) == ev)
        return;
    ev_io_stop(loop, &io->io);
    if (ev) {
        ev_io_set(&io->io, io->fd, ev);
        ev_io_start(loop, &io->io);
    }
}

static void host_io_free(sluice_io *io)
{
    if (io == NULL)
        return;
    ev_io_stop(host_loop(io->ctx), &io->io);
    free(io);
}

static void host_timer_thunk(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sluice_timer *t = (struct sluice_timer *)w;
    t->cb(t, t->arg);
}

static sluice_timer *host_timer_new(struct sluice_ctx *ctx, sluice_timer_cb cb,
                                    void *arg)
{
    struct sluice_timer *t = util_calloc(1, sizeof(*t));

    ev_timer_init(&t->t, host_timer_thunk, 0., 0.);
    t->ctx = ctx;
    t->cb = cb;
    t->arg = arg;
    return t;
}

static void host_timer_start(sluice_timer *t, double seconds)
{
    struct ev_loop *loop = host_loop(t->ctx);

    ev_timer_stop(loop, &t->t);
    ev_timer_set(&t->t, seconds < 0 ? 0 : seconds, 0.);
    ev_timer_start(loop, &t->t);
}

static void host_timer_stop(sluice_timer *t)
{
    ev_timer_stop(host_loop(t->ctx), &t->t);
}

static void host_timer_free(sluice_timer *t)
{
    if (t == NULL)
        return;
    ev_timer_stop(host_loop(t->ctx), &t->t);
    free(t);
}

static double host_now(struct sluice_ctx *ctx)
{
    return ev_now(host_loop(ctx));
}

void stats_counter_add(stats_stage *s, const char *name, long long n)
{
    int i;

    for (i = 0; i < STATS_MAX_COUNTERS; i++) {
        if (s->counters[i].name[0] == '\0') {
            snprintf(s->counters[i].name, sizeof(s->counters[i].name), "%s",
                     name);
            s->counters[i].value = n;
            return;
        }
        if (strncmp(s->counters[i].name, name,
                    sizeof(s->counters[i].name) - 1) == 0) {
            s->counters[i].value += n;
            return;
        }
    }
}

static void host_counter_add(struct sluice_ctx *ctx, const char *name,
                             long long n)
{
    if (ctx->stats)
        stats_counter_add(ctx->stats, name, n);
}

/* ---------------------------------------------------------------- */
/* Transactions (ingress)                                            */

static sluice_txn *host_txn_new(struct sluice_ctx *ctx)
{
    if (ctx->worker == NULL)
        return NULL;
    return txn_new(ctx->worker, ctx);
}

static void host_txn_free(sluice_txn *t)
{
    txn_free(t);
}

static void host_txn_set_client(sluice_txn *t, const sluice_client *c)
{
    const char *src[6];
    const char **dst[6];
    int i;

    src[0] = c->addr;
    src[1] = c->name;
    src[2] = c->helo;
    src[3] = c->proto;
    src[4] = (c->size >= offsetof(sluice_client, ident) + sizeof(c->ident))
                 ? c->ident
                 : NULL;
    dst[0] = &t->client.addr;
    dst[1] = &t->client.name;
    dst[2] = &t->client.helo;
    dst[3] = &t->client.proto;
    dst[4] = &t->client.ident;
    src[5] = (c->size >= offsetof(sluice_client, auth) + sizeof(c->auth))
                 ? c->auth
                 : NULL;
    dst[5] = &t->client.auth;
    for (i = 0; i < 6; i++) {
        free(t->client_strs[i]);
        t->client_strs[i] = host_clean_text(src[i] ? src[i] : "", 255);
        *dst[i] = t->client_strs[i];
    }
    if (c->size >= offsetof(sluice_client, port) + sizeof(c->port))
        t->client.port = c->port;
}

static int host_txn_set_sender(sluice_txn *t, const char *addr,
                               const char *params)
{
    if (t->have_sender) {
        free((char *)t->sender.addr);
        free((char *)t->sender.params);
    }
    t->sender.addr = util_strdup(addr ? addr : "");
    t->sender.params = util_strdup(params ? params : "");
    t->have_sender = 1;
    return 0;
}

static int host_txn_add_rcpt(sluice_txn *t, const char *addr,
                             const char *params)
{
    txn_rcpt *r;

    t->rcpts = util_realloc(t->rcpts, (t->nrcpts + 1) * sizeof(*t->rcpts));
    r = &t->rcpts[t->nrcpts++];
    memset(r, 0, sizeof(*r));
    r->a.size = sizeof(r->a);
    r->a.addr = util_strdup(addr ? addr : "");
    r->a.params = util_strdup(params ? params : "");
    r->orig = -1;
    return 0;
}

static void host_txn_drop_rcpt(sluice_txn *t)
{
    if (t->nrcpts == 0)
        return;
    t->nrcpts--;
    free((char *)t->rcpts[t->nrcpts].a.addr);
    free((char *)t->rcpts[t->nrcpts].a.params);
    free(t->rcpts[t->nrcpts].reply);
}

static int host_txn_write(sluice_txn *t, const void *data, size_t len)
{
    if (t->over_limit)
        return -1;
    if (len > t->ch->ec.max_message_size - t->msg.len) {
        t->over_limit = 1;
        return -1;
    }
    if (t->hdr_ready || t->mime) {
        /* parsed views point into the buffer: no growth after parsing */
        log_msg(SLUICE_LOG_ERROR, t->id, "message data after parsing; refused");
        return -1;
    }
    buf_add(&t->msg, data, len);
    return 0;
}

static void host_txn_run(sluice_txn *t, sluice_phase phase, sluice_run_cb cb,
                         void *arg)
{
    txn_run(t, phase, cb, arg);
}

static void host_txn_reply(sluice_txn *t, const char **code,
                           const char **xcode, const char **text)
{
    if (t->reply_code[0] == '\0') {
        int v = t->result == SLUICE_REJECT ? 5 : 4;
        snprintf(t->reply_code, sizeof(t->reply_code), "%d%s", v,
                 v == 5 ? "50" : "51");
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "%d.%s", v,
                 v == 5 ? "7.1" : "3.0");
    }
    if (t->reply_text == NULL)
        t->reply_text = util_strdup(t->result == SLUICE_REJECT
                                        ? "Rejected"
                                        : "Temporary failure, try again later");
    if (code)
        *code = t->reply_code;
    if (xcode)
        *xcode = t->reply_xcode;
    if (text)
        *text = t->reply_text;
}

static size_t host_max_message_size(struct sluice_ctx *ctx)
{
    return ctx->chain->ec.max_message_size;
}

static const char *host_state_dir(struct sluice_ctx *ctx)
{
    return ctx->chain->ec.state_dir;
}

/* 1.2: the engine's `database`, "" when unset. */
static const char *host_database(struct sluice_ctx *ctx)
{
    const char *d = ctx->chain->ec.database;

    return d ? d : "";
}

static const char *host_hostname(struct sluice_ctx *ctx)
{
    return ctx->chain->ec.hostname;
}

/* ---------------------------------------------------------------- */
/* DNS (1.1): the worker's resolver (dns.c)                          */

/* A query started with a txn joins the txn's list, tagged with the
 * stage, so txn.c can cancel it when the message or the stage's pending
 * hook ends. */
static sluice_dns_query *host_dns_query(struct sluice_ctx *ctx, sluice_txn *t,
                                        const char *name, int type,
                                        sluice_dns_cb cb, void *arg)
{
    worker *w = ctx ? ctx->worker : t ? t->w : NULL;

    if (w == NULL || w->dns == NULL)
        return NULL;
    return dns_query_start(w->dns, name, type, cb, arg,
                           t ? &t->dns_queries : NULL, ctx);
}

static void host_dns_cancel(sluice_dns_query *q)
{
    dns_query_cancel(q);
}

const sluice_host host_table = {
    .size = sizeof(sluice_host),
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .log = host_log,
    .vlog = host_vlog,
    .instance = host_instance,
    .slot = host_slot,
    .stage_name = host_stage_name,
    .done = host_done,
    .txn_id = host_txn_id,
    .client = host_client,
    .sender = host_sender,
    .rcpt_count = host_rcpt_count,
    .rcpt = host_rcpt,
    .rcpt_current = host_rcpt_current,
    .disposition = host_disposition,
    .message = host_message,
    .header_count = host_header_count,
    .header = host_header,
    .header_find = host_header_find,
    .header_insert = host_header_insert,
    .header_add = host_header_add,
    .header_change = host_header_change,
    .part_count = host_part_count,
    .part = host_part,
    .msg_flags = host_msg_flags,
    .symbol_add = host_symbol_add,
    .symbol_count = host_symbol_count,
    .symbol = host_symbol,
    .score = host_score,
    .set_reply = host_set_reply,
    .rcpt_set = host_rcpt_set,
    .rcpt_state = host_rcpt_state,
    .io_new = host_io_new,
    .io_set = host_io_set,
    .io_free = host_io_free,
    .timer_new = host_timer_new,
    .timer_start = host_timer_start,
    .timer_stop = host_timer_stop,
    .timer_free = host_timer_free,
    .now = host_now,
    .counter_add = host_counter_add,
    .txn_new = host_txn_new,
    .txn_free = host_txn_free,
    .txn_set_client = host_txn_set_client,
    .txn_set_sender = host_txn_set_sender,
    .txn_add_rcpt = host_txn_add_rcpt,
    .txn_drop_rcpt = host_txn_drop_rcpt,
    .txn_write = host_txn_write,
    .txn_run = host_txn_run,
    .txn_reply = host_txn_reply,
    .max_message_size = host_max_message_size,
    .hostname = host_hostname,
    .body = host_body,
    .header_edit_count = host_header_edit_count,
    .header_edit = host_header_edit,
    .body_replace = host_body_replace,
    .body_changed = host_body_changed,
    .dns_query = host_dns_query,
    .dns_cancel = host_dns_cancel,
    .state_dir = host_state_dir,
    /* 1.2 (envelope.c) */
    .rcpt_add = envelope_rcpt_add,
    .rcpt_del = envelope_rcpt_del,
    .rcpt_change_count = envelope_change_count,
    .rcpt_change = envelope_change,
    .message_send = envelope_send,
    .database = host_database,
};
