/*
 * rules_bench.c - bench/rules.sh's driver: loads sluice rule files and,
 * optionally, SpamAssassin .cf files, then scans every file under the
 * given directories in-process and prints messages/s and the rule counts.
 *
 * Usage: rules_bench [-P|-F] [-r RULES]... [-s SA.cf]... [-n PASSES] DIR...
 *   -P: PCRE2 only (no Hyperscan); -F: Hyperscan prefilters the rest
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mime.h"
#include "rules.h"

typedef struct msgs {
    char **data;
    size_t *len;
    int *spam; /* under a directory named spam */
    size_t n, a;
} msgs;

static void load_dir(msgs *m, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL || depth > 8) {
        if (d)
            closedir(d);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        FILE *fp;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            load_dir(m, p, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode) || (fp = fopen(p, "rb")) == NULL)
            continue;
        if (m->n == m->a) {
            m->a = m->a ? m->a * 2 : 1024;
            m->data = realloc(m->data, m->a * sizeof(char *));
            m->len = realloc(m->len, m->a * sizeof(size_t));
            m->spam = realloc(m->spam, m->a * sizeof(int));
            if (!m->data || !m->len || !m->spam)
                exit(1);
        }
        m->data[m->n] = malloc((size_t)st.st_size + 1);
        m->len[m->n] = fread(m->data[m->n], 1, (size_t)st.st_size, fp);
        m->spam[m->n] = strstr(p, "/spam/") != NULL;
        fclose(fp);
        m->n++;
    }
    closedir(d);
}

static const sluice_header *hdr(void *a, size_t i) { return mime_header(a, i); }
static const sluice_part *part(void *a, size_t i) { return mime_part(a, i); }

int main(int argc, char **argv)
{
    rules_set *rs;
    rules_limits rl = {.pcre_only = 0};
    rules_scratch *s;
    msgs m = {0};
    char err[512];
    int c, passes = 1, p;
    size_t i, j, hits = 0, *tally[2] = {NULL, NULL}, nclass[2] = {0, 0};
    int verbose = getenv("RULES_BENCH_TALLY") != NULL;
    struct timespec t0, t1;
    struct rusage ru;
    double secs;
    const rules_stats *st;
    rules_limits vl = {.max_text = 262144, .max_uris = 200};

    if (argc > 1 && (strcmp(argv[1], "-P") == 0 || strcmp(argv[1], "-F") == 0)) {
        rl.pcre_only = argv[1][1] == 'P';
        rl.prefilter = argv[1][1] == 'F';
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if ((rs = rules_new(&rl)) == NULL)
        return 1;
    while ((c = getopt(argc, argv, "r:s:n:")) != -1) {
        if (c == 'n') {
            passes = atoi(optarg);
            continue;
        }
        if (rules_load_file(rs, optarg, c == 's' ? RULES_FMT_SA
                                                 : RULES_FMT_SLUICE,
                            err, sizeof(err)) < 0) {
            fprintf(stderr, "rules_bench: %s\n", err);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rules_compile(rs, err, sizeof(err)) < 0) {
        fprintf(stderr, "rules_bench: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st = rules_get_stats(rs);
    printf("rules: %zu loaded (%zu hyperscan, %zu pcre2 of which %zu "
           "hyperscan-prefiltered), skipped %zu eval, %zu regex, %zu other; "
           "compile %.2f s\n",
           st->loaded, st->hyperscan, st->pcre, st->prefiltered,
           st->skipped_eval,
           st->skipped_regex, st->skipped_other,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    for (; optind < argc; optind++)
        load_dir(&m, argv[optind], 0);
    s = rules_scratch_new(rs);
    tally[0] = calloc(rules_count(rs) + 1, sizeof(size_t));
    tally[1] = calloc(rules_count(rs) + 1, sizeof(size_t));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (p = 0; p < passes; p++)
        for (i = 0; i < m.n; i++) {
            mime_msg *mm = mime_parse((unsigned char *)m.data[i], m.len[i], NULL);
            rules_view v;
            rules_result r;
            memset(&v, 0, sizeof(v));
            v.in.arg = mm;
            v.in.nheaders = mime_header_count(mm);
            v.in.header = hdr;
            v.in.nparts = mime_part_count(mm);
            v.in.part = part;
            v.raw = m.data[i];
            v.raw_len = m.len[i];
            v.now = time(NULL);
            if (rules_view_build(&v, &vl) == 0 &&
                rules_scan(rs, s, &v, &r) == 0) {
                hits += r.nhits;
                for (j = 0; j < r.nhits && p == 0; j++)
                    tally[m.spam[i]][r.hits[j].rule]++;
                if (p == 0)
                    nclass[m.spam[i]]++;
                rules_result_free(&r);
            }
            rules_view_free(&v);
            mime_free(mm);
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    getrusage(RUSAGE_SELF, &ru);
    printf("messages: %zu x %d in %.2f s: %.0f messages/s (1 core, MIME "
           "parse included); %.1f hits/message; peak RSS %ld MB\n",
           m.n, passes, secs, (double)m.n * passes / (secs > 0 ? secs : 1),
           m.n ? (double)hits / ((double)m.n * passes) : 0.0,
           ru.ru_maxrss / 1024);
    for (i = 0; verbose && i < rules_count(rs); i++)
        if (tally[0][i] + tally[1][i] > 0)
            printf("  %-28s ham %5.1f%%  spam %5.1f%%\n",
                   rules_info(rs, i, NULL, NULL, NULL),
                   100.0 * (double)tally[0][i] / (double)(nclass[0] ? nclass[0] : 1),
                   100.0 * (double)tally[1][i] / (double)(nclass[1] ? nclass[1] : 1));
    free(tally[0]);
    free(tally[1]);
    rules_scratch_free(s);
    rules_free(rs);
    for (i = 0; i < m.n; i++)
        free(m.data[i]);
    free(m.data);
    free(m.len);
    free(m.spam);
    return 0;
}
