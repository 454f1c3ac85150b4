/*
 * auth.c - sluice-manager's authentication: sessions, CSRF tokens,
 * login with lockout and rate limiting, API tokens.
 *
 * Sessions live in memory (a restart logs everyone out): a 256-bit random
 * id (OpenSSL RAND_bytes, hex) in the cookie sluice_session (Secure;
 * HttpOnly; SameSite=Strict; Path=/), a 256-bit CSRF token returned by
 * login and GET /api/session, an idle timeout (session_timeout, default
 * 30 min) and a maximum age of 12 h.  At most MGR_MAX_SESSIONS; the least
 * recently used one goes when full.  Each request re-reads the account
 * (name, role) from the database, so `sluicectl admin remove` and role
 * changes take effect at once.
 *
 * Login: an account with login_max_failures (5) consecutive bad passwords
 * is locked for login_lockout (15 min): 429 with retry_after, even for the
 * right password.  An address with 4 x login_max_failures failures (bad
 * passwords, unknown users, bad tokens), each less than login_lockout
 * after the one before, is refused (429, and 401 for tokens) for
 * login_lockout.  Unknown users cost one argon2id verification
 * like known ones.
 *
 * API tokens: "Authorization: Bearer TOKEN"; the database holds only the
 * SHA-256 of the token (api_token.token_hash).
 *
 * SECURITY: ids, CSRF tokens are compared with CRYPTO_memcmp; passwords
 * are wiped after use and never logged.  Every login, failure, lockout and
 * logout is an audit line.
 */
#include "mgr_int.h"
#include "log.h"
#include "mgr_pass.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_COOKIE "sluice_session"
#define AUTH_ADDR_FACTOR 4

const char *mgr_role_name(int role)
{
    switch (role) {
    case MGR_ROLE_ADMIN:
        return "admin";
    case MGR_ROLE_AUDITOR:
        return "auditor";
    }
    return "none";
}

int mgr_role_parse(const char *s)
{
    if (s && strcmp(s, "admin") == 0)
        return MGR_ROLE_ADMIN;
    if (s && strcmp(s, "auditor") == 0)
        return MGR_ROLE_AUDITOR;
    return MGR_ROLE_NONE;
}

/* 1 when s is exactly 64 lower-case hex digits */
static int auth_is_token(const char *s, size_t n)
{
    size_t i;

    if (n != MGR_TOKEN_HEX)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- addresses */

/* The record of ip (created when asked); records whose last failure and
 * block are older than login_lockout are forgotten. */
static mgr_addr_fail *auth_addr(mgr *m, const char *ip, int create)
{
    size_t i, oldest = 0;
    double now = util_now();

    for (i = 0; i < MGR_MAX_ADDRS; i++) {
        mgr_addr_fail *a = &m->addrs[i];
        if (a->ip[0] && now - a->last > m->c.login_lockout &&
            now >= a->blocked_until)
            memset(a, 0, sizeof(*a));
        if (a->ip[0] && strcmp(a->ip, ip) == 0)
            return a;
    }
    if (!create)
        return NULL;
    for (i = 0; i < MGR_MAX_ADDRS; i++) {
        if (m->addrs[i].ip[0] == '\0')
            break;
        if (m->addrs[i].last < m->addrs[oldest].last)
            oldest = i;
    }
    if (i == MGR_MAX_ADDRS)
        i = oldest;
    memset(&m->addrs[i], 0, sizeof(m->addrs[i]));
    snprintf(m->addrs[i].ip, sizeof(m->addrs[i].ip), "%s", ip);
    return &m->addrs[i];
}

/* seconds until the address may try again, 0 when it may now */
static int auth_addr_blocked(mgr *m, const char *ip)
{
    mgr_addr_fail *a = auth_addr(m, ip, 0);
    double left;

    if (a == NULL || a->blocked_until <= util_now())
        return 0;
    left = a->blocked_until - util_now();
    return left < 1 ? 1 : (int)left;
}

/* A failure from ip: failures less than login_lockout apart add up; at
 * AUTH_ADDR_FACTOR x login_max_failures the address is refused for
 * login_lockout. */
static void auth_addr_fail(mgr *m, const char *ip)
{
    mgr_addr_fail *a = auth_addr(m, ip, 1);
    double now = util_now();

    if (a->blocked_until != 0 && now >= a->blocked_until) {
        a->failures = 0; /* served its time */
        a->blocked_until = 0;
    }
    a->failures++;
    a->last = now;
    if (a->failures >= AUTH_ADDR_FACTOR * (int)m->c.login_max_failures &&
        a->blocked_until == 0) {
        a->blocked_until = now + m->c.login_lockout;
        log_warn("audit: user=- addr=%s: %d failed logins, address refused "
                 "for %.0f s",
                 ip, a->failures, m->c.login_lockout);
    }
}

/* ---------------------------------------------------------------- sessions */

static void auth_session_drop(mgr_session *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

void mgr_auth_expire(mgr *m)
{
    size_t i;
    double now = util_now();

    for (i = 0; i < MGR_MAX_SESSIONS; i++) {
        mgr_session *s = &m->sessions[i];
        if (s->used && (now - s->last_seen > m->c.session_timeout ||
                        now - s->created > MGR_SESSION_MAX_AGE))
            auth_session_drop(s);
    }
    (void)auth_addr(m, "", 0); /* clears finished windows */
}

static mgr_session *auth_session_new(mgr *m, const mgr_user *u)
{
    size_t i, victim = 0;
    mgr_session *s = NULL;

    mgr_auth_expire(m);
    for (i = 0; i < MGR_MAX_SESSIONS; i++) {
        if (!m->sessions[i].used) {
            s = &m->sessions[i];
            break;
        }
        if (m->sessions[i].last_seen < m->sessions[victim].last_seen)
            victim = i;
    }
    if (s == NULL) {
        s = &m->sessions[victim];
        log_warn("sessions full (%d): the least recently used one ends",
                 MGR_MAX_SESSIONS);
        auth_session_drop(s);
    }
    if (mgr_pass_token(s->id) < 0 || mgr_pass_token(s->csrf) < 0) {
        auth_session_drop(s);
        return NULL;
    }
    s->user = *u;
    s->created = s->last_seen = util_now();
    s->used = 1;
    return s;
}

/* The value of cookie `name` in a Cookie header, or NULL. */
static const char *auth_cookie(const char *hdr, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = hdr;

    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            *len = strcspn(v, ";");
            while (*len > 0 && v[*len - 1] == ' ')
                (*len)--;
            return v;
        }
        p += strcspn(p, ";");
    }
    return NULL;
}

static mgr_session *auth_session_find(mgr *m, const char *id, size_t n)
{
    size_t i;
    mgr_session *found = NULL;
    double now = util_now();

    if (!auth_is_token(id, n))
        return NULL;
    /* every slot compared, in constant time per slot */
    for (i = 0; i < MGR_MAX_SESSIONS; i++) {
        mgr_session *s = &m->sessions[i];
        if (s->used && CRYPTO_memcmp(s->id, id, MGR_TOKEN_HEX) == 0)
            found = s;
    }
    if (found && (now - found->last_seen > m->c.session_timeout ||
                  now - found->created > MGR_SESSION_MAX_AGE)) {
        auth_session_drop(found);
        return NULL;
    }
    return found;
}

/* Re-reads the account: 1 still there (u updated), 0 gone, -1 db down. */
static int auth_reload_user(mgr *m, mgr_user *u)
{
    char err[256], idbuf[32];
    const char *params[1] = {idbuf};
    PGconn *db;
    PGresult *res;
    int rc;

    if (m->no_db)
        return 1; /* fuzzing: the in-memory session is all there is */
    if ((db = mgr_db(m, err, sizeof(err))) == NULL)
        return -1;
    snprintf(idbuf, sizeof(idbuf), "%lld", u->id);
    res = PQexecParams(db, "SELECT name, role FROM admin_user WHERE id = $1", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("database: reading account %lld: %s", u->id,
                 PQerrorMessage(db));
        PQclear(res);
        return -1;
    }
    rc = PQntuples(res) == 1;
    if (rc) {
        snprintf(u->name, sizeof(u->name), "%s", PQgetvalue(res, 0, 0));
        u->role = mgr_role_parse(PQgetvalue(res, 0, 1));
        if (u->role == MGR_ROLE_NONE)
            rc = 0;
    }
    PQclear(res);
    return rc;
}

static int auth_token(mgr *m, const char *tok, size_t n, const char *ip,
                      mgr_user *u)
{
    char hash[MGR_TOKEN_HEX + 1], err[256];
    const char *params[1] = {hash};
    PGconn *db;
    PGresult *res;
    int rc = 0;

    if (auth_addr_blocked(m, ip))
        return 0;
    if (!auth_is_token(tok, n)) {
        auth_addr_fail(m, ip);
        return 0;
    }
    if ((db = mgr_db(m, err, sizeof(err))) == NULL)
        return -1;
    mgr_pass_token_hash(tok, n, hash);
    res = PQexecParams(db,
                       "UPDATE api_token t SET last_used = now() "
                       "FROM admin_user u WHERE u.id = t.user_id "
                       "AND t.token_hash = $1 RETURNING u.id, u.name, u.role",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("database: API token: %s", PQerrorMessage(db));
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        u->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(u->name, sizeof(u->name), "%s", PQgetvalue(res, 0, 1));
        u->role = mgr_role_parse(PQgetvalue(res, 0, 2));
        rc = u->role != MGR_ROLE_NONE;
    }
    PQclear(res);
    if (!rc) {
        auth_addr_fail(m, ip);
        log_warn("audit: user=- addr=%s: unknown API token refused", ip);
    }
    return rc;
}

int mgr_auth_request(mgr *m, const mgr_http_req *hr, const char *ip,
                     mgr_user *u, mgr_session **sess)
{
    const char *v;
    size_t n;
    int rc;

    *sess = NULL;
    memset(u, 0, sizeof(*u));
    if (hr->authorization[0]) {
        v = hr->authorization;
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return 0;
        v += 7;
        while (*v == ' ')
            v++;
        n = strlen(v);
        while (n > 0 && v[n - 1] == ' ')
            n--;
        return auth_token(m, v, n, ip, u);
    }
    if ((v = auth_cookie(hr->cookie, AUTH_COOKIE, &n)) == NULL)
        return 0;
    if ((*sess = auth_session_find(m, v, n)) == NULL)
        return 0;
    rc = auth_reload_user(m, &(*sess)->user);
    if (rc <= 0) {
        if (rc == 0) {
            log_info("audit: user=%s addr=%s: session ended: the account "
                     "is gone",
                     (*sess)->user.name, ip);
            auth_session_drop(*sess);
        }
        *sess = NULL;
        return rc;
    }
    (*sess)->last_seen = util_now();
    *u = (*sess)->user;
    return 1;
}

int mgr_auth_csrf_ok(const mgr_session *s, const mgr_http_req *hr)
{
    if (s == NULL)
        return 0;
    if (strlen(hr->csrf) != MGR_TOKEN_HEX)
        return 0;
    return CRYPTO_memcmp(s->csrf, hr->csrf, MGR_TOKEN_HEX) == 0;
}

/* ---------------------------------------------------------------- login */

static void auth_cookie_set(mgr_resp *resp, const char *value, int clear)
{
    snprintf(resp->set_cookie, sizeof(resp->set_cookie),
             AUTH_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict%s",
             value, clear ? "; Max-Age=0" : "");
}

static void auth_locked(mgr_resp *resp, int secs, const char *what)
{
    mgr_reply_json(resp, 429,
                   json_pack("{s:s,s:i}", "error", what, "retry_after", secs));
    resp->retry_after = secs;
}

/* A bad password for an existing account: counts it, locks at the limit.
 * Returns 1 when this failure locked the account. */
static int auth_count_failure(mgr *m, PGconn *db, const char *id)
{
    char maxf[32], secs[32];
    const char *params[3] = {id, maxf, secs};
    PGresult *res;
    int locked = 0;

    snprintf(maxf, sizeof(maxf), "%lld", m->c.login_max_failures);
    snprintf(secs, sizeof(secs), "%.0f", m->c.login_lockout);
    /* only reached when not locked: a set locked_until is an old lock
     * that ran out, and the count starts again */
    res = PQexecParams(
        db,
        "UPDATE admin_user SET "
        "failed = CASE WHEN locked_until IS NOT NULL THEN 1 "
        "ELSE failed + 1 END, "
        "locked_until = CASE WHEN (CASE WHEN locked_until IS NOT NULL "
        "THEN 1 ELSE failed + 1 END) >= $2::int "
        "THEN now() + $3::int * interval '1 second' ELSE NULL END "
        "WHERE id = $1 RETURNING failed, locked_until IS NOT NULL",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        locked = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    else
        log_warn("database: counting a failed login: %s", PQerrorMessage(db));
    PQclear(res);
    return locked;
}

void mgr_auth_login(mgr *m, mgr_req *r, mgr_resp *resp)
{
    json_t *body, *ju, *jp;
    const char *name, *pw;
    char err[256];
    const char *params[1];
    PGconn *db;
    PGresult *res = NULL;
    int found = 0, ok, wait;
    mgr_user u;
    mgr_session *s;

    if ((wait = auth_addr_blocked(m, r->remote_ip)) > 0) {
        mgr_audit(r, "login refused: too many failures from this address");
        auth_locked(resp, wait, "too many failed logins from this address");
        return;
    }
    if ((body = mgr_body_json(r, resp)) == NULL)
        return;
    ju = json_object_get(body, "user");
    jp = json_object_get(body, "password");
    if (!json_is_string(ju) || !json_is_string(jp) ||
        strlen(json_string_value(ju)) != json_string_length(ju) ||
        strlen(json_string_value(jp)) != json_string_length(jp)) {
        json_decref(body);
        mgr_reply_error(resp, 400,
                        "\"user\" and \"password\" (strings) "
                        "are required");
        return;
    }
    name = json_string_value(ju);
    pw = json_string_value(jp);
    if (strlen(name) == 0 || strlen(name) >= sizeof(u.name) ||
        strlen(pw) > MGR_PASS_MAX_LEN) {
        auth_addr_fail(m, r->remote_ip);
        mgr_audit(r, "login failed: malformed user name or password");
        mgr_reply_error(resp, 401, "bad user name or password");
        goto out;
    }
    if ((db = mgr_db(m, err, sizeof(err))) == NULL) {
        mgr_reply_error(resp, 503, "database unavailable");
        goto out;
    }
    params[0] = name;
    res = PQexecParams(
        db,
        "SELECT id, role, pw_hash, "
        "coalesce(locked_until > now(), false), "
        "greatest(1, ceil(extract(epoch FROM locked_until - now())))::bigint "
        "FROM admin_user WHERE name = $1",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("database: login: %s", PQerrorMessage(db));
        mgr_reply_error(resp, 503, "database unavailable");
        goto out;
    }
    found = PQntuples(res) == 1;
    if (found && strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        int secs = atoi(PQgetvalue(res, 0, 4));
        mgr_audit(r, "login refused for '%s': account locked", name);
        auth_locked(resp, secs > 0 ? secs : 1, "account locked");
        goto out;
    }
    ok = mgr_pass_verify(found ? PQgetvalue(res, 0, 2) : m->dummy_hash, pw);
    if (!found || !ok) {
        auth_addr_fail(m, r->remote_ip);
        if (found && auth_count_failure(m, db, PQgetvalue(res, 0, 0)))
            mgr_audit(r,
                      "account '%s' locked for %.0f s after %lld failed "
                      "logins",
                      name, m->c.login_lockout, m->c.login_max_failures);
        mgr_audit(r, "login failed for '%s'%s", name,
                  found ? "" : " (no such account)");
        mgr_reply_error(resp, 401, "bad user name or password");
        goto out;
    }
    memset(&u, 0, sizeof(u));
    u.id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(u.name, sizeof(u.name), "%s", name);
    u.role = mgr_role_parse(PQgetvalue(res, 0, 1));
    PQclear(res);
    res = NULL;
    {
        char idbuf[32];
        const char *p1[1] = {idbuf};
        snprintf(idbuf, sizeof(idbuf), "%lld", u.id);
        res = PQexecParams(db,
                           "UPDATE admin_user SET failed = 0, "
                           "locked_until = NULL, last_login = now() "
                           "WHERE id = $1",
                           1, NULL, p1, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            log_warn("database: login bookkeeping: %s", PQerrorMessage(db));
    }
    if (u.role == MGR_ROLE_NONE || (s = auth_session_new(m, &u)) == NULL) {
        mgr_reply_error(resp, 500, "cannot create a session");
        goto out;
    }
    r->user = &s->user;
    mgr_audit(r, "login ok (role %s)", mgr_role_name(u.role));
    auth_cookie_set(resp, s->id, 0);
    mgr_reply_json(resp, 200,
                   json_pack("{s:s,s:s,s:s}", "user", u.name, "role",
                             mgr_role_name(u.role), "csrf", s->csrf));
out:
    if (res)
        PQclear(res);
    /* the password's copy inside jansson */
    mgr_pass_wipe((char *)pw, strlen(pw));
    json_decref(body);
}

void mgr_auth_logout(mgr *m, mgr_req *r, mgr_session *s, mgr_resp *resp)
{
    (void)m;
    mgr_audit(r, "logout");
    if (s != NULL)
        auth_session_drop(s);
    auth_cookie_set(resp, "", 1);
    mgr_reply_json(resp, 200, json_object());
}

void mgr_auth_session(mgr *m, mgr_req *r, mgr_session *s, mgr_resp *resp)
{
    (void)m;
    mgr_reply_json(resp, 200,
                   json_pack("{s:s,s:s,s:s?}", "user", r->user->name, "role",
                             mgr_role_name(r->user->role), "csrf",
                             s ? s->csrf : NULL));
}
