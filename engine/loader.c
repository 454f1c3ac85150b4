/*
 * loader.c - builds a chain generation from conf.d: the engine section, then
 * each stage section in order: load the plugin with libltdl, check its ABI
 * version, parse its options with its directive table, and call init().
 *
 * Diagnostics: every refusal is appended to *err with the file:line of the
 * stage's section and, for ABI problems, the plugin file and both versions.
 * A chain is built whole or not at all.
 *
 * SECURITY: runs in the master (root) at start and on reload.  Plugins are
 * code the operator chose to run; the plugin directory must not be writable
 * by the unprivileged user.
 */
#include "engine.h"
#include "dns.h"
#include "log.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const loader_log_levels[] = {"debug", "info", "warning",
                                                "error", NULL};

#define EC(f) offsetof(engine_conf, f)
const sluice_directive engine_directives[] = {
    {"workers", SLUICE_CONF_INT, EC(workers), "0", 0, 64, NULL,
     "worker processes; 0 means one per core"},
    {"user", SLUICE_CONF_STRING, EC(user), "sluice", 0, 0, NULL,
     "unprivileged user the workers run as (when started as root)"},
    {"plugin_dir", SLUICE_CONF_STRING, EC(plugin_dir),
     SLUICE_DEFAULT_PLUGIN_DIR, 0, 0, NULL, "where stage NAME.so files are"},
    {"state_dir", SLUICE_CONF_STRING, EC(state_dir), "/var/lib/sluice", 0, 0,
     NULL, "runtime state: control socket, private database"},
    {"control_socket", SLUICE_CONF_STRING, EC(control_socket), "", 0, 0, NULL,
     "control socket path; default STATE_DIR/control.sock"},
    {"max_message_size", SLUICE_CONF_SIZE, EC(max_message_size), "50M", 1024,
     0, NULL, "largest message accepted, in bytes"},
    {"max_mime_parts", SLUICE_CONF_INT, EC(max_mime_parts), "1000", 1, 100000,
     NULL, "MIME parts parsed per message"},
    {"max_mime_depth", SLUICE_CONF_INT, EC(max_mime_depth), "20", 1, 100, NULL,
     "MIME nesting depth parsed"},
    {"max_header_count", SLUICE_CONF_INT, EC(max_header_count), "1000", 1,
     100000, NULL, "header fields parsed per header block"},
    {"max_header_length", SLUICE_CONF_SIZE, EC(max_header_length), "64k", 1000,
     0, NULL, "longest header field parsed, folds included"},
    {"log_level", SLUICE_CONF_ENUM, EC(log_level), "info", 0, 0,
     loader_log_levels, "debug, info, warning or error"},
    {"syslog", SLUICE_CONF_BOOL, EC(use_syslog), "yes", 0, 0, NULL,
     "also log to syslog (facility mail)"},
    {"hostname", SLUICE_CONF_STRING, EC(hostname), "", 0, 0, NULL,
     "name used in greetings and headers; default: the system's"},
    {"shutdown_timeout", SLUICE_CONF_DURATION, EC(shutdown_timeout), "60s", 1,
     3600, NULL, "how long stopping workers may finish in-flight mail"},
    {"stage_timeout", SLUICE_CONF_DURATION, EC(default_timeout), "60s", 0,
     86400, NULL, "default per-stage timeout"},
    {"dns_servers", SLUICE_CONF_STRLIST, EC(dns_servers), NULL, 0, 0, NULL,
     "DNS servers, ip or ip:port ([v6]:port); default: /etc/resolv.conf"},
    {"dns_timeout", SLUICE_CONF_DURATION, EC(dns_timeout), "2s", 0, 60, NULL,
     "DNS timeout of one try (c-ares doubles it on each round)"},
    {"dns_tries", SLUICE_CONF_INT, EC(dns_tries), "2", 1, 10, NULL,
     "DNS tries per server"},
    {"dns_cache_size", SLUICE_CONF_INT, EC(dns_cache_size), "10000", 0,
     10000000, NULL, "DNS answers cached per worker; 0: no cache"},
    {"database", SLUICE_CONF_STRING, EC(database), "", 0, 0, NULL,
     "PostgreSQL (libpq DSN) of the stages without their own `database`; "
     "default: the private instance in state_dir"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

#define SC(f) offsetof(stage_common, f)
static const sluice_directive loader_common[] = {
    {"plugin", SLUICE_CONF_STRING, SC(plugin), NULL, 0, 0, NULL,
     "plugin name or path; default: the stage name"},
    {"enabled", SLUICE_CONF_BOOL, SC(enabled), "yes", 0, 0, NULL,
     "run this stage"},
    {"timeout", SLUICE_CONF_DURATION, SC(timeout), NULL, 0, 86400, NULL,
     "how long a pending hook may take"},
    {"on_timeout", SLUICE_CONF_VERDICT, SC(on_timeout), "tempfail", 0, 0, NULL,
     "verdict when the stage times out"},
    {"on_error", SLUICE_CONF_VERDICT, SC(on_error), "tempfail", 0, 0, NULL,
     "verdict when the stage fails"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int loader_ltdl_ready;
static char *loader_database_ovr; /* sluiced -D, set once at start */

void chain_database_override(const char *dsn)
{
    free(loader_database_ovr);
    loader_database_ovr = dsn ? util_strdup(dsn) : NULL;
}

static void loader_stage_free(struct sluice_ctx *s)
{
    if (s == NULL)
        return;
    if (s->inited && s->desc.fini)
        s->desc.fini(s->inst);
    if (s->conf) {
        conf_release(s->desc.directives, s->conf);
        free(s->conf);
    }
    conf_release(loader_common, &s->common);
    if (s->handle)
        lt_dlclose(s->handle);
    free(s->name);
    free(s->path);
    free(s);
}

/* Which sluice_stage_vN does this file export, if not v1? */
static int loader_other_major(lt_dlhandle h)
{
    char sym[32];
    int v;

    for (v = 0; v <= 9; v++) {
        if (v == SLUICE_ABI_MAJOR)
            continue;
        snprintf(sym, sizeof(sym), "sluice_stage_v%d", v);
        if (lt_dlsym(h, sym) != NULL)
            return v;
    }
    return -1;
}

/* Load and check one stage; NULL with *err on refusal. */
static struct sluice_ctx *loader_stage(chain *ch, conf_section *sec,
                                       const char *plugin_dir,
                                       conf_listen_fn listen_fn,
                                       void *listen_arg, buf *err)
{
    struct sluice_ctx *s = util_calloc(1, sizeof(*s));
    const sluice_stage *d;
    char what[96];
    size_t minsize = offsetof(sluice_stage, on_close) +
                     sizeof(((sluice_stage *)0)->on_close);
    int errors;

    s->name = util_strdup(sec->name);
    s->file = sec->file;
    s->line = sec->line;
    s->chain = ch;
    snprintf(what, sizeof(what), "stage '%s'", sec->name);
    if (conf_apply(loader_common, &s->common, sec, what, NULL, NULL, err))
        goto fail;
    if (s->common.timeout <= 0)
        s->common.timeout = ch->ec.default_timeout;
    {
        const char *p = s->common.plugin ? s->common.plugin : sec->name;
        if (strchr(p, '/'))
            s->path = util_strdup(p);
        else
            s->path = util_printf("%s/%s.so", plugin_dir, p);
    }
    if (access(s->path, R_OK) < 0) {
        buf_printf(err, "%s:%d: %s: cannot load %s: %s\n", sec->file,
                   sec->line, what, s->path, strerror(errno));
        goto fail;
    }
    if ((s->handle = lt_dlopen(s->path)) == NULL) {
        buf_printf(err, "%s:%d: %s: cannot load %s: %s\n", sec->file,
                   sec->line, what, s->path, lt_dlerror());
        goto fail;
    }
    if ((d = lt_dlsym(s->handle, SLUICE_STAGE_SYMBOL_NAME)) == NULL) {
        int other = loader_other_major(s->handle);
        if (other >= 0)
            buf_printf(err,
                       "%s:%d: %s: %s is built for stage ABI %d.x; this "
                       "engine speaks ABI %d.%d\n",
                       sec->file, sec->line, what, s->path, other,
                       SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
        else
            buf_printf(err,
                       "%s:%d: %s: %s does not export %s: not a sluice "
                       "stage\n",
                       sec->file, sec->line, what, s->path,
                       SLUICE_STAGE_SYMBOL_NAME);
        goto fail;
    }
    if (d->abi_major != SLUICE_ABI_MAJOR) {
        buf_printf(err,
                   "%s:%d: %s: %s declares stage ABI %u.%u; this engine "
                   "speaks ABI %d.%d\n",
                   sec->file, sec->line, what, s->path, d->abi_major,
                   d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
        goto fail;
    }
    if (d->abi_minor > SLUICE_ABI_MINOR) {
        buf_printf(err,
                   "%s:%d: %s: %s needs stage ABI %u.%u, newer than this "
                   "engine's %d.%d: upgrade sluice or rebuild the stage\n",
                   sec->file, sec->line, what, s->path, d->abi_major,
                   d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
        goto fail;
    }
    if (d->size < minsize) {
        buf_printf(err,
                   "%s:%d: %s: %s has a stage descriptor of %u bytes, "
                   "smaller than ABI %d.0's %zu: corrupt or not built "
                   "against <sluice/stage.h>\n",
                   sec->file, sec->line, what, s->path, d->size,
                   SLUICE_ABI_MAJOR, minsize);
        goto fail;
    }
    memset(&s->desc, 0, sizeof(s->desc));
    memcpy(&s->desc, d, d->size < sizeof(s->desc) ? d->size : sizeof(s->desc));
    if (s->desc.name == NULL || s->desc.name[0] == '\0') {
        buf_printf(err, "%s:%d: %s: %s has no name in its descriptor\n",
                   sec->file, sec->line, what, s->path);
        goto fail;
    }
    s->conf = util_calloc(1, s->desc.conf_size ? s->desc.conf_size : 1);
    errors = conf_apply(s->desc.directives, s->conf, sec, what, listen_fn,
                        listen_arg, err);
    errors += conf_check_unused(sec, what, err);
    if (errors)
        goto fail;
    return s;
fail:
    loader_stage_free(s);
    return NULL;
}

static void loader_default_limits(chain *ch)
{
    mime_limits_default(&ch->limits);
    ch->limits.max_parts = (size_t)ch->ec.max_mime_parts;
    ch->limits.max_depth = (int)ch->ec.max_mime_depth;
    ch->limits.max_header_count = (size_t)ch->ec.max_header_count;
    ch->limits.max_header_len = ch->ec.max_header_length;
}

chain *chain_load(const char *confdir, const char *plugin_dir_override,
                  const char *state_dir_override,
                  const char *user_override, conf_listen_fn listen_fn,
                  void *listen_arg, unsigned gen, buf *err)
{
    chain *ch = util_calloc(1, sizeof(*ch));
    conf_section engine_sec, *es = NULL;
    size_t i, j;
    int errors = 0;

    ch->gen = gen;
    ch->refs = 1;
    if (!loader_ltdl_ready) {
        if (lt_dlinit() != 0) {
            buf_printf(err, "libltdl: %s\n", lt_dlerror());
            free(ch);
            return NULL;
        }
        loader_ltdl_ready = 1;
    }
    if (conf_read_dir(confdir, &ch->tree, err) != 0)
        goto fail;

    /* Engine options: every engine section counts, in order. */
    memset(&engine_sec, 0, sizeof(engine_sec));
    engine_sec.file = ch->tree.nfiles ? ch->tree.files[0] : (char *)confdir;
    engine_sec.line = 1;
    for (i = 0; i < ch->tree.nsecs; i++) {
        conf_section *s = &ch->tree.secs[i];
        if (!s->is_engine)
            continue;
        es = s;
        engine_sec.opts = util_realloc(engine_sec.opts,
                                       (engine_sec.nopts + s->nopts + 1) *
                                           sizeof(conf_opt));
        for (j = 0; j < s->nopts; j++)
            engine_sec.opts[engine_sec.nopts++] = s->opts[j];
    }
    if (es) {
        engine_sec.file = es->file;
        engine_sec.line = es->line;
    }
    errors += conf_apply(engine_directives, &ch->ec, &engine_sec, "engine",
                         NULL, NULL, err);
    errors += conf_check_unused(&engine_sec, "engine", err);
    if (ch->ec.dns_timeout <= 0)
        ch->ec.dns_timeout = 0.001;
    {
        buf why;
        const char *f = engine_sec.file;
        int l = engine_sec.line;
        buf_init(&why);
        for (j = 0; j < engine_sec.nopts; j++) {
            if (strcmp(engine_sec.opts[j].key, "dns_servers") == 0) {
                f = engine_sec.opts[j].file; /* name the option's line */
                l = engine_sec.opts[j].line;
            }
        }
        if (dns_servers_check(ch->ec.dns_servers, &why) < 0) {
            buf_printf(err, "%s:%d: engine: %s\n", f, l, why.data);
            errors++;
        }
        buf_free(&why);
    }
    free(engine_sec.opts);
    if (errors)
        goto fail;
    if (plugin_dir_override) {
        free(ch->ec.plugin_dir);
        ch->ec.plugin_dir = util_strdup(plugin_dir_override);
    }
    if (state_dir_override) {
        free(ch->ec.state_dir);
        ch->ec.state_dir = util_strdup(state_dir_override);
    }
    if (ch->ec.state_dir[0] != '/') { /* stages get it absolute */
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd)) != NULL) {
            char *abs = util_printf("%s/%s", cwd, ch->ec.state_dir);
            free(ch->ec.state_dir);
            ch->ec.state_dir = abs;
        }
    }
    if (ch->ec.control_socket == NULL || ch->ec.control_socket[0] == '\0') {
        free(ch->ec.control_socket);
        ch->ec.control_socket = util_printf("%s/control.sock",
                                            ch->ec.state_dir);
    }
    if (ch->ec.hostname == NULL || ch->ec.hostname[0] == '\0') {
        char hn[256];
        if (gethostname(hn, sizeof(hn)) < 0)
            snprintf(hn, sizeof(hn), "localhost");
        hn[sizeof(hn) - 1] = '\0';
        free(ch->ec.hostname);
        ch->ec.hostname = util_strdup(hn);
    }
    if (loader_database_ovr) {
        free(ch->ec.database);
        ch->ec.database = util_strdup(loader_database_ovr);
    }
    if (user_override) {
        free(ch->ec.user);
        ch->ec.user = util_strdup(user_override);
    }
    if (geteuid() == 0 && getpwnam(ch->ec.user) == NULL) {
        buf_printf(err,
                   "%s:%d: engine: user '%s' does not exist (create it, or "
                   "name another with 'user')\n",
                   engine_sec.file, engine_sec.line, ch->ec.user);
        errors++; /* go on: report the stages' errors too */
    }
    loader_default_limits(ch);

    /* Stages, in order; names unique. */
    for (i = 0; i < ch->tree.nsecs; i++) {
        conf_section *s = &ch->tree.secs[i];
        struct sluice_ctx *st;

        if (s->is_engine)
            continue;
        for (j = 0; j < ch->nstages; j++) {
            if (strcmp(ch->stages[j]->name, s->name) == 0) {
                buf_printf(err,
                           "%s:%d: stage '%s' is already defined at %s:%d\n",
                           s->file, s->line, s->name, ch->stages[j]->file,
                           ch->stages[j]->line);
                errors++;
                break;
            }
        }
        if (j < ch->nstages)
            continue;
        if (ch->nstages >= STATS_MAX_STAGES) {
            buf_printf(err, "%s:%d: more than %d stages\n", s->file, s->line,
                       STATS_MAX_STAGES);
            errors++;
            break;
        }
        st = loader_stage(ch, s, ch->ec.plugin_dir, listen_fn, listen_arg,
                          err);
        if (st == NULL) {
            errors++;
            continue;
        }
        st->index = (int)ch->nstages;
        ch->stages = util_realloc(ch->stages,
                                  (ch->nstages + 1) * sizeof(*ch->stages));
        ch->stages[ch->nstages++] = st;
    }
    if (errors)
        goto fail;

    /* init() in order; a failure refuses the whole chain. */
    for (i = 0; i < ch->nstages; i++) {
        struct sluice_ctx *st = ch->stages[i];
        if (st->desc.init == NULL) {
            st->inited = 1;
            continue;
        }
        if (st->desc.init(st, &host_table, st->conf, &st->inst) != 0) {
            buf_printf(err, "%s:%d: stage '%s': initialisation failed (see "
                            "the log above)\n",
                       st->file, st->line, st->name);
            goto fail;
        }
        st->inited = 1;
    }
    return ch;
fail:
    chain_free(ch);
    return NULL;
}

void chain_free(chain *ch)
{
    size_t i;

    if (ch == NULL)
        return;
    for (i = ch->nstages; i > 0; i--)
        loader_stage_free(ch->stages[i - 1]);
    free(ch->stages);
    conf_release(engine_directives, &ch->ec);
    conf_tree_free(&ch->tree);
    free(ch);
}

struct sluice_ctx *chain_find(chain *ch, const char *name)
{
    size_t i;

    for (i = 0; i < ch->nstages; i++)
        if (strcmp(ch->stages[i]->name, name) == 0)
            return ch->stages[i];
    return NULL;
}
