/*
 * api_quarantine.c - the quarantine (tables quarantine_message, _rcpt,
 * _symbol):
 *
 *   GET  /api/quarantine?recipient=&sender=&subject=&from=&to=&min_score=
 *        &max_score=&status=&limit=&offset=   (filters: mgr_qfilter.h)
 *        -> {"total","items":[item]}
 *   GET  /api/quarantine/:id -> item + "headers":[[name,value]], "text",
 *        "text_truncated", "attachments" (mgr_text.h: never HTML)
 *   POST /api/quarantine/:id/release {"recipients"?:[...]}
 *        -> {"ok":true,"released":[...],"refused":[]}
 *   POST /api/quarantine/:id/delete -> {"ok":true,"deleted":n}
 *   POST /api/quarantine/:id/allow-release: a site allow-list entry for
 *        the envelope sender, then release -> release's answer + "allow_id"
 *   POST /api/quarantine/bulk {"action","ids":[...]} (<= API_Q_MAX_BULK)
 *        -> {"results":[{"id","ok","error"?}]}
 *
 * item: {"id","msg_id","received","sender","from","recipients":[addr],
 * "rcpt_status":[{"rcpt","status"}],"subject","score","probability"
 * (X-Sluice-Probability / 100, or null),"size","status" (quarantined if
 * any recipient still is, else released, delivered or deleted),
 * "symbols":[{"name","score","reason"}],"reason","client_addr"}
 *
 * Release is sluicectl's own code, sluicectl_release() (tools/
 * sluicectl_release.c), on the Manager's database connection: it
 * reinjects over SMTP to the deliver stage's next_hop (from conf.d) and
 * marks a recipient released only after the MTA accepted it, the message
 * row locked meanwhile; a bulk release goes through one SMTP session.
 * It is synchronous: the Manager's loop waits for the MTA, each reply
 * bounded by API_Q_RELEASE_TIMEOUT seconds (a local MTA answers in
 * milliseconds).  status_by reads "manager:USER".  Errors: 404 no such
 * message, 409 nothing left to release, 502 the MTA refused or is down
 * (some or all: "released" and "refused" say which), 500 delivered but
 * not recorded (a second release would deliver it again).
 *
 * SECURITY: releases, deletes and list changes need the admin role; each
 * is audited.  Search values and ids only reach SQL as parameters;
 * recipients given for a release must pass an address check (no blanks,
 * controls or angle brackets).  The stored message is attacker-controlled:
 * it is shown as decoded text only, and reinjected as data.
 */
#include "api_lists.h"
#include "api_util.h"
#include "mgr_conf.h"
#include "mgr_qfilter.h"
#include "mgr_text.h"
#include "sluicectl_release.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_Q_MAX_TEXT (256 * 1024)
#define API_Q_MAX_BULK 100
#define API_Q_MAX_RCPTS 100
#define API_Q_RELEASE_TIMEOUT 15 /* seconds: connect, each SMTP reply */

#define Q_ITEM_COLUMNS                                                         \
    "m.id, m.msg_id, to_char(m.received_at AT TIME ZONE 'UTC', "               \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), m.sender, m.header_from, m.subject, "  \
    "m.score, m.size, (SELECT coalesce(json_agg(json_build_object('rcpt', "    \
    "r.rcpt, 'status', r.status) ORDER BY r.rcpt), '[]') FROM "                \
    "quarantine_rcpt r WHERE r.message_id = m.id), "                           \
    "(SELECT coalesce(json_agg(json_build_object('name', s.name, 'score', "    \
    "s.score, 'reason', s.reason) ORDER BY s.score DESC, s.name), '[]') "      \
    "FROM quarantine_symbol s WHERE s.message_id = m.id), "                    \
    "coalesce((regexp_match(encode(substring(m.raw FROM 1 FOR 16384), "        \
    "'escape'), '(?:^|\\n)X-Sluice-Probability:[ \\t]*([0-9.]+)', "            \
    "'i'))[1], ''), m.reason, coalesce(host(m.client_addr), '') "

enum {
    QI_ID,
    QI_MSGID,
    QI_RECV,
    QI_SENDER,
    QI_FROM,
    QI_SUBJ,
    QI_SCORE,
    QI_SIZE,
    QI_RCPTS,
    QI_SYMS,
    QI_PROB,
    QI_REASON,
    QI_CLIENT
};

/* ---------------------------------------------------------------- items */

static json_t *q_item(PGresult *res, int i)
{
    json_error_t je;
    json_t *o = json_object(), *rc, *addrs = json_array(), *x;
    const char *status = "deleted", *prob = PQgetvalue(res, i, QI_PROB);
    int any_q = 0, any_rel = 0, any_del = 0;
    size_t k;

    rc = json_loads(PQgetvalue(res, i, QI_RCPTS), 0, &je);
    if (rc == NULL)
        rc = json_array();
    json_array_foreach(rc, k, x)
    {
        const char *st = json_string_value(json_object_get(x, "status"));
        json_array_append(addrs, json_object_get(x, "rcpt"));
        if (st && strcmp(st, "quarantined") == 0)
            any_q = 1;
        else if (st && strcmp(st, "released") == 0)
            any_rel = 1;
        else if (st && strcmp(st, "delivered") == 0)
            any_del = 1;
    }
    status = any_q     ? "quarantined"
             : any_rel ? "released"
             : any_del ? "delivered"
                       : "deleted";
    json_object_set_new(
        o, "id", json_integer(strtoll(PQgetvalue(res, i, QI_ID), NULL, 10)));
    json_object_set_new(o, "msg_id", api_jstr(PQgetvalue(res, i, QI_MSGID)));
    json_object_set_new(o, "received", api_jstr(PQgetvalue(res, i, QI_RECV)));
    json_object_set_new(o, "sender", api_jstr(PQgetvalue(res, i, QI_SENDER)));
    json_object_set_new(o, "from", api_jstr(PQgetvalue(res, i, QI_FROM)));
    json_object_set_new(o, "recipients", addrs);
    json_object_set_new(o, "rcpt_status", rc);
    json_object_set_new(o, "subject", api_jstr(PQgetvalue(res, i, QI_SUBJ)));
    json_object_set_new(o, "score",
                        json_real(strtod(PQgetvalue(res, i, QI_SCORE), NULL)));
    json_object_set_new(o, "probability",
                        prob[0] ? json_real(strtod(prob, NULL) / 100.0)
                                : json_null());
    json_object_set_new(
        o, "size",
        json_integer(strtoll(PQgetvalue(res, i, QI_SIZE), NULL, 10)));
    json_object_set_new(o, "status", json_string(status));
    x = json_loads(PQgetvalue(res, i, QI_SYMS), 0, &je);
    json_object_set_new(o, "symbols", x ? x : json_array());
    json_object_set_new(o, "reason", api_jstr(PQgetvalue(res, i, QI_REASON)));
    json_object_set_new(o, "client_addr",
                        api_jstr(PQgetvalue(res, i, QI_CLIENT)));
    return o;
}

static int q_get_param(void *arg, const char *name, char *out, size_t outsz)
{
    return mgr_query(arg, name, out, outsz);
}

static void q_search(mgr_req *r, mgr_resp *resp)
{
    mgr_qfilter f;
    char err[256];
    PGconn *c;
    PGresult *cnt, *res;
    json_t *items;
    int i;

    if (mgr_qfilter_parse(q_get_param, r, &f, err, sizeof(err)) < 0) {
        mgr_reply_error(resp, 400, "%s", err);
        return;
    }
    if ((c = api_db(r, resp)) == NULL)
        return;
    cnt = api_exec(r, resp, c,
                   "SELECT count(*) FROM quarantine_message m" MGR_QF_WHERE, 8,
                   f.params);
    if (cnt == NULL)
        return;
    res = api_exec(r, resp, c,
                   "SELECT " Q_ITEM_COLUMNS
                   "FROM quarantine_message m" MGR_QF_WHERE
                   "ORDER BY m.received_at DESC, m.id DESC "
                   "LIMIT $9::bigint OFFSET $10::bigint",
                   MGR_QF_NPARAMS, f.params);
    if (res == NULL) {
        PQclear(cnt);
        return;
    }
    items = json_array();
    for (i = 0; i < PQntuples(res); i++)
        json_array_append_new(items, q_item(res, i));
    mgr_reply_json(
        resp, 200,
        json_pack("{s:I, s:o}", "total",
                  (json_int_t)strtoll(PQgetvalue(cnt, 0, 0), NULL, 10), "items",
                  items));
    PQclear(cnt);
    PQclear(res);
}

static void q_show(mgr_req *r, mgr_resp *resp)
{
    long long id = api_id(r, resp, 0);
    char idb[32], err[512];
    const char *p[1] = {idb};
    PGconn *c;
    PGresult *res, *raw;
    json_t *o, *view;

    if (id < 0 || (c = api_db(r, resp)) == NULL)
        return;
    snprintf(idb, sizeof(idb), "%lld", id);
    res = api_exec(r, resp, c,
                   "SELECT " Q_ITEM_COLUMNS
                   "FROM quarantine_message m WHERE m.id = $1",
                   1, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        mgr_reply_error(resp, 404, "no quarantined message %lld", id);
        return;
    }
    o = q_item(res, 0);
    PQclear(res);
    raw = api_exec_quiet(c, "SELECT raw FROM quarantine_message WHERE id = $1",
                         1, p, 1, err, sizeof(err));
    if (raw == NULL || PQntuples(raw) != 1) {
        PQclear(raw);
        json_decref(o);
        mgr_reply_error(resp, 500, "database: %s", err);
        return;
    }
    view = mgr_text_view((const unsigned char *)PQgetvalue(raw, 0, 0),
                         (size_t)PQgetlength(raw, 0, 0), API_Q_MAX_TEXT);
    PQclear(raw);
    if (view == NULL) {
        json_decref(o);
        mgr_reply_error(resp, 500, "out of memory");
        return;
    }
    json_object_update(o, view);
    json_decref(view);
    mgr_reply_json(resp, 200, o);
}

/* ---------------------------------------------------------------- release */

static int q_addr_ok(const char *a)
{
    size_t n = strlen(a);

    if (n == 0 || n > 320 || a[0] == '-' || strchr(a, '@') == NULL)
        return 0;
    for (; *a; a++)
        if ((unsigned char)*a <= 0x20 || *a == 0x7f || *a == '<' || *a == '>')
            return 0;
    return 1;
}

typedef struct q_outcome {
    int http; /* 200 all released; else the error status */
    char error[600];
    json_t *released, *refused;
} q_outcome;

static void q_outcome_init(q_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->http = 200;
    o->released = json_array();
    o->refused = json_array();
}

static void q_outcome_free(q_outcome *o)
{
    json_decref(o->released);
    json_decref(o->refused);
}

typedef struct q_rel_ctx {
    q_outcome *outs; /* one per id, in order */
    size_t n, i;
} q_rel_ctx;

static void q_rel_cb(const sluicectl_release_result *res, void *arg)
{
    q_rel_ctx *x = arg;
    q_outcome *o;
    size_t k;

    if (x->i >= x->n)
        return;
    o = &x->outs[x->i++];
    for (k = 0; k < res->nrcpts; k++)
        json_array_append_new(res->released && res->released[k] ? o->released
                                                                : o->refused,
                              api_jstr(res->rcpts[k]));
    switch (res->status) {
    case SLUICECTL_REL_OK:
        o->http = 200;
        return;
    case SLUICECTL_REL_NOTFOUND:
        o->http = res->id > 0 ? 409 : 404;
        break;
    case SLUICECTL_REL_UNRECORDED:
        o->http = 500;
        break;
    case SLUICECTL_REL_SKIPPED:
        o->http = 503;
        break;
    default: /* PARTIAL, FAILED: the MTA said no, or could not be reached */
        o->http = 502;
    }
    snprintf(o->error, sizeof(o->error), "%s",
             res->error && *res->error
                 ? res->error
                 : sluicectl_release_status_name(res->status));
}

/* Releases ids[0..n) through sluicectl_release() (one SMTP session to the
 * deliver stage's next hop), to rcpts (a JSON array, one id only) or to
 * the recipients still quarantined; outs[i] says how ids[i] went. */
static void q_release_ids(mgr_req *r, PGconn *c, const long long *ids, size_t n,
                          json_t *rcpts, q_outcome *outs)
{
    char hop[256], by[128], (*refs)[24] = calloc(n ? n : 1, sizeof(*refs));
    const char **idp = calloc(n ? n : 1, sizeof(*idp));
    const char *to[API_Q_MAX_RCPTS];
    sluicectl_release_opts o;
    q_rel_ctx x = {outs, n, 0};
    json_t *v;
    size_t i;

    if (refs == NULL || idp == NULL) {
        for (i = 0; i < n; i++) {
            outs[i].http = 500;
            snprintf(outs[i].error, sizeof(outs[i].error), "out of memory");
        }
        free(refs);
        free(idp);
        return;
    }
    for (i = 0; i < n; i++) {
        snprintf(refs[i], sizeof(refs[i]), "%lld", ids[i]);
        idp[i] = refs[i];
    }
    memset(&o, 0, sizeof(o));
    mgr_conf_stage_key(mgr_conf_dir(r->m), "deliver", "next_hop",
                       "127.0.0.1:10026", hop, sizeof(hop), NULL);
    snprintf(by, sizeof(by), "manager:%s", r->user ? r->user->name : "?");
    o.next_hop = hop;
    o.timeout = API_Q_RELEASE_TIMEOUT;
    o.by = by;
    json_array_foreach(rcpts, i, v)
    {
        if (i < API_Q_MAX_RCPTS)
            to[o.nto++] = json_string_value(v);
    }
    o.to = o.nto ? to : NULL;
    sluicectl_release(c, idp, n, &o, q_rel_cb, &x);
    for (i = x.i; i < n; i++) { /* not reported: the run broke off */
        outs[i].http = 503;
        snprintf(outs[i].error, sizeof(outs[i].error), "not tried");
    }
    free(refs);
    free(idp);
}

/* The "recipients" of a release body: NULL (none given) or an array of
 * checked addresses; -1 and 400 set when bad. */
static int q_body_rcpts(mgr_req *r, mgr_resp *resp, json_t **out)
{
    json_t *b, *a, *x;
    size_t i;

    *out = NULL;
    if (r->body_len == 0)
        return 0;
    if ((b = mgr_body_json(r, resp)) == NULL)
        return -1;
    a = json_object_get(b, "recipients");
    if (a == NULL || json_is_null(a)) {
        json_decref(b);
        return 0;
    }
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > API_Q_MAX_RCPTS)
        goto bad;
    json_array_foreach(a, i, x) if (!json_is_string(x) ||
                                    !q_addr_ok(json_string_value(x))) goto bad;
    *out = json_incref(a);
    json_decref(b);
    return 0;
bad:
    json_decref(b);
    mgr_reply_error(resp, 400, "recipients: 1 to %d addresses (user@domain)",
                    API_Q_MAX_RCPTS);
    return -1;
}

static void q_reply_outcome(mgr_resp *resp, q_outcome *o, json_t *extra)
{
    json_t *out = extra ? extra : json_object();

    json_object_set_new(out, "ok", json_boolean(o->http == 200));
    json_object_set(out, "released", o->released);
    json_object_set(out, "refused", o->refused);
    if (o->http != 200)
        json_object_set_new(out, "error", api_jstr(o->error));
    mgr_reply_json(resp, o->http, out);
}

static void q_release(mgr_req *r, mgr_resp *resp)
{
    long long id = api_id(r, resp, 0);
    json_t *rcpts = NULL;
    q_outcome o;
    PGconn *c;

    if (id < 0 || q_body_rcpts(r, resp, &rcpts) < 0)
        return;
    if ((c = api_db(r, resp)) == NULL) {
        json_decref(rcpts);
        return;
    }
    q_outcome_init(&o);
    q_release_ids(r, c, &id, 1, rcpts, &o);
    mgr_audit(r, "quarantine %lld release: %zu released, %zu refused%s%s", id,
              json_array_size(o.released), json_array_size(o.refused),
              o.http == 200 ? "" : ": ", o.http == 200 ? "" : o.error);
    q_reply_outcome(resp, &o, NULL);
    q_outcome_free(&o);
    json_decref(rcpts);
}

/* 200 and *n rows marked, else the error status with err. */
static int q_delete_id(mgr_req *r, PGconn *c, long long id, long long *n,
                       char *err, size_t errsz)
{
    char idb[32], by[128];
    const char *p[2] = {idb, by};
    PGresult *res;

    snprintf(idb, sizeof(idb), "%lld", id);
    snprintf(by, sizeof(by), "manager:%s", r->user ? r->user->name : "?");
    res = api_exec_quiet(c, "SELECT 1 FROM quarantine_message WHERE id = $1", 1,
                         p, 0, err, errsz);
    if (res == NULL)
        return 503;
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(err, errsz, "no quarantined message %lld", id);
        return 404;
    }
    PQclear(res);
    res = api_exec_quiet(c,
                         "UPDATE quarantine_rcpt SET status = 'deleted', "
                         "status_at = now(), status_by = $2 WHERE message_id "
                         "= $1 AND status = 'quarantined'",
                         2, p, 0, err, errsz);
    if (res == NULL)
        return 503;
    *n = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    mgr_audit(r, "quarantine %lld deleted (%lld recipients)", id, *n);
    return 200;
}

static void q_delete(mgr_req *r, mgr_resp *resp)
{
    long long id = api_id(r, resp, 0), n = 0;
    char err[512];
    PGconn *c;
    int st;

    if (id < 0 || (c = api_db(r, resp)) == NULL)
        return;
    if ((st = q_delete_id(r, c, id, &n, err, sizeof(err))) != 200) {
        mgr_reply_error(resp, st, "%s", err);
        return;
    }
    mgr_reply_json(resp, 200,
                   json_pack("{s:b, s:I}", "ok", 1, "deleted", (json_int_t)n));
}

/* Site allow entry for the message's sender; *allow_id (0: was there). */
static int q_allow_sender(mgr_req *r, PGconn *c, long long id,
                          long long *allow_id, char *err, size_t errsz)
{
    char idb[32], by[128], comment[96];
    const char *p[1] = {idb};
    PGresult *res;
    int rc;

    *allow_id = 0;
    snprintf(idb, sizeof(idb), "%lld", id);
    res =
        api_exec_quiet(c, "SELECT sender FROM quarantine_message WHERE id = $1",
                       1, p, 0, err, errsz);
    if (res == NULL)
        return 503;
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(err, errsz, "no quarantined message %lld", id);
        return 404;
    }
    if (PQgetvalue(res, 0, 0)[0] == '\0') {
        PQclear(res);
        snprintf(err, errsz,
                 "message %lld has the null sender: nothing to allow", id);
        return 409;
    }
    snprintf(by, sizeof(by), "manager:%s", r->user ? r->user->name : "?");
    snprintf(comment, sizeof(comment), "allowed from quarantine message %lld",
             id);
    rc = api_lists_add(c, "allow", "site", "", PQgetvalue(res, 0, 0), comment,
                       by, allow_id, err, errsz);
    if (rc == API_LISTS_OK)
        mgr_audit(r,
                  "list allow site: added %s (entry %lld) from "
                  "quarantine %lld",
                  PQgetvalue(res, 0, 0), *allow_id, id);
    PQclear(res);
    if (rc == API_LISTS_BAD)
        return 409;
    if (rc == API_LISTS_DB)
        return 503;
    return 200; /* added, or already listed */
}

static void q_allow_release(mgr_req *r, mgr_resp *resp)
{
    long long id = api_id(r, resp, 0), allow = 0;
    char err[512];
    q_outcome o;
    PGconn *c;
    int st;

    if (id < 0 || (c = api_db(r, resp)) == NULL)
        return;
    if ((st = q_allow_sender(r, c, id, &allow, err, sizeof(err))) != 200) {
        mgr_reply_error(resp, st, "%s", err);
        return;
    }
    q_outcome_init(&o);
    q_release_ids(r, c, &id, 1, NULL, &o);
    mgr_audit(r, "quarantine %lld allow-release: %zu released, %zu refused%s%s",
              id, json_array_size(o.released), json_array_size(o.refused),
              o.http == 200 ? "" : ": ", o.http == 200 ? "" : o.error);
    q_reply_outcome(resp, &o,
                    json_pack("{s:o}", "allow_id",
                              allow ? json_integer(allow) : json_null()));
    q_outcome_free(&o);
}

static void q_bulk(mgr_req *r, mgr_resp *resp)
{
    json_t *b = mgr_body_json(r, resp), *ids, *x, *results;
    long long rel_ids[API_Q_MAX_BULK];
    size_t rel_at[API_Q_MAX_BULK], nrel = 0, i;
    const char *action;
    PGconn *c;
    int act;

    if (b == NULL)
        return;
    action = json_string_value(json_object_get(b, "action"));
    ids = json_object_get(b, "ids");
    act = action == NULL                         ? -1
          : strcmp(action, "release") == 0       ? 0
          : strcmp(action, "delete") == 0        ? 1
          : strcmp(action, "allow-release") == 0 ? 2
                                                 : -1;
    if (act < 0 || !json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > API_Q_MAX_BULK) {
        json_decref(b);
        mgr_reply_error(resp, 400,
                        "action: release|delete|allow-release; ids: 1 to %d "
                        "message ids",
                        API_Q_MAX_BULK);
        return;
    }
    json_array_foreach(ids, i,
                       x) if (!json_is_integer(x) || json_integer_value(x) < 1)
    {
        json_decref(b);
        mgr_reply_error(resp, 400, "ids: whole numbers");
        return;
    }
    if ((c = api_db(r, resp)) == NULL) {
        json_decref(b);
        return;
    }
    /* deletes and allow-list entries one by one; then the releases
     * together, through one SMTP session */
    results = json_array();
    json_array_foreach(ids, i, x)
    {
        long long id = json_integer_value(x), n = 0, allow = 0;
        json_t *one = json_pack("{s:I}", "id", (json_int_t)id);
        char err[600] = "";
        int st = 200;
        if (act == 1)
            st = q_delete_id(r, c, id, &n, err, sizeof(err));
        else if (act == 2)
            st = q_allow_sender(r, c, id, &allow, err, sizeof(err));
        if (act != 0 && st != 200) {
            json_object_set_new(one, "ok", json_false());
            json_object_set_new(one, "error", api_jstr(err));
        } else if (act == 1) {
            json_object_set_new(one, "ok", json_true());
        } else {
            rel_ids[nrel] = id;
            rel_at[nrel++] = i;
        }
        json_array_append_new(results, one);
    }
    if (nrel > 0) {
        q_outcome outs[API_Q_MAX_BULK];
        for (i = 0; i < nrel; i++)
            q_outcome_init(&outs[i]);
        q_release_ids(r, c, rel_ids, nrel, NULL, outs);
        for (i = 0; i < nrel; i++) {
            json_t *one = json_array_get(results, rel_at[i]);
            json_object_set_new(one, "ok", json_boolean(outs[i].http == 200));
            json_object_set(one, "released", outs[i].released);
            if (outs[i].http != 200)
                json_object_set_new(one, "error", api_jstr(outs[i].error));
            mgr_audit(r, "quarantine %lld %s (bulk): %zu released%s%s",
                      rel_ids[i], action, json_array_size(outs[i].released),
                      outs[i].http == 200 ? "" : ": ",
                      outs[i].http == 200 ? "" : outs[i].error);
            q_outcome_free(&outs[i]);
        }
    }
    json_decref(b);
    mgr_reply_json(resp, 200, json_pack("{s:o}", "results", results));
}

const mgr_route mgr_routes_quarantine[] = {
    {"GET", "/api/quarantine", MGR_ROLE_AUDITOR, q_search},
    {"POST", "/api/quarantine/bulk", MGR_ROLE_ADMIN, q_bulk},
    {"GET", "/api/quarantine/:id", MGR_ROLE_AUDITOR, q_show},
    {"POST", "/api/quarantine/:id/release", MGR_ROLE_ADMIN, q_release},
    {"POST", "/api/quarantine/:id/delete", MGR_ROLE_ADMIN, q_delete},
    {"POST", "/api/quarantine/:id/allow-release", MGR_ROLE_ADMIN,
     q_allow_release},
    {NULL, NULL, 0, NULL},
};
