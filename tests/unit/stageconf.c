/*
 * stageconf.c - see stageconf.h.  A section is built in memory as conf.d
 * would give it ("test:N" as file and line) and handed to conf_apply().
 */
#include "stageconf.h"

#include "conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *stageconf_new(const sluice_stage *st, const char *const *set)
{
    conf_section sec;
    conf_opt opts[64];
    char *conf = calloc(1, st->conf_size ? st->conf_size : 1);
    size_t n = 0;
    buf err;
    int bad;

    memset(&sec, 0, sizeof(sec));
    memset(opts, 0, sizeof(opts));
    for (; set != NULL && set[0] != NULL && n < 64; set += 2, n++) {
        opts[n].key = (char *)set[0];
        opts[n].value = (char *)(set[1] ? set[1] : "");
        opts[n].file = (char *)"test";
        opts[n].line = (int)n + 1;
    }
    sec.name = (char *)st->name;
    sec.file = (char *)"test";
    sec.opts = opts;
    sec.nopts = n;
    buf_init(&err);
    bad = conf == NULL ||
          conf_apply(st->directives, conf, &sec, st->name, NULL, NULL, &err);
    if (bad) {
        fprintf(stderr, "stageconf: %s", err.data ? err.data : "out of memory\n");
        if (conf != NULL)
            stageconf_free(st, conf);
        conf = NULL;
    }
    buf_free(&err);
    return conf;
}

void stageconf_free(const sluice_stage *st, void *conf)
{
    if (conf == NULL)
        return;
    conf_release(st->directives, conf);
    free(conf);
}
