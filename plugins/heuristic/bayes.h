/*
 * bayes.h - the Bayes token classifier: tokenizer, chi-square combination,
 * and its memory-mapped token database.  Static library sluice_bayes, used
 * by tools/sluice-bayes, bench/accuracy and (later) the heuristic stage.
 *
 * Interface
 *   Tokenizer: bayes_tokenize() turns a parsed message (a bayes_input:
 *   headers and MIME parts, from sluice_mime or from the stage host) into
 *   a set of distinct 64-bit token hashes: header words prefixed with the
 *   header name, Received-chain tokens, URL host tokens, words of the
 *   decoded text parts (HTML turned into text) and OSB word pairs.  The
 *   set is bounded (max_tokens) and so is the text scanned (max_text).
 *
 *   Classifier: bayes_classify() looks the tokens up in a bayes_table
 *   (a file mapped by bayes_db, or a writer's table in memory) and
 *   combines Robinson's per-token probabilities with Fisher's chi-square
 *   method into a spam probability 0..1, and a band name BAYES_00 ..
 *   BAYES_99.
 *
 *   Storage: one file, an open-addressing hash table of bayes_slot behind
 *   a checked header (magic, version, sizes, tokenizer version, header
 *   checksum).  Readers (bayes_db) map it read-only and never lock: a
 *   writer (bayes_wr) takes an exclusive flock on PATH.lock, loads the
 *   table into memory, applies learn/unlearn/expire/import, writes a new
 *   file beside it and rename()s it into place.  A reader therefore sees
 *   either the old or the new file, whole; bayes_db_refresh() picks the
 *   new one up (one stat() per call).  The file is in host byte order;
 *   bayes_wr_export()/bayes_wr_import() are the portable text form used
 *   to share a centrally trained database between gateways.
 *
 *   Training: bayes_train.c reads message files for sluice-bayes and
 *   `sluicectl learn`; bayes_journal.c queues auto-learned messages from
 *   the workers and applies them in one commit.
 *
 * Diagnostics
 *   Functions that can fail return -1 (or NULL) and, where they take one,
 *   write a one-line reason into err[errlen].  A corrupt or truncated
 *   database file is an error at open, never a crash.
 *
 * SECURITY
 *   Message bytes are attacker-controlled: the tokenizer reads only within
 *   the decoded parts and header strings it is given and bounds its work.
 *   The database file is trusted as far as its owner is (the header is
 *   checked, every probe is bounded by the table mask).
 */
#ifndef SLUICE_BAYES_H
#define SLUICE_BAYES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sluice/stage.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the tokens a message yields change: a database built by
 * another tokenizer version is refused. */
#define BAYES_TOKENIZER_VERSION 2 /* 2: HTML attribute names */

/* ------------------------------------------------------------------ */
/* Tokenizer                                                          */
/* ------------------------------------------------------------------ */

/* A message as the tokenizer sees it: accessors over headers and parts,
 * so the same code serves sluice_mime (tools, tests) and the stage host. */
typedef struct bayes_input {
    void *arg;
    size_t nheaders;
    const sluice_header *(*header)(void *arg, size_t i);
    size_t nparts;
    const sluice_part *(*part)(void *arg, size_t i);
} bayes_input;

typedef struct bayes_tok_opts {
    size_t max_tokens; /* distinct tokens kept, default 4000 */
    size_t max_text;   /* bytes of decoded text scanned, default 256k */
    int osb_window;    /* OSB pairs: 0 = words only, 1 = bigrams (the
                        * default), up to 4: pairs at distance 1..4 */
    /* Optional: called with each token's text before hashing (tests and
     * `sluice-bayes tokens`); duplicates are reported each time. */
    void (*debug)(void *arg, const char *tok, size_t len);
    void *debug_arg;
} bayes_tok_opts;

typedef struct bayes_toks {
    uint64_t *list; /* distinct hashes, in order of first appearance */
    size_t count;
    uint64_t *set; /* open-addressing set behind `list` */
    size_t set_mask;
    size_t max;
    uint64_t digest; /* identifies the message (Message-ID, else text) */
    int truncated;   /* max_tokens or max_text was reached */
} bayes_toks;

void bayes_tok_opts_default(bayes_tok_opts *o);
/* Tokenize into *out (initialised here; free with bayes_toks_free).
 * o may be NULL (defaults).  -1 only on ENOMEM. */
int bayes_tokenize(const bayes_input *in, const bayes_tok_opts *o,
                   bayes_toks *out);
void bayes_toks_free(bayes_toks *t);
int bayes_toks_has(const bayes_toks *t, uint64_t h);

/* The token hash (64-bit, never 0): of prefix and word, as the tokenizer
 * computes it for "prefix:word" (prefix may be NULL or ""). */
uint64_t bayes_hash(const char *prefix, const void *word, size_t len);

/* bayes_input over a sluice_mime message (bayes_mime.c). */
struct mime_msg;
void bayes_input_mime(bayes_input *in, struct mime_msg *m);

/* ------------------------------------------------------------------ */
/* Table and classifier                                               */
/* ------------------------------------------------------------------ */

enum { BAYES_SLOT_MSG = 1u }; /* slot records a learned message */

typedef struct bayes_slot {
    uint64_t hash; /* 0: empty */
    uint32_t spam; /* messages learned as spam that had the token */
    uint32_t ham;
    uint32_t day;   /* last day (since the epoch) it was learned */
    uint32_t flags; /* BAYES_SLOT_* */
} bayes_slot;

/* Read-only view of a table, wherever it lives. */
typedef struct bayes_table {
    uint64_t nspam, nham; /* messages learned */
    uint64_t nused;       /* occupied slots */
    const bayes_slot *slots;
    uint64_t mask; /* slot count - 1 (a power of two) */
} bayes_table;

const bayes_slot *bayes_table_find(const bayes_table *t, uint64_t h);

typedef struct bayes_params {
    double strength;  /* Robinson's s, default 0.45 */
    double prior;     /* Robinson's x, default 0.5 */
    double min_dev;   /* ignore tokens with |f - 0.5| below, default 0.1 */
    size_t max_clues; /* use only the strongest N; default 0: all */
    /* Clues with the same spam and ham counts, seen in at least this many
     * messages, count once (they are nearly always the same evidence:
     * words of one header line, a phrase and its pairs); default 4, 0: off */
    uint32_t dedup_min;
    uint64_t min_spam, min_ham; /* training needed first, default 50 each */
    double threshold;           /* "spam" at or above, default 0.9 */
} bayes_params;

typedef struct bayes_result {
    double prob;                  /* 0..1; -1 when not enough training */
    double spamminess, hamminess; /* the two chi-square figures */
    double logit;     /* ln(prob / (1 - prob)), exact where prob rounds
                       * to 0 or 1: for ranking */
    size_t known;     /* tokens found in the table */
    size_t used;      /* tokens that entered the combination */
    const char *band; /* "BAYES_00" .. "BAYES_99", or NULL if untrained */
} bayes_result;

void bayes_params_default(bayes_params *p);
/* 0, or -1 when the table has too little training (r->prob = -1). */
int bayes_classify(const bayes_table *t, const bayes_toks *tk,
                   const bayes_params *p, bayes_result *r);
const char *bayes_band(double prob);
/* Upper-tail probability of chi-square with 2*half degrees of freedom. */
double bayes_chi2q(double x2, size_t half);

/* ------------------------------------------------------------------ */
/* Storage                                                            */
/* ------------------------------------------------------------------ */

#define BAYES_MAGIC "SLBAYES\0"
#define BAYES_FILE_VERSION 1

typedef struct bayes_filehdr {
    char magic[8];
    uint32_t version;     /* BAYES_FILE_VERSION */
    uint32_t hdr_size;    /* sizeof(bayes_filehdr) */
    uint32_t slot_size;   /* sizeof(bayes_slot) */
    uint32_t tok_version; /* BAYES_TOKENIZER_VERSION */
    uint64_t nslots;
    uint64_t nused;
    uint64_t nspam, nham;
    uint32_t created, updated; /* days since the epoch */
    uint32_t expired;          /* day of the last expiry, 0 never */
    uint32_t reserved[13];
    uint64_t check; /* bayes_hash over the bytes before this field */
} bayes_filehdr;

uint32_t bayes_today(void);

/* Reader: lock-free, read-only mapping. */
typedef struct bayes_db bayes_db;
bayes_db *bayes_db_open(const char *path, char *err, size_t errlen);
/* Re-map if the file was replaced: 1 reloaded, 0 unchanged, -1 error (the
 * old mapping stays in use). */
int bayes_db_refresh(bayes_db *db, char *err, size_t errlen);
const bayes_table *bayes_db_table(const bayes_db *db);
const bayes_filehdr *bayes_db_header(const bayes_db *db);
void bayes_db_close(bayes_db *db);
/* Check a mapped or read file image; 0 or -1 with the reason. */
int bayes_file_check(const void *img, size_t len, char *err, size_t errlen);

/* Writer: in-memory table, optionally bound to a file (locked). */
typedef struct bayes_wr bayes_wr;
bayes_wr *bayes_wr_new(void);
/* Lock PATH.lock (waits) and load PATH; a missing file is an empty
 * table. */
bayes_wr *bayes_wr_open(const char *path, char *err, size_t errlen);
const bayes_table *bayes_wr_table(bayes_wr *w);

enum { BAYES_LEARNED = 0, BAYES_SKIPPED = 1 };
/* Learn a message as spam (1) or ham (0).  A message already learned in
 * the same class is skipped; one learned in the other class is moved.
 * Messages are recognised by bayes_toks.digest, kept as a flagged slot.
 * BAYES_LEARNED, BAYES_SKIPPED, or -1 on ENOMEM. */
int bayes_wr_learn(bayes_wr *w, const bayes_toks *tk, int spam, uint32_t day);
/* Forget a learned message, from whichever class it was learned in;
 * BAYES_SKIPPED if it was never learned. */
int bayes_wr_unlearn(bayes_wr *w, const bayes_toks *tk);
/* 1 spam, 0 ham, -1 not learned. */
int bayes_wr_learned(bayes_wr *w, const bayes_toks *tk);
/* Drop tokens and message records last learned more than max_age days
 * before `today` (0: no age limit), then the oldest (and, within a day,
 * the rarest) tokens beyond max_tokens (0: no limit; message records do
 * not count).  Returns the number of slots removed. */
size_t bayes_wr_expire(bayes_wr *w, uint32_t today, uint32_t max_age,
                       size_t max_tokens);
/* Write a new file and rename it over the bound path.  0 or -1. */
int bayes_wr_commit(bayes_wr *w, char *err, size_t errlen);
int bayes_wr_save(bayes_wr *w, const char *path, char *err, size_t errlen);
void bayes_wr_close(bayes_wr *w); /* unlocks; uncommitted changes lost */

/* Text export: one line per slot, with message totals and an end line
 * carrying the count, so a truncated file is refused on import. */
int bayes_table_export(const bayes_table *t, FILE *out);
/* Replace the table with (merge = 0) or add (merge = 1) an export.  On
 * error (-1, with the line) the writer's table is partly loaded: close it
 * without committing, and the file is unchanged. */
int bayes_wr_import(bayes_wr *w, FILE *in, int merge, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Training from message files (bayes_train.c)                        */
/* ------------------------------------------------------------------ */

#define BAYES_MAX_FILE (64u * 1024u * 1024u) /* larger files: refused */

/* Tokenize a message in memory, or a file ("-": stdin).  0, or -1 (out of
 * memory; for a file also unreadable or too large, with the reason). */
int bayes_tokenize_buf(const void *msg, size_t len, const bayes_tok_opts *o,
                       bayes_toks *tk);
int bayes_tokenize_file(const char *path, const bayes_tok_opts *o,
                        bayes_toks *tk, char *err, size_t errlen);

/* A walk over FILE|DIR operands: fn is called for each message file
 * ("-" is one), in name order within a directory; the default fn
 * (bayes_train_init) learns (or unlearns) it into wr and counts. */
typedef struct bayes_train bayes_train;
struct bayes_train {
    bayes_wr *wr;
    int spam, unlearn;
    void (*fn)(bayes_train *t, const char *path);
    /* an unreadable file or directory (also counted in `failed`) */
    void (*report)(void *arg, const char *path, const char *why);
    void *report_arg;
    void *arg; /* for a caller's own fn */
    size_t done, skipped, failed;
};
void bayes_train_init(bayes_train *t, bayes_wr *w, int spam, int unlearn);
void bayes_train_walk(bayes_train *t, const char *path);

/* ------------------------------------------------------------------ */
/* Auto-learn journal (bayes_journal.c)                               */
/* ------------------------------------------------------------------ */

/* Workers append a message's tokens and class to a journal file, without
 * taking the database lock; bayes_journal_apply() later learns everything
 * queued under the lock and commits once.  Append: 0 queued, 1 dropped
 * (the journal is over max_size), -1 error with the reason.  Never
 * blocks on an apply in progress. */
int bayes_journal_append(const char *journal, const bayes_toks *tk, int spam,
                         uint32_t day, size_t max_size, char *err,
                         size_t errlen);

typedef struct bayes_journal_stats {
    size_t learned; /* messages learned (or moved to the other class) */
    size_t skipped; /* already learned in that class */
    size_t bad;     /* damaged or truncated records dropped */
} bayes_journal_stats;

/* Learn every record queued in `journal` into the database `db` (locked,
 * committed once, the journal then removed).  0 (also: nothing queued),
 * or -1 with the reason (what was queued stays for the next try). */
int bayes_journal_apply(const char *db, const char *journal,
                        bayes_journal_stats *st, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_BAYES_H */
