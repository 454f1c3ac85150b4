/*
 * conf_move.c - move a stage section within conf.d, with undo.  See
 * conf_move.h for the rules and the SECURITY note.
 */
#include "conf_move.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* Undo journal                                                     */

typedef struct cm_snap {
    char *path;
    int existed;
    char *data;
    size_t len;
    mode_t mode;
    uid_t uid;
    gid_t gid;
} cm_snap;

struct conf_undo {
    cm_snap *e;
    size_t n;
};

static int cm_read_file(const char *path, char **data, size_t *len,
                        struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    buf b;

    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0) {
        close(fd);
        return -1;
    }
    buf_init(&b);
    for (;;) {
        ssize_t r;
        buf_reserve(&b, 8192);
        r = read(fd, b.data + b.len, 8192);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            buf_free(&b);
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
        b.data[b.len] = '\0';
    }
    close(fd);
    *len = b.len;
    *data = util_strndup(b.data, b.len);
    buf_free(&b);
    return 0;
}

/* Remember how `path` is now, once (the first snapshot wins). */
static int cm_note(conf_undo *u, const char *path, buf *err)
{
    cm_snap *s;
    struct stat st;
    size_t i;

    for (i = 0; i < u->n; i++)
        if (strcmp(u->e[i].path, path) == 0)
            return 0;
    u->e = util_realloc(u->e, (u->n + 1) * sizeof(*u->e));
    s = &u->e[u->n];
    memset(s, 0, sizeof(*s));
    if (cm_read_file(path, &s->data, &s->len, &st) == 0) {
        s->existed = 1;
        s->mode = st.st_mode & 07777;
        s->uid = st.st_uid;
        s->gid = st.st_gid;
    } else if (errno != ENOENT) {
        buf_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    s->path = util_strdup(path);
    u->n++;
    return 0;
}

static void cm_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int conf_undo_restore(conf_undo *u, buf *err)
{
    size_t i;
    int rc = 0;

    if (u == NULL)
        return 0;
    for (i = u->n; i > 0; i--) {
        cm_snap *s = &u->e[i - 1];
        if (s->existed) {
            if (util_write_atomic(s->path, s->data ? s->data : "", s->len, s->mode,
                         s->uid, s->gid, err) < 0)
                rc = -1;
        } else if (unlink(s->path) < 0 && errno != ENOENT) {
            buf_printf(err, "%s: cannot remove: %s", s->path, strerror(errno));
            rc = -1;
        }
    }
    if (u->n > 0) {
        char *dir = util_strdup(u->e[0].path), *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        cm_sync_dir(dir);
        free(dir);
    }
    return rc;
}

void conf_undo_free(conf_undo *u)
{
    size_t i;

    if (u == NULL)
        return;
    for (i = 0; i < u->n; i++) {
        free(u->e[i].path);
        free(u->e[i].data);
    }
    free(u->e);
    free(u);
}

/* ---------------------------------------------------------------- */
/* conf.d as files, lines and blocks                                */

typedef struct cm_file {
    char *path; /* the tree's string */
    char *data; /* whole content */
    size_t len;
    size_t *ls; /* byte offset of each line's start; ls[nl] = len */
    size_t nl;
    size_t nsecs; /* sections (engine or stage) in this file */
    mode_t mode;
    uid_t uid;
    gid_t gid;
} cm_file;

typedef struct cm_stage {
    const char *name;
    size_t file;
    size_t b0, b1; /* its block: lines [b0, b1), 0-based */
} cm_stage;

typedef struct cm_dir {
    conf_tree t;
    cm_file *f;
    size_t nf;
    cm_stage *s;
    size_t ns;
} cm_dir;

static void cm_dir_free(cm_dir *d)
{
    size_t i;

    for (i = 0; i < d->nf; i++) {
        free(d->f[i].data);
        free(d->f[i].ls);
    }
    free(d->f);
    free(d->s);
    conf_tree_free(&d->t);
}

static int cm_line_blank(const cm_file *f, size_t l)
{
    size_t i;

    for (i = f->ls[l]; i < f->ls[l + 1]; i++)
        if (!isspace((unsigned char)f->data[i]))
            return 0;
    return 1;
}

static int cm_line_comment(const cm_file *f, size_t l)
{
    size_t i = f->ls[l];

    while (i < f->ls[l + 1] && (f->data[i] == ' ' || f->data[i] == '\t'))
        i++;
    return i < f->ls[l + 1] && f->data[i] == '#';
}

static const char *cm_base(const char *path)
{
    const char *s = strrchr(path, '/');

    return s ? s + 1 : path;
}

typedef struct cm_mark {
    size_t file, line, b0;
    const char *stage; /* NULL: an engine or manager section */
} cm_mark;

static int cm_mark_cmp(const void *a, const void *b)
{
    const cm_mark *x = a, *y = b;

    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int cm_dir_load(cm_dir *d, const char *dir, buf *err)
{
    size_t i, j, fi, nmarks = 0;
    cm_mark *marks = NULL;

    memset(d, 0, sizeof(*d));
    if (conf_read_dir(dir, &d->t, err) != 0)
        return -1;
    d->nf = d->t.nfiles;
    d->f = util_calloc(d->nf ? d->nf : 1, sizeof(*d->f));
    for (i = 0; i < d->nf; i++) {
        cm_file *f = &d->f[i];
        struct stat st;
        size_t k;

        f->path = d->t.files[i];
        if (cm_read_file(f->path, &f->data, &f->len, &st) < 0) {
            buf_printf(err, "%s: %s", f->path, strerror(errno));
            return -1;
        }
        f->mode = st.st_mode & 07777;
        f->uid = st.st_uid;
        f->gid = st.st_gid;
        f->ls = util_malloc((f->len + 2) * sizeof(*f->ls));
        f->ls[0] = 0;
        for (k = 0; k < f->len; k++)
            if (f->data[k] == '\n')
                f->ls[++f->nl] = k + 1;
        if (f->len > 0 && f->data[f->len - 1] != '\n')
            f->ls[++f->nl] = f->len; /* a last line without newline */
    }
    /* Every section of every kind (engine, stage, manager) as a mark;
     * a stage's block runs from the comment lines right above its
     * `stage` line to the next mark's block in its file, or the end. */
    for (i = 0; i < d->t.nsecs + d->t.nextra; i++) {
        conf_section *sec =
            i < d->t.nsecs ? &d->t.secs[i] : &d->t.extra[i - d->t.nsecs];
        cm_mark *mk;

        for (fi = 0; fi < d->nf; fi++)
            if (d->f[fi].path == sec->file)
                break;
        if (fi == d->nf) {
            buf_printf(err, "%s: section outside the files read", sec->file);
            free(marks);
            return -1;
        }
        d->f[fi].nsecs++;
        if (i < d->t.nsecs && !sec->is_engine) {
            for (j = 0; j < i; j++) {
                if (!d->t.secs[j].is_engine &&
                    strcmp(d->t.secs[j].name, sec->name) == 0) {
                    buf_printf(err, "%s:%d: stage '%s' is defined twice",
                               sec->file, sec->line, sec->name);
                    free(marks);
                    return -1;
                }
            }
        }
        marks = util_realloc(marks, (nmarks + 1) * sizeof(*marks));
        mk = &marks[nmarks++];
        mk->file = fi;
        mk->line = (size_t)sec->line - 1;
        mk->b0 = mk->line;
        mk->stage = i < d->t.nsecs && !sec->is_engine ? sec->name : NULL;
    }
    qsort(marks, nmarks, sizeof(*marks), cm_mark_cmp);
    for (i = 0; i < nmarks; i++) {
        cm_file *f = &d->f[marks[i].file];
        int first = i == 0 || marks[i - 1].file != marks[i].file;
        if (marks[i].stage == NULL)
            continue;
        while (marks[i].b0 > 0 &&
               (first || marks[i].b0 - 1 > marks[i - 1].line) &&
               cm_line_comment(f, marks[i].b0 - 1))
            marks[i].b0--;
    }
    /* the chain order is conf_read_dir's section order */
    for (i = 0; i < d->t.nsecs; i++) {
        conf_section *sec = &d->t.secs[i];
        if (sec->is_engine)
            continue;
        for (j = 0; j < nmarks; j++)
            if (marks[j].stage == sec->name)
                break;
        d->s = util_realloc(d->s, (d->ns + 1) * sizeof(*d->s));
        d->s[d->ns].name = sec->name;
        d->s[d->ns].file = marks[j].file;
        d->s[d->ns].b0 = marks[j].b0;
        d->s[d->ns].b1 = d->f[marks[j].file].nl;
        if (j + 1 < nmarks && marks[j + 1].file == marks[j].file)
            d->s[d->ns].b1 = marks[j + 1].b0;
        d->ns++;
    }
    free(marks);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Text surgery                                                     */

/* The block's text, trailing blank lines dropped, newline-ended. */
static void cm_block_text(const cm_file *f, size_t b0, size_t b1, buf *out)
{
    while (b1 > b0 && cm_line_blank(f, b1 - 1))
        b1--;
    buf_add(out, f->data + f->ls[b0], f->ls[b1] - f->ls[b0]);
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        buf_addc(out, '\n');
}

/* pre + X + post, with one blank line between X and its neighbours. */
static void cm_join(buf *out, const char *pre, size_t npre, const buf *x,
                    const char *post, size_t npost)
{
    buf_add(out, pre, npre);
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        buf_addc(out, '\n');
    if (out->len > 0 && !(out->len >= 2 && out->data[out->len - 2] == '\n'))
        buf_addc(out, '\n');
    buf_add(out, x->data, x->len);
    if (npost > 0 && post[0] != '\n' && !(npost > 1 && post[0] == '\r'))
        buf_addc(out, '\n');
    buf_add(out, post, npost);
}

/* The file's text with lines [r0, r1) removed and x inserted before line
 * `at` (original numbering; `at` outside [r0, r1) unless r0 == r1). */
static void cm_splice(const cm_file *f, size_t r0, size_t r1, size_t at,
                      const buf *x, buf *out)
{
    buf pre, post;

    buf_init(&pre);
    buf_init(&post);
    if (at <= r0) {
        buf_add(&pre, f->data, f->ls[at]);
        buf_add(&post, f->data + f->ls[at], f->ls[r0] - f->ls[at]);
        buf_add(&post, f->data + f->ls[r1], f->len - f->ls[r1]);
    } else {
        buf_add(&pre, f->data, f->ls[r0]);
        buf_add(&pre, f->data + f->ls[r1], f->ls[at] - f->ls[r1]);
        buf_add(&post, f->data + f->ls[at], f->len - f->ls[at]);
    }
    cm_join(out, pre.data, pre.len, x, post.data, post.len);
    buf_free(&pre);
    buf_free(&post);
}

/* The file's text without lines [r0, r1). */
static void cm_remove(const cm_file *f, size_t r0, size_t r1, buf *out)
{
    buf_add(out, f->data, f->ls[r0]);
    buf_add(out, f->data + f->ls[r1], f->len - f->ls[r1]);
}

/* ---------------------------------------------------------------- */
/* File names                                                       */

static int cm_name_ok(const char *n)
{
    size_t l = strlen(n);

    return l > 5 && l < 200 && n[0] != '.' && strchr(n, '/') == NULL &&
           strcmp(n + l - 5, ".conf") == 0;
}

static int cm_fits(const char *dir, const char *lo, const char *hi,
                   const char *cand)
{
    char *path;
    struct stat st;
    int exists;

    if (!cm_name_ok(cand) || (lo && strcmp(lo, cand) >= 0) ||
        (hi && strcmp(cand, hi) >= 0))
        return 0;
    path = util_printf("%s/%s", dir, cand);
    exists = lstat(path, &st) == 0;
    free(path);
    return !exists;
}

/* Leading digits of name: their value (-1 if none) and count. */
static long cm_digits(const char *name, int *width)
{
    int w = 0;
    long v = 0;

    while (isdigit((unsigned char)name[w]) && w < 6)
        v = v * 10 + (name[w++] - '0');
    *width = w;
    return w ? v : -1;
}

char *conf_move_name(const char *dir, const char *lo, const char *hi,
                     const char *stem)
{
    int wl = 0, wh = 0, w;
    long a = lo ? cm_digits(lo, &wl) : 0, b, mid, v, top;
    char cand[256];

    if (hi)
        b = cm_digits(hi, &wh);
    else
        b = -1;
    w = wl ? wl : wh ? wh : 2;
    top = w >= 6 ? 999999
                 : (w == 1   ? 10
                    : w == 2 ? 100
                    : w == 3 ? 1000
                    : w == 4 ? 10000
                             : 100000);
    if (b < 0)
        b = top;
    if (a < -1)
        a = -1;
    /* NN-stem.conf: the middle of the gap first, then anything in it */
    if (b - a >= 2) {
        mid = a + (b - a) / 2;
        snprintf(cand, sizeof(cand), "%0*ld-%s.conf", w, mid, stem);
        if (cm_fits(dir, lo, hi, cand))
            return util_strdup(cand);
        for (v = a + 1; v < b; v++) {
            snprintf(cand, sizeof(cand), "%0*ld-%s.conf", w, v, stem);
            if (cm_fits(dir, lo, hi, cand))
                return util_strdup(cand);
        }
    }
    /* no number free between them: lo's digits and one more ("505-x"
     * sorts between "50-y" and "51-z") */
    if (lo && wl > 0) {
        for (v = 1; v <= 9; v++) {
            snprintf(cand, sizeof(cand), "%.*s%ld-%s.conf", wl, lo, v, stem);
            if (cm_fits(dir, lo, hi, cand))
                return util_strdup(cand);
        }
    }
    /* lo's own name and the stem: "lo_stem.conf" */
    if (lo) {
        size_t l = strlen(lo);
        if (l > 5 && l < 200) {
            snprintf(cand, sizeof(cand), "%.*s_%s.conf", (int)(l - 5), lo,
                     stem);
            if (cm_fits(dir, lo, hi, cand))
                return util_strdup(cand);
        }
    }
    return NULL;
}

/* "50-bayes.conf" -> "bayes"; "bayes.conf" -> "bayes". */
static char *cm_stem(const char *base)
{
    const char *p = base;
    size_t l;

    while (isdigit((unsigned char)*p))
        p++;
    if (p != base && (*p == '-' || *p == '_'))
        p++;
    else
        p = base;
    l = strlen(p);
    if (l > 5 && strcmp(p + l - 5, ".conf") == 0)
        l -= 5;
    if (l == 0)
        return util_strdup("stage");
    return util_strndup(p, l);
}

/* ---------------------------------------------------------------- */

int conf_stage_order(const char *dir, char ***names, size_t *n, buf *err)
{
    cm_dir d;
    size_t i;

    *names = NULL;
    *n = 0;
    if (cm_dir_load(&d, dir, err) < 0) {
        cm_dir_free(&d);
        return -1;
    }
    *names = util_calloc(d.ns + 1, sizeof(char *));
    for (i = 0; i < d.ns; i++)
        (*names)[i] = util_strdup(d.s[i].name);
    *n = d.ns;
    cm_dir_free(&d);
    return 0;
}

void conf_names_free(char **names)
{
    size_t i;

    for (i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}

/* The edits themselves, the undo journal filled as they go. */
static int cm_apply(cm_dir *d, const char *dir, size_t si, size_t pos,
                    conf_undo *u, buf *err)
{
    cm_stage *S = &d->s[si];
    cm_file *F = &d->f[S->file];
    cm_stage *P = NULL, *N = NULL;
    size_t k, idx = 0;
    buf x, out;
    int rc = -1;

    /* neighbours in the new order: the list without S, S at pos-1 */
    for (k = 0; k < d->ns; k++) {
        if (k == si)
            continue;
        if (idx == pos - 2)
            P = &d->s[k];
        if (idx == pos - 1)
            N = &d->s[k];
        idx++;
    }
    buf_init(&x);
    buf_init(&out);
    if (N && N->file == S->file) {
        /* before N, in S's own file */
        cm_block_text(F, S->b0, S->b1, &x);
        cm_splice(F, S->b0, S->b1, N->b0, &x, &out);
        if (cm_note(u, F->path, err) < 0 ||
            util_write_atomic(F->path, out.data, out.len, F->mode, F->uid, F->gid, err) <
                0)
            goto out;
    } else if (P && P->file == S->file) {
        /* after P, in S's own file */
        cm_block_text(F, S->b0, S->b1, &x);
        cm_splice(F, S->b0, S->b1, P->b1, &x, &out);
        if (cm_note(u, F->path, err) < 0 ||
            util_write_atomic(F->path, out.data, out.len, F->mode, F->uid, F->gid, err) <
                0)
            goto out;
    } else if (P && N && P->file == N->file) {
        /* between two sections of another file: into it */
        cm_file *G = &d->f[N->file];
        if (F->nsecs == 1) /* the whole file moves, its head comment too */
            cm_block_text(F, 0, F->nl, &x);
        else
            cm_block_text(F, S->b0, S->b1, &x);
        cm_splice(G, N->b0, N->b0, N->b0, &x, &out);
        if (cm_note(u, G->path, err) < 0 || cm_note(u, F->path, err) < 0 ||
            util_write_atomic(G->path, out.data, out.len, G->mode, G->uid, G->gid, err) <
                0)
            goto out;
        if (F->nsecs == 1) {
            if (unlink(F->path) < 0) {
                buf_printf(err, "%s: cannot remove: %s", F->path,
                           strerror(errno));
                goto out;
            }
        } else {
            out.len = 0;
            cm_remove(F, S->b0, S->b1, &out);
            if (util_write_atomic(F->path, out.data, out.len, F->mode, F->uid, F->gid,
                         err) < 0)
                goto out;
        }
    } else {
        /* at a file boundary: a file name that sorts there */
        const char *lo = P ? cm_base(d->f[P->file].path) : NULL;
        const char *hi = N ? cm_base(d->f[N->file].path) : NULL;
        char *stem =
            F->nsecs == 1 ? cm_stem(cm_base(F->path)) : util_strdup(S->name);
        char *name = conf_move_name(dir, lo, hi, stem), *path;
        free(stem);
        if (name == NULL) {
            buf_printf(err,
                       "no file name sorts between %s and %s in %s: rename "
                       "the files by hand",
                       lo ? lo : "(start)", hi ? hi : "(end)", dir);
            goto out;
        }
        path = util_printf("%s/%s", dir, name);
        free(name);
        if (cm_note(u, path, err) < 0 || cm_note(u, F->path, err) < 0) {
            free(path);
            goto out;
        }
        if (F->nsecs == 1) {
            if (rename(F->path, path) < 0) {
                buf_printf(err, "rename %s to %s: %s", F->path, path,
                           strerror(errno));
                free(path);
                goto out;
            }
        } else {
            cm_block_text(F, S->b0, S->b1, &x);
            if (util_write_atomic(path, x.data, x.len, F->mode, F->uid, F->gid, err) <
                0) {
                free(path);
                goto out;
            }
            cm_remove(F, S->b0, S->b1, &out);
            if (util_write_atomic(F->path, out.data, out.len, F->mode, F->uid, F->gid,
                         err) < 0) {
                free(path);
                goto out;
            }
        }
        free(path);
    }
    cm_sync_dir(dir);
    rc = 0;
out:
    buf_free(&x);
    buf_free(&out);
    return rc;
}

int conf_move_stage(const char *dir, const char *name, size_t pos, int *changed,
                    conf_undo **undo, buf *err)
{
    cm_dir d;
    size_t si;
    conf_undo *u;

    *changed = 0;
    *undo = NULL;
    if (cm_dir_load(&d, dir, err) < 0) {
        cm_dir_free(&d);
        return -1;
    }
    for (si = 0; si < d.ns; si++)
        if (strcmp(d.s[si].name, name) == 0)
            break;
    if (si == d.ns) {
        buf_printf(err, "no stage named '%s' in %s", name, dir);
        cm_dir_free(&d);
        return -1;
    }
    if (pos < 1 || pos > d.ns) {
        buf_printf(err, "position %zu is out of range: 1..%zu", pos, d.ns);
        cm_dir_free(&d);
        return -1;
    }
    if (pos == si + 1) {
        cm_dir_free(&d);
        return 0;
    }
    u = util_calloc(1, sizeof(*u));
    if (cm_apply(&d, dir, si, pos, u, err) < 0) {
        buf e2;
        buf_init(&e2);
        if (conf_undo_restore(u, &e2) < 0)
            buf_printf(err, "; and conf.d could not be put back: %s", e2.data);
        buf_free(&e2);
        conf_undo_free(u);
        cm_dir_free(&d);
        return -1;
    }
    cm_dir_free(&d);
    *changed = 1;
    *undo = u;
    return 0;
}
