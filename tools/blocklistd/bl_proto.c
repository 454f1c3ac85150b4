/*
 * bl_proto.c - request splitting, parsing and answers of the blocklist
 * protocol (bl_proto.h).
 *
 * Strictness: a request is exactly its tokens separated by single spaces;
 * anything unexpected (unknown command, bad id, bad address, extra
 * tokens, control bytes) is an error answer, never a guess.
 *
 * SECURITY: input is untrusted network data; all copies are bounded by
 * BL_PROTO_LINE_MAX and the sizes the caller passes.
 */
#include "bl_proto.h"

#include <stdio.h>
#include <string.h>

int bl_split_next(bl_split *s, const char *buf, size_t len, size_t *used,
                  const char **line, size_t *ll)
{
    const char *nl;
    size_t look = len < BL_PROTO_LINE_MAX ? len : BL_PROTO_LINE_MAX;

    *line = NULL;
    *ll = 0;
    if (s->discarding) {
        if ((nl = memchr(buf, '\n', len)) == NULL) {
            *used = len;
            return BL_SPLIT_MORE;
        }
        *used = (size_t)(nl - buf) + 1;
        s->discarding = 0;
        return BL_SPLIT_MORE;
    }
    if ((nl = memchr(buf, '\n', look)) != NULL) {
        *used = (size_t)(nl - buf) + 1;
        *line = buf;
        *ll = (size_t)(nl - buf);
        if (*ll > 0 && buf[*ll - 1] == '\r')
            (*ll)--;
        return BL_SPLIT_LINE;
    }
    if (len >= BL_PROTO_LINE_MAX) {
        /* no end within the limit: drop the rest of this line */
        s->discarding = 1;
        *used = BL_PROTO_LINE_MAX;
        return BL_SPLIT_TOOLONG;
    }
    *used = 0;
    return BL_SPLIT_MORE;
}

static int bl_proto_id_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > BL_PROTO_ID_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static void bl_proto_error(bl_req *r, const char *why)
{
    r->type = BL_REQ_ERROR;
    r->error = why;
}

void bl_proto_parse(const char *line, size_t len, bl_req *r)
{
    const char *tok[4];
    size_t tl[4], nt = 0, i = 0;

    memset(r, 0, sizeof(*r));
    if (len == 0) {
        bl_proto_error(r, "empty request");
        return;
    }
    if (len >= BL_PROTO_LINE_MAX) {
        bl_proto_error(r, "line too long");
        return;
    }
    for (i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] == 0x7f) {
            bl_proto_error(r, "control character in request");
            return;
        }
    /* tokens: single spaces between, none at either end */
    for (i = 0; i <= len && nt < 4;) {
        const char *sp = memchr(line + i, ' ', len - i);
        size_t e = sp ? (size_t)(sp - line) : len;
        tok[nt] = line + i;
        tl[nt] = e - i;
        if (tl[nt] == 0) {
            bl_proto_error(r, "bad spacing");
            return;
        }
        nt++;
        if (sp == NULL)
            break;
        i = e + 1;
        if (i == len) {
            bl_proto_error(r, "bad spacing");
            return;
        }
    }
    /* the id, when the second token is one, also goes in error answers */
    if (nt >= 2 && bl_proto_id_ok(tok[1], tl[1])) {
        memcpy(r->id, tok[1], tl[1]);
        r->id[tl[1]] = '\0';
    }
    if (tl[0] == 1 && tok[0][0] == 'Q') {
        if (nt < 3) {
            bl_proto_error(r, "usage: Q <id> <ip>");
            return;
        }
        if (nt > 3) {
            bl_proto_error(r, "extra arguments");
            return;
        }
        if (r->id[0] == '\0') {
            bl_proto_error(r, "bad id");
            return;
        }
        if (bl_addr_parse(tok[2], tl[2], &r->addr) < 0) {
            bl_proto_error(r, "bad address");
            return;
        }
        r->type = BL_REQ_QUERY;
        return;
    }
    if (tl[0] == 4 && memcmp(tok[0], "PING", 4) == 0) {
        if (nt > 2) {
            bl_proto_error(r, "extra arguments");
            return;
        }
        if (nt == 2 && r->id[0] == '\0') {
            bl_proto_error(r, "bad id");
            return;
        }
        r->type = BL_REQ_PING;
        return;
    }
    if (tl[0] == 5 && memcmp(tok[0], "STATS", 5) == 0) {
        if (nt > 1) {
            bl_proto_error(r, "extra arguments");
            return;
        }
        r->type = BL_REQ_STATS;
        return;
    }
    bl_proto_error(r, "unknown command");
}

size_t bl_proto_answer(const bl_table *t, const bl_req *r, uint64_t mask,
                       char *out, size_t outsz)
{
    size_t n = 0;
    int k;
    unsigned i;

    if (outsz < BL_PROTO_ANSWER_MAX)
        return 0;
    switch (r->type) {
    case BL_REQ_QUERY:
        k = snprintf(out, outsz, "A %s ", r->id);
        n = (size_t)k;
        if (mask == 0 || t == NULL) {
            out[n++] = '-';
        } else {
            int first = 1;
            for (i = 0; i < BL_MAX_LISTS; i++) {
                const char *name;
                size_t nl;
                if (!(mask & (1ull << i)) ||
                    (name = bl_table_list_name(t, i)) == NULL)
                    continue;
                nl = strlen(name);
                if (n + nl + 3 > outsz)
                    break;
                if (!first)
                    out[n++] = ',';
                memcpy(out + n, name, nl);
                n += nl;
                first = 0;
            }
            if (first)
                out[n++] = '-';
        }
        out[n++] = '\n';
        return n;
    case BL_REQ_PING:
        k = snprintf(out, outsz, "PONG %s%s" BL_PROTO_VERSION "\n", r->id,
                     r->id[0] ? " " : "");
        return (size_t)k;
    case BL_REQ_ERROR:
        k = snprintf(out, outsz, "E %s %s\n", r->id[0] ? r->id : "-",
                     r->error ? r->error : "error");
        return (size_t)k;
    default:
        return 0; /* STATS: the daemon formats its own counters */
    }
}
