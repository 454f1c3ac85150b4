/*
 * engine.h - sluiced's internal types: the engine settings, a loaded stage
 * instance (struct sluice_ctx), a chain generation, the shared statistics
 * block, and the transaction (struct sluice_txn).  Never installed: stages
 * see only <sluice/stage.h>.
 */
#ifndef SLUICE_ENGINE_H
#define SLUICE_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ev.h>
#include <ltdl.h>
#include <sluice/stage.h>

#include "conf.h"
#include "mime.h"
#include "util.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

/* ---------------------------------------------------------------- */
/* Engine settings (the `engine` section)                            */

typedef struct engine_conf {
    long long workers; /* 0: one per core */
    char *user;
    char *plugin_dir;
    char *state_dir;
    char *control_socket;
    size_t max_message_size;
    long long max_mime_parts;
    long long max_mime_depth;
    long long max_header_count;
    size_t max_header_length;
    int log_level; /* enum index */
    int use_syslog;
    char *hostname;
    double shutdown_timeout;
    double default_timeout;
    /* DNS (dns.c), one resolver per worker */
    char **dns_servers; /* NULL: /etc/resolv.conf */
    double dns_timeout;
    long long dns_tries;
    long long dns_cache_size;
    /* PostgreSQL for the stages without a `database` of their own (host
     * database(), ABI 1.2); "" unset: the private instance */
    char *database;
} engine_conf;

extern const sluice_directive engine_directives[];

/* ---------------------------------------------------------------- */
/* A stage instance                                                  */

typedef struct stage_common {
    char *plugin;
    int enabled;
    double timeout;
    int on_timeout; /* sluice_verdict */
    int on_error;   /* verdict when a hook returns garbage */
} stage_common;

struct chain;

struct sluice_ctx {
    char *name;
    char *path;   /* the .so file */
    char *file;   /* conf file and line of its section */
    int line;
    int index;    /* position in the chain */
    lt_dlhandle handle;
    sluice_stage desc; /* copy, fields past the stage's size zeroed */
    stage_common common;
    void *conf;   /* desc.conf_size bytes, filled from directives */
    void *inst;   /* what init() returned */
    int inited;
    struct chain *chain;
    struct worker *worker; /* set in workers */
    struct stats_stage *stats; /* this worker's slot, or NULL */
};

/* ---------------------------------------------------------------- */
/* A chain generation: settings + stages, shared by transactions      */

typedef struct chain {
    unsigned gen;
    engine_conf ec;
    mime_limits limits;
    conf_tree tree;
    struct sluice_ctx **stages;
    size_t nstages;
    int refs;
} chain;

/* Loader (loader.c).  listen_fn binds LISTEN options (NULL in -t mode). */
chain *chain_load(const char *confdir, const char *plugin_dir_override,
                  const char *state_dir_override,
                  const char *user_override, conf_listen_fn listen_fn,
                  void *listen_arg, unsigned gen, buf *err);
void chain_free(chain *ch); /* calls fini() of inited stages */
/* sluiced -D: overrides the engine's `database` in every later load. */
void chain_database_override(const char *dsn);
struct sluice_ctx *chain_find(chain *ch, const char *name);

/* ---------------------------------------------------------------- */
/* Shared statistics (master reads, each worker writes its own slot) */

#define STATS_MAX_WORKERS 128
#define STATS_MAX_STAGES 48
/* 64: the policy stage counts symbols ("sym.NAME", for the Manager's top
 * symbols) beside its own counters; names are cut at 31 bytes */
#define STATS_MAX_COUNTERS 64

typedef struct stats_counter {
    char name[32];
    long long value;
} stats_counter;

typedef struct stats_stage {
    char name[64];
    uint64_t calls;
    uint64_t verdicts[SLUICE_PENDING + 1];
    uint64_t timeouts;
    uint64_t errors;
    double time_ms; /* total wall time spent in the stage (incl. pending) */
    stats_counter counters[STATS_MAX_COUNTERS];
} stats_stage;

typedef struct stats_worker {
    pid_t pid; /* 0: free slot */
    unsigned gen;
    int stopping;
    double started; /* wall-clock seconds */
    uint64_t txns, active_txns, messages;
    uint64_t verdicts[SLUICE_PENDING + 1]; /* final verdict per message */
    size_t nstages;
    stats_stage stages[STATS_MAX_STAGES];
} stats_worker;

typedef struct stats_shm {
    stats_worker workers[STATS_MAX_WORKERS];
} stats_shm;

/* ---------------------------------------------------------------- */
/* A worker process                                                  */

typedef struct worker {
    struct ev_loop *loop;
    chain *ch;
    stats_worker *stats;
    struct sluice_txn *runq_head, *runq_tail;
    ev_idle runq_idle;
    ev_signal sig_term, sig_quit;
    ev_timer deadline;
    int stopping;
    unsigned long long txn_seq;
    struct dns_resolver *dns; /* NULL if it could not start */
} worker;

int worker_main(chain *ch, stats_worker *slot, int number);

/* ---------------------------------------------------------------- */
/* A transaction                                                     */

typedef struct txn_rcpt {
    sluice_addr a;
    sluice_rcpt_state state;
    char *reply;
    long orig; /* 1.2, edited list: index among the ingress's, -1: added */
} txn_rcpt;

/* 1.2: a message a stage asked to send (envelope.c), sent after settle. */
typedef struct txn_outmsg {
    struct txn_outmsg *next;
    char *sender;
    char **rcpts;
    size_t nrcpts;
    buf msg;
    char *stage;
} txn_outmsg;

typedef struct txn_hdr {
    sluice_header h;
    char *own;      /* storage for added/changed name + raw */
    char *value;    /* decoded, lazily */
} txn_hdr;

/* A recorded header edit (1.1), owning its strings. */
typedef struct txn_hdr_edit {
    sluice_header_edit e;
    char *name, *value;
} txn_hdr_edit;

typedef struct txn_symbol {
    char *name;
    double score;
    char *reason;
} txn_symbol;

enum { TXN_IDLE = 0, TXN_RUNNING, TXN_PENDING, TXN_QUEUED };

struct sluice_txn {
    char id[32];
    worker *w;
    chain *ch;
    struct sluice_ctx *ingress;
    double t_start;

    sluice_client client;
    char *client_strs[6]; /* addr name helo proto ident auth */
    sluice_addr sender;
    int have_sender;
    txn_rcpt *rcpts;
    size_t nrcpts;
    long rcpt_cur;
    /* 1.2 (envelope.c): the recipients as stages changed them at EOM;
     * until the EOM run ends the host's rcpt functions show this list */
    int rcpts_edited;
    txn_rcpt *ercpts;
    size_t nercpts;
    int added_done; /* added recipients start DONE (the MTA delivers) */
    int final_ran;  /* a final stage's EOM hook was called: no changes */
    sluice_rcpt_change *changes; /* rcpt_change() answers, rebuilt */
    size_t nchanges;
    int changes_dirty;
    txn_outmsg *outbox;

    buf msg;
    int over_limit;

    /* headers: parsed on first use, then edited in place */
    int hdr_ready;
    size_t body_off;
    int has_separator;
    txn_hdr *hdrs;
    size_t nhdrs;
    mime_msg *mime;
    txn_hdr_edit *edits; /* in the order the stages made them */
    size_t nedits;
    buf *old_msgs;       /* buffers replaced by body_replace(): headers
                          * not edited since still point into them */
    size_t nold_msgs;

    txn_symbol *syms;
    size_t nsyms;
    double score;

    sluice_verdict disposition; /* CONTINUE, ACCEPT or QUARANTINE so far */
    sluice_verdict result;      /* of the phase run */
    char reply_code[4], reply_xcode[16];
    char *reply_text;

    /* chain runner */
    int state;
    int phases_done; /* bitmask of once-only phases already run */
    sluice_phase phase, target;
    size_t stage_idx;
    struct sluice_ctx *cur_stage;
    int in_hook;
    int early_done;
    sluice_verdict early_verdict;
    double stage_t0;
    ev_timer timer;
    sluice_run_cb cb;
    void *cb_arg;
    struct sluice_txn *runq_next;
    void **slots;
    double *stage_ms;
    int eom_done;
    sluice_dns_query *dns_queries; /* in flight for this message */
};

/* txn.c */
sluice_txn *txn_new(worker *w, struct sluice_ctx *ingress);
void txn_free(sluice_txn *t);
void txn_run(sluice_txn *t, sluice_phase phase, sluice_run_cb cb, void *arg);
void txn_done(sluice_txn *t, sluice_verdict v);
void worker_runq_process(worker *w);
int txn_headers(sluice_txn *t); /* parse on first use */
/* Start of the empty line that ends the header block at m[0..body_off),
 * or body_off itself when the block has no empty line. */
size_t txn_header_end(const char *m, size_t body_off);
int txn_mime(sluice_txn *t);

/* envelope.c (ABI 1.2): recipient changes and messages sent by stages */
txn_rcpt *envelope_view(sluice_txn *t, size_t *n); /* what rcpt*() show */
int envelope_rcpt_add(sluice_txn *t, const char *addr, const char *params);
int envelope_rcpt_del(sluice_txn *t, const char *addr);
size_t envelope_change_count(sluice_txn *t);
const sluice_rcpt_change *envelope_change(sluice_txn *t, size_t i);
/* At settle: the ingress's recipients' outcomes from the edited list. */
void envelope_settle(sluice_txn *t);
void envelope_summary(sluice_txn *t, buf *b); /* " envelope=-<a>,+<b>:done" */
int envelope_send(sluice_txn *t, const char *sender, const char *const *rcpts,
                  size_t nrcpts, const void *msg, size_t len);
void envelope_flush(sluice_txn *t); /* after settle: send or drop outbox */
void envelope_free(sluice_txn *t);

/* host.c */
extern const sluice_host host_table;
void host_log(struct sluice_ctx *ctx, sluice_txn *txn, int level,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void stats_counter_add(stats_stage *s, const char *name, long long n);

/* master.c / control.c */
int master_main(const char *confdir, const char *plugin_dir,
                const char *state_dir, long long workers_override,
                const char *user_override);
struct master;
void control_handle(struct master *m, const char *cmd, buf *reply);
/* The control commands' shared parts (control.c), the commands kept in
 * files of their own, and what they use of the master (master.c). */
void control_error(buf *reply, const char *msg);
void control_move(struct master *m, const char *args, buf *reply);
void control_policy_show(struct master *m, buf *reply);
void control_policy_install(struct master *m, buf *reply);
int master_do_reload(struct master *m, buf *err);
chain *master_chain(struct master *m);
const char *master_confdir(struct master *m);

#endif
