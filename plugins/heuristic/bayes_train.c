/*
 * bayes_train.c - training from message files, shared by sluice-bayes and
 * `sluicectl learn`: read a file (or stdin), parse it with sluice_mime,
 * tokenize it; walk FILE|DIR operands (directories recursively, names in
 * order, dot files skipped); learn or unlearn each message into a writer
 * and count what happened.
 *
 * Diagnostics: an unreadable message is reported through the caller's
 * callback (path and reason) and counted as failed; the walk goes on.
 *
 * SECURITY: message files are attacker-controlled: they are read whole
 * (bounded by BAYES_MAX_FILE) and parsed by sluice_mime with its default
 * limits; the tokenizer bounds its own work.  Symbolic links are followed
 * (the caller names what it trusts); depth is bounded.
 */
#include "bayes.h"
#include "mime.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BT_MAX_DEPTH 16

static void bt_report(const bayes_train *t, const char *path, const char *why)
{
    if (t->report != NULL)
        t->report(t->report_arg, path, why);
}

/* The file's bytes (stdin for "-"); NULL with errno. */
static unsigned char *bt_slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    unsigned char *buf = NULL, *p;
    size_t cap = 0, n = 0, r;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 65536 > cap) {
            if (cap >= BAYES_MAX_FILE) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 131072;
            if ((p = realloc(buf, cap)) == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
        }
        if ((r = fread(buf + n, 1, cap - n, f)) == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        n += r;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

int bayes_tokenize_buf(const void *msg, size_t len, const bayes_tok_opts *o,
                       bayes_toks *tk)
{
    mime_msg *m;
    bayes_input in;
    int rc;

    if ((m = mime_parse(msg, len, NULL)) == NULL)
        return -1;
    bayes_input_mime(&in, m);
    rc = bayes_tokenize(&in, o, tk);
    mime_free(m);
    return rc;
}

int bayes_tokenize_file(const char *path, const bayes_tok_opts *o,
                        bayes_toks *tk, char *err, size_t errlen)
{
    unsigned char *buf;
    size_t len;
    int rc;

    if ((buf = bt_slurp(path, &len)) == NULL) {
        snprintf(err, errlen, "%s",
                 errno == EFBIG ? "larger than 64 MB" : strerror(errno));
        return -1;
    }
    rc = bayes_tokenize_buf(buf, len, o, tk);
    free(buf);
    if (rc < 0)
        snprintf(err, errlen, "out of memory");
    return rc;
}

static int bt_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void bt_walk(bayes_train *t, const char *path, int depth)
{
    struct stat st;
    struct dirent *de;
    char **names = NULL, **p, full[4096];
    size_t n = 0, cap = 0, i;
    DIR *d;

    if (strcmp(path, "-") != 0 && stat(path, &st) < 0) {
        bt_report(t, path, strerror(errno));
        t->failed++;
        return;
    }
    if (strcmp(path, "-") == 0 || !S_ISDIR(st.st_mode)) {
        t->fn(t, path);
        return;
    }
    if (depth >= BT_MAX_DEPTH || (d = opendir(path)) == NULL) {
        bt_report(t, path, depth >= BT_MAX_DEPTH ? "too deep" : strerror(errno));
        t->failed++;
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
        qsort(names, n, sizeof(*names), bt_cmp);
    for (i = 0; i < n; i++) {
        if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, names[i]) <
            sizeof(full))
            bt_walk(t, full, depth + 1);
        else {
            bt_report(t, names[i], "path too long");
            t->failed++;
        }
        free(names[i]);
    }
    free(names);
}

void bayes_train_walk(bayes_train *t, const char *path)
{
    bt_walk(t, path, 0);
}

/* The default per-message action: learn or unlearn into t->wr. */
static void bt_learn_one(bayes_train *t, const char *path)
{
    bayes_toks tk;
    char why[256];
    int rc;

    if (bayes_tokenize_file(path, NULL, &tk, why, sizeof(why)) < 0) {
        bt_report(t, path, why);
        t->failed++;
        return;
    }
    rc = t->unlearn ? bayes_wr_unlearn(t->wr, &tk)
                    : bayes_wr_learn(t->wr, &tk, t->spam, bayes_today());
    if (rc < 0) {
        bt_report(t, path, "out of memory");
        t->failed++;
    } else if (rc == BAYES_SKIPPED) {
        t->skipped++;
    } else {
        t->done++;
    }
    bayes_toks_free(&tk);
}

void bayes_train_init(bayes_train *t, bayes_wr *w, int spam, int unlearn)
{
    memset(t, 0, sizeof(*t));
    t->wr = w;
    t->spam = spam != 0;
    t->unlearn = unlearn != 0;
    t->fn = bt_learn_one;
}
