/*
 * api_dashboard.c - GET /api/dashboard and its sampler.
 *
 * mgr_dashboard_tick() (every 10 s, from the core's loop) reads control
 * `stats`: the engine's message total and final verdicts since it started
 * (live and retired workers), and the policy stage's "spam" counter
 * (score >= tag_score).  What changed since the last reading goes into the
 * current minute (mgr_series.c), and that minute is written to
 * stats_minute (db/migrations/0005) at once, so a restarted Manager reads
 * the last 24 hours back on its first tick and the history survives it.
 * Rows older than 8 days are removed once an hour.
 *
 *   {"per_minute":[{"t","messages","spam","quarantined","rejected"}] (60),
 *    "per_hour":[...] (24), "verdicts":{"accept","reject","tempfail",
 *    "quarantine","discard"} (last 24 h), "spam_rate" (spam / messages,
 *    last 24 h), "top_symbols":[{"name","count"}] (<= 15, since the engine
 *    started: the policy stage's "sym.NAME" counters), "stage_latency":
 *    [{"name","avg_ms","calls"}] (since the engine started),
 *    "generated", "engine_error"?}
 *
 * Limits: the engine keeps 64 counters per stage, so the policy stage
 * counts the first ~58 distinct symbol names it sees (names cut at 27
 * bytes); the series count messages the engine finished (the minute a
 * sample saw them), in 10 s steps.
 *
 * SECURITY: read-only for auditors; the numbers come from the engine and
 * the Manager's own table.  One Manager per gateway writes its rows (node
 * = host name).
 */
#include "api_util.h"
#include "mgr_series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DB_TOP_SYMBOLS 15

static struct {
    mgr_series s;
    int loaded; /* history read back from the database */
    long long last_prune;
    char node[256];
} db_state;

static int db_inited;

static void db_init_once(void)
{
    if (db_inited)
        return;
    mgr_series_init(&db_state.s);
    if (gethostname(db_state.node, sizeof(db_state.node)) != 0)
        snprintf(db_state.node, sizeof(db_state.node), "localhost");
    db_state.node[sizeof(db_state.node) - 1] = '\0';
    db_inited = 1;
}

/* The cumulative totals a `stats` reply carries, in MGR_S_* order. */
static void db_totals(json_t *stats, long long tot[MGR_S_N])
{
    json_t *v = json_object_get(stats, "verdicts"), *st, *s;
    size_t i;

#define DB_V(name) json_integer_value(json_object_get(v, name))
    memset(tot, 0, sizeof(long long) * MGR_S_N);
    tot[MGR_S_MESSAGES] =
        json_integer_value(json_object_get(stats, "messages"));
    tot[MGR_S_QUARANTINED] = DB_V("quarantine");
    tot[MGR_S_REJECTED] = DB_V("reject");
    tot[MGR_S_ACCEPTED] = DB_V("accept") + DB_V("continue");
    tot[MGR_S_TEMPFAILED] = DB_V("tempfail");
    tot[MGR_S_DISCARDED] = DB_V("discard");
#undef DB_V
    st = json_object_get(stats, "stages");
    json_array_foreach(st, i, s)
    {
        const char *plugin = json_string_value(json_object_get(s, "plugin"));
        const char *name = json_string_value(json_object_get(s, "name"));
        if ((name && strcmp(name, "policy") == 0) ||
            (plugin && strstr(plugin, "/policy.") != NULL))
            tot[MGR_S_SPAM] += json_integer_value(
                json_object_get(json_object_get(s, "counters"), "spam"));
    }
}

static void db_load(PGconn *c)
{
    const char *p[1] = {db_state.node};
    char err[256];
    PGresult *res = api_exec_quiet(
        c,
        "SELECT extract(epoch FROM t)::bigint, messages, spam, quarantined, "
        "rejected, accepted, tempfailed, discarded FROM stats_minute "
        "WHERE node = $1 AND t > now() - interval '24 hours'",
        1, p, 0, err, sizeof(err));
    int i, k;

    if (res == NULL)
        return;
    for (i = 0; i < PQntuples(res); i++) {
        long long v[MGR_S_N];
        for (k = 0; k < MGR_S_N; k++)
            v[k] = strtoll(PQgetvalue(res, i, k + 1), NULL, 10);
        mgr_series_set(&db_state.s, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                       v);
    }
    PQclear(res);
    db_state.loaded = 1;
}

static void db_store(PGconn *c, long long now)
{
    mgr_bucket b = mgr_series_minute(&db_state.s, now);
    char t[32], vals[MGR_S_N][32], err[256];
    const char *p[2 + MGR_S_N];
    PGresult *res;
    int k;

    snprintf(t, sizeof(t), "%lld", b.t);
    p[0] = db_state.node;
    p[1] = t;
    for (k = 0; k < MGR_S_N; k++) {
        snprintf(vals[k], sizeof(vals[k]), "%lld", b.v[k]);
        p[2 + k] = vals[k];
    }
    res = api_exec_quiet(
        c,
        "INSERT INTO stats_minute (node, t, messages, spam, quarantined, "
        "rejected, accepted, tempfailed, discarded) VALUES ($1, "
        "to_timestamp($2::bigint), $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (node, t) DO UPDATE SET messages = EXCLUDED.messages, "
        "spam = EXCLUDED.spam, quarantined = EXCLUDED.quarantined, "
        "rejected = EXCLUDED.rejected, accepted = EXCLUDED.accepted, "
        "tempfailed = EXCLUDED.tempfailed, discarded = EXCLUDED.discarded",
        2 + MGR_S_N, p, 0, err, sizeof(err));
    PQclear(res);
    if (now - db_state.last_prune >= 3600) {
        res = api_exec_quiet(c,
                             "DELETE FROM stats_minute WHERE t < now() - "
                             "interval '8 days'",
                             0, NULL, 0, err, sizeof(err));
        PQclear(res);
        db_state.last_prune = now;
    }
}

void mgr_dashboard_tick(mgr *m)
{
    json_t *stats = NULL;
    char err[256];
    long long tot[MGR_S_N], now = (long long)time(NULL);
    PGconn *c;
    int changed = 0;

    db_init_once();
    if (mgr_control(m, "stats", &stats, err, sizeof(err)) == 0 &&
        json_is_true(json_object_get(stats, "ok")) &&
        json_is_integer(json_object_get(stats, "messages"))) {
        db_totals(stats, tot);
        changed = mgr_series_sample(
            &db_state.s, now,
            (long)json_integer_value(json_object_get(stats, "pid")), tot, NULL);
    }
    json_decref(stats);
    c = mgr_db(m, err, sizeof(err));
    if (c == NULL)
        return; /* counted in memory; written once the database is back */
    if (!db_state.loaded)
        db_load(c);
    if (changed)
        db_store(c, now);
}

static json_t *db_bucket_json(const mgr_bucket *b)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "t", (json_int_t)b->t,
                     "messages", (json_int_t)b->v[MGR_S_MESSAGES], "spam",
                     (json_int_t)b->v[MGR_S_SPAM], "quarantined",
                     (json_int_t)b->v[MGR_S_QUARANTINED], "rejected",
                     (json_int_t)b->v[MGR_S_REJECTED]);
}

typedef struct db_sym {
    const char *name;
    long long count;
} db_sym;

static int db_sym_cmp(const void *a, const void *b)
{
    const db_sym *x = a, *y = b;

    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* top_symbols and stage_latency from a `stats` reply. */
static void db_from_stats(json_t *stats, json_t *out)
{
    json_t *stages = json_object_get(stats, "stages"), *s, *lat, *top;
    db_sym syms[64 * 4];
    size_t i, n = 0, k;

    lat = json_array();
    json_array_foreach(stages, i, s)
    {
        json_t *counters = json_object_get(s, "counters"), *v;
        const char *key;
        json_array_append_new(
            lat, json_pack(
                     "{s:O, s:f, s:I}", "name", json_object_get(s, "name"),
                     "avg_ms", json_number_value(json_object_get(s, "avg_ms")),
                     "calls", json_integer_value(json_object_get(s, "calls"))));
        json_object_foreach(counters, key, v)
        {
            if (strncmp(key, "sym.", 4) != 0 || key[4] == '\0')
                continue;
            for (k = 0; k < n; k++)
                if (strcmp(syms[k].name, key + 4) == 0)
                    break;
            if (k == n) {
                if (n == sizeof(syms) / sizeof(syms[0]))
                    continue;
                syms[n].name = key + 4;
                syms[n++].count = 0;
            }
            syms[k].count += json_integer_value(v);
        }
    }
    qsort(syms, n, sizeof(syms[0]), db_sym_cmp);
    top = json_array();
    for (k = 0; k < n && k < DB_TOP_SYMBOLS; k++)
        json_array_append_new(top,
                              json_pack("{s:s, s:I}", "name", syms[k].name,
                                        "count", (json_int_t)syms[k].count));
    json_object_set_new(out, "top_symbols", top);
    json_object_set_new(out, "stage_latency", lat);
}

static void db_get(mgr_req *r, mgr_resp *resp)
{
    mgr_bucket mins[60], hours[24];
    long long now = (long long)time(NULL), sum[MGR_S_N];
    json_t *out = json_object(), *a, *stats = NULL;
    char err[256];
    int i, k;

    db_init_once();
    if (!db_state.loaded) { /* before the first tick: read history now */
        PGconn *c = mgr_db(r->m, err, sizeof(err));
        if (c != NULL)
            db_load(c);
    }
    mgr_series_minutes(&db_state.s, now, 60, mins);
    mgr_series_hours(&db_state.s, now, 24, hours);
    a = json_array();
    for (i = 0; i < 60; i++)
        json_array_append_new(a, db_bucket_json(&mins[i]));
    json_object_set_new(out, "per_minute", a);
    a = json_array();
    memset(sum, 0, sizeof(sum));
    for (i = 0; i < 24; i++) {
        json_array_append_new(a, db_bucket_json(&hours[i]));
        for (k = 0; k < MGR_S_N; k++)
            sum[k] += hours[i].v[k];
    }
    json_object_set_new(out, "per_hour", a);
    json_object_set_new(out, "verdicts",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "accept",
                                  (json_int_t)sum[MGR_S_ACCEPTED], "reject",
                                  (json_int_t)sum[MGR_S_REJECTED], "tempfail",
                                  (json_int_t)sum[MGR_S_TEMPFAILED],
                                  "quarantine",
                                  (json_int_t)sum[MGR_S_QUARANTINED], "discard",
                                  (json_int_t)sum[MGR_S_DISCARDED]));
    json_object_set_new(
        out, "spam_rate",
        json_real(sum[MGR_S_MESSAGES] > 0
                      ? (double)sum[MGR_S_SPAM] / (double)sum[MGR_S_MESSAGES]
                      : 0.0));
    json_object_set_new(out, "messages_24h",
                        json_integer((json_int_t)sum[MGR_S_MESSAGES]));
    if (mgr_control(r->m, "stats", &stats, err, sizeof(err)) == 0 &&
        json_is_true(json_object_get(stats, "ok"))) {
        db_from_stats(stats, out);
    } else {
        json_object_set_new(out, "top_symbols", json_array());
        json_object_set_new(out, "stage_latency", json_array());
        json_object_set_new(
            out, "engine_error",
            api_jstr(stats ? json_string_value(json_object_get(stats, "error"))
                           : err));
    }
    json_decref(stats);
    json_object_set_new(out, "generated", json_integer((json_int_t)now));
    mgr_reply_json(resp, 200, out);
}

const mgr_route mgr_routes_dashboard[] = {
    {"GET", "/api/dashboard", MGR_ROLE_AUDITOR, db_get},
    {NULL, NULL, 0, NULL},
};
