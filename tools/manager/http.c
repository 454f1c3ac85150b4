/*
 * http.c - one connection's HTTP/1.1 request parser for sluice-manager:
 * Debian's libhttp-parser with the manager's limits on top.
 *
 * Interface (mgr_int.h): mgr_http_init, mgr_http_feed (bytes in; stops at
 * a complete request or an error), mgr_http_next (after the answer, for
 * keep-alive and pipelining), mgr_http_free.
 *
 * Limits: request target MGR_MAX_URL (414), request line + headers
 * MGR_MAX_HEADERS_BYTES (431), one kept header MGR_MAX_HEADER_VALUE (431),
 * body MGR_MAX_BODY (413, checked on Content-Length before any body byte
 * and again while reading chunked bodies).  Anything libhttp-parser
 * rejects is 400.  Only the headers the core uses are kept (Cookie,
 * Authorization, X-CSRF-Token, Content-Type, Expect).
 *
 * SECURITY: every byte here comes from the network, before any
 * authentication; no I/O, no allocation beyond the limits above.
 */
#include "mgr_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    HDR_OTHER = 0,
    HDR_COOKIE,
    HDR_AUTHORIZATION,
    HDR_CSRF,
    HDR_CONTENT_TYPE,
    HDR_EXPECT
};

static mgr_http *http_of(http_parser *p)
{
    return (mgr_http *)p->data;
}

static int http_fail(mgr_http *h, int status)
{
    if (h->error == 0)
        h->error = status;
    return 1; /* stops the parser */
}

/* Counts request line and header bytes against the limit. */
static int http_count(mgr_http *h, size_t n)
{
    h->header_bytes += n;
    if (h->header_bytes > MGR_MAX_HEADERS_BYTES)
        return http_fail(h, 431);
    return 0;
}

static int http_on_message_begin(http_parser *p)
{
    mgr_http *h = http_of(p);

    h->req.url.len = 0;
    if (h->req.url.data)
        h->req.url.data[0] = '\0';
    h->req.body.len = 0;
    if (h->req.body.data)
        h->req.body.data[0] = '\0';
    h->req.method[0] = '\0';
    h->req.cookie[0] = '\0';
    h->req.authorization[0] = '\0';
    h->req.csrf[0] = '\0';
    h->req.content_type[0] = '\0';
    h->req.expect[0] = '\0';
    h->req.keep_alive = 0;
    h->header_bytes = 0;
    h->headers_done = 0;
    h->hdr_which = HDR_OTHER;
    h->hdr_field_done = 0;
    h->hdr_field.len = 0;
    return 0;
}

static int http_on_url(http_parser *p, const char *at, size_t n)
{
    mgr_http *h = http_of(p);

    if (http_count(h, n))
        return 1;
    if (h->req.url.len + n > MGR_MAX_URL)
        return http_fail(h, 414);
    buf_add(&h->req.url, at, n);
    return 0;
}

static int http_on_header_field(http_parser *p, const char *at, size_t n)
{
    mgr_http *h = http_of(p);

    if (http_count(h, n))
        return 1;
    if (h->hdr_field_done) { /* a new header starts */
        h->hdr_field.len = 0;
        h->hdr_field_done = 0;
        h->hdr_which = HDR_OTHER;
    }
    if (h->hdr_field.len + n <= 64)
        buf_add(&h->hdr_field, at, n);
    else
        h->hdr_field.len = 65; /* too long to be one we keep */
    return 0;
}

static char *http_target(mgr_http *h, size_t *cap)
{
    switch (h->hdr_which) {
    case HDR_COOKIE:
        *cap = sizeof(h->req.cookie);
        return h->req.cookie;
    case HDR_AUTHORIZATION:
        *cap = sizeof(h->req.authorization);
        return h->req.authorization;
    case HDR_CSRF:
        *cap = sizeof(h->req.csrf);
        return h->req.csrf;
    case HDR_CONTENT_TYPE:
        *cap = sizeof(h->req.content_type);
        return h->req.content_type;
    case HDR_EXPECT:
        *cap = sizeof(h->req.expect);
        return h->req.expect;
    }
    return NULL;
}

static int http_on_header_value(http_parser *p, const char *at, size_t n)
{
    mgr_http *h = http_of(p);
    char *dst;
    size_t cap, have;

    if (http_count(h, n))
        return 1;
    if (!h->hdr_field_done) { /* first piece of this value */
        const char *f = h->hdr_field.data ? h->hdr_field.data : "";
        size_t fl = h->hdr_field.len;

        h->hdr_field_done = 1;
        h->hdr_which = HDR_OTHER;
        if (fl == 6 && strncasecmp(f, "cookie", 6) == 0)
            h->hdr_which = HDR_COOKIE;
        else if (fl == 13 && strncasecmp(f, "authorization", 13) == 0)
            h->hdr_which = HDR_AUTHORIZATION;
        else if (fl == 12 && strncasecmp(f, "x-csrf-token", 12) == 0)
            h->hdr_which = HDR_CSRF;
        else if (fl == 12 && strncasecmp(f, "content-type", 12) == 0)
            h->hdr_which = HDR_CONTENT_TYPE;
        else if (fl == 6 && strncasecmp(f, "expect", 6) == 0)
            h->hdr_which = HDR_EXPECT;
        if ((dst = http_target(h, &cap)) != NULL && dst[0] != '\0') {
            /* a repeated security header is ambiguous: refuse it (several
             * Cookie lines are joined, as RFC 6265 clients never send) */
            if (h->hdr_which != HDR_COOKIE)
                return http_fail(h, 400);
            have = strlen(dst);
            if (have + 2 >= cap)
                return http_fail(h, 431);
            memcpy(dst + have, "; ", 3);
        }
    }
    if ((dst = http_target(h, &cap)) == NULL)
        return 0;
    have = strlen(dst);
    if (memchr(at, '\0', n) != NULL)
        return http_fail(h, 400);
    if (have + n >= cap)
        return http_fail(h, 431);
    memcpy(dst + have, at, n);
    dst[have + n] = '\0';
    return 0;
}

static int http_on_headers_complete(http_parser *p)
{
    mgr_http *h = http_of(p);
    const char *m = http_method_str((enum http_method)p->method);

    snprintf(h->req.method, sizeof(h->req.method), "%s", m);
    h->req.http_minor = p->http_minor;
    h->req.keep_alive = http_should_keep_alive(p) && !p->upgrade;
    h->headers_done = 1;
    /* ULLONG_MAX: no Content-Length (chunked or none) */
    if (p->content_length != ULLONG_MAX &&
        p->content_length > (unsigned long long)MGR_MAX_BODY)
        return http_fail(h, 413);
    return 0;
}

static int http_on_body(http_parser *p, const char *at, size_t n)
{
    mgr_http *h = http_of(p);

    if (h->req.body.len + n > MGR_MAX_BODY)
        return http_fail(h, 413);
    buf_add(&h->req.body, at, n);
    return 0;
}

static int http_on_message_complete(http_parser *p)
{
    mgr_http *h = http_of(p);

    if (h->req.url.data == NULL)
        buf_adds(&h->req.url, "");
    if (h->req.body.data == NULL)
        buf_adds(&h->req.body, "");
    h->complete = 1;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

void mgr_http_init(mgr_http *h)
{
    memset(h, 0, sizeof(*h));
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    http_parser_settings_init(&h->s);
    h->s.on_message_begin = http_on_message_begin;
    h->s.on_url = http_on_url;
    h->s.on_header_field = http_on_header_field;
    h->s.on_header_value = http_on_header_value;
    h->s.on_headers_complete = http_on_headers_complete;
    h->s.on_body = http_on_body;
    h->s.on_message_complete = http_on_message_complete;
    buf_init(&h->req.url);
    buf_init(&h->req.body);
    buf_init(&h->hdr_field);
}

void mgr_http_free(mgr_http *h)
{
    buf_free(&h->req.url);
    buf_free(&h->req.body);
    buf_free(&h->hdr_field);
}

size_t mgr_http_feed(mgr_http *h, const char *data, size_t len)
{
    size_t n;
    enum http_errno e;

    if (h->complete || h->error || len == 0)
        return 0;
    n = http_parser_execute(&h->p, &h->s, data, len);
    e = HTTP_PARSER_ERRNO(&h->p);
    if (e == HPE_PAUSED)
        return n;
    if (e != HPE_OK) {
        if (h->error == 0)
            h->error = 400;
        return n;
    }
    if (h->p.upgrade && !h->complete) /* bytes after an Upgrade request */
        h->error = 400;
    return n;
}

void mgr_http_next(mgr_http *h)
{
    h->complete = 0;
    http_parser_pause(&h->p, 0);
}

int mgr_http_wants_continue(const mgr_http *h)
{
    return h->headers_done && !h->complete && !h->error &&
           strcasecmp(h->req.expect, "100-continue") == 0;
}
