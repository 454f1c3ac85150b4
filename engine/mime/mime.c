/*
 * mime.c - the MIME tree of a whole message (RFC 2045-2049, 2183, 2231).
 *
 * Interface (mime.h): mime_limits_default, mime_parse, mime_free,
 * mime_part_count, mime_part, mime_flags, mime_header_count, mime_header.
 *
 * How it works: parts are created in document order by a recursive
 * descent bounded by max_depth (and MIME_DEPTH_CAP).  Each entity's header
 * block is split by hdr_scan into a scratch array that is reused; only the
 * Content-Type, -Transfer-Encoding and -Disposition fields are read
 * (the first of each; a repeated one sets BAD_HEADER).  Multipart bodies
 * are split at delimiter lines found with memmem("\n--boundary"), checked
 * for a "--" close marker and trailing whitespace only; the line break
 * before a delimiter belongs to it.  Leaves are transfer-decoded, and text
 * leaves converted to UTF-8 with the per-parse charset cache.
 *
 * Diagnostics: NULL from mime_parse only on ENOMEM.  Malformed input sets
 * flags on the part concerned: BAD_HEADER (bad Content-* syntax, repeated
 * Content-* field), BAD_BOUNDARY (no boundary parameter, no delimiter, no
 * close delimiter), BAD_ENCODING (bad base64/QP, unknown transfer
 * encoding), BAD_CHARSET, NUL (in a header block or a leaf's raw body),
 * TRUNCATED (on the root: a part or depth limit was hit).
 *
 * SECURITY: see mime.h.  The cost is O(len * depth) for the delimiter
 * searches plus linear decoding; recursion depth <= MIME_DEPTH_CAP.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct mime_msg {
    const unsigned char *buf;
    size_t len;
    mime_limits lim;
    sluice_part *parts;
    size_t nparts, capparts;
    sluice_header *hdrs;
    size_t nhdrs;
    unsigned flags;
    mime_arena arena;
    mime_charsets cs;
    hdr_block hb; /* scratch, reused for every entity */
    size_t hbcap;
    int oom;
};

static const unsigned char mime_empty[1] = {0};

void mime_limits_default(mime_limits *lim)
{
    lim->max_parts = 1000;
    lim->max_depth = 20;
    lim->max_header_count = 1000;
    lim->max_header_len = 65536;
}

static int mime_name_is(const unsigned char *s, size_t n, const char *name)
{
    size_t nl = strlen(name);

    return n == nl && strncasecmp((const char *)s, name, nl) == 0;
}

/* A new part, or -1 (limit hit: root TRUNCATED; or ENOMEM). */
static long mime_part_new(mime_msg *m, int parent, int depth, size_t off,
                          size_t len)
{
    sluice_part *p;

    if (m->nparts >= m->lim.max_parts) {
        m->parts[0].flags |= SLUICE_MIME_TRUNCATED;
        return -1;
    }
    if (m->nparts == m->capparts) {
        size_t nc = m->capparts ? m->capparts * 2 : 8;
        sluice_part *np = realloc(m->parts, nc * sizeof(*np));
        if (np == NULL) {
            m->oom = 1;
            return -1;
        }
        m->parts = np;
        m->capparts = nc;
    }
    p = &m->parts[m->nparts];
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->index = (int)m->nparts;
    p->parent = parent;
    p->depth = depth;
    p->type = "text/plain";
    p->charset = "";
    p->encoding = "7bit";
    p->disposition = "";
    p->filename = "";
    p->offset = off;
    p->length = len;
    p->body_offset = off;
    p->body_length = len;
    return (long)m->nparts++;
}

/* Keep a malloc'd string in the arena; "" if NULL. */
static const char *mime_keep(mime_msg *m, char *s)
{
    if (s == NULL)
        return "";
    if (mime_arena_adopt(&m->arena, s) < 0) {
        m->oom = 1;
        return "";
    }
    return s;
}

/* Decode a leaf's body into part->decoded. */
static void mime_leaf(mime_msg *m, long idx, const char *charset)
{
    sluice_part *p = &m->parts[idx];
    const unsigned char *raw = m->buf + p->body_offset, *src;
    size_t rawlen = p->body_length, srclen;
    mime_buf tb = {0}, ob = {0};
    unsigned flags = 0;
    unsigned char *res;
    size_t reslen = 0;
    int want = 1; /* a result buffer is expected (res NULL: ENOMEM) */
    const char *enc = p->encoding;

    if (rawlen && memchr(raw, 0, rawlen))
        flags |= SLUICE_MIME_NUL;
    if (strcmp(enc, "base64") == 0) {
        flags |= mime_cte_base64(raw, rawlen, &tb);
        src = tb.data;
        srclen = tb.len;
    } else if (strcmp(enc, "quoted-printable") == 0) {
        flags |= mime_cte_qp(raw, rawlen, &tb);
        src = tb.data;
        srclen = tb.len;
    } else {
        if (strcmp(enc, "7bit") != 0 && strcmp(enc, "8bit") != 0 &&
            strcmp(enc, "binary") != 0)
            flags |= SLUICE_MIME_BAD_ENCODING;
        src = raw;
        srclen = rawlen;
    }
    if (tb.oom)
        m->oom = 1;
    if (src == NULL)
        src = mime_empty;

    if (strncmp(p->type, "text/", 5) == 0 &&
        !mime_charset_identity(&m->cs, charset, strlen(charset), src, srclen)) {
        flags |= mime_charset_convert(&m->cs, charset, strlen(charset), src,
                                      srclen, &ob);
        mime_buf_free(&tb);
        res = mime_buf_finish(&ob, &reslen);
    } else if (src == tb.data) {
        res = mime_buf_finish(&tb, &reslen);
    } else if (srclen == 0) {
        res = NULL;
        want = 0;
    } else {
        res = malloc(srclen + 1);
        if (res) {
            memcpy(res, src, srclen);
            res[srclen] = '\0';
        }
        reslen = srclen;
    }
    mime_buf_free(&tb);
    mime_buf_free(&ob);
    p = &m->parts[idx];
    p->flags |= flags;
    if (res == NULL) {
        if (want)
            m->oom = 1;
        p->decoded = mime_empty;
        p->decoded_len = 0;
        return;
    }
    if (mime_arena_adopt(&m->arena, res) < 0) {
        m->oom = 1;
        p->decoded = mime_empty;
        p->decoded_len = 0;
        return;
    }
    p->decoded = res;
    p->decoded_len = reslen;
}

static void mime_entity(mime_msg *m, size_t off, size_t len, int parent,
                        int depth, int digest, int headerless);

/* Split the multipart body of part idx into children. */
static void mime_multipart(mime_msg *m, long idx, const char *bnd, int depth,
                           int digest)
{
    const unsigned char *b = m->buf;
    size_t bo = m->parts[idx].body_offset;
    size_t be = bo + m->parts[idx].body_length;
    size_t bl = strlen(bnd), pos = bo, part_start = 0;
    int found = 0, closed = 0, in_part = 0;
    unsigned char *needle;

    needle = malloc(bl + 3);
    if (needle == NULL) {
        m->oom = 1;
        return;
    }
    needle[0] = '\n';
    needle[1] = '-';
    needle[2] = '-';
    memcpy(needle + 3, bnd, bl);

    while (pos < be && !m->oom) {
        size_t ls, brk, q, after;
        int close = 0;

        if (pos == bo && be - bo >= bl + 2 && b[bo] == '-' &&
            b[bo + 1] == '-' && memcmp(b + bo + 2, bnd, bl) == 0) {
            ls = brk = bo;
        } else {
            const unsigned char *hit =
                memmem(b + pos, be - pos, needle, bl + 3);
            if (hit == NULL)
                break;
            brk = (size_t)(hit - b);
            ls = brk + 1;
            if (in_part && brk > part_start && b[brk - 1] == '\r')
                brk--;
        }
        q = ls + 2 + bl;
        if (q + 1 < be && b[q] == '-' && b[q + 1] == '-') {
            close = 1;
            q += 2;
        }
        while (q < be && (b[q] == ' ' || b[q] == '\t' || b[q] == '\r'))
            q++;
        if (q < be && b[q] != '\n') {
            pos = ls; /* not a delimiter line; search on */
            if (pos == bo)
                pos++;
            continue;
        }
        after = q < be ? q + 1 : be;
        if (in_part) {
            if (brk < part_start)
                brk = part_start;
            mime_entity(m, part_start, brk - part_start, (int)idx, depth + 1,
                        digest, 0);
        }
        found = 1;
        if (close) {
            closed = 1;
            in_part = 0;
            break;
        }
        if (m->nparts >= m->lim.max_parts) {
            m->parts[0].flags |= SLUICE_MIME_TRUNCATED;
            in_part = 0;
            closed = 1;
            break;
        }
        in_part = 1;
        part_start = after;
        /* The delimiter's own line break may precede the next one. */
        pos = (after > bo && b[after - 1] == '\n') ? after - 1 : after;
    }
    free(needle);
    if (m->oom)
        return;
    if (!found) {
        /* No delimiter at all: keep the content visible as text. */
        m->parts[idx].flags |= SLUICE_MIME_BAD_BOUNDARY;
        mime_entity(m, bo, be - bo, (int)idx, depth + 1, 0, 1);
        return;
    }
    if (in_part) {
        m->parts[idx].flags |= SLUICE_MIME_BAD_BOUNDARY;
        mime_entity(m, part_start, be - part_start, (int)idx, depth + 1, digest,
                    0);
    } else if (!closed) {
        m->parts[idx].flags |= SLUICE_MIME_BAD_BOUNDARY;
    }
}

/* The top-level header list, with decoded values. */
static void mime_top_headers(mime_msg *m)
{
    size_t i;
    unsigned fl = 0;

    if (m->hb.count == 0)
        return;
    m->hdrs = mime_arena_alloc(&m->arena, m->hb.count * sizeof(*m->hdrs));
    if (m->hdrs == NULL) {
        m->oom = 1;
        return;
    }
    for (i = 0; i < m->hb.count; i++) {
        const hdr_field *f = &m->hb.fields[i];
        sluice_header *h = &m->hdrs[i];
        h->size = sizeof(*h);
        h->name.ptr = (const char *)m->buf + f->name_off;
        h->name.len = f->name_len;
        h->raw.ptr = (const char *)m->buf + f->raw_off;
        h->raw.len = f->raw_len;
        h->value =
            mime_keep(m, hdr_decode_cs(h->raw.ptr, h->raw.len, &fl, &m->cs));
        if (h->value[0] == '\0' && h->raw.len && m->oom)
            return;
    }
    m->nhdrs = m->hb.count;
    m->parts[0].flags |=
        fl & (SLUICE_MIME_BAD_CHARSET | SLUICE_MIME_BAD_ENCODING);
}

static void mime_entity(mime_msg *m, size_t off, size_t len, int parent,
                        int depth, int digest, int headerless)
{
    const unsigned char *ctr = NULL, *cter = NULL, *cdr = NULL;
    size_t ctl = 0, ctel = 0, cdl = 0, i;
    mime_ctype ct, cte, cd;
    char *charset = NULL, *bnd = NULL, *fname = NULL;
    unsigned flags = 0;
    int have_ct = 0, container = 0, pe_oom = 0;
    long idx;
    sluice_part *p;

    idx = mime_part_new(m, parent, depth, off, len);
    if (idx < 0)
        return;
    if (!headerless) {
        if (hdr_scan(m->buf + off, len, &m->lim, &m->hb, &m->hbcap) < 0) {
            m->oom = 1;
            return;
        }
        flags |= m->hb.flags;
        m->parts[idx].body_offset = off + m->hb.body_off;
        m->parts[idx].body_length = len - m->hb.body_off;
        for (i = 0; i < m->hb.count; i++) {
            hdr_field *f = &m->hb.fields[i];
            const unsigned char *nm = m->buf + off + f->name_off;
            const unsigned char **rp = NULL;
            size_t *rl = NULL;
            if (f->name_len < 12 || (nm[0] | 0x20) != 'c')
                continue;
            if (mime_name_is(nm, f->name_len, "content-type")) {
                rp = &ctr;
                rl = &ctl;
            } else if (mime_name_is(nm, f->name_len,
                                    "content-transfer-encoding")) {
                rp = &cter;
                rl = &ctel;
            } else if (mime_name_is(nm, f->name_len, "content-disposition")) {
                rp = &cdr;
                rl = &cdl;
            } else {
                continue;
            }
            if (*rp) {
                flags |= SLUICE_MIME_BAD_HEADER; /* repeated: first wins */
                continue;
            }
            *rp = m->buf + off + f->raw_off;
            *rl = f->raw_len;
        }
        if (idx == 0) {
            /* Field offsets are relative to off == 0 here. */
            mime_top_headers(m);
        }
    }
    p = &m->parts[idx];
    p->flags |= flags;
    flags = 0;

    /* Content-Type */
    if (ctr) {
        if (mime_ctype_parse(&ct, (const char *)ctr, ctl, 1) < 0) {
            mime_ctype_free(&ct);
            m->oom = 1;
            return;
        }
        have_ct = 1;
        if (ct.bad)
            flags |= SLUICE_MIME_BAD_HEADER;
        if (ct.main_len && ct.sub_len) {
            char *t = mime_arena_alloc(&m->arena, ct.main_len + ct.sub_len + 2);
            if (t) {
                size_t k, n = 0;
                for (k = 0; k < ct.main_len; k++)
                    t[n++] = (char)ct.text.data[ct.main_off + k];
                t[n++] = '/';
                for (k = 0; k < ct.sub_len; k++)
                    t[n++] = (char)ct.text.data[ct.sub_off + k];
                t[n] = '\0';
                for (k = 0; k < n; k++)
                    if (t[k] >= 'A' && t[k] <= 'Z')
                        t[k] = (char)(t[k] - 'A' + 'a');
                p->type = t;
            }
        }
        charset = mime_ctype_param(&ct, "charset", 1, &m->cs, &flags, &pe_oom);
        if (charset) {
            size_t k, n = strlen(charset), s = 0;
            while (s < n && (charset[s] == ' ' || charset[s] == '\t'))
                s++;
            while (n > s && (charset[n - 1] == ' ' || charset[n - 1] == '\t'))
                n--;
            for (k = s; k < n; k++)
                if (charset[k] == 0)
                    break;
            p->charset = mime_arena_lower(&m->arena, charset + s, k - s);
            free(charset);
            if (p->charset == NULL)
                p->charset = "";
        }
    } else if (digest) {
        p->type = "message/rfc822";
    }

    /* Content-Transfer-Encoding */
    if (cter) {
        if (mime_ctype_parse(&cte, (const char *)cter, ctel, 0) < 0) {
            pe_oom = 1;
        } else if (cte.main_len) {
            const char *e = mime_arena_lower(
                &m->arena, cte.text.data + cte.main_off, cte.main_len);
            if (e)
                p->encoding = e;
        }
        mime_ctype_free(&cte);
    }

    /* Content-Disposition */
    if (cdr) {
        if (mime_ctype_parse(&cd, (const char *)cdr, cdl, 0) < 0) {
            pe_oom = 1;
        } else {
            const unsigned char *d = cd.text.data + cd.main_off;
            if (cd.main_len == 0)
                p->disposition = "";
            else if (mime_name_is(d, cd.main_len, "inline"))
                p->disposition = "inline";
            else
                p->disposition = "attachment"; /* RFC 2183: unknown */
            fname =
                mime_ctype_param(&cd, "filename", 0, &m->cs, &flags, &pe_oom);
        }
        mime_ctype_free(&cd);
    }
    if (fname == NULL && have_ct)
        fname = mime_ctype_param(&ct, "name", 0, &m->cs, &flags, &pe_oom);
    if (fname)
        p->filename = mime_keep(m, fname);
    p->is_attachment =
        p->filename[0] != '\0' || strcmp(p->disposition, "attachment") == 0;
    if (have_ct && strncmp(p->type, "multipart/", 10) == 0) {
        bnd = mime_ctype_param(&ct, "boundary", 1, &m->cs, &flags, &pe_oom);
        if (bnd && (bnd[0] == '\0' || memchr(bnd, '\n', strlen(bnd)))) {
            free(bnd);
            bnd = NULL;
        }
    }
    if (have_ct)
        mime_ctype_free(&ct);
    if (pe_oom || m->arena.oom) {
        free(bnd);
        m->oom = 1;
        return;
    }
    p->flags |= flags;

    container = strncmp(p->type, "multipart/", 10) == 0 ||
                ((strcmp(p->type, "message/rfc822") == 0 ||
                  strcmp(p->type, "message/global") == 0) &&
                 (strcmp(p->encoding, "7bit") == 0 ||
                  strcmp(p->encoding, "8bit") == 0 ||
                  strcmp(p->encoding, "binary") == 0));
    if (container && depth + 1 > m->lim.max_depth) {
        m->parts[0].flags |= SLUICE_MIME_TRUNCATED;
        container = 0;
    }
    if (!container) {
        free(bnd);
        mime_leaf(m, idx, p->charset);
        return;
    }
    p->is_multipart = 1;
    if (strncmp(p->type, "multipart/", 10) == 0) {
        if (bnd == NULL) {
            p->flags |= SLUICE_MIME_BAD_BOUNDARY;
            mime_entity(m, p->body_offset, p->body_length, (int)idx, depth + 1,
                        0, 1);
            return;
        }
        mime_multipart(m, idx, bnd, depth,
                       strcmp(p->type, "multipart/digest") == 0);
        free(bnd);
        return;
    }
    free(bnd);
    mime_entity(m, p->body_offset, p->body_length, (int)idx, depth + 1, 0, 0);
}

mime_msg *mime_parse(const unsigned char *buf, size_t len,
                     const mime_limits *lim)
{
    mime_msg *m = calloc(1, sizeof(*m));
    size_t i;

    if (m == NULL)
        return NULL;
    if (buf == NULL) {
        buf = mime_empty;
        len = 0;
    }
    m->buf = buf;
    m->len = len;
    hdr_limits(lim, &m->lim);
    if (m->lim.max_parts < 1)
        m->lim.max_parts = 1;
    mime_charsets_init(&m->cs);
    mime_entity(m, 0, len, -1, 0, 0, 0);
    free(m->hb.fields);
    m->hb.fields = NULL;
    mime_charsets_close(&m->cs);
    if (m->oom || m->arena.oom || m->nparts == 0) {
        mime_free(m);
        return NULL;
    }
    for (i = 0; i < m->nparts; i++)
        m->flags |= m->parts[i].flags;
    return m;
}

void mime_free(mime_msg *m)
{
    if (m == NULL)
        return;
    free(m->hb.fields);
    free(m->parts);
    mime_arena_free(&m->arena);
    free(m);
}

size_t mime_part_count(const mime_msg *m)
{
    return m ? m->nparts : 0;
}

const sluice_part *mime_part(const mime_msg *m, size_t i)
{
    if (m == NULL || i >= m->nparts)
        return NULL;
    return &m->parts[i];
}

unsigned mime_flags(const mime_msg *m)
{
    return m ? m->flags : 0;
}

size_t mime_header_count(const mime_msg *m)
{
    return m ? m->nhdrs : 0;
}

const sluice_header *mime_header(const mime_msg *m, size_t i)
{
    if (m == NULL || i >= m->nhdrs)
        return NULL;
    return &m->hdrs[i];
}
