/*
 * fuzz_http.c - libFuzzer target for sluice-manager's request path
 * (tools/manager: http.c parser and limits, route.c dispatch with auth,
 * CSRF and roles, the api_*.c route tables and handlers, static.c files,
 * core.c query/JSON helpers), without sockets or TLS.
 *
 * The input's first byte picks the chunk size the rest is fed in (1..64
 * bytes, or all at once), like a TCP stream cut anywhere; several
 * pipelined requests are answered in turn until one is malformed.  A
 * session exists with the id "a" x 64 and the CSRF token "b" x 64 (the
 * seeds use them), so authenticated admin routes are reached; there is no
 * database (mgr_db fails: 503) and no control socket.
 *
 * Checked invariants on every response: a status line "HTTP/1.1 ddd ",
 * the end of the header block, the security headers, and a Content-Length
 * equal to the body's length (HEAD: no body).
 */
#include "mgr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mgr *fz_m;

static void fz_write(const char *dir, const char *name, const char *text)
{
    char p[512];
    FILE *fp;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if ((fp = fopen(p, "w")) != NULL) {
        fputs(text, fp);
        fclose(fp);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char dir[] = "/tmp/fuzz_http.XXXXXX";
    char sub[600];
    mgr_session *s;

    (void)argc;
    (void)argv;
    fz_m = util_calloc(1, sizeof(*fz_m));
    fz_m->no_db = 1;
    fz_m->c.session_timeout = 1e9;
    fz_m->c.login_max_failures = 5;
    fz_m->c.login_lockout = 60;
    if (mkdtemp(dir) != NULL) {
        fz_write(dir, "index.html", "<!doctype html><title>x</title>\n");
        fz_write(dir, "app.js", "console.log(1);\n");
        snprintf(sub, sizeof(sub), "%s/sub", dir);
        mkdir(sub, 0755);
        fz_write(sub, "a.css", "body{}\n");
        fz_m->www_dir = util_strdup(dir);
    }
    fz_m->state_dir = util_strdup("/nonexistent");
    fz_m->conf_dir = util_strdup("/nonexistent");
    s = &fz_m->sessions[0];
    memset(s->id, 'a', MGR_TOKEN_HEX);
    memset(s->csrf, 'b', MGR_TOKEN_HEX);
    s->user.id = 1;
    snprintf(s->user.name, sizeof(s->user.name), "fuzz");
    s->user.role = MGR_ROLE_ADMIN;
    s->created = s->last_seen = util_now() + 1e8;
    s->used = 1;
    return 0;
}

static void fz_check(const buf *out, int head)
{
    const char *end, *cl;
    size_t hlen, blen;

    if (out->len < 13 || memcmp(out->data, "HTTP/1.1 ", 9) != 0 ||
        out->data[9] < '1' || out->data[9] > '5' || out->data[12] != ' ')
        abort();
    end = strstr(out->data, "\r\n\r\n");
    if (end == NULL)
        abort();
    hlen = (size_t)(end - out->data) + 4;
    if (strstr(out->data, "\r\nContent-Security-Policy: default-src 'self'") ==
            NULL ||
        strstr(out->data, "\r\nX-Content-Type-Options: nosniff\r\n") == NULL ||
        strstr(out->data, "\r\nStrict-Transport-Security: ") == NULL ||
        strstr(out->data, "\r\nX-Frame-Options: DENY\r\n") == NULL)
        abort();
    cl = strstr(out->data, "\r\nContent-Length: ");
    if (cl == NULL || cl > end)
        abort();
    blen = (size_t)strtoull(cl + 18, NULL, 10);
    if (head ? out->len != hlen : out->len - hlen != blen)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mgr_http h;
    buf out;
    size_t chunk, off = 1, rounds = 0;
    int open = 1;

    if (size < 1)
        return 0;
    chunk = data[0] < 192 ? (size_t)(data[0] % 64) + 1 : size;
    mgr_http_init(&h);
    buf_init(&out);
    while (open && off < size && rounds++ < 64) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used = mgr_http_feed(&h, (const char *)data + off, n);

        off += used;
        if (h.error) {
            out.len = 0;
            mgr_route_error(h.error, &out);
            fz_check(&out, 0);
            break;
        }
        if (h.complete) {
            int head = strcmp(h.req.method, "HEAD") == 0;
            out.len = 0;
            open = mgr_route_dispatch(fz_m, &h.req, "192.0.2.1", &out);
            fz_check(&out, head);
            mgr_http_next(&h);
            continue;
        }
        if (used < n) /* nothing consumed and no verdict: a parser bug */
            abort();
        rounds = 0;
    }
    buf_free(&out);
    mgr_http_free(&h);
    return 0;
}
