/*
 * sluicectl.c - command-line client of the engine's control socket.
 *
 * Usage: sluicectl [-s SOCKET] [-t SECONDS] [-d DSN] [-S STATE_DIR] [--json]
 *                  COMMAND [ARGS]
 *   status          engine version, pid, uptime, workers, stages
 *   stage list|enable|disable|move  the chain; enable, disable or move a
 *                   stage (persisted in conf.d, then reload;
 *                   sluicectl_stage.c)
 *   stages          the stage chain: position, name, enabled, counters
 *   stats           per-stage timings, verdicts and counters
 *   reload          re-read conf.d and restart workers gracefully
 *   enable NAME     enable a stage (persisted in conf.d, then reload)
 *   disable NAME    disable a stage (persisted in conf.d, then reload)
 *   scan FILE|DIR|-...  messages through the chain, nothing delivered
 *                   (sluicectl_scan.c, in-process; 'scan --help')
 *   quarantine list|show|release|delete|expire  quarantined mail
 *                   (sluicectl_quarantine.c; the database as for db)
 *   admin add|list|remove|passwd|unlock|token  the Manager's accounts
 *                   (sluicectl_admin.c; database as for db)
 *   list add|remove|show  allow/block lists (sluicectl_list.c; database
 *                   as for db)
 *   policy check|test|default  the policy script (sluicectl_policy.c)
 *   learn spam|ham FILE|DIR|-...  train the Bayes database of the bayes
 *                   stage (sluicectl_learn.c, in-process)
 *   db init|migrate|status  the PostgreSQL schema (sluicectl_db.c; -d DSN,
 *                   $SLUICE_DB, or the private instance under -S STATE_DIR)
 *   help [COMMAND]  this text, or one command's
 *
 * Protocol: one command line ending in "\n" goes to the unix stream socket
 * (-s, else $SLUICE_CONTROL, else /var/lib/sluice/control.sock); the engine
 * answers one JSON object and a "\n" and closes.  Every reply has "ok";
 * when false, "error".  --json prints the reply as received; otherwise
 * it is shown readably (tables and "key: value" lines).
 *
 * Exit codes: 0 ok; 1 the engine answered ok:false; 2 usage error; 3 no
 * answer from the engine (cannot connect - the message names the socket
 * and the errno text -, timeout, or an unreadable reply).
 *
 * SECURITY: runs with the caller's privileges; the socket is mode 0600, so
 * only its owner (or root) gets in.  The reply is parsed by jansson with a
 * size cap; arguments are checked so that one command line stays one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sluicectl_db.h"
#include "sluicectl_learn.h"
#include "sluicectl_list.h"
#include "sluicectl_policy.h"
#include "sluicectl_admin.h"
#include "sluicectl_quarantine.h"
#include "sluicectl_scan.h"
#include "sluicectl_stage.h"

#define SLUICECTL_DEFAULT_SOCKET "/var/lib/sluice/control.sock"
#define SLUICECTL_MAX_REPLY (16u * 1024u * 1024u)

enum {
    SLUICECTL_OK = 0,
    SLUICECTL_REFUSED = 1,
    SLUICECTL_USAGE = 2,
    SLUICECTL_NOCONN = 3
};

typedef struct sluicectl_cmd {
    const char *name;
    int nargs; /* exact number of arguments */
    const char *args;
    const char *summary; /* one line for the usage */
    const char *help;
} sluicectl_cmd;

static const sluicectl_cmd sluicectl_cmds[] = {
    {"status", 0, "", "engine, workers and stages",
     "Show the engine: version, pid, uptime, configuration generation,\n"
     "workers (pid, state, messages) and the stage chain."},
    {"stage", -1, "list|enable|disable|move",
     "the chain; change it (conf.d, then reload)",
     "List the chain, or enable, disable or move a stage (persisted in\n"
     "conf.d, then a graceful reload); 'sluicectl stage --help'."},
    {"stages", 0, "", "the stage chain",
     "List the stage chain: position, name, enabled, kind, messages,\n"
     "average time per message and the plugin file."},
    {"stats", 0, "", "per-stage timings, verdicts, counters",
     "Per-stage statistics: calls, average and total time, timeouts,\n"
     "errors, verdicts and the stage's own counters."},
    {"reload", 0, "", "re-read conf.d, restart workers gracefully",
     "Re-read conf.d; new workers take over while the old ones finish\n"
     "their messages.  A configuration error leaves the running one."},
    {"enable", 1, "NAME", "enable a stage (persisted, then reload)",
     "Enable the stage NAME: the change is written to its conf.d file,\n"
     "then the engine reloads."},
    {"disable", 1, "NAME", "disable a stage (persisted, then reload)",
     "Disable the stage NAME: the change is written to its conf.d file,\n"
     "then the engine reloads."},
    {"scan", -1, "FILE|DIR|-", "run messages through the chain, no delivery",
     "Scan messages with the configured chain; 'sluicectl scan --help'."},
    {"quarantine", -1, "list|show|release|delete|expire",
     "quarantined mail (PostgreSQL)",
     "List, show, release, delete or expire quarantined messages;\n"
     "'sluicectl quarantine --help'."},
    {"list", -1, "add|remove|show", "allow/block lists (PostgreSQL)",
     "Add, remove or show allow/block list entries; 'sluicectl list --help'."},
    {"policy", -1, "check|test|default", "check or try a policy script",
     "Compile a policy script, or run it on a message; 'sluicectl policy --help'."},
    {"learn", -1, "spam|ham FILE|DIR|-", "train the Bayes database",
     "Learn messages as spam or ham (or --unlearn them) into the bayes\n"
     "stage's database; 'sluicectl learn --help'."},
    {"admin", -1, "add|list|remove|passwd|unlock|token",
     "the Manager's accounts (PostgreSQL)",
     "Create, list, remove, unlock Manager accounts, set passwords, make\n"
     "API tokens; 'sluicectl admin --help'."},
    {"db", -1, "init|migrate|status", "the PostgreSQL schema",
     "Create, migrate or show the database schema; 'sluicectl db --help'."},
    {"help", -1, "[COMMAND]", "this text, or one command's help",
     "Show the usage, or one command's help."},
    {NULL, 0, NULL, NULL, NULL}};

static void sluicectl_usage(FILE *fp)
{
    const sluicectl_cmd *c;

    fprintf(fp,
            "usage: sluicectl [-s SOCKET] [-t SECONDS] [--json] COMMAND "
            "[ARGS]\n\n"
            "options:\n"
            "  -s SOCKET   control socket (default: $SLUICE_CONTROL, else "
            "%s)\n"
            "  -t SECONDS  give up after this long (default 10)\n"
            "  --json      print the engine's JSON reply as it is\n"
            "  -d DSN      database for 'db' (default: $SLUICE_DB, else the\n"
            "              private instance under the state directory)\n"
            "  -S DIR      state directory (default: $SLUICE_STATE_DIR, else\n"
            "              /var/lib/sluice)\n"
            "  -h, --help  this text; 'sluicectl COMMAND --help' for a "
            "command\n\ncommands:\n",
            SLUICECTL_DEFAULT_SOCKET);
    for (c = sluicectl_cmds; c->name; c++) {
        char head[64];
        snprintf(head, sizeof(head), "%s %s", c->name, c->args);
        if (strlen(head) < 16)
            fprintf(fp, "  %-16s%s\n", head, c->summary);
        else /* a long synopsis: the summary goes below it */
            fprintf(fp, "  %s\n  %-16s%s\n", head, "", c->summary);
    }
    fprintf(fp, "\nexit codes: 0 ok, 1 the engine refused, 2 usage error, "
                "3 no answer from the engine\n");
}

static const sluicectl_cmd *sluicectl_find(const char *name)
{
    const sluicectl_cmd *c;

    for (c = sluicectl_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void sluicectl_cmd_help(const sluicectl_cmd *c)
{
    printf("usage: sluicectl [-s SOCKET] [--json] %s%s%s\n\n%s\n", c->name,
           c->args[0] ? " " : "", c->args, c->help);
}

/* A stage name travels inside the command line: keep it one plain word. */
static int sluicectl_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 100)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-.") == n;
}

static double sluicectl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits for `ev` on fd until the deadline; 0 ready, -1 timeout/error. */
static int sluicectl_wait(int fd, short ev, double deadline)
{
    for (;;) {
        struct pollfd p = {fd, ev, 0};
        double left = deadline - sluicectl_now();
        int rc;
        if (left <= 0)
            return -1;
        rc = poll(&p, 1, (int)(left * 1000) + 1);
        if (rc > 0)
            return 0;
        if (rc == 0 || errno != EINTR)
            return -1;
    }
}

/*
 * Sends `line` and reads the reply into *out (malloc'd, NUL-ended).
 * Returns 0, or SLUICECTL_NOCONN with a message on stderr.
 */
static int sluicectl_talk(const char *path, const char *line, double timeout,
                          char **out)
{
    struct sockaddr_un sa;
    int fd;
    size_t len = strlen(line), off = 0, cap = 8192, got = 0;
    double deadline = sluicectl_now() + timeout;
    char *buf;

    *out = NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "sluicectl: cannot connect to %s: path too long\n",
                path);
        return SLUICECTL_NOCONN;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "sluicectl: socket: %s\n", strerror(errno));
        return SLUICECTL_NOCONN;
    }
    {
        /* a blocking connect (a full backlog waits) bounded by the timeout */
        struct timeval tv;
        tv.tv_sec = (time_t)timeout;
        tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fprintf(stderr, "sluicectl: cannot connect to %s: %s\n", path,
                e == EAGAIN || e == EINPROGRESS ? "timed out (backlog full)"
                                                : strerror(e));
        close(fd);
        return SLUICECTL_NOCONN;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        fprintf(stderr, "sluicectl: fcntl: %s\n", strerror(errno));
        close(fd);
        return SLUICECTL_NOCONN;
    }
    while (off < len) {
        ssize_t n;
        if (sluicectl_wait(fd, POLLOUT, deadline) < 0) {
            fprintf(stderr, "sluicectl: %s: timed out sending the command\n",
                    path);
            close(fd);
            return SLUICECTL_NOCONN;
        }
        n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "sluicectl: %s: write: %s\n", path,
                    strerror(errno));
            close(fd);
            return SLUICECTL_NOCONN;
        }
        off += (size_t)n;
    }
    if ((buf = malloc(cap)) == NULL) {
        close(fd);
        fprintf(stderr, "sluicectl: out of memory\n");
        return SLUICECTL_NOCONN;
    }
    for (;;) {
        ssize_t n;
        if (got + 1 >= cap) {
            char *nb;
            if (cap >= SLUICECTL_MAX_REPLY) {
                fprintf(stderr, "sluicectl: %s: reply larger than %u bytes\n",
                        path, SLUICECTL_MAX_REPLY);
                goto fail;
            }
            if ((nb = realloc(buf, cap * 2)) == NULL) {
                fprintf(stderr, "sluicectl: out of memory\n");
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        if (sluicectl_wait(fd, POLLIN, deadline) < 0) {
            fprintf(stderr, "sluicectl: %s: no complete reply within %.0f s\n",
                    path, timeout);
            goto fail;
        }
        n = recv(fd, buf + got, cap - got - 1, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "sluicectl: %s: read: %s\n", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (got == 0) {
        fprintf(stderr, "sluicectl: %s: the engine closed without a reply\n",
                path);
        free(buf);
        return SLUICECTL_NOCONN;
    }
    *out = buf;
    return 0;
fail:
    close(fd);
    free(buf);
    return SLUICECTL_NOCONN;
}

/* ---------------------------------------------------------------- */
/* Readable output                                                  */

static void sluicectl_scalar(const json_t *v, char *out, size_t outsz)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(out, outsz, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(out, outsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(out, outsz, "%.3f", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(out, outsz, "yes");
        break;
    case JSON_FALSE:
        snprintf(out, outsz, "no");
        break;
    case JSON_NULL:
        snprintf(out, outsz, "-");
        break;
    default: {
        char *s = json_dumps(v, JSON_COMPACT);
        snprintf(out, outsz, "%s", s ? s : "?");
        free(s);
    }
    }
}

static const char *sluicectl_get(const json_t *o, const char *key, char *buf,
                                 size_t bufsz)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL) {
        snprintf(buf, bufsz, "-");
        return buf;
    }
    sluicectl_scalar(v, buf, bufsz);
    return buf;
}

static double sluicectl_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return v && json_is_number(v) ? json_number_value(v) : 0.0;
}

static void sluicectl_uptime(double s, char *out, size_t outsz)
{
    long long t = (long long)s;

    if (t >= 86400)
        snprintf(out, outsz, "%lldd %02lldh %02lldm (%lld s)", t / 86400,
                 t % 86400 / 3600, t % 3600 / 60, t);
    else if (t >= 3600)
        snprintf(out, outsz, "%lldh %02lldm %02llds (%lld s)", t / 3600,
                 t % 3600 / 60, t % 60, t);
    else
        snprintf(out, outsz, "%lld s", t);
}

static void sluicectl_stage_table(const json_t *stages)
{
    size_t i;
    const json_t *s;
    char a[32], b[64], c[16], d[16], e[32];

    printf("%-4s %-20s %-8s %-8s %12s %10s  %s\n", "POS", "NAME", "ENABLED",
           "KIND", "MESSAGES", "AVG_MS", "PLUGIN");
    json_array_foreach(stages, i, s)
    {
        char avg[32], plugin[512];
        snprintf(avg, sizeof(avg), "%.3f", sluicectl_num(s, "avg_ms"));
        printf("%-4s %-20s %-8s %-8s %12s %10s  %s\n",
               sluicectl_get(s, "position", a, sizeof(a)),
               sluicectl_get(s, "name", b, sizeof(b)),
               sluicectl_get(s, "enabled", c, sizeof(c)),
               sluicectl_get(s, "kind", d, sizeof(d)),
               sluicectl_get(s, "calls", e, sizeof(e)), avg,
               sluicectl_get(s, "plugin", plugin, sizeof(plugin)));
    }
}

static void sluicectl_stats_table(const json_t *stages)
{
    size_t i;
    const json_t *s;
    char a[32], b[64], c[32], d[32], e[32];

    printf("%-4s %-20s %12s %10s %14s %9s %7s\n", "POS", "NAME", "CALLS",
           "AVG_MS", "TOTAL_MS", "TIMEOUTS", "ERRORS");
    json_array_foreach(stages, i, s)
    {
        char avg[32], tot[32];
        snprintf(avg, sizeof(avg), "%.3f", sluicectl_num(s, "avg_ms"));
        snprintf(tot, sizeof(tot), "%.1f", sluicectl_num(s, "time_ms"));
        printf("%-4s %-20s %12s %10s %14s %9s %7s\n",
               sluicectl_get(s, "position", a, sizeof(a)),
               sluicectl_get(s, "name", b, sizeof(b)),
               sluicectl_get(s, "calls", c, sizeof(c)), avg, tot,
               sluicectl_get(s, "timeouts", d, sizeof(d)),
               sluicectl_get(s, "errors", e, sizeof(e)));
    }
    json_array_foreach(stages, i, s)
    {
        static const char *const groups[] = {"verdicts", "counters"};
        size_t g;
        for (g = 0; g < 2; g++) {
            const json_t *o = json_object_get(s, groups[g]);
            const char *k;
            const json_t *v;
            int first = 1;
            if (!json_is_object(o) || json_object_size(o) == 0)
                continue;
            printf("%s %s:", sluicectl_get(s, "name", b, sizeof(b)), groups[g]);
            json_object_foreach((json_t *)o, k, v)
            {
                char val[64];
                sluicectl_scalar(v, val, sizeof(val));
                printf("%s%s=%s", first ? " " : ", ", k, val);
                first = 0;
            }
            printf("\n");
        }
    }
}

static void sluicectl_worker_table(const json_t *workers)
{
    size_t i;
    const json_t *w;
    char a[16], b[32], c[16], d[32], e[32], f[32];

    printf("%-4s %-8s %-5s %-9s %12s %12s %9s\n", "NUM", "PID", "GEN", "STATE",
           "UPTIME_S", "MESSAGES", "IN_FLIGHT");
    json_array_foreach(workers, i, w)
    {
        char up[32];
        snprintf(up, sizeof(up), "%.0f", sluicectl_num(w, "uptime"));
        printf("%-4s %-8s %-5s %-9s %12s %12s %9s\n",
               sluicectl_get(w, "number", a, sizeof(a)),
               sluicectl_get(w, "pid", b, sizeof(b)),
               sluicectl_get(w, "generation", c, sizeof(c)),
               sluicectl_get(w, "state", d, sizeof(d)), up,
               sluicectl_get(w, "messages", e, sizeof(e)),
               sluicectl_get(w, "in_flight", f, sizeof(f)));
    }
}

/* Every scalar member as "key: value"; arrays and objects after. */
static void sluicectl_keyvalues(const json_t *o, int status)
{
    const char *k;
    const json_t *v;

    json_object_foreach((json_t *)o, k, v)
    {
        char val[1024];
        if (strcmp(k, "ok") == 0 || json_is_array(v) || json_is_object(v))
            continue;
        if (status && strcmp(k, "uptime") == 0 && json_is_number(v))
            sluicectl_uptime(json_number_value(v), val, sizeof(val));
        else
            sluicectl_scalar(v, val, sizeof(val));
        printf("%s: %s\n", k, val);
    }
    json_object_foreach((json_t *)o, k, v)
    {
        if (json_is_array(v)) {
            printf("\n%s:\n", k);
            if (strcmp(k, "workers") == 0)
                sluicectl_worker_table(v);
            else if (strcmp(k, "stages") == 0)
                sluicectl_stage_table(v);
            else {
                size_t i;
                const json_t *e;
                json_array_foreach(v, i, e)
                {
                    char val[1024];
                    sluicectl_scalar(e, val, sizeof(val));
                    printf("  %s\n", val);
                }
            }
        } else if (json_is_object(v)) {
            char *s = json_dumps(v, JSON_COMPACT);
            printf("%s: %s\n", k, s ? s : "?");
            free(s);
        }
    }
}

static void sluicectl_show(const char *cmd, const char *arg, const json_t *r)
{
    const json_t *stages = json_object_get(r, "stages");
    char g[32];

    if (strcmp(cmd, "stages") == 0 && json_is_array(stages)) {
        sluicectl_stage_table(stages);
    } else if (strcmp(cmd, "stats") == 0 && json_is_array(stages)) {
        sluicectl_stats_table(stages);
    } else if (strcmp(cmd, "reload") == 0) {
        printf("reloaded: configuration generation %s\n",
               sluicectl_get(r, "generation", g, sizeof(g)));
    } else if (strcmp(cmd, "move") == 0) {
        sluicectl_stage_show_move(arg, r);
    } else if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
        const json_t *ch = json_object_get(r, "changed");
        if (json_is_false(ch))
            printf("stage %s was already %sd; nothing changed\n", arg, cmd);
        else
            printf("stage %s %sd (configuration generation %s)\n", arg, cmd,
                   sluicectl_get(r, "generation", g, sizeof(g)));
    } else {
        sluicectl_keyvalues(r, strcmp(cmd, "status") == 0);
    }
}

int main(int argc, char **argv)
{
    const char *path = getenv("SLUICE_CONTROL");
    const sluicectl_cmd *c;
    int json = 0, i, rc;
    double timeout = 10;
    char line[256], *reply = NULL;
    const char *cmd, *arg = NULL, *dsn = NULL, *state_dir = NULL;
    json_t *r;
    json_error_t jerr;
    const json_t *ok;

    if (path == NULL || path[0] == '\0')
        path = SLUICECTL_DEFAULT_SOCKET;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            sluicectl_usage(stdout);
            return SLUICECTL_OK;
        } else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            dsn = argv[++i];
        } else if (strcmp(argv[i], "-S") == 0 && i + 1 < argc) {
            state_dir = argv[++i];
        } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            char *end;
            timeout = strtod(argv[++i], &end);
            if (*end != '\0' || !(timeout > 0 && timeout <= 3600)) {
                fprintf(stderr,
                        "sluicectl: -t wants seconds (0-3600], not "
                        "'%s'\n",
                        argv[i]);
                return SLUICECTL_USAGE;
            }
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            fprintf(stderr, "sluicectl: unknown option '%s'\n\n", argv[i]);
            sluicectl_usage(stderr);
            return SLUICECTL_USAGE;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "sluicectl: no command given\n\n");
        sluicectl_usage(stderr);
        return SLUICECTL_USAGE;
    }
    cmd = argv[i++];
    if (strcmp(cmd, "scan") == 0) { /* in-process, no engine needed */
        /* a dry run: the bayes stage must not auto-learn from it */
        setenv("SLUICE_NO_AUTOLEARN", "1", 1);
        return sluicectl_scan_main(argc - i + 1, argv + i - 1, json);
    }
    if (strcmp(cmd, "quarantine") == 0) /* the database, not the engine */
        return sluicectl_quarantine_main(argc - i + 1, argv + i - 1, dsn,
                                         state_dir, json);
    if (strcmp(cmd, "admin") == 0) /* the database, not the engine */
        return sluicectl_admin_main(argc - i + 1, argv + i - 1, dsn,
                                    state_dir, json);
    if (strcmp(cmd, "list") == 0) /* the database, not the engine */
        return sluicectl_list_main(argc - i + 1, argv + i - 1, dsn, state_dir,
                                   json);
    if (strcmp(cmd, "learn") == 0) /* in-process: the Bayes database */
        return sluicectl_learn_main(argc - i + 1, argv + i - 1, state_dir,
                                    json);
    if (strcmp(cmd, "policy") == 0) /* in-process: the policy compiler */
        return sluicectl_policy_main(argc - i + 1, argv + i - 1, json);
    if (strcmp(cmd, "db") == 0) { /* its own sub-commands and help */
        /* libpq takes a host starting with '/' for a socket directory:
         * a relative state dir would be read as a host name */
        char cwd[4096], *abs = NULL;
        if (state_dir != NULL && state_dir[0] != '/' &&
            getcwd(cwd, sizeof(cwd)) != NULL) {
            size_t n = strlen(cwd) + strlen(state_dir) + 2;
            if ((abs = malloc(n)) != NULL) {
                snprintf(abs, n, "%s/%s", cwd, state_dir);
                state_dir = abs;
            }
        }
        rc = sluicectl_db_main(argc - i + 1, argv + i - 1, dsn, state_dir,
                               json);
        free(abs);
        return rc;
    }
    if (strcmp(cmd, "stage") == 0) { /* sluicectl_stage.c builds the line */
        if ((rc = sluicectl_stage_line(argc - i + 1, argv + i - 1, line,
                                       sizeof(line), &cmd, &arg)) >= 0)
            return rc;
        goto talk;
    }
    if ((c = sluicectl_find(cmd)) == NULL) {
        fprintf(stderr,
                "sluicectl: unknown command '%s'; try 'sluicectl "
                "--help'\n",
                cmd);
        return SLUICECTL_USAGE;
    }
    if (i < argc &&
        (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
        sluicectl_cmd_help(c);
        return SLUICECTL_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        const sluicectl_cmd *h;
        if (i >= argc) {
            sluicectl_usage(stdout);
            return SLUICECTL_OK;
        }
        if ((h = sluicectl_find(argv[i])) == NULL || i + 1 < argc) {
            fprintf(stderr, "sluicectl: no help for '%s'\n", argv[i]);
            return SLUICECTL_USAGE;
        }
        sluicectl_cmd_help(h);
        return SLUICECTL_OK;
    }
    if (argc - i != c->nargs) {
        fprintf(stderr, "sluicectl: '%s' takes %s\n", cmd,
                c->nargs ? "one argument, NAME" : "no arguments");
        fprintf(stderr, "usage: sluicectl [-s SOCKET] [--json] %s%s%s\n", cmd,
                c->args[0] ? " " : "", c->args);
        return SLUICECTL_USAGE;
    }
    if (c->nargs == 1) {
        arg = argv[i];
        if (!sluicectl_name_ok(arg)) {
            fprintf(stderr, "sluicectl: '%s' is not a stage name\n", arg);
            return SLUICECTL_USAGE;
        }
        snprintf(line, sizeof(line), "%s %s\n", cmd, arg);
    } else {
        snprintf(line, sizeof(line), "%s\n", cmd);
    }

talk:
    if ((rc = sluicectl_talk(path, line, timeout, &reply)) != 0)
        return rc;
    r = json_loads(reply, JSON_REJECT_DUPLICATES, &jerr);
    if (r == NULL || !json_is_object(r) ||
        !json_is_boolean(ok = json_object_get(r, "ok"))) {
        fprintf(stderr, "sluicectl: %s: unreadable reply%s%s\n", path,
                r ? "" : ": ", r ? "" : jerr.text);
        json_decref(r);
        free(reply);
        return SLUICECTL_NOCONN;
    }
    if (json) {
        size_t n = strlen(reply);
        fputs(reply, stdout);
        if (n == 0 || reply[n - 1] != '\n')
            putchar('\n');
    }
    if (json_is_false(ok)) {
        const json_t *e = json_object_get(r, "error");
        if (!json)
            fprintf(stderr, "sluicectl: %s: %s\n", cmd,
                    json_is_string(e) ? json_string_value(e)
                                      : "the engine refused (no reason given)");
        json_decref(r);
        free(reply);
        return SLUICECTL_REFUSED;
    }
    if (!json)
        sluicectl_show(cmd, arg, r);
    json_decref(r);
    free(reply);
    return SLUICECTL_OK;
}
