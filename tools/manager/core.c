/*
 * core.c - the helpers mgr.h gives the API handlers: query parameters,
 * JSON bodies and replies, the database handle, the engine's control
 * socket, the audit log.
 *
 * Database: one synchronous libpq connection (connect_timeout 5 s,
 * statement_timeout 10 s), reconnected when broken.  The manager is a
 * low-traffic administrators' tool; a slow query delays the other
 * administrators' requests by at most those bounds.
 * Control socket: one connection per command, 30 s at most (a reload
 * answers when the new generation runs).
 *
 * SECURITY: query strings and bodies are untrusted (bounded decoding,
 * jansson with duplicate keys refused); control commands are built by the
 * handlers, which must not pass newlines through (mgr_control refuses
 * them).  Audit lines name the user and the remote address.
 */
#include "mgr_int.h"
#include "log.h"
#include "mgr_pass.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CORE_CONTROL_TIMEOUT_MS 30000
#define CORE_CONTROL_MAX_REPLY (4 * 1024 * 1024)

void mgr_resp_init(mgr_resp *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body);
}

void mgr_resp_free(mgr_resp *r)
{
    buf_free(&r->body);
}

int mgr_query(const mgr_req *r, const char *name, char *out, size_t outsz)
{
    const char *p = r->query ? r->query : "";
    size_t nl = strlen(name);

    while (*p) {
        const char *end = strchr(p, '&'), *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);

        eq = memchr(p, '=', len);
        {
            char key[128];
            size_t kl = eq ? (size_t)(eq - p) : len;
            if (mgr_url_decode(p, kl, key, sizeof(key), 1) == 0 &&
                strlen(key) == nl && memcmp(key, name, nl) == 0) {
                if (eq == NULL) {
                    if (outsz)
                        out[0] = '\0';
                    return 1;
                }
                if (mgr_url_decode(eq + 1, len - kl - 1, out, outsz, 1) < 0)
                    return 0; /* bad escape or too long: as if absent */
                return 1;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

json_t *mgr_body_json(const mgr_req *r, mgr_resp *resp)
{
    json_error_t e;
    json_t *j;

    if (r->body_len == 0) {
        mgr_reply_error(resp, 400, "a JSON object is expected as the body");
        return NULL;
    }
    j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        mgr_reply_error(resp, 400, "bad JSON at line %d column %d: %s", e.line,
                        e.column, e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        mgr_reply_error(resp, 400, "a JSON object is expected as the body");
        return NULL;
    }
    return j;
}

void mgr_reply_json(mgr_resp *resp, int status, json_t *obj)
{
    char *s;

    resp->body.len = 0;
    if (resp->body.data)
        resp->body.data[0] = '\0';
    resp->status = status;
    resp->content_type = "application/json";
    s = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (s == NULL) {
        buf_adds(&resp->body, "{}");
    } else {
        buf_adds(&resp->body, s);
        free(s);
    }
    json_decref(obj);
}

void mgr_reply_error(mgr_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mgr_reply_json(resp, status, json_pack("{s:s}", "error", msg));
}

PGconn *mgr_db(mgr *m, char *err, size_t errsz)
{
    const char *keys[] = {"connect_timeout", "application_name", "options",
                          "dbname", NULL};
    const char *vals[] = {"5", "sluice-manager", "-c statement_timeout=10000",
                          m->dsn, NULL};

    if (m->no_db || m->dsn == NULL) {
        snprintf(err, errsz, "no database configured");
        return NULL;
    }
    if (m->db != NULL && PQstatus(m->db) == CONNECTION_OK &&
        PQtransactionStatus(m->db) == PQTRANS_IDLE)
        return m->db;
    if (m->db != NULL) {
        /* broken, or left inside a transaction by a failed handler */
        PQfinish(m->db);
        m->db = NULL;
    }
    m->db = PQconnectdbParams(keys, vals, 1);
    if (m->db == NULL || PQstatus(m->db) != CONNECTION_OK) {
        const char *e = m->db ? PQerrorMessage(m->db) : "out of memory";
        size_t n;
        snprintf(err, errsz, "database: %s", e);
        n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        log_warn("%s", err);
        if (m->db)
            PQfinish(m->db);
        m->db = NULL;
        return NULL;
    }
    PQsetNoticeProcessor(m->db, NULL, NULL);
    return m->db;
}

int mgr_control(mgr *m, const char *line, json_t **reply, char *err,
                size_t errsz)
{
    struct sockaddr_un sun;
    int fd = -1;
    buf in;
    size_t off = 0, len = strlen(line);
    json_error_t je;

    *reply = NULL;
    buf_init(&in);
    if (strpbrk(line, "\r\n") != NULL) {
        snprintf(err, errsz, "control command with a line break");
        goto fail;
    }
    if (m->control_path == NULL ||
        strlen(m->control_path) >= sizeof(sun.sun_path)) {
        snprintf(err, errsz, "no usable control socket path");
        goto fail;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, m->control_path, strlen(m->control_path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        snprintf(err, errsz, "engine control socket %s: %s", m->control_path,
                 strerror(errno));
        goto fail;
    }
    while (off <= len) { /* the line, then its newline */
        const char *p = off < len ? line + off : "\n";
        size_t n = off < len ? len - off : 1;
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            snprintf(err, errsz, "control socket: write: %s", strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        char chunk[4096];
        ssize_t r;
        int pr = poll(&pf, 1, CORE_CONTROL_TIMEOUT_MS);
        if (pr == 0) {
            snprintf(err, errsz, "control socket: no answer in %d s",
                     CORE_CONTROL_TIMEOUT_MS / 1000);
            goto fail;
        }
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errsz, "control socket: %s", strerror(errno));
            goto fail;
        }
        r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errsz, "control socket: read: %s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        buf_add(&in, chunk, (size_t)r);
        if (in.len > CORE_CONTROL_MAX_REPLY) {
            snprintf(err, errsz, "control socket: answer too long");
            goto fail;
        }
        if (memchr(in.data, '\n', in.len) != NULL)
            break;
    }
    close(fd);
    fd = -1;
    *reply =
        json_loadb(in.data ? in.data : "", in.len, JSON_DISABLE_EOF_CHECK, &je);
    if (*reply == NULL || !json_is_object(*reply)) {
        json_decref(*reply);
        *reply = NULL;
        snprintf(err, errsz, "control socket: not a JSON answer");
        goto fail;
    }
    buf_free(&in);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    buf_free(&in);
    return -1;
}

void mgr_audit(const mgr_req *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_info("audit: user=%s addr=%s: %s", r && r->user ? r->user->name : "-",
             r && r->remote_ip ? r->remote_ip : "-", msg);
}

const char *mgr_state_dir(mgr *m)
{
    return m->state_dir ? m->state_dir : "";
}

const char *mgr_conf_dir(mgr *m)
{
    return m->conf_dir ? m->conf_dir : "";
}

const char *mgr_version(void)
{
    return SLUICE_VERSION;
}

long long mgr_uptime(mgr *m)
{
    return (long long)(time(NULL) - m->started);
}

const char *mgr_control_socket(mgr *m)
{
    return m->control_path ? m->control_path : "";
}

const char *mgr_dsn(mgr *m)
{
    return m->dsn ? m->dsn : "";
}

int mgr_init(mgr *m)
{
    char err[256] = "random generator failed";
    char hash[MGR_PASS_ENCODED_MAX], pw[MGR_TOKEN_HEX + 1];

    m->started = time(NULL);
    if (m->c.session_timeout <= 0)
        m->c.session_timeout = 1800;
    if (m->c.login_max_failures <= 0)
        m->c.login_max_failures = 5;
    if (m->c.login_lockout <= 0)
        m->c.login_lockout = 900;
    if (m->c.max_connections <= 0)
        m->c.max_connections = 256;
    if (m->c.idle_timeout <= 0)
        m->c.idle_timeout = 60;
    /* unknown user names are checked against this hash of a random
     * password, so they cost as long as a wrong password */
    if (mgr_pass_token(pw) < 0 ||
        mgr_pass_hash(pw, hash, sizeof(hash), err, sizeof(err)) < 0) {
        log_error("cannot prepare the password check: %s", err);
        return -1;
    }
    mgr_pass_wipe(pw, sizeof(pw));
    m->dummy_hash = util_strdup(hash);
    return 0;
}

void mgr_free(mgr *m)
{
    if (m->db)
        PQfinish(m->db);
    m->db = NULL;
    free(m->dummy_hash);
    m->dummy_hash = NULL;
    mgr_pass_wipe(m->sessions, sizeof(m->sessions));
}
