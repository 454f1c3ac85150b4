/*
 * scan.c - the chain in-process, for `sluicectl scan`: the scanner is the
 * ingress, the final stages never run.  Interface and diagnostics in
 * scan.h.
 *
 * A scan worker is what worker.c sets up, minus privileges, listeners and
 * signals: one libev loop, one DNS resolver, every enabled stage's
 * worker_start().  Messages go through txn_new/txn_write/txn_run as an
 * ingress would drive them, several at once on the loop, so stages that
 * wait on the network (dns, blocklist) overlap.
 *
 * SECURITY: the caller's privileges; nothing is bound, nothing delivered:
 * FINAL stages are switched off before any worker starts, so no hook of
 * theirs is ever called.
 */
#include "scan.h"
#include "dns.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct scan_worker {
    worker w;
    stats_worker stats;
    size_t inflight;
};

/* One message in flight. */
typedef struct scan_msg {
    scan_worker *sw;
    sluice_txn *txn;
    size_t size;
    char **rcpts; /* copies: the facts belong to the caller */
    size_t nrcpts, next_rcpt, accepted;
    sluice_phase phase;
    /* the last refused recipient's answer, if all are refused */
    sluice_verdict rcpt_verdict;
    char rcpt_code[4], rcpt_xcode[16];
    char *rcpt_text;
    scan_cb cb;
    void *arg;
} scan_msg;

static const char *const scan_phase_names[] = {"connect", "helo", "mail",
                                               "rcpt", "eom"};

/* ---------------------------------------------------------------- */
/* The chain                                                         */

/* The scan never drops privileges: the `user` check is the caller's. */
static const char *scan_self_user(void)
{
    struct passwd *pw = getpwuid(geteuid());

    return pw ? pw->pw_name : NULL;
}

int scan_chain_load(const char *confdir, const char *plugin_dir,
                    const char *const *without, chain **out, buf *err)
{
    chain *ch;
    size_t i;

    *out = NULL;
    /* listen_fn NULL: LISTEN options are checked, never bound */
    ch = chain_load(confdir, plugin_dir, NULL, scan_self_user(), NULL, NULL, 1,
                    err);
    if (ch == NULL)
        return SCAN_ECONF;
    for (i = 0; without && without[i]; i++) {
        struct sluice_ctx *s = chain_find(ch, without[i]);
        if (s == NULL) {
            buf_printf(err, "--without: no stage named '%s' in %s\n",
                       without[i], confdir);
            chain_free(ch);
            return SCAN_EUSAGE;
        }
        s->common.enabled = 0;
    }
    for (i = 0; i < ch->nstages; i++) {
        struct sluice_ctx *s = ch->stages[i];
        if (s->desc.flags & (SLUICE_STAGE_INGRESS | SLUICE_STAGE_FINAL))
            s->common.enabled = 0;
    }
    *out = ch;
    return SCAN_OK;
}

/* ---------------------------------------------------------------- */
/* Workers                                                           */

static void scan_runq_cb(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)loop;
    (void)revents;
    worker_runq_process(i->data);
}

/* Without a resolver host->dns_query() fails and DNS stages find nothing:
 * logged, not fatal, as in sluiced's workers. */
static void scan_dns_start(worker *w)
{
    dns_conf dc;
    buf err;

    memset(&dc, 0, sizeof(dc));
    dc.servers = w->ch->ec.dns_servers;
    dc.timeout = w->ch->ec.dns_timeout;
    dc.tries = (int)w->ch->ec.dns_tries;
    dc.cache_size = (size_t)w->ch->ec.dns_cache_size;
    buf_init(&err);
    if ((w->dns = dns_new(w->loop, &dc, &err)) == NULL)
        log_warn("DNS resolver not available: %s", err.data);
    buf_free(&err);
}

/* Undo what scan_worker_new() attached to the chain; the stages are
 * stopped already. */
static void scan_worker_release(scan_worker *sw)
{
    worker *w = &sw->w;
    size_t i;

    dns_free(w->dns);
    w->dns = NULL;
    ev_idle_stop(w->loop, &w->runq_idle);
    for (i = 0; i < w->ch->nstages; i++) {
        w->ch->stages[i]->worker = NULL;
        w->ch->stages[i]->stats = NULL;
    }
    free(sw);
}

scan_worker *scan_worker_new(chain *ch, buf *err)
{
    scan_worker *sw = util_calloc(1, sizeof(*sw));
    worker *w = &sw->w;
    size_t i;

    w->loop = ev_default_loop(0);
    /* a stage's init() may have made the default loop before a fork:
     * its kernel state (epoll) must be this process's own */
    ev_loop_fork(w->loop);
    w->ch = ch;
    w->stats = &sw->stats;
    sw->stats.pid = getpid();
    sw->stats.nstages = ch->nstages;
    ev_idle_init(&w->runq_idle, scan_runq_cb);
    w->runq_idle.data = w;
    for (i = 0; i < ch->nstages && i < STATS_MAX_STAGES; i++) {
        struct sluice_ctx *s = ch->stages[i];
        s->worker = w;
        s->stats = &sw->stats.stages[i];
        snprintf(s->stats->name, sizeof(s->stats->name), "%s", s->name);
    }
    scan_dns_start(w);
    for (i = 0; i < ch->nstages; i++) {
        struct sluice_ctx *s = ch->stages[i];
        if (!s->common.enabled || s->desc.worker_start == NULL)
            continue;
        if (s->desc.worker_start(s->inst) != 0) {
            buf_printf(err,
                       "%s:%d: stage '%s' failed to start (see the log "
                       "above)\n",
                       s->file, s->line, s->name);
            while (i-- > 0) { /* the ones started so far stop again */
                struct sluice_ctx *p = ch->stages[i];
                if (p->common.enabled && p->desc.worker_stop)
                    p->desc.worker_stop(p->inst, 0);
            }
            scan_worker_release(sw);
            return NULL;
        }
    }
    return sw;
}

void scan_worker_free(scan_worker *sw)
{
    size_t i;

    if (sw == NULL)
        return;
    scan_wait(sw); /* nothing is left half-scanned */
    for (i = 0; i < sw->w.ch->nstages; i++) {
        struct sluice_ctx *s = sw->w.ch->stages[i];
        if (s->common.enabled && s->desc.worker_stop)
            s->desc.worker_stop(s->inst, 0);
    }
    scan_worker_release(sw);
}

size_t scan_inflight(scan_worker *sw)
{
    return sw->inflight;
}

void scan_run_once(scan_worker *sw)
{
    ev_run(sw->w.loop, EVRUN_ONCE);
}

/* Every message ends through a timer or a done() on the loop (stage
 * timeouts bound them), so this returns. */
void scan_wait(scan_worker *sw)
{
    while (sw->inflight > 0)
        ev_run(sw->w.loop, EVRUN_ONCE);
}

/* ---------------------------------------------------------------- */
/* Messages                                                          */

static void scan_msg_free(scan_msg *m)
{
    size_t i;

    for (i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    free(m->rcpt_text);
    free(m);
}

/* The spam probability a stage wrote into a header, as 0..1; -1 if none.
 * "0.93", "93%" and "0.9968 BAYES_99 ..." (the bayes stage) all count. */
static double scan_probability(sluice_txn *t)
{
    static const char *const names[] = {"X-Sluice-Probability",
                                        "X-Sluice-Spam-Probability",
                                        "X-Sluice-Bayes", NULL};
    size_t i;

    for (i = 0; names[i]; i++) {
        const sluice_header *h = host_table.header_find(t, names[i], 0);
        char *end;
        double p;
        if (h == NULL || h->value == NULL)
            continue;
        p = strtod(h->value, &end);
        if (end == h->value)
            continue;
        if (*end == '%')
            p /= 100.0;
        if (p >= 0.0 && p <= 1.0)
            return p;
    }
    return -1.0;
}

static void scan_finish(scan_msg *m, sluice_verdict v, const char *error)
{
    scan_worker *sw = m->sw;
    sluice_txn *t = m->txn;
    scan_result r;

    memset(&r, 0, sizeof(r));
    r.txn = t;
    r.id = t->id;
    r.size = m->size;
    r.verdict = v;
    r.phase = scan_phase_names[m->phase];
    r.probability = -1.0;
    r.error = error;
    if (error == NULL) {
        if (m->phase == SLUICE_PHASE_RCPT && m->rcpt_verdict != 0) {
            /* every recipient was refused: the last refusal answers */
            r.code = m->rcpt_code[0] ? m->rcpt_code : NULL;
            r.xcode = m->rcpt_xcode[0] ? m->rcpt_xcode : NULL;
            r.text = m->rcpt_text;
        } else {
            r.code = t->reply_code[0] ? t->reply_code : NULL;
            r.xcode = t->reply_xcode[0] ? t->reply_xcode : NULL;
            r.text = t->reply_text;
        }
        r.probability = scan_probability(t);
    }
    ev_now_update(sw->w.loop);
    r.total_ms = (ev_now(sw->w.loop) - t->t_start) * 1000.0;
    m->cb(&r, m->arg);
    txn_free(t);
    scan_msg_free(m);
    sw->inflight--;
}

static void scan_step(sluice_txn *t, sluice_verdict v, void *arg);

/* Next recipient, or end of message once they are all through. */
static void scan_next_rcpt(scan_msg *m)
{
    if (m->next_rcpt < m->nrcpts) {
        host_table.txn_add_rcpt(m->txn, m->rcpts[m->next_rcpt++], "");
        m->phase = SLUICE_PHASE_RCPT;
        host_table.txn_run(m->txn, SLUICE_PHASE_RCPT, scan_step, m);
        return;
    }
    if (m->accepted == 0 && m->nrcpts > 0) {
        scan_finish(m, m->rcpt_verdict, NULL);
        return;
    }
    m->phase = SLUICE_PHASE_EOM;
    host_table.txn_run(m->txn, SLUICE_PHASE_EOM, scan_step, m);
}

static void scan_step(sluice_txn *t, sluice_verdict v, void *arg)
{
    scan_msg *m = arg;

    (void)t;
    switch (m->phase) {
    case SLUICE_PHASE_RCPT:
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL) {
            /* as the smtp ingress: that recipient is refused, not all */
            m->rcpt_verdict = v;
            snprintf(m->rcpt_code, sizeof(m->rcpt_code), "%s",
                     m->txn->reply_code);
            snprintf(m->rcpt_xcode, sizeof(m->rcpt_xcode), "%s",
                     m->txn->reply_xcode);
            free(m->rcpt_text);
            m->rcpt_text =
                util_strdup(m->txn->reply_text ? m->txn->reply_text : "");
            host_table.txn_drop_rcpt(m->txn);
        } else if (v == SLUICE_DISCARD) {
            scan_finish(m, v, NULL);
            return;
        } else {
            m->accepted++;
        }
        scan_next_rcpt(m);
        return;
    case SLUICE_PHASE_EOM:
        scan_finish(m, v, NULL);
        return;
    default: /* CONNECT, HELO and MAIL ran together */
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL || v == SLUICE_DISCARD) {
            scan_finish(m, v, NULL);
            return;
        }
        scan_next_rcpt(m);
        return;
    }
}

/* The message as the MTA would hand it over: CRLF line ends. */
static int scan_write(sluice_txn *t, const char *msg, size_t len)
{
    buf b;
    size_t i, start = 0, bare = 0;
    const char *nl;
    int rc;

    /* bare LFs first, then one copy into a buffer of the final size */
    for (i = 0; i < len && (nl = memchr(msg + i, '\n', len - i)) != NULL;
         i = (size_t)(nl - msg) + 1)
        if (nl == msg || nl[-1] != '\r')
            bare++;
    buf_init(&b);
    buf_reserve(&b, len + bare + 1);
    for (i = 0; i < len && (nl = memchr(msg + i, '\n', len - i)) != NULL;
         i = (size_t)(nl - msg) + 1) {
        if (nl != msg && nl[-1] == '\r')
            continue;
        memcpy(b.data + b.len, msg + start, (size_t)(nl - msg) - start);
        b.len += (size_t)(nl - msg) - start;
        b.data[b.len++] = '\r';
        b.data[b.len++] = '\n';
        start = (size_t)(nl - msg) + 1;
    }
    buf_add(&b, msg + start, len - start);
    rc = host_table.txn_write(t, b.data, b.len);
    buf_free(&b);
    return rc;
}

void scan_submit(scan_worker *sw, const char *msg, size_t len,
                 const scan_facts *f, scan_cb cb, void *arg)
{
    scan_msg *m = util_calloc(1, sizeof(*m));
    sluice_client c;
    size_t i;

    m->sw = sw;
    m->size = len;
    m->cb = cb;
    m->arg = arg;
    m->txn = txn_new(&sw->w, NULL); /* the scanner is the ingress */
    sw->inflight++;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.addr = f->client_addr ? f->client_addr : "";
    c.name = f->client_name ? f->client_name : "";
    c.helo = f->helo ? f->helo : "";
    c.proto = "ESMTP";
    c.ident = "";
    c.auth = "";
    host_table.txn_set_client(m->txn, &c);
    host_table.txn_set_sender(m->txn, f->sender ? f->sender : "", "");
    m->rcpts = util_calloc(f->nrcpts + 1, sizeof(char *));
    for (i = 0; i < f->nrcpts; i++)
        m->rcpts[i] = util_strdup(f->rcpts[i]);
    m->nrcpts = f->nrcpts;
    m->phase = SLUICE_PHASE_MAIL;
    if (scan_write(m->txn, msg, len) < 0) {
        /* sluiced's ingress would answer 552; here it is a scan failure */
        char why[96];
        snprintf(why, sizeof(why), "larger than max_message_size (%zu bytes)",
                 sw->w.ch->ec.max_message_size);
        m->phase = SLUICE_PHASE_EOM;
        scan_finish(m, SLUICE_REJECT, why);
        return;
    }
    host_table.txn_run(m->txn, SLUICE_PHASE_MAIL, scan_step, m);
}

double scan_stage_ms(const scan_result *r, size_t i, const char **name)
{
    sluice_txn *t = r->txn;

    if (i >= t->ch->nstages) {
        *name = NULL;
        return -1.0;
    }
    *name = t->ch->stages[i]->name;
    return t->stage_ms[i];
}

/* ---------------------------------------------------------------- */
/* Facts from the message's own header                               */

static int scan_is_ip(const char *s)
{
    unsigned char tmp[16];

    return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* A loopback client is a local re-injection (fetchmail, a content
 * filter), not the client that brought the message. */
static int scan_is_loopback(const char *s)
{
    return strncmp(s, "127.", 4) == 0 || strcmp(s, "::1") == 0;
}

/* "from HELO (NAME [IP]) by ..." as Postfix and sendmail write it:
 * 1 with the facts set, 0 when this Received names no client IP. */
static int scan_received(const char *v, scan_facts *f)
{
    const char *p = v, *end, *lb, *rb, *q;
    char ip[64], helo[256], name[256];
    size_t n;

    while (isspace((unsigned char)*p))
        p++;
    if (strncasecmp(p, "from", 4) != 0 || !isspace((unsigned char)p[4]))
        return 0;
    p += 4;
    while (isspace((unsigned char)*p))
        p++;
    end = strcasestr(p, " by ");
    if (end == NULL)
        end = p + strlen(p);
    lb = memchr(p, '[', (size_t)(end - p));
    rb = lb ? memchr(lb, ']', (size_t)(end - lb)) : NULL;
    if (lb == NULL || rb == NULL)
        return 0;
    q = lb + 1;
    if (strncasecmp(q, "IPv6:", 5) == 0)
        q += 5;
    n = (size_t)(rb - q);
    if (n == 0 || n >= sizeof(ip))
        return 0;
    memcpy(ip, q, n);
    ip[n] = '\0';
    if (!scan_is_ip(ip) || scan_is_loopback(ip))
        return 0;
    n = strcspn(p, " \t()[");
    snprintf(helo, sizeof(helo), "%.*s", (int)(n < 255 ? n : 255), p);
    name[0] = '\0';
    if ((q = memchr(p, '(', (size_t)(lb - p))) != NULL) {
        q++;
        n = strcspn(q, " \t[)");
        if (n > 0 && n < sizeof(name) && strncasecmp(q, "unknown", n) != 0)
            snprintf(name, sizeof(name), "%.*s", (int)n, q);
    }
    f->client_addr = util_strdup(ip);
    if (f->client_name == NULL)
        f->client_name = util_strdup(name);
    if (f->helo == NULL) /* an --helo option wins */
        f->helo = util_strdup(helo);
    return 1;
}

/* The first IP in X-Forwarded-For / X-Originating-IP ("[192.0.2.1]"). */
static int scan_forwarded(const char *v, scan_facts *f)
{
    char ip[64];
    size_t n;

    v += strspn(v, " \t[");
    n = strcspn(v, " \t,;]");
    if (n == 0 || n >= sizeof(ip))
        return 0;
    memcpy(ip, v, n);
    ip[n] = '\0';
    if (!scan_is_ip(ip))
        return 0;
    f->client_addr = util_strdup(ip);
    return 1;
}

/* The address in "Name <a@b>" or "a@b (Name)"; NULL if none. */
static char *scan_addr(const char *v, size_t len)
{
    const char *lt = memchr(v, '<', len), *gt;
    size_t i, n;

    if (lt != NULL && (gt = memchr(lt, '>', len - (size_t)(lt - v))) != NULL)
        return util_strndup(lt + 1, (size_t)(gt - lt - 1));
    for (i = 0; i < len;) {
        while (i < len && isspace((unsigned char)v[i]))
            i++;
        for (n = 0; i + n < len && !isspace((unsigned char)v[i + n]); n++)
            ;
        if (n > 0 && memchr(v + i, '@', n) != NULL)
            return util_strndup(v + i, n);
        i += n;
    }
    return NULL;
}

static void scan_add_rcpt(scan_facts *f, char *a)
{
    if (a == NULL)
        return;
    if (a[0] == '\0' || f->nrcpts >= 100) {
        free(a);
        return;
    }
    f->rcpts = util_realloc(f->rcpts, (f->nrcpts + 2) * sizeof(char *));
    f->rcpts[f->nrcpts++] = a;
    f->rcpts[f->nrcpts] = NULL;
}

/* Every address of a To:-like list (commas outside <> split it). */
static void scan_add_rcpts(scan_facts *f, const char *v)
{
    size_t start = 0, i, len = strlen(v);
    int in_angle = 0, in_quote = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && v[i] == '"')
            in_quote = !in_quote;
        else if (i < len && v[i] == '<')
            in_angle = 1;
        else if (i < len && v[i] == '>')
            in_angle = 0;
        if (i == len || (v[i] == ',' && !in_angle && !in_quote)) {
            scan_add_rcpt(f, scan_addr(v + start, i - start));
            start = i + 1;
        }
    }
}

/* Only what the options left unknown is filled in. */
void scan_facts_from_message(const char *msg, size_t len, scan_facts *f)
{
    hdr_block hb;
    size_t i;
    int have_client = f->client_addr != NULL;
    char *fwd = NULL, *from = NULL, *to = NULL, *orig_to = NULL;
    int have_sender = f->sender != NULL;

    memset(&hb, 0, sizeof(hb));
    if (hdr_parse((const unsigned char *)msg, len, NULL, &hb) < 0)
        return;
    for (i = 0; i < hb.count; i++) {
        const hdr_field *h = &hb.fields[i];
        const char *name = msg + h->name_off;
        size_t nl = h->name_len;
        char *v;

#define SCAN_IS(s) (nl == sizeof(s) - 1 && strncasecmp(name, s, nl) == 0)
        if (!SCAN_IS("Received") && !SCAN_IS("X-Forwarded-For") &&
            !SCAN_IS("X-Originating-IP") && !SCAN_IS("Return-Path") &&
            !SCAN_IS("From") && !SCAN_IS("To") && !SCAN_IS("X-Original-To") &&
            !SCAN_IS("Delivered-To"))
            continue;
        /* only the first of each counts: the others are not decoded */
        if ((SCAN_IS("Received") && have_client) ||
            ((SCAN_IS("X-Forwarded-For") || SCAN_IS("X-Originating-IP")) &&
             fwd != NULL) ||
            (SCAN_IS("Return-Path") && have_sender) ||
            (SCAN_IS("From") && from != NULL) || (SCAN_IS("To") && to != NULL) ||
            ((SCAN_IS("X-Original-To") || SCAN_IS("Delivered-To")) &&
             orig_to != NULL))
            continue;
        if ((v = hdr_decode(msg + h->raw_off, h->raw_len, NULL)) == NULL)
            continue;
        if (SCAN_IS("Received")) {
            if (!have_client)
                have_client = scan_received(v, f);
        } else if (SCAN_IS("X-Forwarded-For") || SCAN_IS("X-Originating-IP")) {
            if (fwd == NULL)
                fwd = util_strdup(v);
        } else if (SCAN_IS("Return-Path")) {
            if (!have_sender) {
                f->sender = scan_addr(v, strlen(v)); /* "<>": "" */
                have_sender = f->sender != NULL;
            }
        } else if (SCAN_IS("From")) {
            if (from == NULL)
                from = util_strdup(v);
        } else if (SCAN_IS("To")) {
            if (to == NULL)
                to = util_strdup(v);
        } else if (orig_to == NULL) { /* X-Original-To, Delivered-To */
            orig_to = util_strdup(v);
        }
#undef SCAN_IS
        free(v);
    }
    hdr_block_free(&hb);
    if (!have_client && fwd != NULL)
        scan_forwarded(fwd, f);
    if (!have_sender && from != NULL)
        f->sender = scan_addr(from, strlen(from));
    if (f->nrcpts == 0) {
        if (orig_to != NULL)
            scan_add_rcpt(f, scan_addr(orig_to, strlen(orig_to)));
        else if (to != NULL)
            scan_add_rcpts(f, to);
    }
    free(fwd);
    free(from);
    free(to);
    free(orig_to);
}

void scan_facts_free(scan_facts *f)
{
    size_t i;

    free(f->client_addr);
    free(f->client_name);
    free(f->helo);
    free(f->sender);
    for (i = 0; i < f->nrcpts; i++)
        free(f->rcpts[i]);
    free(f->rcpts);
    memset(f, 0, sizeof(*f));
}
