/*
 * pact.h - the policy stage's envelope actions (ABI 1.2): `redirect`
 * changes the recipients through host->rcpt_add()/rcpt_del(); `notify`
 * builds a short notification message (RFC 5436 mailto) that the engine
 * sends through the final stages (host->message_send(), the deliver
 * stage's reinjection path) once the message is settled.
 *
 * Interface
 *   pact_redirect(): 0, or -1 when the envelope could not be changed
 *   (the caller tempfails: mail is never delivered to the wrong place).
 *   pact_notify(): never fails the message; a notification that cannot
 *   be built or queued is logged with the message id and dropped.
 *   pact_message(): the notification's text (for the unit tests too).
 *
 * SECURITY: everything taken from the triggering message (subject,
 * addresses) goes into the notification with control characters
 * replaced and lengths cut; header values are RFC 2047-encoded when
 * they are not ASCII, so nothing can add a header line.
 */
#ifndef SLUICE_PACT_H
#define SLUICE_PACT_H

#include <sluice/stage.h>
#include <stddef.h>
#include <time.h>

#include "plang.h"

/* What a notification says about the message that triggered it. */
typedef struct pact_info {
    const char *from;     /* From: when the script gives no :from */
    const char *hostname; /* Message-ID domain */
    const char *id;       /* sluice's message id */
    const char *mta_id;   /* the MTA's queue id, or "" */
    const char *sender;   /* envelope sender, "" for <> */
    const char *rcpts;    /* envelope recipients, "a, b" */
    const char *subject;  /* its Subject (decoded), or NULL */
    const char *hfrom;    /* its From field, or NULL */
    double score;
    const char *action; /* "keep", "quarantine (reason)" ... */
    time_t now;
    unsigned seq; /* numbers notifications of one message */
} pact_info;

int pact_redirect(const sluice_host *h, sluice_ctx *ctx, sluice_txn *txn,
                  const plang_result *r);
void pact_notify(const sluice_host *h, sluice_ctx *ctx, sluice_txn *txn,
                 const plang_result *r, const char *from, const char *action);
/* The whole message, CRLF line ends, NUL-terminated; NULL: out of memory. */
char *pact_message(const pact_info *in, const plang_notify *n, size_t *len);

#endif
