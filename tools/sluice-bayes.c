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
#include "mime.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SB_DEFAULT_DB "/var/lib/sluice/bayes.db"
#define SB_MAX_DEPTH 16

typedef struct sb_run {
    const char *cmd;
    bayes_wr *wr;             /* learn, unlearn */
    const bayes_table *table; /* classify */
    bayes_params params;
    int spam;
    int failed;
    size_t done, skipped;
} sb_run;

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
          "[--max-tokens N]\n",
          stderr);
    exit(2);
}

static unsigned char *sb_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL, *p;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 131072;
            if ((p = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        if ((r = fread(buf + n, 1, cap - n, f)) == 0)
            break;
        n += r;
    }
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Tokenize one message file; 0 or -1 (reported). */
static int sb_tokenize(const char *path, const bayes_tok_opts *o,
                       bayes_toks *tk)
{
    unsigned char *buf;
    size_t len;
    mime_msg *m;
    bayes_input in;
    int rc;

    if ((buf = sb_slurp(path, &len)) == NULL) {
        fprintf(stderr, "sluice-bayes: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if ((m = mime_parse(buf, len, NULL)) == NULL) {
        fprintf(stderr, "sluice-bayes: %s: out of memory\n", path);
        free(buf);
        return -1;
    }
    bayes_input_mime(&in, m);
    rc = bayes_tokenize(&in, o, tk);
    if (rc < 0)
        fprintf(stderr, "sluice-bayes: %s: out of memory\n", path);
    mime_free(m);
    free(buf);
    return rc;
}

static void sb_one(sb_run *r, const char *path)
{
    bayes_toks tk;
    bayes_result res;
    int rc = 0;

    if (sb_tokenize(path, NULL, &tk) < 0) {
        r->failed = 1;
        return;
    }
    if (strcmp(r->cmd, "learn") == 0) {
        rc = bayes_wr_learn(r->wr, &tk, r->spam, bayes_today());
    } else if (strcmp(r->cmd, "unlearn") == 0) {
        rc = bayes_wr_unlearn(r->wr, &tk);
    } else if (bayes_classify(r->table, &tk, &r->params, &res) < 0) {
        printf("%s untrained\n", path);
    } else {
        printf("%s %.4f %s tokens=%zu known=%zu used=%zu S=%.4f H=%.4f\n", path,
               res.prob, res.band, tk.count, res.known, res.used,
               res.spamminess, res.hamminess);
    }
    if (rc < 0) {
        fprintf(stderr, "sluice-bayes: %s: out of memory\n", path);
        r->failed = 1;
    } else if (rc == BAYES_SKIPPED) {
        r->skipped++;
    } else {
        r->done++;
    }
    bayes_toks_free(&tk);
}

static int sb_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sb_walk(sb_run *r, const char *path, int depth)
{
    struct stat st;
    struct dirent *de;
    char **names = NULL, **p, full[4096];
    size_t n = 0, cap = 0, i;
    DIR *d;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "sluice-bayes: %s: %s\n", path, strerror(errno));
        r->failed = 1;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        sb_one(r, path);
        return;
    }
    if (depth >= SB_MAX_DEPTH || (d = opendir(path)) == NULL) {
        fprintf(stderr, "sluice-bayes: %s: %s\n", path,
                depth >= SB_MAX_DEPTH ? "too deep" : strerror(errno));
        r->failed = 1;
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            if ((p = realloc(names, cap * sizeof(*p))) == NULL)
                break;
            names = p;
        }
        if ((names[n] = strdup(de->d_name)) == NULL)
            break;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), sb_cmp);
    for (i = 0; i < n; i++) {
        if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, names[i]) <
            sizeof(full))
            sb_walk(r, full, depth + 1);
        free(names[i]);
    }
    free(names);
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

static int sb_commit(bayes_wr *w, sb_run *r)
{
    char err[512];

    if (bayes_wr_commit(w, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    return r != NULL && r->failed;
}

static int sb_learn(const char *db, const char *cmd, int argc, char **argv)
{
    sb_run r;
    char err[512];
    int i, rc;

    memset(&r, 0, sizeof(r));
    r.cmd = cmd;
    if (strcmp(cmd, "learn") == 0) {
        if (argc < 2)
            sb_usage();
        if (strcmp(argv[0], "spam") == 0)
            r.spam = 1;
        else if (strcmp(argv[0], "ham") != 0)
            sb_usage();
        argc--, argv++;
    } else if (argc < 1) {
        sb_usage();
    }
    if ((r.wr = bayes_wr_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    for (i = 0; i < argc; i++)
        sb_walk(&r, argv[i], 0);
    rc = sb_commit(r.wr, &r);
    if (rc == 0 || r.failed)
        fprintf(stderr,
                "sluice-bayes: %s: %zu messages, %zu skipped "
                "(%s)\n",
                cmd, r.done, r.skipped,
                strcmp(cmd, "learn") == 0 ? "already learned so"
                                          : "never learned");
    bayes_wr_close(r.wr);
    return rc;
}

static int sb_classify(const char *db, int argc, char **argv)
{
    sb_run r;
    bayes_db *d;
    char err[512];
    int i;

    if (argc < 1)
        sb_usage();
    if ((d = bayes_db_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluice-bayes: %s\n", err);
        return 1;
    }
    memset(&r, 0, sizeof(r));
    r.cmd = "classify";
    r.table = bayes_db_table(d);
    bayes_params_default(&r.params);
    for (i = 0; i < argc; i++)
        sb_walk(&r, argv[i], 0);
    bayes_db_close(d);
    return r.failed;
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
    sb_usage();
    return 2;
}
