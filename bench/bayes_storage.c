/*
 * bayes_storage.c - what a Bayes token lookup costs in the memory-mapped
 * file (bayes_db.c) and in PostgreSQL, for bench/bayes_storage.sh: the
 * measurement behind the storage choice (README, "Bayes").
 *
 *   bayes_storage CORPUS [DSN]
 *
 * Tokenizes every message of CORPUS (ham/, spam/), learns them all into
 * one database file (size and token count printed), then:
 *   file: classifies every message from the read-only mapping, several
 *     passes: messages/s and token lookups/s on one core; and the cost of
 *     a commit (lock, load, learn one message, rewrite, rename), which is
 *     what makes per-message learning into the file a bad idea and the
 *     batching (sluicectl learn, the auto-learn journal) necessary;
 *   PostgreSQL (with a DSN): the same tokens in a table (hash bigint
 *     primary key, spam, ham), then per message ONE query fetching all of
 *     its tokens (WHERE h = ANY($1)), synchronous on one connection, as a
 *     worker would wait for it: messages/s, tokens/s, and the table's
 *     size on disk with its index.
 * Figures only; asserts nothing.
 *
 * SECURITY: a benchmark; the DSN is the caller's.  Corpus files are read
 * whole and parsed with the library's limits.
 */
#include "bayes.h"

#include <dirent.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bs_set {
    bayes_toks *tk;
    size_t n, cap;
    size_t ntok;
} bs_set;

static double bs_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bs_one(bayes_train *t, const char *path)
{
    bs_set *s = t->arg;
    char why[256];

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->tk = realloc(s->tk, s->cap * sizeof(*s->tk));
        if (s->tk == NULL)
            exit(1);
    }
    if (bayes_tokenize_file(path, NULL, &s->tk[s->n], why, sizeof(why)) < 0) {
        t->failed++;
        return;
    }
    /* learned as spam if the path says so */
    if (bayes_wr_learn(t->wr, &s->tk[s->n], strstr(path, "spam") != NULL,
                       bayes_today()) < 0)
        exit(1);
    s->ntok += s->tk[s->n].count;
    s->n++;
}

static int bs_file(bs_set *s, const char *db)
{
    char err[512];
    bayes_db *d = bayes_db_open(db, err, sizeof(err));
    bayes_params p;
    bayes_result r;
    double t0, el;
    size_t i, pass, lookups = 0;
    int passes = 5;
    volatile double sink = 0;

    if (d == NULL) {
        fprintf(stderr, "bayes_storage: %s\n", err);
        return 1;
    }
    bayes_params_default(&p);
    t0 = bs_now();
    for (pass = 0; pass < (size_t)passes; pass++)
        for (i = 0; i < s->n; i++) {
            bayes_classify(bayes_db_table(d), &s->tk[i], &p, &r);
            sink += r.prob;
            lookups += s->tk[i].count;
        }
    el = bs_now() - t0;
    printf("file: classify %.0f messages/s, %.2f M token lookups/s (with the "
           "chi-square math), one core\n",
           (double)s->n * passes / el, (double)lookups / el / 1e6);
    t0 = bs_now();
    for (pass = 0; pass < (size_t)passes; pass++)
        for (i = 0; i < s->n; i++) {
            size_t k;
            for (k = 0; k < s->tk[i].count; k++)
                sink += bayes_table_find(bayes_db_table(d),
                                         s->tk[i].list[k]) != NULL;
        }
    el = bs_now() - t0;
    printf("file: lookups alone %.2f M tokens/s, %.1f us per message\n",
           (double)lookups / el / 1e6, el * 1e6 / ((double)s->n * passes));
    bayes_db_close(d);
    (void)sink;

    /* a commit: what learning one message costs if done alone */
    {
        int k, n = 5;
        t0 = bs_now();
        for (k = 0; k < n; k++) {
            bayes_wr *w = bayes_wr_open(db, err, sizeof(err));
            if (w == NULL || bayes_wr_unlearn(w, &s->tk[k]) < 0 ||
                bayes_wr_learn(w, &s->tk[k], 0, bayes_today()) < 0 ||
                bayes_wr_commit(w, err, sizeof(err)) < 0) {
                fprintf(stderr, "bayes_storage: commit: %s\n", err);
                bayes_wr_close(w);
                return 1;
            }
            bayes_wr_close(w);
        }
        el = bs_now() - t0;
        printf("file: one commit (lock, load, learn, write, fsync, rename) "
               "%.1f ms\n",
               el * 1000 / n);
    }
    return 0;
}

static PGresult *bs_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "bayes_storage: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    return r;
}

static int bs_pg(bs_set *s, const char *db, const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    char err[512], line[128], *arr;
    bayes_db *d;
    const bayes_table *t;
    uint64_t i;
    size_t m, rows = 0, cap;
    double t0, el;
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bayes_storage: %s", PQerrorMessage(c));
        return 1;
    }
    if ((d = bayes_db_open(db, err, sizeof(err))) == NULL)
        return 1;
    t = bayes_db_table(d);
    PQclear(bs_exec(c, "SET client_min_messages = warning"));
    PQclear(bs_exec(c, "DROP TABLE IF EXISTS bench_bayes_token"));
    PQclear(bs_exec(c, "CREATE TABLE bench_bayes_token (h bigint PRIMARY KEY,"
                       " spam integer NOT NULL, ham integer NOT NULL)"));
    PQclear(bs_exec(c, "COPY bench_bayes_token FROM STDIN"));
    for (i = 0; i <= t->mask; i++) {
        const bayes_slot *sl = &t->slots[i];
        int n;
        if (sl->hash == 0)
            continue;
        n = snprintf(line, sizeof(line), "%" PRId64 "\t%u\t%u\n",
                     (int64_t)sl->hash, sl->spam, sl->ham);
        if (PQputCopyData(c, line, n) != 1)
            return 1;
    }
    if (PQputCopyEnd(c, NULL) != 1)
        return 1;
    PQclear(PQgetResult(c));
    PQclear(bs_exec(c, "ANALYZE bench_bayes_token"));
    r = bs_exec(c, "SELECT pg_size_pretty(pg_total_relation_size("
                   "'bench_bayes_token')), count(*) FROM bench_bayes_token");
    printf("postgresql: table with its index %s for %s tokens\n",
           PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    PQclear(bs_exec(c, "PREPARE q (bigint[]) AS SELECT h, spam, ham FROM "
                       "bench_bayes_token WHERE h = ANY($1)"));
    t0 = bs_now();
    cap = 64;
    arr = malloc(cap);
    for (m = 0; m < s->n; m++) {
        const char *pv[1];
        size_t k, len = 0;
        arr[len++] = '{';
        for (k = 0; k < s->tk[m].count; k++) {
            if (len + 32 > cap) {
                cap *= 2;
                if ((arr = realloc(arr, cap)) == NULL)
                    return 1;
            }
            len += (size_t)snprintf(arr + len, cap - len, "%s%" PRId64,
                                    k ? "," : "", (int64_t)s->tk[m].list[k]);
        }
        arr[len++] = '}';
        arr[len] = '\0';
        pv[0] = arr;
        r = PQexecPrepared(c, "q", 1, pv, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "bayes_storage: %s", PQerrorMessage(c));
            return 1;
        }
        rows += (size_t)PQntuples(r);
        PQclear(r);
    }
    el = bs_now() - t0;
    printf("postgresql: one query per message with all its tokens: %.0f "
           "messages/s, %.2f M tokens/s, %.2f ms per message (%zu of %zu "
           "tokens found), one connection\n",
           (double)s->n / el, (double)s->ntok / el / 1e6, el * 1000 / (double)s->n,
           rows, s->ntok);
    free(arr);
    PQclear(bs_exec(c, "DROP TABLE bench_bayes_token"));
    PQfinish(c);
    bayes_db_close(d);
    return 0;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/sluice-bayes-storage-XXXXXX", db[256], err[512], path[4096];
    bs_set s = {0};
    bayes_train t;
    bayes_wr *w;
    struct stat st;
    const char *cls[] = {"ham", "spam"};
    int rc, i;
    size_t k;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bayes_storage CORPUS [DSN]\n");
        return 2;
    }
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(db, sizeof(db), "%s/bayes.db", dir);
    if ((w = bayes_wr_open(db, err, sizeof(err))) == NULL)
        return 1;
    bayes_train_init(&t, w, 0, 0);
    t.fn = bs_one;
    t.arg = &s;
    for (i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", argv[1], cls[i]);
        bayes_train_walk(&t, path);
    }
    if (bayes_wr_commit(w, err, sizeof(err)) < 0) {
        fprintf(stderr, "bayes_storage: %s\n", err);
        return 1;
    }
    printf("database: %zu messages, %" PRIu64 " slots used (tokens and "
           "message ids), ",
           s.n, bayes_wr_table(w)->nused);
    bayes_wr_close(w);
    stat(db, &st);
    printf("file %.1f MB, %.0f tokens per message\n",
           (double)st.st_size / 1048576.0, (double)s.ntok / (double)s.n);
    rc = bs_file(&s, db);
    if (rc == 0 && argc == 3)
        rc = bs_pg(&s, db, argv[2]);
    for (k = 0; k < s.n; k++)
        bayes_toks_free(&s.tk[k]);
    free(s.tk);
    unlink(db);
    snprintf(path, sizeof(path), "%s.lock", db);
    unlink(path);
    rmdir(dir);
    return rc;
}
