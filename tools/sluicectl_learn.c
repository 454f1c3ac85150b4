/*
 * sluicectl_learn.c - `sluicectl learn spam|ham [--unlearn] FILE|DIR|-...`:
 * train the Bayes token database that the configured `bayes` stage reads.
 *
 * The database: -B PATH, else the `database` key of `stage bayes` in
 * conf.d (-c CONFDIR), relative paths under the state directory (-S, else
 * $SLUICE_STATE_DIR, else conf.d's engine `state_dir`, else
 * /var/lib/sluice); without that key, bayes.db there (the stage's
 * default).  When conf.d cannot be read but a state directory is named
 * (-S or $SLUICE_STATE_DIR), STATE/bayes.db, with a line on stderr.
 * Learning uses the library's writer (bayes.h): the writer lock
 * for the whole run, one commit at the end (a new file renamed into
 * place), so running workers keep classifying with the old table and pick
 * the new one up at their next `refresh`; nothing is reloaded.
 *
 * --unlearn forgets messages learned in the named class (a message learned
 * in the other class is left alone and counted as skipped).
 *
 * Output: one line of counts and the database's totals (stdout); with
 * --json one object: {ok, database, class, action, learned, skipped,
 * failed, spam_total, ham_total, min_spam, min_ham}.  Unreadable messages:
 * one line each on stderr.
 * Exit codes: 0 ok; 1 some messages could not be read (the others are
 * learned and committed); 2 usage; 3 configuration or database error
 * (nothing changed).
 *
 * SECURITY: runs with the caller's privileges.  Message files are
 * attacker-controlled (bayes_train.c bounds the reading); the database
 * file is written 0644 so that the workers' user can read it, its
 * directory decides who may replace it.
 */
#include "sluicectl_learn.h"

#include "bayes.h"
#include "conf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LR_OK = 0, LR_PARTIAL = 1, LR_USAGE = 2, LR_ERROR = 3 };

#define LR_DEFAULT_STATE "/var/lib/sluice"

static const char lr_usage_text[] =
    "usage: sluicectl [-S STATE_DIR] [--json] learn spam|ham [--unlearn]\n"
    "                 [-B DATABASE] [-c CONFDIR] FILE|DIR|-...\n\n"
    "Learn messages as spam or ham into the Bayes database of the `bayes`\n"
    "stage; running workers pick the change up within the stage's\n"
    "`refresh`, no reload.  DIRs are read recursively, - is one message on\n"
    "stdin.  A message learned before in the same class is skipped; one\n"
    "learned in the other class is moved.\n\n"
    "  --unlearn       forget these messages (learned in that class)\n"
    "  -B DATABASE     the database file (default: `database` of stage\n"
    "                  bayes in conf.d, relative to the state directory)\n"
    "  -c CONFDIR      configuration directory (default %s)\n"
    "  --json          one JSON object with the counts\n\n"
    "exit codes: 0 ok, 1 some messages unreadable (the rest learned),\n"
    "2 usage, 3 configuration or database error (nothing changed)\n";

typedef struct lr_opts {
    int spam, unlearn, json;
    const char *db, *confdir, *state_dir;
    char **files;
    size_t nfiles;
} lr_opts;

static void lr_usage(FILE *fp)
{
    fprintf(fp, lr_usage_text, SLUICE_DEFAULT_CONF_DIR);
}

/* The last value of `key` in section `stage` (NULL: the engine's). */
static const char *lr_conf_get(const conf_tree *t, const char *stage,
                               const char *key)
{
    const char *v = NULL;
    size_t i, j;

    for (i = 0; i < t->nsecs; i++) {
        const conf_section *s = &t->secs[i];
        if (stage == NULL ? !s->is_engine
                          : s->is_engine || s->name == NULL ||
                                strcmp(s->name, stage) != 0)
            continue;
        for (j = 0; j < s->nopts; j++)
            if (strcmp(s->opts[j].key, key) == 0)
                v = s->opts[j].value;
    }
    return v;
}

/* The database path and the stage's training minimums; 0 or LR_ERROR. */
static int lr_resolve(const lr_opts *o, char **db, long long *min_spam,
                      long long *min_ham)
{
    conf_tree t;
    buf err;
    const char *v, *state = o->state_dir;
    int rc = 0;

    *min_spam = *min_ham = 50; /* the stage's defaults */
    buf_init(&err);
    if (conf_read_dir(o->confdir, &t, &err) != 0) {
        if (state == NULL || *state == '\0')
            state = getenv("SLUICE_STATE_DIR");
        if (o->db != NULL) {
            *db = util_strdup(o->db);
        } else if (state != NULL && *state != '\0') {
            /* a state directory named, no configuration: the stage's
             * default database there, said aloud */
            *db = util_printf("%s/bayes.db", state);
            fprintf(stderr,
                    "%ssluicectl: learn: no configuration read; using %s "
                    "(the bayes stage's default): name the configuration "
                    "with -c to use its `database`\n",
                    err.data ? err.data : "", *db);
        } else {
            fprintf(stderr,
                    "%ssluicectl: learn: cannot find the database: name it "
                    "with -B, the configuration with -c, or the state "
                    "directory with -S\n",
                    err.data ? err.data : "");
            rc = LR_ERROR;
        }
        conf_tree_free(&t);
        buf_free(&err);
        return rc;
    }
    buf_free(&err);
    if ((v = lr_conf_get(&t, "bayes", "min_spam")) != NULL)
        *min_spam = atoll(v);
    if ((v = lr_conf_get(&t, "bayes", "min_ham")) != NULL)
        *min_ham = atoll(v);
    if (o->db != NULL) {
        *db = util_strdup(o->db);
    } else {
        v = lr_conf_get(&t, "bayes", "database");
        if (v == NULL || *v == '\0')
            v = "bayes.db";
        if (state == NULL || *state == '\0')
            state = getenv("SLUICE_STATE_DIR");
        if (state == NULL || *state == '\0')
            state = lr_conf_get(&t, NULL, "state_dir");
        if (state == NULL || *state == '\0')
            state = LR_DEFAULT_STATE;
        *db = v[0] == '/' ? util_strdup(v) : util_printf("%s/%s", state, v);
    }
    conf_tree_free(&t);
    return 0;
}

static void lr_report(void *arg, const char *path, const char *why)
{
    (void)arg;
    fprintf(stderr, "sluicectl: learn: %s: %s\n", path, why);
}

/* --unlearn of one class: only messages learned in that class. */
static void lr_unlearn_one(bayes_train *t, const char *path)
{
    bayes_toks tk;
    char why[256];
    int was;

    if (bayes_tokenize_file(path, NULL, &tk, why, sizeof(why)) < 0) {
        lr_report(NULL, path, why);
        t->failed++;
        return;
    }
    was = bayes_wr_learned(t->wr, &tk);
    if (was != t->spam)
        t->skipped++;
    else if (bayes_wr_unlearn(t->wr, &tk) < 0) {
        lr_report(NULL, path, "out of memory");
        t->failed++;
    } else
        t->done++;
    bayes_toks_free(&tk);
}

static int lr_parse(int argc, char **argv, lr_opts *o)
{
    int i, opts_done = 0;

    o->spam = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (!opts_done && (strcmp(a, "-h") == 0 ||
                                  strcmp(a, "--help") == 0)) {
            return -1;
        } else if (!opts_done && strcmp(a, "--unlearn") == 0) {
            o->unlearn = 1;
        } else if (!opts_done && strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (!opts_done && (strcmp(a, "-B") == 0 ||
                                  strcmp(a, "-c") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sluicectl: learn: %s needs a value\n", a);
                return LR_USAGE;
            }
            *(a[1] == 'B' ? &o->db : &o->confdir) = argv[++i];
        } else if (!opts_done && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sluicectl: learn: unknown option '%s'\n", a);
            return LR_USAGE;
        } else if (o->spam < 0) {
            if (strcmp(a, "spam") != 0 && strcmp(a, "ham") != 0) {
                fprintf(stderr,
                        "sluicectl: learn: first say spam or ham, not '%s'\n",
                        a);
                return LR_USAGE;
            }
            o->spam = strcmp(a, "spam") == 0;
        } else {
            o->files = util_realloc(o->files, (o->nfiles + 1) * sizeof(char *));
            o->files[o->nfiles++] = argv[i];
        }
    }
    if (o->spam < 0 || o->nfiles == 0) {
        fprintf(stderr, "sluicectl: learn: %s\n",
                o->spam < 0 ? "spam or ham?" : "no FILE, DIR or - given");
        return LR_USAGE;
    }
    return 0;
}

static void lr_print(const lr_opts *o, const char *db, const bayes_train *t,
                     const bayes_table *tab, long long min_spam,
                     long long min_ham)
{
    const char *cls = o->spam ? "spam" : "ham";

    if (o->json) {
        json_t *j = json_pack(
            "{s:b, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok", 1,
            "database", db, "class", cls, "action",
            o->unlearn ? "unlearn" : "learn", "learned", (json_int_t)t->done,
            "skipped", (json_int_t)t->skipped, "failed", (json_int_t)t->failed,
            "spam_total", (json_int_t)tab->nspam, "ham_total",
            (json_int_t)tab->nham, "min_spam", (json_int_t)min_spam,
            "min_ham", (json_int_t)min_ham);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(j);
        return;
    }
    printf("%s %zu %s message%s (%zu skipped: %s; %zu unreadable)\n",
           o->unlearn ? "unlearned" : "learned", t->done, cls,
           t->done == 1 ? "" : "s", t->skipped,
           o->unlearn ? "not learned as that" : "already learned so",
           t->failed);
    printf("%s: %llu spam, %llu ham learned\n", db,
           (unsigned long long)tab->nspam, (unsigned long long)tab->nham);
    if ((long long)tab->nspam < min_spam || (long long)tab->nham < min_ham)
        printf("note: the bayes stage abstains until %lld spam and %lld ham "
               "are learned (min_spam, min_ham)\n",
               min_spam, min_ham);
}

int sluicectl_learn_main(int argc, char **argv, const char *state_dir,
                         int json)
{
    lr_opts o;
    bayes_train t;
    bayes_wr *w;
    char *db = NULL, err[600];
    long long min_spam, min_ham;
    size_t i;
    int rc;

    memset(&o, 0, sizeof(o));
    o.json = json;
    o.state_dir = state_dir;
    o.confdir = SLUICE_DEFAULT_CONF_DIR;
    if ((rc = lr_parse(argc, argv, &o)) != 0) {
        lr_usage(rc < 0 ? stdout : stderr);
        free(o.files);
        return rc < 0 ? LR_OK : LR_USAGE;
    }
    if ((rc = lr_resolve(&o, &db, &min_spam, &min_ham)) != 0) {
        free(o.files);
        return rc;
    }
    if ((w = bayes_wr_open(db, err, sizeof(err))) == NULL) {
        fprintf(stderr, "sluicectl: learn: %s\n", err);
        free(db);
        free(o.files);
        return LR_ERROR;
    }
    bayes_train_init(&t, w, o.spam, o.unlearn);
    t.report = lr_report;
    if (o.unlearn)
        t.fn = lr_unlearn_one;
    for (i = 0; i < o.nfiles; i++)
        bayes_train_walk(&t, o.files[i]);
    if (t.done == 0) {
        rc = t.failed ? LR_PARTIAL : LR_OK; /* nothing to write */
    } else if (bayes_wr_commit(w, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluicectl: learn: %s (nothing learned)\n", err);
        rc = LR_ERROR;
    } else {
        rc = t.failed ? LR_PARTIAL : LR_OK;
    }
    if (rc != LR_ERROR)
        lr_print(&o, db, &t, bayes_wr_table(w), min_spam, min_ham);
    bayes_wr_close(w);
    free(db);
    free(o.files);
    return rc;
}
