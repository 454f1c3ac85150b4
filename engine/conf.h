/*
 * conf.h - conf.d reader.
 *
 * A configuration directory holds *.conf files, read in name order.  Each
 * file is a list of "key value" lines; '#' starts a comment at the start of
 * a line or after white space.  A line "engine" opens the engine section,
 * "stage NAME" opens a stage section; the order of stage sections is the
 * chain order; a line "manager" opens sluice-manager's section (read into
 * conf_tree.extra, ignored by the engine).  Values are applied to C structs
 * through directive tables (struct sluice_directive), the same mechanism
 * the engine uses for its own options and that stages declare in the ABI.
 *
 * Diagnostics: every error names file:line and is appended to an error
 * buffer; nothing is fatal here.
 */
#ifndef SLUICE_CONF_H
#define SLUICE_CONF_H

#include <stddef.h>
#include <sluice/stage.h>
#include "util.h"

typedef struct conf_opt {
    char *key;
    char *value; /* rest of the line, trimmed; "" if none */
    char *file;  /* shared with the section */
    int line;
    int used;
} conf_opt;

typedef struct conf_section {
    int is_engine;
    char *name; /* stage name; NULL for the engine */
    char *file;
    int line;
    conf_opt *opts;
    size_t nopts;
} conf_section;

typedef struct conf_tree {
    char *dir;
    char **files; /* every file read, owned */
    size_t nfiles;
    conf_section *secs;
    size_t nsecs;
    /* "manager" sections (sluice-manager's options, 05-manager.conf): kept
     * apart so the engine, which ignores them, never sees them in secs */
    conf_section *extra;
    size_t nextra;
} conf_tree;

int conf_read_dir(const char *dir, conf_tree *out, buf *err);
void conf_tree_free(conf_tree *t);

/* Binds a LISTEN value; returns the fd or -1 with *err filled. */
typedef int (*conf_listen_fn)(void *arg, const char *spec, buf *err);

/*
 * Fill `dst` from the section's options that the table knows (marking them
 * used) after applying every default.  Unknown keys are left for the
 * caller (conf_check_unused).  Returns the number of errors.
 */
int conf_apply(const sluice_directive *table, void *dst,
               conf_section *sec, const char *what,
               conf_listen_fn listen_fn, void *listen_arg, buf *err);
int conf_check_unused(conf_section *sec, const char *what, buf *err);
/* Frees what conf_apply allocated in dst (strings, lists). */
void conf_release(const sluice_directive *table, void *dst);

const char *conf_verdict_name(int v);
int conf_verdict_parse(const char *s, int *v);

/* Rewrites the `enabled` line of stage NAME's section in its file (or adds
 * one after the `stage` line).  0 or -1 with *err filled. */
int conf_set_enabled(const char *dir, const char *stage, int enabled,
                     buf *err);
/* The same for any `key VALUE` line of the section; value NULL removes the
 * line.  0 or -1 with *err filled. */
int conf_set_option(const char *dir, const char *stage, const char *key,
                    const char *value, buf *err);

#endif
