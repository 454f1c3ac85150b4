/*
 * envelope.c - ABI 1.2 on the engine side: envelope recipients that
 * stages change at end of message (rcpt_add, rcpt_del, the net changes
 * an ingress replays), the outcome each of the ingress's own recipients
 * answers once the EOM run has settled, and new messages (notifications)
 * that stages ask the engine to send.
 *
 * Two lists.  txn->rcpts are the ingress's recipients, the ones it must
 * answer for (the MTA's).  The first change copies them into
 * txn->ercpts, each entry remembering which of the ingress's it is
 * (`orig`, -1 for an added one); until the EOM run ends the host's
 * rcpt functions show that edited list, so every later stage, the final
 * ones included, sees, delivers and stores the changed envelope.  At
 * settle, envelope_settle() derives the ingress's outcomes: a kept
 * recipient answers for its own delivery, but is deferred while any
 * added recipient is deferred (the MTA retries: a duplicate beats a
 * loss); a removed one answers for the added ones (all refused:
 * refused; none added: done, as a deliberate drop).
 *
 * Messages sent by stages wait on the transaction's outbox until it is
 * settled, and go only if not every recipient was deferred (otherwise
 * the MTA brings the message back and the stage asks again: no
 * duplicate notification per retry).  Each becomes a transaction of
 * its own, disposition ACCEPT from the start, so only the final stages
 * (deliver: the reinjection path) run; its outcome is logged with both
 * ids and never touches the message that caused it.
 *
 * Diagnostics: every refusal (undeclared, wrong phase, after a final
 * stage, an ingress older than 1.2, a bad address) returns -1 and logs a
 * warning with the stage and message id.
 *
 * SECURITY: addresses come from stages (possibly from message content
 * through a policy script): control characters, spaces and <> are
 * refused, lengths bounded, recipients capped, so nothing can smuggle
 * an SMTP command line or a header line.
 */
#include "engine.h"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENV_MAX_RCPTS 1000    /* edited list */
#define ENV_MAX_SEND_RCPTS 16 /* recipients of one sent message */
#define ENV_MAX_OUTBOX 32     /* messages queued by one transaction */
#define ENV_MAX_ADDR 254

txn_rcpt *envelope_view(sluice_txn *t, size_t *n)
{
    if (t->rcpts_edited && !t->eom_done) {
        *n = t->nercpts;
        return t->ercpts;
    }
    *n = t->nrcpts;
    return t->rcpts;
}

static const char *env_stage_name(sluice_txn *t)
{
    struct sluice_ctx *s = t->cur_stage ? t->cur_stage : t->ingress;

    return s ? s->name : "?";
}

static int env_addr_ok(const char *a)
{
    size_t n = a ? strlen(a) : 0;

    if (n == 0 || n > ENV_MAX_ADDR)
        return 0;
    for (; *a; a++) {
        unsigned char c = (unsigned char)*a;
        if (c <= 32 || c == 127 || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

static int env_params_ok(const char *p)
{
    if (strlen(p) > 500)
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p == 127)
            return 0;
    return 1;
}

/* May the running stage change recipients now?  Logs why not. */
static int env_may_change(sluice_txn *t, const char *what)
{
    struct sluice_ctx *s = t->cur_stage;
    const char *why = NULL;
    char tmp[160];

    if (s == NULL || !(s->desc.flags & SLUICE_STAGE_CHG_RCPTS))
        why = "without declaring SLUICE_STAGE_CHG_RCPTS";
    else if (t->phase != SLUICE_PHASE_EOM || t->eom_done)
        why = "outside the end-of-message phase";
    else if (t->final_ran || (s->desc.flags & SLUICE_STAGE_FINAL))
        why = "after a final stage took the message";
    else if (t->ingress != NULL && t->ingress->desc.abi_minor < 2) {
        /* (no ingress: the engine's own scanner, which delivers nothing) */
        snprintf(tmp, sizeof(tmp),
                 "but the ingress %s is built for ABI %d.%d and cannot "
                 "honour recipient changes",
                 t->ingress->name, (int)t->ingress->desc.abi_major,
                 (int)t->ingress->desc.abi_minor);
        why = tmp;
    }
    if (why == NULL)
        return 1;
    log_msg(SLUICE_LOG_WARN, t->id, "stage %s tried to %s %s; refused",
            s ? s->name : "?", what, why);
    return 0;
}

static void env_rcpt_free(txn_rcpt *r)
{
    free((char *)r->a.addr);
    free((char *)r->a.params);
    free(r->reply);
}

static void env_copy(txn_rcpt *d, const txn_rcpt *s, long orig)
{
    memset(d, 0, sizeof(*d));
    d->a.size = sizeof(d->a);
    d->a.addr = util_strdup(s->a.addr);
    d->a.params = util_strdup(s->a.params ? s->a.params : "");
    d->state = s->state;
    d->reply = s->reply ? util_strdup(s->reply) : NULL;
    d->orig = orig;
}

/* The first change: the edited list starts as the ingress's. */
static void env_snapshot(sluice_txn *t)
{
    size_t i;
    int all_done = t->nrcpts > 0;

    if (t->rcpts_edited)
        return;
    t->ercpts = util_calloc(t->nrcpts ? t->nrcpts : 1, sizeof(*t->ercpts));
    for (i = 0; i < t->nrcpts; i++) {
        env_copy(&t->ercpts[i], &t->rcpts[i], (long)i);
        if (t->rcpts[i].state != SLUICE_RCPT_DONE)
            all_done = 0;
    }
    t->nercpts = t->nrcpts;
    t->added_done = all_done;
    t->rcpts_edited = 1;
    t->changes_dirty = 1;
}

static long env_find(const txn_rcpt *l, size_t n, const char *addr)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcasecmp(l[i].a.addr, addr) == 0)
            return (long)i;
    return -1;
}

int envelope_rcpt_add(sluice_txn *t, const char *addr, const char *params)
{
    txn_rcpt *r;
    long orig;

    if (!env_may_change(t, "add a recipient"))
        return -1;
    if (!env_addr_ok(addr) || (params && !env_params_ok(params))) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "stage %s: invalid recipient address or parameters; refused",
                env_stage_name(t));
        return -1;
    }
    env_snapshot(t);
    if (env_find(t->ercpts, t->nercpts, addr) >= 0)
        return 0; /* a recipient already: never twice */
    if (t->nercpts >= ENV_MAX_RCPTS) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "stage %s: more than %d recipients; <%s> refused",
                env_stage_name(t), ENV_MAX_RCPTS, addr);
        return -1;
    }
    t->ercpts = util_realloc(t->ercpts, (t->nercpts + 1) * sizeof(*t->ercpts));
    r = &t->ercpts[t->nercpts++];
    orig = env_find(t->rcpts, t->nrcpts, addr);
    if (orig >= 0) { /* one of the ingress's, removed before: itself again */
        env_copy(r, &t->rcpts[orig], orig);
    } else {
        memset(r, 0, sizeof(*r));
        r->a.size = sizeof(r->a);
        r->a.addr = util_strdup(addr);
        r->a.params = util_strdup(params ? params : "");
        r->orig = -1;
        if (t->added_done) { /* the MTA delivers, after the replay */
            r->state = SLUICE_RCPT_DONE;
            r->reply = util_strdup("250 2.0.0 Ok: added; the MTA delivers");
        }
    }
    t->changes_dirty = 1;
    log_msg(SLUICE_LOG_INFO, t->id, "stage %s added recipient <%s>",
            env_stage_name(t), addr);
    return 0;
}

int envelope_rcpt_del(sluice_txn *t, const char *addr)
{
    long i;

    if (!env_may_change(t, "remove a recipient"))
        return -1;
    if (addr == NULL)
        return -1;
    env_snapshot(t);
    if ((i = env_find(t->ercpts, t->nercpts, addr)) < 0) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "stage %s: no recipient <%.300s> to remove", env_stage_name(t),
                addr);
        return -1;
    }
    log_msg(SLUICE_LOG_INFO, t->id, "stage %s removed recipient <%s>",
            env_stage_name(t), t->ercpts[i].a.addr);
    env_rcpt_free(&t->ercpts[i]);
    memmove(&t->ercpts[i], &t->ercpts[i + 1],
            (t->nercpts - (size_t)i - 1) * sizeof(*t->ercpts));
    t->nercpts--;
    t->changes_dirty = 1;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Net changes, for the ingress's replay                             */

static int env_kept(const sluice_txn *t, size_t k)
{
    size_t i;

    for (i = 0; i < t->nercpts; i++)
        if (t->ercpts[i].orig == (long)k)
            return 1;
    return 0;
}

static void env_changes_build(sluice_txn *t)
{
    size_t i;

    if (!t->changes_dirty)
        return;
    t->changes_dirty = 0;
    free(t->changes);
    t->changes = NULL;
    t->nchanges = 0;
    if (!t->rcpts_edited)
        return;
    t->changes = util_calloc(t->nrcpts + t->nercpts + 1, sizeof(*t->changes));
    for (i = 0; i < t->nrcpts; i++) {
        if (env_kept(t, i))
            continue;
        t->changes[t->nchanges++] =
            (sluice_rcpt_change){sizeof(sluice_rcpt_change), SLUICE_RCPT_DEL,
                                 t->rcpts[i].a.addr, t->rcpts[i].a.params};
    }
    for (i = 0; i < t->nercpts; i++) {
        if (t->ercpts[i].orig >= 0)
            continue;
        t->changes[t->nchanges++] =
            (sluice_rcpt_change){sizeof(sluice_rcpt_change), SLUICE_RCPT_ADD,
                                 t->ercpts[i].a.addr, t->ercpts[i].a.params};
    }
}

size_t envelope_change_count(sluice_txn *t)
{
    env_changes_build(t);
    return t->nchanges;
}

const sluice_rcpt_change *envelope_change(sluice_txn *t, size_t i)
{
    env_changes_build(t);
    return i < t->nchanges ? &t->changes[i] : NULL;
}

/* ---------------------------------------------------------------- */
/* Settle: the ingress's outcomes                                    */

/* "451 4.4.1 text" for an added recipient: "451 4.4.1 <addr>: text". */
static char *env_annotate(const char *reply, const char *addr,
                          sluice_rcpt_state st)
{
    const char *p = reply ? reply : "", *rest;
    char code[4], xcode[16] = "";
    size_t n;

    if (strlen(p) >= 3 && isdigit((unsigned char)p[0]) &&
        isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2])) {
        memcpy(code, p, 3);
        p += 3;
    } else {
        snprintf(code, sizeof(code), "%s",
                 st == SLUICE_RCPT_DONE       ? "250"
                 : st == SLUICE_RCPT_REJECTED ? "550"
                                              : "451");
    }
    code[3] = '\0';
    while (*p == ' ' || *p == '-')
        p++;
    rest = p;
    if (isdigit((unsigned char)p[0]) && p[1] == '.') {
        n = strcspn(p, " ");
        if (n < sizeof(xcode)) {
            memcpy(xcode, p, n);
            xcode[n] = '\0';
            rest = p + n;
            while (*rest == ' ')
                rest++;
        }
    }
    return util_printf("%s%s%s <%s>: %.400s", code, xcode[0] ? " " : "", xcode,
                       addr, rest);
}

static void env_set(txn_rcpt *r, sluice_rcpt_state st, char *reply)
{
    r->state = st;
    free(r->reply);
    r->reply = reply;
}

void envelope_settle(sluice_txn *t)
{
    size_t k, i;

    if (!t->rcpts_edited)
        return;
    for (k = 0; k < t->nrcpts; k++) {
        txn_rcpt *own = NULL, *pend = NULL, *done = NULL, *rej = NULL;
        size_t nadded = 0;

        for (i = 0; i < t->nercpts; i++) {
            txn_rcpt *e = &t->ercpts[i];
            if (e->orig == (long)k) {
                own = e;
                continue;
            }
            if (e->orig >= 0)
                continue;
            nadded++;
            if (e->state == SLUICE_RCPT_DONE)
                done = done ? done : e;
            else if (e->state == SLUICE_RCPT_REJECTED)
                rej = rej ? rej : e;
            else
                pend = pend ? pend : e;
        }
        if (own && own->state != SLUICE_RCPT_DONE &&
            own->state != SLUICE_RCPT_REJECTED) {
            env_set(
                &t->rcpts[k], SLUICE_RCPT_TEMPFAIL,
                util_strdup(own->reply ? own->reply : "451 4.3.0 Deferred"));
        } else if (pend) {
            env_set(
                &t->rcpts[k], SLUICE_RCPT_TEMPFAIL,
                env_annotate(pend->reply, pend->a.addr, SLUICE_RCPT_TEMPFAIL));
        } else if (own) {
            env_set(&t->rcpts[k], own->state,
                    own->reply ? util_strdup(own->reply) : NULL);
        } else if (nadded == 0) {
            env_set(&t->rcpts[k], SLUICE_RCPT_DONE,
                    util_printf("250 2.0.0 Ok: %s: recipient removed by the "
                                "filter",
                                t->id));
        } else if (done) {
            env_set(&t->rcpts[k], SLUICE_RCPT_DONE,
                    env_annotate(done->reply, done->a.addr, done->state));
        } else {
            env_set(&t->rcpts[k], SLUICE_RCPT_REJECTED,
                    env_annotate(rej->reply, rej->a.addr, rej->state));
        }
        if (rej && t->rcpts[k].state == SLUICE_RCPT_DONE)
            log_msg(SLUICE_LOG_WARN, t->id,
                    "added recipient <%s> refused (%s); <%s> is answered "
                    "done: it was delivered otherwise",
                    rej->a.addr, rej->reply ? rej->reply : "-",
                    t->rcpts[k].a.addr);
    }
}

void envelope_summary(sluice_txn *t, buf *b)
{
    static const char *const rs[] = {"open", "done", "tempfail", "rejected"};
    size_t i, n = 0;

    if (!t->rcpts_edited)
        return;
    buf_adds(b, " envelope=");
    for (i = 0; i < t->nrcpts; i++)
        if (!env_kept(t, i))
            buf_printf(b, "%s-<%s>", n++ ? "," : "", t->rcpts[i].a.addr);
    for (i = 0; i < t->nercpts; i++)
        if (t->ercpts[i].orig < 0)
            buf_printf(b, "%s+<%s>:%s", n++ ? "," : "", t->ercpts[i].a.addr,
                       rs[t->ercpts[i].state]);
    if (n == 0)
        buf_adds(b, "unchanged");
}

/* ---------------------------------------------------------------- */
/* Messages sent by stages                                           */

static void env_outmsg_free(txn_outmsg *o)
{
    size_t i;

    for (i = 0; i < o->nrcpts; i++)
        free(o->rcpts[i]);
    free(o->rcpts);
    free(o->sender);
    free(o->stage);
    buf_free(&o->msg);
    free(o);
}

static int env_has_delivery(const chain *ch)
{
    size_t i;

    for (i = 0; i < ch->nstages; i++) {
        const struct sluice_ctx *s = ch->stages[i];
        if (s->common.enabled && (s->desc.flags & SLUICE_STAGE_FINAL) &&
            s->desc.on_phase[SLUICE_PHASE_EOM] != NULL)
            return 1;
    }
    return 0;
}

int envelope_send(sluice_txn *t, const char *sender, const char *const *rcpts,
                  size_t nrcpts, const void *msg, size_t len)
{
    struct sluice_ctx *s = t->cur_stage ? t->cur_stage : t->ingress;
    const char *why = NULL;
    txn_outmsg *o, **pp;
    size_t i, queued = 0;

    for (o = t->outbox; o; o = o->next)
        queued++;
    if (s == NULL || !(s->desc.flags & SLUICE_STAGE_SEND_MAIL))
        why = "without declaring SLUICE_STAGE_SEND_MAIL";
    else if (t->eom_done)
        why = "after the message was settled";
    else if (sender == NULL || (sender[0] != '\0' && !env_addr_ok(sender)))
        why = "with an invalid sender";
    else if (rcpts == NULL || nrcpts == 0 || nrcpts > ENV_MAX_SEND_RCPTS)
        why = "without recipients, or with too many";
    else if (msg == NULL || len == 0 || len > t->ch->ec.max_message_size)
        why = "with an empty or oversized message";
    else if (queued >= ENV_MAX_OUTBOX)
        why = "beyond the messages one message may cause";
    else if (!env_has_delivery(t->ch))
        why = "but no delivery stage is enabled";
    for (i = 0; why == NULL && i < nrcpts; i++)
        if (!env_addr_ok(rcpts[i]))
            why = "with an invalid recipient";
    if (why) { /* the scanner (no ingress) delivers nothing by design */
        log_msg(t->ingress ? SLUICE_LOG_WARN : SLUICE_LOG_INFO, t->id,
                "stage %s tried to send a message %s; not sent",
                s ? s->name : "?", why);
        return -1;
    }
    o = util_calloc(1, sizeof(*o));
    o->sender = util_strdup(sender);
    o->rcpts = util_calloc(nrcpts, sizeof(char *));
    for (i = 0; i < nrcpts; i++)
        o->rcpts[i] = util_strdup(rcpts[i]);
    o->nrcpts = nrcpts;
    o->stage = util_strdup(s->name);
    buf_init(&o->msg);
    buf_add(&o->msg, msg, len);
    for (pp = &t->outbox; *pp; pp = &(*pp)->next)
        ;
    *pp = o;
    log_msg(SLUICE_LOG_DEBUG, t->id,
            "stage %s queued a message to <%s>%s (%zu bytes)", s->name,
            rcpts[0], nrcpts > 1 ? " and others" : "", len);
    return 0;
}

typedef struct env_sent {
    char parent[32];
    char stage[64];
} env_sent;

/* The sent message's own EOM run is over: log each recipient. */
static void env_sent_done(sluice_txn *n, sluice_verdict v, void *arg)
{
    env_sent *es = arg;
    size_t i;

    (void)v;
    for (i = 0; i < n->nrcpts; i++) {
        const txn_rcpt *r = &n->rcpts[i];
        int ok = r->state == SLUICE_RCPT_DONE;
        log_msg(ok ? SLUICE_LOG_INFO : SLUICE_LOG_WARN, es->parent,
                "message from stage %s (sent as %s) to <%s> %s: %s", es->stage,
                n->id, r->a.addr, ok ? "handed on" : "NOT handed on",
                r->reply ? r->reply : "-");
    }
    free(es);
    txn_free(n);
}

static void env_inject(sluice_txn *t, txn_outmsg *o)
{
    sluice_txn *n = txn_new(t->w, t->ingress);
    env_sent *es = util_calloc(1, sizeof(*es));
    size_t i;

    snprintf(es->parent, sizeof(es->parent), "%s", t->id);
    snprintf(es->stage, sizeof(es->stage), "%s", o->stage);
    n->disposition = SLUICE_ACCEPT; /* only the final stages run */
    host_table.txn_set_sender(n, o->sender, "");
    for (i = 0; i < o->nrcpts; i++)
        host_table.txn_add_rcpt(n, o->rcpts[i], "");
    if (host_table.txn_write(n, o->msg.data, o->msg.len) < 0) {
        log_msg(SLUICE_LOG_WARN, t->id,
                "message from stage %s not sent: too large", o->stage);
        free(es);
        txn_free(n);
        return;
    }
    log_msg(SLUICE_LOG_INFO, t->id,
            "message from stage %s to <%s>%s goes out as %s", o->stage,
            o->rcpts[0], o->nrcpts > 1 ? " and others" : "", n->id);
    txn_run(n, SLUICE_PHASE_EOM, env_sent_done, es);
}

void envelope_flush(sluice_txn *t)
{
    txn_outmsg *o;
    size_t i, deferred = 0, n = 0;

    if (t->outbox == NULL)
        return;
    for (i = 0; i < t->nrcpts; i++)
        if (t->rcpts[i].state != SLUICE_RCPT_DONE &&
            t->rcpts[i].state != SLUICE_RCPT_REJECTED)
            deferred++;
    for (o = t->outbox; o; o = o->next)
        n++;
    if (deferred == t->nrcpts) {
        log_msg(SLUICE_LOG_INFO, t->id,
                "%zu message(s) from stage %s not sent: the message was "
                "deferred (they go when the MTA retries it)",
                n, t->outbox->stage);
    } else if (t->w == NULL || t->w->loop == NULL) {
        log_msg(SLUICE_LOG_WARN, t->id, "%zu message(s) not sent: no loop", n);
    } else {
        for (o = t->outbox; o; o = o->next)
            env_inject(t, o);
    }
    while ((o = t->outbox) != NULL) {
        t->outbox = o->next;
        env_outmsg_free(o);
    }
}

void envelope_free(sluice_txn *t)
{
    size_t i;
    txn_outmsg *o;

    for (i = 0; i < t->nercpts; i++)
        env_rcpt_free(&t->ercpts[i]);
    free(t->ercpts);
    t->ercpts = NULL;
    t->nercpts = 0;
    free(t->changes);
    t->changes = NULL;
    while ((o = t->outbox) != NULL) {
        t->outbox = o->next;
        env_outmsg_free(o);
    }
}
