/*
 * api_util.c - helpers shared by the API handlers (api_util.h).
 *
 * SECURITY: see api_util.h.  Database and engine errors are passed to the
 * (authenticated) administrator as they are: they name no secret.
 */
#include "api_util.h"

#include "mgr_text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *api_control_ok(mgr_req *r, mgr_resp *resp, const char *line)
{
    json_t *reply = NULL;
    char err[512];
    const char *e;

    if (mgr_control(r->m, line, &reply, err, sizeof(err)) < 0) {
        mgr_reply_error(resp, 502, "engine not reachable: %s", err);
        return NULL;
    }
    if (json_is_true(json_object_get(reply, "ok")))
        return reply;
    e = json_string_value(json_object_get(reply, "error"));
    if (e == NULL)
        e = "the engine refused";
    mgr_reply_error(resp, strncmp(e, "no stage named", 14) == 0 ? 404 : 409,
                    "%s", e);
    json_decref(reply);
    return NULL;
}

PGconn *api_db(mgr_req *r, mgr_resp *resp)
{
    char err[512];
    PGconn *c = mgr_db(r->m, err, sizeof(err));

    if (c == NULL)
        mgr_reply_error(resp, 503, "database unavailable: %s", err);
    return c;
}

static void api_chomp(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
}

PGresult *api_exec_quiet(PGconn *c, const char *sql, int n,
                         const char *const *v, int binary, char *err,
                         size_t errsz)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, v, NULL, NULL, binary);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    snprintf(err, errsz, "%s",
             res ? PQresultErrorMessage(res) : PQerrorMessage(c));
    api_chomp(err);
    PQclear(res);
    return NULL;
}

PGresult *api_exec(mgr_req *r, mgr_resp *resp, PGconn *c, const char *sql,
                   int n, const char *const *v)
{
    char err[512];
    PGresult *res = api_exec_quiet(c, sql, n, v, 0, err, sizeof(err));

    (void)r;
    if (res == NULL)
        mgr_reply_error(resp, PQstatus(c) == CONNECTION_OK ? 500 : 503,
                        "database: %s", err);
    return res;
}

long long api_id(mgr_req *r, mgr_resp *resp, int i)
{
    const char *s = i < r->nparams ? r->params[i] : NULL;
    size_t n = s ? strlen(s) : 0, k;

    if (n == 0 || n > 18)
        goto bad;
    for (k = 0; k < n; k++)
        if (!isdigit((unsigned char)s[k]))
            goto bad;
    return strtoll(s, NULL, 10);
bad:
    mgr_reply_error(resp, 400, "bad id");
    return -1;
}

int api_stage_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0, i;

    if (n == 0 || n > 63)
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' &&
            s[i] != '.')
            return 0;
    return 1;
}

json_t *api_jstr(const char *s)
{
    char *c;
    json_t *j;

    if (s == NULL)
        s = "";
    if ((j = json_string(s)) != NULL)
        return j;
    c = mgr_text_clean(s, strlen(s), 1 << 20, NULL);
    j = json_string(c ? c : "");
    free(c);
    return j;
}

long long api_generation(mgr *m)
{
    json_t *st = NULL;
    char err[256];
    long long g = -1;

    if (mgr_control(m, "status", &st, err, sizeof(err)) == 0 &&
        json_is_integer(json_object_get(st, "generation")))
        g = json_integer_value(json_object_get(st, "generation"));
    json_decref(st);
    return g;
}
