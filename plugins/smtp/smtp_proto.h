/*
 * smtp_proto.h - the SMTP/LMTP server state machine of the `smtp` ingress,
 * free of any I/O: a session is fed the bytes the client sent, leaves the
 * bytes to send back in an output buffer, and reports the transaction to
 * its owner through a small table of callbacks.
 *
 * Interface
 *   smtp_proto_new(conf, events)   a session; the greeting is already in
 *                                  the output buffer
 *   smtp_proto_feed(s, p, n)       bytes from the client
 *   smtp_proto_run(s)              process what is buffered (after the
 *                                  output was drained: see below)
 *   smtp_proto_output(s, &n) / smtp_proto_consume(s, n)
 *                                  bytes to send, and how many were sent
 *   smtp_proto_resume(s, reply)    the decision on a paused MAIL, RCPT or
 *   smtp_proto_resume_n(s, r, n)   end of data (n replies: LMTP after DATA)
 *   smtp_proto_timeout(s)          421 timeout; the session closes
 *   smtp_proto_shutdown(s)         421 now if idle after a transaction,
 *                                  else after the transaction in progress
 *                                  (or the first one of a new connection)
 *   smtp_proto_free(s)
 *
 * Decisions.  MAIL, RCPT and the end of DATA are decided by the owner: the
 * session calls the event, becomes *paused*, keeps any further (pipelined)
 * input buffered and processes it only after smtp_proto_resume().  The
 * owner may resume from inside the event or any time later.  A 2xx reply
 * accepts the sender or recipient; 421 closes the session after it.
 *
 * Flow control.  The session stops processing input while paused or while
 * more than SMTP_PROTO_OUT_HIGH bytes wait in its output; the owner should
 * not read from the client then (smtp_proto_wants_input()) and calls
 * smtp_proto_run() once output is drained.  Buffered input is bounded by
 * what the owner feeds plus one command line.
 *
 * DATA content is passed to the `data` event as it arrives, dot-unstuffed,
 * line ends exactly as received; the end is "\r\n.\r\n" only.
 *
 * Diagnostics: every protocol error is answered (RFC 3463 enhanced codes)
 * and reported through the `error` event for the log; after max_errors of
 * them the session answers 421 and closes.  Out of memory closes the
 * session (smtp_proto_closing()) without a reply: the MTA keeps the mail.
 *
 * SECURITY: every input byte is attacker-controlled (in practice the MTA on
 * loopback relays what the Internet sent).  Lines are bounded by
 * max_line; buffers never grow past what the limits allow; reply texts
 * handed in by the owner are cleaned of CR, LF and NUL.
 */
#ifndef SMTP_PROTO_H
#define SMTP_PROTO_H

#include <stddef.h>

#define SMTP_PROTO_OUT_HIGH 65536

enum {
    SMTP_PROTO_NONE = 0, /* no greeting yet */
    SMTP_PROTO_HELO,
    SMTP_PROTO_EHLO,
    SMTP_PROTO_LHLO
};

typedef struct smtp_proto_conf {
    const char *hostname; /* in the EHLO reply and the greeting */
    const char *banner;   /* greeting name: NULL or "" for hostname */
    size_t max_line;      /* command line limit, CRLF included */
    size_t max_size;      /* message size limit; 0: none */
    size_t max_rcpts;     /* accepted recipients per transaction; 0: none */
    unsigned max_errors;  /* protocol errors before 421; 0: none */
    int xforward;         /* offer and accept XFORWARD */
} smtp_proto_conf;

/* XFORWARD facts; NULL (or port 0) when not sent or unavailable. */
typedef struct smtp_proto_xfwd {
    char *name, *addr, *helo, *proto, *ident, *source;
    int port;
} smtp_proto_xfwd;

typedef struct smtp_proto_events {
    void *arg;
    /* HELO, EHLO or LHLO (SMTP_PROTO_*) accepted with this name. */
    void (*helo)(void *arg, int greet, const char *name);
    /* Decisions: the session is paused until smtp_proto_resume(). */
    void (*mail)(void *arg, const char *addr, const char *params,
                 const smtp_proto_xfwd *xf);
    void (*rcpt)(void *arg, const char *addr, const char *params);
    void (*eom)(void *arg);
    /* Content: NULL to go on, or the reply to give at the end of data
     * (the rest of the content is then read and dropped). */
    const char *(*data)(void *arg, const char *p, size_t n);
    /* The open transaction (MAIL accepted, or being decided) is given up:
     * RSET, HELO, QUIT, size limit, timeout, shutdown, error limit. */
    void (*reset)(void *arg);
    /* A protocol error was answered: the command (cleaned, may be cut)
     * and the reply, for the log. */
    void (*error)(void *arg, const char *cmd, const char *reply);
} smtp_proto_events;

typedef struct smtp_proto smtp_proto;

smtp_proto *smtp_proto_new(const smtp_proto_conf *conf,
                           const smtp_proto_events *ev);
void smtp_proto_free(smtp_proto *s);

void smtp_proto_feed(smtp_proto *s, const void *p, size_t n);
void smtp_proto_run(smtp_proto *s);
const char *smtp_proto_output(smtp_proto *s, size_t *len);
void smtp_proto_consume(smtp_proto *s, size_t n);

void smtp_proto_resume(smtp_proto *s, const char *reply);
void smtp_proto_resume_n(smtp_proto *s, const char *const *replies, size_t n);

void smtp_proto_timeout(smtp_proto *s);
void smtp_proto_shutdown(smtp_proto *s);

/* State, for the owner's I/O and timers. */
int smtp_proto_paused(const smtp_proto *s);
int smtp_proto_in_data(const smtp_proto *s);
int smtp_proto_in_txn(const smtp_proto *s);  /* MAIL accepted or pending */
int smtp_proto_closing(const smtp_proto *s); /* close once output sent */
int smtp_proto_wants_input(const smtp_proto *s);
int smtp_proto_greeting(const smtp_proto *s);    /* SMTP_PROTO_* */
size_t smtp_proto_buffered(const smtp_proto *s); /* unprocessed input */

/* xtext (RFC 3461) decoding into a NUL-terminated string; -1 if invalid. */
int smtp_proto_xtext_decode(const char *in, size_t len, char *out,
                            size_t outsize);

#endif
