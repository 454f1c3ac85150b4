/*
 * api_lists.c - the allow/block lists (table list_entry): GET /api/lists
 * (?kind=allow|block&level=site|domain|user&owner=), POST /api/lists
 * {"kind","level","owner"?,"value","comment"?} -> 201 item, DELETE
 * /api/lists/:id -> {}.  Every change bumps list_generation (a trigger),
 * and the policy stage's workers reload within their list_refresh.
 *
 * Entries are read exactly like `sluicectl list add` reads them (the
 * shared tools/listent.c): an address, a domain (*.domain: with its
 * subdomains) or a client IP/CIDR.  Owner: none for site, the recipient
 * domain for domain, the recipient address for user; lower-cased.
 * Errors: 400 bad value, 404 no such entry, 409 already listed.
 *
 * SECURITY: changes need the admin role; values are bounded, checked and
 * go to the server as parameters only.  Every change is audited.
 */
#include "api_lists.h"
#include "api_util.h"
#include "listent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LS_COLUMNS                                                             \
    "id, kind, scope, owner, coalesce(sender_addr, ''), "                      \
    "coalesce(sender_domain, ''), subdomains, coalesce(client_net::text, "     \
    "''), "                                                                    \
    "comment, created_by, to_char(created_at AT TIME ZONE 'UTC', "             \
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static json_t *ls_item(PGresult *res, int i)
{
    listent e;
    char value[600];

    memset(&e, 0, sizeof(e));
    snprintf(e.addr, sizeof(e.addr), "%s", PQgetvalue(res, i, 4));
    snprintf(e.domain, sizeof(e.domain), "%s", PQgetvalue(res, i, 5));
    e.subdomains = PQgetvalue(res, i, 6)[0] == 't';
    snprintf(e.net, sizeof(e.net), "%s", PQgetvalue(res, i, 7));
    listent_format(&e, value, sizeof(value));
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10),
                     "kind", api_jstr(PQgetvalue(res, i, 1)), "level",
                     api_jstr(PQgetvalue(res, i, 2)), "owner",
                     api_jstr(PQgetvalue(res, i, 3)), "value", api_jstr(value),
                     "comment", api_jstr(PQgetvalue(res, i, 8)), "created_by",
                     api_jstr(PQgetvalue(res, i, 9)), "created",
                     api_jstr(PQgetvalue(res, i, 10)));
}

static int ls_one_of(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0);
}

static void ls_get(mgr_req *r, mgr_resp *resp)
{
    char kind[16] = "", level[16] = "", owner[512] = "", low[512];
    const char *p[3];
    PGconn *c;
    PGresult *res;
    json_t *items;
    int i;

    mgr_query(r, "kind", kind, sizeof(kind));
    mgr_query(r, "level", level, sizeof(level));
    mgr_query(r, "owner", owner, sizeof(owner));
    if ((kind[0] && !ls_one_of(kind, "allow", "block", NULL)) ||
        (level[0] && !ls_one_of(level, "site", "domain", "user"))) {
        mgr_reply_error(resp, 400,
                        "kind: allow|block; level: "
                        "site|domain|user");
        return;
    }
    listent_lower(low, sizeof(low), owner);
    p[0] = kind;
    p[1] = level;
    p[2] = low;
    if ((c = api_db(r, resp)) == NULL)
        return;
    res = api_exec(r, resp, c,
                   "SELECT " LS_COLUMNS " FROM list_entry "
                   "WHERE ($1 = '' OR kind = $1::list_kind) "
                   "AND ($2 = '' OR scope = $2::list_scope) "
                   "AND ($3 = '' OR owner = $3) "
                   "ORDER BY kind, scope, owner, id LIMIT 10000",
                   3, p);
    if (res == NULL)
        return;
    items = json_array();
    for (i = 0; i < PQntuples(res); i++)
        json_array_append_new(items, ls_item(res, i));
    PQclear(res);
    mgr_reply_json(resp, 200, json_pack("{s:o}", "items", items));
}

int api_lists_add(PGconn *c, const char *kind, const char *level,
                  const char *owner, const char *value, const char *comment,
                  const char *by, long long *id, char *err, size_t errsz)
{
    listent e;
    char low[512];
    const char *p[9];
    PGresult *res;

    if (!ls_one_of(kind, "allow", "block", NULL)) {
        snprintf(err, errsz, "kind: allow or block");
        return API_LISTS_BAD;
    }
    if (!ls_one_of(level, "site", "domain", "user")) {
        snprintf(err, errsz, "level: site, domain or user");
        return API_LISTS_BAD;
    }
    if (strlen(owner) >= sizeof(low) || strlen(comment) > 500) {
        snprintf(err, errsz, "owner or comment too long");
        return API_LISTS_BAD;
    }
    listent_lower(low, sizeof(low), owner);
    for (const char *q = low; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            snprintf(err, errsz, "owner: blanks or control characters");
            return API_LISTS_BAD;
        }
    if (strcmp(level, "site") == 0 && low[0] != '\0') {
        snprintf(err, errsz, "owner: none for level site");
        return API_LISTS_BAD;
    }
    if (strcmp(level, "domain") == 0 &&
        (low[0] == '\0' || strchr(low, '@') || !strchr(low, '.') ||
         strpbrk(low, " \t\r\n/"))) {
        snprintf(err, errsz, "owner: the recipient domain (example.com)");
        return API_LISTS_BAD;
    }
    if (strcmp(level, "user") == 0 &&
        (strchr(low, '@') == NULL || strpbrk(low, " \t\r\n<>"))) {
        snprintf(err, errsz, "owner: the recipient address (user@example.com)");
        return API_LISTS_BAD;
    }
    if (listent_parse(value, &e) < 0) {
        snprintf(err, errsz,
                 "value: '%.200s' is not an address, a domain or a network",
                 value);
        return API_LISTS_BAD;
    }
    for (const char *q = comment; *q; q++)
        if ((unsigned char)*q < 0x20) {
            snprintf(err, errsz, "comment: control characters");
            return API_LISTS_BAD;
        }
    p[0] = kind;
    p[1] = level;
    p[2] = low;
    p[3] = e.addr;
    p[4] = e.domain;
    p[5] = e.subdomains ? "true" : "false";
    p[6] = e.net;
    p[7] = comment;
    p[8] = by;
    res = api_exec_quiet(
        c,
        "INSERT INTO list_entry (kind, scope, owner, sender_addr, "
        "sender_domain, subdomains, client_net, comment, created_by) "
        "VALUES ($1::list_kind, $2::list_scope, $3, nullif($4, ''), "
        "nullif($5, ''), $6::boolean, nullif($7, '')::cidr, $8, $9) "
        "ON CONFLICT DO NOTHING RETURNING id",
        9, p, 0, err, errsz);
    if (res == NULL)
        return API_LISTS_DB;
    if (PQntuples(res) != 1) {
        PQclear(res);
        snprintf(err, errsz, "already listed");
        return API_LISTS_EXISTS;
    }
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return API_LISTS_OK;
}

static const char *ls_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void ls_post(mgr_req *r, mgr_resp *resp)
{
    json_t *b = mgr_body_json(r, resp);
    const char *kind, *level, *owner, *value, *comment;
    char err[512], by[128], idb[32];
    const char *p[1] = {idb};
    long long id = 0;
    PGconn *c;
    PGresult *res;
    int rc;

    if (b == NULL)
        return;
    kind = ls_str(b, "kind");
    level = ls_str(b, "level");
    owner = ls_str(b, "owner");
    value = ls_str(b, "value");
    comment = ls_str(b, "comment");
    if (kind == NULL || level == NULL || value == NULL) {
        json_decref(b);
        mgr_reply_error(resp, 400, "kind, level and value are needed");
        return;
    }
    if ((c = api_db(r, resp)) == NULL) {
        json_decref(b);
        return;
    }
    snprintf(by, sizeof(by), "manager:%s", r->user ? r->user->name : "?");
    rc = api_lists_add(c, kind, level, owner ? owner : "", value,
                       comment ? comment : "", by, &id, err, sizeof(err));
    if (rc != API_LISTS_OK) {
        mgr_reply_error(resp,
                        rc == API_LISTS_BAD      ? 400
                        : rc == API_LISTS_EXISTS ? 409
                                                 : 503,
                        "%s", err);
        json_decref(b);
        return;
    }
    mgr_audit(r, "list %s %s%s%s: added %s (entry %lld)", kind, level,
              owner && *owner ? " " : "", owner ? owner : "", value, id);
    json_decref(b);
    snprintf(idb, sizeof(idb), "%lld", id);
    res = api_exec(r, resp, c,
                   "SELECT " LS_COLUMNS " FROM list_entry WHERE id = $1", 1, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        mgr_reply_error(resp, 500, "entry %lld vanished", id);
        return;
    }
    mgr_reply_json(resp, 201, ls_item(res, 0));
    PQclear(res);
}

static void ls_delete(mgr_req *r, mgr_resp *resp)
{
    long long id = api_id(r, resp, 0);
    char idb[32];
    const char *p[1] = {idb};
    PGconn *c;
    PGresult *res;
    int n;

    if (id < 0 || (c = api_db(r, resp)) == NULL)
        return;
    snprintf(idb, sizeof(idb), "%lld", id);
    res = api_exec(r, resp, c,
                   "DELETE FROM list_entry WHERE id = $1 RETURNING kind, "
                   "scope, owner, coalesce(sender_addr, sender_domain, "
                   "client_net::text)",
                   1, p);
    if (res == NULL)
        return;
    n = PQntuples(res);
    if (n == 1)
        mgr_audit(r, "list entry %lld removed (%s %s %s %s)", id,
                  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
                  PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
    PQclear(res);
    if (n != 1) {
        mgr_reply_error(resp, 404, "no list entry %lld", id);
        return;
    }
    mgr_reply_json(resp, 200, json_object());
}

const mgr_route mgr_routes_lists[] = {
    {"GET", "/api/lists", MGR_ROLE_AUDITOR, ls_get},
    {"POST", "/api/lists", MGR_ROLE_ADMIN, ls_post},
    {"DELETE", "/api/lists/:id", MGR_ROLE_ADMIN, ls_delete},
    {NULL, NULL, 0, NULL},
};
