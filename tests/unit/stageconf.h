/*
 * stageconf.h - a stage's configuration block for unit tests, filled by
 * the engine's own conf_apply() (defaults first, then NAME VALUE pairs),
 * so a test reads values exactly as sluiced would: sizes, durations,
 * lists, booleans.  Link the library sluice_stageconf.
 */
#ifndef SLUICE_TEST_STAGECONF_H
#define SLUICE_TEST_STAGECONF_H

#include <sluice/stage.h>

/* The stage's conf_size block with every default and `set` (NULL, or
 * NAME, VALUE, ..., NULL) applied; NULL (and the reason on stderr) if a
 * value does not parse.  Free it with stageconf_free(). */
void *stageconf_new(const sluice_stage *st, const char *const *set);
void stageconf_free(const sluice_stage *st, void *conf);

#endif
