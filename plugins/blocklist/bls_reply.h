/*
 * bls_reply.h - the blocklist stage's side of sluice-blocklistd's protocol
 * (tools/blocklistd/bl_proto.h): one answer line, parsed without I/O.
 *
 *   "A <id> -"            not listed
 *   "A <id> L1,L2"        listed in L1 and L2
 *   "E <id|-> <reason>"   the daemon refused the request
 *
 * bls_reply_parse() returns -1 for anything else (the stage then drops the
 * connection: a daemon that says something unexpected is not trusted).
 */
#ifndef BLS_REPLY_H
#define BLS_REPLY_H

#include <stddef.h>

#define BLS_MAX_HITS 64

typedef struct bls_reply {
    int error;        /* 1 for an E line */
    unsigned long id; /* ULONG_MAX for "-" */
    size_t nlists;
    const char *lists[BLS_MAX_HITS]; /* point into the (modified) line */
    const char *reason;              /* E lines */
} bls_reply;

/* line: NUL-terminated, without its "\n"; modified in place. */
int bls_reply_parse(char *line, bls_reply *r);

#endif /* BLS_REPLY_H */
