/*
 * scan.h - run messages through the configured chain in-process, without
 * an ingress and without the final stages: what `sluicectl scan` uses.
 *
 *   scan_chain_load(confdir, plugindir, without, &ch, err)
 *       loads conf.d like `sluiced -t` (no listener is bound, init() runs
 *       once), then switches off the ingress stages (the scanner is the
 *       ingress), the FINAL stages (no delivery, no quarantine store) and
 *       the stages named in `without` (NULL-terminated).  Every stage's
 *       init() has run by then, left-out ones too: their configuration
 *       is checked as sluiced would.
 *   scan_worker_new(ch, err)   one libev loop + DNS resolver + every
 *       enabled stage's worker_start(); call it after fork, once per
 *       process.  scan_worker_free() stops the stages (worker_stop).
 *   scan_submit(sw, msg, len, facts, cb, arg)
 *       starts one message; cb(result, arg) follows from the loop (at
 *       once, from inside the call, for a message over max_message_size).
 *       scan_wait() runs the loop until no message is in flight.
 *   scan_facts_from_message()  client, HELO, sender and recipients as the
 *       message's own header tells them (top Received, Return-Path,
 *       X-Original-To/Delivered-To/To); options override them.
 *
 * The chain runs as behind the smtp ingress: CONNECT, HELO and MAIL once,
 * RCPT per recipient (a refused recipient is dropped), then EOM.  The
 * verdict reported is the chain's: continue, accept, reject, tempfail,
 * discard or quarantine, with the deciding stage's reply.
 *
 * Diagnostics: scan_chain_load() returns SCAN_ECONF with file:line
 * errors, SCAN_EUSAGE for a `without` name that is no stage.  A message
 * over max_message_size gets a result whose `error` is set (sluiced's
 * ingress would refuse it with 552).
 *
 * SECURITY: runs with the caller's privileges and never drops them; the
 * messages are untrusted input handed to the same stages as in sluiced.
 */
#ifndef SLUICE_SCAN_H
#define SLUICE_SCAN_H

#include "engine.h"

enum { SCAN_OK = 0, SCAN_ECONF = 3, SCAN_EUSAGE = 2 };

/* Envelope and client facts of one scanned message ("" or NULL: unknown). */
typedef struct scan_facts {
    char *client_addr;
    char *client_name;
    char *helo;
    char *sender; /* NULL: unknown, "" the null sender */
    char **rcpts; /* NULL-terminated */
    size_t nrcpts;
} scan_facts;

typedef struct scan_result {
    sluice_txn *txn; /* symbols, score, headers: host_table accessors */
    const char *id;
    size_t size;
    sluice_verdict verdict;
    const char *phase;               /* where it was decided: connect .. eom */
    const char *code, *xcode, *text; /* reply; NULL when none was set */
    double probability;              /* < 0: no stage reported one */
    double total_ms;
    const char *error; /* the scan failed: why (other fields unset) */
} scan_result;

typedef void (*scan_cb)(const scan_result *r, void *arg);

typedef struct scan_worker scan_worker;

int scan_chain_load(const char *confdir, const char *plugin_dir,
                    const char *const *without, chain **out, buf *err);
scan_worker *scan_worker_new(chain *ch, buf *err);
void scan_worker_free(scan_worker *sw);
void scan_submit(scan_worker *sw, const char *msg, size_t len,
                 const scan_facts *facts, scan_cb cb, void *arg);
size_t scan_inflight(scan_worker *sw);
void scan_run_once(scan_worker *sw); /* one loop iteration (may block) */
void scan_wait(scan_worker *sw);

/* Stage i's time for this message in ms, with its name; -1 (and *name
 * NULL) past the end of the chain, 0 for a stage that did not run. */
double scan_stage_ms(const scan_result *r, size_t i, const char **name);

void scan_facts_from_message(const char *msg, size_t len, scan_facts *f);
void scan_facts_free(scan_facts *f);

#endif
