/*
 * main.c - sluiced's command line.
 *
 *   sluiced [-c CONFDIR] [-P PLUGINDIR] [-S STATEDIR] [-D DSN]
 *           [-w WORKERS] [-u USER] [-t] [-V]
 *
 * -t checks the configuration (loads every stage, validates every option)
 * and exits 0 or 1 with the errors, file:line each, on stderr.  Otherwise
 * sluiced runs in the foreground until SIGTERM or SIGINT.
 */
#include "engine.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void main_usage(FILE *fp)
{
    fprintf(fp,
            "usage: sluiced [-c CONFDIR] [-P PLUGINDIR] [-S STATEDIR] "
            "[-D DSN] [-w WORKERS] [-u USER] [-t] [-V]\n"
            "  -c  configuration directory (default %s)\n"
            "  -P  plugin directory (overrides plugin_dir)\n"
            "  -S  state directory (overrides state_dir)\n"
            "  -D  PostgreSQL DSN of the stages (overrides database)\n"
            "  -w  number of workers (overrides workers)\n"
            "  -u  user the workers run as (overrides user)\n"
            "  -t  check the configuration and exit\n"
            "  -V  print the version and exit\n",
            SLUICE_DEFAULT_CONF_DIR);
}

int main(int argc, char **argv)
{
    const char *confdir = SLUICE_DEFAULT_CONF_DIR, *plugin_dir = NULL,
               *state_dir = NULL, *user = NULL;
    long long workers = 0;
    int c, check = 0;

    log_init("sluiced", SLUICE_LOG_INFO, 0);
    while ((c = getopt(argc, argv, "c:P:S:D:w:u:tVh")) != -1) {
        switch (c) {
        case 'c':
            confdir = optarg;
            break;
        case 'P':
            plugin_dir = optarg;
            break;
        case 'S':
            state_dir = optarg;
            break;
        case 'D':
            chain_database_override(optarg);
            break;
        case 'w':
            if (util_parse_llong(optarg, &workers) < 0 || workers < 1 ||
                workers > 64) {
                fprintf(stderr, "sluiced: -w takes 1..64\n");
                return 2;
            }
            break;
        case 'u':
            user = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'V':
            printf("sluiced %s (stage ABI %d.%d)\n", SLUICE_VERSION,
                   SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
            return 0;
        case 'h':
            main_usage(stdout);
            return 0;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        main_usage(stderr);
        return 2;
    }
    if (check) {
        buf err;
        chain *ch;
        buf_init(&err);
        ch = chain_load(confdir, plugin_dir, state_dir, user, NULL, NULL, 1,
                        &err);
        if (ch == NULL) {
            fprintf(stderr, "%s", err.data);
            fprintf(stderr, "sluiced: configuration in %s has errors\n",
                    confdir);
            buf_free(&err);
            return 1;
        }
        printf("sluiced: configuration in %s is valid: %zu stages:", confdir,
               ch->nstages);
        for (size_t i = 0; i < ch->nstages; i++)
            printf(" %s%s", ch->stages[i]->name,
                   ch->stages[i]->common.enabled ? "" : "(disabled)");
        printf("\n");
        chain_free(ch);
        buf_free(&err);
        return 0;
    }
    return master_main(confdir, plugin_dir, state_dir, workers, user);
}
