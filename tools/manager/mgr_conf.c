/*
 * mgr_conf.c - one stage option from conf.d (mgr_conf.h).
 *
 * SECURITY: conf.d is the operator's; it is only read.
 */
#include "mgr_conf.h"

#include "conf.h"

#include <stdio.h>
#include <string.h>

static int mc_plugin_is(const char *value, const char *plugin)
{
    const char *b = strrchr(value, '/');
    size_t n = strlen(plugin);

    b = b ? b + 1 : value;
    return strncmp(b, plugin, n) == 0 &&
           (b[n] == '\0' || b[n] == '.' || b[n] == '_');
}

int mgr_conf_stage_key(const char *confdir, const char *plugin, const char *key,
                       const char *dflt, char *out, size_t outsz,
                       int *stage_found)
{
    conf_tree t;
    buf err;
    size_t i, j;
    int found = 0, stage = 0;

    snprintf(out, outsz, "%s", dflt ? dflt : "");
    if (stage_found)
        *stage_found = 0;
    memset(&t, 0, sizeof(t));
    buf_init(&err);
    if (confdir == NULL || conf_read_dir(confdir, &t, &err) != 0) {
        buf_free(&err);
        conf_tree_free(&t);
        return 0;
    }
    for (i = 0; i < t.nsecs; i++) {
        conf_section *s = &t.secs[i];
        int match;
        if (s->is_engine)
            continue;
        match = strcmp(s->name, plugin) == 0;
        for (j = 0; j < s->nopts && !match; j++)
            if (strcmp(s->opts[j].key, "plugin") == 0 &&
                mc_plugin_is(s->opts[j].value, plugin))
                match = 1;
        if (!match)
            continue;
        stage = 1;
        for (j = 0; j < s->nopts; j++)
            if (strcmp(s->opts[j].key, key) == 0) {
                snprintf(out, outsz, "%s", s->opts[j].value);
                found = 1;
            }
    }
    if (stage_found)
        *stage_found = stage;
    buf_free(&err);
    conf_tree_free(&t);
    return found;
}
