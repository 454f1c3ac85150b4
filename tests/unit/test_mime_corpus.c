/*
 * test_mime_corpus.c - parse every message of the mail corpus with
 * mime_parse and check the invariants of the result.
 *
 * Usage: test_mime_corpus CORPUS_DIR [EXPECTED_COUNT]
 *   CORPUS_DIR holds ham/ and spam/ with *.eml files.  Fails if either is
 *   missing or empty, or (if given) fewer than EXPECTED_COUNT messages were
 *   found.  For each message: mime_parse returns non-NULL; every offset and
 *   length lies within the buffer (a child within its parent); the part
 *   tree is consistent (parent index < own index, depth = parent's + 1);
 *   every string is non-NULL and valid UTF-8; every leaf's decoded data is
 *   NUL-terminated and, for text leaves, valid UTF-8; top-level header
 *   values contain no CR/LF.  Prints summary figures, including mime_parse
 *   throughput.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime.h"

typedef struct corpus_state {
    const char *dir;
    long expected;
} corpus_state;

/* Independent strict UTF-8 check (not the library's own). */
static int corpus_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        unsigned cp, need, k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + need >= n)
            return 0;
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += need + 1;
    }
    return 1;
}

static unsigned char *corpus_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            if (buf == NULL) {
                fclose(f);
                return NULL;
            }
        }
        r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

typedef struct corpus_stats {
    long messages, parts, attachments, leaves, text_leaves;
    long flagged[8];
    long any_flag;
    double bytes, seconds;
} corpus_stats;

static void corpus_check(const unsigned char *buf, size_t len,
                         const mime_msg *m, corpus_stats *st, const char *path)
{
    size_t n = mime_part_count(m), i;
    unsigned fl = mime_flags(m), all = 0;

    assert_true(n >= 1);
    assert_null(mime_part(m, n));
    for (i = 0; i < n; i++) {
        const sluice_part *p = mime_part(m, i);
        assert_non_null(p);
        assert_int_equal(p->size, sizeof(*p));
        assert_int_equal(p->index, (int)i);
        all |= p->flags;
        assert_true(p->offset <= len && p->length <= len - p->offset);
        assert_true(p->body_offset >= p->offset);
        assert_true(p->body_offset <= p->offset + p->length);
        assert_true(p->body_length <= p->offset + p->length - p->body_offset);
        assert_non_null(p->type);
        assert_non_null(p->charset);
        assert_non_null(p->encoding);
        assert_non_null(p->disposition);
        assert_non_null(p->filename);
        assert_non_null(strchr(p->type, '/'));
        assert_true(corpus_utf8_ok((const unsigned char *)p->filename,
                                   strlen(p->filename)));
        if (i == 0) {
            assert_int_equal(p->parent, -1);
            assert_int_equal(p->depth, 0);
            assert_int_equal(p->offset, 0);
            assert_int_equal(p->length, len);
        } else {
            const sluice_part *pp;
            assert_true(p->parent >= 0 && (size_t)p->parent < i);
            pp = mime_part(m, (size_t)p->parent);
            assert_int_equal(p->depth, pp->depth + 1);
            assert_true(pp->is_multipart);
            assert_true(p->offset >= pp->body_offset);
            assert_true(p->offset + p->length <=
                        pp->body_offset + pp->body_length);
        }
        if (p->is_attachment)
            st->attachments++;
        if (!p->is_multipart) {
            st->leaves++;
            assert_non_null(p->decoded);
            assert_int_equal(p->decoded[p->decoded_len], 0);
            if (strncmp(p->type, "text/", 5) == 0) {
                st->text_leaves++;
                if (!corpus_utf8_ok(p->decoded, p->decoded_len))
                    fail_msg("%s: part %zu (%s, charset '%s') not UTF-8", path,
                             i, p->type, p->charset);
            }
        } else {
            assert_null(p->decoded);
        }
    }
    assert_int_equal(fl, all);
    for (i = 0; i < mime_header_count(m); i++) {
        const sluice_header *h = mime_header(m, i);
        assert_non_null(h);
        assert_int_equal(h->size, sizeof(*h));
        assert_true((const unsigned char *)h->name.ptr >= buf);
        assert_true((const unsigned char *)h->raw.ptr + h->raw.len <=
                    buf + len);
        assert_non_null(h->value);
        assert_null(strpbrk(h->value, "\r\n"));
        assert_true(
            corpus_utf8_ok((const unsigned char *)h->value, strlen(h->value)));
    }
    assert_null(mime_header(m, mime_header_count(m)));
    st->parts += (long)n;
    for (i = 0; i < 8; i++)
        if (fl & (1u << i))
            st->flagged[i]++;
    if (fl)
        st->any_flag++;
}

static long corpus_dir(const char *dir, corpus_stats *st)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long found = 0;
    char path[4096];

    if (d == NULL)
        fail_msg("cannot open %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name), len = 0;
        unsigned char *buf;
        struct timespec t0, t1;
        mime_msg *m;

        if (nl < 5 || strcmp(de->d_name + nl - 4, ".eml") != 0)
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
            sizeof(path))
            fail_msg("path too long in %s", dir);
        buf = corpus_slurp(path, &len);
        if (buf == NULL)
            fail_msg("cannot read %s", path);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        m = mime_parse(buf, len, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (m == NULL)
            fail_msg("mime_parse returned NULL for %s", path);
        st->seconds += (double)(t1.tv_sec - t0.tv_sec) +
                       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        st->bytes += (double)len;
        corpus_check(buf, len, m, st, path);
        mime_free(m);
        free(buf);
        st->messages++;
        found++;
    }
    closedir(d);
    return found;
}

static void test_corpus(void **state)
{
    corpus_state *cs = *state;
    static const char *const names[8] = {
        "TRUNCATED",  "BAD_BOUNDARY", "BAD_ENCODING", "BAD_CHARSET",
        "BAD_HEADER", "NUL",          "LONG_LINE",    "8BIT_HEADER"};
    corpus_stats st;
    char dir[4096];
    long ham, spam;
    int i;

    memset(&st, 0, sizeof(st));
    snprintf(dir, sizeof(dir), "%s/ham", cs->dir);
    ham = corpus_dir(dir, &st);
    snprintf(dir, sizeof(dir), "%s/spam", cs->dir);
    spam = corpus_dir(dir, &st);
    if (ham == 0 || spam == 0)
        fail_msg("corpus %s: %ld ham, %ld spam messages: need both", cs->dir,
                 ham, spam);
    if (cs->expected > 0 && st.messages < cs->expected)
        fail_msg("corpus %s: found %ld messages, expected %ld", cs->dir,
                 st.messages, cs->expected);
    printf("mime corpus: %ld messages (%ld ham, %ld spam), %.1f MB\n",
           st.messages, ham, spam, st.bytes / 1e6);
    printf("mime corpus: %ld parts, %ld leaves (%ld text), %ld attachments\n",
           st.parts, st.leaves, st.text_leaves, st.attachments);
    printf("mime corpus: %ld messages flagged:", st.any_flag);
    for (i = 0; i < 8; i++)
        printf(" %s=%ld", names[i], st.flagged[i]);
    printf("\nmime corpus: mime_parse %.3f s, %.1f MB/s\n", st.seconds,
           st.seconds > 0 ? st.bytes / 1e6 / st.seconds : 0.0);
}

int main(int argc, char **argv)
{
    corpus_state cs;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_corpus, &cs),
    };

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [EXPECTED_COUNT]\n", argv[0]);
        return 2;
    }
    cs.dir = argv[1];
    cs.expected = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
