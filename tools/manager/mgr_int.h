/*
 * mgr_int.h - sluice-manager's core internals (mgr-core only; handlers use
 * mgr.h).
 *
 * The core is split so that everything between "bytes arrived" and "bytes
 * to send" is I/O-free and can be fuzzed (tests/fuzz/fuzz_http.c):
 *   http.c    one connection's request parser (libhttp-parser) with limits
 *   route.c   dispatch: auth, role, CSRF, the route tables, static files,
 *             the response bytes with the security headers
 *   auth.c    sessions, CSRF tokens, login/logout, lockout, API tokens
 *   static.c  files from www_dir
 *   core.c    the mgr.h helpers (query, JSON, replies, database, control,
 *             audit)
 * and the I/O around it: server.c (libev + OpenSSL), tls.c (context and
 * the self-signed certificate), main.c (options, conf.d, privileges).
 *
 * SECURITY: all request bytes are untrusted; every buffer is bounded by the
 * MGR_MAX_* limits below.
 */
#ifndef SLUICE_MGR_INT_H
#define SLUICE_MGR_INT_H

#include "mgr.h"
#include "mgr_pass.h"
#include "util.h"

#include <http_parser.h>
#include <time.h>

#define MGR_MAX_URL 4096
#define MGR_MAX_HEADERS_BYTES (16 * 1024) /* request line + headers */
#define MGR_MAX_HEADER_VALUE 4096         /* one kept header's value */
#define MGR_MAX_SESSIONS 1024
#define MGR_MAX_ADDRS 4096 /* login failure records per address */
#define MGR_SESSION_MAX_AGE (12 * 3600.0)

/* ---------------------------------------------------------------- config */

typedef struct mgr_conf {
    char *listen;      /* "127.0.0.1:18080", "[::1]:18080" */
    char *certificate; /* PEM; NULL: generated under STATE/manager */
    char *key;
    char *www_dir;
    char *database;       /* libpq DSN; NULL: the private instance */
    char *control_socket; /* NULL: STATE/control.sock */
    char *user;           /* drop to this user when started as root */
    double session_timeout;
    long long login_max_failures;
    double login_lockout;
    long long max_connections;
    double idle_timeout;
} mgr_conf;

/* ---------------------------------------------------------------- sessions */

typedef struct mgr_session {
    char id[MGR_TOKEN_HEX + 1];
    char csrf[MGR_TOKEN_HEX + 1];
    mgr_user user;
    double created, last_seen; /* util_now() */
    int used;
} mgr_session;

typedef struct mgr_addr_fail {
    char ip[64];
    int failures;
    double last;          /* util_now() of the last failure */
    double blocked_until; /* 0: not blocked */
} mgr_addr_fail;

struct mgr {
    mgr_conf c;
    char *conf_dir, *state_dir, *dsn, *control_path, *www_dir;
    time_t started;
    PGconn *db;
    int no_db; /* fuzzing: mgr_db() always fails, without connecting */
    mgr_session sessions[MGR_MAX_SESSIONS];
    mgr_addr_fail addrs[MGR_MAX_ADDRS];
    char *dummy_hash; /* verified against for unknown users (timing) */
};

/* ---------------------------------------------------------------- requests */

typedef struct mgr_http_req {
    char method[16];
    buf url; /* raw request target */
    buf body;
    char cookie[MGR_MAX_HEADER_VALUE + 1];
    char authorization[MGR_MAX_HEADER_VALUE + 1];
    char csrf[MGR_MAX_HEADER_VALUE + 1];
    char content_type[256];
    char expect[64];
    int keep_alive;
    int http_minor;
} mgr_http_req;

/* Parser states of one connection. */
typedef struct mgr_http {
    http_parser p;
    http_parser_settings s;
    mgr_http_req req;
    size_t header_bytes;
    int hdr_which; /* the header being read: 0 none, 1 cookie, ... */
    int hdr_field_done;
    buf hdr_field;
    int headers_done; /* the current request's headers are all in */
    int complete;     /* a whole request is in req */
    int error;        /* HTTP status to answer before closing, or 0 */
} mgr_http;

void mgr_http_init(mgr_http *h);
void mgr_http_free(mgr_http *h);
/* Feeds bytes; returns how many were consumed.  Stops after a complete
 * request (h->complete) or an error (h->error). */
size_t mgr_http_feed(mgr_http *h, const char *data, size_t len);
/* After the request was answered: ready for the next one. */
void mgr_http_next(mgr_http *h);
/* 1 when the client waits for "100 Continue" before sending the body */
int mgr_http_wants_continue(const mgr_http *h);

/* ---------------------------------------------------------------- responses */

#define MGR_MAX_SET_COOKIE 256

struct mgr_resp {
    int status; /* 0: not set */
    buf body;
    const char *content_type;
    char set_cookie[MGR_MAX_SET_COOKIE];
    int retry_after; /* > 0: a Retry-After header */
    int close;       /* close the connection after it */
};

void mgr_resp_init(mgr_resp *r);
void mgr_resp_free(mgr_resp *r);

/* Answers one request: out gets the complete response bytes.  Returns 1 to
 * keep the connection open, 0 to close it after sending. */
int mgr_route_dispatch(mgr *m, const mgr_http_req *hr, const char *remote_ip,
                       buf *out);
/* An error response for a request that could not be parsed (400/413/431). */
void mgr_route_error(int status, buf *out);

/* percent-decoding: -1 on a bad escape or a NUL; plus_space for queries */
int mgr_url_decode(const char *s, size_t n, char *out, size_t outsz,
                   int plus_space);
const char *mgr_status_text(int status);

/* ---------------------------------------------------------------- auth */

/* The request's user: from the session cookie or the bearer token.
 * Returns 1 authenticated (*u filled, *sess set for cookies, NULL for
 * tokens), 0 not authenticated, -1 database unavailable (503). */
int mgr_auth_request(mgr *m, const mgr_http_req *hr, const char *ip,
                     mgr_user *u, mgr_session **sess);
/* CSRF: 1 when the request carries the session's token. */
int mgr_auth_csrf_ok(const mgr_session *s, const mgr_http_req *hr);
void mgr_auth_login(mgr *m, mgr_req *r, mgr_resp *resp);
void mgr_auth_logout(mgr *m, mgr_req *r, mgr_session *s, mgr_resp *resp);
void mgr_auth_session(mgr *m, mgr_req *r, mgr_session *s, mgr_resp *resp);
/* drops idle sessions and old address records */
void mgr_auth_expire(mgr *m);
const char *mgr_role_name(int role);
int mgr_role_parse(const char *s);

/* ---------------------------------------------------------------- static */

/* GET/HEAD of a non-/api path: fills resp (200, 404, 403). */
void mgr_static_serve(mgr *m, const char *path, mgr_resp *resp);
const char *mgr_static_type(const char *path);

/* ---------------------------------------------------------------- core */

int mgr_init(mgr *m); /* after the config: defaults, dummy hash */
void mgr_free(mgr *m);

#endif
