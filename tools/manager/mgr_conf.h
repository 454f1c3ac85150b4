/*
 * mgr_conf.h - what the API handlers read from the engine's conf.d
 * (read-only; the engine's own reader, conf.c): the blocklist daemon's
 * address, the deliver stage's next hop, the policy stage's thresholds.
 *
 * A stage is found by its section name or its `plugin` value (the
 * section "stage NAME" whose NAME, or whose plugin's base name, is the
 * given plugin); the last matching section and its last `key` line win.
 *
 * Diagnostics: 1 found, 0 not (no such stage or key, or conf.d
 * unreadable: then out holds the default given).
 */
#ifndef SLUICE_MGR_CONF_H
#define SLUICE_MGR_CONF_H

#include <stddef.h>

/* *stage_found (may be NULL): 1 if the stage has a section at all. */
int mgr_conf_stage_key(const char *confdir, const char *plugin, const char *key,
                       const char *dflt, char *out, size_t outsz,
                       int *stage_found);

#endif
