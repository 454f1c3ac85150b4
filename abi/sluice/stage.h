/*
 * sluice/stage.h - the sluice stage ABI, version 1.
 *
 * This is the only header a stage (plugin) includes.  A stage is a shared
 * object that exports one symbol, SLUICE_STAGE_SYMBOL (sluice_stage_v1), a
 * const struct sluice_stage.  The engine loads it, checks the ABI version,
 * parses the stage's configuration from conf.d/ with the stage's directive
 * table, and calls the stage's hooks for each message.
 *
 * Compatibility rules
 *   - The major version is in the symbol name; the loader refuses a stage
 *     built for another major, or for a newer minor than the engine has.
 *   - Every struct that crosses the boundary starts with its own size.
 *     Fields are only ever appended; a field past `size` is absent.
 *   - The host table (struct sluice_host) only grows: a stage built for
 *     minor N runs on any engine of minor >= N.  A stage may test
 *     SLUICE_HOST_HAS(host, field) for functions newer than it needs.
 *   - Engine types (libev loops, libpq connections) never cross: stages see
 *     opaque handles only, and never link against the engine binary.
 *
 * Threading: every hook and every host function runs on the worker's event
 * loop thread.  A stage never blocks that thread; slow work returns
 * SLUICE_PENDING and finishes with host->done().
 *
 * SECURITY: stages run inside the worker process, with the worker's
 * (unprivileged) user.  Everything a stage reads from a message is
 * attacker-controlled.
 */
#ifndef SLUICE_STAGE_H
#define SLUICE_STAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 2

/* The one symbol a stage exports. */
#define SLUICE_STAGE_SYMBOL sluice_stage_v1
#define SLUICE_STAGE_SYMBOL_NAME "sluice_stage_v1"

#if defined(__GNUC__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#define SLUICE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SLUICE_EXPORT
#define SLUICE_PRINTF(f, a)
#endif

/* Declares the stage's symbol: SLUICE_STAGE_DECLARE = { ... }; */
#define SLUICE_STAGE_DECLARE \
    SLUICE_EXPORT const struct sluice_stage SLUICE_STAGE_SYMBOL

/* ------------------------------------------------------------------ */
/* Verdicts                                                           */
/* ------------------------------------------------------------------ */

typedef enum sluice_verdict {
    SLUICE_CONTINUE = 0, /* go on with the next stage */
    SLUICE_ACCEPT,       /* stop filtering; deliver (final stages still run) */
    SLUICE_REJECT,       /* refuse permanently (5xx); chain stops */
    SLUICE_TEMPFAIL,     /* refuse for now (4xx); the MTA keeps the message */
    SLUICE_DISCARD,      /* accept and drop, deliberately; chain stops */
    SLUICE_QUARANTINE,   /* stop filtering; final stages store it */
    SLUICE_PENDING       /* async work started; host->done() follows once */
} sluice_verdict;

/* Chain phases, in the order an SMTP transaction meets them. */
typedef enum sluice_phase {
    SLUICE_PHASE_CONNECT = 0,
    SLUICE_PHASE_HELO,
    SLUICE_PHASE_MAIL,
    SLUICE_PHASE_RCPT, /* once per recipient; see host->rcpt_current() */
    SLUICE_PHASE_EOM,  /* the whole message is there */
    SLUICE_PHASE_COUNT
} sluice_phase;

/* Log levels, graded as in Postfix's msg_* family. */
enum {
    SLUICE_LOG_DEBUG = 0,
    SLUICE_LOG_INFO,
    SLUICE_LOG_WARN,
    SLUICE_LOG_ERROR
};

/* ------------------------------------------------------------------ */
/* Opaque handles                                                     */
/* ------------------------------------------------------------------ */

typedef struct sluice_txn sluice_txn;     /* one message in flight */
typedef struct sluice_ctx sluice_ctx;     /* one loaded stage instance */
typedef struct sluice_io sluice_io;       /* fd watcher on the loop */
typedef struct sluice_timer sluice_timer; /* timer on the loop */

/* Counted strings: not NUL-terminated unless said so. */
typedef struct sluice_str {
    const char *ptr;
    size_t len;
} sluice_str;

/* ------------------------------------------------------------------ */
/* Configuration directives                                           */
/* ------------------------------------------------------------------ */

/*
 * A stage declares its options as a table; the engine parses conf.d into a
 * zeroed struct of `conf_size` bytes that it hands to init().  Unknown
 * options, bad values and out-of-range numbers are errors with file:line,
 * before any mail flows.
 */
typedef enum sluice_conf_type {
    SLUICE_CONF_END = 0,  /* terminates the table */
    SLUICE_CONF_STRING,   /* char * (owned by the engine) */
    SLUICE_CONF_INT,      /* long long, within [min, max] */
    SLUICE_CONF_BOOL,     /* int: yes/no, on/off, true/false, 1/0 */
    SLUICE_CONF_DURATION, /* double seconds: 30, 30s, 250ms, 5m, 1h */
    SLUICE_CONF_SIZE,     /* size_t bytes: 512, 64k, 10M, 1G */
    SLUICE_CONF_VERDICT,  /* int (sluice_verdict), not PENDING */
    SLUICE_CONF_LISTEN,   /* int fd: the engine binds "host:port" or
                           * "unix:/path" before dropping privileges */
    SLUICE_CONF_STRLIST,  /* char ** NULL-terminated; repeatable option,
                           * each occurrence's words appended */
    SLUICE_CONF_ENUM,     /* int: index into `choices` */
    SLUICE_CONF_DOUBLE    /* double, within [min, max] if either is set */
} sluice_conf_type;

typedef struct sluice_directive {
    const char *name;
    sluice_conf_type type;
    size_t offset;        /* offsetof(your_conf, field) */
    const char *dflt;     /* default as it would be written, or NULL */
    long long min, max;   /* INT: range (both 0: any); SIZE: max if > 0 */
    const char *const *choices; /* ENUM: NULL-terminated names */
    const char *help;     /* one line, shown by sluicectl and the Manager */
} sluice_directive;

/* ------------------------------------------------------------------ */
/* Message model                                                      */
/* ------------------------------------------------------------------ */

/* The client as the MTA saw it (XFORWARD, milter macros). */
typedef struct sluice_client {
    size_t size;
    const char *addr;  /* "192.0.2.1", "2001:db8::1" or "" if unknown */
    const char *name;  /* verified reverse name, or "" */
    const char *helo;  /* "" if unknown */
    const char *proto; /* "ESMTP", "SMTP", "LMTP" ... */
    const char *ident; /* MTA's queue id (XFORWARD IDENT / milter $i) */
    int port;          /* 0 if unknown */
    /* 1.1 */
    const char *auth;  /* SASL login name ({auth_authen}), or "" */
} sluice_client;

typedef struct sluice_addr {
    size_t size;
    const char *addr;   /* without <>, "" for the null sender */
    const char *params; /* ESMTP parameters as received, "" if none */
} sluice_addr;

/* Per-recipient outcome, set by the final stages (deliver, quarantine). */
typedef enum sluice_rcpt_state {
    SLUICE_RCPT_OPEN = 0, /* nobody took it yet: ends as a tempfail */
    SLUICE_RCPT_DONE,     /* delivered, quarantined or discarded: 2xx */
    SLUICE_RCPT_TEMPFAIL, /* 4xx */
    SLUICE_RCPT_REJECTED  /* 5xx */
} sluice_rcpt_state;

/* A header field, as it stands in the message. */
typedef struct sluice_header {
    size_t size;
    sluice_str name;  /* as written, without the colon */
    sluice_str raw;   /* the value as written: folded, after the colon */
    const char *value; /* unfolded, RFC 2047 decoded to UTF-8, NUL-ended */
} sluice_header;

/* Bits in sluice_part.flags and host->msg_flags(). */
enum {
    SLUICE_MIME_TRUNCATED = 1u << 0,  /* limit hit: parts or depth */
    SLUICE_MIME_BAD_BOUNDARY = 1u << 1, /* multipart without end */
    SLUICE_MIME_BAD_ENCODING = 1u << 2, /* invalid base64 / QP */
    SLUICE_MIME_BAD_CHARSET = 1u << 3, /* unknown or invalid charset */
    SLUICE_MIME_BAD_HEADER = 1u << 4,  /* malformed header line */
    SLUICE_MIME_NUL = 1u << 5,          /* NUL bytes seen */
    SLUICE_MIME_LONG_LINE = 1u << 6,    /* line over 998 octets */
    SLUICE_MIME_8BIT_HEADER = 1u << 7   /* raw 8-bit in a header */
};

/* One node of the MIME tree; index 0 is the message itself. */
typedef struct sluice_part {
    size_t size;
    int index;
    int parent;             /* -1 for the root */
    int depth;
    const char *type;       /* "text/plain", lower case, never NULL */
    const char *charset;    /* as declared, lower case, or "" */
    const char *encoding;   /* content-transfer-encoding, lower case */
    const char *disposition; /* "inline", "attachment" or "" */
    const char *filename;   /* UTF-8, or "" */
    int is_multipart;
    int is_attachment;      /* has a filename or disposition attachment */
    unsigned flags;         /* SLUICE_MIME_* */
    size_t offset, length;  /* the part's raw bytes, headers included */
    size_t body_offset, body_length; /* raw body, still encoded */
    /* Leaves: decoded content; text parts converted to UTF-8. */
    const unsigned char *decoded;
    size_t decoded_len;
} sluice_part;

/* ------------------------------------------------------------------ */
/* The host table                                                     */
/* ------------------------------------------------------------------ */

/* 1.1: header edits, as the ingress must replay them to an MTA (milter).
 * Recorded in the order the stages made them. */
typedef enum sluice_header_op {
    SLUICE_HDR_INSERT = 1, /* `name: value` inserted at `index` */
    SLUICE_HDR_ADD = 2,    /* appended at the end of the header */
    SLUICE_HDR_CHANGE = 3, /* the `nth` field called `name` gets `value` */
    SLUICE_HDR_DELETE = 4  /* the `nth` field called `name` removed */
} sluice_header_op;

typedef struct sluice_header_edit {
    size_t size;
    sluice_header_op op;
    const char *name;
    const char *value; /* NULL for DELETE */
    size_t index;      /* INSERT: position in the header at the time */
    size_t nth;        /* CHANGE, DELETE: 0-based among the fields of that
                        * name as the header stood at the time */
} sluice_header_edit;

/* 1.1: DNS, resolved asynchronously on the worker's loop (c-ares). */
typedef struct sluice_dns_query sluice_dns_query;

typedef enum sluice_dns_status {
    SLUICE_DNS_OK = 0,       /* records in the answer */
    SLUICE_DNS_NXDOMAIN = 1, /* the name does not exist */
    SLUICE_DNS_NODATA = 2,   /* the name exists, no record of that type */
    SLUICE_DNS_SERVFAIL = 3, /* the server failed or refused */
    SLUICE_DNS_TIMEOUT = 4,  /* no answer in time */
    SLUICE_DNS_ERROR = 5     /* bad name, no resolver, out of memory */
} sluice_dns_status;

enum { /* record types (the DNS numbers) */
    SLUICE_DNS_A = 1,
    SLUICE_DNS_NS = 2,
    SLUICE_DNS_CNAME = 5,
    SLUICE_DNS_PTR = 12,
    SLUICE_DNS_MX = 15,
    SLUICE_DNS_TXT = 16,
    SLUICE_DNS_AAAA = 28
};

typedef struct sluice_dns_answer {
    size_t size;
    sluice_dns_status status;
    int type;            /* as asked */
    unsigned ttl;        /* seconds (the smallest of the records) */
    size_t count;        /* records */
    /* Presentation form, one string per record: "127.0.0.2",
     * "2001:db8::1", a TXT record's strings concatenated, "10 mx.host"
     * for MX, the target name for PTR, NS and CNAME. */
    const char *const *records;
    int cached;          /* 1 if it came from the worker's cache */
} sluice_dns_answer;

/* Called exactly once per query, from the loop, never from inside
 * dns_query(); the answer is valid during the call only. */
typedef void (*sluice_dns_cb)(sluice_dns_query *q,
                              const sluice_dns_answer *a, void *arg);

/* 1.2: a net change of the envelope recipients, as an ingress replays it
 * to an MTA (milter: smfi_addrcpt / smfi_delrcpt). */
typedef enum sluice_rcpt_op {
    SLUICE_RCPT_ADD = 1, /* `addr` (with `params`) was added by a stage */
    SLUICE_RCPT_DEL = 2  /* the ingress's recipient `addr` was removed */
} sluice_rcpt_op;

typedef struct sluice_rcpt_change {
    size_t size;
    sluice_rcpt_op op;
    const char *addr;   /* without <> */
    const char *params; /* ADD: ESMTP parameters or ""; DEL: as received */
} sluice_rcpt_change;

typedef void (*sluice_io_cb)(sluice_io *io, int revents, void *arg);
typedef void (*sluice_timer_cb)(sluice_timer *t, void *arg);
typedef void (*sluice_run_cb)(sluice_txn *txn, sluice_verdict v, void *arg);

enum { SLUICE_READ = 1, SLUICE_WRITE = 2 };

#define SLUICE_HOST_HAS(h, field)                                   \
    ((h)->size >= offsetof(struct sluice_host, field) + sizeof((h)->field) \
     && (h)->field != NULL)

typedef struct sluice_host {
    size_t size;
    int abi_major, abi_minor;

    /* Logging.  txn may be NULL; with a txn, the line carries its id. */
    void (*log)(sluice_ctx *ctx, sluice_txn *txn, int level,
                const char *fmt, ...) SLUICE_PRINTF(4, 5);
    void (*vlog)(sluice_ctx *ctx, sluice_txn *txn, int level,
                 const char *fmt, va_list ap) SLUICE_PRINTF(4, 0);

    /* Stage instance and per-message slot (conf_size / slot_size). */
    void *(*instance)(sluice_ctx *ctx);
    void *(*slot)(sluice_ctx *ctx, sluice_txn *txn);
    const char *(*stage_name)(sluice_ctx *ctx);

    /* Finish a SLUICE_PENDING hook: exactly once, from the loop. */
    void (*done)(sluice_txn *txn, sluice_verdict v);

    /* Transaction facts. */
    const char *(*txn_id)(sluice_txn *txn);
    const sluice_client *(*client)(sluice_txn *txn);
    const sluice_addr *(*sender)(sluice_txn *txn);
    size_t (*rcpt_count)(sluice_txn *txn);
    const sluice_addr *(*rcpt)(sluice_txn *txn, size_t i);
    long (*rcpt_current)(sluice_txn *txn); /* RCPT phase: its index */
    sluice_verdict (*disposition)(sluice_txn *txn); /* decided so far */

    /* Raw message as received (after dot-unstuffing).  Header edits
     * are not applied here: what is delivered is header() 0..n-1, an
     * empty line, then body(). */
    int (*message)(sluice_txn *txn, sluice_str *out);

    /* Headers: index order as in the message, after edits so far. */
    size_t (*header_count)(sluice_txn *txn);
    const sluice_header *(*header)(sluice_txn *txn, size_t i);
    /* nth (0-based) field named `name` (case-insensitive), or NULL. */
    const sluice_header *(*header_find)(sluice_txn *txn, const char *name,
                                        size_t nth);
    /* Edits need SLUICE_STAGE_ADD_HEADERS / _CHG_HEADERS; -1 if not
     * declared or invalid.  `index` 0 inserts at the top. */
    int (*header_insert)(sluice_txn *txn, size_t index, const char *name,
                         const char *value);
    int (*header_add)(sluice_txn *txn, const char *name, const char *value);
    /* nth field named `name`; value NULL deletes it. */
    int (*header_change)(sluice_txn *txn, const char *name, size_t nth,
                         const char *value);

    /* MIME tree, parsed once on first use. */
    size_t (*part_count)(sluice_txn *txn);
    const sluice_part *(*part)(sluice_txn *txn, size_t i);
    unsigned (*msg_flags)(sluice_txn *txn);

    /* Symbols: named findings with a score.  Adding the same name twice
     * keeps the higher score. */
    void (*symbol_add)(sluice_txn *txn, const char *name, double score,
                       const char *reason_fmt, ...) SLUICE_PRINTF(4, 5);
    size_t (*symbol_count)(sluice_txn *txn);
    const char *(*symbol)(sluice_txn *txn, size_t i, double *score,
                          const char **reason);
    double (*score)(sluice_txn *txn);

    /* Reply text for a reject/tempfail verdict: "550", "5.7.1", "text". */
    void (*set_reply)(sluice_txn *txn, const char *code, const char *xcode,
                      const char *text);

    /* Per-recipient outcome (final stages). */
    void (*rcpt_set)(sluice_txn *txn, size_t i, sluice_rcpt_state st,
                     const char *reply);
    sluice_rcpt_state (*rcpt_state)(sluice_txn *txn, size_t i,
                                    const char **reply);

    /* Event loop: fd watchers and timers, owned by the stage. */
    sluice_io *(*io_new)(sluice_ctx *ctx, int fd, sluice_io_cb cb, void *arg);
    void (*io_set)(sluice_io *io, int events); /* 0 stops watching */
    void (*io_free)(sluice_io *io);
    sluice_timer *(*timer_new)(sluice_ctx *ctx, sluice_timer_cb cb, void *arg);
    void (*timer_start)(sluice_timer *t, double seconds);
    void (*timer_stop)(sluice_timer *t);
    void (*timer_free)(sluice_timer *t);
    double (*now)(sluice_ctx *ctx);

    /* Metrics: named per-stage counters, shown by status. */
    void (*counter_add)(sluice_ctx *ctx, const char *name, long long n);

    /* Ingress stages: open a transaction, feed it, run phases. */
    sluice_txn *(*txn_new)(sluice_ctx *ctx);
    void (*txn_free)(sluice_txn *txn); /* aborts if a phase is running */
    void (*txn_set_client)(sluice_txn *txn, const sluice_client *c);
    int (*txn_set_sender)(sluice_txn *txn, const char *addr,
                          const char *params);
    int (*txn_add_rcpt)(sluice_txn *txn, const char *addr,
                        const char *params);
    void (*txn_drop_rcpt)(sluice_txn *txn); /* undo the last add */
    /* Append message bytes; -1 once the size limit is passed. */
    int (*txn_write)(sluice_txn *txn, const void *data, size_t len);
    /* Run every enabled stage's hook for the phase.  `cb` is called once,
     * from the loop, never from inside txn_run(). */
    void (*txn_run)(sluice_txn *txn, sluice_phase phase, sluice_run_cb cb,
                    void *arg);
    /* The reply text set by the deciding stage, or a default. */
    void (*txn_reply)(sluice_txn *txn, const char **code, const char **xcode,
                      const char **text);
    /* Engine limits, for the ingress's own protocol checks. */
    size_t (*max_message_size)(sluice_ctx *ctx);
    const char *(*hostname)(sluice_ctx *ctx);

    /* The raw body: everything after the empty line that ends the header
     * block (empty if there is none). */
    int (*body)(sluice_txn *txn, sluice_str *out);

    /* ---- 1.1 ---- */

    /* Header edits made so far (ingress stages replay them). */
    size_t (*header_edit_count)(sluice_txn *txn);
    const sluice_header_edit *(*header_edit)(sluice_txn *txn, size_t i);

    /* Replace the body (needs SLUICE_STAGE_CHG_BODY; -1 otherwise); body()
     * and message() return the new one.  body_changed(): 1 once replaced. */
    int (*body_replace)(sluice_txn *txn, const void *data, size_t len);
    int (*body_changed)(sluice_txn *txn);

    /* DNS lookup of `name` (type SLUICE_DNS_*).  With a txn, the query
     * belongs to the message: if the message ends first (abort, timeout),
     * the query is cancelled and `cb` is not called.  NULL on immediate
     * failure (then cb is not called either). */
    sluice_dns_query *(*dns_query)(sluice_ctx *ctx, sluice_txn *txn,
                                   const char *name, int type,
                                   sluice_dns_cb cb, void *arg);
    void (*dns_cancel)(sluice_dns_query *q); /* cb will not be called */

    /* The engine's state directory (control socket, private database,
     * stage data such as a Bayes file): absolute, never NULL. */
    const char *(*state_dir)(sluice_ctx *ctx);

    /* ---- 1.2 ---- */

    /* Envelope recipients.  A stage that declares SLUICE_STAGE_CHG_RCPTS
     * may add and remove recipients in the EOM phase, before any final
     * stage has run, on a transaction whose ingress is built for ABI 1.2
     * or later (it promises to honour the change); otherwise -1, logged.
     * From the call on, rcpt_count()/rcpt() show the changed envelope to
     * every later stage (the final stages deliver or store exactly that
     * list; indexes of later recipients shift down on a removal).
     *   rcpt_add: `addr` without <> (printable, no spaces, at most 254
     *     bytes), `params` ESMTP parameters or NULL.  0 also when it is a
     *     recipient already (compared case-insensitively): mail is never
     *     delivered twice to one address.  An added recipient starts
     *     OPEN, or DONE when the ingress had marked all its recipients
     *     DONE before EOM (milter: the MTA delivers, after the replay).
     *   rcpt_del: removes the recipient `addr`; -1 if there is none.
     * When the EOM run ends, rcpt_count()/rcpt()/rcpt_state() are the
     * ingress's recipients again, each with the outcome it must answer:
     * its own delivery if it was kept, combined with every added
     * recipient's (any of them deferred: deferred, so the MTA retries;
     * a removed one with nothing added: done).  */
    int (*rcpt_add)(sluice_txn *txn, const char *addr, const char *params);
    int (*rcpt_del)(sluice_txn *txn, const char *addr);
    /* The net changes so far (removals first, then additions), for an
     * ingress to replay at end of message.  0 when nothing changed. */
    size_t (*rcpt_change_count)(sluice_txn *txn);
    const sluice_rcpt_change *(*rcpt_change)(sluice_txn *txn, size_t i);

    /* Send a new message (a notification), needs SLUICE_STAGE_SEND_MAIL.
     * `msg` is a whole RFC 5322 message (header, empty line, body; CRLF
     * or LF line ends), `sender` the envelope sender ("" for <>),
     * `rcpts` 1..16 addresses.  Copied and queued on `txn`: once txn's
     * EOM run has settled, unless every recipient was deferred (the MTA
     * brings it back, and the stage will ask again), the engine hands it
     * to the final stages (deliver: the reinjection path) as a message
     * of its own whose filtering stages are skipped.  Never delays or
     * fails `txn`; its outcome is logged with both message ids.  -1 if
     * refused (not declared, invalid, no delivery stage), logged. */
    int (*message_send)(sluice_txn *txn, const char *sender,
                        const char *const *rcpts, size_t nrcpts,
                        const void *msg, size_t len);

    /* The engine section's `database` (a libpq DSN, or sluiced -D): the
     * PostgreSQL of every stage that has no `database` of its own.  ""
     * when unset (then such stages use the private instance under
     * state_dir()); never NULL. */
    const char *(*database)(sluice_ctx *ctx);
} sluice_host;

/* ------------------------------------------------------------------ */
/* The stage descriptor                                               */
/* ------------------------------------------------------------------ */

/* What a stage may change, as milter's SMFIF_* flags; enforced. */
enum {
    SLUICE_STAGE_ADD_HEADERS = 1u << 0,
    SLUICE_STAGE_CHG_HEADERS = 1u << 1,
    SLUICE_STAGE_CHG_BODY = 1u << 2,
    SLUICE_STAGE_CHG_RCPTS = 1u << 3, /* 1.2: rcpt_add(), rcpt_del() */
    SLUICE_STAGE_SEND_MAIL = 1u << 4, /* 1.2: message_send() */
    /* Kinds.  An ingress owns listeners and opens transactions; a final
     * stage (quarantine, deliver) also runs after ACCEPT and QUARANTINE. */
    SLUICE_STAGE_INGRESS = 1u << 8,
    SLUICE_STAGE_FINAL = 1u << 9
};

typedef sluice_verdict (*sluice_hook)(void *inst, sluice_txn *txn,
                                      void *slot);

typedef struct sluice_stage {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size; /* sizeof(struct sluice_stage) as the stage saw it */

    const char *name;        /* default instance name: [a-z0-9_-]+ */
    const char *version;     /* the stage's own version */
    const char *description; /* one line */
    uint32_t flags;          /* SLUICE_STAGE_* */

    const sluice_directive *directives; /* may be NULL */
    size_t conf_size;                    /* struct filled from directives */
    size_t slot_size;                    /* per-message state, zeroed */

    /* In the master, at load and at every reload, before fork: check and
     * prepare configuration (compile rules...).  Return 0, or -1 with an
     * error logged.  *inst is handed back to every hook. */
    int (*init)(sluice_ctx *ctx, const sluice_host *host, void *conf,
                void **inst);
    /* In each worker after fork: open sockets, start listeners. */
    int (*worker_start)(void *inst);
    /* Worker asked to stop: stop accepting, finish what is in flight,
     * close idle connections.  `graceful` 0: close everything now. */
    void (*worker_stop)(void *inst, int graceful);
    void (*fini)(void *inst);

    /* Per-phase hooks; NULL ones are skipped. */
    sluice_hook on_phase[SLUICE_PHASE_COUNT];
    /* The transaction ends while this stage is PENDING (timeout, client
     * gone): cancel the work.  done() must not be called afterwards.
     * Required of any stage that returns SLUICE_PENDING. */
    void (*on_abort)(void *inst, sluice_txn *txn, void *slot);
    /* Always called when a transaction ends, to free slot contents. */
    void (*on_close)(void *inst, sluice_txn *txn, void *slot);
} sluice_stage;

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_STAGE_H */
