/*
 * bayes_accuracy.c - k-fold cross-validation of the Bayes classifier on a
 * corpus laid out as ham/ and spam/ (bench/accuracy.sh runs it).
 *
 *   bayes_accuracy [-b] [-v] [-k FOLDS] [-t THRESHOLD] [-w OSB] [-c CLUES]
 *                  [-m MIN_DEV] [-S STRENGTH] [-d DEDUP_MIN] [-r SEED] CORPUS
 *
 * Every message is tokenized once.  Messages are shuffled (seeded, so runs
 * repeat) and dealt into k folds per class; for each fold a fresh
 * in-memory table learns the other k-1 folds and classifies this one, so
 * no message is ever scored by a table that learned it.  Ham whose path
 * has "hard" in a directory or file name (hard_ham/, ham/hard/...) is
 * reported apart as hard ham.
 *
 * -v lists the messages on the wrong side of the threshold.
 *
 * Prints: spam recall and ham false-positive rates at the threshold; the
 * spam recall reachable at 0.1 % and 0.5 % of all ham flagged (threshold
 * set just above the ham score that many ham messages reach, ranking by
 * the logit so that probabilities rounded to 1.0 still rank); the score
 * bands per class; tokenize and classify rates.  Asserts nothing.
 */
#include "bayes.h"
#include "mime.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { C_SPAM, C_EASY, C_HARD };

typedef struct acc_msg {
    char *path;
    int cls;
    int fold;
    bayes_toks tk;
    double prob;
    double rank; /* the logit: prob without the rounding at 0 and 1 */
} acc_msg;

typedef struct acc_set {
    acc_msg *m;
    size_t n, cap;
} acc_set;

static double acc_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int acc_add(acc_set *s, const char *path, int cls)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        acc_msg *p = realloc(s->m, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        s->m = p;
        s->cap = cap;
    }
    memset(&s->m[s->n], 0, sizeof(s->m[0]));
    if ((s->m[s->n].path = strdup(path)) == NULL)
        return -1;
    s->m[s->n++].cls = cls;
    return 0;
}

static void acc_walk(acc_set *s, const char *dir, int cls, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct stat st;
    char path[4096];

    if (d == NULL || depth > 8) {
        if (d)
            closedir(d);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        int c = cls;
        if (de->d_name[0] == '.')
            continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
                sizeof(path) ||
            stat(path, &st) < 0)
            continue;
        if (c == C_EASY && strstr(de->d_name, "hard") != NULL)
            c = C_HARD;
        if (S_ISDIR(st.st_mode))
            acc_walk(s, path, c, depth + 1);
        else if (S_ISREG(st.st_mode) && acc_add(s, path, c) < 0)
            break;
    }
    closedir(d);
}

static int acc_cmp_path(const void *a, const void *b)
{
    return strcmp(((const acc_msg *)a)->path, ((const acc_msg *)b)->path);
}

static int acc_cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

static unsigned char *acc_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || (buf = malloc((size_t)n + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static uint64_t acc_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Spam recall when at most `rate` of all ham may be flagged. */
static double acc_recall_at(const acc_set *s, double rate, double *thr)
{
    double *ham = malloc(s->n * sizeof(*ham));
    size_t nh = 0, ns = 0, hit = 0, allowed, i;

    *thr = -1.0;
    if (ham == NULL)
        return -1;
    for (i = 0; i < s->n; i++) {
        if (s->m[i].cls != C_SPAM)
            ham[nh++] = s->m[i].rank;
        else
            ns++;
    }
    qsort(ham, nh, sizeof(*ham), acc_cmp_desc);
    allowed = (size_t)(rate * (double)nh + 1e-9);
    *thr = allowed < nh ? ham[allowed] : -INFINITY;
    free(ham);
    for (i = 0; i < s->n; i++)
        if (s->m[i].cls == C_SPAM && s->m[i].rank > *thr)
            hit++;
    return ns ? (double)hit / (double)ns : 0.0;
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"spam", "easy ham", "hard ham"};
    bayes_tok_opts to;
    bayes_params bp;
    acc_set s = {0};
    uint64_t seed = 1, seed0;
    size_t i, j, k = 5, n[3] = {0}, flagged[3] = {0}, untrained = 0;
    size_t bands[3][9] = {{0}}, ntok = 0;
    double t0, t_tok, t_cls = 0, thr = 0;
    char path[4096];
    int opt, f, blocked = 0, verbose = 0;

    bayes_tok_opts_default(&to);
    bayes_params_default(&bp);
    while ((opt = getopt(argc, argv, "bvk:t:w:c:m:S:d:r:")) != -1) {
        switch (opt) {
        case 'b':
            blocked = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'k':
            k = strtoul(optarg, NULL, 10);
            break;
        case 't':
            bp.threshold = strtod(optarg, NULL);
            break;
        case 'w':
            to.osb_window = atoi(optarg);
            break;
        case 'c':
            bp.max_clues = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            bp.min_dev = strtod(optarg, NULL);
            break;
        case 'S':
            bp.strength = strtod(optarg, NULL);
            break;
        case 'd':
            bp.dedup_min = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            seed = strtoull(optarg, NULL, 10);
            break;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc || k < 2) {
    usage:
        fprintf(stderr,
                "usage: bayes_accuracy [-b] [-v] [-k FOLDS] [-t THRESHOLD] "
                "[-w OSB] [-c CLUES] [-m MIN_DEV] [-S STRENGTH] [-d DEDUP_MIN] "
                "[-r SEED] "
                "CORPUS\n");
        return 2;
    }
    /* the training minimum would make small folds "untrained" */
    bp.min_spam = bp.min_ham = 1;
    {
        DIR *d = opendir(argv[optind]);
        struct dirent *de;
        if (d == NULL) {
            perror(argv[optind]);
            return 1;
        }
        while ((de = readdir(d)) != NULL) {
            int cls = strstr(de->d_name, "spam")   ? C_SPAM
                      : strstr(de->d_name, "hard") ? C_HARD
                      : strstr(de->d_name, "ham")  ? C_EASY
                                                   : -1;
            if (cls < 0 || de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[optind], de->d_name);
            acc_walk(&s, path, cls, 0);
        }
        closedir(d);
    }
    if (s.n == 0) {
        fprintf(stderr, "bayes_accuracy: no messages under %s\n", argv[optind]);
        return 1;
    }
    qsort(s.m, s.n, sizeof(*s.m), acc_cmp_path);
    seed0 = seed;
    /* Seeded shuffle, then deal each class round-robin into the folds; or
     * (-b) folds of consecutive names, closer to "train on the past, test
     * on the future" when names are numbered in arrival order. */
    for (i = s.n - 1; i > 0 && !blocked; i--) {
        acc_msg tmp;
        j = (size_t)(acc_rand(&seed) % (i + 1));
        tmp = s.m[i], s.m[i] = s.m[j], s.m[j] = tmp;
    }
    for (i = 0; i < s.n; i++)
        n[s.m[i].cls]++;
    {
        size_t seen[3] = {0};
        for (i = 0; i < s.n; i++) {
            int c = s.m[i].cls;
            s.m[i].fold =
                blocked ? (int)(seen[c] * k / n[c]) : (int)(seen[c] % k);
            seen[c]++;
        }
    }

    t0 = acc_now();
    for (i = 0; i < s.n; i++) {
        size_t len;
        unsigned char *buf = acc_slurp(s.m[i].path, &len);
        mime_msg *m;
        bayes_input in;
        if (buf == NULL || (m = mime_parse(buf, len, NULL)) == NULL) {
            fprintf(stderr, "bayes_accuracy: %s: unreadable\n", s.m[i].path);
            return 1;
        }
        bayes_input_mime(&in, m);
        if (bayes_tokenize(&in, &to, &s.m[i].tk) < 0)
            return 1;
        ntok += s.m[i].tk.count;
        mime_free(m);
        free(buf);
    }
    t_tok = acc_now() - t0;

    for (f = 0; f < (int)k; f++) {
        bayes_wr *w = bayes_wr_new();
        if (w == NULL)
            return 1;
        for (i = 0; i < s.n; i++)
            if (s.m[i].fold != f &&
                bayes_wr_learn(w, &s.m[i].tk, s.m[i].cls == C_SPAM, 1) < 0)
                return 1;
        t0 = acc_now();
        for (i = 0; i < s.n; i++) {
            bayes_result r;
            if (s.m[i].fold != f)
                continue;
            if (bayes_classify(bayes_wr_table(w), &s.m[i].tk, &bp, &r) < 0) {
                untrained++;
                r.prob = 0.5;
                r.logit = 0.0;
            }
            s.m[i].prob = r.prob;
            s.m[i].rank = r.logit;
        }
        t_cls += acc_now() - t0;
        bayes_wr_close(w);
    }

    for (i = 0; i < s.n; i++) {
        static const double edges[] = {0.01, 0.05, 0.2,  0.4,
                                       0.6,  0.8,  0.95, 0.99};
        int c = s.m[i].cls;
        for (j = 0; j < 8 && s.m[i].prob >= edges[j]; j++)
            ;
        bands[c][j]++;
        flagged[c] += s.m[i].prob >= bp.threshold;
        if (verbose && (c == C_SPAM) != (s.m[i].prob >= bp.threshold))
            printf("%s %s %.4f\n", c == C_SPAM ? "missed" : "flagged",
                   s.m[i].path, s.m[i].prob);
    }
    if (blocked)
        printf("corpus %s: %zu spam, %zu easy ham, %zu hard ham; %zu folds "
               "of consecutive names\n",
               argv[optind], n[C_SPAM], n[C_EASY], n[C_HARD], k);
    else
        printf("corpus %s: %zu spam, %zu easy ham, %zu hard ham; %zu folds, "
               "shuffled with seed %llu\n",
               argv[optind], n[C_SPAM], n[C_EASY], n[C_HARD], k,
               (unsigned long long)seed0);
    printf("tokenizer: OSB window %d, max %zu tokens, %.0f tokens/message; "
           "clues %zu, min_dev %.2f, strength %.2f, dedup_min %u\n",
           to.osb_window, to.max_tokens, (double)ntok / (double)s.n,
           bp.max_clues, bp.min_dev, bp.strength, (unsigned)bp.dedup_min);
    printf("at threshold %.2f: spam recall %.2f %%", bp.threshold,
           n[C_SPAM] ? 100.0 * (double)flagged[C_SPAM] / (double)n[C_SPAM]
                     : 0.0);
    for (j = C_EASY; j <= C_HARD; j++)
        if (n[j])
            printf(", %s flagged %.2f %% (%zu)", names[j],
                   100.0 * (double)flagged[j] / (double)n[j], flagged[j]);
    printf("\n");
    for (j = 0; j < 2; j++) {
        double rate = j == 0 ? 0.001 : 0.005;
        double rec = acc_recall_at(&s, rate, &thr);
        printf("spam recall at <= %.1f %% of ham flagged: %.2f %% "
               "(logit > %.2f, probability > %.6f)\n",
               rate * 100, 100.0 * rec, thr, 1.0 / (1.0 + exp(-thr)));
    }
    printf("bands            00    05    20    40    50    60    80    95"
           "    99\n");
    for (j = 0; j < 3; j++) {
        size_t b;
        if (n[j] == 0)
            continue;
        printf("%-10s", names[j]);
        for (b = 0; b < 9; b++)
            printf(" %5zu", bands[j][b]);
        printf("\n");
    }
    printf("speed: tokenize %.0f msg/s (MIME parse included), classify %.0f "
           "msg/s, one core%s\n",
           (double)s.n / t_tok, (double)s.n / t_cls,
           untrained ? " (some folds untrained!)" : "");
    for (i = 0; i < s.n; i++) {
        bayes_toks_free(&s.m[i].tk);
        free(s.m[i].path);
    }
    free(s.m);
    return 0;
}
