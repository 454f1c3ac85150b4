/*
 * worker.c - one worker process: a libev loop that runs the chain for many
 * messages at once.  Started by the master after fork with a chain
 * generation; drops privileges, starts every stage's worker side (the
 * ingress starts accepting on the listeners the master bound), and runs
 * until its loop has nothing left to do.
 *
 * Signals: SIGTERM asks for a graceful stop (stop accepting, finish in-flight
 * messages, then exit; after shutdown_timeout, stop hard); SIGQUIT stops at
 * once; SIGINT is ignored (the master decides).  The worker dies with the
 * master (PR_SET_PDEATHSIG), and then the MTA keeps what was in flight.
 *
 * SECURITY: runs as the unprivileged user; every byte it handles comes
 * from the network.
 */
#include "engine.h"
#include "dns.h"
#include "log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void worker_runq_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    worker_runq_process(w->data);
}

static void worker_stop_stages(worker *w, int graceful)
{
    size_t i;

    for (i = 0; i < w->ch->nstages; i++) {
        struct sluice_ctx *s = w->ch->stages[i];
        if (s->desc.worker_stop && s->inited && s->common.enabled)
            s->desc.worker_stop(s->inst, graceful);
    }
}

static void worker_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    worker *w = t->data;

    log_warn("in-flight messages still running after %.0fs; stopping hard "
             "(the MTA keeps them)",
             w->ch->ec.shutdown_timeout);
    worker_stop_stages(w, 0);
    ev_break(loop, EVBREAK_ALL);
}

static void worker_begin_stop(worker *w, int graceful)
{
    if (w->stopping && graceful)
        return;
    w->stopping = 1;
    w->stats->stopping = 1;
    ev_signal_stop(w->loop, &w->sig_term);
    worker_stop_stages(w, graceful);
    if (!graceful) {
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    /* unreferenced: the loop ends once the stages' watchers are gone */
    ev_timer_init(&w->deadline, worker_deadline_cb, w->ch->ec.shutdown_timeout,
                  0.);
    w->deadline.data = w;
    ev_timer_start(w->loop, &w->deadline);
    ev_unref(w->loop);
}

static void worker_sig_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    worker *w = s->data;

    worker_begin_stop(w, s->signum == SIGTERM);
}

static int worker_drop_privileges(const char *user)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    if ((pw = getpwnam(user)) == NULL) {
        log_error("user '%s' does not exist", user);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        initgroups(user, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_error("cannot drop privileges to %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        log_error("privileges were not dropped: setuid(0) still works");
        return -1;
    }
    return 0;
}

/* The worker's resolver, after fork: c-ares sockets belong to one
 * process.  Without it, host->dns_query() fails (returns NULL) and stages
 * treat DNS as unavailable; mail still flows. */
static void worker_dns_start(worker *w)
{
    dns_conf dc;
    buf err;

    memset(&dc, 0, sizeof(dc));
    dc.servers = w->ch->ec.dns_servers;
    dc.timeout = w->ch->ec.dns_timeout;
    dc.tries = (int)w->ch->ec.dns_tries;
    dc.cache_size = (size_t)w->ch->ec.dns_cache_size;
    buf_init(&err);
    if ((w->dns = dns_new(w->loop, &dc, &err)) == NULL)
        log_error("DNS resolver not available: %s", err.data);
    buf_free(&err);
}

int worker_main(chain *ch, stats_worker *slot, int number)
{
    worker w;
    size_t i;
    char role[32];
    int rc = 0;

    snprintf(role, sizeof(role), "worker %d", number);
    log_set_role(role);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (getppid() == 1)
        return 1; /* the master is already gone */
    if (worker_drop_privileges(ch->ec.user) < 0)
        return 1;

    memset(&w, 0, sizeof(w));
    w.loop = ev_default_loop(EVFLAG_AUTO);
    w.ch = ch;
    w.stats = slot;
    slot->nstages = ch->nstages;
    ev_idle_init(&w.runq_idle, worker_runq_cb);
    w.runq_idle.data = &w;
    for (i = 0; i < ch->nstages; i++) {
        struct sluice_ctx *s = ch->stages[i];
        s->worker = &w;
        s->stats = &slot->stages[i];
        snprintf(s->stats->name, sizeof(s->stats->name), "%s", s->name);
    }
    ev_signal_init(&w.sig_term, worker_sig_cb, SIGTERM);
    w.sig_term.data = &w;
    ev_signal_start(w.loop, &w.sig_term); /* holds the loop until a stop */
    ev_signal_init(&w.sig_quit, worker_sig_cb, SIGQUIT);
    w.sig_quit.data = &w;
    ev_signal_start(w.loop, &w.sig_quit);
    ev_unref(w.loop);
    {
        /* blocked since fork (master.c): a stop that came meanwhile is
         * delivered now, to the loop's watcher */
        sigset_t stops;
        sigemptyset(&stops);
        sigaddset(&stops, SIGTERM);
        sigaddset(&stops, SIGQUIT);
        sigprocmask(SIG_UNBLOCK, &stops, NULL);
    }
    worker_dns_start(&w);

    for (i = 0; i < ch->nstages; i++) {
        struct sluice_ctx *s = ch->stages[i];
        if (!s->common.enabled || s->desc.worker_start == NULL)
            continue;
        if (s->desc.worker_start(s->inst) != 0) {
            log_error("stage %s failed to start in this worker", s->name);
            rc = 1;
            break;
        }
    }
    if (rc == 0) {
        log_debug("running generation %u with %zu stages", ch->gen,
                  ch->nstages);
        ev_run(w.loop, 0);
    }
    if (!w.stopping)
        worker_stop_stages(&w, 0);
    dns_free(w.dns); /* queries still held by messages: no callbacks */
    w.dns = NULL;
    log_debug("worker exits");
    return rc; /* the process exits; the MTA keeps anything unanswered */
}
