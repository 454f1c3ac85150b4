/*
 * conf.c - conf.d reader and directive-table applier.  See conf.h.
 *
 * SECURITY: configuration is trusted operator input, but it is still
 * parsed with bounds: overlong lines are errors, not truncations.
 */
#include "conf.h"
#include "log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_MAX_LINE 8192

static const char *conf_verdicts[] = {"continue", "accept",     "reject",
                                      "tempfail", "discard",    "quarantine",
                                      "pending"};

const char *conf_verdict_name(int v)
{
    if (v < 0 || v > SLUICE_PENDING)
        return "invalid";
    return conf_verdicts[v];
}

int conf_verdict_parse(const char *s, int *v)
{
    int i;

    for (i = 0; i < SLUICE_PENDING; i++) {
        if (strcasecmp(s, conf_verdicts[i]) == 0) {
            *v = i;
            return 0;
        }
    }
    return -1;
}

static int conf_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *conf_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                     e[-1] == '\n'))
        *--e = '\0';
    return s;
}

static void conf_strip_comment(char *s)
{
    char *p;

    for (p = s; *p; p++) {
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

static conf_section *conf_new_section(conf_tree *t, int is_engine,
                                      const char *name, char *file, int line)
{
    conf_section *s;

    t->secs = util_realloc(t->secs, (t->nsecs + 1) * sizeof(*t->secs));
    s = &t->secs[t->nsecs++];
    memset(s, 0, sizeof(*s));
    s->is_engine = is_engine;
    s->name = name ? util_strdup(name) : NULL;
    s->file = file;
    s->line = line;
    return s;
}

/* A "manager" section: in t->extra, not in the engine's t->secs. */
static conf_section *conf_new_extra(conf_tree *t, char *file, int line)
{
    conf_section *s;

    t->extra = util_realloc(t->extra, (t->nextra + 1) * sizeof(*t->extra));
    s = &t->extra[t->nextra++];
    memset(s, 0, sizeof(*s));
    s->name = util_strdup("manager");
    s->file = file;
    s->line = line;
    return s;
}

static int conf_valid_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 63)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int conf_read_file(conf_tree *t, char *path, buf *err)
{
    FILE *fp;
    char line[CONF_MAX_LINE + 2];
    int lineno = 0, errors = 0;
    conf_section *cur = NULL;

    if ((fp = fopen(path, "r")) == NULL) {
        buf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        char *s, *key, *val;
        size_t n = strlen(line);

        lineno++;
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            buf_printf(err, "%s:%d: line longer than %d bytes\n", path, lineno,
                       CONF_MAX_LINE);
            errors++;
            int c;
            while ((c = fgetc(fp)) != EOF && c != '\n')
                ;
            continue;
        }
        conf_strip_comment(line);
        s = conf_trim(line);
        if (*s == '\0')
            continue;
        key = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
        val = conf_trim(s);
        if (strcmp(key, "engine") == 0) {
            if (*val) {
                buf_printf(err, "%s:%d: 'engine' takes no value\n", path,
                           lineno);
                errors++;
            }
            cur = conf_new_section(t, 1, NULL, path, lineno);
            continue;
        }
        if (strcmp(key, "manager") == 0) {
            if (*val) {
                buf_printf(err, "%s:%d: 'manager' takes no value\n", path,
                           lineno);
                errors++;
            }
            cur = conf_new_extra(t, path, lineno);
            continue;
        }
        if (strcmp(key, "stage") == 0) {
            if (!conf_valid_name(val)) {
                buf_printf(err,
                           "%s:%d: stage name '%s' is not valid "
                           "(1-63 of a-z 0-9 _ -)\n",
                           path, lineno, val);
                errors++;
            }
            cur = conf_new_section(t, 0, val, path, lineno);
            continue;
        }
        if (cur == NULL) {
            buf_printf(err,
                       "%s:%d: '%s' outside a section: open one with "
                       "'engine', 'stage NAME' or 'manager'\n",
                       path, lineno, key);
            errors++;
            continue;
        }
        cur->opts = util_realloc(cur->opts, (cur->nopts + 1) *
                                                sizeof(*cur->opts));
        cur->opts[cur->nopts].key = util_strdup(key);
        cur->opts[cur->nopts].value = util_strdup(val);
        cur->opts[cur->nopts].file = path;
        cur->opts[cur->nopts].line = lineno;
        cur->opts[cur->nopts].used = 0;
        cur->nopts++;
    }
    if (ferror(fp)) {
        buf_printf(err, "%s: read error: %s\n", path, strerror(errno));
        errors++;
    }
    fclose(fp);
    return errors;
}

int conf_read_dir(const char *dir, conf_tree *out, buf *err)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, i;
    int errors = 0;

    memset(out, 0, sizeof(*out));
    out->dir = util_strdup(dir);
    if ((d = opendir(dir)) == NULL) {
        buf_printf(err, "%s: cannot open configuration directory: %s\n", dir,
                   strerror(errno));
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 ||
            strcmp(de->d_name + l - 5, ".conf") != 0)
            continue;
        names = util_realloc(names, (n + 1) * sizeof(*names));
        names[n++] = util_printf("%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), conf_name_cmp);
    out->files = names;
    out->nfiles = n;
    for (i = 0; i < n; i++)
        errors += conf_read_file(out, names[i], err);
    if (n == 0) {
        buf_printf(err, "%s: no *.conf files\n", dir);
        errors++;
    }
    return errors;
}

static void conf_sections_free(conf_section *secs, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < secs[i].nopts; j++) {
            free(secs[i].opts[j].key);
            free(secs[i].opts[j].value);
        }
        free(secs[i].opts);
        free(secs[i].name);
    }
    free(secs);
}

void conf_tree_free(conf_tree *t)
{
    size_t i;

    conf_sections_free(t->secs, t->nsecs);
    conf_sections_free(t->extra, t->nextra);
    for (i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    free(t->files);
    free(t->dir);
    memset(t, 0, sizeof(*t));
}

/* Set one value; returns 0 or -1 with a reason in *why. */
static int conf_set_value(const sluice_directive *d, void *dst,
                          const char *val, conf_listen_fn listen_fn,
                          void *listen_arg, buf *why)
{
    char *field = (char *)dst + d->offset;

    switch (d->type) {
    case SLUICE_CONF_STRING: {
        char **p = (char **)field;
        free(*p);
        *p = util_strdup(val);
        return 0;
    }
    case SLUICE_CONF_INT: {
        long long v;
        if (util_parse_llong(val, &v) < 0) {
            buf_printf(why, "'%s' is not a whole number", val);
            return -1;
        }
        if ((d->min || d->max) && (v < d->min || v > d->max)) {
            buf_printf(why, "%lld is out of range %lld..%lld", v, d->min,
                       d->max);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_BOOL: {
        int v;
        if (util_parse_bool(val, &v) < 0) {
            buf_printf(why, "'%s' is not yes/no", val);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_DURATION: {
        double v;
        if (util_parse_duration(val, &v) < 0) {
            buf_printf(why, "'%s' is not a duration (30s, 250ms, 5m, 1h)",
                       val);
            return -1;
        }
        if ((d->min || d->max) && (v < (double)d->min || v > (double)d->max)) {
            buf_printf(why, "%s is out of range %llds..%llds", val, d->min,
                       d->max);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_SIZE: {
        size_t v;
        if (util_parse_size(val, &v) < 0) {
            buf_printf(why, "'%s' is not a size (512, 64k, 10M, 1G)", val);
            return -1;
        }
        if ((d->min > 0 && v < (size_t)d->min) ||
            (d->max > 0 && v > (size_t)d->max)) {
            buf_printf(why, "%s is out of range %lld..%lld bytes", val, d->min,
                       d->max);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_VERDICT: {
        int v;
        if (conf_verdict_parse(val, &v) < 0) {
            buf_printf(why,
                       "'%s' is not a verdict (continue, accept, reject, "
                       "tempfail, discard, quarantine)",
                       val);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_ENUM: {
        int i;
        for (i = 0; d->choices && d->choices[i]; i++) {
            if (strcasecmp(val, d->choices[i]) == 0) {
                memcpy(field, &i, sizeof(i));
                return 0;
            }
        }
        buf_printf(why, "'%s' is not one of:", val);
        for (i = 0; d->choices && d->choices[i]; i++)
            buf_printf(why, " %s", d->choices[i]);
        return -1;
    }
    case SLUICE_CONF_LISTEN: {
        util_endpoint ep;
        int fd = -1;
        if (util_parse_endpoint(val, &ep) < 0) {
            buf_printf(why,
                       "'%s' is not an address (host:port, [v6]:port, "
                       "unix:/path, inet:port@host or local:/path)",
                       val);
            return -1;
        }
        if (listen_fn != NULL && (fd = listen_fn(listen_arg, val, why)) < 0)
            return -1;
        memcpy(field, &fd, sizeof(fd));
        return 0;
    }
    case SLUICE_CONF_STRLIST: {
        char ***p = (char ***)field;
        size_t n = 0;
        char *copy = util_strdup(val), *tok, *save = NULL;
        if (*p)
            while ((*p)[n])
                n++;
        for (tok = strtok_r(copy, " \t,", &save); tok;
             tok = strtok_r(NULL, " \t,", &save)) {
            *p = util_realloc(*p, (n + 2) * sizeof(char *));
            (*p)[n++] = util_strdup(tok);
            (*p)[n] = NULL;
        }
        free(copy);
        return 0;
    }
    case SLUICE_CONF_DOUBLE: {
        char *end;
        double v = strtod(val, &end);
        if (end == val || *end != '\0' || v != v) {
            buf_printf(why, "'%s' is not a number", val);
            return -1;
        }
        if ((d->min || d->max) && (v < (double)d->min || v > (double)d->max)) {
            buf_printf(why, "%s is out of range %lld..%lld", val, d->min,
                       d->max);
            return -1;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
    }
    case SLUICE_CONF_END:
        break;
    }
    buf_printf(why, "directive '%s' has an unknown type %d", d->name,
               (int)d->type);
    return -1;
}

int conf_apply(const sluice_directive *table, void *dst, conf_section *sec,
               const char *what, conf_listen_fn listen_fn, void *listen_arg,
               buf *err)
{
    const sluice_directive *d;
    int errors = 0;
    size_t i;
    buf why;

    buf_init(&why);
    for (d = table; d && d->name; d++) {
        const char *last = NULL;
        conf_opt *last_opt = NULL;

        for (i = 0; i < sec->nopts; i++) {
            if (strcmp(sec->opts[i].key, d->name) != 0)
                continue;
            sec->opts[i].used = 1;
            if (d->type == SLUICE_CONF_STRLIST) {
                why.len = 0;
                if (conf_set_value(d, dst, sec->opts[i].value, NULL, NULL,
                                   &why) < 0) {
                    buf_printf(err, "%s:%d: %s: %s: %s\n", sec->opts[i].file,
                               sec->opts[i].line, what, d->name, why.data);
                    errors++;
                }
            } else {
                last = sec->opts[i].value;
                last_opt = &sec->opts[i];
            }
        }
        if (d->type == SLUICE_CONF_STRLIST)
            continue;
        if (last == NULL)
            last = d->dflt;
        if (last == NULL) {
            if (d->type == SLUICE_CONF_LISTEN) {
                int fd = -1;
                memcpy((char *)dst + d->offset, &fd, sizeof(fd));
            }
            continue;
        }
        why.len = 0;
        why.data[0] = '\0';
        if (conf_set_value(d, dst, last, listen_fn, listen_arg, &why) < 0) {
            if (last_opt)
                buf_printf(err, "%s:%d: %s: %s: %s\n", last_opt->file,
                           last_opt->line, what, d->name, why.data);
            else
                buf_printf(err, "%s:%d: %s: default of %s: %s\n", sec->file,
                           sec->line, what, d->name, why.data);
            errors++;
        }
    }
    buf_free(&why);
    return errors;
}

int conf_check_unused(conf_section *sec, const char *what, buf *err)
{
    size_t i;
    int errors = 0;

    for (i = 0; i < sec->nopts; i++) {
        if (!sec->opts[i].used) {
            buf_printf(err, "%s:%d: %s: unknown option '%s'\n",
                       sec->opts[i].file, sec->opts[i].line, what,
                       sec->opts[i].key);
            errors++;
        }
    }
    return errors;
}

void conf_release(const sluice_directive *table, void *dst)
{
    const sluice_directive *d;

    for (d = table; d && d->name; d++) {
        char *field = (char *)dst + d->offset;
        if (d->type == SLUICE_CONF_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (d->type == SLUICE_CONF_STRLIST) {
            char **l = *(char ***)field;
            for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
            free(l);
            *(char ***)field = NULL;
        }
    }
}

/* Rewrites one stage's `key` line (value NULL: removes it); atomic
 * (temporary file + rename). */
int conf_set_option(const char *dir, const char *stage, const char *key,
                    const char *value, buf *err)
{
    conf_tree t;
    conf_section *sec = NULL;
    int target_line = 0, insert_after = 0, lineno = 0, fd = -1;
    size_t i;
    FILE *in = NULL, *out = NULL;
    char line[CONF_MAX_LINE + 2], *tmp = NULL;
    struct stat st;

    if (conf_read_dir(dir, &t, err) != 0) {
        conf_tree_free(&t);
        return -1;
    }
    for (i = 0; i < t.nsecs; i++)
        if (!t.secs[i].is_engine && strcmp(t.secs[i].name, stage) == 0)
            sec = &t.secs[i];
    if (sec == NULL) {
        buf_printf(err, "no stage named '%s' in %s", stage, dir);
        conf_tree_free(&t);
        return -1;
    }
    for (i = 0; i < sec->nopts; i++)
        if (strcmp(sec->opts[i].key, key) == 0)
            target_line = sec->opts[i].line;
    if (target_line == 0 && value != NULL)
        insert_after = sec->line;
    if ((in = fopen(sec->file, "r")) == NULL || fstat(fileno(in), &st) < 0) {
        buf_printf(err, "%s: %s", sec->file, strerror(errno));
        goto fail;
    }
    tmp = util_printf("%s.tmp.%ld", sec->file, (long)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 07777)) <
            0 ||
        (out = fdopen(fd, "w")) == NULL) {
        buf_printf(err, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    while (fgets(line, sizeof(line), in) != NULL) {
        lineno++;
        if (lineno == target_line) {
            if (value != NULL)
                fprintf(out, "%s %s\n", key, value);
            continue;
        }
        fputs(line, out);
        if (lineno == insert_after && value != NULL) {
            if (line[0] == '\0' || line[strlen(line) - 1] != '\n')
                fputc('\n', out);
            fprintf(out, "%s %s\n", key, value);
        }
    }
    if (fflush(out) != 0 || fsync(fileno(out)) != 0 || ferror(in)) {
        buf_printf(err, "%s: write failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (fchown(fileno(out), st.st_uid, st.st_gid) < 0) {
        /* not fatal: keep the operator's file usable */
    }
    fclose(out);
    out = NULL;
    if (rename(tmp, sec->file) < 0) {
        buf_printf(err, "rename %s: %s", sec->file, strerror(errno));
        goto fail;
    }
    fclose(in);
    free(tmp);
    conf_tree_free(&t);
    return 0;
fail:
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    conf_tree_free(&t);
    return -1;
}

int conf_set_enabled(const char *dir, const char *stage, int enabled,
                     buf *err)
{
    return conf_set_option(dir, stage, "enabled", enabled ? "yes" : "no",
                           err);
}
