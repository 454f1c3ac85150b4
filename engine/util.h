/*
 * util.h - small mail-agnostic helpers for the engine: checked allocation,
 * a growable byte buffer, and parsers for the value syntaxes conf.d uses.
 *
 * Diagnostics: allocation failure is fatal (the process exits and the
 * master restarts a worker; the MTA keeps the mail).  Parsers return -1 on
 * bad input and never write past their outputs.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <sys/types.h>
#include <stdarg.h>

void *util_malloc(size_t n);
void *util_calloc(size_t n, size_t size);
void *util_realloc(void *p, size_t n);
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);
char *util_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable buffer; data is always NUL-terminated (not counted in len). */
typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);
void buf_reserve(buf *b, size_t more);
void buf_add(buf *b, const void *p, size_t n);
void buf_adds(buf *b, const char *s);
void buf_addc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(buf *b, const char *s);

/* conf.d value syntaxes. */
int util_parse_bool(const char *s, int *out);
int util_parse_llong(const char *s, long long *out);
int util_parse_duration(const char *s, double *out); /* 30, 30s, 250ms, 5m, 1h, 1d */
int util_parse_size(const char *s, size_t *out);     /* 512, 64k, 10M, 1G */

/* Splits "host:port", "[v6]:port" or "unix:/path", and libmilter's
 * "inet:port@host", "inet6:port@host", "local:/path". */
typedef struct util_endpoint {
    int is_unix;
    char host[256];
    char port[16];
    char path[108];
} util_endpoint;
int util_parse_endpoint(const char *s, util_endpoint *ep);

int util_set_nonblock(int fd);
int util_set_cloexec(int fd);
double util_now(void); /* CLOCK_MONOTONIC seconds */

/* Replaces `path` by `data` atomically: a temporary file beside it (not
 * following a symbolic link), fchmod to `mode`, fchown to uid/gid
 * ((uid_t)-1/(gid_t)-1: unchanged; a refusal is not an error), fsync,
 * rename.  0, or -1 with the reason in err and no temporary file left. */
int util_write_atomic(const char *path, const char *data, size_t len,
                      mode_t mode, uid_t uid, gid_t gid, buf *err);

#endif
