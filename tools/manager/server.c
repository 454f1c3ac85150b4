/*
 * server.c - sluice-manager's event loop: libev, non-blocking OpenSSL on
 * every connection, HTTP/1.1 keep-alive and pipelining (one request
 * answered at a time).
 *
 * Limits: max_connections (256; more are closed at accept), a TLS
 * handshake within 10 s, a request within 30 s of its first byte, an idle
 * keep-alive connection closed after idle_timeout (60 s), a response
 * written within 30 s.  A client that does not speak TLS (plain HTTP) gets
 * no HTTP answer: the handshake fails and the connection is closed.
 * Every 10 s: mgr_dashboard_tick() and the session expiry.
 *
 * SECURITY: runs unprivileged (main.c dropped privileges before the loop
 * starts); handlers run synchronously on this loop, so one slow database
 * query delays the others (bounded by the statement timeout).
 */
#include "mgr_int.h"
#include "mgr_server.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SRV_HANDSHAKE_TIMEOUT 10.0
#define SRV_REQUEST_TIMEOUT 30.0
#define SRV_WRITE_TIMEOUT 30.0
#define SRV_READ_CHUNK 16384
#define SRV_TICK 10.0

typedef struct srv srv;

typedef struct conn {
    srv *s;
    ev_io io;
    ev_timer timer;
    int fd;
    SSL *ssl;
    int handshaken;
    int in_request; /* bytes of a request arrived, not yet answered */
    double deadline;
    mgr_http http;
    buf in;  /* bytes read, not yet fed to the parser */
    buf out; /* the response being written */
    size_t out_off;
    int close_after;
    int interim;   /* out holds "100 Continue", not the answer */
    int continued; /* sent for the current request */
    char ip[64];
    struct conn *prev, *next;
} conn;

struct srv {
    mgr *m;
    struct ev_loop *loop;
    SSL_CTX *ctx;
    int lfd;
    ev_io accept_io;
    ev_timer tick;
    ev_signal sigterm, sigint;
    conn *conns;
    long long nconns;
};

static void conn_drive(conn *c);

static void conn_close(conn *c)
{
    srv *s = c->s;

    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->timer);
    if (c->ssl) {
        if (c->handshaken)
            SSL_shutdown(c->ssl); /* one close_notify, no waiting */
        SSL_free(c->ssl);
    }
    ERR_clear_error();
    close(c->fd);
    mgr_http_free(&c->http);
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

static void conn_set_deadline(conn *c, double secs)
{
    c->deadline = ev_now(c->s->loop) + secs;
    ev_timer_stop(c->s->loop, &c->timer);
    ev_timer_set(&c->timer, secs, 0.);
    ev_timer_start(c->s->loop, &c->timer);
}

static void conn_want(conn *c, int events)
{
    if ((c->io.events & (EV_READ | EV_WRITE)) == events && ev_is_active(&c->io))
        return;
    ev_io_stop(c->s->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->s->loop, &c->io);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, timer));

    (void)loop;
    (void)revents;
    conn_close(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, io));

    (void)loop;
    (void)revents;
    conn_drive(c);
}

/* Parses what is buffered; queues a response when a request is complete
 * or malformed.  Returns 1 when a response was queued. */
static int conn_process(conn *c)
{
    size_t used;

    if (c->in.len == 0)
        return 0;
    if (!c->in_request) {
        c->in_request = 1;
        conn_set_deadline(c, SRV_REQUEST_TIMEOUT);
    }
    used = mgr_http_feed(&c->http, c->in.data, c->in.len);
    memmove(c->in.data, c->in.data + used, c->in.len - used);
    c->in.len -= used;
    c->in.data[c->in.len] = '\0';
    c->out.len = 0;
    c->out_off = 0;
    if (c->http.error) {
        mgr_route_error(c->http.error, &c->out);
        c->close_after = 1;
        return 1;
    }
    if (c->http.complete) {
        int keep = mgr_route_dispatch(c->s->m, &c->http.req, c->ip, &c->out);
        c->close_after = !keep;
        c->interim = 0;
        return 1;
    }
    if (!c->continued && mgr_http_wants_continue(&c->http)) {
        buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->continued = 1;
        c->interim = 1;
        return 1;
    }
    return 0;
}

static void conn_drive(conn *c)
{
    for (;;) {
        int r, e;

        if (!c->handshaken) {
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->handshaken = 1;
                conn_set_deadline(c, c->s->m->c.idle_timeout);
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                conn_want(c, EV_READ);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                conn_want(c, EV_WRITE);
                return;
            }
            log_debug("TLS handshake with %s failed", c->ip);
            conn_close(c); /* plain HTTP ends here: no HTTP answer */
            return;
        }
        if (c->out_off < c->out.len) { /* writing a response */
            r = SSL_write(c->ssl, c->out.data + c->out_off,
                          (int)(c->out.len - c->out_off));
            if (r > 0) {
                c->out_off += (size_t)r;
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                conn_want(c, EV_READ);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                conn_want(c, EV_WRITE);
                return;
            }
            conn_close(c);
            return;
        }
        if (c->out.len > 0 && c->interim) { /* "100 Continue" is out */
            c->out.len = 0;
            c->out_off = 0;
            c->interim = 0;
            conn_set_deadline(c, SRV_REQUEST_TIMEOUT);
        } else if (c->out.len > 0) { /* a response was sent completely */
            c->out.len = 0;
            c->out_off = 0;
            c->continued = 0;
            if (c->close_after) {
                conn_close(c);
                return;
            }
            mgr_http_next(&c->http);
            c->in_request = 0;
            conn_set_deadline(c, c->s->m->c.idle_timeout);
            if (conn_process(c)) { /* a pipelined request */
                conn_set_deadline(c, SRV_WRITE_TIMEOUT);
                continue;
            }
        }
        {
            char chunk[SRV_READ_CHUNK];
            r = SSL_read(c->ssl, chunk, sizeof(chunk));
            if (r > 0) {
                buf_add(&c->in, chunk, (size_t)r);
                if (conn_process(c))
                    conn_set_deadline(c, SRV_WRITE_TIMEOUT);
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                conn_want(c, EV_READ);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                conn_want(c, EV_WRITE);
                return;
            }
            conn_close(c); /* closed, or a TLS error */
            return;
        }
    }
}

static void srv_addr_text(const struct sockaddr_storage *ss, char *out,
                          size_t n)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)n);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], out, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)n);
    } else {
        snprintf(out, n, "?");
    }
}

static void srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, accept_io));
    int i;

    (void)revents;
    for (i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        conn *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (s->nconns >= s->m->c.max_connections) {
            log_warn("max_connections (%lld) reached: connection closed",
                     s->m->c.max_connections);
            close(fd);
            continue;
        }
        c = util_calloc(1, sizeof(*c));
        c->s = s;
        c->fd = fd;
        srv_addr_text(&ss, c->ip, sizeof(c->ip));
        if ((c->ssl = SSL_new(s->ctx)) == NULL || !SSL_set_fd(c->ssl, fd)) {
            log_warn("TLS: cannot set up a connection");
            if (c->ssl)
                SSL_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        SSL_set_accept_state(c->ssl);
        mgr_http_init(&c->http);
        buf_init(&c->in);
        buf_init(&c->out);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
        ev_init(&c->timer, conn_timeout_cb);
        conn_set_deadline(c, SRV_HANDSHAKE_TIMEOUT);
        ev_io_start(loop, &c->io);
    }
}

static void srv_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    srv *s = (srv *)((char *)w - offsetof(srv, tick));

    (void)loop;
    (void)revents;
    mgr_auth_expire(s->m);
    mgr_dashboard_tick(s->m);
}

static void srv_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("signal %d: stopping", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

int mgr_server_run(mgr *m, SSL_CTX *ctx, int lfd)
{
    srv s;

    memset(&s, 0, sizeof(s));
    s.m = m;
    s.ctx = ctx;
    s.lfd = lfd;
    s.loop = ev_default_loop(EVFLAG_AUTO);
    signal(SIGPIPE, SIG_IGN);
    ev_io_init(&s.accept_io, srv_accept_cb, lfd, EV_READ);
    ev_io_start(s.loop, &s.accept_io);
    ev_timer_init(&s.tick, srv_tick_cb, SRV_TICK, SRV_TICK);
    ev_timer_start(s.loop, &s.tick);
    ev_signal_init(&s.sigterm, srv_signal_cb, SIGTERM);
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_init(&s.sigint, srv_signal_cb, SIGINT);
    ev_signal_start(s.loop, &s.sigint);
    ev_run(s.loop, 0);
    while (s.conns)
        conn_close(s.conns);
    ev_io_stop(s.loop, &s.accept_io);
    ev_timer_stop(s.loop, &s.tick);
    ev_signal_stop(s.loop, &s.sigterm);
    ev_signal_stop(s.loop, &s.sigint);
    ev_loop_destroy(s.loop);
    return 0;
}
