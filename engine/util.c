/*
 * util.c - checked allocation, byte buffers, value parsers.  See util.h.
 */
#include "util.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static void util_oom(size_t n)
{
    log_fatal("out of memory allocating %zu bytes", n);
}

void *util_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        util_oom(n);
    return p;
}

void *util_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        util_oom(n * size);
    return p;
}

void *util_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        util_oom(n);
    return q;
}

char *util_strdup(const char *s)
{
    return util_strndup(s, strlen(s));
}

char *util_strndup(const char *s, size_t n)
{
    char *p = util_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *util_printf(const char *fmt, ...)
{
    buf b;
    va_list ap;

    buf_init(&b);
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return b.data;
}

void buf_init(buf *b)
{
    b->cap = 64;
    b->len = 0;
    b->data = util_malloc(b->cap);
    b->data[0] = '\0';
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reserve(buf *b, size_t more)
{
    size_t need;

    if (more > SIZE_MAX - b->len - 1)
        util_oom(SIZE_MAX);
    need = b->len + more + 1;
    if (need <= b->cap)
        return;
    while (b->cap < need)
        b->cap = b->cap > SIZE_MAX / 2 ? need : b->cap * 2;
    b->data = util_realloc(b->data, b->cap);
}

void buf_add(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_adds(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_addc(buf *b, char c)
{
    buf_add(b, &c, 1);
}

void buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    va_copy(cp, ap);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_json_str(buf *b, const char *s)
{
    const unsigned char *p;

    buf_addc(b, '"');
    for (p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            buf_adds(b, "\\\"");
            break;
        case '\\':
            buf_adds(b, "\\\\");
            break;
        case '\n':
            buf_adds(b, "\\n");
            break;
        case '\r':
            buf_adds(b, "\\r");
            break;
        case '\t':
            buf_adds(b, "\\t");
            break;
        default:
            if (*p < 0x20)
                buf_printf(b, "\\u%04x", *p);
            else
                buf_addc(b, (char)*p);
        }
    }
    buf_addc(b, '"');
}

int util_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"yes", "on", "true", "1"};
    static const char *no[] = {"no", "off", "false", "0"};
    size_t i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

int util_parse_llong(const char *s, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* number followed by an optional unit from the table */
static int util_parse_unit(const char *s, const char *const *units,
                           const double *mult, double *out)
{
    char *end;
    double v;
    size_t i;

    if (!isdigit((unsigned char)*s) && *s != '.')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -1;
    for (i = 0; units[i]; i++) {
        if (strcasecmp(end, units[i]) == 0) {
            *out = v * mult[i];
            return 0;
        }
    }
    return -1;
}

int util_parse_duration(const char *s, double *out)
{
    static const char *const units[] = {"", "s", "ms", "m", "h", "d", NULL};
    static const double mult[] = {1, 1, 0.001, 60, 3600, 86400};

    return util_parse_unit(s, units, mult, out);
}

int util_parse_size(const char *s, size_t *out)
{
    static const char *const units[] = {"", "b", "k", "kb", "m", "mb",
                                        "g", "gb", NULL};
    static const double mult[] = {1, 1, 1024.0, 1024.0, 1048576.0,
                                  1048576.0, 1073741824.0, 1073741824.0};
    double v;

    if (util_parse_unit(s, units, mult, &v) < 0 || v > (double)SIZE_MAX / 2)
        return -1;
    *out = (size_t)v;
    return 0;
}

int util_parse_endpoint(const char *s, util_endpoint *ep)
{
    const char *colon;
    size_t hl;

    memset(ep, 0, sizeof(*ep));
    /* libmilter's spellings too: local:/path, inet:port@host,
     * inet6:port@host (a name or a numeric address, [] optional) */
    if (strncmp(s, "local:", 6) == 0) {
        if (strlen(s + 6) == 0 || strlen(s + 6) >= sizeof(ep->path))
            return -1;
        ep->is_unix = 1;
        memcpy(ep->path, s + 6, strlen(s + 6) + 1);
        return 0;
    }
    if (strncmp(s, "inet:", 5) == 0 || strncmp(s, "inet6:", 6) == 0) {
        const char *port = strchr(s, ':') + 1, *at = strchr(port, '@');
        const char *host = at ? at + 1 : (s[4] == '6' ? "::" : "0.0.0.0");
        size_t pl = at ? (size_t)(at - port) : strlen(port);
        hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
            host++;
            hl -= 2;
        }
        if (pl == 0 || pl >= sizeof(ep->port) || hl == 0 ||
            hl >= sizeof(ep->host))
            return -1;
        memcpy(ep->port, port, pl);
        memcpy(ep->host, host, hl);
        for (const char *p = ep->port; *p; p++)
            if (!isdigit((unsigned char)*p))
                return -1;
        if (atoi(ep->port) < 1 || atoi(ep->port) > 65535)
            return -1;
        return 0;
    }
    if (strncmp(s, "unix:", 5) == 0) {
        if (strlen(s + 5) == 0 || strlen(s + 5) >= sizeof(ep->path))
            return -1;
        ep->is_unix = 1;
        memcpy(ep->path, s + 5, strlen(s + 5) + 1);
        return 0;
    }
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - s - 1);
        if (hl == 0 || hl >= sizeof(ep->host))
            return -1;
        memcpy(ep->host, s + 1, hl);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - s);
        if (hl == 0 || hl >= sizeof(ep->host))
            return -1;
        memcpy(ep->host, s, hl);
        if (memchr(ep->host, ':', hl))
            return -1; /* bare IPv6 needs brackets */
    }
    colon++;
    if (*colon == '\0' || strlen(colon) >= sizeof(ep->port))
        return -1;
    for (const char *p = colon; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    if (atoi(colon) < 1 || atoi(colon) > 65535)
        return -1;
    memcpy(ep->port, colon, strlen(colon) + 1);
    return 0;
}

int util_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int util_set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

double util_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* See util.h. */
int util_write_atomic(const char *path, const char *data, size_t len,
                      mode_t mode, uid_t uid, gid_t gid, buf *err)
{
    char *tmp = util_printf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                  mode);
    size_t off = 0;

    if (fd < 0) {
        buf_printf(err, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
        goto fail;
    if (fchown(fd, uid, gid) < 0) {
        /* not fatal: an unprivileged test run cannot give files away */
    }
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    free(tmp);
    return 0;
fail:
    buf_printf(err, "%s: write failed: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}
