/*
 * fuzz_mime.c - libFuzzer target for engine/mime: hdr_parse on the input,
 * hdr_decode on every field, mime_parse with small limits (so the limit
 * paths are reached) and with the defaults, and a walk over every part and
 * header checking the invariants the engine relies on (offsets within the
 * buffer, tree order, NUL-terminated decoded data, no CR/LF in values).
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

#define FUZZ_CHECK(c)                                                          \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

static void fuzz_mime_walk(const uint8_t *data, size_t size, const mime_msg *m)
{
    size_t n = mime_part_count(m), i;
    volatile size_t sink = 0;

    FUZZ_CHECK(n >= 1);
    FUZZ_CHECK(mime_part(m, n) == NULL);
    for (i = 0; i < n; i++) {
        const sluice_part *p = mime_part(m, i);
        FUZZ_CHECK(p != NULL && p->size == sizeof(*p));
        FUZZ_CHECK(p->index == (int)i);
        FUZZ_CHECK(p->offset <= size && p->length <= size - p->offset);
        FUZZ_CHECK(p->body_offset >= p->offset &&
                   p->body_offset - p->offset <= p->length &&
                   p->body_length <= p->offset + p->length - p->body_offset);
        FUZZ_CHECK(p->type && p->charset && p->encoding && p->disposition &&
                   p->filename);
        sink += strlen(p->type) + strlen(p->charset) + strlen(p->encoding) +
                strlen(p->disposition) + strlen(p->filename);
        if (i == 0) {
            FUZZ_CHECK(p->parent == -1 && p->depth == 0);
        } else {
            const sluice_part *pp;
            FUZZ_CHECK(p->parent >= 0 && (size_t)p->parent < i);
            pp = mime_part(m, (size_t)p->parent);
            FUZZ_CHECK(p->depth == pp->depth + 1 && pp->is_multipart);
        }
        if (!p->is_multipart) {
            FUZZ_CHECK(p->decoded != NULL);
            FUZZ_CHECK(p->decoded[p->decoded_len] == 0);
            if (p->decoded_len)
                sink += p->decoded[0] + p->decoded[p->decoded_len - 1];
        }
    }
    for (i = 0; i < mime_header_count(m); i++) {
        const sluice_header *h = mime_header(m, i);
        FUZZ_CHECK(h != NULL && h->value != NULL);
        FUZZ_CHECK((const uint8_t *)h->raw.ptr >= data &&
                   (const uint8_t *)h->raw.ptr + h->raw.len <= data + size);
        FUZZ_CHECK(strpbrk(h->value, "\r\n") == NULL);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mime_limits small;
    hdr_block hb;
    mime_msg *m;
    size_t i;

    if (hdr_parse(data, size, NULL, &hb) == 0) {
        FUZZ_CHECK(hb.body_off <= size);
        for (i = 0; i < hb.count; i++) {
            const hdr_field *f = &hb.fields[i];
            unsigned fl = 0;
            char *v;
            FUZZ_CHECK(f->raw_off <= size && f->raw_len <= size - f->raw_off);
            FUZZ_CHECK(f->end_off <= size && f->name_off < f->raw_off);
            v = hdr_decode((const char *)data + f->raw_off, f->raw_len, &fl);
            FUZZ_CHECK(v != NULL);
            FUZZ_CHECK(strpbrk(v, "\r\n") == NULL);
            free(v);
        }
        hdr_block_free(&hb);
    }

    m = mime_parse(data, size, NULL);
    if (m) {
        fuzz_mime_walk(data, size, m);
        mime_free(m);
    }

    mime_limits_default(&small);
    small.max_parts = 8;
    small.max_depth = 3;
    small.max_header_count = 5;
    small.max_header_len = 64;
    m = mime_parse(data, size, &small);
    if (m) {
        FUZZ_CHECK(mime_part_count(m) <= 8);
        fuzz_mime_walk(data, size, m);
        mime_free(m);
    }
    return 0;
}
