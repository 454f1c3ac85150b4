/*
 * fuzz_bayes.c - libFuzzer target for the Bayes library (plugins/heuristic).
 * The first byte picks what the rest of the input is:
 *   0, 3  a message: mime_parse, then bayes_tokenize with the defaults, with
 *         a small token bound and the debug callback, and with OSB pairs;
 *         the result must respect its bounds
 *   1     a text export: bayes_wr_import (replace and merge); a table that
 *         imports must export and import again to the same totals
 *   2     a database file image: bayes_file_check; if accepted, lookups in
 *         it must stay within the table
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bayes.h"
#include "mime.h"

#define FUZZ_CHECK(c)                                                          \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

static void fuzz_debug(void *arg, const char *tok, size_t len)
{
    size_t *n = arg;

    FUZZ_CHECK(len < 128 && memchr(tok, '\0', len) == NULL);
    (*n)++;
}

static void fuzz_message(const uint8_t *data, size_t size)
{
    mime_msg *m = mime_parse(data, size, NULL);
    bayes_tok_opts o;
    bayes_input in;
    bayes_toks tk;
    size_t i, dbg = 0;

    if (m == NULL)
        return;
    bayes_input_mime(&in, m);
    if (bayes_tokenize(&in, NULL, &tk) == 0) {
        FUZZ_CHECK(tk.count <= tk.max);
        for (i = 0; i < tk.count; i++)
            FUZZ_CHECK(tk.list[i] != 0 && bayes_toks_has(&tk, tk.list[i]));
        bayes_toks_free(&tk);
    }
    bayes_tok_opts_default(&o);
    o.max_tokens = 50;
    o.max_text = 512;
    o.osb_window = 4;
    o.debug = fuzz_debug;
    o.debug_arg = &dbg;
    if (bayes_tokenize(&in, &o, &tk) == 0) {
        FUZZ_CHECK(tk.count <= 50);
        FUZZ_CHECK(dbg >= tk.count);
        bayes_toks_free(&tk);
    }
    mime_free(m);
}

static void fuzz_import(const uint8_t *data, size_t size)
{
    bayes_wr *w = bayes_wr_new(), *w2;
    char err[256], *text = NULL;
    size_t len = 0;
    FILE *f, *out;

    if (w == NULL || (f = fmemopen((void *)data, size, "r")) == NULL) {
        bayes_wr_close(w);
        return;
    }
    if (size > 0 && bayes_wr_import(w, f, 0, err, sizeof(err)) == 0) {
        const bayes_table *t = bayes_wr_table(w);
        uint64_t ns = t->nspam, nh = t->nham;
        rewind(f);
        bayes_wr_import(w, f, 1, err, sizeof(err)); /* merge */
        /* what imported exports and imports back to the same totals */
        if ((out = open_memstream(&text, &len)) != NULL) {
            FUZZ_CHECK(bayes_table_export(bayes_wr_table(w), out) == 0);
            fclose(out);
            if ((w2 = bayes_wr_new()) != NULL &&
                (out = fmemopen(text, len, "r")) != NULL) {
                FUZZ_CHECK(bayes_wr_import(w2, out, 0, err, sizeof(err)) == 0);
                FUZZ_CHECK(bayes_wr_table(w2)->nspam ==
                           bayes_wr_table(w)->nspam);
                fclose(out);
            }
            bayes_wr_close(w2);
            free(text);
        }
        (void)ns, (void)nh;
    }
    fclose(f);
    bayes_wr_close(w);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    char err[256];
    void *img;
    const bayes_filehdr *h;
    bayes_table t;
    uint64_t probe;

    /* an aligned copy, as a mapping would be */
    if ((img = aligned_alloc(64, (size + 63) / 64 * 64 + 64)) == NULL)
        return;
    memcpy(img, data, size);
    if (bayes_file_check(img, size, err, sizeof(err)) == 0) {
        h = img;
        FUZZ_CHECK(h->hdr_size + h->nslots * sizeof(bayes_slot) == size);
        t.nspam = h->nspam;
        t.nham = h->nham;
        t.nused = h->nused;
        t.mask = h->nslots - 1;
        t.slots = (const bayes_slot *)((const char *)img + h->hdr_size);
        for (probe = 1; probe < 64; probe++) {
            const bayes_slot *s = bayes_table_find(&t, probe * 0x9e37u);
            FUZZ_CHECK(s == NULL || (s >= t.slots && s <= t.slots + t.mask));
        }
    }
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] & 3) {
    case 1:
        fuzz_import(data + 1, size - 1);
        break;
    case 2:
        fuzz_file(data + 1, size - 1);
        break;
    default:
        fuzz_message(data + 1, size - 1);
        break;
    }
    return 0;
}
