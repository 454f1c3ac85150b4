/*
 * main.c - sluice-manager, the administrators' web interface (HTTPS).
 *
 *   sluice-manager [-c CONFDIR] [-S STATE_DIR] [-d DSN] [-s CONTROL_SOCKET]
 *                  [-l ADDR:PORT] [-w WWW_DIR] [-u USER] [-n] [-t] [-V]
 *
 * Reads the `manager` section of conf.d (keys in main_directives; options
 * on the command line win) and, from the engine section, state_dir and
 * control_socket.  Runs in the foreground (-n is accepted for symmetry)
 * until SIGTERM or SIGINT; -t checks the configuration and exits.
 *
 * Start-up order: configuration, listening socket, certificate (made under
 * STATE_DIR/manager/ when none is configured), TLS context (the key is
 * read here), then, when started as root, privileges are dropped to
 * `user` (default sluice-manager: it must exist; `user root` keeps root,
 * with a warning) before any request is read.
 *
 * Diagnostics: configuration errors name file:line and exit 1; a missing
 * user, an unusable certificate or a listen address in use exit 1.
 *
 * SECURITY: network-facing; nothing is parsed from the network before the
 * privileges are dropped.  The database DSN may hold a password: it is
 * never logged.
 */
#include "conf.h"
#include "log.h"
#include "mgr_int.h"
#include "mgr_server.h"
#include "mgr_tls.h"
#include "pgpool.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MC(f) offsetof(mgr_conf, f)
static const sluice_directive main_directives[] = {
    {"listen", SLUICE_CONF_STRING, MC(listen), "127.0.0.1:18080", 0, 0, NULL,
     "HTTPS listen address, host:port or [v6]:port"},
    {"certificate", SLUICE_CONF_STRING, MC(certificate), NULL, 0, 0, NULL,
     "PEM certificate (chain); unset: self-signed in STATE_DIR/manager"},
    {"key", SLUICE_CONF_STRING, MC(key), NULL, 0, 0, NULL,
     "PEM private key of the certificate"},
    {"www_dir", SLUICE_CONF_STRING, MC(www_dir), NULL, 0, 0, NULL,
     "the front end's files"},
    {"database", SLUICE_CONF_STRING, MC(database), NULL, 0, 0, NULL,
     "libpq DSN; unset: $SLUICE_DB, else the private instance"},
    {"control_socket", SLUICE_CONF_STRING, MC(control_socket), NULL, 0, 0, NULL,
     "the engine's control socket; unset: the engine's"},
    {"user", SLUICE_CONF_STRING, MC(user), "sluice-manager", 0, 0, NULL,
     "user to run as when started as root"},
    {"session_timeout", SLUICE_CONF_DURATION, MC(session_timeout), "30m", 0, 0,
     NULL, "idle time after which a session ends"},
    {"login_max_failures", SLUICE_CONF_INT, MC(login_max_failures), "5", 1,
     1000, NULL, "bad passwords in a row that lock an account"},
    {"login_lockout", SLUICE_CONF_DURATION, MC(login_lockout), "15m", 0, 0,
     NULL, "how long a locked account (or address) is refused"},
    {"max_connections", SLUICE_CONF_INT, MC(max_connections), "256", 1, 100000,
     NULL, "simultaneous HTTPS connections"},
    {"idle_timeout", SLUICE_CONF_DURATION, MC(idle_timeout), "60s", 0, 0, NULL,
     "idle keep-alive connections are closed after this"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct main_opts {
    const char *confdir, *state, *dsn, *socket, *listen, *www, *user;
    int check;
} main_opts;

static void main_usage(FILE *fp)
{
    fprintf(fp,
            "usage: sluice-manager [-c CONFDIR] [-S STATE_DIR] [-d DSN] "
            "[-s CONTROL_SOCKET]\n"
            "                      [-l ADDR:PORT] [-w WWW_DIR] [-u USER] "
            "[-n] [-t] [-V]\n"
            "  -c  configuration directory (default %s)\n"
            "  -S  state directory (default: the engine's state_dir)\n"
            "  -d  PostgreSQL DSN (default: database, $SLUICE_DB, the "
            "private instance)\n"
            "  -s  engine control socket (default STATE_DIR/control.sock)\n"
            "  -l  HTTPS listen address (default 127.0.0.1:18080)\n"
            "  -w  front end directory (default %s)\n"
            "  -u  user to run as when started as root (default "
            "sluice-manager)\n"
            "  -n  foreground (always)\n"
            "  -t  check the configuration and exit\n"
            "  -V  print the version and exit\n",
            SLUICE_DEFAULT_CONF_DIR, SLUICE_MGR_DEFAULT_WWW);
}

static void main_set(char **dst, const char *v)
{
    if (v == NULL)
        return;
    free(*dst);
    *dst = util_strdup(v);
}

/* The engine section's value for key, or NULL. */
static const char *main_engine_opt(conf_tree *t, const char *key)
{
    const char *v = NULL;
    size_t i, j;

    for (i = 0; i < t->nsecs; i++) {
        if (!t->secs[i].is_engine)
            continue;
        for (j = 0; j < t->secs[i].nopts; j++)
            if (strcmp(t->secs[i].opts[j].key, key) == 0)
                v = t->secs[i].opts[j].value;
    }
    return v && *v ? v : NULL;
}

static int main_is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int main_config(mgr *m, const main_opts *o)
{
    conf_tree t;
    conf_section all;
    buf err;
    int errors;
    size_t i, j;
    const char *v;

    buf_init(&err);
    errors = conf_read_dir(o->confdir, &t, &err);
    memset(&all, 0, sizeof(all));
    all.file = t.nfiles ? t.files[0] : (char *)o->confdir;
    all.line = 1;
    for (i = 0; i < t.nextra; i++) {
        all.file = t.extra[i].file;
        all.line = t.extra[i].line;
        all.opts = util_realloc(all.opts, (all.nopts + t.extra[i].nopts + 1) *
                                              sizeof(conf_opt));
        for (j = 0; j < t.extra[i].nopts; j++)
            all.opts[all.nopts++] = t.extra[i].opts[j];
    }
    errors +=
        conf_apply(main_directives, &m->c, &all, "manager", NULL, NULL, &err);
    errors += conf_check_unused(&all, "manager", &err);
    if (m->c.login_lockout < 1 || m->c.session_timeout < 1) {
        buf_printf(&err,
                   "%s:%d: manager: login_lockout and session_timeout "
                   "must be at least 1s\n",
                   all.file, all.line);
        errors++;
    }
    free(all.opts);
    /* the engine's state directory and control socket */
    m->conf_dir = util_strdup(o->confdir);
    v = o->state ? o->state : main_engine_opt(&t, "state_dir");
    m->state_dir = util_strdup(v ? v : "/var/lib/sluice");
    if (m->state_dir[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd)) != NULL) {
            char *abs = util_printf("%s/%s", cwd, m->state_dir);
            free(m->state_dir);
            m->state_dir = abs;
        }
    }
    v = o->socket ? o->socket : m->c.control_socket;
    if (v == NULL)
        v = main_engine_opt(&t, "control_socket");
    m->control_path =
        v ? util_strdup(v) : util_printf("%s/control.sock", m->state_dir);
    conf_tree_free(&t);
    main_set(&m->c.listen, o->listen);
    main_set(&m->c.user, o->user);
    main_set(&m->c.www_dir, o->www);
    /* the database */
    v = o->dsn ? o->dsn : m->c.database;
    if (v == NULL)
        v = getenv("SLUICE_DB");
    if (v != NULL && *v) {
        m->dsn = util_strdup(v);
    } else {
        char dsn[8192];
        if (pgpool_private_dsn(m->state_dir, dsn, sizeof(dsn)) < 0) {
            buf_printf(&err, "state directory path too long\n");
            errors++;
        } else {
            /* `sluice-pg -m USER` gave the manager's user a passfile of
             * its own (libpq ignores group-readable ones) */
            char mp[4200];
            size_t dl = strlen(dsn);
            struct stat st;
            snprintf(mp, sizeof(mp), "%s/pg/pgpass.manager", m->state_dir);
            if (stat(mp, &st) == 0 && dl > 11 &&
                strcmp(dsn + dl - 11, "/pg/pgpass'") == 0 &&
                dl + 9 < sizeof(dsn)) {
                memcpy(dsn + dl - 1, ".manager'", 10);
            }
            m->dsn = util_strdup(dsn);
        }
    }
    /* the front end: configured, else installed, else the source tree's */
    if (m->c.www_dir)
        m->www_dir = util_strdup(m->c.www_dir);
    else if (main_is_dir(SLUICE_MGR_DEFAULT_WWW) ||
             !main_is_dir(SLUICE_MGR_SOURCE_WWW))
        m->www_dir = util_strdup(SLUICE_MGR_DEFAULT_WWW);
    else
        m->www_dir = util_strdup(SLUICE_MGR_SOURCE_WWW);
    if ((m->c.certificate == NULL) != (m->c.key == NULL)) {
        buf_printf(&err,
                   "%s: manager: set both certificate and key, or "
                   "neither\n",
                   o->confdir);
        errors++;
    }
    if (errors)
        fprintf(stderr, "%s", err.data);
    buf_free(&err);
    return errors ? -1 : 0;
}

static int main_listen(const char *spec)
{
    util_endpoint ep;
    struct addrinfo hints, *ai = NULL;
    int fd, one = 1, rc;

    if (util_parse_endpoint(spec, &ep) < 0 || ep.is_unix) {
        log_error("listen %s: not host:port or [v6]:port", spec);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(ep.host, ep.port, &hints, &ai)) != 0) {
        log_error("listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        log_error("listen %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int main_drop(const struct passwd *pw)
{
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        initgroups(pw->pw_name, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("cannot drop privileges to %s: %s", pw->pw_name,
                  strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        log_error("privileges were not dropped: setuid(0) still works");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    main_opts o;
    mgr *m;
    int c, lfd, rc = 1;
    struct passwd *pw = NULL;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    char cert[4200], key[4200], err[1024];
    SSL_CTX *ctx = NULL;

    memset(&o, 0, sizeof(o));
    o.confdir = SLUICE_DEFAULT_CONF_DIR;
    log_init("sluice-manager", SLUICE_LOG_INFO, 0);
    log_set_role("sluice-manager");
    while ((c = getopt(argc, argv, "c:S:d:s:l:w:u:ntVh")) != -1) {
        switch (c) {
        case 'c':
            o.confdir = optarg;
            break;
        case 'S':
            o.state = optarg;
            break;
        case 'd':
            o.dsn = optarg;
            break;
        case 's':
            o.socket = optarg;
            break;
        case 'l':
            o.listen = optarg;
            break;
        case 'w':
            o.www = optarg;
            break;
        case 'u':
            o.user = optarg;
            break;
        case 'n':
            break;
        case 't':
            o.check = 1;
            break;
        case 'V':
            printf("sluice-manager %s\n", SLUICE_VERSION);
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
    m = util_calloc(1, sizeof(*m));
    if (main_config(m, &o) < 0)
        goto out;
    if (o.check) {
        printf("sluice-manager: configuration ok (listen %s, state %s)\n",
               m->c.listen, m->state_dir);
        rc = 0;
        goto out;
    }
    if (geteuid() == 0 && strcmp(m->c.user, "root") != 0) {
        if ((pw = getpwnam(m->c.user)) == NULL) {
            log_error("user '%s' does not exist: create it (./build.sh run "
                      "does: useradd --system -g sluiceadm sluice-manager) "
                      "or name another with 'user' / -u",
                      m->c.user);
            goto out;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    } else if (geteuid() == 0) {
        log_warn("user root: privileges are NOT dropped");
    }
    if ((lfd = main_listen(m->c.listen)) < 0)
        goto out;
    if (m->c.certificate) {
        snprintf(cert, sizeof(cert), "%s", m->c.certificate);
        snprintf(key, sizeof(key), "%s", m->c.key);
    } else {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/manager", m->state_dir);
        if (mgr_tls_ensure_cert(dir, uid, gid, cert, key, sizeof(cert), err,
                                sizeof(err)) < 0) {
            log_error("%s", err);
            close(lfd);
            goto out;
        }
    }
    if ((ctx = mgr_tls_context(cert, key, err, sizeof(err))) == NULL) {
        log_error("%s", err);
        close(lfd);
        goto out;
    }
    if (pw != NULL && main_drop(pw) < 0) {
        close(lfd);
        goto out;
    }
    if (mgr_init(m) < 0) {
        close(lfd);
        goto out;
    }
    /* listening only now: whoever sees the port open finds the final,
     * unprivileged process ready */
    if (listen(lfd, 128) < 0) {
        log_error("listen %s: %s", m->c.listen, strerror(errno));
        close(lfd);
        goto out;
    }
    log_info("sluice-manager %s on https://%s/ (www %s, state %s, user %s)",
             SLUICE_VERSION, m->c.listen, m->www_dir, m->state_dir,
             pw ? pw->pw_name : "unchanged");
    rc = mgr_server_run(m, ctx, lfd);
    close(lfd);
    log_info("stopped");
out:
    SSL_CTX_free(ctx);
    mgr_free(m);
    conf_release(main_directives, &m->c);
    free(m->conf_dir);
    free(m->state_dir);
    free(m->control_path);
    free(m->dsn);
    free(m->www_dir);
    free(m);
    return rc;
}
