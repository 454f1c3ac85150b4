/*
 * conf_move.h - change the chain order in conf.d: move one stage section to
 * another position, and undo that if the engine refuses the result.
 *
 * The chain order is the order of the `stage` sections in conf.d: files in
 * name order, sections in file order.  conf_move_stage() keeps that the one
 * truth (no `order` key) and edits as little as it can:
 *   - a stage alone in its file (the usual NN-name.conf layout): the file
 *     is renamed so that its name sorts at the new place ("50-bayes.conf"
 *     to "75-bayes.conf"), its text untouched;
 *   - a stage sharing its file: its block (the section and the comment
 *     lines right above its `stage` line) is cut out and put back next to
 *     its new neighbour in that neighbour's file when one of them is in the
 *     same file or both are, else into a new file NN-NAME.conf whose name
 *     sorts at the new place;
 *   - a stage alone in its file whose new neighbours share one file: the
 *     whole file's text goes into that file, between them, and its own
 *     file is removed.
 * Every file is written whole to a temporary file, synced and renamed over
 * the old one (mode and owner kept); the destination is written before the
 * source is emptied, so a crash in between leaves a duplicate section that
 * the loader refuses with both file:line, never a lost one.
 *
 * conf_undo records every file touched as it was (content, mode, owner, or
 * absent); conf_undo_restore() puts conf.d back byte for byte.
 *
 * Diagnostics: -1 with the reason in *err (file names, errno text); nothing
 * is fatal.  On a failure half-way, conf_move_stage() restores what it had
 * already changed before returning.
 *
 * SECURITY: runs in the master (root) on a control-socket command; writes
 * only inside the configuration directory, names it builds are checked to
 * be plain "*.conf" names without '/'.
 */
#ifndef SLUICE_CONF_MOVE_H
#define SLUICE_CONF_MOVE_H

#include <stddef.h>

#include "util.h"

typedef struct conf_undo conf_undo;

/* The stage names of dir, in chain order (*names NULL-terminated, free with
 * conf_names_free).  0, or -1 with *err (conf.d errors, duplicates). */
int conf_stage_order(const char *dir, char ***names, size_t *n, buf *err);
void conf_names_free(char **names);

/* Moves stage `name` to 1-based position `pos` (1..number of stages).
 * *changed is 0 when it is there already (nothing written, *undo NULL).
 * On success *undo (when changed) must be given to conf_undo_restore() or
 * conf_undo_free(). */
int conf_move_stage(const char *dir, const char *name, size_t pos, int *changed,
                    conf_undo **undo, buf *err);

/* Puts every file back as it was; 0, or -1 with *err (what could not be
 * restored).  Does not free u. */
int conf_undo_restore(conf_undo *u, buf *err);
void conf_undo_free(conf_undo *u);

/* A file name strictly between lo and hi (NULL: no bound) in strcmp order,
 * "NN-stem.conf" preferably, absent from dir.  Returns a malloc'd base
 * name or NULL.  (Exposed for the unit tests.) */
char *conf_move_name(const char *dir, const char *lo, const char *hi,
                     const char *stem);

#endif
