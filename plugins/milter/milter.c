/*
 * milter.c - the `milter` ingress stage: sendmail, Postfix (smtpd_milters)
 * and Oracle/Sun Messaging Server (JSMS) hand each message to sluice over
 * the milter protocol, default inet:3366@127.0.0.1, and hear the chain's
 * verdict as a milter reply: accept (with the chain's header edits and
 * recipient changes replayed), reject or tempfail with the deciding
 * stage's reply text, discard, or quarantine.
 *
 * Threads.  libmilter (linked statically, see CMakeLists.txt) runs its
 * listener, a signal thread and a pool of session threads inside the
 * worker (Debian builds it with the workers pool: a session waiting for
 * the MTA holds no thread; one waiting for our loop holds one, and the
 * pool grows as needed).  Those threads never call the host table: a callback
 * collects what the MTA sent (macros, envelope, header fields, body) into its
 * session, queues a request and wakes the worker's loop through an eventfd
 * watched with host->io_new, then waits on a condition variable.  The loop
 * thread opens and runs the transaction and fills in the answer; the libmilter
 * thread then makes the smfi_* calls (only legal there) and returns the status.
 *
 * Sockets.  The master binds `listen` (SLUICE_CONF_LISTEN: inet:, inet6:,
 * local:/unix:, or host:port) before dropping privileges and keeps it
 * across reloads.  libmilter insists on binding its own socket, so the
 * link wraps bind(2): while milter_worker_start() opens libmilter's
 * socket, the bind of it dup2()s the master's socket over libmilter's
 * instead.  Every worker thus accepts on the same socket and a reload has
 * no gap.  unlink(2) is wrapped too (libmilter removes a unix socket when
 * it stops; the socket is the master's), and sigwait(3) (libmilter's
 * signal thread would otherwise take the worker's SIGTERM and abort every
 * session): that thread just sleeps, and the worker's own loop keeps the
 * signals.  smfi_main() runs in a thread that blocks every signal.
 *
 * Stopping.  A graceful stop puts a never-readable socket under
 * libmilter's listener (new connections go to the other workers, or to
 * the next generation's after a reload) and lets the connections in
 * flight go on until the MTA closes them (an MTA keeps one per SMTP
 * session), within the engine's shutdown_timeout; then the worker's loop
 * ends and libmilter's threads end with the process.  smfi_stop() is not
 * used: it would also stop libmilter's worker pool from serving the
 * sessions in flight, and it blocks its caller for up to 5 s (libmilter's
 * listener holds the mutex it needs across its poll).
 *
 * Transactions.  A connection opens a transaction at connect (CONNECT
 * hooks answer there), runs HELO on it, and its first message runs MAIL
 * on it too.  Each later message on the same connection gets a fresh
 * transaction, whose MAIL run repeats the CONNECT and HELO hooks first,
 * exactly as for the smtp ingress (which opens one transaction per
 * message).  RCPT runs per recipient (a refusal drops it); the message
 * is given to the engine whole at end of message, with header fields
 * rebuilt as "Name: value" CRLF and the body as the MTA sent it (CRLF), so
 * stages see what they see behind the smtp ingress.  Every recipient is
 * marked done before EOM runs: the MTA delivers, so the deliver stage
 * (which only takes recipients nobody settled) does not reinject.
 *
 * Recipients (ABI 1.2).  Recipients a stage adds start done too (the
 * engine's rule when the ingress marked all of its own done), and the
 * net changes (host->rcpt_change) are replayed at end of message with
 * smfi_delrcpt and smfi_addrcpt, "<addr>" as Postfix and sendmail take
 * them.  SMFIF_ADDRCPT and SMFIF_DELRCPT are asked for in negotiation
 * (not with the JSMS profile); an MTA that did not grant the one a
 * change needs gets tempfail, never a message delivered to the
 * recipients the chain removed.
 *
 * Failure.  A wait for the loop longer than `reply_timeout`, or any
 * internal error, answers tempfail (accept with `fail_open
 * yes`): unscanned mail is never accepted by default.  A session that
 * timed out answers tempfail until the MTA closes it.
 *
 * Diagnostics: libmilter-thread problems are queued as log lines and
 * logged by the loop (with the MTA's queue id).  Counters:
 * sessions, messages, accepted, rejected, tempfailed, discarded,
 * quarantined, bytes.
 *
 * SECURITY: listens on loopback by default; the MTA is trusted for its
 * macros (client address, SASL login) but every byte is bounded: the
 * message by max_message_size, strings by fixed buffers, sessions by
 * max_sessions.  Runs in the worker as the unprivileged user.  libmilter
 * is one per process: a second `milter` instance in one chain is refused.
 */
#include <sluice/stage.h>

#include <libmilter/mfapi.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- */
/* Configuration                                                     */

enum {
    MLT_PROFILE_AUTO = 0,
    MLT_PROFILE_SENDMAIL,
    MLT_PROFILE_POSTFIX,
    MLT_PROFILE_JSMS
};

static const char *const mlt_profiles[] = {"auto", "sendmail", "postfix",
                                           "jsms", NULL};

typedef struct milter_conf {
    int listen_fd;
    int profile;
    int fail_open;
    double reply_timeout;
    double mta_timeout;
    long long max_sessions;
    int quarantine_fallback; /* verdict when the MTA cannot quarantine */
    char *body_notice;       /* header added when the body can't change */
} milter_conf;

static const sluice_directive milter_directives[] = {
    {"listen", SLUICE_CONF_LISTEN, offsetof(milter_conf, listen_fd),
     "inet:3366@127.0.0.1", 0, 0, NULL,
     "milter socket: inet:PORT@HOST, inet6:PORT@HOST, local:/path"},
    {"profile", SLUICE_CONF_ENUM, offsetof(milter_conf, profile), "auto", 0, 0,
     mlt_profiles, "MTA profile; jsms: header add/change and quarantine only"},
    {"fail_open", SLUICE_CONF_BOOL, offsetof(milter_conf, fail_open), "no", 0,
     0, NULL, "accept (unscanned) instead of tempfail on internal failure"},
    {"reply_timeout", SLUICE_CONF_DURATION,
     offsetof(milter_conf, reply_timeout), "250s", 0, 0, NULL,
     "longest wait for the chain before answering tempfail"},
    {"mta_timeout", SLUICE_CONF_DURATION, offsetof(milter_conf, mta_timeout),
     "7210s", 0, 0, NULL,
     "close an MTA connection silent this long (libmilter's default)"},
    {"max_sessions", SLUICE_CONF_INT, offsetof(milter_conf, max_sessions),
     "500", 1, 100000, NULL, "concurrent MTA connections per worker"},
    {"quarantine_fallback", SLUICE_CONF_VERDICT,
     offsetof(milter_conf, quarantine_fallback), "tempfail", 0, 0, NULL,
     "verdict for QUARANTINE when the MTA offers no quarantine"},
    {"body_notice", SLUICE_CONF_STRING, offsetof(milter_conf, body_notice),
     "X-Sluice-Body-Change", 0, 0, NULL,
     "header that says a body change could not be applied"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

/* ---------------------------------------------------------------- */
/* Types                                                             */

enum {
    MLT_REQ_CONNECT = 1,
    MLT_REQ_HELO,
    MLT_REQ_MAIL,
    MLT_REQ_RCPT,
    MLT_REQ_EOM,
    MLT_REQ_ABORT,
    MLT_REQ_CLOSE
};

static const char *const mlt_req_names[] = {
    "-", "connect", "helo", "mail", "rcpt", "eom", "abort", "close"};

typedef struct mlt_edit {
    sluice_header_op op;
    char *name, *value;
    size_t index, nth;
} mlt_edit;

typedef struct mlt_buf {
    char *data;
    size_t len, cap;
} mlt_buf;

typedef struct mlt_rchange {
    int add; /* 1: smfi_addrcpt, 0: smfi_delrcpt */
    char *addr;
} mlt_rchange;

struct mlt_inst;

typedef struct mlt_sess {
    struct mlt_inst *in;
    struct mlt_sess *qnext; /* request queue (under in->mu) */
    int queued;
    pthread_cond_t cv;

    /* request and its answer (handed over under in->mu) */
    int req;
    int done;
    sfsistat status;
    char code[4], xcode[16], text[512];
    mlt_edit *edits;
    size_t nedits;
    mlt_rchange *rchanges;
    size_t nrchanges;
    mlt_buf newbody;
    int body_changed;
    int quarantine;

    /* libmilter thread only */
    int broken;            /* timed out: tempfail until close */
    unsigned long actions; /* what we may do, as negotiated */
    int leadspc;           /* header values carry their leading space */
    int jsms;

    /* written by the libmilter thread, read by the loop during a request */
    char addr[64], name[256], helo[256], ident[64], auth[256], proto[16];
    char daemon[256], daemon_addr[64];
    char mail_addr[256], rcpt_addr[256]; /* macros: fallbacks for argv */
    int port;
    char *sender, *sender_params, *rcpt, *rcpt_params;
    mlt_buf msg;
    int eoh, over;
    size_t max_size;

    /* loop thread only */
    sluice_txn *txn;
    int mail_run; /* the txn carried a MAIL already */
    int busy;     /* a message is open: counted in in->busy */
} mlt_sess;

typedef struct mlt_logline {
    struct mlt_logline *next;
    int level;
    char text[];
} mlt_logline;

typedef struct mlt_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    milter_conf *conf;
    char spec[160]; /* what libmilter is told (only its family counts) */
    char unix_path[108];
    size_t max_size;

    /* shared with the libmilter threads, under mu */
    pthread_mutex_t mu;
    mlt_sess *qhead, *qtail;
    mlt_logline *logs, **logtail;
    size_t nsessions;
    int stopping, dead, main_done, main_rc;
    int efd;

    /* loop thread only */
    sluice_io *io;
    pthread_t main_thread;
    int main_started;
    size_t busy;
    int quiet[2]; /* socketpair put under libmilter's listener at stop */
} mlt_inst;

/* libmilter's callbacks carry no argument and libmilter is one per
 * process: this is the one instance it serves, set in worker_start. */
static mlt_inst *mlt_active;
/* Read by the wrapped bind/unlink while worker_start opens the socket;
 * mlt_lib_fd is the descriptor libmilter listens on (ours, dup2()ed). */
static int mlt_bind_fd = -1;
static int mlt_lib_fd = -1;
static char mlt_keep_path[108];

/* ---------------------------------------------------------------- */
/* Wrapped libc calls (-Wl,--wrap=bind,--wrap=unlink,--wrap=sigwait) */

int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __real_unlink(const char *path);
int __wrap_unlink(const char *path);
int __wrap_sigwait(const sigset_t *set, int *sig);

/* libmilter binds its own socket: use the master's, bound for all
 * workers and kept across reloads, instead. */
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (mlt_bind_fd < 0)
        return __real_bind(fd, sa, len);
    if (dup2(mlt_bind_fd, fd) < 0)
        return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    mlt_lib_fd = fd;
    return 0;
}

/* Never remove the master's unix socket (libmilter does when it stops). */
int __wrap_unlink(const char *path)
{
    if (mlt_keep_path[0] != '\0' && path != NULL &&
        strcmp(path, mlt_keep_path) == 0)
        return 0;
    return __real_unlink(path);
}

/* libmilter's signal thread: it would take SIGTERM from the worker's loop
 * and abort every session.  It sleeps instead; the process exits without
 * it. */
int __wrap_sigwait(const sigset_t *set, int *sig)
{
    (void)set;
    (void)sig;
    for (;;)
        pause(); /* every signal is blocked in this thread */
    return 0;
}

/* ---------------------------------------------------------------- */
/* Small helpers                                                     */

static int mlt_buf_add(mlt_buf *b, const void *p, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *np;
        while (cap < b->len + n)
            cap *= 2;
        if ((np = realloc(b->data, cap)) == NULL)
            return -1;
        b->data = np;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void mlt_buf_free(mlt_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static void mlt_copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Wake the loop; safe from any thread. */
static void mlt_kick(mlt_inst *in)
{
    uint64_t one = 1;

    if (write(in->efd, &one, sizeof(one)) < 0) {
        /* counter saturated: the loop is awake anyway */
    }
}

/* From a libmilter thread: the loop logs it. */
static void mlt_tlog(mlt_inst *in, int level, const char *fmt, ...)
    SLUICE_PRINTF(3, 4);
static void mlt_tlog(mlt_inst *in, int level, const char *fmt, ...)
{
    char text[512];
    mlt_logline *l;
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    n = strlen(text);
    if ((l = malloc(sizeof(*l) + n + 1)) == NULL)
        return;
    l->next = NULL;
    l->level = level;
    memcpy(l->text, text, n + 1);
    pthread_mutex_lock(&in->mu);
    *in->logtail = l;
    in->logtail = &l->next;
    pthread_mutex_unlock(&in->mu);
    mlt_kick(in);
}

/* ---------------------------------------------------------------- */
/* Sessions (created and waited on by libmilter threads)             */

static void mlt_answer_clear(mlt_sess *s)
{
    size_t i;

    for (i = 0; i < s->nedits; i++) {
        free(s->edits[i].name);
        free(s->edits[i].value);
    }
    free(s->edits);
    s->edits = NULL;
    s->nedits = 0;
    for (i = 0; i < s->nrchanges; i++)
        free(s->rchanges[i].addr);
    free(s->rchanges);
    s->rchanges = NULL;
    s->nrchanges = 0;
    mlt_buf_free(&s->newbody);
    s->body_changed = 0;
    s->quarantine = 0;
    s->code[0] = s->xcode[0] = s->text[0] = '\0';
}

static void mlt_sess_free(mlt_sess *s)
{
    mlt_answer_clear(s);
    free(s->sender);
    free(s->sender_params);
    free(s->rcpt);
    free(s->rcpt_params);
    mlt_buf_free(&s->msg);
    pthread_cond_destroy(&s->cv);
    free(s);
}

static mlt_sess *mlt_sess_get(SMFICTX *ctx)
{
    mlt_inst *in = mlt_active;
    mlt_sess *s = smfi_getpriv(ctx);
    pthread_condattr_t ca;

    if (s != NULL || in == NULL)
        return s;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->in = in;
    s->max_size = in->max_size;
    s->actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
                 SMFIF_QUARANTINE | SMFIF_ADDRCPT |
                 SMFIF_DELRCPT; /* until negotiation says otherwise */
    s->jsms = in->conf->profile == MLT_PROFILE_JSMS;
    pthread_mutex_lock(&in->mu);
    in->nsessions++;
    pthread_mutex_unlock(&in->mu);
    smfi_setpriv(ctx, s);
    return s;
}

/* The status for an internal failure: tempfail, or accept if fail_open. */
static sfsistat mlt_fail(SMFICTX *ctx, mlt_inst *in, const char *why)
{
    if (in->conf->fail_open)
        return SMFIS_ACCEPT;
    smfi_setreply(ctx, "451", "4.3.0", (char *)why);
    return SMFIS_TEMPFAIL;
}

/* Hand request `req` to the loop and wait for its answer.  0: answered;
 * -1: stopping, gone, or timed out (the session is then broken). */
static int mlt_call(mlt_sess *s, int req)
{
    mlt_inst *in = s->in;
    struct timespec until;
    int rc = 0;

    if (s->broken)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)in->conf->reply_timeout;
    until.tv_nsec += (long)((in->conf->reply_timeout -
                             (double)(time_t)in->conf->reply_timeout) *
                            1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&in->mu);
    if (in->dead) {
        pthread_mutex_unlock(&in->mu);
        return -1;
    }
    s->req = req;
    s->done = 0;
    s->queued = 1;
    s->qnext = NULL;
    if (in->qtail)
        in->qtail->qnext = s;
    else
        in->qhead = s;
    in->qtail = s;
    pthread_mutex_unlock(&in->mu);
    mlt_kick(in);
    pthread_mutex_lock(&in->mu);
    while (!s->done && rc == 0)
        rc = pthread_cond_timedwait(&s->cv, &in->mu, &until);
    if (!s->done) {
        if (s->queued) { /* never picked up: take it back */
            mlt_sess **pp, *prev = NULL;
            for (pp = &in->qhead; *pp; prev = *pp, pp = &(*pp)->qnext) {
                if (*pp == s) {
                    *pp = s->qnext;
                    if (in->qtail == s)
                        in->qtail = prev;
                    break;
                }
            }
            s->queued = 0;
        }
        s->broken = 1;
        pthread_mutex_unlock(&in->mu);
        mlt_tlog(in, SLUICE_LOG_ERROR,
                 "no verdict for %s (%s) within %.0fs; answering %s from "
                 "now on for this connection",
                 mlt_req_names[req], s->ident[0] ? s->ident : "no queue id",
                 in->conf->reply_timeout,
                 in->conf->fail_open ? "accept" : "tempfail");
        return -1;
    }
    pthread_mutex_unlock(&in->mu);
    return 0;
}

/* Send the answer's reply text along with a refusal. */
static sfsistat mlt_status(SMFICTX *ctx, mlt_sess *s)
{
    if ((s->status == SMFIS_REJECT || s->status == SMFIS_TEMPFAIL) &&
        s->code[0] != '\0' &&
        smfi_setreply(ctx, s->code, s->xcode[0] ? s->xcode : NULL, s->text) !=
            MI_SUCCESS)
        mlt_tlog(s->in, SLUICE_LOG_WARN, "smfi_setreply(%s %s %s) failed",
                 s->code, s->xcode, s->text);
    return s->status;
}

/* ---------------------------------------------------------------- */
/* libmilter callbacks (libmilter threads)                           */

static void mlt_macros(SMFICTX *ctx, mlt_sess *s)
{
    const char *v;

    if ((v = smfi_getsymval(ctx, "{client_addr}")) != NULL && *v)
        mlt_copy(s->addr, sizeof(s->addr), v);
    if ((v = smfi_getsymval(ctx, "{client_name}")) != NULL && *v &&
        strcmp(v, "unknown") != 0 && *v != '[')
        mlt_copy(s->name, sizeof(s->name), v);
    if ((v = smfi_getsymval(ctx, "{client_port}")) != NULL && *v)
        s->port = atoi(v);
    if ((v = smfi_getsymval(ctx, "i")) != NULL && *v)
        mlt_copy(s->ident, sizeof(s->ident), v);
    if ((v = smfi_getsymval(ctx, "{auth_authen}")) != NULL && *v)
        mlt_copy(s->auth, sizeof(s->auth), v);
    if ((v = smfi_getsymval(ctx, "r")) != NULL && *v)
        mlt_copy(s->proto, sizeof(s->proto), v);
    if ((v = smfi_getsymval(ctx, "j")) != NULL && *v)
        mlt_copy(s->daemon, sizeof(s->daemon), v);
    if ((v = smfi_getsymval(ctx, "{daemon_addr}")) != NULL && *v)
        mlt_copy(s->daemon_addr, sizeof(s->daemon_addr), v);
    s->mail_addr[0] = s->rcpt_addr[0] = '\0';
    if ((v = smfi_getsymval(ctx, "{mail_addr}")) != NULL && *v)
        mlt_copy(s->mail_addr, sizeof(s->mail_addr), v);
    if ((v = smfi_getsymval(ctx, "{rcpt_addr}")) != NULL && *v)
        mlt_copy(s->rcpt_addr, sizeof(s->rcpt_addr), v);
}

static sfsistat mlt_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                              unsigned long f2, unsigned long f3,
                              unsigned long *pf0, unsigned long *pf1,
                              unsigned long *pf2, unsigned long *pf3)
{
    mlt_sess *s = mlt_sess_get(ctx);
    unsigned long want = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
                         SMFIF_QUARANTINE | SMFIF_ADDRCPT | SMFIF_DELRCPT;

    (void)f2;
    (void)f3;
    if (s == NULL)
        return SMFIS_REJECT; /* the MTA applies its default action */
    /* JSMS offers header add/change and quarantine, never the body */
    if (s->in->conf->profile == MLT_PROFILE_AUTO &&
        (f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE)) ==
            (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE) &&
        !(f0 & SMFIF_CHGBODY))
        s->jsms = 1;
    if (s->jsms)
        want &= ~(unsigned long)(SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT);
    s->actions = f0 & want;
    s->leadspc = (f1 & SMFIP_HDR_LEADSPC) != 0;
    *pf0 = s->actions;
    *pf1 = f1 & SMFIP_HDR_LEADSPC;
    mlt_tlog(s->in, SLUICE_LOG_DEBUG,
             "negotiated: MTA offers actions 0x%lx steps 0x%lx; using "
             "actions 0x%lx%s%s",
             f0, f1, s->actions, s->leadspc ? ", leading spaces" : "",
             s->jsms ? ", JSMS profile" : "");
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat mlt_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    mlt_sess *s = mlt_sess_get(ctx);
    mlt_inst *in = mlt_active;
    size_t n;

    if (s == NULL)
        return in ? mlt_fail(ctx, in, "out of memory") : SMFIS_TEMPFAIL;
    pthread_mutex_lock(&in->mu);
    n = in->nsessions;
    pthread_mutex_unlock(&in->mu);
    if (n > (size_t)in->conf->max_sessions) {
        mlt_tlog(in, SLUICE_LOG_WARN, "too many sessions (%zu); tempfail", n);
        return mlt_fail(ctx, in, "too many filter sessions");
    }
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, s->addr, sizeof(s->addr));
        s->port = ntohs(s4->sin_port);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, s->addr, sizeof(s->addr));
        s->port = ntohs(s6->sin6_port);
    }
    if (host != NULL && *host != '[' && strcmp(host, "unknown") != 0)
        mlt_copy(s->name, sizeof(s->name), host);
    mlt_macros(ctx, s);
    if (mlt_call(s, MLT_REQ_CONNECT) < 0)
        return mlt_fail(ctx, in, "filter failure");
    return mlt_status(ctx, s);
}

static sfsistat mlt_helo(SMFICTX *ctx, char *helo)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    mlt_copy(s->helo, sizeof(s->helo), helo);
    mlt_macros(ctx, s);
    if (mlt_call(s, MLT_REQ_HELO) < 0)
        return mlt_fail(ctx, s->in, "filter failure");
    return mlt_status(ctx, s);
}

/* "<a@b>" -> "a@b"; the rest of argv joined with spaces.  `macro` (the
 * MTA's {mail_addr} or {rcpt_addr}) stands in for a missing argument. */
static int mlt_args(char **argv, const char *macro, char **addr, char **params)
{
    const char *a = argv && argv[0] && argv[0][0] ? argv[0] : macro;
    size_t al = strlen(a), i, pl = 0;
    char *p;

    if (al >= 2 && a[0] == '<' && a[al - 1] == '>') {
        a++;
        al -= 2;
    }
    for (i = 1; argv && argv[0] && argv[i]; i++)
        pl += strlen(argv[i]) + 1;
    free(*addr);
    free(*params);
    *addr = strndup(a, al);
    *params = p = calloc(1, pl + 1);
    if (*addr == NULL || p == NULL)
        return -1;
    for (i = 1; argv && argv[0] && argv[i]; i++) {
        if (i > 1)
            *p++ = ' ';
        memcpy(p, argv[i], strlen(argv[i]));
        p += strlen(argv[i]);
    }
    return 0;
}

static sfsistat mlt_envfrom(SMFICTX *ctx, char **argv)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    mlt_buf_free(&s->msg);
    s->eoh = s->over = 0;
    mlt_macros(ctx, s);
    if (mlt_args(argv, s->mail_addr, &s->sender, &s->sender_params) < 0)
        return mlt_fail(ctx, s->in, "out of memory");
    if (mlt_call(s, MLT_REQ_MAIL) < 0)
        return mlt_fail(ctx, s->in, "filter failure");
    return mlt_status(ctx, s);
}

static sfsistat mlt_envrcpt(SMFICTX *ctx, char **argv)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    mlt_macros(ctx, s);
    if (mlt_args(argv, s->rcpt_addr, &s->rcpt, &s->rcpt_params) < 0)
        return mlt_fail(ctx, s->in, "out of memory");
    if (mlt_call(s, MLT_REQ_RCPT) < 0)
        return mlt_fail(ctx, s->in, "filter failure");
    return mlt_status(ctx, s);
}

/* Append to the message, minding the size limit (checked again by the
 * engine; here so a huge message stops costing memory early). */
static void mlt_msg_add(mlt_sess *s, const void *p, size_t n)
{
    if (s->over)
        return;
    if (n > s->max_size || s->msg.len > s->max_size - n ||
        mlt_buf_add(&s->msg, p, n) < 0) {
        s->over = 1;
        mlt_buf_free(&s->msg);
    }
}

/* "Name: value" CRLF; folds inside the value become CRLF + WSP. */
static sfsistat mlt_header(SMFICTX *ctx, char *name, char *value)
{
    mlt_sess *s = smfi_getpriv(ctx);
    const char *v = value ? value : "", *p;

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    mlt_msg_add(s, name, strlen(name));
    mlt_msg_add(s, s->leadspc ? ":" : ": ", s->leadspc ? 1 : 2);
    for (p = v; *p; p++) {
        if (*p == '\n' && (p == v || p[-1] != '\r'))
            mlt_msg_add(s, "\r\n", 2);
        else
            mlt_msg_add(s, p, 1);
    }
    mlt_msg_add(s, "\r\n", 2);
    return SMFIS_CONTINUE;
}

static sfsistat mlt_eoh(SMFICTX *ctx)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    mlt_msg_add(s, "\r\n", 2);
    s->eoh = 1;
    return SMFIS_CONTINUE;
}

static sfsistat mlt_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    if (!s->eoh) { /* no EOH from the MTA: the empty line is still due */
        mlt_msg_add(s, "\r\n", 2);
        s->eoh = 1;
    }
    mlt_msg_add(s, p, n);
    return SMFIS_CONTINUE;
}

/* Header values go back with their leading space when negotiated. */
static char *mlt_hvalue(mlt_sess *s, const char *v, char *tmp, size_t size)
{
    if (!s->leadspc)
        return (char *)v;
    snprintf(tmp, size, " %s", v);
    return tmp;
}

/* Replay the chain's header edits; JSMS and v2 MTAs get appends only. */
static void mlt_replay(SMFICTX *ctx, mlt_sess *s)
{
    size_t i;

    for (i = 0; i < s->nedits; i++) {
        mlt_edit *e = &s->edits[i];
        char *val, buf[16400];
        int rc = MI_SUCCESS;

        val = e->value ? mlt_hvalue(s, e->value, buf, sizeof(buf)) : NULL;
        switch (e->op) {
        case SLUICE_HDR_INSERT:
            if (!(s->actions & SMFIF_ADDHDRS))
                rc = MI_FAILURE;
            else if (s->jsms)
                rc = smfi_addheader(ctx, e->name, val);
            else
                rc = smfi_insheader(ctx, (int)e->index, e->name, val);
            break;
        case SLUICE_HDR_ADD:
            rc = (s->actions & SMFIF_ADDHDRS)
                     ? smfi_addheader(ctx, e->name, val)
                     : MI_FAILURE;
            break;
        case SLUICE_HDR_CHANGE:
        case SLUICE_HDR_DELETE:
            rc = (s->actions & SMFIF_CHGHDRS)
                     ? smfi_chgheader(ctx, e->name, (int)e->nth + 1, val)
                     : MI_FAILURE;
            break;
        }
        if (rc != MI_SUCCESS)
            mlt_tlog(s->in, SLUICE_LOG_WARN,
                     "%s: header edit %d of %s not applied (the MTA does "
                     "not allow it)",
                     s->ident[0] ? s->ident : "-", (int)e->op, e->name);
    }
}

/* Replay the chain's recipient changes: removals, then additions.  -1
 * (tempfail) if the MTA did not grant what a change needs or refused
 * it: the message must not go to the recipients the chain removed. */
static int mlt_replay_rcpts(SMFICTX *ctx, mlt_sess *s)
{
    size_t i;
    char a[600];

    for (i = 0; i < s->nrchanges; i++) {
        unsigned long need = s->rchanges[i].add ? SMFIF_ADDRCPT : SMFIF_DELRCPT;
        if (!(s->actions & need)) {
            mlt_tlog(s->in, SLUICE_LOG_ERROR,
                     "%s: the chain changed the recipients but the MTA "
                     "does not allow %s; tempfail",
                     s->ident[0] ? s->ident : "-",
                     s->rchanges[i].add ? "adding" : "removing");
            return -1;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        for (i = 0; i < s->nrchanges; i++) {
            mlt_rchange *c = &s->rchanges[i];
            int rc;
            if (c->add != pass)
                continue;
            snprintf(a, sizeof(a), "<%s>", c->addr);
            rc = c->add ? smfi_addrcpt(ctx, a) : smfi_delrcpt(ctx, a);
            if (rc != MI_SUCCESS) {
                mlt_tlog(s->in, SLUICE_LOG_ERROR,
                         "%s: smfi_%srcpt(%s) failed; tempfail",
                         s->ident[0] ? s->ident : "-", c->add ? "add" : "del",
                         a);
                return -1;
            }
        }
    }
    return 0;
}

static int mlt_replace_body(SMFICTX *ctx, mlt_sess *s)
{
    char note[128];

    if (!s->body_changed)
        return 0;
    if (s->actions & SMFIF_CHGBODY) {
        size_t off = 0;
        /* libmilter sends what it is given in protocol-sized chunks */
        do {
            size_t n =
                s->newbody.len - off > 65536 ? 65536 : s->newbody.len - off;
            if (smfi_replacebody(ctx,
                                 (unsigned char *)(s->newbody.data
                                                       ? s->newbody.data + off
                                                       : ""),
                                 (int)n) != MI_SUCCESS)
                return -1;
            off += n;
        } while (off < s->newbody.len);
        return 0;
    }
    snprintf(note, sizeof(note), "%snot applied (the MTA cannot replace it)",
             s->leadspc ? " " : "");
    if (s->in->conf->body_notice[0] && (s->actions & SMFIF_ADDHDRS))
        smfi_addheader(ctx, s->in->conf->body_notice, note);
    mlt_tlog(s->in, SLUICE_LOG_WARN,
             "%s: the chain replaced the body but the MTA cannot; tagged "
             "instead",
             s->ident[0] ? s->ident : "-");
    return 0;
}

static sfsistat mlt_eom(SMFICTX *ctx)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL)
        return SMFIS_TEMPFAIL;
    if (s->broken)
        return mlt_fail(ctx, s->in, "filter failure");
    if (!s->eoh) {
        mlt_msg_add(s, "\r\n", 2);
        s->eoh = 1;
    }
    mlt_macros(ctx, s);
    if (mlt_call(s, MLT_REQ_EOM) < 0)
        return mlt_fail(ctx, s->in, "filter failure");
    if (s->status == SMFIS_ACCEPT || s->status == SMFIS_CONTINUE) {
        if (mlt_replay_rcpts(ctx, s) < 0) {
            smfi_setreply(ctx, "451", "4.3.0", "filter failure");
            return SMFIS_TEMPFAIL;
        }
        mlt_replay(ctx, s);
        if (mlt_replace_body(ctx, s) < 0) {
            mlt_tlog(s->in, SLUICE_LOG_ERROR,
                     "%s: smfi_replacebody failed; tempfail",
                     s->ident[0] ? s->ident : "-");
            smfi_setreply(ctx, "451", "4.3.0", "filter failure");
            return SMFIS_TEMPFAIL;
        }
        if (s->quarantine &&
            smfi_quarantine(ctx, s->text[0] ? s->text : "sluice") !=
                MI_SUCCESS) {
            mlt_tlog(s->in, SLUICE_LOG_ERROR,
                     "%s: smfi_quarantine failed; tempfail",
                     s->ident[0] ? s->ident : "-");
            smfi_setreply(ctx, "451", "4.3.0", "filter failure");
            return SMFIS_TEMPFAIL;
        }
    }
    mlt_buf_free(&s->msg);
    return mlt_status(ctx, s);
}

static sfsistat mlt_abort(SMFICTX *ctx)
{
    mlt_sess *s = smfi_getpriv(ctx);

    if (s == NULL || s->broken)
        return SMFIS_CONTINUE;
    mlt_buf_free(&s->msg);
    (void)mlt_call(s, MLT_REQ_ABORT);
    return SMFIS_CONTINUE;
}

/* The connection ends: the loop frees the session (fire and forget). */
static sfsistat mlt_close(SMFICTX *ctx)
{
    mlt_sess *s = smfi_getpriv(ctx);
    mlt_inst *in;

    if (s == NULL)
        return SMFIS_CONTINUE;
    smfi_setpriv(ctx, NULL);
    in = s->in;
    pthread_mutex_lock(&in->mu);
    in->nsessions--;
    if (in->dead) { /* the loop is gone: nobody else will free it */
        pthread_mutex_unlock(&in->mu);
        mlt_sess_free(s);
        return SMFIS_CONTINUE;
    }
    s->req = MLT_REQ_CLOSE;
    s->queued = 1;
    s->qnext = NULL;
    if (in->qtail)
        in->qtail->qnext = s;
    else
        in->qhead = s;
    in->qtail = s;
    pthread_mutex_unlock(&in->mu);
    mlt_kick(in);
    return SMFIS_CONTINUE;
}

static struct smfiDesc mlt_desc = {
    .xxfi_name = "sluice",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
                  SMFIF_QUARANTINE | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_connect = mlt_connect,
    .xxfi_helo = mlt_helo,
    .xxfi_envfrom = mlt_envfrom,
    .xxfi_envrcpt = mlt_envrcpt,
    .xxfi_header = mlt_header,
    .xxfi_eoh = mlt_eoh,
    .xxfi_body = mlt_body,
    .xxfi_eom = mlt_eom,
    .xxfi_abort = mlt_abort,
    .xxfi_close = mlt_close,
    .xxfi_negotiate = mlt_negotiate,
};

/* ---------------------------------------------------------------- */
/* The loop side                                                     */

/* Wake the waiting libmilter thread with the answer in place. */
static void mlt_answer(mlt_sess *s, sfsistat st)
{
    mlt_inst *in = s->in;

    s->status = st;
    pthread_mutex_lock(&in->mu);
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&in->mu);
}

static void mlt_answer_reply(mlt_sess *s, sfsistat st, const char *code,
                             const char *xcode, const char *text)
{
    char *p;

    mlt_copy(s->code, sizeof(s->code), code);
    mlt_copy(s->xcode, sizeof(s->xcode), xcode);
    mlt_copy(s->text, sizeof(s->text), text);
    for (p = s->text; *p; p++) /* sendmail expands % in replies */
        if (*p == '%')
            *p = ' ';
    mlt_answer(s, st);
}

/* The engine's reply for a refusal, its class matching the verdict. */
static void mlt_answer_refusal(mlt_sess *s, sluice_verdict v)
{
    const sluice_host *h = s->in->host;
    const char *code = NULL, *xcode = NULL, *text = NULL;
    char want = v == SLUICE_REJECT ? '5' : '4';

    h->txn_reply(s->txn, &code, &xcode, &text);
    if (code == NULL || code[0] != want || strlen(code) != 3 ||
        (xcode && xcode[0] && xcode[0] != want)) {
        code = want == '5' ? "550" : "451";
        xcode = want == '5' ? "5.7.1" : "4.3.0";
    }
    mlt_answer_reply(s, v == SLUICE_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL,
                     code, xcode ? xcode : "", text ? text : "");
}

static void mlt_busy(mlt_sess *s, int busy)
{
    if (s->busy == busy)
        return;
    s->busy = busy;
    if (busy)
        s->in->busy++;
    else
        s->in->busy--;
}

static void mlt_set_client(mlt_sess *s)
{
    sluice_client c;

    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.addr = s->addr;
    c.name = s->name;
    c.helo = s->helo;
    c.proto = s->proto;
    c.ident = s->ident;
    c.port = s->port;
    c.auth = s->auth;
    s->in->host->txn_set_client(s->txn, &c);
}

static void mlt_drop_txn(mlt_sess *s)
{
    if (s->txn) {
        s->in->host->txn_free(s->txn); /* cancels a running phase */
        s->txn = NULL;
    }
    s->mail_run = 0;
}

/* Copy what the chain decided at end of message for the thread. */
static int mlt_collect(mlt_sess *s)
{
    const sluice_host *h = s->in->host;
    size_t n = h->header_edit_count(s->txn), i;

    mlt_answer_clear(s);
    if (n && (s->edits = calloc(n, sizeof(*s->edits))) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        const sluice_header_edit *e = h->header_edit(s->txn, i);
        mlt_edit *d = &s->edits[s->nedits];
        if (e == NULL)
            continue;
        d->op = e->op;
        d->index = e->index;
        d->nth = e->nth;
        d->name = strdup(e->name);
        d->value = e->value ? strdup(e->value) : NULL;
        s->nedits++;
        if (d->name == NULL || (e->value && d->value == NULL))
            return -1;
    }
    n = h->rcpt_change_count(s->txn);
    if (n && (s->rchanges = calloc(n, sizeof(*s->rchanges))) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        const sluice_rcpt_change *c = h->rcpt_change(s->txn, i);
        if (c == NULL)
            continue;
        s->rchanges[s->nrchanges].add = c->op == SLUICE_RCPT_ADD;
        if ((s->rchanges[s->nrchanges++].addr = strdup(c->addr)) == NULL)
            return -1;
    }
    if (h->body_changed(s->txn)) {
        sluice_str b;
        if (h->body(s->txn, &b) < 0 ||
            mlt_buf_add(&s->newbody, b.ptr, b.len) < 0)
            return -1;
        s->body_changed = 1;
    }
    return 0;
}

static const char *mlt_verdict_name(sluice_verdict v)
{
    static const char *const names[] = {"continue", "accept",  "reject",
                                        "tempfail", "discard", "quarantine",
                                        "pending"};
    return (unsigned)v < 7 ? names[v] : "?";
}

static void mlt_eom_done(mlt_sess *s, sluice_verdict v)
{
    mlt_inst *in = s->in;
    const sluice_host *h = in->host;
    const char *code = NULL, *xcode = NULL, *text = NULL;

    /* logged before the answer: then the session is the thread's again */
    h->log(in->ctx, s->txn, SLUICE_LOG_INFO,
           "verdict=%s mta_id=%s header_edits=%zu rcpt_changes=%zu body=%s",
           mlt_verdict_name(v), s->ident[0] ? s->ident : "-",
           h->header_edit_count(s->txn), h->rcpt_change_count(s->txn),
           h->body_changed(s->txn) ? "replaced" : "kept");
    h->counter_add(in->ctx, "messages", 1);
    switch (v) {
    case SLUICE_REJECT:
    case SLUICE_TEMPFAIL:
        h->counter_add(in->ctx, v == SLUICE_REJECT ? "rejected" : "tempfailed",
                       1);
        mlt_answer_refusal(s, v);
        break;
    case SLUICE_DISCARD:
        h->counter_add(in->ctx, "discarded", 1);
        mlt_answer(s, SMFIS_DISCARD);
        break;
    case SLUICE_QUARANTINE:
        if (mlt_collect(s) < 0)
            goto fail;
        h->txn_reply(s->txn, &code, &xcode, &text);
        if (text == NULL ||
            strcmp(text, "Temporary failure, try again later") == 0)
            text = "quarantined by sluice";
        s->quarantine = 1;
        h->counter_add(in->ctx, "quarantined", 1);
        mlt_copy(s->text, sizeof(s->text), text);
        s->code[0] = '\0';
        mlt_answer(s, SMFIS_ACCEPT);
        break;
    default:
        if (mlt_collect(s) < 0)
            goto fail;
        h->counter_add(in->ctx, "accepted", 1);
        mlt_answer(s, SMFIS_ACCEPT);
        break;
    }
    return;
fail:
    h->log(in->ctx, s->txn, SLUICE_LOG_ERROR,
           "out of memory collecting the verdict; %s",
           in->conf->fail_open ? "accepting (fail_open)" : "tempfail");
    mlt_answer_clear(s);
    if (in->conf->fail_open)
        mlt_answer(s, SMFIS_ACCEPT);
    else
        mlt_answer_reply(s, SMFIS_TEMPFAIL, "451", "4.3.0", "filter failure");
}

/* A quarantine the MTA cannot do gets the configured fallback. */
static sluice_verdict mlt_quarantine_fallback(mlt_sess *s, sluice_verdict v)
{
    mlt_inst *in = s->in;

    if (v != SLUICE_QUARANTINE || (s->actions & SMFIF_QUARANTINE))
        return v;
    in->host->log(
        in->ctx, s->txn, SLUICE_LOG_WARN,
        "the MTA offers no quarantine; applying %s",
        mlt_verdict_name((sluice_verdict)in->conf->quarantine_fallback));
    return (sluice_verdict)in->conf->quarantine_fallback;
}

static void mlt_run_done(sluice_txn *txn, sluice_verdict v, void *arg)
{
    mlt_sess *s = arg;
    const sluice_host *h = s->in->host;

    if (txn != s->txn)
        return; /* cannot happen: txn_free cancels the callback */
    switch (s->req) {
    case MLT_REQ_CONNECT:
    case MLT_REQ_HELO:
    case MLT_REQ_MAIL:
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL) {
            mlt_answer_refusal(s, v);
            mlt_drop_txn(s); /* the next message starts afresh */
            mlt_busy(s, 0);
        } else if (v == SLUICE_DISCARD) {
            mlt_answer(s, SMFIS_DISCARD);
            mlt_drop_txn(s);
            mlt_busy(s, 0);
        } else {
            mlt_answer(s, SMFIS_CONTINUE);
        }
        break;
    case MLT_REQ_RCPT:
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL) {
            mlt_answer_refusal(s, v);
            h->txn_drop_rcpt(s->txn);
        } else if (v == SLUICE_DISCARD) {
            mlt_answer(s, SMFIS_DISCARD);
        } else {
            mlt_answer(s, SMFIS_CONTINUE);
        }
        break;
    case MLT_REQ_EOM:
        v = mlt_quarantine_fallback(s, v);
        mlt_eom_done(s, v);
        mlt_drop_txn(s);
        mlt_busy(s, 0);
        break;
    default:
        break;
    }
}

static int mlt_open_txn(mlt_sess *s)
{
    mlt_inst *in = s->in;

    if (s->txn == NULL && (s->txn = in->host->txn_new(in->ctx)) == NULL) {
        in->host->log(in->ctx, NULL, SLUICE_LOG_ERROR,
                      "cannot open a transaction");
        return -1;
    }
    mlt_set_client(s);
    return 0;
}

static void mlt_fail_now(mlt_sess *s, const char *why)
{
    mlt_inst *in = s->in;

    in->host->log(in->ctx, s->txn, SLUICE_LOG_ERROR, "%s: %s; %s",
                  mlt_req_names[s->req], why,
                  in->conf->fail_open ? "accepting (fail_open)" : "tempfail");
    if (in->conf->fail_open)
        mlt_answer(s, SMFIS_ACCEPT);
    else
        mlt_answer_reply(s, SMFIS_TEMPFAIL, "451", "4.3.0", "filter failure");
}

static void mlt_loop_eom(mlt_sess *s)
{
    mlt_inst *in = s->in;
    const sluice_host *h = in->host;
    size_t i, n;

    if (s->txn == NULL) {
        mlt_fail_now(s, "no transaction at end of message");
        return;
    }
    mlt_set_client(s);
    if (s->over ||
        h->txn_write(s->txn, s->msg.data ? s->msg.data : "", s->msg.len) < 0) {
        h->log(in->ctx, s->txn, SLUICE_LOG_WARN,
               "message over max_message_size (%zu); rejected", in->max_size);
        h->counter_add(in->ctx, "rejected", 1);
        mlt_answer_reply(s, SMFIS_REJECT, "552", "5.3.4",
                         "Error: message file too big");
        mlt_drop_txn(s);
        mlt_busy(s, 0);
        return;
    }
    h->counter_add(in->ctx, "bytes", (long long)s->msg.len);
    /* the MTA delivers: the deliver stage must not reinject */
    n = h->rcpt_count(s->txn);
    for (i = 0; i < n; i++)
        h->rcpt_set(s->txn, i, SLUICE_RCPT_DONE,
                    "250 2.0.0 Ok: the MTA delivers (milter)");
    h->txn_run(s->txn, SLUICE_PHASE_EOM, mlt_run_done, s);
}

static void mlt_request(mlt_sess *s)
{
    mlt_inst *in = s->in;
    const sluice_host *h = in->host;

    switch (s->req) {
    case MLT_REQ_CONNECT:
        mlt_drop_txn(s);
        h->counter_add(in->ctx, "sessions", 1);
        if (mlt_open_txn(s) < 0) {
            mlt_fail_now(s, "cannot open a transaction");
            return;
        }
        h->log(in->ctx, s->txn, SLUICE_LOG_DEBUG,
               "connect from %s[%s]:%d via %s[%s]",
               s->name[0] ? s->name : "unknown",
               s->addr[0] ? s->addr : "unknown", s->port,
               s->daemon[0] ? s->daemon : "the MTA",
               s->daemon_addr[0] ? s->daemon_addr : "?");
        h->txn_run(s->txn, SLUICE_PHASE_CONNECT, mlt_run_done, s);
        return;
    case MLT_REQ_HELO:
        if (s->mail_run) /* HELO again after a message: a new txn */
            mlt_drop_txn(s);
        if (mlt_open_txn(s) < 0) {
            mlt_fail_now(s, "cannot open a transaction");
            return;
        }
        h->txn_run(s->txn, SLUICE_PHASE_HELO, mlt_run_done, s);
        return;
    case MLT_REQ_MAIL:
        if (s->mail_run)
            mlt_drop_txn(s);
        if (mlt_open_txn(s) < 0 ||
            h->txn_set_sender(s->txn, s->sender, s->sender_params) < 0) {
            mlt_fail_now(s, "cannot open a transaction");
            return;
        }
        s->mail_run = 1;
        mlt_busy(s, 1);
        h->txn_run(s->txn, SLUICE_PHASE_MAIL, mlt_run_done, s);
        return;
    case MLT_REQ_RCPT:
        if (s->txn == NULL || !s->mail_run ||
            h->txn_add_rcpt(s->txn, s->rcpt, s->rcpt_params) < 0) {
            mlt_fail_now(s, "recipient outside a transaction");
            return;
        }
        h->txn_run(s->txn, SLUICE_PHASE_RCPT, mlt_run_done, s);
        return;
    case MLT_REQ_EOM:
        mlt_loop_eom(s);
        return;
    case MLT_REQ_ABORT:
        if (s->txn && s->mail_run)
            h->log(in->ctx, s->txn, SLUICE_LOG_DEBUG,
                   "message aborted by the MTA");
        if (s->mail_run)
            mlt_drop_txn(s);
        mlt_busy(s, 0);
        mlt_answer(s, SMFIS_CONTINUE);
        return;
    case MLT_REQ_CLOSE:
        if (s->busy && s->txn)
            h->log(in->ctx, s->txn, SLUICE_LOG_INFO,
                   "connection closed by the MTA in a transaction");
        mlt_drop_txn(s);
        mlt_busy(s, 0);
        mlt_sess_free(s);
        return;
    default:
        return;
    }
}

/* Nothing is in flight (or the stop is hard): let the worker's loop end.
 * libmilter's threads die with the process.  Not smfi_stop(): it takes
 * the mutex libmilter's listener holds across its 5 s poll, which would
 * block the loop. */
static void mlt_teardown(mlt_inst *in)
{
    pthread_mutex_lock(&in->mu);
    in->dead = 1;
    pthread_mutex_unlock(&in->mu);
    if (in->io) {
        in->host->io_free(in->io);
        in->io = NULL;
    }
    /* the eventfd stays open: a late libmilter thread may still write */
}

static void mlt_drain_logs(mlt_inst *in)
{
    mlt_logline *l, *next;

    pthread_mutex_lock(&in->mu);
    l = in->logs;
    in->logs = NULL;
    in->logtail = &in->logs;
    pthread_mutex_unlock(&in->mu);
    for (; l; l = next) {
        next = l->next;
        in->host->log(in->ctx, NULL, l->level, "%s", l->text);
        free(l);
    }
}

static void mlt_wakeup(sluice_io *io, int revents, void *arg)
{
    mlt_inst *in = arg;
    uint64_t v;
    int main_done, main_rc;
    size_t nsessions;

    (void)io;
    (void)revents;
    if (read(in->efd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
        /* nothing to do: the queue below is the truth */
    }
    for (;;) {
        mlt_sess *s;
        pthread_mutex_lock(&in->mu);
        if ((s = in->qhead) != NULL) {
            in->qhead = s->qnext;
            if (in->qhead == NULL)
                in->qtail = NULL;
            s->qnext = NULL;
            s->queued = 0;
        }
        pthread_mutex_unlock(&in->mu);
        if (s == NULL)
            break;
        mlt_request(s);
    }
    mlt_drain_logs(in);
    pthread_mutex_lock(&in->mu);
    main_done = in->main_done;
    main_rc = in->main_rc;
    nsessions = in->nsessions;
    pthread_mutex_unlock(&in->mu);
    if (main_done && in->main_started) {
        pthread_join(in->main_thread, NULL);
        in->main_started = 0;
        if (!in->stopping) {
            /* a worker without its milter is useless: stop it gracefully,
             * the master starts another */
            in->host->log(in->ctx, NULL, SLUICE_LOG_ERROR,
                          "libmilter stopped unexpectedly (rc %d); stopping "
                          "this worker",
                          main_rc);
            raise(SIGTERM);
        }
    }
    if (in->stopping && in->io != NULL)
        in->host->log(in->ctx, NULL, SLUICE_LOG_DEBUG,
                      "stopping: %zu connections, %zu messages in flight",
                      nsessions, in->busy);
    if (in->stopping && in->busy == 0 && nsessions == 0 && in->io != NULL)
        mlt_teardown(in); /* nothing in flight: let the worker exit */
}

/* ---------------------------------------------------------------- */
/* Stage hooks                                                       */

static void *mlt_main_thread(void *arg)
{
    mlt_inst *in = arg;
    int rc = smfi_main();

    pthread_mutex_lock(&in->mu);
    in->main_done = 1;
    in->main_rc = rc;
    pthread_mutex_unlock(&in->mu);
    mlt_kick(in);
    return NULL;
}

/* libmilter's name for the master's socket: only the family matters
 * (libmilter drops connections from another family), and for a unix
 * socket the path, which is kept from libmilter's unlink. */
static int mlt_spec(mlt_inst *in)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char a[INET6_ADDRSTRLEN] = "";

    if (getsockname(in->conf->listen_fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(in->spec, sizeof(in->spec), "inet:%d@%s", ntohs(s4->sin_port),
                 a);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        snprintf(in->spec, sizeof(in->spec), "inet6:%d@[%s]",
                 ntohs(s6->sin6_port), a);
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *su = (struct sockaddr_un *)&ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
        if (n == 0 || n >= sizeof(in->unix_path) || su->sun_path[0] == '\0')
            return -1;
        memcpy(in->unix_path, su->sun_path, n);
        in->unix_path[n] = '\0';
        snprintf(in->spec, sizeof(in->spec), "local:%s", in->unix_path);
    } else {
        return -1;
    }
    return 0;
}

static int milter_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                       void **instp)
{
    milter_conf *c = conf;
    mlt_inst *in;

    if (!SLUICE_HOST_HAS(host, header_edit) ||
        !SLUICE_HOST_HAS(host, body_changed) ||
        !SLUICE_HOST_HAS(host, rcpt_change)) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "this engine lacks the ABI 1.1 header edit or 1.2 "
                  "recipient change functions");
        return -1;
    }
    if (c->reply_timeout <= 0 || c->mta_timeout < 1) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "reply_timeout must be positive, mta_timeout at least 1s");
        return -1;
    }
    if ((in = calloc(1, sizeof(*in))) == NULL)
        return -1;
    in->host = host;
    in->ctx = ctx;
    in->conf = c;
    in->efd = -1;
    in->quiet[0] = in->quiet[1] = -1;
    pthread_mutex_init(&in->mu, NULL);
    in->logtail = &in->logs;
    *instp = in;
    return 0;
}

static int milter_worker_start(void *inst)
{
    mlt_inst *in = inst;
    const sluice_host *h = in->host;
    sigset_t all, old;
    int rc;

    if (mlt_active != NULL) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR,
               "libmilter serves one milter stage per process; this one is "
               "a second");
        return -1;
    }
    if (in->conf->listen_fd < 0 || mlt_spec(in) < 0) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "no usable listening socket");
        return -1;
    }
    in->max_size = h->max_message_size(in->ctx);
    in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->efd < 0 ||
        (in->io = h->io_new(in->ctx, in->efd, mlt_wakeup, in)) == NULL) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "eventfd: %s", strerror(errno));
        return -1;
    }
    mlt_active = in;
    if (smfi_register(mlt_desc) != MI_SUCCESS ||
        smfi_setconn(in->spec) != MI_SUCCESS ||
        smfi_settimeout((int)in->conf->mta_timeout) != MI_SUCCESS) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "libmilter refused %s",
               in->spec);
        return -1;
    }
    /* bind() inside becomes a dup2() of the master's socket */
    mlt_bind_fd = in->conf->listen_fd;
    snprintf(mlt_keep_path, sizeof(mlt_keep_path), "%s", in->unix_path);
    rc = smfi_opensocket(0);
    mlt_bind_fd = -1;
    if (rc != MI_SUCCESS) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR,
               "libmilter cannot use the socket %s", in->spec);
        return -1;
    }
    /* libmilter's threads block every signal: the loop keeps SIGTERM */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&in->main_thread, NULL, mlt_main_thread, in);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "pthread_create: %s",
               strerror(rc));
        return -1;
    }
    in->main_started = 1;
    h->io_set(in->io, SLUICE_READ);
    h->log(in->ctx, NULL, SLUICE_LOG_DEBUG, "libmilter serving %s", in->spec);
    return 0;
}

/* Stop accepting without stopping libmilter (see "Stopping" above).  A quiet
 * socket (one end of a socketpair, never readable) takes the place of the
 * listening socket under libmilter's listener, so new connections go to
 * the other workers while this one finishes its messages. */
static void mlt_stop_accepting(mlt_inst *in)
{
    if (mlt_lib_fd < 0 || in->quiet[0] >= 0)
        return;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in->quiet) < 0 ||
        dup2(in->quiet[0], mlt_lib_fd) < 0) {
        /* what is still accepted here is served until the worker exits
         * (shutdown_timeout at the latest) */
        in->host->log(in->ctx, NULL, SLUICE_LOG_WARN,
                      "cannot stop libmilter's listener: %s", strerror(errno));
        return;
    }
    (void)fcntl(mlt_lib_fd, F_SETFD, FD_CLOEXEC);
}

static void milter_worker_stop(void *inst, int graceful)
{
    mlt_inst *in = inst;

    pthread_mutex_lock(&in->mu);
    in->stopping = 1;
    pthread_mutex_unlock(&in->mu);
    if (!graceful) {
        mlt_teardown(in);
        return;
    }
    if (mlt_active == in)
        mlt_stop_accepting(in);
    mlt_kick(in); /* teardown once the messages in flight are done */
}

static void milter_fini(void *inst)
{
    mlt_inst *in = inst;
    mlt_logline *l, *next;

    if (in->main_started)
        return; /* a worker exiting hard: threads still hold `in` */
    for (l = in->logs; l; l = next) {
        next = l->next;
        free(l);
    }
    if (in->efd >= 0)
        close(in->efd);
    if (in->quiet[0] >= 0) {
        close(in->quiet[0]);
        close(in->quiet[1]);
    }
    pthread_mutex_destroy(&in->mu);
    if (mlt_active == in)
        mlt_active = NULL;
    free(in);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(struct sluice_stage),
    .name = "milter",
    .version = "1.0",
    .description = "milter ingress (sendmail, Postfix, JSMS) on 3366",
    .flags = SLUICE_STAGE_INGRESS,
    .directives = milter_directives,
    .conf_size = sizeof(milter_conf),
    .slot_size = 0,
    .init = milter_init,
    .worker_start = milter_worker_start,
    .worker_stop = milter_worker_stop,
    .fini = milter_fini,
};
