/*
 * txn.c - one message in flight, and the chain runner.
 *
 * txn_run(phase) walks the enabled stages' hooks for that phase (and for
 * any once-only earlier phase not yet run).  A hook that answers
 * SLUICE_PENDING parks the transaction under a per-stage timer; the
 * stage's done() puts it on the worker's run queue, and the walk resumes
 * from the next stage out of an ev_idle callback, never by recursion.
 * The ingress's callback always comes from the run queue too.
 *
 * At the end of EOM every recipient is settled: REJECT/TEMPFAIL/DISCARD
 * apply to all; otherwise what the final stages recorded stands, and a
 * recipient nobody took is temp-failed (never a 250 for undelivered mail).
 * When stages changed the envelope (ABI 1.2), the edited list is settled
 * so and the ingress's recipients take their outcomes from it
 * (envelope.c); messages stages asked to send go out after that.
 *
 * Diagnostics: a stage returning an invalid verdict, PENDING without an
 * abort hook, or calling done() twice is logged with the message id and
 * treated as the stage's on_error verdict (default tempfail).
 */
#include "engine.h"
#include "dns.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

static const char txn_b32[] = "0123456789BCDFGHJKLMNPQRSTVWXYZ";

static void txn_make_id(sluice_txn *t)
{
    struct timeval tv;
    unsigned long long v;
    char tmp[32];
    int n = 0;

    gettimeofday(&tv, NULL);
    /* time in ms, pid and a per-worker counter: unique across workers */
    v = ((unsigned long long)tv.tv_sec * 1000ULL +
         (unsigned long long)tv.tv_usec / 1000ULL);
    while (v && n < 10) {
        tmp[n++] = txn_b32[v % 31];
        v /= 31;
    }
    for (int i = 0; i < n; i++)
        t->id[i] = tmp[n - 1 - i];
    snprintf(t->id + n, sizeof(t->id) - (size_t)n, "%lX%04llX",
             (unsigned long)getpid(), t->w->txn_seq++ & 0xFFFF);
}

static void txn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

sluice_txn *txn_new(worker *w, struct sluice_ctx *ingress)
{
    sluice_txn *t = util_calloc(1, sizeof(*t));
    size_t i;

    t->w = w;
    t->ch = w->ch;
    t->ch->refs++;
    t->ingress = ingress;
    t->t_start = ev_now(w->loop);
    txn_make_id(t);
    t->client.size = sizeof(t->client);
    t->client.addr = t->client.name = t->client.helo = t->client.proto =
        t->client.ident = t->client.auth = "";
    t->sender.size = sizeof(t->sender);
    t->sender.addr = t->sender.params = "";
    buf_init(&t->msg);
    t->rcpt_cur = -1;
    t->slots = util_calloc(t->ch->nstages, sizeof(void *));
    t->stage_ms = util_calloc(t->ch->nstages, sizeof(double));
    for (i = 0; i < t->ch->nstages; i++) {
        size_t n = t->ch->stages[i]->desc.slot_size;
        if (n)
            t->slots[i] = util_calloc(1, n);
    }
    ev_timer_init(&t->timer, txn_timer_cb, 0., 0.);
    t->timer.data = t;
    w->stats->txns++;
    w->stats->active_txns++;
    return t;
}

static void txn_runq_remove(sluice_txn *t)
{
    worker *w = t->w;
    sluice_txn **pp, *prev = NULL;

    for (pp = &w->runq_head; *pp; prev = *pp, pp = &(*pp)->runq_next) {
        if (*pp == t) {
            *pp = t->runq_next;
            if (w->runq_tail == t)
                w->runq_tail = prev;
            t->runq_next = NULL;
            return;
        }
    }
}

static void txn_enqueue(sluice_txn *t)
{
    worker *w = t->w;

    t->state = TXN_QUEUED;
    t->runq_next = NULL;
    if (w->runq_tail)
        w->runq_tail->runq_next = t;
    else
        w->runq_head = t;
    w->runq_tail = t;
    if (!ev_is_active(&w->runq_idle))
        ev_idle_start(w->loop, &w->runq_idle);
}

void txn_free(sluice_txn *t)
{
    size_t i;

    if (t == NULL)
        return;
    if (t->state == TXN_PENDING && t->cur_stage) {
        struct sluice_ctx *s = t->cur_stage;
        ev_timer_stop(t->w->loop, &t->timer);
        if (s->desc.on_abort)
            s->desc.on_abort(s->inst, t, t->slots[s->index]);
    }
    if (t->state == TXN_QUEUED)
        txn_runq_remove(t);
    ev_timer_stop(t->w->loop, &t->timer);
    /* DNS queries of this message: their callbacks must never come now */
    dns_cancel_owner(&t->dns_queries, NULL);
    for (i = 0; i < t->ch->nstages; i++) {
        struct sluice_ctx *s = t->ch->stages[i];
        if (s->desc.on_close)
            s->desc.on_close(s->inst, t, t->slots[i]);
        free(t->slots[i]);
    }
    free(t->slots);
    free(t->stage_ms);
    for (i = 0; i < 6; i++)
        free(t->client_strs[i]);
    if (t->have_sender) {
        free((char *)t->sender.addr);
        free((char *)t->sender.params);
    }
    for (i = 0; i < t->nrcpts; i++) {
        free((char *)t->rcpts[i].a.addr);
        free((char *)t->rcpts[i].a.params);
        free(t->rcpts[i].reply);
    }
    free(t->rcpts);
    envelope_free(t);
    for (i = 0; i < t->nhdrs; i++) {
        free(t->hdrs[i].own);
        free(t->hdrs[i].value);
    }
    free(t->hdrs);
    if (t->mime)
        mime_free(t->mime);
    for (i = 0; i < t->nedits; i++) {
        free(t->edits[i].name);
        free(t->edits[i].value);
    }
    free(t->edits);
    for (i = 0; i < t->nold_msgs; i++)
        buf_free(&t->old_msgs[i]);
    free(t->old_msgs);
    for (i = 0; i < t->nsyms; i++) {
        free(t->syms[i].name);
        free(t->syms[i].reason);
    }
    free(t->syms);
    free(t->reply_text);
    buf_free(&t->msg);
    t->w->stats->active_txns--;
    if (--t->ch->refs == 0)
        chain_free(t->ch);
    free(t);
}

/* ---------------------------------------------------------------- */
/* Headers: parsed on first use into an editable array.              */

/* Length of the line ending just before `off` (0 if none). */
static size_t txn_eol_before(const char *m, size_t off)
{
    if (off == 0 || m[off - 1] != '\n')
        return 0;
    return off >= 2 && m[off - 2] == '\r' ? 2 : 1;
}

size_t txn_header_end(const char *m, size_t body_off)
{
    size_t eol = txn_eol_before(m, body_off), start;

    if (eol == 0)
        return body_off;
    start = body_off - eol;
    return start == 0 || m[start - 1] == '\n' ? start : body_off;
}

/*
 * The editable header array is also what delivery writes, so it must
 * carry every byte of the header block, whatever the parser made of it:
 * lines that are no field and fields past max_header_count are folded
 * into the raw value of the field before them, a field cut at
 * max_header_length gets its whole extent back, and junk before the
 * first field (an mbox "From " line) joins that field's name span.  The
 * MIME analysis keeps its own limits and flags; nothing is lost on the
 * way out.
 */
static void txn_hdr_keep_all(sluice_txn *t, hdr_block *hb)
{
    const char *m = t->msg.data;
    size_t i, hend = txn_header_end(m, hb->body_off);

    if (hb->count == 0) {
        if (hend > 0)
            hb->body_off = 0; /* no field at all: all of it is body */
        return;
    }
    if (hb->fields[0].name_off > 0) {
        hb->fields[0].name_len += hb->fields[0].name_off;
        hb->fields[0].name_off = 0;
    }
    for (i = 0; i < hb->count; i++) {
        hdr_field *f = &hb->fields[i];
        size_t limit = i + 1 < hb->count ? hb->fields[i + 1].name_off : hend;
        size_t end = limit - txn_eol_before(m, limit);
        if (end > f->raw_off + f->raw_len)
            f->raw_len = end - f->raw_off;
    }
}

int txn_headers(sluice_txn *t)
{
    hdr_block hb;
    size_t i;

    if (t->hdr_ready)
        return 0;
    memset(&hb, 0, sizeof(hb));
    if (hdr_parse((const unsigned char *)t->msg.data, t->msg.len,
                  &t->ch->limits, &hb) < 0)
        return -1;
    txn_hdr_keep_all(t, &hb);
    t->hdrs = util_calloc(hb.count ? hb.count : 1, sizeof(*t->hdrs));
    for (i = 0; i < hb.count; i++) {
        txn_hdr *h = &t->hdrs[i];
        h->h.size = sizeof(h->h);
        h->h.name.ptr = t->msg.data + hb.fields[i].name_off;
        h->h.name.len = hb.fields[i].name_len;
        h->h.raw.ptr = t->msg.data + hb.fields[i].raw_off;
        h->h.raw.len = hb.fields[i].raw_len;
    }
    t->nhdrs = hb.count;
    t->body_off = hb.body_off;
    hdr_block_free(&hb);
    t->hdr_ready = 1;
    return 0;
}

int txn_mime(sluice_txn *t)
{
    if (t->mime)
        return 0;
    t->mime = mime_parse((const unsigned char *)t->msg.data, t->msg.len,
                         &t->ch->limits);
    return t->mime ? 0 : -1;
}

/* ---------------------------------------------------------------- */
/* The chain runner                                                  */

static void txn_set_default_reply(sluice_txn *t, sluice_verdict v)
{
    if (t->reply_code[0] != '\0')
        return;
    switch (v) {
    case SLUICE_REJECT:
        snprintf(t->reply_code, sizeof(t->reply_code), "550");
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "5.7.1");
        free(t->reply_text);
        t->reply_text = util_strdup("Message rejected");
        break;
    case SLUICE_TEMPFAIL:
        snprintf(t->reply_code, sizeof(t->reply_code), "451");
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "4.3.0");
        free(t->reply_text);
        t->reply_text = util_strdup("Temporary failure, try again later");
        break;
    default:
        break;
    }
}

static void txn_log_summary(sluice_txn *t)
{
    buf b;
    size_t i;
    double total = (ev_now(t->w->loop) - t->t_start) * 1000.0;
    static const char *rs[] = {"open", "done", "tempfail", "rejected"};

    if (!log_on(SLUICE_LOG_INFO))
        return;
    buf_init(&b);
    buf_printf(&b, "from=<%s> to=", t->sender.addr);
    for (i = 0; i < t->nrcpts; i++)
        buf_printf(&b, "%s<%s>:%s", i ? "," : "", t->rcpts[i].a.addr,
                   rs[t->rcpts[i].state]);
    envelope_summary(t, &b);
    buf_printf(&b, " size=%zu client=%s[%s]", t->msg.len,
               t->client.name[0] ? t->client.name : "unknown",
               t->client.addr[0] ? t->client.addr : "unknown");
    if (t->client.ident[0])
        buf_printf(&b, " mta_id=%s", t->client.ident);
    buf_printf(&b, " verdict=%s score=%.2f symbols=",
               conf_verdict_name(t->result), t->score);
    for (i = 0; i < t->nsyms; i++)
        buf_printf(&b, "%s%s(%.2f)", i ? "," : "", t->syms[i].name,
                   t->syms[i].score);
    if (t->nsyms == 0)
        buf_adds(&b, "-");
    buf_printf(&b, " time=%.1fms stages=", total);
    for (i = 0; i < t->ch->nstages; i++)
        if (t->stage_ms[i] > 0)
            buf_printf(&b, "%s%s:%.2f", b.data[b.len - 1] == '=' ? "" : ",",
                       t->ch->stages[i]->name, t->stage_ms[i]);
    log_msg(SLUICE_LOG_INFO, t->id, "%s", b.data);
    buf_free(&b);
}

/* One list of recipients (the ingress's, or the edited one). */
static void txn_settle_list(sluice_txn *t, txn_rcpt *list, size_t n,
                            sluice_verdict v)
{
    size_t i;
    char *line;

    for (i = 0; i < n; i++) {
        txn_rcpt *r = &list[i];
        switch (v) {
        case SLUICE_REJECT:
        case SLUICE_TEMPFAIL:
            line = util_printf("%s %s %s", t->reply_code, t->reply_xcode,
                               t->reply_text);
            r->state = v == SLUICE_REJECT ? SLUICE_RCPT_REJECTED
                                          : SLUICE_RCPT_TEMPFAIL;
            free(r->reply);
            r->reply = line;
            break;
        case SLUICE_DISCARD:
            r->state = SLUICE_RCPT_DONE;
            free(r->reply);
            r->reply = util_printf("250 2.0.0 Ok: discarded as %s", t->id);
            break;
        default:
            if (r->state == SLUICE_RCPT_OPEN) {
                r->state = SLUICE_RCPT_TEMPFAIL;
                free(r->reply);
                r->reply = util_printf(
                    "451 4.3.0 %s: no stage took it (%s)", t->id,
                    t->disposition == SLUICE_QUARANTINE
                        ? "quarantine is not available"
                        : "no delivery stage");
            } else if (r->reply == NULL) {
                r->reply = util_strdup(r->state == SLUICE_RCPT_DONE
                                           ? "250 2.0.0 Ok"
                                       : r->state == SLUICE_RCPT_REJECTED
                                           ? "550 5.0.0 Rejected"
                                           : "451 4.0.0 Deferred");
            }
        }
    }
}

static void txn_settle(sluice_txn *t)
{
    sluice_verdict v = t->result;
    int whole =
        v == SLUICE_REJECT || v == SLUICE_TEMPFAIL || v == SLUICE_DISCARD;

    txn_set_default_reply(t, v);
    if (t->rcpts_edited) /* 1.2: stages changed the envelope (envelope.c) */
        txn_settle_list(t, t->ercpts, t->nercpts, v);
    if (!t->rcpts_edited || whole)
        txn_settle_list(t, t->rcpts, t->nrcpts, v);
    else
        envelope_settle(t);
    t->eom_done = 1;
    t->w->stats->messages++;
    if (v >= SLUICE_CONTINUE && v <= SLUICE_PENDING)
        t->w->stats->verdicts[v]++;
    txn_log_summary(t);
    envelope_flush(t);
}

/* The phase run is over: hand the verdict to the ingress via the queue. */
static void txn_finish(sluice_txn *t)
{
    if (t->phase == SLUICE_PHASE_EOM)
        txn_settle(t);
    t->state = TXN_IDLE;
    t->cur_stage = NULL;
    t->target = SLUICE_PHASE_COUNT; /* marks "callback due" */
    txn_enqueue(t);
}

static int txn_once_phase(sluice_phase p)
{
    return p != SLUICE_PHASE_RCPT;
}

/* Next phase to run after `p` towards t->target, or COUNT when done. */
static sluice_phase txn_next_phase(sluice_txn *t, int from)
{
    int p;

    for (p = from; p <= (int)t->target; p++) {
        if (p == (int)t->target)
            return (sluice_phase)p;
        if (txn_once_phase((sluice_phase)p) && !(t->phases_done & (1 << p)) &&
            p != SLUICE_PHASE_RCPT)
            return (sluice_phase)p;
    }
    return SLUICE_PHASE_COUNT;
}

static void txn_record(sluice_txn *t, struct sluice_ctx *s, sluice_verdict v)
{
    double ms;

    ev_now_update(t->w->loop);
    ms = (ev_now(t->w->loop) - t->stage_t0) * 1000.0;
    if (ms < 0)
        ms = 0;
    t->stage_ms[s->index] += ms;
    if (s->stats) {
        s->stats->time_ms += ms;
        if (v >= SLUICE_CONTINUE && v <= SLUICE_PENDING)
            s->stats->verdicts[v]++;
    }
}

/* Apply stage s's verdict; returns 1 if the phase run stops here. */
static int txn_apply(sluice_txn *t, struct sluice_ctx *s, sluice_verdict v)
{
    switch (v) {
    case SLUICE_CONTINUE:
        return 0;
    case SLUICE_ACCEPT:
    case SLUICE_QUARANTINE:
        if (t->disposition != SLUICE_QUARANTINE)
            t->disposition = v;
        return 0;
    case SLUICE_REJECT:
    case SLUICE_TEMPFAIL:
        t->result = v;
        txn_set_default_reply(t, v);
        if (t->phase != SLUICE_PHASE_RCPT)
            t->disposition = v;
        return 1;
    case SLUICE_DISCARD:
        t->result = v;
        t->disposition = v;
        return 1;
    default:
        log_msg(SLUICE_LOG_ERROR, t->id,
                "stage %s returned an invalid verdict %d; applying %s",
                s->name, (int)v, conf_verdict_name(s->common.on_error));
        if (s->stats)
            s->stats->errors++;
        if (s->common.on_error == SLUICE_CONTINUE)
            return 0;
        return txn_apply(t, s, (sluice_verdict)s->common.on_error);
    }
}

/* Walk stages from t->stage_idx until a stage pends or the run ends. */
static void txn_step(sluice_txn *t)
{
    chain *ch = t->ch;

    t->state = TXN_RUNNING;
    for (;;) {
        struct sluice_ctx *s;
        sluice_hook hook;
        sluice_verdict v;

        if (t->stage_idx >= ch->nstages) {
            sluice_phase next;
            if (txn_once_phase(t->phase))
                t->phases_done |= 1 << t->phase;
            if (t->phase == t->target) {
                if (t->result == SLUICE_CONTINUE)
                    t->result = t->disposition;
                txn_finish(t);
                return;
            }
            next = txn_next_phase(t, (int)t->phase + 1);
            if (next == SLUICE_PHASE_COUNT) {
                txn_finish(t);
                return;
            }
            t->phase = next;
            t->stage_idx = 0;
            continue;
        }
        s = ch->stages[t->stage_idx];
        hook = s->desc.on_phase[t->phase];
        if (!s->common.enabled || hook == NULL ||
            ((t->disposition == SLUICE_ACCEPT ||
              t->disposition == SLUICE_QUARANTINE) &&
             !(s->desc.flags & SLUICE_STAGE_FINAL))) {
            t->stage_idx++;
            continue;
        }
        t->cur_stage = s;
        if (t->phase == SLUICE_PHASE_EOM &&
            (s->desc.flags & SLUICE_STAGE_FINAL))
            t->final_ran = 1; /* 1.2: recipients are fixed from here */
        t->in_hook = 1;
        t->early_done = 0;
        ev_now_update(t->w->loop);
        t->stage_t0 = ev_now(t->w->loop);
        if (s->stats)
            s->stats->calls++;
        v = hook(s->inst, t, t->slots[s->index]);
        t->in_hook = 0;
        if (v == SLUICE_PENDING) {
            if (s->desc.on_abort == NULL) {
                log_msg(SLUICE_LOG_ERROR, t->id,
                        "stage %s returned pending but has no on_abort "
                        "hook; applying %s",
                        s->name, conf_verdict_name(s->common.on_error));
                if (s->stats)
                    s->stats->errors++;
                v = (sluice_verdict)s->common.on_error;
            } else if (t->early_done) {
                v = t->early_verdict; /* done() came inside the hook */
            } else {
                t->state = TXN_PENDING;
                ev_timer_set(&t->timer, s->common.timeout, 0.);
                ev_timer_start(t->w->loop, &t->timer);
                return;
            }
        }
        txn_record(t, s, v);
        t->cur_stage = NULL;
        t->stage_idx++;
        if (txn_apply(t, s, v)) {
            txn_finish(t);
            return;
        }
    }
}

void txn_run(sluice_txn *t, sluice_phase phase, sluice_run_cb cb, void *arg)
{
    if (t->state != TXN_IDLE || phase >= SLUICE_PHASE_COUNT ||
        (txn_once_phase(phase) && (t->phases_done & (1 << phase)) &&
         phase != SLUICE_PHASE_CONNECT && phase != SLUICE_PHASE_HELO)) {
        /* a programming error in the ingress; fail safe */
        log_msg(SLUICE_LOG_ERROR, t->id,
                "txn_run(%d) in the wrong state; temp-failing", (int)phase);
        t->result = SLUICE_TEMPFAIL;
        txn_set_default_reply(t, SLUICE_TEMPFAIL);
        t->cb = cb;
        t->cb_arg = arg;
        t->target = SLUICE_PHASE_COUNT;
        if (t->state == TXN_IDLE)
            txn_enqueue(t);
        return;
    }
    t->cb = cb;
    t->cb_arg = arg;
    t->target = phase;
    t->result = SLUICE_CONTINUE;
    t->reply_code[0] = '\0';
    t->reply_xcode[0] = '\0';
    t->phase = txn_next_phase(t, SLUICE_PHASE_CONNECT);
    t->stage_idx = 0;
    if (phase == SLUICE_PHASE_RCPT)
        t->rcpt_cur = (long)t->nrcpts - 1;
    if (t->disposition == SLUICE_DISCARD ||
        t->disposition == SLUICE_REJECT ||
        t->disposition == SLUICE_TEMPFAIL) {
        /* decided in an earlier phase: no stage runs again */
        t->phase = phase;
        t->result = t->disposition;
        if (phase == SLUICE_PHASE_EOM)
            txn_settle(t);
        t->target = SLUICE_PHASE_COUNT;
    }
    txn_enqueue(t); /* the walk starts from the loop */
}

void txn_done(sluice_txn *t, sluice_verdict v)
{
    struct sluice_ctx *s = t->cur_stage;

    if (t->in_hook && !t->early_done) {
        t->early_done = 1;
        t->early_verdict = v;
        return;
    }
    if (t->state != TXN_PENDING || s == NULL) {
        log_msg(SLUICE_LOG_ERROR, t->id,
                "done() called for a message that is not pending "
                "(called twice, or after a timeout); ignored");
        return;
    }
    if (v == SLUICE_PENDING) {
        log_msg(SLUICE_LOG_ERROR, t->id,
                "stage %s called done() with PENDING; applying %s", s->name,
                conf_verdict_name(s->common.on_error));
        v = (sluice_verdict)s->common.on_error;
    }
    ev_timer_stop(t->w->loop, &t->timer);
    txn_record(t, s, v);
    t->cur_stage = NULL;
    t->stage_idx++;
    if (txn_apply(t, s, v)) {
        txn_finish(t);
        return;
    }
    txn_enqueue(t);
}

static void txn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    sluice_txn *t = w->data;
    struct sluice_ctx *s = t->cur_stage;
    sluice_verdict v;

    if (t->state != TXN_PENDING || s == NULL)
        return;
    v = (sluice_verdict)s->common.on_timeout;
    log_msg(SLUICE_LOG_WARN, t->id, "stage %s timed out after %.1fs; %s",
            s->name, s->common.timeout, conf_verdict_name(v));
    if (s->stats)
        s->stats->timeouts++;
    t->state = TXN_RUNNING;
    s->desc.on_abort(s->inst, t, t->slots[s->index]);
    dns_cancel_owner(&t->dns_queries, s); /* what on_abort left running */
    txn_record(t, s, v);
    t->cur_stage = NULL;
    t->stage_idx++;
    if (v == SLUICE_TEMPFAIL && t->reply_code[0] == '\0') {
        snprintf(t->reply_code, sizeof(t->reply_code), "451");
        snprintf(t->reply_xcode, sizeof(t->reply_xcode), "4.4.3");
        free(t->reply_text);
        t->reply_text = util_printf("%s: stage %s timed out", t->id, s->name);
    }
    if (txn_apply(t, s, v)) {
        txn_finish(t);
        return;
    }
    txn_enqueue(t);
}

/* ev_idle: resume queued transactions, or deliver their callbacks. */
void worker_runq_process(worker *w)
{
    sluice_txn *t, *stop = w->runq_tail;

    while ((t = w->runq_head) != NULL) {
        int last = (t == stop);

        w->runq_head = t->runq_next;
        if (w->runq_head == NULL)
            w->runq_tail = NULL;
        t->runq_next = NULL;
        t->state = TXN_IDLE;
        if (t->target == SLUICE_PHASE_COUNT) {
            sluice_run_cb cb = t->cb;
            sluice_verdict v = t->result;
            t->cb = NULL;
            if (cb)
                cb(t, v, t->cb_arg); /* may free t */
        } else {
            txn_step(t);
        }
        if (last)
            break;
    }
    if (w->runq_head == NULL)
        ev_idle_stop(w->loop, &w->runq_idle);
}
