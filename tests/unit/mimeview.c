/*
 * mimeview.c - see mimeview.h.  SECURITY: test code; reads only what the
 * parsed message holds.
 */
#include <string.h>

#include "mimeview.h"

static const sluice_header *mv_header(void *arg, size_t i)
{
    return mime_header(arg, i);
}

static const sluice_part *mv_part(void *arg, size_t i)
{
    return mime_part(arg, i);
}

void mimeview_init(rules_view *v, mime_msg *m, const char *raw, size_t len,
                   time_t now)
{
    memset(v, 0, sizeof(*v));
    v->in.arg = m;
    v->in.nheaders = mime_header_count(m);
    v->in.header = mv_header;
    v->in.nparts = mime_part_count(m);
    v->in.part = mv_part;
    v->raw = raw;
    v->raw_len = len;
    v->now = now;
}
