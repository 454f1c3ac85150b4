/*
 * blocklistd.c - sluice-blocklistd, the IP blocklist daemon.
 *
 * Usage: sluice-blocklistd [-l LISTEN]... [-u USER] [-c MAXCLIENTS] [-n]
 *                          [-v] [-t] SOURCE...
 *   SOURCE      a list file, or a directory whose *.list files are read
 *               (name order); the format is in bl_table.h and README.md
 *   -l LISTEN   127.0.0.1:4466 (default), [::1]:4466 or unix:/PATH;
 *               repeatable
 *   -u USER     drop to USER after binding (default: sluice if that user
 *               exists, else nobody); only when started as root
 *   -c N        at most N clients at once (default 1024)
 *   -n          no syslog (stderr only)
 *   -v          debug logging
 *   -t          load the sources, print what they hold, exit (0: valid)
 *
 * One libev loop serves every client; queries are answered from the
 * current table in request order (bl_proto.h).  SIGHUP reloads: a thread
 * builds a new table from the same sources while the loop keeps
 * answering from the old one; when the new one is complete the loop
 * swaps the pointer between two requests, so no query waits for a load
 * and none sees half a table.  A load that fails (bad line, unreadable
 * file) logs file:line and keeps the old table.  SIGTERM/SIGINT stop.
 *
 * Diagnostics: to stderr and syslog (facility mail).  Fatal at start: bad
 * options, a listener that cannot be bound, a user that cannot be taken,
 * sources that do not load.  Exit 0 after SIGTERM.
 *
 * SECURITY: binds loopback by default; started as root it binds, then
 * drops to an unprivileged user before reading any list or any request
 * (so list files must be readable by that user).  A unix socket is made
 * mode 0660, owned by that user.  Clients are untrusted: lines are
 * bounded (256 bytes), a client that does not read its answers stops
 * being read (bounded output buffer), and the number of clients is
 * capped.
 */
#include "bl_proto.h"
#include "bl_table.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define BLD_MAX_LISTEN 8
#define BLD_MAX_SOURCES 64
#define BLD_RBUF 16384
#define BLD_WBUF_HIGH (256 * 1024) /* stop reading a client above this */

enum { BLD_DEBUG, BLD_INFO, BLD_WARN, BLD_ERROR };

typedef struct bld_client bld_client;

typedef struct bld_listener {
    ev_io w;
    int fd;
    char name[128];
} bld_listener;

/* The daemon: one per process, reached from watchers through w.data. */
typedef struct bld {
    struct ev_loop *loop;
    bld_listener lis[BLD_MAX_LISTEN];
    size_t nlis;
    const char *sources[BLD_MAX_SOURCES];
    size_t nsources;
    bl_table *table; /* the table queries see */
    double loaded_at, load_ms;
    unsigned long long generation;
    /* reload: a loader thread fills `next` and signals `done` */
    ev_signal sighup, sigterm, sigint;
    ev_async done;
    pthread_mutex_t mu;
    bl_table *next;
    char next_err[512];
    int next_ready, loading, reload_again;
    double next_ms;
    /* clients */
    bld_client *clients;
    size_t nclients, maxclients;
    int stopping;
    /* counters */
    unsigned long long queries, hits, errors, reloads, reload_failures,
        accepted;
} bld;

struct bld_client {
    ev_io w;
    bld *d;
    bld_client *next, *prev;
    int fd, eof, reading;
    bl_split split;
    char rbuf[BLD_RBUF];
    size_t rlen;
    char *wbuf;
    size_t wlen, woff, wcap;
};

static int bld_verbose, bld_syslog = 1;

static void bld_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bld_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    char msg[1024], ts[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level == BLD_DEBUG && !bld_verbose)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld sluice-blocklistd[%ld]: %s: %s\n", ts,
            (long)tv.tv_usec / 1000, (long)getpid(), names[level], msg);
    if (bld_syslog)
        syslog(prio[level], "%s: %s", names[level], msg);
}

static double bld_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- */
/* Loading                                                          */

static int bld_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.list files of directory dir into t, in name order. */
static int bld_load_dir(bl_table *t, const char *dir, char *err, size_t errsz)
{
    DIR *dp = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;

    if (dp == NULL) {
        snprintf(err, errsz, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(dp)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 ||
            strcmp(de->d_name + l - 5, ".list") != 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof(*nn));
            if (nn == NULL) {
                rc = -1;
                break;
            }
            names = nn;
            cap = nc;
        }
        if ((names[n] = strdup(de->d_name)) == NULL) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(dp);
    if (rc < 0)
        snprintf(err, errsz, "%s: out of memory", dir);
    else if (n > 0)
        qsort(names, n, sizeof(*names), bld_name_cmp);
    for (i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            continue;
        rc = bl_table_load_file(t, path, err, errsz);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* A complete new table from every source, or NULL with err set. */
static bl_table *bld_load(const char *const *sources, size_t n, char *err,
                          size_t errsz)
{
    bl_table *t = bl_table_new();
    size_t i;

    if (t == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        struct stat st;
        int rc;
        if (stat(sources[i], &st) < 0) {
            snprintf(err, errsz, "%s: %s", sources[i], strerror(errno));
            bl_table_free(t);
            return NULL;
        }
        rc = S_ISDIR(st.st_mode)
                 ? bld_load_dir(t, sources[i], err, errsz)
                 : bl_table_load_file(t, sources[i], err, errsz);
        if (rc < 0) {
            bl_table_free(t);
            return NULL;
        }
    }
    if (bl_table_build(t, err, errsz) < 0) {
        bl_table_free(t);
        return NULL;
    }
    return t;
}

static void bld_log_table(const bl_table *t, double ms, const char *what)
{
    bl_table_stats st;
    unsigned i;
    char names[BL_MAX_LISTS * (BL_LIST_NAME_MAX + 1) + 1];
    size_t off = 0;

    bl_table_stats_get(t, &st);
    names[0] = '\0';
    for (i = 0; i < st.lists && off + BL_LIST_NAME_MAX + 2 < sizeof(names); i++)
        off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
                                i ? "," : "", bl_table_list_name(t, i));
    bld_log(BLD_INFO,
            "%s: %zu entries in %zu lists (%s): %zu IPv4 and %zu IPv6 "
            "ranges, %.1f MB, %.0f ms",
            what, st.entries, st.lists, st.lists ? names : "-", st.v4_ranges,
            st.v6_ranges, (double)st.bytes / (1024.0 * 1024.0), ms);
}

static void *bld_loader(void *arg)
{
    bld *d = arg;
    char err[512] = "";
    double t0 = bld_now();
    bl_table *t = bld_load(d->sources, d->nsources, err, sizeof(err));

    pthread_mutex_lock(&d->mu);
    d->next = t;
    snprintf(d->next_err, sizeof(d->next_err), "%s", err);
    d->next_ms = (bld_now() - t0) * 1000.0;
    d->next_ready = 1;
    pthread_mutex_unlock(&d->mu);
    ev_async_send(d->loop, &d->done);
    return NULL;
}

static void bld_reload_start(bld *d)
{
    pthread_t th;
    pthread_attr_t at;
    int rc;

    if (d->loading) {
        d->reload_again = 1; /* after the one running: the files changed */
        return;
    }
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &at, bld_loader, d);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        bld_log(BLD_ERROR,
                "reload: cannot start the loader: %s; keeping "
                "the current lists",
                strerror(rc));
        d->reload_failures++;
        return;
    }
    d->loading = 1;
}

/* In the loop: the loader finished; swap or keep. */
static void bld_reload_done(struct ev_loop *loop, ev_async *w, int revents)
{
    bld *d = w->data;
    bl_table *t;
    char err[512];
    double ms;

    pthread_mutex_lock(&d->mu);
    if (!d->next_ready) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    t = d->next;
    d->next = NULL;
    d->next_ready = 0;
    snprintf(err, sizeof(err), "%s", d->next_err);
    ms = d->next_ms;
    pthread_mutex_unlock(&d->mu);
    d->loading = 0;
    if (t == NULL) {
        d->reload_failures++;
        bld_log(BLD_ERROR, "reload failed, keeping the current lists: %s", err);
    } else {
        bl_table *old = d->table;
        d->table = t; /* the loop is the only reader: no lock needed */
        bl_table_free(old);
        malloc_trim(0); /* the build's scratch memory goes back now */
        d->reloads++;
        d->generation++;
        d->loaded_at = ev_now(loop);
        d->load_ms = ms;
        bld_log_table(t, ms, "reloaded");
    }
    if (d->reload_again && !d->stopping) {
        d->reload_again = 0;
        bld_reload_start(d);
    }
}

/* ---------------------------------------------------------------- */
/* Clients                                                          */

static void bld_client_close(bld_client *c)
{
    bld *d = c->d;

    ev_io_stop(d->loop, &c->w);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nclients--;
    free(c->wbuf);
    free(c);
}

static int bld_out(bld_client *c, const char *s, size_t n)
{
    if (c->wlen + n > c->wcap) {
        size_t nc = c->wcap ? c->wcap : 4096;
        char *nb;
        while (nc < c->wlen + n)
            nc *= 2;
        if ((nb = realloc(c->wbuf, nc)) == NULL)
            return -1;
        c->wbuf = nb;
        c->wcap = nc;
    }
    memcpy(c->wbuf + c->wlen, s, n);
    c->wlen += n;
    return 0;
}

static size_t bld_stats_line(bld *d, char *out, size_t outsz)
{
    bl_table_stats st;

    bl_table_stats_get(d->table, &st);
    return (size_t)snprintf(
        out, outsz,
        "S entries=%zu lists=%zu v4_ranges=%zu v6_ranges=%zu bytes=%zu "
        "generation=%llu loaded=%.0f load_ms=%.0f clients=%zu queries=%llu "
        "hits=%llu errors=%llu reloads=%llu reload_failures=%llu\n",
        st.entries, st.lists, st.v4_ranges, st.v6_ranges, st.bytes,
        d->generation, d->loaded_at, d->load_ms, d->nclients, d->queries,
        d->hits, d->errors, d->reloads, d->reload_failures);
}

/* Answers one request line (or an overlong one: line NULL). */
static int bld_request(bld_client *c, const char *line, size_t ll)
{
    bld *d = c->d;
    char ans[BL_PROTO_ANSWER_MAX + 512];
    size_t n;
    bl_req r;
    uint64_t mask = 0;

    if (line == NULL) {
        memset(&r, 0, sizeof(r));
        r.type = BL_REQ_ERROR;
        r.error = "line too long";
    } else {
        bl_proto_parse(line, ll, &r);
    }
    switch (r.type) {
    case BL_REQ_QUERY:
        d->queries++;
        mask = bl_table_lookup(d->table, &r.addr);
        if (mask)
            d->hits++;
        break;
    case BL_REQ_STATS:
        n = bld_stats_line(d, ans, sizeof(ans));
        return bld_out(c, ans, n);
    case BL_REQ_ERROR:
        d->errors++;
        bld_log(BLD_DEBUG, "client %d: %s", c->fd, r.error);
        break;
    default:
        break;
    }
    n = bl_proto_answer(d->table, &r, mask, ans, sizeof(ans));
    return bld_out(c, ans, n);
}

static void bld_client_events(bld_client *c)
{
    int ev = 0;

    c->reading = !c->eof && c->wlen - c->woff < BLD_WBUF_HIGH;
    if (c->reading)
        ev |= EV_READ;
    if (c->woff < c->wlen)
        ev |= EV_WRITE;
    ev_io_stop(c->d->loop, &c->w);
    if (ev) {
        ev_io_set(&c->w, c->fd, ev);
        ev_io_start(c->d->loop, &c->w);
    }
}

/* Writes what is buffered.  -1: the client is gone (closed here). */
static int bld_client_flush(bld_client *c)
{
    while (c->woff < c->wlen) {
        ssize_t n =
            send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            bld_log(BLD_DEBUG, "client %d: write: %s", c->fd, strerror(errno));
            bld_client_close(c);
            return -1;
        }
        c->woff += (size_t)n;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    else if (c->woff > c->wcap / 2) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    bld_client_events(c);
    return 0;
}

/* Answers every complete line in the read buffer. */
static int bld_client_process(bld_client *c)
{
    size_t off = 0;

    for (;;) {
        const char *line;
        size_t used, ll;
        int k = bl_split_next(&c->split, c->rbuf + off, c->rlen - off, &used,
                              &line, &ll);
        off += used;
        if (k == BL_SPLIT_MORE) {
            if (used == 0)
                break;
            continue;
        }
        if (bld_request(c, k == BL_SPLIT_LINE ? line : NULL, ll) < 0) {
            bld_log(BLD_WARN, "client %d: out of memory; closing", c->fd);
            bld_client_close(c);
            return -1;
        }
        if (c->wlen - c->woff >= BLD_WBUF_HIGH)
            break; /* the client must read first */
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    return 0;
}

static void bld_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    bld_client *c = w->data;

    /* requests left over when reading was paused go first */
    if (c->rlen > 0 && c->wlen - c->woff < BLD_WBUF_HIGH &&
        bld_client_process(c) < 0)
        return;
    if ((revents & EV_READ) && !c->eof && c->rlen < sizeof(c->rbuf) &&
        c->wlen - c->woff < BLD_WBUF_HIGH) {
        ssize_t n =
            recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            bld_log(BLD_DEBUG, "client %d: read: %s", c->fd, strerror(errno));
            bld_client_close(c);
            return;
        }
        if (n == 0)
            c->eof = 1; /* answer what came, then close */
        if (n > 0)
            c->rlen += (size_t)n;
        if (bld_client_process(c) < 0)
            return;
    }
    for (;;) {
        if (bld_client_flush(c) < 0)
            return;
        if (!c->eof || c->wlen > 0)
            return;
        /* the client is done sending: answer what is left, then close
         * (an unfinished last line gets no answer) */
        if (c->rlen == 0 || memchr(c->rbuf, '\n', c->rlen) == NULL) {
            bld_client_close(c);
            return;
        }
        if (bld_client_process(c) < 0)
            return;
    }
}

static void bld_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    bld *d = w->data;
    int i;

    for (i = 0; i < 64; i++) {
        bld_client *c;
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                bld_log(BLD_WARN, "accept: %s", strerror(errno));
            return;
        }
        if (d->nclients >= d->maxclients || d->stopping) {
            static const char busy[] = "E - too many clients\n";
            ssize_t rc =
                send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)rc;
            close(fd);
            bld_log(BLD_WARN, "refused a client: %zu clients already",
                    d->nclients);
            continue;
        }
        if ((c = calloc(1, sizeof(*c))) == NULL) {
            close(fd);
            continue;
        }
        c->d = d;
        c->fd = fd;
        ev_io_init(&c->w, bld_client_cb, fd, EV_READ);
        c->w.data = c;
        ev_io_start(loop, &c->w);
        c->reading = 1;
        c->next = d->clients;
        if (d->clients)
            d->clients->prev = c;
        d->clients = c;
        d->nclients++;
        d->accepted++;
    }
}

/* ---------------------------------------------------------------- */
/* Set-up                                                           */

static int bld_listen(bld_listener *l, const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    snprintf(l->name, sizeof(l->name), "%s", spec);
    memset(&ss, 0, sizeof(ss));
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        const char *p = spec + 5;
        size_t pl = strlen(p);
        if (pl == 0 || pl >= sizeof(un->sun_path)) {
            bld_log(BLD_ERROR, "listen %s: bad unix socket path", spec);
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, p, pl + 1);
        sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1);
        unlink(p); /* a stale socket from an earlier run */
    } else {
        char host[128], port[16];
        const char *colon, *hs = spec;
        size_t hl;
        struct addrinfo hints, *res = NULL;
        int rc;
        if (spec[0] == '[') {
            const char *rb = strchr(spec, ']');
            if (rb == NULL || rb[1] != ':')
                goto bad;
            hs = spec + 1;
            hl = (size_t)(rb - hs);
            colon = rb + 1;
        } else {
            if ((colon = strrchr(spec, ':')) == NULL)
                goto bad;
            hl = (size_t)(colon - spec);
        }
        if (hl == 0 || hl >= sizeof(host) || strlen(colon + 1) == 0 ||
            strlen(colon + 1) >= sizeof(port) ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1))
            goto bad;
        memcpy(host, hs, hl);
        host[hl] = '\0';
        snprintf(port, sizeof(port), "%s", colon + 1);
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
        if ((rc = getaddrinfo(host, port, &hints, &res)) != 0 ||
            res->ai_addrlen > sizeof(ss)) {
            bld_log(BLD_ERROR, "listen %s: %s", spec,
                    rc ? gai_strerror(rc) : "address too long");
            if (res)
                freeaddrinfo(res);
            return -1;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        sl = res->ai_addrlen;
        freeaddrinfo(res);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        bld_log(BLD_ERROR, "listen %s: socket: %s", spec, strerror(errno));
        return -1;
    }
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
        bld_log(BLD_ERROR, "listen %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    if (ss.ss_family == AF_UNIX)
        chmod(spec + 5, 0660);
    l->fd = fd;
    return 0;
bad:
    bld_log(BLD_ERROR,
            "listen '%s': expected HOST:PORT, [IPV6]:PORT or unix:/PATH", spec);
    return -1;
}

/* Drops root for `user` (NULL: sluice, else nobody). */
static int bld_drop(bld *d, const char *user)
{
    struct passwd *pw;
    size_t i;

    if (geteuid() != 0) {
        if (user != NULL)
            bld_log(BLD_WARN, "not root: -u %s ignored", user);
        return 0;
    }
    if (user == NULL)
        user = getpwnam("sluice") ? "sluice" : "nobody";
    if ((pw = getpwnam(user)) == NULL) {
        bld_log(BLD_ERROR, "user %s: no such user", user);
        return -1;
    }
    for (i = 0; i < d->nlis; i++)
        if (strncmp(d->lis[i].name, "unix:", 5) == 0 &&
            chown(d->lis[i].name + 5, pw->pw_uid, pw->pw_gid) < 0)
            bld_log(BLD_WARN, "chown %s: %s", d->lis[i].name + 5,
                    strerror(errno));
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        bld_log(BLD_ERROR, "cannot drop privileges to %s: %s", user,
                strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        bld_log(BLD_ERROR, "privileges could be regained after the drop");
        return -1;
    }
    bld_log(BLD_INFO, "running as %s", user);
    return 0;
}

static void bld_sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    bld *d = w->data;

    bld_log(BLD_INFO, "SIGHUP: reloading the lists");
    bld_reload_start(d);
}

static void bld_sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    bld *d = w->data;
    size_t i;

    bld_log(BLD_INFO, "signal %d: stopping", w->signum);
    d->stopping = 1;
    for (i = 0; i < d->nlis; i++) {
        ev_io_stop(loop, &d->lis[i].w);
        close(d->lis[i].fd);
        if (strncmp(d->lis[i].name, "unix:", 5) == 0)
            unlink(d->lis[i].name + 5);
    }
    while (d->clients != NULL)
        bld_client_close(d->clients);
    ev_break(loop, EVBREAK_ALL);
}

static void bld_usage(void)
{
    fprintf(stderr,
            "usage: sluice-blocklistd [-l LISTEN]... [-u USER] [-c MAXCLIENTS] "
            "[-n] [-v] [-t] SOURCE...\n"
            "  SOURCE: a list file or a directory of *.list files\n"
            "  -l 127.0.0.1:4466 (default), [::1]:4466 or unix:/PATH\n");
}

int main(int argc, char **argv)
{
    static bld d; /* the one daemon; static keeps it off the stack */
    const char *listen_specs[BLD_MAX_LISTEN];
    size_t nspecs = 0, i;
    const char *user = NULL;
    int opt, test_only = 0;
    char err[512];
    double t0;

    /* Tables are a few large arrays built and freed at every reload: a
     * fixed mmap threshold gives them back to the system when freed
     * (glibc's sliding one would keep them in the heap). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    d.maxclients = 1024;
    while ((opt = getopt(argc, argv, "l:u:c:nvth")) != -1) {
        switch (opt) {
        case 'l':
            if (nspecs == BLD_MAX_LISTEN) {
                fprintf(stderr, "sluice-blocklistd: at most %d -l\n",
                        BLD_MAX_LISTEN);
                return 2;
            }
            listen_specs[nspecs++] = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 'c': {
            char *e;
            long v = strtol(optarg, &e, 10);
            if (*e != '\0' || v < 1 || v > 1000000) {
                fprintf(stderr, "sluice-blocklistd: -c: 1..1000000\n");
                return 2;
            }
            d.maxclients = (size_t)v;
            break;
        }
        case 'n':
            bld_syslog = 0;
            break;
        case 'v':
            bld_verbose = 1;
            break;
        case 't':
            test_only = 1;
            bld_syslog = 0;
            break;
        default:
            bld_usage();
            return 2;
        }
    }
    if (optind == argc || argc - optind > BLD_MAX_SOURCES) {
        bld_usage();
        return 2;
    }
    for (i = 0; i < (size_t)(argc - optind); i++)
        d.sources[d.nsources++] = argv[optind + (int)i];
    if (bld_syslog)
        openlog("sluice-blocklistd", LOG_PID | LOG_NDELAY, LOG_MAIL);
    if (test_only) {
        bl_table *t;
        t0 = bld_now();
        if ((t = bld_load(d.sources, d.nsources, err, sizeof(err))) == NULL) {
            bld_log(BLD_ERROR, "%s", err);
            return 1;
        }
        bld_log_table(t, (bld_now() - t0) * 1000.0, "loaded");
        bl_table_free(t);
        return 0;
    }
    if (nspecs == 0)
        listen_specs[nspecs++] = "127.0.0.1:4466";
    signal(SIGPIPE, SIG_IGN);
    /* a SIGHUP before the loop watches for it would kill us; the first
     * load reads the files as they are anyway */
    signal(SIGHUP, SIG_IGN);
    for (i = 0; i < nspecs; i++) {
        if (bld_listen(&d.lis[i], listen_specs[i]) < 0)
            return 1;
        d.nlis++;
    }
    if (bld_drop(&d, user) < 0)
        return 1;
    t0 = bld_now();
    if ((d.table = bld_load(d.sources, d.nsources, err, sizeof(err))) == NULL) {
        bld_log(BLD_ERROR, "%s", err);
        return 1;
    }
    d.load_ms = (bld_now() - t0) * 1000.0;
    malloc_trim(0);
    bld_log_table(d.table, d.load_ms, "loaded");
    pthread_mutex_init(&d.mu, NULL);
    d.loop = ev_default_loop(EVFLAG_AUTO);
    d.loaded_at = ev_now(d.loop);
    d.generation = 1;
    for (i = 0; i < d.nlis; i++) {
        ev_io_init(&d.lis[i].w, bld_accept_cb, d.lis[i].fd, EV_READ);
        d.lis[i].w.data = &d;
        ev_io_start(d.loop, &d.lis[i].w);
        bld_log(BLD_INFO, "listening on %s", d.lis[i].name);
    }
    ev_async_init(&d.done, bld_reload_done);
    d.done.data = &d;
    ev_async_start(d.loop, &d.done);
    ev_signal_init(&d.sighup, bld_sighup_cb, SIGHUP);
    ev_signal_init(&d.sigterm, bld_sigterm_cb, SIGTERM);
    ev_signal_init(&d.sigint, bld_sigterm_cb, SIGINT);
    d.sighup.data = d.sigterm.data = d.sigint.data = &d;
    ev_signal_start(d.loop, &d.sighup);
    ev_signal_start(d.loop, &d.sigterm);
    ev_signal_start(d.loop, &d.sigint);
    ev_run(d.loop, 0);
    /* a loader still running owns nothing of ours but d.next: wait */
    for (i = 0; d.loading && i < 600; i++) {
        pthread_mutex_lock(&d.mu);
        if (d.next_ready) {
            bl_table_free(d.next);
            d.next = NULL;
            d.loading = 0;
        }
        pthread_mutex_unlock(&d.mu);
        if (d.loading)
            usleep(100000);
    }
    bl_table_free(d.table);
    bld_log(BLD_INFO, "stopped");
    return 0;
}
