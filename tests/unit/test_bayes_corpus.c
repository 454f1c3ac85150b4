/*
 * test_bayes_corpus.c - tokenize every message of the mail corpus, and
 * check that learning half of it classifies the other half sensibly.
 *
 * Usage: test_bayes_corpus CORPUS_DIR [EXPECTED_COUNT]
 *   CORPUS_DIR holds ham/ and spam/.  Every message must parse and
 *   tokenize (under ASan: without a leak or a bad access), yield at least
 *   one token and no more than the bound.  Then the even-numbered
 *   messages (in name order) are learned and the odd ones classified:
 *   spam recall at the default threshold must be at least 80 % and at most
 *   1 % of ham flagged (loose bounds: bench/accuracy.sh gives the real
 *   figures; these catch a broken classifier).  The table is saved and
 *   mapped back, and must classify exactly as the in-memory one did.
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
#include <unistd.h>

#include "bayes.h"
#include "mime.h"

typedef struct msg {
    bayes_toks tk;
    int spam;
} msg;

static const char *corpus;
static long expected;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf != NULL)
        *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

/* Tokenize every file of CORPUS/sub, appending to *all. */
static void load(const char *sub, int spam, msg **all, size_t *n, size_t *cap)
{
    char dir[4096], path[8192];
    char **names = NULL;
    size_t nn = 0, ncap = 0, i;
    struct dirent *de;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/%s", corpus, sub);
    d = opendir(dir);
    if (d == NULL)
        fail_msg("cannot open %s", dir);
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (nn == ncap) {
            ncap = ncap ? ncap * 2 : 1024;
            names = realloc(names, ncap * sizeof(*names));
            assert_non_null(names);
        }
        names[nn] = strdup(de->d_name);
        assert_non_null(names[nn]);
        nn++;
    }
    closedir(d);
    assert_true(nn > 0);
    qsort(names, nn, sizeof(*names), name_cmp);
    for (i = 0; i < nn; i++) {
        unsigned char *buf;
        size_t len = 0;
        mime_msg *m;
        bayes_input in;
        msg *x;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        buf = slurp(path, &len);
        if (buf == NULL)
            fail_msg("cannot read %s", path);
        m = mime_parse(buf, len, NULL);
        assert_non_null(m);
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            *all = realloc(*all, *cap * sizeof(**all));
            assert_non_null(*all);
        }
        x = &(*all)[(*n)++];
        x->spam = spam;
        bayes_input_mime(&in, m);
        if (bayes_tokenize(&in, NULL, &x->tk) < 0)
            fail_msg("%s: tokenize failed", path);
        if (x->tk.count == 0 || x->tk.count > x->tk.max)
            fail_msg("%s: %zu tokens", path, x->tk.count);
        assert_int_not_equal(x->tk.digest, 0);
        mime_free(m);
        free(buf);
        free(names[i]);
    }
    free(names);
}

static void test_corpus(void **state)
{
    msg *all = NULL;
    size_t n = 0, cap = 0, i, nspam = 0, nham = 0, hit = 0, fp = 0;
    bayes_wr *w = bayes_wr_new();
    bayes_params p;
    char dir[] = "/tmp/sluice-bayest-XXXXXX", path[256], err[256];
    bayes_db *db;

    (void)state;
    load("ham", 0, &all, &n, &cap);
    load("spam", 1, &all, &n, &cap);
    if (expected > 0 && (long)n < expected)
        fail_msg("%zu messages, expected %ld", n, expected);
    assert_non_null(w);
    for (i = 0; i < n; i += 2)
        assert_true(bayes_wr_learn(w, &all[i].tk, all[i].spam, 1) >= 0);
    bayes_params_default(&p);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    assert_int_equal(bayes_wr_save(w, path, err, sizeof(err)), 0);
    db = bayes_db_open(path, err, sizeof(err));
    assert_non_null(db);
    for (i = 1; i < n; i += 2) {
        bayes_result r, rm;
        assert_int_equal(bayes_classify(bayes_wr_table(w), &all[i].tk, &p, &r),
                         0);
        assert_int_equal(
            bayes_classify(bayes_db_table(db), &all[i].tk, &p, &rm), 0);
        assert_true(r.prob == rm.prob);
        if (all[i].spam) {
            nspam++;
            hit += r.prob >= p.threshold;
        } else {
            nham++;
            fp += r.prob >= p.threshold;
        }
    }
    printf("held-out half: spam recall %.1f %% (%zu/%zu), ham flagged %.2f %% "
           "(%zu/%zu)\n",
           100.0 * (double)hit / (double)nspam, hit, nspam,
           100.0 * (double)fp / (double)nham, fp, nham);
    assert_true(hit * 100 >= nspam * 80);
    assert_true(fp * 100 <= nham);
    bayes_db_close(db);
    unlink(path);
    rmdir(dir);
    bayes_wr_close(w);
    for (i = 0; i < n; i++)
        bayes_toks_free(&all[i].tk);
    free(all);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
    };

    if (argc < 2) {
        fprintf(stderr, "usage: test_bayes_corpus CORPUS_DIR [COUNT]\n");
        return 2;
    }
    corpus = argv[1];
    expected = argc > 2 ? atol(argv[2]) : 0;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
