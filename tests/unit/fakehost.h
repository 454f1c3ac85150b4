/*
 * fakehost.h - a fake engine host table (struct sluice_host) for unit
 * tests that run a stage or plugins/common code without the engine.
 *
 * It fakes the part every such test needs alike: fd watchers and timers
 * on libev's default loop (EV_DEFAULT, the loop the test runs), now(),
 * log()/vlog() captured in fakehost.log, and a counter_add() that counts
 * nothing.  Everything about transactions stays NULL: each test fakes its
 * own struct sluice_txn and sets the entries it needs.
 *
 * Use:
 *     sluice_host host;
 *     fakehost_init(&host);        every default above, zero elsewhere
 *     host.done = my_done;         then add or override entries
 *     host.io_new = my_io_new;     a wrapper may call the default:
 *                                  fakehost_default()->io_new(...)
 *
 * A new host function (ABI growth) gets its default in one place: the
 * table in fakehost.c.
 *
 * Diagnostics: none; the fake trusts the code under test as the engine
 * would (a stage that frees a watcher twice is ASan's to find).
 */
#ifndef TEST_FAKEHOST_H
#define TEST_FAKEHOST_H

#include <sluice/stage.h>

typedef struct fakehost_state {
    /* Read by the tests. */
    int live_io;         /* io_new() minus io_free() */
    int live_timer;      /* timer_new() minus timer_free() */
    int io_write_sets;   /* io_set() calls that asked for writability */
    int io_write_events; /* writability events handed to a stage */
    char log[16384];     /* log lines, each ended by '\n'; a line that does
                          * not fit well is dropped, the rest is kept */
    /* Set by the tests (zero: off). */
    int verbose; /* also print each log line to stderr (or set the
                  * environment variable FAKEHOST_VERBOSE) */
    /* Names a transaction on those stderr lines. */
    const char *(*txn_label)(sluice_txn *txn);
} fakehost_state;

extern fakehost_state fakehost;

/* Fills *h with the defaults: size, ABI version, and the functions above;
 * every other entry NULL. */
void fakehost_init(sluice_host *h);

/* The table fakehost_init() copies, for an override that wraps one. */
const sluice_host *fakehost_default(void);

/* Live watchers and timers together: 0 once a stage freed all it made. */
int fakehost_live(void);

/* Empties fakehost.log. */
void fakehost_log_clear(void);

#endif
