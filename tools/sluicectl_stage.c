/*
 * sluicectl_stage.c - `sluicectl stage list|enable|disable|move`.  See
 * sluicectl_stage.h.  The engine does the work (engine/control.c,
 * control_move.c): it edits conf.d, reloads gracefully, and puts conf.d
 * back if the reload is refused.
 *
 * SECURITY: arguments travel inside one command line: stage names are
 * checked to be one plain word, positions to be numbers.
 */
#include "sluicectl_stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_OK = 0, ST_USAGE = 2, ST_SEND = -1 };

static const char st_usage_text[] =
    "usage: sluicectl [-s SOCKET] [--json] stage COMMAND\n\n"
    "  list                  the chain: position, name, enabled, kind,\n"
    "                        messages, average time, plugin\n"
    "  enable NAME           enable a stage: its conf.d file's `enabled`\n"
    "                        line, then a graceful reload\n"
    "  disable NAME          disable a stage (the same way)\n"
    "  move NAME POSITION\n"
    "  move NAME --before OTHER | --after OTHER\n"
    "                        move a stage to POSITION (1-based, as `list`\n"
    "                        numbers them) or next to OTHER: conf.d is\n"
    "                        edited (a stage alone in its file gets a file\n"
    "                        name that sorts at the new place, e.g.\n"
    "                        50-bayes.conf -> 75-bayes.conf; a section\n"
    "                        sharing a file moves inside it or to a new\n"
    "                        NN-NAME.conf), then a graceful reload.\n"
    "                        Ingress stages stay first and final stages\n"
    "                        (quarantine, deliver) last.\n\n"
    "A reload the engine refuses leaves conf.d exactly as it was and the\n"
    "running configuration unchanged (exit 1).  The old forms `sluicectl\n"
    "stages`, `enable NAME` and `disable NAME` still work.\n\n"
    "exit codes: 0 ok, 1 the engine refused, 2 usage error, 3 no answer\n";

static int st_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 100)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-.") == n;
}

static int st_usage(const char *what, const char *arg)
{
    fprintf(stderr, "sluicectl: stage: %s%s%s\n\n%s", what, arg ? " " : "",
            arg ? arg : "", st_usage_text);
    return ST_USAGE;
}

static int st_name_arg(const char *s)
{
    if (!st_name_ok(s)) {
        fprintf(stderr, "sluicectl: stage: '%s' is not a stage name\n", s);
        return 0;
    }
    return 1;
}

int sluicectl_stage_line(int argc, char **argv, char *line, size_t linesz,
                         const char **cmd, const char **arg)
{
    const char *sub;
    int i;

    *arg = NULL;
    if (argc < 2)
        return st_usage("a command is needed:", "list|enable|disable|move");
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            (i == 1 && strcmp(argv[i], "help") == 0)) {
            fputs(st_usage_text, stdout);
            return ST_OK;
        }
    }
    sub = argv[1];
    if (strcmp(sub, "list") == 0) {
        if (argc != 2)
            return st_usage("list takes no arguments, not", argv[2]);
        *cmd = "stages";
        snprintf(line, linesz, "stages\n");
        return ST_SEND;
    }
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        if (argc != 3)
            return st_usage(sub, "takes one argument, NAME");
        if (!st_name_arg(argv[2]))
            return ST_USAGE;
        *cmd = sub;
        *arg = argv[2];
        snprintf(line, linesz, "%s %s\n", sub, argv[2]);
        return ST_SEND;
    }
    if (strcmp(sub, "move") == 0) {
        if (argc < 4 || argc > 5)
            return st_usage("usage:", "move NAME POSITION | move NAME "
                                      "--before|--after OTHER");
        if (!st_name_arg(argv[2]))
            return ST_USAGE;
        *cmd = "move";
        *arg = argv[2];
        if (argc == 4) {
            char *end;
            long v = strtol(argv[3], &end, 10);
            if (*end != '\0' || end == argv[3] || v < 1 || v > 1000)
                return st_usage("POSITION is a number from 1, not", argv[3]);
            snprintf(line, linesz, "move %s %ld\n", argv[2], v);
            return ST_SEND;
        }
        if (strcmp(argv[3], "--before") != 0 && strcmp(argv[3], "--after") != 0)
            return st_usage("want --before OTHER or --after OTHER, not",
                            argv[3]);
        if (!st_name_arg(argv[4]))
            return ST_USAGE;
        snprintf(line, linesz, "move %s %s %s\n", argv[2], argv[3] + 2,
                 argv[4]);
        return ST_SEND;
    }
    return st_usage("unknown command", sub);
}

void sluicectl_stage_show_move(const char *name, const json_t *reply)
{
    const json_t *order = json_object_get(reply, "order");
    const json_t *gen = json_object_get(reply, "generation");
    const json_t *v;
    size_t i, pos = 0;

    json_array_foreach(order, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            pos = i + 1;
    }
    if (json_is_false(json_object_get(reply, "changed")))
        printf("stage %s is at position %zu already; nothing changed\n", name,
               pos);
    else
        printf("stage %s moved to position %zu (configuration generation "
               "%lld)\n",
               name, pos,
               json_is_integer(gen) ? (long long)json_integer_value(gen)
                                    : -1LL);
    printf("chain:");
    json_array_foreach(order, i, v)
    {
        printf(" %s", json_is_string(v) ? json_string_value(v) : "?");
    }
    printf("\n");
}
