/* mgr.h: sluice-manager's internal interface between the server core
 * (main.c http.c tls.c auth.c route.c ..., helper mgr-core) and the JSON
 * API handlers (api_*.c, helper mgr-api).
 *
 * SECURITY: the core authenticates every /api request, checks the route's
 * min_role and, for every method but GET/HEAD, the CSRF token before a
 * handler runs; handlers trust r->user and never see the session or the
 * password.  Bodies are bounded (MGR_MAX_BODY) and NUL-terminated.
 */
#ifndef SLUICE_MGR_H
#define SLUICE_MGR_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

enum { MGR_ROLE_NONE = 0, MGR_ROLE_AUDITOR = 1, MGR_ROLE_ADMIN = 2 };

typedef struct mgr mgr;                 /* the server (opaque to handlers) */

typedef struct mgr_user {
    long long id;
    char name[64];
    int role;                           /* MGR_ROLE_* */
} mgr_user;

typedef struct mgr_req {
    mgr *m;
    const char *method;                 /* "GET", "POST", "DELETE", ... */
    const char *path;                   /* percent-decoded, no query */
    const char *query;                  /* raw query string, "" if none */
    const char *body;                   /* NUL-terminated copy of the body */
    size_t body_len;
    const char *remote_ip;
    const mgr_user *user;               /* never NULL in a handler whose min_role > NONE */
    const char *params[4];              /* the :name segments of the route, in order */
    int nparams;
} mgr_req;

typedef struct mgr_resp mgr_resp;       /* opaque */

/* one query-string parameter, percent-decoded; 1 found, 0 not */
int mgr_query(const mgr_req *r, const char *name, char *out, size_t outsz);
/* the body parsed as a JSON object; NULL and a 400 already set on error */
json_t *mgr_body_json(const mgr_req *r, mgr_resp *resp);
/* replies: the object is stolen (json_decref'd by the core) */
void mgr_reply_json(mgr_resp *resp, int status, json_t *obj);
void mgr_reply_error(mgr_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* a connected database handle (cached, reconnected when broken), or NULL with
   err filled; handlers then reply 503 */
PGconn *mgr_db(mgr *m, char *err, size_t errsz);
/* one control-socket command; 0 and *reply (a JSON object you decref) or -1 and err */
int mgr_control(mgr *m, const char *line, json_t **reply, char *err, size_t errsz);
/* log a line with the user name and the remote address (audit trail) */
void mgr_audit(const mgr_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *mgr_state_dir(mgr *m);
const char *mgr_conf_dir(mgr *m);

typedef void (*mgr_handler)(mgr_req *r, mgr_resp *resp);
typedef struct mgr_route {
    const char *method;                 /* "GET", "POST", "DELETE" */
    const char *pattern;                /* "/api/quarantine/:id/release" */
    int min_role;                       /* MGR_ROLE_NONE/AUDITOR/ADMIN */
    mgr_handler fn;
} mgr_route;
/* Each api_*.c exports one table, ending with {NULL}, named
   mgr_routes_status, mgr_routes_stages, mgr_routes_dashboard,
   mgr_routes_quarantine, mgr_routes_lists, mgr_routes_policy; the core
   declares them and tries them in order. mgr-api provides them; until then
   mgr-core may keep an empty stub file per table (mgr-api replaces it). */
extern const mgr_route mgr_routes_status[], mgr_routes_stages[],
    mgr_routes_dashboard[], mgr_routes_quarantine[], mgr_routes_lists[],
    mgr_routes_policy[];
/* optional periodic hook for the dashboard sampler: called every 10 s */
void mgr_dashboard_tick(mgr *m);

/* ---- additions by mgr-core (not part of the original contract) ---- */

/* request body limit; larger bodies get 413 before any handler runs */
#define MGR_MAX_BODY (1024 * 1024)

/* the manager's version string (same as the engine's) */
const char *mgr_version(void);
/* seconds since the manager started */
long long mgr_uptime(mgr *m);
/* the configured control socket path and database DSN ("" if unset) */
const char *mgr_control_socket(mgr *m);
const char *mgr_dsn(mgr *m);

#endif
