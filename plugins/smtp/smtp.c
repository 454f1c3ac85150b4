/*
 * smtp.c - the `smtp` ingress stage: the content_filter listener
 * (default 127.0.0.1:10025) that Postfix hands mail to over SMTP or LMTP
 * (FILTER_README's advanced content filter).  Each message is fed into
 * the engine's chain through the host's transaction API and the MTA hears
 * the outcome: 250 only when the chain says every recipient is done.
 *
 * Interface: the stage descriptor (SLUICE_STAGE_DECLARE) with directives
 * listen, max_sessions, idle_timeout, data_timeout, max_line_length,
 * max_recipients, max_errors, xforward, banner.  In each worker,
 * worker_start() watches the listening socket the master bound; every
 * accepted connection is a session: a protocol state machine
 * (smtp_proto.c), an fd watcher and one timer, all on the worker's loop.
 *
 * Mapping: MAIL opens a transaction (txn_new, txn_set_client from
 * XFORWARD or the TCP peer, txn_set_sender, run MAIL); RCPT adds and runs
 * RCPT (a refusal drops the recipient again); content goes to txn_write as
 * it arrives; the end of data runs EOM and the answer is built from every
 * recipient's settled state: LMTP one reply each; SMTP 250 only if all are
 * done, the first refusal if all were refused, else 451 (retry: a
 * duplicate for some is better than a loss for others).
 * Recipients changed by a stage (ABI 1.2, the policy's redirect) need
 * nothing here: deliver delivers the changed list, and once EOM has run
 * the engine answers rcpt_count()/rcpt_state() for the recipients this
 * ingress added, each derived from the delivery it stands for.
 *
 * Diagnostics: protocol errors, timeouts, lost connections and mixed
 * outcomes are logged with the peer (and the message id when there is
 * one).  Counters: sessions, sessions_refused, messages, bytes,
 * protocol_errors, timeouts.  Anything unexpected answers 4xx or drops the
 * connection, so the MTA keeps the mail.
 *
 * SECURITY: listens on loopback by default and trusts its client to be the
 * MTA (XFORWARD is accepted from it).  Every byte is still treated as
 * hostile: limits on sessions, line length, message size, recipients,
 * errors, and time.  Runs in the worker as the unprivileged user; the
 * listening socket belongs to the engine.
 */
#include <sluice/stage.h>

#include "smtp_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define SMTP_READ_SIZE 16384
#define SMTP_ACCEPT_BURST 64

typedef struct smtp_conf {
    int listen_fd;
    long long max_sessions;
    double idle_timeout;
    double data_timeout;
    size_t max_line;
    long long max_recipients;
    long long max_errors;
    int xforward;
    char *banner;
} smtp_conf;

struct smtp_sess;

typedef struct smtp_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    smtp_conf *conf;
    smtp_proto_conf pconf;
    sluice_io *listener;
    sluice_timer *accept_pause; /* out of fds: retry accepting later */
    struct smtp_sess *sessions;
    size_t nsessions;
    int stopping;
} smtp_inst;

enum { SMTP_PH_NONE = 0, SMTP_PH_MAIL, SMTP_PH_RCPT, SMTP_PH_EOM };

typedef struct smtp_sess {
    smtp_inst *inst;
    struct smtp_sess *prev, *next;
    int fd;
    sluice_io *io;
    sluice_timer *timer;
    smtp_proto *proto;
    sluice_txn *txn;
    int phase;    /* the txn_run in flight */
    size_t bytes; /* this message's content so far */
    int greet;
    char helo[256];
    char peer[64]; /* address, "" if not IP */
    int port;
    char peer_log[80]; /* "[addr]:port" for log lines */
} smtp_sess;

static const sluice_directive smtp_directives[] = {
    {"listen", SLUICE_CONF_LISTEN, offsetof(smtp_conf, listen_fd),
     "127.0.0.1:10025", 0, 0, NULL,
     "address the MTA's content_filter connects to"},
    {"max_sessions", SLUICE_CONF_INT, offsetof(smtp_conf, max_sessions), "500",
     1, 1000000, NULL, "concurrent sessions per worker"},
    {"idle_timeout", SLUICE_CONF_DURATION, offsetof(smtp_conf, idle_timeout),
     "300s", 0, 0, NULL, "time to wait for the next command"},
    {"data_timeout", SLUICE_CONF_DURATION, offsetof(smtp_conf, data_timeout),
     "300s", 0, 0, NULL, "time to wait between pieces of message content"},
    {"max_line_length", SLUICE_CONF_SIZE, offsetof(smtp_conf, max_line), "2048",
     0, 1048576, NULL, "longest command line, CRLF included"},
    {"max_recipients", SLUICE_CONF_INT, offsetof(smtp_conf, max_recipients),
     "1000", 1, 1000000, NULL, "recipients per message"},
    {"max_errors", SLUICE_CONF_INT, offsetof(smtp_conf, max_errors), "20", 0,
     1000000, NULL, "protocol errors before the session is closed (0: any)"},
    {"xforward", SLUICE_CONF_BOOL, offsetof(smtp_conf, xforward), "yes", 0, 0,
     NULL, "offer XFORWARD and take the client facts from it"},
    {"banner", SLUICE_CONF_STRING, offsetof(smtp_conf, banner), "", 0, 0, NULL,
     "name in the 220 greeting (empty: the host name)"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

/* ---------------------------------------------------------------- */
/* Sessions                                                          */

static void smtp_sess_update(smtp_sess *ss);

static void smtp_sess_destroy(smtp_sess *ss)
{
    smtp_inst *in = ss->inst;
    const sluice_host *h = in->host;

    if (ss->txn) {
        h->txn_free(ss->txn);
        ss->txn = NULL;
    }
    h->io_free(ss->io);
    h->timer_free(ss->timer);
    close(ss->fd);
    smtp_proto_free(ss->proto);
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        in->sessions = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    in->nsessions--;
    free(ss);
}

/* The client is gone or broken: drop everything, answer nothing. */
static void smtp_sess_lost(smtp_sess *ss, const char *why)
{
    smtp_inst *in = ss->inst;

    if (ss->txn || smtp_proto_in_txn(ss->proto))
        in->host->log(
            in->ctx, ss->txn, SLUICE_LOG_WARN,
            "%s from %s %s; the message is not taken", why, ss->peer_log,
            smtp_proto_in_data(ss->proto) ? "during DATA" : "in a transaction");
    else
        in->host->log(in->ctx, NULL, SLUICE_LOG_DEBUG, "%s from %s", why,
                      ss->peer_log);
    smtp_sess_destroy(ss);
}

/* Writes what is pending: 0, or -1 if the connection broke. */
static int smtp_sess_flush(smtp_sess *ss)
{
    for (;;) {
        size_t n;
        const char *p = smtp_proto_output(ss->proto, &n);
        ssize_t w;

        if (n == 0)
            return 0;
        w = send(ss->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        smtp_proto_consume(ss->proto, (size_t)w);
    }
}

/* A safe point (never inside a protocol event): write, go on with
 * buffered input, close if due, and set the watcher and the timer. */
static void smtp_sess_update(smtp_sess *ss)
{
    smtp_inst *in = ss->inst;
    const sluice_host *h = in->host;
    size_t pending;
    int rounds, ev = 0;

    for (rounds = 0; rounds < 64; rounds++) {
        size_t before;
        if (smtp_sess_flush(ss) < 0) {
            smtp_sess_lost(ss, "write error");
            return;
        }
        smtp_proto_output(ss->proto, &pending);
        before = smtp_proto_buffered(ss->proto);
        if (pending > 0 || smtp_proto_closing(ss->proto) ||
            smtp_proto_paused(ss->proto) || before == 0)
            break;
        smtp_proto_run(ss->proto); /* input held back by output */
        if (smtp_proto_buffered(ss->proto) == before &&
            (smtp_proto_output(ss->proto, &pending), pending == 0) &&
            !smtp_proto_closing(ss->proto) && !smtp_proto_paused(ss->proto))
            break; /* a partial line: wait for more input */
    }
    smtp_proto_output(ss->proto, &pending);
    if (smtp_proto_closing(ss->proto) && pending == 0) {
        smtp_sess_destroy(ss);
        return;
    }
    if (smtp_proto_wants_input(ss->proto))
        ev |= SLUICE_READ;
    if (pending > 0)
        ev |= SLUICE_WRITE;
    h->io_set(ss->io, ev);
    if (smtp_proto_paused(ss->proto) && pending == 0)
        h->timer_stop(ss->timer); /* the engine times its stages */
    else
        h->timer_start(ss->timer, smtp_proto_in_data(ss->proto)
                                      ? in->conf->data_timeout
                                      : in->conf->idle_timeout);
}

static void smtp_sess_io(sluice_io *io, int revents, void *arg)
{
    smtp_sess *ss = arg;
    char buf[SMTP_READ_SIZE];

    if ((revents & SLUICE_READ) && smtp_proto_wants_input(ss->proto)) {
        ssize_t n = recv(ss->fd, buf, sizeof(buf), 0);
        if (n == 0) {
            smtp_sess_lost(ss, "connection closed");
            return;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            smtp_sess_lost(ss, "read error");
            return;
        }
        if (n > 0)
            smtp_proto_feed(ss->proto, buf, (size_t)n);
    }
    smtp_sess_update(ss);
}

static void smtp_sess_timeout(sluice_timer *t, void *arg)
{
    smtp_sess *ss = arg;
    smtp_inst *in = ss->inst;
    size_t pending;

    smtp_proto_output(ss->proto, &pending);
    in->host->counter_add(in->ctx, "timeouts", 1);
    if (smtp_proto_closing(ss->proto) || pending > SMTP_PROTO_OUT_HIGH) {
        in->host->log(in->ctx, ss->txn, SLUICE_LOG_WARN,
                      "timeout writing to %s; closing", ss->peer_log);
        smtp_sess_destroy(ss);
        return;
    }
    in->host->log(in->ctx, ss->txn, SLUICE_LOG_WARN, "timeout %s from %s",
                  smtp_proto_in_data(ss->proto) ? "during DATA"
                                                : "waiting for a command",
                  ss->peer_log);
    smtp_proto_timeout(ss->proto); /* aborts the transaction */
    smtp_sess_update(ss);
}

/* ---------------------------------------------------------------- */
/* Protocol events -> the engine                                     */

static void smtp_ev_helo(void *arg, int greet, const char *name)
{
    smtp_sess *ss = arg;

    ss->greet = greet;
    snprintf(ss->helo, sizeof(ss->helo), "%s", name);
}

/* "code xcode text" from the engine's reply for a refused phase; the
 * code class always matches the verdict (a refusal is never a 2xx). */
static void smtp_engine_reply(smtp_sess *ss, sluice_verdict v, char *out,
                              size_t size)
{
    const char *code = NULL, *xcode = NULL, *text = NULL;
    char want = v == SLUICE_REJECT ? '5' : '4';

    ss->inst->host->txn_reply(ss->txn, &code, &xcode, &text);
    if (code == NULL || code[0] != want || strlen(code) != 3 ||
        (xcode && xcode[0] && xcode[0] != want)) {
        code = want == '5' ? "550" : "451";
        xcode = want == '5' ? "5.7.1" : "4.3.0";
    }
    if (text == NULL)
        text = "";
    if (xcode && xcode[0])
        snprintf(out, size, "%s %s %s", code, xcode, text);
    else
        snprintf(out, size, "%s %s", code, text);
}

/* The text of a one-line reply, without its code and enhanced code. */
static const char *smtp_reply_text(const char *r)
{
    const char *p;

    if (strlen(r) < 4 || !isdigit((unsigned char)r[0]))
        return r;
    r += 4;
    if (isdigit((unsigned char)r[0]) && r[1] == '.') {
        p = strchr(r, ' ');
        return p ? p + 1 : "";
    }
    return r;
}

static const char *smtp_state_reply(sluice_rcpt_state st)
{
    switch (st) {
    case SLUICE_RCPT_DONE:
        return "250 2.0.0 Ok";
    case SLUICE_RCPT_REJECTED:
        return "550 5.0.0 Rejected";
    default:
        return "451 4.3.0 Error: not delivered, try again later";
    }
}

static void smtp_eom_answer(smtp_sess *ss)
{
    smtp_inst *in = ss->inst;
    const sluice_host *h = in->host;
    sluice_txn *txn = ss->txn;
    size_t n = h->rcpt_count(txn), i, done = 0, rej = 0, tmp = 0;
    char **lines = calloc(n ? n : 1, sizeof(char *));
    char one[600];
    const char *first_tmp = NULL;
    int ok = lines != NULL;

    for (i = 0; ok && i < n; i++) {
        const char *r = NULL;
        sluice_rcpt_state st = h->rcpt_state(txn, i, &r);
        if (st != SLUICE_RCPT_DONE && st != SLUICE_RCPT_REJECTED)
            st = SLUICE_RCPT_TEMPFAIL; /* OPEN cannot be, but never 250 */
        if (r == NULL || strlen(r) < 3 ||
            r[0] != (st == SLUICE_RCPT_DONE       ? '2'
                     : st == SLUICE_RCPT_REJECTED ? '5'
                                                  : '4'))
            r = smtp_state_reply(st); /* the code must match the state */
        if ((lines[i] = strdup(r)) == NULL)
            ok = 0;
        if (st == SLUICE_RCPT_DONE)
            done++;
        else if (st == SLUICE_RCPT_REJECTED)
            rej++;
        else if (tmp++ == 0)
            first_tmp = lines[i];
    }
    if (!ok || n == 0) {
        snprintf(one, sizeof(one), "451 4.3.0 %s Error: internal error",
                 h->txn_id(txn));
        h->log(in->ctx, txn, SLUICE_LOG_ERROR,
               "%s: cannot build the answer (%zu recipients)", ss->peer_log, n);
    } else if (ss->greet == SMTP_PROTO_LHLO) {
        one[0] = '\0';
    } else if (done == n) {
        snprintf(one, sizeof(one), "250 2.0.0 Ok: %s %s", h->txn_id(txn),
                 smtp_reply_text(lines[0]));
    } else if (rej == n) {
        snprintf(one, sizeof(one), "%s", lines[0]);
    } else if (tmp > 0) {
        snprintf(one, sizeof(one),
                 "451 4.3.0 %s Error: %zu of %zu "
                 "recipients deferred: %s",
                 h->txn_id(txn), tmp, n, smtp_reply_text(first_tmp));
        h->log(in->ctx, txn, SLUICE_LOG_WARN,
               "%s: %zu done, %zu rejected, %zu deferred: answering 451 "
               "so the MTA retries",
               ss->peer_log, done, rej, tmp);
    } else {
        snprintf(one, sizeof(one),
                 "451 4.3.0 %s Error: %zu of %zu "
                 "recipients rejected, the others delivered; retrying "
                 "(use LMTP for per-recipient answers)",
                 h->txn_id(txn), rej, n);
        h->log(in->ctx, txn, SLUICE_LOG_WARN,
               "%s: %zu done and %zu rejected over SMTP: answering 451; "
               "the done ones will be delivered again on retry (LMTP "
               "avoids this)",
               ss->peer_log, done, rej);
    }
    if (ok && n > 0 && done > 0)
        h->counter_add(in->ctx, "messages", 1);
    h->txn_free(txn);
    ss->txn = NULL;
    if (ok && n > 0 && ss->greet == SMTP_PROTO_LHLO)
        smtp_proto_resume_n(ss->proto, (const char *const *)lines, n);
    else
        smtp_proto_resume(ss->proto, one);
    for (i = 0; lines && i < n; i++)
        free(lines[i]);
    free(lines);
}

static void smtp_run_done(sluice_txn *txn, sluice_verdict v, void *arg)
{
    smtp_sess *ss = arg;
    char reply[600];
    int phase = ss->phase;

    ss->phase = SMTP_PH_NONE;
    if (txn != ss->txn) /* cannot happen: txn_free cancels the callback */
        return;
    switch (phase) {
    case SMTP_PH_MAIL:
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL) {
            smtp_engine_reply(ss, v, reply, sizeof(reply));
            ss->inst->host->txn_free(ss->txn);
            ss->txn = NULL;
        } else {
            snprintf(reply, sizeof(reply), "250 2.1.0 Ok");
        }
        smtp_proto_resume(ss->proto, reply);
        break;
    case SMTP_PH_RCPT:
        if (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL) {
            smtp_engine_reply(ss, v, reply, sizeof(reply));
            ss->inst->host->txn_drop_rcpt(ss->txn);
        } else {
            snprintf(reply, sizeof(reply), "250 2.1.5 Ok");
        }
        smtp_proto_resume(ss->proto, reply);
        break;
    case SMTP_PH_EOM:
        smtp_eom_answer(ss);
        break;
    default:
        return;
    }
    smtp_sess_update(ss);
}

static void smtp_run(smtp_sess *ss, sluice_phase phase, int ph)
{
    ss->phase = ph;
    ss->inst->host->txn_run(ss->txn, phase, smtp_run_done, ss);
}

static void smtp_ev_mail(void *arg, const char *addr, const char *params,
                         const smtp_proto_xfwd *xf)
{
    smtp_sess *ss = arg;
    smtp_inst *in = ss->inst;
    const sluice_host *h = in->host;
    sluice_client c;
    int have_xf = xf->name || xf->addr || xf->helo || xf->proto || xf->ident ||
                  xf->source || xf->port;

    if (ss->txn) { /* cannot happen; never leak one */
        h->txn_free(ss->txn);
        ss->txn = NULL;
    }
    if ((ss->txn = h->txn_new(in->ctx)) == NULL) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "%s: cannot open a transaction",
               ss->peer_log);
        smtp_proto_resume(ss->proto, "451 4.3.0 Error: internal error");
        return;
    }
    ss->bytes = 0;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    if (have_xf && in->conf->xforward) {
        c.addr = xf->addr ? xf->addr : "";
        c.name = xf->name ? xf->name : "";
        c.helo = xf->helo ? xf->helo : "";
        c.proto = xf->proto ? xf->proto : "";
        c.ident = xf->ident ? xf->ident : "";
        c.port = xf->port;
    } else {
        c.addr = ss->peer;
        c.name = "";
        c.helo = ss->helo;
        c.proto = ss->greet == SMTP_PROTO_LHLO   ? "LMTP"
                  : ss->greet == SMTP_PROTO_EHLO ? "ESMTP"
                                                 : "SMTP";
        c.ident = "";
        c.port = ss->port;
    }
    h->txn_set_client(ss->txn, &c);
    if (h->txn_set_sender(ss->txn, addr, params) < 0) {
        h->txn_free(ss->txn);
        ss->txn = NULL;
        smtp_proto_resume(ss->proto, "451 4.3.0 Error: internal error");
        return;
    }
    smtp_run(ss, SLUICE_PHASE_MAIL, SMTP_PH_MAIL);
}

static void smtp_ev_rcpt(void *arg, const char *addr, const char *params)
{
    smtp_sess *ss = arg;
    const sluice_host *h = ss->inst->host;

    if (ss->txn == NULL || h->txn_add_rcpt(ss->txn, addr, params) < 0) {
        h->log(ss->inst->ctx, ss->txn, SLUICE_LOG_ERROR,
               "%s: cannot add recipient", ss->peer_log);
        smtp_proto_resume(ss->proto, "451 4.3.0 Error: internal error");
        return;
    }
    smtp_run(ss, SLUICE_PHASE_RCPT, SMTP_PH_RCPT);
}

static const char *smtp_ev_data(void *arg, const char *p, size_t n)
{
    smtp_sess *ss = arg;
    smtp_inst *in = ss->inst;

    in->host->counter_add(in->ctx, "bytes", (long long)n);
    if (ss->txn == NULL)
        return "451 4.3.0 Error: internal error";
    if (in->host->txn_write(ss->txn, p, n) < 0) {
        size_t max = in->pconf.max_size;
        if (max && (ss->bytes > max || n > max - ss->bytes))
            return "552 5.3.4 Error: message file too big";
        in->host->log(in->ctx, ss->txn, SLUICE_LOG_ERROR,
                      "%s: message content refused by the engine",
                      ss->peer_log);
        return "451 4.3.0 Error: cannot store the message";
    }
    ss->bytes += n;
    return NULL;
}

static void smtp_ev_eom(void *arg)
{
    smtp_sess *ss = arg;

    if (ss->txn == NULL) {
        smtp_proto_resume(ss->proto, "451 4.3.0 Error: internal error");
        return;
    }
    smtp_run(ss, SLUICE_PHASE_EOM, SMTP_PH_EOM);
}

static void smtp_ev_reset(void *arg)
{
    smtp_sess *ss = arg;

    if (ss->txn) {
        ss->inst->host->txn_free(ss->txn); /* aborts a running phase */
        ss->txn = NULL;
    }
    ss->phase = SMTP_PH_NONE;
}

static void smtp_ev_error(void *arg, const char *cmd, const char *reply)
{
    smtp_sess *ss = arg;
    smtp_inst *in = ss->inst;

    in->host->counter_add(in->ctx, "protocol_errors", 1);
    in->host->log(in->ctx, ss->txn, SLUICE_LOG_WARN,
                  "protocol error from %s: \"%s\": %s", ss->peer_log, cmd,
                  reply);
}

/* ---------------------------------------------------------------- */
/* Accepting                                                         */

static void smtp_peer(smtp_sess *ss, const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ss->peer, sizeof(ss->peer));
        ss->port = ntohs(s4->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ss->peer, sizeof(ss->peer));
        ss->port = ntohs(s6->sin6_port);
    }
    if (ss->peer[0])
        snprintf(ss->peer_log, sizeof(ss->peer_log), "[%s]:%d", ss->peer,
                 ss->port);
    else
        snprintf(ss->peer_log, sizeof(ss->peer_log), "local socket");
}

static const smtp_proto_events smtp_events = {
    NULL,        smtp_ev_helo, smtp_ev_mail,  smtp_ev_rcpt,
    smtp_ev_eom, smtp_ev_data, smtp_ev_reset, smtp_ev_error};

static void smtp_refuse(smtp_inst *in, int fd)
{
    char line[320];
    int n = snprintf(line, sizeof(line),
                     "421 4.7.0 %s Error: too many sessions\r\n",
                     in->pconf.hostname);

    if (n > 0 && (size_t)n < sizeof(line))
        (void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
    in->host->counter_add(in->ctx, "sessions_refused", 1);
}

static void smtp_accept_resume(sluice_timer *t, void *arg)
{
    smtp_inst *in = arg;

    if (in->listener && !in->stopping)
        in->host->io_set(in->listener, SLUICE_READ);
}

static void smtp_accept(sluice_io *io, int revents, void *arg)
{
    smtp_inst *in = arg;
    const sluice_host *h = in->host;
    int i;

    for (i = 0; i < SMTP_ACCEPT_BURST && !in->stopping; i++) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof(sa);
        smtp_sess *ss;
        smtp_proto_events ev = smtp_events;
        int fd = accept4(in->conf->listen_fd, (struct sockaddr *)&sa, &salen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* level-triggered: pause instead of spinning */
                h->log(in->ctx, NULL, SLUICE_LOG_WARN,
                       "accept: %s; pausing for 1s", strerror(errno));
                h->io_set(in->listener, 0);
                h->timer_start(in->accept_pause, 1.0);
            }
            return; /* EAGAIN and the rest */
        }
        if (in->nsessions >= (size_t)in->conf->max_sessions) {
            h->log(in->ctx, NULL, SLUICE_LOG_WARN,
                   "too many sessions (%zu); refusing a connection",
                   in->nsessions);
            smtp_refuse(in, fd);
            continue;
        }
        if ((ss = calloc(1, sizeof(*ss))) == NULL) {
            close(fd);
            continue;
        }
        ss->inst = in;
        ss->fd = fd;
        smtp_peer(ss, &sa);
        ev.arg = ss;
        ss->proto = smtp_proto_new(&in->pconf, &ev);
        ss->io = h->io_new(in->ctx, fd, smtp_sess_io, ss);
        ss->timer = h->timer_new(in->ctx, smtp_sess_timeout, ss);
        if (ss->proto == NULL || ss->io == NULL || ss->timer == NULL) {
            smtp_proto_free(ss->proto);
            h->io_free(ss->io);
            h->timer_free(ss->timer);
            close(fd);
            free(ss);
            continue;
        }
        ss->next = in->sessions;
        if (in->sessions)
            in->sessions->prev = ss;
        in->sessions = ss;
        in->nsessions++;
        h->counter_add(in->ctx, "sessions", 1);
        h->log(in->ctx, NULL, SLUICE_LOG_DEBUG, "connect from %s",
               ss->peer_log);
        smtp_sess_update(ss); /* sends the greeting */
    }
}

/* ---------------------------------------------------------------- */
/* Stage hooks                                                       */

static int smtp_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                     void **instp)
{
    smtp_conf *c = conf;
    smtp_inst *in;

    if (c->max_line < 512) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "max_line_length %zu is below the RFC 5321 minimum of 512",
                  c->max_line);
        return -1;
    }
    if (c->idle_timeout <= 0 || c->data_timeout <= 0) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "idle_timeout and data_timeout must be positive");
        return -1;
    }
    if ((in = calloc(1, sizeof(*in))) == NULL)
        return -1;
    in->host = host;
    in->ctx = ctx;
    in->conf = c;
    *instp = in;
    return 0;
}

static int smtp_worker_start(void *inst)
{
    smtp_inst *in = inst;
    const sluice_host *h = in->host;
    const char *hn = h->hostname(in->ctx);

    if (in->conf->listen_fd < 0) {
        h->log(in->ctx, NULL, SLUICE_LOG_ERROR, "no listening socket");
        return -1;
    }
    in->pconf.hostname = hn && hn[0] ? hn : "localhost";
    in->pconf.banner = in->conf->banner;
    in->pconf.max_line = in->conf->max_line;
    in->pconf.max_size = h->max_message_size(in->ctx);
    in->pconf.max_rcpts = (size_t)in->conf->max_recipients;
    in->pconf.max_errors = (unsigned)in->conf->max_errors;
    in->pconf.xforward = in->conf->xforward;
    in->stopping = 0;
    in->listener = h->io_new(in->ctx, in->conf->listen_fd, smtp_accept, in);
    in->accept_pause = h->timer_new(in->ctx, smtp_accept_resume, in);
    if (in->listener == NULL || in->accept_pause == NULL)
        return -1;
    h->io_set(in->listener, SLUICE_READ);
    return 0;
}

static void smtp_worker_stop(void *inst, int graceful)
{
    smtp_inst *in = inst;
    const sluice_host *h = in->host;
    smtp_sess *ss, *next;

    in->stopping = 1;
    if (in->listener) { /* the fd itself belongs to the engine */
        h->io_free(in->listener);
        in->listener = NULL;
    }
    if (in->accept_pause) {
        h->timer_free(in->accept_pause);
        in->accept_pause = NULL;
    }
    for (ss = in->sessions; ss != NULL; ss = next) {
        next = ss->next;
        if (graceful) {
            smtp_proto_shutdown(ss->proto);
            smtp_sess_update(ss); /* may free ss */
        } else {
            if (ss->txn || smtp_proto_in_txn(ss->proto))
                h->log(in->ctx, ss->txn, SLUICE_LOG_WARN,
                       "stopping now: dropping the session from %s in a "
                       "transaction (the MTA keeps the message)",
                       ss->peer_log);
            smtp_sess_destroy(ss);
        }
    }
}

static void smtp_fini(void *inst)
{
    free(inst);
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(struct sluice_stage),
    .name = "smtp",
    .version = "1.0",
    .description = "content_filter ingress: SMTP/LMTP with XFORWARD",
    .flags = SLUICE_STAGE_INGRESS,
    .directives = smtp_directives,
    .conf_size = sizeof(smtp_conf),
    .slot_size = 0,
    .init = smtp_init,
    .worker_start = smtp_worker_start,
    .worker_stop = smtp_worker_stop,
    .fini = smtp_fini,
};
