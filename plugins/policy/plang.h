/*
 * plang.h - sluice's policy language: a Sieve (RFC 5228) compiler and
 * interpreter with the extensions an email gateway's policy needs.
 *
 * Interface
 *   plang_compile() turns a script into a plang_script once (the stage's
 *   init, in the master, at every load and reload; sluicectl policy check).
 *   plang_eval() runs it against one message's facts (plang_facts) and
 *   fills a plang_result: the action, its text, the header edits to make,
 *   a trace of what fired.  Evaluation never blocks and never allocates
 *   without bound: Sieve has no loops, so its cost is the script's size
 *   times the message's (bounded) headers.
 *
 * Supported: RFC 5228 core (require, if/elsif/else, stop, keep, discard,
 * allof, anyof, not, true, false, header, address, exists, size, :is,
 * :contains, :matches, comparators i;ascii-casemap, i;octet,
 * i;ascii-numeric), envelope, variables (set, ${name}), editheader
 * (addheader, deleteheader), relational (:value, :count), subaddress
 * (:user, :detail), reject, redirect with copy (RFC 3894 :copy), enotify
 * (RFC 5435: notify with the mailto method of RFC 5436, tags :from,
 * :importance, :message, :options (ignored); test valid_notify_method);
 * and the extension "sluice": tests score, symbol, list, client,
 * direction; actions quarantine, tempfail, tagsubject, deliver.  fileinto
 * is a compile error (a gateway has no folders).
 *
 * redirect and notify are collected in the result (redirects, notifies):
 * the policy stage changes the envelope and sends the notifications.
 * redirect without :copy cancels the implicit keep (action
 * PLANG_REDIRECT: the message goes to the redirect addresses only, also
 * after discard), unless keep ran; with quarantine the redirect applies
 * to the stored recipients; with reject or tempfail it is dropped.  A
 * run-time error (an invalid expanded address, more than
 * PLANG_MAX_REDIRECTS redirects) takes the implicit keep instead
 * (RFC 5228 2.10.6): action KEEP, no redirect, no notification, `error`
 * set.  notify is skipped for a message whose Auto-Submitted field is not
 * "no" (RFC 5436 loop prevention).
 *
 * Diagnostics: plang_compile() returns NULL and writes "LINE:COLUMN:
 * message" into err.  plang_eval() cannot fail on a compiled script (out of
 * memory: returns -1, the caller tempfails).
 *
 * SECURITY: the script is trusted (the operator's); the facts come from the
 * message and are not: every match and expansion is bounded.
 */
#ifndef SLUICE_PLANG_H
#define SLUICE_PLANG_H

#include <stddef.h>

#define PLANG_MAX_SCRIPT (1024u * 1024u)
#define PLANG_MAX_VALUE 4096 /* a variable's value, an expanded string */

typedef struct plang_script plang_script;

typedef enum plang_action {
    PLANG_KEEP = 0, /* deliver (implicit keep) */
    PLANG_DISCARD,
    PLANG_REJECT,
    PLANG_TEMPFAIL,
    PLANG_QUARANTINE,
    PLANG_REDIRECT /* deliver to the redirect addresses only */
} plang_action;

#define PLANG_MAX_REDIRECTS 16
#define PLANG_MAX_NOTIFY 8       /* notifications per message */
#define PLANG_MAX_NOTIFY_RCPTS 8 /* addresses in one mailto URI */

/* One notification to send (RFC 5436 mailto). */
typedef struct plang_notify {
    char *method; /* the URI, expanded */
    char **rcpts; /* its addresses, `to` hfield included, 1.. */
    size_t nrcpts;
    char *subject;  /* the URI's subject hfield, or "" */
    char *body;     /* the URI's body hfield, or "" */
    char *from;     /* :from address, or "" (the stage's default) */
    char *message;  /* :message, or "" */
    int importance; /* 1 high, 2 normal, 3 low */
} plang_notify;

typedef enum plang_edit_op {
    PLANG_EDIT_INSERT = 1, /* addheader: at the top */
    PLANG_EDIT_ADD,        /* addheader :last */
    PLANG_EDIT_DELETE,     /* deleteheader: field name, nth */
    PLANG_EDIT_SUBJECT     /* tagsubject: prefix in value */
} plang_edit_op;

typedef struct plang_edit {
    plang_edit_op op;
    char *name;
    char *value;
    size_t nth; /* DELETE: 0-based among the fields of that name */
} plang_edit;

/* What the interpreter may ask about one message.  Callbacks get `arg`. */
typedef struct plang_facts {
    void *arg;
    /* The nth (0-based) field called `name` (any case), unfolded, or NULL */
    const char *(*header)(void *arg, const char *name, size_t nth);
    const char *sender; /* envelope sender, "" for the null sender */
    size_t nrcpt;
    const char *(*rcpt)(void *arg, size_t i);
    const char *client_addr; /* "" if unknown */
    double score;
    size_t nsym;
    const char *(*symbol)(void *arg, size_t i, double *score);
    size_t size; /* message bytes */
    /* Allow/block lists: 1 if the message is on list `kind` ("allow" or
     * "block"), else 0.  NULL: no lists. */
    int (*listed)(void *arg, const char *kind);
} plang_facts;

typedef struct plang_result {
    plang_action action;
    char text[512]; /* reject/tempfail reply text; quarantine reason */
    int explicit_keep;
    plang_edit *edits;
    size_t nedits, edits_cap;
    char **trace; /* "line 12: quarantine" ..., in evaluation order */
    size_t ntrace, trace_cap;
    char **redirects; /* redirect addresses, no duplicates */
    size_t nredirects;
    int keep_cancelled; /* the original recipients are replaced by them */
    plang_notify *notifies;
    size_t nnotifies;
    char error[256]; /* run-time error: implicit keep taken, or "" */
} plang_result;

/* Compile options.  vars: "name=value" strings preset as variables
 * (thresholds from conf.d), NULL-terminated or NULL.  internal: networks
 * ("10.0.0.0/8") whose clients send outbound mail, NULL-terminated or
 * NULL.  Both are copied. */
typedef struct plang_opts {
    const char *const *vars;
    const char *const *internal;
} plang_opts;

plang_script *plang_compile(const char *text, size_t len,
                            const plang_opts *opts, char *err, size_t errlen);
void plang_free(plang_script *s);
/* 0, or -1 (out of memory).  r is zeroed first; free it with
 * plang_result_free() either way. */
int plang_eval(const plang_script *s, const plang_facts *f, plang_result *r);
void plang_result_free(plang_result *r);
const char *plang_action_name(plang_action a);

/* A mailto URI (RFC 6068) as RFC 5436 uses it: addresses (`to` hfield
 * included), subject and body hfields; other hfields ignored.  0, or -1
 * with a reason in err.  Fills n's method, rcpts, subject, body. */
int plang_mailto(const char *uri, plang_notify *n, char *err, size_t errlen);
void plang_notify_free(plang_notify *n);
/* 1 if `a` is usable as an envelope address (local@domain, printable,
 * no spaces or <>, at most 254 bytes). */
int plang_addr_ok(const char *a);

/* CIDR networks, shared with the lists.  0 or -1. */
typedef struct plang_net {
    unsigned char addr[16];
    int family; /* 4 or 6 */
    int prefix;
} plang_net;
int plang_net_parse(const char *s, plang_net *n);
int plang_net_contains(const plang_net *n, const char *addr);

#endif
