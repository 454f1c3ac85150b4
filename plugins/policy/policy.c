/*
 * policy.c - the `policy` stage: decides what happens to a message from
 * everything the stages before it found, by running the operator's policy
 * script (plang.h: Sieve with sluice's extensions) at end of message.
 *
 * The script is read and compiled once, in init (the master, at load and
 * at every reload): a syntax error fails the load with file:line:column,
 * and the running configuration stays.  With no `script`, the built-in
 * default policy (default.sieve) runs.  Per message, evaluation is pure
 * CPU over bounded facts: it never blocks.
 *
 * Lists: each worker caches the allow/block lists (plist.h) from
 * PostgreSQL through pgpool and polls list_generation every
 * `list_refresh`; a changed generation reloads the whole list.  A database
 * that is down leaves the last copy in use (logged once per outage); until
 * the first load, no message is on any list.
 *
 * Verdicts: keep -> CONTINUE (the final stages deliver), discard,
 * reject (550 5.7.1), tempfail (451 4.7.1), quarantine (QUARANTINE: the
 * final stages store it; the reason goes to set_reply's text).
 *
 * redirect and notify (pact.c, ABI 1.2): redirect changes the envelope
 * with host->rcpt_add/rcpt_del before the final stages run (deliver
 * delivers, quarantine stores, the changed list; an envelope that cannot
 * be changed tempfails the message); notify builds a notification that
 * the engine sends through the final stages (deliver's reinjection)
 * once the message is settled, From `notify_from` (default
 * postmaster@HOSTNAME), envelope sender <>.  A notification never
 * delays or fails the message.
 *
 * SECURITY: message facts are attacker-controlled and only read through the
 * host's bounded accessors; the script and conf.d are the operator's.
 */
#include <sluice/stage.h>

#include "pact.h"
#include "pgpool.h"
#include "plang.h"
#include "plist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char policy_default_script[];

typedef struct policy_conf {
    char *script;
    double tag_score;
    double quarantine_score;
    char **vars;
    char **internal;
    int lists;
    char *database;
    double list_refresh;
    char *notify_from; /* notify: From address; "" postmaster@hostname */
} policy_conf;

typedef struct policy_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    policy_conf *conf;
    plang_script *script;
    /* worker only */
    pgpool *pool;
    sluice_timer *timer;
    pgpool_req *req;
    plist lists;
    int loaded;
    int db_down_logged;
} policy_inst;

static const sluice_directive policy_directives[] = {
    {"script", SLUICE_CONF_STRING, offsetof(policy_conf, script), "", 0, 0,
     NULL, "policy file (Sieve); empty: the built-in default policy"},
    {"tag_score", SLUICE_CONF_DOUBLE, offsetof(policy_conf, tag_score), "5", 0,
     0, NULL, "${tag_score}: the default policy tags from this score"},
    {"quarantine_score", SLUICE_CONF_DOUBLE,
     offsetof(policy_conf, quarantine_score), "12", 0, 0, NULL,
     "${quarantine_score}: the default policy quarantines from this score"},
    {"var", SLUICE_CONF_STRLIST, offsetof(policy_conf, vars), NULL, 0, 0, NULL,
     "name=value: more variables for the script"},
    {"internal_networks", SLUICE_CONF_STRLIST, offsetof(policy_conf, internal),
     "127.0.0.0/8 ::1", 0, 0, NULL,
     "clients in these networks send outbound mail (direction test)"},
    {"lists", SLUICE_CONF_BOOL, offsetof(policy_conf, lists), "yes", 0, 0, NULL,
     "consult the allow/block lists in PostgreSQL"},
    {"database", SLUICE_CONF_STRING, offsetof(policy_conf, database), "", 0, 0,
     NULL, "libpq DSN of the lists; empty: the engine's, else private"},
    {"list_refresh", SLUICE_CONF_DURATION, offsetof(policy_conf, list_refresh),
     "5s", 0, 0, NULL, "how often a worker checks the lists for changes"},
    {"notify_from", SLUICE_CONF_STRING, offsetof(policy_conf, notify_from), "",
     0, 0, NULL,
     "From: address of notify messages; empty: postmaster@HOSTNAME"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

/* Reads the whole script file, bounded by PLANG_MAX_SCRIPT. */
static char *policy_read(const char *path, size_t *len, char *err,
                         size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    char *buf;

    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(PLANG_MAX_SCRIPT + 1);
    if (buf == NULL) {
        fclose(fp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *len = fread(buf, 1, PLANG_MAX_SCRIPT + 1, fp);
    if (ferror(fp) || *len > PLANG_MAX_SCRIPT) {
        snprintf(err, errlen, "%s: %s", path,
                 ferror(fp) ? "read error" : "file too large");
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    buf[*len] = '\0';
    return buf;
}

static int policy_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                       void **inst)
{
    policy_conf *pc = conf;
    policy_inst *pi = calloc(1, sizeof(*pi));
    char err[512], tag[64], quar[64];
    const char *vars[130];
    size_t nv = 0, len;
    char *text = NULL;
    const char *src = "default policy";
    plang_opts opts;

    if (pi == NULL)
        return -1;
    pi->host = host;
    pi->ctx = ctx;
    pi->conf = pc;
    snprintf(tag, sizeof(tag), "tag_score=%g", pc->tag_score);
    snprintf(quar, sizeof(quar), "quarantine_score=%g", pc->quarantine_score);
    vars[nv++] = tag;
    vars[nv++] = quar;
    for (size_t i = 0; pc->vars && pc->vars[i] && nv < 129; i++)
        vars[nv++] = pc->vars[i];
    vars[nv] = NULL;
    opts.vars = vars;
    opts.internal = (const char *const *)pc->internal;
    if (pc->script && *pc->script) {
        src = pc->script;
        if ((text = policy_read(pc->script, &len, err, sizeof(err))) == NULL) {
            host->log(ctx, NULL, SLUICE_LOG_ERROR, "%s", err);
            free(pi);
            return -1;
        }
        pi->script = plang_compile(text, len, &opts, err, sizeof(err));
        free(text);
    } else {
        pi->script =
            plang_compile(policy_default_script, strlen(policy_default_script),
                          &opts, err, sizeof(err));
    }
    if (pi->script == NULL) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR, "%s:%s", src, err);
        free(pi);
        return -1;
    }
    host->log(ctx, NULL, SLUICE_LOG_INFO, "%s compiled", src);
    *inst = pi;
    return 0;
}

/* ---------------------------------------------------------------- lists */

static void policy_lists_poll(policy_inst *pi);

static void policy_db_failed(policy_inst *pi, const pgpool_res *res)
{
    if (!pi->db_down_logged)
        pi->host->log(pi->ctx, NULL, SLUICE_LOG_WARN,
                      "lists: database unavailable (%s); keeping the %s",
                      pgpool_res_error(res),
                      pi->loaded ? "last copy" : "lists empty");
    pi->db_down_logged = 1;
}

static void policy_lists_loaded(pgpool_req *req, const pgpool_res *res,
                                void *arg)
{
    policy_inst *pi = arg;
    plist nl;
    int rows;

    (void)req;
    pi->req = NULL;
    if (!pgpool_res_ok(res)) {
        policy_db_failed(pi, res);
        return;
    }
    memset(&nl, 0, sizeof(nl));
    nl.generation = atoll(pgpool_res_value(res, 0, 0, 0));
    rows = pgpool_res_rows(res, 1);
    for (int r = 0; r < rows; r++) {
        if (plist_add(
                &nl, pgpool_res_value(res, 1, r, 0),
                pgpool_res_value(res, 1, r, 1), pgpool_res_value(res, 1, r, 2),
                pgpool_res_value(res, 1, r, 3), pgpool_res_value(res, 1, r, 4),
                pgpool_res_value(res, 1, r, 5)[0] == 't',
                pgpool_res_value(res, 1, r, 6)) < 0)
            pi->host->log(pi->ctx, NULL, SLUICE_LOG_WARN,
                          "lists: entry %s skipped (bad or out of memory)",
                          pgpool_res_value(res, 1, r, 7));
    }
    plist_free(&pi->lists);
    pi->lists = nl;
    pi->loaded = 1;
    pi->db_down_logged = 0;
    pi->host->counter_add(pi->ctx, "list_loads", 1);
    pi->host->log(pi->ctx, NULL, SLUICE_LOG_INFO,
                  "lists: %zu entries loaded (generation %lld)", nl.n,
                  nl.generation);
}

/* Both statements in one transaction: the generation read goes with the
 * entries it describes. */
static const pgpool_stmt policy_load_stmts[] = {
    {NULL, "SELECT generation FROM list_generation", 0, NULL, NULL, NULL},
    {NULL,
     "SELECT kind, scope, owner, coalesce(sender_addr, ''), "
     "coalesce(sender_domain, ''), subdomains, "
     "coalesce(client_net::text, ''), id FROM list_entry",
     0, NULL, NULL, NULL}};

static void policy_gen_checked(pgpool_req *req, const pgpool_res *res,
                               void *arg)
{
    policy_inst *pi = arg;
    long long gen;

    (void)req;
    pi->req = NULL;
    if (!pgpool_res_ok(res) || pgpool_res_rows(res, 0) < 1) {
        policy_db_failed(pi, res);
        return;
    }
    if (pi->db_down_logged)
        pi->host->log(pi->ctx, NULL, SLUICE_LOG_INFO,
                      "lists: database reachable again");
    pi->db_down_logged = 0;
    gen = atoll(pgpool_res_value(res, 0, 0, 0));
    if (pi->loaded && gen == pi->lists.generation)
        return;
    pi->req = pgpool_submit(pi->pool, policy_load_stmts, 2, PGPOOL_TXN,
                            policy_lists_loaded, pi);
}

static void policy_lists_poll(policy_inst *pi)
{
    if (pi->req != NULL) /* the last poll is still running */
        return;
    pi->req = pgpool_query(pi->pool, "SELECT generation FROM list_generation",
                           0, NULL, policy_gen_checked, pi);
}

static void policy_tick(sluice_timer *t, void *arg)
{
    policy_inst *pi = arg;

    policy_lists_poll(pi);
    /* a zero interval would poll in a loop: 100 ms is the floor */
    pi->host->timer_start(
        t, pi->conf->list_refresh > 0.1 ? pi->conf->list_refresh : 0.1);
}

static int policy_worker_start(void *inst)
{
    policy_inst *pi = inst;
    const sluice_host *h = pi->host;
    pgpool_conf pc;
    char dsn[1024], err[256];

    if (!pi->conf->lists)
        return 0;
    memset(&pc, 0, sizeof(pc));
    /* its own `database`, else the engine's, else the private one */
    if (pgpool_stage_dsn(h, pi->ctx, pi->conf->database, dsn, sizeof(dsn)) <
        0) {
        h->log(pi->ctx, NULL, SLUICE_LOG_ERROR,
               "lists: database DSN or state_dir too long");
        return -1;
    }
    pc.dsn = dsn;
    pc.max_conns = 1;
    pc.query_timeout = 5;
    pc.app_name = "sluice-policy";
    if ((pi->pool = pgpool_new(h, pi->ctx, &pc, err, sizeof(err))) == NULL) {
        h->log(pi->ctx, NULL, SLUICE_LOG_ERROR, "lists: %s", err);
        return -1;
    }
    if ((pi->timer = h->timer_new(pi->ctx, policy_tick, pi)) == NULL)
        return -1;
    h->timer_start(pi->timer, 0.01); /* first load at once, from the loop */
    return 0;
}

static void policy_worker_stop(void *inst, int graceful)
{
    policy_inst *pi = inst;

    (void)graceful;
    if (pi->timer) {
        pi->host->timer_stop(pi->timer);
        pi->host->timer_free(pi->timer);
        pi->timer = NULL;
    }
    if (pi->pool) {
        pgpool_free(pi->pool); /* cancels pi->req without its callback */
        pi->pool = NULL;
        pi->req = NULL;
    }
}

static void policy_fini(void *inst)
{
    policy_inst *pi = inst;

    policy_worker_stop(pi, 0);
    plist_free(&pi->lists);
    plang_free(pi->script);
    free(pi);
}

/* ---------------------------------------------------------------- facts */

typedef struct policy_msg {
    policy_inst *pi;
    sluice_txn *txn;
} policy_msg;

static const char *policy_fact_header(void *arg, const char *name, size_t nth)
{
    policy_msg *m = arg;
    const sluice_header *h = m->pi->host->header_find(m->txn, name, nth);

    return h ? h->value : NULL;
}

static const char *policy_fact_rcpt(void *arg, size_t i)
{
    policy_msg *m = arg;
    const sluice_addr *a = m->pi->host->rcpt(m->txn, i);

    return a ? a->addr : NULL;
}

static const char *policy_fact_symbol(void *arg, size_t i, double *score)
{
    policy_msg *m = arg;
    const char *reason;

    return m->pi->host->symbol(m->txn, i, score, &reason);
}

static int policy_fact_listed(void *arg, const char *kind)
{
    policy_msg *m = arg;
    const sluice_host *h = m->pi->host;
    const char *rcpts[64];
    size_t n = h->rcpt_count(m->txn), k = 0;

    if (n > sizeof(rcpts) / sizeof(rcpts[0])) /* too many to all agree */
        n = 0;
    for (size_t i = 0; i < n; i++) {
        const sluice_addr *a = h->rcpt(m->txn, i);
        if (a)
            rcpts[k++] = a->addr;
    }
    return plist_match(&m->pi->lists, strcmp(kind, "block") == 0,
                       h->sender(m->txn)->addr, h->client(m->txn)->addr, rcpts,
                       k);
}

/* ---------------------------------------------------------------- actions */

/* tagsubject: PREFIX + " " + the subject as written (encoded words stay
 * encoded), unless it already starts with the prefix. */
static void policy_tag_subject(policy_inst *pi, sluice_txn *txn,
                               const char *prefix)
{
    const sluice_host *h = pi->host;
    const sluice_header *s = h->header_find(txn, "Subject", 0);
    char *v;
    size_t plen = strlen(prefix), o = 0;

    if (s == NULL) {
        h->header_add(txn, "Subject", prefix);
        return;
    }
    if (strncmp(s->value, prefix, plen) == 0)
        return;
    if ((v = malloc(plen + 1 + s->raw.len + 1)) == NULL)
        return;
    memcpy(v, prefix, plen);
    o = plen;
    v[o++] = ' ';
    for (size_t i = 0; i < s->raw.len; i++) { /* unfold */
        char c = s->raw.ptr[i];
        if (c == '\r' || c == '\n' ||
            (o == plen + 1 && (c == ' ' || c == '\t')))
            continue;
        v[o++] = c;
    }
    v[o] = '\0';
    if (h->header_change(txn, "Subject", 0, v) < 0)
        h->log(pi->ctx, txn, SLUICE_LOG_WARN, "could not tag the subject");
    free(v);
}

static void policy_apply_edits(policy_inst *pi, sluice_txn *txn,
                               const plang_result *r)
{
    const sluice_host *h = pi->host;

    for (size_t i = 0; i < r->nedits; i++) {
        const plang_edit *e = &r->edits[i];
        int rc = 0;
        switch (e->op) {
        case PLANG_EDIT_INSERT:
            rc = h->header_insert(txn, 0, e->name, e->value);
            break;
        case PLANG_EDIT_ADD:
            rc = h->header_add(txn, e->name, e->value);
            break;
        case PLANG_EDIT_DELETE:
            rc = h->header_change(txn, e->name, e->nth, NULL);
            break;
        case PLANG_EDIT_SUBJECT:
            policy_tag_subject(pi, txn, e->value);
            break;
        }
        if (rc < 0)
            h->log(pi->ctx, txn, SLUICE_LOG_WARN,
                   "header edit on %s refused (invalid name or value)",
                   e->name);
    }
}

/* Counters for the Manager's dashboard: "spam" (score at or above
 * tag_score) and "sym.NAME" per symbol the message carries (the engine
 * keeps STATS_MAX_COUNTERS names per stage: past that, new names are not
 * counted). */
static void policy_count(policy_inst *pi, sluice_txn *txn,
                         const plang_facts *f)
{
    const sluice_host *h = pi->host;
    char name[64];

    if (f->score >= pi->conf->tag_score)
        h->counter_add(pi->ctx, "spam", 1);
    for (size_t i = 0; i < f->nsym; i++) {
        double sc;
        const char *reason, *sym = h->symbol(txn, i, &sc, &reason);
        if (sym == NULL)
            continue;
        snprintf(name, sizeof(name), "sym.%s", sym);
        h->counter_add(pi->ctx, name, 1);
    }
}

static sluice_verdict policy_eom(void *inst, sluice_txn *txn, void *slot)
{
    policy_inst *pi = inst;
    const sluice_host *h = pi->host;
    policy_msg m = {pi, txn};
    plang_facts f;
    plang_result r;
    sluice_str raw;
    sluice_verdict v = SLUICE_CONTINUE;

    (void)slot;
    memset(&f, 0, sizeof(f));
    f.arg = &m;
    f.header = policy_fact_header;
    f.sender = h->sender(txn)->addr;
    f.nrcpt = h->rcpt_count(txn);
    f.rcpt = policy_fact_rcpt;
    f.client_addr = h->client(txn)->addr;
    f.score = h->score(txn);
    f.nsym = h->symbol_count(txn);
    f.symbol = policy_fact_symbol;
    f.size = h->message(txn, &raw) == 0 ? raw.len : 0;
    f.listed = pi->conf->lists ? policy_fact_listed : NULL;
    if (plang_eval(pi->script, &f, &r) < 0) {
        plang_result_free(&r);
        h->log(pi->ctx, txn, SLUICE_LOG_ERROR, "out of memory");
        h->set_reply(txn, "451", "4.3.0", "policy evaluation failed");
        return SLUICE_TEMPFAIL;
    }
    for (size_t i = 0; i < r.ntrace; i++)
        h->log(pi->ctx, txn, SLUICE_LOG_DEBUG, "fired: %s", r.trace[i]);
    if (r.error[0])
        h->log(pi->ctx, txn, SLUICE_LOG_WARN,
               "run-time error in the script (%s): implicit keep", r.error);
    switch (r.action) {
    case PLANG_KEEP:
    case PLANG_REDIRECT:
        policy_apply_edits(pi, txn, &r);
        break;
    case PLANG_QUARANTINE:
        policy_apply_edits(pi, txn, &r);
        h->set_reply(txn, NULL, NULL,
                     r.text[0] ? r.text : "quarantined by policy");
        v = SLUICE_QUARANTINE;
        break;
    case PLANG_DISCARD:
        v = SLUICE_DISCARD;
        break;
    case PLANG_REJECT:
        h->set_reply(txn, "550", "5.7.1",
                     r.text[0] ? r.text : "rejected by policy");
        v = SLUICE_REJECT;
        break;
    case PLANG_TEMPFAIL:
        h->set_reply(txn, "451", "4.7.1",
                     r.text[0] ? r.text : "try again later");
        v = SLUICE_TEMPFAIL;
        break;
    }
    /* redirect (ABI 1.2): the envelope, before the final stages run */
    if ((v == SLUICE_CONTINUE || v == SLUICE_QUARANTINE) &&
        pact_redirect(h, pi->ctx, txn, &r) < 0) {
        h->set_reply(txn, "451", "4.3.0", "policy redirect not possible");
        v = SLUICE_TEMPFAIL;
    }
    pact_notify(h, pi->ctx, txn, &r, pi->conf->notify_from,
                plang_action_name(r.action));
    h->log(pi->ctx, txn, SLUICE_LOG_INFO, "action %s%s%s (score %.2f)",
           plang_action_name(r.action), r.text[0] ? ": " : "", r.text, f.score);
    h->counter_add(pi->ctx, plang_action_name(r.action), 1);
    policy_count(pi, txn, &f);
    plang_result_free(&r);
    return v;
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "policy",
    .version = "1.0",
    .description = "decide the action: Sieve policy script, allow/block lists",
    .flags = SLUICE_STAGE_ADD_HEADERS | SLUICE_STAGE_CHG_HEADERS |
             SLUICE_STAGE_CHG_RCPTS | SLUICE_STAGE_SEND_MAIL,
    .directives = policy_directives,
    .conf_size = sizeof(policy_conf),
    .init = policy_init,
    .worker_start = policy_worker_start,
    .worker_stop = policy_worker_stop,
    .fini = policy_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = policy_eom},
};
