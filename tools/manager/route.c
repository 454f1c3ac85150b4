/*
 * route.c - sluice-manager's request dispatch: from a parsed request to
 * the complete response bytes.
 *
 * /api/login is the only route open to anyone.  Every other /api path
 * needs a session cookie or a bearer token (401), then the route's
 * min_role (403); every method but GET/HEAD needs the admin role and, with
 * a session cookie, the X-CSRF-Token header equal to the session's token
 * (403).  Bearer-token requests need no CSRF token (no browser sends them
 * on its own).  The route tables of api_*.c are tried in order; ":name"
 * pattern segments match one non-empty path segment (percent-decoded into
 * r->params).  Other paths are static files (GET/HEAD only).
 *
 * Every response carries the security headers (HSTS, CSP without inline
 * script or style, nosniff, no-referrer, X-Frame-Options DENY) and, under
 * /api, Cache-Control: no-store.
 *
 * SECURITY: runs on unauthenticated input; the request target is decoded
 * into bounded buffers, NUL bytes and bad escapes are 400.
 */
#include "mgr_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ROUTE_MAX_SEGS 16
#define ROUTE_MAX_PARAM 512

static const char route_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'";

const char *mgr_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    }
    return "Status";
}

static int route_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mgr_url_decode(const char *s, size_t n, char *out, size_t outsz,
                   int plus_space)
{
    size_t i, o = 0;

    if (outsz == 0)
        return -1;
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = route_hex((unsigned char)s[i + 1]);
            lo = route_hex((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == 0 || o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- matching */

typedef struct route_match {
    char vals[4][ROUTE_MAX_PARAM];
    int n;
} route_match;

/* Splits a raw path "/a/b" into its segments (pointers into tmp, which
 * is cut at every '/'); "/a/" has an empty last segment. */
static int route_split(char *tmp, char **segs)
{
    int n = 0;
    char *p;

    if (tmp[0] != '/')
        return -1;
    p = tmp + 1;
    for (;;) {
        char *e = strchr(p, '/');
        if (n >= ROUTE_MAX_SEGS)
            return -1;
        segs[n++] = p;
        if (e == NULL)
            break;
        *e = '\0';
        p = e + 1;
    }
    return n;
}

static int route_match_one(const char *pattern, char **segs, int nsegs,
                           route_match *mt)
{
    char pat[256], *psegs[ROUTE_MAX_SEGS];
    int np, i;

    if (strlen(pattern) >= sizeof(pat))
        return 0;
    memcpy(pat, pattern, strlen(pattern) + 1);
    if ((np = route_split(pat, psegs)) < 0 || np != nsegs)
        return 0;
    mt->n = 0;
    for (i = 0; i < np; i++) {
        if (psegs[i][0] == ':') {
            if (segs[i][0] == '\0' || mt->n >= 4)
                return 0;
            if (mgr_url_decode(segs[i], strlen(segs[i]), mt->vals[mt->n],
                               sizeof(mt->vals[mt->n]), 0) < 0)
                return 0;
            mt->n++;
        } else if (strcmp(psegs[i], segs[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

static const mgr_route *const route_tables[] = {
    mgr_routes_status,     mgr_routes_stages, mgr_routes_dashboard,
    mgr_routes_quarantine, mgr_routes_lists,  mgr_routes_policy,
};

/* The route for method + raw path; *path_known when only the method is
 * wrong. */
static const mgr_route *route_find(const char *method, const char *raw_path,
                                   route_match *mt, int *path_known)
{
    char tmp[MGR_MAX_URL + 1], *segs[ROUTE_MAX_SEGS];
    int nsegs;
    size_t t;
    const mgr_route *r;

    *path_known = 0;
    if (strlen(raw_path) >= sizeof(tmp))
        return NULL;
    memcpy(tmp, raw_path, strlen(raw_path) + 1);
    if ((nsegs = route_split(tmp, segs)) < 0)
        return NULL;
    for (t = 0; t < sizeof(route_tables) / sizeof(route_tables[0]); t++) {
        for (r = route_tables[t]; r->method != NULL; r++) {
            if (r->pattern == NULL || r->fn == NULL)
                continue;
            if (!route_match_one(r->pattern, segs, nsegs, mt))
                continue;
            if (strcmp(r->method, method) == 0)
                return r;
            *path_known = 1;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- responses */

static void route_finish(const mgr_http_req *hr, int is_api,
                         const mgr_resp *resp, int keep, int head, buf *out)
{
    int status = resp->status ? resp->status : 500;
    const char *ctype =
        resp->content_type ? resp->content_type : "application/json";

    buf_printf(out, "HTTP/1.1 %d %s\r\n", status, mgr_status_text(status));
    buf_printf(out, "Content-Type: %s\r\n", ctype);
    buf_printf(out, "Content-Length: %zu\r\n", resp->body.len);
    buf_adds(out, "Strict-Transport-Security: max-age=31536000\r\n");
    buf_printf(out, "Content-Security-Policy: %s\r\n", route_csp);
    buf_adds(out, "X-Content-Type-Options: nosniff\r\n"
                  "Referrer-Policy: no-referrer\r\n"
                  "X-Frame-Options: DENY\r\n"
                  "Cross-Origin-Opener-Policy: same-origin\r\n"
                  "Cross-Origin-Resource-Policy: same-origin\r\n");
    buf_adds(out, is_api ? "Cache-Control: no-store\r\n"
                         : "Cache-Control: no-cache\r\n");
    if (resp->set_cookie[0])
        buf_printf(out, "Set-Cookie: %s\r\n", resp->set_cookie);
    if (resp->retry_after > 0)
        buf_printf(out, "Retry-After: %d\r\n", resp->retry_after);
    if (status == 405)
        buf_adds(out, is_api ? "Allow: GET, HEAD, POST, DELETE\r\n"
                             : "Allow: GET, HEAD\r\n");
    buf_adds(out,
             keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    buf_adds(out, "\r\n");
    if (!head)
        buf_add(out, resp->body.data ? resp->body.data : "", resp->body.len);
    (void)hr;
}

void mgr_route_error(int status, buf *out)
{
    mgr_resp resp;

    mgr_resp_init(&resp);
    mgr_reply_error(&resp, status, "%s", mgr_status_text(status));
    route_finish(NULL, 1, &resp, 0, 0, out);
    mgr_resp_free(&resp);
}

/* ---------------------------------------------------------------- /api */

static int route_is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static int route_json_body(const mgr_http_req *hr)
{
    const char *ct = hr->content_type;
    size_t n = strlen("application/json");

    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void route_api(mgr *m, const mgr_http_req *hr, mgr_req *r,
                      const char *raw_path, mgr_resp *resp)
{
    mgr_user user;
    mgr_session *sess = NULL;
    const mgr_route *rt;
    route_match mt;
    int known, rc, i;
    const char *method = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;

    if (strcmp(r->path, "/api/login") == 0) {
        if (strcmp(r->method, "POST") != 0) {
            mgr_reply_error(resp, 405, "use POST");
            return;
        }
        /* a cross-site form cannot send this without a CORS preflight,
         * which nothing here answers: no login CSRF */
        if (!route_json_body(hr)) {
            mgr_reply_error(resp, 415,
                            "Content-Type must be "
                            "application/json");
            return;
        }
        mgr_auth_login(m, r, resp);
        return;
    }
    rc = mgr_auth_request(m, hr, r->remote_ip, &user, &sess);
    if (rc < 0) {
        mgr_reply_error(resp, 503, "database unavailable");
        return;
    }
    if (rc == 0) {
        mgr_reply_error(resp, 401, "authentication required");
        return;
    }
    r->user = &user;
    if (!route_is_read(r->method) && sess != NULL &&
        !mgr_auth_csrf_ok(sess, hr)) {
        mgr_audit(r, "refused %s %s: missing or wrong CSRF token", r->method,
                  r->path);
        mgr_reply_error(resp, 403, "missing or wrong X-CSRF-Token");
        return;
    }
    if (strcmp(r->path, "/api/logout") == 0) {
        if (strcmp(r->method, "POST") != 0)
            mgr_reply_error(resp, 405, "use POST");
        else
            mgr_auth_logout(m, r, sess, resp);
        return;
    }
    if (strcmp(r->path, "/api/session") == 0) {
        if (strcmp(method, "GET") != 0)
            mgr_reply_error(resp, 405, "use GET");
        else
            mgr_auth_session(m, r, sess, resp);
        return;
    }
    /* auditors read only: refused before any route is looked at */
    if (!route_is_read(r->method) && user.role < MGR_ROLE_ADMIN) {
        mgr_audit(r, "refused %s %s: role %s", r->method, r->path,
                  mgr_role_name(user.role));
        mgr_reply_error(resp, 403, "this needs the admin role");
        return;
    }
    rt = route_find(method, raw_path, &mt, &known);
    if (rt == NULL) {
        if (known)
            mgr_reply_error(resp, 405, "method not allowed");
        else
            mgr_reply_error(resp, 404, "no such API endpoint");
        return;
    }
    if (user.role < rt->min_role) {
        mgr_audit(r, "refused %s %s: role %s", r->method, r->path,
                  mgr_role_name(user.role));
        mgr_reply_error(resp, 403, "this needs the admin role");
        return;
    }
    for (i = 0; i < mt.n; i++)
        r->params[i] = mt.vals[i];
    r->nparams = mt.n;
    rt->fn(r, resp);
    if (resp->status == 0)
        mgr_reply_error(resp, 500, "the handler gave no answer");
}

int mgr_route_dispatch(mgr *m, const mgr_http_req *hr, const char *remote_ip,
                       buf *out)
{
    char path[MGR_MAX_URL + 1], raw[MGR_MAX_URL + 1];
    const char *url = hr->url.data ? hr->url.data : "";
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);
    int is_api, head = strcmp(hr->method, "HEAD") == 0;
    int keep = hr->keep_alive;
    mgr_resp resp;
    mgr_req r;

    mgr_resp_init(&resp);
    if (plen == 0 || url[0] != '/' || plen >= sizeof(raw) ||
        mgr_url_decode(url, plen, path, sizeof(path), 0) < 0) {
        mgr_reply_error(&resp, 400, "bad request target");
        route_finish(hr, 1, &resp, 0, head, out);
        mgr_resp_free(&resp);
        return 0;
    }
    memcpy(raw, url, plen);
    raw[plen] = '\0';
    {
        char *frag = strchr(raw, '#');
        if (frag)
            *frag = '\0';
    }
    is_api = strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0;
    memset(&r, 0, sizeof(r));
    r.m = m;
    r.method = hr->method;
    r.path = path;
    r.query = q ? q + 1 : "";
    r.body = hr->body.data ? hr->body.data : "";
    r.body_len = hr->body.len;
    r.remote_ip = remote_ip;
    if (is_api)
        route_api(m, hr, &r, raw, &resp);
    else if (route_is_read(hr->method))
        mgr_static_serve(m, path, &resp);
    else
        mgr_reply_error(&resp, 405, "static files: GET or HEAD only");
    if (resp.close)
        keep = 0;
    route_finish(hr, is_api, &resp, keep, head, out);
    mgr_resp_free(&resp);
    return keep;
}
