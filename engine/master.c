/*
 * master.c - the master process: reads conf.d, binds the listeners, forks
 * the workers and watches them, reloads on SIGHUP or a control command, and
 * answers the control socket.
 *
 * Reload: a new chain generation is built beside the running one; if it
 * fails, the old one keeps running and the error (file:line) is logged and
 * returned to the caller.  If it succeeds, new workers start on the same
 * listening sockets (kept open in the master across generations, so no
 * connection is refused) and the old workers get SIGTERM: they stop
 * accepting and finish their in-flight messages on the old configuration.
 *
 * A worker that dies is restarted, with a back-off when it dies young, so a
 * crashing stage cannot spin the machine.  The MTA keeps the messages the
 * dead worker had in flight (no 250 was given for them).
 *
 * SECURITY: the master keeps root (when started as root) to bind new
 * listeners on reload; it parses only conf.d and the control socket, which
 * is mode 0600 in the state directory (root:sluiceadm 0660 when the group
 * sluiceadm exists, for sluice-manager).  Workers drop privileges.
 */
#include "engine.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct listener {
    char *spec;
    int fd;
    int used; /* by the generation being built or current */
} listener;

typedef struct wproc {
    pid_t pid;
    unsigned gen;
    int number;
    int slot;
    double started;
    int stopping;
} wproc;

typedef struct master {
    char *confdir, *plugin_dir_ovr, *state_dir_ovr, *user_ovr;
    long long workers_ovr;
    chain *cur;
    unsigned gen;
    listener *ls;
    size_t nls;
    wproc *ws;
    size_t nws;
    stats_shm *shm;
    stats_stage retired[STATS_MAX_STAGES]; /* dead workers' totals */
    size_t nretired;
    uint64_t retired_messages; /* dead workers' messages and verdicts */
    uint64_t retired_verdicts[SLUICE_PENDING + 1];
    int ctl_fd;
    int ctl_client; /* connection being served, -1: none */
    char *ctl_path;
    int stopping;
    double stop_deadline;
    double started;
    double restart_at;  /* back-off: next respawn not before */
    int quick_deaths;
} master;

static int master_sigpipe[2] = {-1, -1};

static void master_on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;

    if (write(master_sigpipe[1], &c, 1) < 0) {
        /* pipe full: a signal of the same kind is already pending */
    }
    errno = saved;
}

static double master_wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- */
/* Listeners, kept across generations                               */

static int master_bind(const char *spec, buf *why)
{
    util_endpoint ep;
    int fd = -1, one = 1, rc;

    if (util_parse_endpoint(spec, &ep) < 0) {
        buf_printf(why, "'%s' is not an address", spec);
        return -1;
    }
    if (ep.is_unix) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, ep.path, strlen(ep.path) + 1);
        unlink(ep.path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
            chmod(ep.path, 0660) < 0 || listen(fd, 1024) < 0) {
            buf_printf(why, "cannot listen on %s: %s", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
    } else {
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        if ((rc = getaddrinfo(ep.host, ep.port, &hints, &ai)) != 0) {
            buf_printf(why, "cannot resolve %s: %s", spec, gai_strerror(rc));
            return -1;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fd >= 0 && ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, 1024) < 0) {
            buf_printf(why, "cannot listen on %s: %s", spec, strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
    }
    util_set_nonblock(fd);
    return fd;
}

static int master_listen_fn(void *arg, const char *spec, buf *why)
{
    master *m = arg;
    size_t i;
    int fd;

    for (i = 0; i < m->nls; i++) {
        if (strcmp(m->ls[i].spec, spec) == 0) {
            m->ls[i].used = 1;
            return m->ls[i].fd;
        }
    }
    if ((fd = master_bind(spec, why)) < 0)
        return -1;
    m->ls = util_realloc(m->ls, (m->nls + 1) * sizeof(*m->ls));
    m->ls[m->nls].spec = util_strdup(spec);
    m->ls[m->nls].fd = fd;
    m->ls[m->nls].used = 1;
    m->nls++;
    log_info("listening on %s", spec);
    return fd;
}

/* Close listeners the current generation does not use. */
static void master_gc_listeners(master *m)
{
    size_t i = 0;

    while (i < m->nls) {
        if (!m->ls[i].used) {
            log_info("no longer listening on %s", m->ls[i].spec);
            close(m->ls[i].fd);
            free(m->ls[i].spec);
            m->ls[i] = m->ls[--m->nls];
            continue;
        }
        i++;
    }
}

static chain *master_build(master *m, buf *err)
{
    size_t i;
    chain *ch;

    for (i = 0; i < m->nls; i++)
        m->ls[i].used = 0;
    ch = chain_load(m->confdir, m->plugin_dir_ovr, m->state_dir_ovr,
                    m->user_ovr,
                    master_listen_fn, m, m->gen + 1, err);
    if (ch == NULL) {
        /* keep what the running generation uses */
        for (i = 0; i < m->nls; i++)
            m->ls[i].used = 1;
        return NULL;
    }
    if (m->workers_ovr > 0)
        ch->ec.workers = m->workers_ovr;
    if (ch->ec.workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ch->ec.workers = n > 0 ? n : 1;
    }
    return ch;
}

/* ---------------------------------------------------------------- */
/* Workers                                                           */

static int master_free_slot(master *m)
{
    int i;

    for (i = 0; i < STATS_MAX_WORKERS; i++)
        if (m->shm->workers[i].pid == 0)
            return i;
    return -1;
}

static int master_spawn(master *m, int number)
{
    int slot = master_free_slot(m);
    pid_t pid;

    if (slot < 0) {
        log_error("no free worker slot (more than %d workers)",
                  STATS_MAX_WORKERS);
        return -1;
    }
    memset(&m->shm->workers[slot], 0, sizeof(m->shm->workers[slot]));
    m->shm->workers[slot].pid = -1; /* reserved */
    m->shm->workers[slot].gen = m->cur->gen;
    m->shm->workers[slot].started = master_wall();
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        m->shm->workers[slot].pid = 0;
        return -1;
    }
    if (pid == 0) {
        int rc;
        close(master_sigpipe[0]);
        close(master_sigpipe[1]);
        if (m->ctl_fd >= 0)
            close(m->ctl_fd);
        /* a reload forks while the control client waits for its reply:
         * a worker holding that socket would keep the client from ever
         * seeing the end of it */
        if (m->ctl_client >= 0)
            close(m->ctl_client);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        {
            /* SIGTERM/SIGQUIT stay blocked until the worker's loop
             * watches them: a reload right after this fork must stop the
             * worker gracefully, not kill it by the default action. */
            sigset_t stops;
            sigemptyset(&stops);
            sigaddset(&stops, SIGTERM);
            sigaddset(&stops, SIGQUIT);
            sigprocmask(SIG_SETMASK, &stops, NULL);
        }
        rc = worker_main(m->cur, &m->shm->workers[slot], number);
        _exit(rc);
    }
    m->shm->workers[slot].pid = pid;
    m->ws = util_realloc(m->ws, (m->nws + 1) * sizeof(*m->ws));
    m->ws[m->nws].pid = pid;
    m->ws[m->nws].gen = m->cur->gen;
    m->ws[m->nws].number = number;
    m->ws[m->nws].slot = slot;
    m->ws[m->nws].started = util_now();
    m->ws[m->nws].stopping = 0;
    m->nws++;
    log_info("started worker %d (pid %ld, generation %u)", number, (long)pid,
             m->cur->gen);
    return 0;
}

static void master_retire_stats(master *m, int slot)
{
    stats_worker *sw = &m->shm->workers[slot];
    size_t i, j;
    int c;

    m->retired_messages += sw->messages;
    for (c = 0; c <= SLUICE_PENDING; c++)
        m->retired_verdicts[c] += sw->verdicts[c];
    for (i = 0; i < sw->nstages && i < STATS_MAX_STAGES; i++) {
        stats_stage *src = &sw->stages[i], *dst = NULL;
        for (j = 0; j < m->nretired; j++)
            if (strcmp(m->retired[j].name, src->name) == 0)
                dst = &m->retired[j];
        if (dst == NULL) {
            if (m->nretired >= STATS_MAX_STAGES)
                continue;
            dst = &m->retired[m->nretired++];
            memset(dst, 0, sizeof(*dst));
            memcpy(dst->name, src->name, sizeof(dst->name));
        }
        dst->calls += src->calls;
        for (c = 0; c <= SLUICE_PENDING; c++)
            dst->verdicts[c] += src->verdicts[c];
        dst->timeouts += src->timeouts;
        dst->errors += src->errors;
        dst->time_ms += src->time_ms;
        for (c = 0; c < STATS_MAX_COUNTERS && src->counters[c].name[0]; c++)
            stats_counter_add(dst, src->counters[c].name,
                              src->counters[c].value);
    }
    memset(sw, 0, sizeof(*sw));
}

static int master_count_current(master *m)
{
    size_t i;
    int n = 0;

    for (i = 0; i < m->nws; i++)
        if (m->ws[i].gen == m->cur->gen && !m->ws[i].stopping)
            n++;
    return n;
}

/* Fill in missing workers of the current generation. */
static void master_top_up(master *m)
{
    int have, number, taken[65];
    size_t i;

    if (m->stopping || util_now() < m->restart_at)
        return;
    have = master_count_current(m);
    while (have < (int)m->cur->ec.workers) {
        memset(taken, 0, sizeof(taken));
        for (i = 0; i < m->nws; i++)
            if (m->ws[i].gen == m->cur->gen && m->ws[i].number <= 64)
                taken[m->ws[i].number] = 1;
        for (number = 1; number < 64 && taken[number]; number++)
            ;
        if (master_spawn(m, number) < 0)
            break;
        have++;
    }
}

static void master_reap(master *m)
{
    int status;
    pid_t pid;
    size_t i;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (i = 0; i < m->nws; i++)
            if (m->ws[i].pid == pid)
                break;
        if (i == m->nws)
            continue;
        if (WIFSIGNALED(status))
            log_msg(m->ws[i].stopping ? SLUICE_LOG_INFO : SLUICE_LOG_ERROR,
                    NULL, "worker %d (pid %ld) killed by signal %d%s",
                    m->ws[i].number, (long)pid, WTERMSIG(status),
                    m->stopping || m->ws[i].stopping
                        ? ""
                        : "; restarting (the MTA keeps its in-flight mail)");
        else if (WEXITSTATUS(status) != 0 || !m->ws[i].stopping)
            log_msg(m->ws[i].stopping ? SLUICE_LOG_INFO : SLUICE_LOG_WARN,
                    NULL, "worker %d (pid %ld) exited with status %d",
                    m->ws[i].number, (long)pid, WEXITSTATUS(status));
        else
            log_info("worker %d (pid %ld, generation %u) finished",
                     m->ws[i].number, (long)pid, m->ws[i].gen);
        if (!m->ws[i].stopping && !m->stopping) {
            if (util_now() - m->ws[i].started < 2.0) {
                double delay;
                m->quick_deaths++;
                delay = m->quick_deaths > 6 ? 10.0 : 0.2 * m->quick_deaths;
                m->restart_at = util_now() + delay;
                log_warn("worker died young; next start in %.1fs", delay);
            } else {
                m->quick_deaths = 0;
            }
        }
        master_retire_stats(m, m->ws[i].slot);
        m->ws[i] = m->ws[--m->nws];
    }
}

static void master_signal_workers(master *m, int sig, int old_only)
{
    size_t i;

    for (i = 0; i < m->nws; i++) {
        if (old_only && m->ws[i].gen == m->cur->gen)
            continue;
        if (sig == SIGTERM)
            m->ws[i].stopping = 1;
        kill(m->ws[i].pid, sig);
    }
}

/* ---------------------------------------------------------------- */
/* Reload                                                            */

/* 0 on success; -1 with the reason in *err (old generation kept). */
static int master_reload(master *m, buf *err)
{
    chain *ch, *old;

    log_info("reloading configuration from %s", m->confdir);
    ch = master_build(m, err);
    if (ch == NULL) {
        log_error("reload refused; generation %u keeps running:", m->gen);
        {
            char *copy = util_strdup(err->data), *line, *save = NULL;
            for (line = strtok_r(copy, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save))
                log_error("  %s", line);
            free(copy);
        }
        return -1;
    }
    log_set_level(ch->ec.log_level);
    old = m->cur;
    m->cur = ch;
    m->gen = ch->gen;
    m->restart_at = 0;
    m->quick_deaths = 0;
    master_top_up(m);
    master_signal_workers(m, SIGTERM, 1);
    master_gc_listeners(m);
    if (--old->refs == 0)
        chain_free(old);
    log_info("generation %u running (%lld workers, %zu stages)", m->gen,
             m->cur->ec.workers, m->cur->nstages);
    return 0;
}

/* ---------------------------------------------------------------- */
/* Control socket                                                    */

/* The group whose members may use the control socket (sluice-manager). */
#define MASTER_CONTROL_GROUP "sluiceadm"

static int master_control_open(master *m)
{
    struct sockaddr_un sun;
    struct passwd *pw;
    mode_t old;

    if (strlen(m->cur->ec.control_socket) >= sizeof(sun.sun_path)) {
        log_error("control socket path too long: %s",
                  m->cur->ec.control_socket);
        return -1;
    }
    if (mkdir(m->cur->ec.state_dir, 0750) < 0 && errno != EEXIST) {
        log_error("cannot create state directory %s: %s",
                  m->cur->ec.state_dir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && (pw = getpwnam(m->cur->ec.user)) != NULL) {
        if (chown(m->cur->ec.state_dir, pw->pw_uid, pw->pw_gid) < 0)
            log_warn("chown %s: %s", m->cur->ec.state_dir, strerror(errno));
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, m->cur->ec.control_socket,
           strlen(m->cur->ec.control_socket) + 1);
    unlink(sun.sun_path);
    m->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    old = umask(077);
    if (m->ctl_fd < 0 ||
        bind(m->ctl_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(m->ctl_fd, 16) < 0) {
        umask(old);
        log_error("control socket %s: %s", sun.sun_path, strerror(errno));
        if (m->ctl_fd >= 0)
            close(m->ctl_fd);
        m->ctl_fd = -1;
        return -1;
    }
    umask(old);
    chmod(sun.sun_path, 0600);
    /* sluice-manager (user sluice-manager, group sluiceadm) may connect:
     * root:sluiceadm 0660 when that group exists; the workers' user is
     * not in it */
    if (geteuid() == 0) {
        struct group *gr = getgrnam(MASTER_CONTROL_GROUP);
        if (gr != NULL) {
            if (chown(sun.sun_path, 0, gr->gr_gid) < 0 ||
                chmod(sun.sun_path, 0660) < 0)
                log_warn("control socket %s: group %s: %s", sun.sun_path,
                         MASTER_CONTROL_GROUP, strerror(errno));
        }
    }
    util_set_nonblock(m->ctl_fd);
    m->ctl_path = util_strdup(sun.sun_path);
    return 0;
}

static void master_control_client(master *m, int fd)
{
    char line[1024];
    size_t n = 0;
    double deadline = util_now() + 2.0;
    buf reply;

    /* read one line, briefly: this is a local admin socket */
    while (n < sizeof(line) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        int left = (int)((deadline - util_now()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        r = read(fd, line + n, sizeof(line) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(line, '\n', n))
            break;
    }
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    buf_init(&reply);
    m->ctl_client = fd;
    control_handle(m, line, &reply);
    m->ctl_client = -1;
    buf_addc(&reply, '\n');
    {
        size_t off = 0;
        while (off < reply.len) {
            struct pollfd p = {fd, POLLOUT, 0};
            ssize_t w;
            if (poll(&p, 1, 2000) <= 0)
                break;
            w = write(fd, reply.data + off, reply.len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    buf_free(&reply);
    close(fd);
}

/* Called by control.c. */
int master_do_reload(master *m, buf *err)
{
    return master_reload(m, err);
}

chain *master_chain(master *m)
{
    return m->cur;
}

const char *master_confdir(master *m)
{
    return m->confdir;
}

void master_status(master *m, buf *b);

/* ---------------------------------------------------------------- */
/* Main loop                                                         */

int master_main(const char *confdir, const char *plugin_dir,
                const char *state_dir, long long workers_override,
                const char *user_override)
{
    master m;
    buf err;
    struct sigaction sa;

    memset(&m, 0, sizeof(m));
    m.confdir = util_strdup(confdir);
    m.plugin_dir_ovr = plugin_dir ? util_strdup(plugin_dir) : NULL;
    m.state_dir_ovr = state_dir ? util_strdup(state_dir) : NULL;
    m.user_ovr = user_override ? util_strdup(user_override) : NULL;
    m.workers_ovr = workers_override;
    m.ctl_fd = -1;
    m.ctl_client = -1;
    m.started = master_wall();
    log_set_role("master");

    if (pipe2(master_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
        log_fatal("pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    m.shm = mmap(NULL, sizeof(stats_shm), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m.shm == MAP_FAILED)
        log_fatal("mmap of the statistics block: %s", strerror(errno));
    memset(m.shm, 0, sizeof(*m.shm));

    buf_init(&err);
    m.cur = master_build(&m, &err);
    if (m.cur == NULL) {
        fprintf(stderr, "%s", err.data);
        log_error("configuration error; not starting");
        buf_free(&err);
        free(m.confdir);
        free(m.plugin_dir_ovr);
        free(m.state_dir_ovr);
        free(m.user_ovr);
        return 1;
    }
    buf_free(&err);
    m.gen = m.cur->gen;
    log_init("sluiced", m.cur->ec.log_level, m.cur->ec.use_syslog);
    if (master_control_open(&m) < 0)
        return 1;
    log_info("sluice %s starting: %zu stages, %lld workers, control %s",
             SLUICE_VERSION, m.cur->nstages, m.cur->ec.workers, m.ctl_path);
    master_top_up(&m);

    for (;;) {
        struct pollfd p[2];
        int n, timeout = 1000;

        if (m.stopping && m.nws == 0)
            break;
        p[0].fd = master_sigpipe[0];
        p[0].events = POLLIN;
        p[1].fd = m.stopping ? -1 : m.ctl_fd;
        p[1].events = POLLIN;
        if (m.restart_at > util_now())
            timeout = (int)((m.restart_at - util_now()) * 1000) + 1;
        n = poll(p, 2, timeout);
        if (n < 0 && errno != EINTR)
            log_fatal("poll: %s", strerror(errno));
        if (n > 0 && (p[0].revents & POLLIN)) {
            unsigned char sigs[64];
            ssize_t r = read(master_sigpipe[0], sigs, sizeof(sigs));
            for (ssize_t i = 0; i < r; i++) {
                switch (sigs[i]) {
                case SIGCHLD:
                    master_reap(&m);
                    break;
                case SIGHUP:
                    if (!m.stopping) {
                        buf e;
                        buf_init(&e);
                        master_reload(&m, &e);
                        buf_free(&e);
                    }
                    break;
                case SIGTERM:
                case SIGINT:
                case SIGQUIT:
                    if (!m.stopping) {
                        log_info("stopping: workers finish in-flight mail "
                                 "(up to %.0fs)",
                                 m.cur->ec.shutdown_timeout);
                        m.stopping = 1;
                        m.stop_deadline =
                            util_now() + m.cur->ec.shutdown_timeout + 5;
                        master_signal_workers(&m, sigs[i] == SIGQUIT
                                                      ? SIGQUIT
                                                      : SIGTERM,
                                              0);
                    } else if (sigs[i] == SIGINT || sigs[i] == SIGQUIT) {
                        log_info("second stop request: stopping now");
                        master_signal_workers(&m, SIGKILL, 0);
                    }
                    break;
                }
            }
        }
        if (n > 0 && p[1].fd >= 0 && (p[1].revents & POLLIN)) {
            int c = accept4(m.ctl_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0)
                master_control_client(&m, c);
        }
        master_reap(&m);
        if (m.stopping && m.nws > 0 && util_now() > m.stop_deadline) {
            log_warn("workers still running past the deadline; killing");
            master_signal_workers(&m, SIGKILL, 0);
            m.stop_deadline = util_now() + 5;
        }
        master_top_up(&m);
    }
    if (m.ctl_path)
        unlink(m.ctl_path);
    log_info("stopped");
    {
        size_t i;
        for (i = 0; i < m.nls; i++) {
            util_endpoint ep;
            if (util_parse_endpoint(m.ls[i].spec, &ep) == 0 && ep.is_unix)
                unlink(ep.path);
            close(m.ls[i].fd);
            free(m.ls[i].spec);
        }
        free(m.ls);
    }
    chain_free(m.cur);
    free(m.ws);
    free(m.ctl_path);
    free(m.confdir);
    free(m.plugin_dir_ovr);
    free(m.state_dir_ovr);
    free(m.user_ovr);
    munmap(m.shm, sizeof(stats_shm));
    return 0;
}

/* ---------------------------------------------------------------- */
/* Status for control.c                                              */

static void master_stage_json(buf *b, const stats_stage *s)
{
    int c;
    static const char *vn[] = {"continue", "accept",     "reject", "tempfail",
                               "discard",  "quarantine", "pending"};

    buf_printf(b,
               "\"calls\":%llu,\"timeouts\":%llu,\"errors\":%llu,"
               "\"time_ms\":%.3f,\"avg_ms\":%.3f,\"verdicts\":{",
               (unsigned long long)s->calls, (unsigned long long)s->timeouts,
               (unsigned long long)s->errors, s->time_ms,
               s->calls ? s->time_ms / (double)s->calls : 0.0);
    for (c = 0; c <= SLUICE_PENDING; c++)
        buf_printf(b, "%s\"%s\":%llu", c ? "," : "", vn[c],
                   (unsigned long long)s->verdicts[c]);
    buf_adds(b, "},\"counters\":{");
    for (c = 0; c < STATS_MAX_COUNTERS && s->counters[c].name[0]; c++) {
        buf_printf(b, "%s", c ? "," : "");
        buf_json_str(b, s->counters[c].name);
        buf_printf(b, ":%lld", s->counters[c].value);
    }
    buf_adds(b, "}");
}

/* Totals per stage name over retired + live workers. */
static void master_sum_stage(master *m, const char *name, stats_stage *out)
{
    size_t i, j;
    int c;

    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    for (i = 0; i <= STATS_MAX_WORKERS; i++) {
        const stats_stage *src = NULL;
        if (i == STATS_MAX_WORKERS) {
            for (j = 0; j < m->nretired; j++)
                if (strcmp(m->retired[j].name, name) == 0)
                    src = &m->retired[j];
        } else if (m->shm->workers[i].pid > 0) {
            for (j = 0; j < m->shm->workers[i].nstages; j++)
                if (strcmp(m->shm->workers[i].stages[j].name, name) == 0)
                    src = &m->shm->workers[i].stages[j];
        }
        if (src == NULL)
            continue;
        out->calls += src->calls;
        out->timeouts += src->timeouts;
        out->errors += src->errors;
        out->time_ms += src->time_ms;
        for (c = 0; c <= SLUICE_PENDING; c++)
            out->verdicts[c] += src->verdicts[c];
        for (c = 0; c < STATS_MAX_COUNTERS && src->counters[c].name[0]; c++)
            stats_counter_add(out, src->counters[c].name,
                              src->counters[c].value);
    }
}

void master_stages_json(master *m, buf *b)
{
    size_t i;
    stats_stage sum;

    buf_adds(b, "[");
    for (i = 0; i < m->cur->nstages; i++) {
        struct sluice_ctx *s = m->cur->stages[i];
        master_sum_stage(m, s->name, &sum);
        buf_printf(b, "%s{\"position\":%zu,\"name\":", i ? "," : "", i + 1);
        buf_json_str(b, s->name);
        buf_adds(b, ",\"plugin\":");
        buf_json_str(b, s->path);
        buf_adds(b, ",\"description\":");
        buf_json_str(b, s->desc.description ? s->desc.description : "");
        buf_adds(b, ",\"version\":");
        buf_json_str(b, s->desc.version ? s->desc.version : "");
        buf_printf(b, ",\"abi\":\"%u.%u\",\"enabled\":%s,\"kind\":\"%s\","
                      "\"timeout\":%.3f,\"on_timeout\":\"%s\",",
                   s->desc.abi_major, s->desc.abi_minor,
                   s->common.enabled ? "true" : "false",
                   (s->desc.flags & SLUICE_STAGE_INGRESS) ? "ingress"
                   : (s->desc.flags & SLUICE_STAGE_FINAL) ? "final"
                                                          : "filter",
                   s->common.timeout, conf_verdict_name(s->common.on_timeout));
        buf_adds(b, "\"config\":");
        {
            char where[512];
            snprintf(where, sizeof(where), "%s:%d", s->file, s->line);
            buf_json_str(b, where);
        }
        buf_adds(b, ",");
        master_stage_json(b, &sum);
        buf_adds(b, "}");
    }
    buf_adds(b, "]");
}

void master_status(master *m, buf *b)
{
    size_t i;
    unsigned long long msgs = 0, active = 0;

    for (i = 0; i < STATS_MAX_WORKERS; i++) {
        if (m->shm->workers[i].pid > 0) {
            msgs += m->shm->workers[i].messages;
            active += m->shm->workers[i].active_txns;
        }
    }
    buf_printf(b,
               "\"version\":\"%s\",\"abi\":\"%d.%d\",\"pid\":%ld,"
               "\"uptime\":%.0f,\"generation\":%u,\"config_dir\":",
               SLUICE_VERSION, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR,
               (long)getpid(), master_wall() - m->started, m->gen);
    buf_json_str(b, m->confdir);
    buf_printf(b, ",\"hostname\":");
    buf_json_str(b, m->cur->ec.hostname);
    buf_printf(b,
               ",\"workers_configured\":%lld,\"messages_live_workers\":%llu,"
               "\"in_flight\":%llu,\"workers\":[",
               m->cur->ec.workers, msgs, active);
    for (i = 0; i < m->nws; i++) {
        stats_worker *sw = &m->shm->workers[m->ws[i].slot];
        buf_printf(b,
                   "%s{\"number\":%d,\"pid\":%ld,\"generation\":%u,"
                   "\"state\":\"%s\",\"uptime\":%.0f,\"messages\":%llu,"
                   "\"in_flight\":%llu}",
                   i ? "," : "", m->ws[i].number, (long)m->ws[i].pid,
                   m->ws[i].gen, m->ws[i].stopping ? "stopping" : "running",
                   master_wall() - sw->started,
                   (unsigned long long)sw->messages,
                   (unsigned long long)sw->active_txns);
    }
    buf_adds(b, "],\"stages\":");
    master_stages_json(m, b);
}

/* "pid":P,"messages":N,"verdicts":{...}: every message since the master
 * started (live and retired workers) and its final verdict, for `stats`. */
void master_totals_json(master *m, buf *b)
{
    static const char *vn[] = {"continue", "accept",     "reject", "tempfail",
                               "discard",  "quarantine", "pending"};
    uint64_t msgs = m->retired_messages, v[SLUICE_PENDING + 1];
    size_t i;
    int c;

    memcpy(v, m->retired_verdicts, sizeof(v));
    for (i = 0; i < STATS_MAX_WORKERS; i++) {
        if (m->shm->workers[i].pid <= 0)
            continue;
        msgs += m->shm->workers[i].messages;
        for (c = 0; c <= SLUICE_PENDING; c++)
            v[c] += m->shm->workers[i].verdicts[c];
    }
    buf_printf(b, "\"pid\":%ld,\"messages\":%llu,\"verdicts\":{",
               (long)getpid(), (unsigned long long)msgs);
    for (c = 0; c <= SLUICE_PENDING; c++)
        buf_printf(b, "%s\"%s\":%llu", c ? "," : "", vn[c],
                   (unsigned long long)v[c]);
    buf_adds(b, "}");
}
