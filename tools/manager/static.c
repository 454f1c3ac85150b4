/*
 * static.c - the front end's files from www_dir (GET/HEAD of every path
 * outside /api): "/" is index.html, a path ending in "/" its index.html.
 * Content types by extension; unknown ones are application/octet-stream
 * (with nosniff, never run as script).
 *
 * SECURITY: the path is percent-decoded already; any segment that is
 * empty, starts with '.' ("..", dot files) or holds a backslash is refused
 * (404, so nothing tells what exists), and the file is opened relative to
 * the www directory with openat(O_NOFOLLOW) per component: no symlink and
 * no traversal leaves www_dir.  Only regular files up to 8 MB are served.
 */
#include "mgr_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_FILE (8 * 1024 * 1024)
#define STATIC_MAX_DEPTH 8

static const struct {
    const char *ext, *type;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *mgr_static_type(const char *path)
{
    size_t i, n = strlen(path);

    for (i = 0; i < sizeof(static_types) / sizeof(static_types[0]); i++) {
        size_t el = strlen(static_types[i].ext);
        if (n > el && strcmp(path + n - el, static_types[i].ext) == 0)
            return static_types[i].type;
    }
    return "application/octet-stream";
}

/* Opens rel (segments checked) below dirfd; -1 when refused or absent. */
static int static_open(int dirfd, char *rel)
{
    char *segs[STATIC_MAX_DEPTH];
    int n = 0, i, fd = dirfd, next;
    char *p = rel, *e;

    for (;;) {
        if (n >= STATIC_MAX_DEPTH)
            return -1;
        segs[n++] = p;
        if ((e = strchr(p, '/')) == NULL)
            break;
        *e = '\0';
        p = e + 1;
    }
    for (i = 0; i < n; i++) {
        if (segs[i][0] == '\0' || segs[i][0] == '.' ||
            strchr(segs[i], '\\') != NULL)
            goto refuse;
    }
    for (i = 0; i < n; i++) {
        int last = i == n - 1;
        next = openat(fd, segs[i],
                      O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
                          (last ? O_NONBLOCK : O_DIRECTORY));
        if (fd != dirfd)
            close(fd);
        if (next < 0)
            return -1;
        fd = next;
    }
    return fd;
refuse:
    return -1;
}

void mgr_static_serve(mgr *m, const char *path, mgr_resp *resp)
{
    char rel[MGR_MAX_URL + 32];
    const char *type;
    int dirfd, fd;
    struct stat st;
    size_t n = strlen(path), off = 0;

    if (m->www_dir == NULL) {
        mgr_reply_error(resp, 404, "no www directory configured");
        return;
    }
    if (n == 0 || path[0] != '/') {
        mgr_reply_error(resp, 404, "not found");
        return;
    }
    snprintf(rel, sizeof(rel), "%s%s", path + 1,
             path[n - 1] == '/' ? "index.html" : "");
    if ((dirfd = open(m->www_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        mgr_reply_error(resp, 404, "not found");
        return;
    }
    type = mgr_static_type(rel); /* static_open cuts rel at each '/' */
    fd = static_open(dirfd, rel);
    close(dirfd);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > STATIC_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        mgr_reply_error(resp, 404, "not found");
        return;
    }
    resp->body.len = 0;
    buf_reserve(&resp->body, (size_t)st.st_size + 1);
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, resp->body.data + off, (size_t)st.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    if (off != (size_t)st.st_size) {
        mgr_reply_error(resp, 500, "cannot read the file");
        return;
    }
    resp->body.len = off;
    resp->body.data[off] = '\0';
    resp->status = 200;
    resp->content_type = type;
}
