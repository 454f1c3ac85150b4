/*
 * sluice-bayes - train, query and maintain the Bayes token database.
 *
 *   sluice-bayes [-d DB] learn spam|ham FILE|DIR...
 *   sluice-bayes [-d DB] unlearn FILE|DIR...
 *   sluice-bayes [-d DB] classify FILE|DIR...
 *   sluice-bayes tokens FILE              the tokens, as text
 *   sluice-bayes [-d DB] stats
 *   sluice-bayes [-d DB] export [FILE]    portable text (stdout: -)
 *   sluice-bayes [-d DB] import [--merge] FILE
 *   sluice-bayes [-d DB] expire [--max-age DAYS] [--max-tokens N]
 *   sluice-bayes [-d DB] apply [JOURNAL]  learn the auto-learn queue
 *                                         (default DB.journal) now
 *
 * DB defaults to $SLUICE_BAYES_DB, else /var/lib/sluice/bayes.db.  A
 * directory is read recursively (dot files skipped, names in order).
 * Writing commands hold the database's lock for the whole run and commit
 * once at the end (a new file renamed into place: running classifiers
 * never see a half-written table).
 *
 * Diagnostics: one line on stderr per unreadable message (the run goes
 * on, exit status 1 at the end); a database that cannot be opened or
 * written is fatal (status 1); usage errors status 2.
 *
 * SECURITY: runs with the caller's privileges; message files are
 * attacker-controlled and parsed by sluice_mime with its default limits.
 */
#include "bayes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_DEFAULT_DB "/var/lib/sluice/bayes.db"

static void sb_usage(void)
{
    fputs("usage: sluice-bayes [-d DB] learn spam|ham FILE|DIR...\n"
          "       sluice-bayes [-d DB] unlearn FILE|DIR...\n"
          "       sluice-bayes [-d DB] classify FILE|DIR...\n"
          "       sluice-bayes tokens FILE\n"
          "       sluice-bayes [-d DB] stats\n"
          "       sluice-bayes [-d DB] export [FILE]\n"
          "       sluice-bayes [-d DB] import [--merge] FILE\n"
          "       sluice-bayes [-d DB] expire [--max-age DAYS] "
          "[--max-tokens N]\n"
          "       sluice-bayes [-d DB] apply [JOURNAL]\n",
          stderr);
    exit(2);
}

/* An unreadable message: reported, the run goes on (status 1 at the end). */
static void sb_report(void *arg, const char *path, const char *why)
{
    (void)arg;
    fprintf(stderr, "sluice-bayes: %s: %s\n", path, why);
}

/* Tokenize one message file; 0 or -1 (reported). */
static int sb_tokenize(const char *path, const bayes_tok_opts *o,
                       bayes_toks *tk)
{
    char why[256];

    if (bayes_tokenize_file(path, o, tk, why, sizeof(why)) < 0) {
        sb_report(NULL, path, why);
        return -1;
    }
    return 0;
}

/* classify: bayes_train's walk with a per-file action of our own */
static void sb_classify_one(bayes_train *t, const char *path)
{
    const bayes_table *table = t->arg;
    bayes_params params;
    bayes_toks tk;
    bayes_result res;

    if (sb_tokenize(path, NULL, &tk) < 0) {
        t->failed++;
        return;
    }
    bayes_params_default(&params);
    if (bayes_classify(table, &tk, &params, &res) < 0)
        printf("%s untrained\n", path);
    else
        printf("%s %.4f %s tokens=%zu known=%zu used=%zu S=%.4f H=%.4f\n",
               path, res.prob, res.band, tk.count, res.known, res.used,
               res.spamminess, res.hamminess);
    t->done++;
    bayes_toks_free(&tk);
}

static void sb_debug_tok(void *arg, const char *tok, size_t len)
{
    (void)arg;
    printf("%.*s\n", (int)len, tok);
}

static int sb_tokens(int argc, char **argv)
{
    bayes_tok_opts o;
    bayes_toks tk;

    if (argc != 1)
        sb_usage();
    bayes_tok_opts_default(&o);
    o.debug = sb_debug_tok;
    if (sb_tokenize(argv[0], &o, &tk) < 0)
        return 1;
    fprintf(stderr, "%zu distinct tokens%s\n", tk.count,
            tk.truncated ? " (truncated)" : "");
    bayes_toks_free(&tk);
    return 0;
}

static int sb_commit(bayes_wr *w, const bayes_train *t)
{
    char err[512];

    if (bayes_wr_commit(w, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    return t != NULL && t->failed > 0;
}

static int sb_learn(const char *db, const char *cmd, int argc, char **argv)
{
    bayes_train t;
    bayes_wr *w;
    char err[512];
    int i, rc, spam = 0, unlearn = strcmp(cmd, "unlearn") == 0;

    if (!unlearn) {
        if (argc < 2)
            sb_usage();
        if (strcmp(argv[0], "spam") == 0)
            spam = 1;
        else if (strcmp(argv[0], "ham") != 0)
            sb_usage();
        argc--, argv++;
    } else if (argc < 1) {
        sb_usage();
    }
    if ((w = bayes_wr_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    bayes_train_init(&t, w, spam, unlearn);
    t.report = sb_report;
    for (i = 0; i < argc; i++)
        bayes_train_walk(&t, argv[i]);
    rc = sb_commit(w, &t);
    if (rc == 0 || t.failed)
        fprintf(stderr,
                "sluice-bayes: %s: %zu messages, %zu skipped "
                "(%s)\n",
                cmd, t.done, t.skipped,
                unlearn ? "never learned" : "already learned so");
    bayes_wr_close(w);
    return rc;
}

static int sb_classify(const char *db, int argc, char **argv)
{
    bayes_train t;
    bayes_db *d;
    char err[512];
    int i;

    if (argc < 1)
        sb_usage();
    if ((d = bayes_db_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    bayes_train_init(&t, NULL, 0, 0);
    t.fn = sb_classify_one;
    t.report = sb_report;
    t.arg = (void *)bayes_db_table(d);
    for (i = 0; i < argc; i++)
        bayes_train_walk(&t, argv[i]);
    bayes_db_close(d);
    return t.failed > 0;
}

static int sb_stats(const char *db)
{
    bayes_db *d;
    const bayes_filehdr *h;
    const bayes_table *t;
    char err[512];
    uint64_t i, tokens = 0, msgs = 0, singles = 0;
    uint32_t oldest = UINT32_MAX, today = bayes_today();

    if ((d = bayes_db_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    h = bayes_db_header(d);
    t = bayes_db_table(d);
    for (i = 0; i <= t->mask; i++) {
        const bayes_slot *s = &t->slots[i];
        if (s->hash == 0)
            continue;
        if (s->flags & BAYES_SLOT_MSG) {
            msgs++;
            continue;
        }
        tokens++;
        singles += (uint64_t)s->spam + s->ham == 1;
        if (s->day < oldest)
            oldest = s->day;
    }
    printf("database      %s\n", db);
    printf("format        %u (tokenizer %u)\n", h->version, h->tok_version);
    printf("spam learned  %" PRIu64 "\n", h->nspam);
    printf("ham learned   %" PRIu64 "\n", h->nham);
    printf("tokens        %" PRIu64 " (%" PRIu64 " seen once)\n", tokens,
           singles);
    printf("message ids   %" PRIu64 "\n", msgs);
    printf("slots         %" PRIu64 " (%.0f%% full, %" PRIu64 " bytes)\n",
           h->nslots, 100.0 * (double)h->nused / (double)h->nslots,
           (uint64_t)sizeof(*h) + h->nslots * sizeof(bayes_slot));
    printf("oldest token  %s%u days\n", tokens ? "" : "-",
           tokens ? today - (oldest < today ? oldest : today) : 0);
    if (h->expired)
        printf("last expiry   %u days ago\n",
               today - (h->expired < today ? h->expired : today));
    else
        printf("last expiry   never\n");
    bayes_db_close(d);
    return 0;
}

static int sb_export(const char *db, int argc, char **argv)
{
    bayes_db *d;
    FILE *out = stdout;
    char err[512];
    int rc;

    if (argc > 1)
        sb_usage();
    if ((d = bayes_db_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    if (argc == 1 && strcmp(argv[0], "-") != 0 &&
        (out = fopen(argv[0], "w")) == NULL) {
        fprintf(stderr, "sluice-bayes: %s: %s\n", argv[0], strerror(errno));
        bayes_db_close(d);
        return 1;
    }
    rc = bayes_table_export(bayes_db_table(d), out);
    if (out != stdout && fclose(out) != 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "sluice-bayes: export: write error\n");
    bayes_db_close(d);
    return rc < 0;
}

static int sb_import(const char *db, int argc, char **argv)
{
    bayes_wr *w;
    FILE *in = stdin;
    char err[512];
    int merge = 0, rc;

    if (argc >= 1 && strcmp(argv[0], "--merge") == 0)
        merge = 1, argc--, argv++;
    if (argc != 1)
        sb_usage();
    if (strcmp(argv[0], "-") != 0 && (in = fopen(argv[0], "r")) == NULL) {
        fprintf(stderr, "sluice-bayes: %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    if ((w = bayes_wr_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        if (in != stdin)
            fclose(in);
        return 1;
    }
    rc = bayes_wr_import(w, in, merge, err, sizeof(err));
    if (in != stdin)
        fclose(in);
    if (rc < 0) {
        fprintf(stderr, "sluice-bayes: import %s: %s (database unchanged)\n",
                argv[0], err);
        bayes_wr_close(w);
        return 1;
    }
    rc = sb_commit(w, NULL);
    bayes_wr_close(w);
    return rc;
}

static int sb_expire(const char *db, int argc, char **argv)
{
    unsigned long long age = 180, max = 0;
    bayes_wr *w;
    char err[512], *end;
    size_t n;
    int i, rc;

    for (i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            sb_usage();
        errno = 0;
        if (strcmp(argv[i], "--max-age") == 0)
            age = strtoull(argv[++i], &end, 10);
        else if (strcmp(argv[i], "--max-tokens") == 0)
            max = strtoull(argv[++i], &end, 10);
        else
            sb_usage();
        if (errno != 0 || *end != '\0' || age > UINT32_MAX)
            sb_usage();
    }
    if ((w = bayes_wr_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    n = bayes_wr_expire(w, bayes_today(), (uint32_t)age, (size_t)max);
    rc = sb_commit(w, NULL);
    if (rc == 0)
        fprintf(stderr, "sluice-bayes: expired %zu entries\n", n);
    bayes_wr_close(w);
    return rc;
}

/* The auto-learn journal, now (the bayes stage does it periodically). */
static int sb_apply(const char *db, int argc, char **argv)
{
    bayes_journal_stats st;
    char journal[4096], err[600];

    if (argc > 1)
        sb_usage();
    if ((size_t)snprintf(journal, sizeof(journal), "%s%s",
                         argc ? argv[0] : db, argc ? "" : ".journal") >=
        sizeof(journal))
        sb_usage();
    if (bayes_journal_apply(db, journal, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice-bayes: apply: %s\n", err);
        return 1;
    }
    fprintf(stderr,
            "sluice-bayes: apply: %zu messages learned, %zu already known, "
            "%zu damaged records dropped\n",
            st.learned, st.skipped, st.bad);
    return 0;
}

int main(int argc, char **argv)
{
    const char *db = getenv("SLUICE_BAYES_DB");
    const char *cmd;

    if (db == NULL || *db == '\0')
        db = SB_DEFAULT_DB;
    argc--, argv++;
    if (argc >= 2 && strcmp(argv[0], "-d") == 0) {
        db = argv[1];
        argc -= 2, argv += 2;
    }
    if (argc < 1)
        sb_usage();
    cmd = argv[0];
    argc--, argv++;
    if (strcmp(cmd, "learn") == 0 || strcmp(cmd, "unlearn") == 0)
        return sb_learn(db, cmd, argc, argv);
    if (strcmp(cmd, "classify") == 0)
        return sb_classify(db, argc, argv);
    if (strcmp(cmd, "tokens") == 0)
        return sb_tokens(argc, argv);
    if (strcmp(cmd, "stats") == 0 && argc == 0)
        return sb_stats(db);
    if (strcmp(cmd, "export") == 0 || strcmp(cmd, "dump") == 0)
        return sb_export(db, argc, argv);
    if (strcmp(cmd, "import") == 0)
        return sb_import(db, argc, argv);
    if (strcmp(cmd, "expire") == 0)
        return sb_expire(db, argc, argv);
    if (strcmp(cmd, "apply") == 0)
        return sb_apply(db, argc, argv);
    sb_usage();
    return 2;
}
