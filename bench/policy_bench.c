/*
 * policy_bench.c - bench/policy.sh's driver: the policy compiler and
 * interpreter (plugins/policy/plang.c) in-process, one core.
 *
 *   policy_bench [-n PASSES] [-e EVALS] FILE|default
 *
 * Prints the script's size, the compile time (best and mean of PASSES
 * compiles: what the stage's init costs at each load and reload), and
 * evaluations per second over EVALS synthetic messages (scores spread
 * over 0..20, five symbols, a few headers, no lists).  Figures only,
 * nothing asserted; exit 1 if the script does not compile.
 *
 * SECURITY: a benchmark; reads the file it is given.
 */
#include "plang.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

extern const char policy_default_script[];

typedef struct pb_msg {
    double score;
    int n;
} pb_msg;

static double pb_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *pb_header(void *arg, const char *name, size_t nth)
{
    static char subj[64];
    pb_msg *m = arg;

    if (nth != 0)
        return NULL;
    if (strcasecmp(name, "subject") == 0) {
        snprintf(subj, sizeof(subj), "offer number %d for you", m->n % 997);
        return subj;
    }
    if (strcasecmp(name, "from") == 0)
        return "Someone <someone@example.org>";
    if (strcasecmp(name, "to") == 0)
        return "user@example.com";
    return NULL;
}

static const char *pb_rcpt(void *arg, size_t i)
{
    (void)arg;
    return i == 0 ? "user@example.com" : NULL;
}

static const char *pb_symbol(void *arg, size_t i, double *score)
{
    static const char *const names[] = {"BAYES_50", "HTML_MESSAGE", "RBL_TEST",
                                        "URIBL_TEST", "SYM_7"};
    (void)arg;
    if (i >= 5)
        return NULL;
    *score = (double)i;
    return names[i];
}

static char *pb_read(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        perror(path);
        if (fp)
            fclose(fp);
        return NULL;
    }
    if ((buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        perror(path);
        free(buf);
        fclose(fp);
        return NULL;
    }
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    static const char *const vars[] = {"tag_score=5", "quarantine_score=15",
                                       NULL};
    plang_opts opts = {vars, NULL};
    int passes = 20, evals = 200000, i, opt, counts[6] = {0};
    char *text, err[512];
    size_t len;
    double best = 1e9, total = 0, t0;
    plang_script *s = NULL;

    while ((opt = getopt(argc, argv, "n:e:")) != -1) {
        if (opt == 'n')
            passes = atoi(optarg);
        else if (opt == 'e')
            evals = atoi(optarg);
        else
            goto usage;
    }
    if (optind + 1 != argc || passes < 1 || evals < 1)
        goto usage;
    if (strcmp(argv[optind], "default") == 0) {
        text = strdup(policy_default_script);
        len = strlen(text);
    } else if ((text = pb_read(argv[optind], &len)) == NULL) {
        return 1;
    }
    for (i = 0; i < passes; i++) {
        double t;
        t0 = pb_now();
        s = plang_compile(text, len, &opts, err, sizeof(err));
        t = pb_now() - t0;
        if (s == NULL) {
            fprintf(stderr, "%s:%s\n", argv[optind], err);
            free(text);
            return 1;
        }
        if (t < best)
            best = t;
        total += t;
        if (i + 1 < passes)
            plang_free(s);
    }
    {
        size_t lines = 0, k;
        for (k = 0; k < len; k++)
            lines += text[k] == '\n';
        printf("  script %s: %zu bytes, %zu lines\n", argv[optind], len, lines);
    }
    printf("  compile: best %.3f ms, mean %.3f ms (%d passes)\n", best * 1e3,
           total / passes * 1e3, passes);
    t0 = pb_now();
    for (i = 0; i < evals; i++) {
        pb_msg m = {(double)(i % 21), i};
        plang_facts f;
        plang_result r;
        memset(&f, 0, sizeof(f));
        f.arg = &m;
        f.header = pb_header;
        f.sender = "someone@example.org";
        f.nrcpt = 1;
        f.rcpt = pb_rcpt;
        f.client_addr = "192.0.2.1";
        f.score = m.score;
        f.nsym = 5;
        f.symbol = pb_symbol;
        f.size = 4000;
        if (plang_eval(s, &f, &r) == 0 && r.action <= PLANG_REDIRECT)
            counts[r.action]++;
        plang_result_free(&r);
    }
    t0 = pb_now() - t0;
    printf("  eval: %.0f messages/s (%d messages; keep %d, quarantine %d, "
           "reject %d)\n",
           evals / t0, evals, counts[PLANG_KEEP], counts[PLANG_QUARANTINE],
           counts[PLANG_REJECT]);
    plang_free(s);
    free(text);
    return 0;
usage:
    fprintf(stderr,
            "usage: policy_bench [-n PASSES] [-e EVALS] FILE|default\n");
    return 2;
}
