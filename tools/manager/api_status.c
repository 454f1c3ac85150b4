/*
 * api_status.c - GET /api/status: the engine (control `status`), the
 * database (connection and schema version), sluice-blocklistd (one query
 * to the address the blocklist stage uses) and the Manager itself.
 *
 *   {"engine": {...control status...} | {"ok":false,"error"},
 *    "database": {"ok","schema_version","error"?},
 *    "blocklistd": {"ok","address","configured","latency_ms"?,"error"?},
 *    "manager": {"version","uptime","pid"}}
 *
 * The blocklist check connects, sends "Q <id> 127.0.0.1" (protocol 1,
 * tools/blocklistd/bl_proto.h) and wants "A <id> ..." back, within
 * API_BL_TIMEOUT_MS in all: a hung daemon delays this page by that much.
 *
 * SECURITY: auditors may read it (nothing secret: no DSN, no password).
 * The daemon's answer is only compared, never echoed.
 */
#include "api_util.h"
#include "mgr_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define API_BL_TIMEOUT_MS 1500
#define API_BL_DEFAULT "127.0.0.1:4466"

static double st_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int st_left(double deadline)
{
    double l = deadline - st_now_ms();

    return l > 0 ? (int)l + 1 : 0;
}

/* "host:port" or "[v6]:port" into host and port. */
static int st_split(const char *a, char *host, size_t hs, char *port, size_t ps)
{
    const char *c;

    if (a[0] == '[') {
        const char *rb = strchr(a, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - a - 1) >= hs)
            return -1;
        snprintf(host, hs, "%.*s", (int)(rb - a - 1), a + 1);
        c = rb + 1;
    } else {
        c = strrchr(a, ':');
        if (c == NULL || c == a || (size_t)(c - a) >= hs)
            return -1;
        snprintf(host, hs, "%.*s", (int)(c - a), a);
    }
    snprintf(port, ps, "%s", c + 1);
    return port[0] ? 0 : -1;
}

/* 0 when the daemon answered the query; -1 and err. */
static int st_blocklist_query(const char *addr, char *err, size_t errsz)
{
    char host[256], port[32], in[512];
    struct addrinfo hints, *ai = NULL;
    double deadline = st_now_ms() + API_BL_TIMEOUT_MS;
    static const char q[] = "Q mgr-status 127.0.0.1\n";
    size_t got = 0, sent = 0;
    int fd = -1, rc = -1, e;
    struct pollfd p;

    if (st_split(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, errsz, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((e = getaddrinfo(host, port, &hints, &ai)) != 0) {
        snprintf(err, errsz, "%s: %s", addr, gai_strerror(e));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsz, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        snprintf(err, errsz, "connect: %s", strerror(errno));
        goto out;
    }
    p.fd = fd;
    p.events = POLLOUT;
    if (poll(&p, 1, st_left(deadline)) <= 0) {
        snprintf(err, errsz, "connect: timed out");
        goto out;
    }
    {
        socklen_t sl = sizeof(e);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0 || e != 0) {
            snprintf(err, errsz, "connect: %s", strerror(e ? e : errno));
            goto out;
        }
    }
    while (sent < sizeof(q) - 1) {
        ssize_t w = send(fd, q + sent, sizeof(q) - 1 - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            p.events = POLLOUT;
            if (poll(&p, 1, st_left(deadline)) <= 0)
                break;
            continue;
        }
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    if (sent < sizeof(q) - 1) {
        snprintf(err, errsz, "send failed");
        goto out;
    }
    while (got < sizeof(in) - 1 && memchr(in, '\n', got) == NULL) {
        ssize_t n;
        p.events = POLLIN;
        if (poll(&p, 1, st_left(deadline)) <= 0) {
            snprintf(err, errsz, "no answer within %d ms", API_BL_TIMEOUT_MS);
            goto out;
        }
        n = recv(fd, in + got, sizeof(in) - 1 - got, 0);
        if (n <= 0) {
            snprintf(err, errsz, "connection closed without an answer");
            goto out;
        }
        got += (size_t)n;
    }
    in[got] = '\0';
    if (strncmp(in, "A mgr-status ", 13) != 0) {
        snprintf(err, errsz, "unexpected answer (not blocklist protocol 1)");
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

static json_t *st_blocklistd(mgr *m)
{
    char addr[256], err[256];
    int configured = 0;
    double t0;
    json_t *o = json_object();

    mgr_conf_stage_key(mgr_conf_dir(m), "blocklist", "server", API_BL_DEFAULT,
                       addr, sizeof(addr), &configured);
    json_object_set_new(o, "address", api_jstr(addr));
    json_object_set_new(o, "configured", json_boolean(configured));
    t0 = st_now_ms();
    if (st_blocklist_query(addr, err, sizeof(err)) == 0) {
        json_object_set_new(o, "ok", json_true());
        json_object_set_new(o, "latency_ms", json_real(st_now_ms() - t0));
    } else {
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error", api_jstr(err));
    }
    return o;
}

static json_t *st_database(mgr *m)
{
    char err[512];
    json_t *o = json_object();
    PGconn *c = mgr_db(m, err, sizeof(err));
    PGresult *res;

    if (c == NULL) {
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error", api_jstr(err));
        return o;
    }
    res = api_exec_quiet(c,
                         "SELECT coalesce(max(version), 0) FROM "
                         "schema_version",
                         0, NULL, 0, err, sizeof(err));
    if (res == NULL) {
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error", api_jstr(err));
        return o;
    }
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "schema_version",
                        json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
    PQclear(res);
    return o;
}

static void st_get(mgr_req *r, mgr_resp *resp)
{
    json_t *out = json_object(), *eng = NULL, *me = json_object();
    char err[512];

    if (mgr_control(r->m, "status", &eng, err, sizeof(err)) < 0) {
        eng = json_object();
        json_object_set_new(eng, "ok", json_false());
        json_object_set_new(eng, "error", api_jstr(err));
    }
    json_object_set_new(out, "engine", eng);
    json_object_set_new(out, "database", st_database(r->m));
    json_object_set_new(out, "blocklistd", st_blocklistd(r->m));
    json_object_set_new(me, "version", api_jstr(mgr_version()));
    json_object_set_new(me, "uptime", json_integer(mgr_uptime(r->m)));
    json_object_set_new(me, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(out, "manager", me);
    mgr_reply_json(resp, 200, out);
}

const mgr_route mgr_routes_status[] = {
    {"GET", "/api/status", MGR_ROLE_AUDITOR, st_get},
    {NULL, NULL, 0, NULL},
};
