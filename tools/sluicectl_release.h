/*
 * sluicectl_release.h - release quarantined messages: reinject each stored
 * message over SMTP to the deliver path's next hop (Postfix's reinjection
 * smtpd, 127.0.0.1:10026 by default) and mark its recipients `released`.
 * Used by `sluicectl quarantine release` and meant for the Manager too.
 *
 * Many messages go through ONE SMTP session, one mail transaction each
 * (MAIL, RCPT..., DATA); a session that breaks is opened again for the
 * next message.  Each message has its own database transaction: its
 * message row is locked (SELECT ... FOR UPDATE, so two releases at once
 * cannot both send it), the recipients the MTA accepted are marked
 * released only after its 250 for the data, then COMMIT.  A failure
 * leaves that message's rows as they were (still quarantined: nothing is
 * lost) and the next message is tried; a next hop that cannot be reached
 * fails the remaining messages at once without waiting for each.
 *
 * If the database fails after the MTA's 250, the message is delivered but
 * its rows still say quarantined (status SLUICECTL_REL_UNRECORDED): a
 * second release would deliver it twice, never lose it.
 *
 * Speed: the per-message COMMITs are asynchronous (synchronous_commit
 * off for the run: no fsync wait each), and the run ends with one
 * synchronous commit that flushes them all before sluicectl_release()
 * returns.  Only a crash of the PostgreSQL server (or its machine) during
 * the run can lose the last fraction of a second of `released` marks:
 * those messages would be delivered again by a later release, never lost.
 * The session's synchronous_commit is reset to its default at the end.
 *
 * The caller owns the connection (libpq, synchronous; no transaction
 * open).  Nothing is printed: every outcome goes to the callback.
 *
 * SECURITY: stored messages are attacker-controlled: they go to the MTA
 * as data (dot-stuffed, bare CR/LF made CRLF); envelope addresses with
 * control characters or angle brackets are refused before they reach a
 * command line.  Values reach SQL as parameters only.
 */
#ifndef SLUICECTL_RELEASE_H
#define SLUICECTL_RELEASE_H

#include <libpq-fe.h>
#include <stddef.h>

enum {
    SLUICECTL_REL_OK = 0,     /* every recipient released */
    SLUICECTL_REL_PARTIAL,    /* some recipients refused by the MTA (the
                               * others released) */
    SLUICECTL_REL_NOTFOUND,   /* no such message, or none of its
                               * recipients left in quarantine */
    SLUICECTL_REL_FAILED,     /* not delivered (MTA refused or down, bad
                               * stored address, database error); rows as
                               * they were */
    SLUICECTL_REL_UNRECORDED, /* delivered, but the database could not
                               * record it */
    SLUICECTL_REL_SKIPPED     /* not tried: the database connection broke */
};

typedef struct sluicectl_release_opts {
    const char *next_hop;  /* "HOST:PORT" or "[V6]:PORT"; NULL:
                            * 127.0.0.1:10026 */
    double timeout;        /* connect and each reply, seconds; 0: 60 */
    const char *const *to; /* these recipients instead of the ones still
                            * quarantined (nto of them), or NULL */
    size_t nto;
    const char *by;   /* recorded as status_by; NULL: "sluicectl" */
    const char *helo; /* EHLO name; NULL: this host's name */
} sluicectl_release_opts;

typedef struct sluicectl_release_result {
    const char *ref;          /* the ID as given (row id or message id) */
    long long id;             /* the row id; 0 if not found */
    int status;               /* SLUICECTL_REL_* */
    size_t nrcpts;            /* recipients tried */
    const char *const *rcpts; /* valid during the callback only */
    const int *released;      /* released[i]: 1 if rcpts[i] was taken */
    size_t nreleased;
    const char *error; /* why not (all) released; "" if nothing */
} sluicectl_release_result;

typedef void (*sluicectl_release_cb)(const sluicectl_release_result *r,
                                     void *arg);

/*
 * Releases ids[0..n) (each a row id or a message id) in order; `cb` is
 * called once per id, in order.  Returns how many ids did not end
 * SLUICECTL_REL_OK, or -1 when the database connection broke (the rest
 * were reported SKIPPED).
 */
int sluicectl_release(PGconn *c, const char *const *ids, size_t n,
                      const sluicectl_release_opts *o, sluicectl_release_cb cb,
                      void *arg);

const char *sluicectl_release_status_name(int status);

/* The row id of a quarantined message named by `ref` (its row id or its
 * Message-ID), locked FOR UPDATE until the transaction ends when `lock`
 * is set.  > 0 the id; 0 none or more than one (err says which); -1 a
 * database error (err says it). */
long long sluicectl_quarantine_ref(PGconn *c, const char *ref, int lock,
                                   char *err, size_t errsz);

#endif
