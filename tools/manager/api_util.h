/*
 * api_util.h - small helpers shared by the API handlers (api_*.c).
 *
 * SECURITY: every helper that takes request data bounds and checks it;
 * SQL values always go as parameters.
 */
#ifndef SLUICE_API_UTIL_H
#define SLUICE_API_UTIL_H

#include "mgr.h"

#include <jansson.h>
#include <libpq-fe.h>

/* The control command's reply when it has "ok":true.  Otherwise NULL and
 * the answer set: 502 {"error"} when the engine cannot be reached, 409
 * {"error"} (404 for an unknown stage) with the engine's refusal. */
json_t *api_control_ok(mgr_req *r, mgr_resp *resp, const char *line);
/* The database, or NULL and 503 set. */
PGconn *api_db(mgr_req *r, mgr_resp *resp);
/* Runs a statement with text parameters; the result, or NULL with 500
 * (or 503 when the connection is gone) set. */
PGresult *api_exec(mgr_req *r, mgr_resp *resp, PGconn *c, const char *sql,
                   int n, const char *const *v);
/* Same without answering: NULL and the server's message in err. */
PGresult *api_exec_quiet(PGconn *c, const char *sql, int n,
                         const char *const *v, int binary, char *err,
                         size_t errsz);
/* A path parameter made of 1..18 digits, or -1 (400 set). */
long long api_id(mgr_req *r, mgr_resp *resp, int i);
/* A stage name as the engine allows ([A-Za-z0-9_.-], 1..63). */
int api_stage_name_ok(const char *s);
/* json_string of a database value, NULL-safe, made valid UTF-8. */
json_t *api_jstr(const char *s);
/* The engine's generation (control `status`), or -1. */
long long api_generation(mgr *m);

#endif
