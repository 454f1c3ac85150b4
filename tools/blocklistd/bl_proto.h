/*
 * bl_proto.h - the blocklist daemon's request protocol, I/O-free: split a
 * byte stream into bounded lines, parse one request line, format the
 * answer to a query.  The daemon (blocklistd.c), the fuzz target and the
 * unit tests share it.
 *
 * Protocol (version 1; README.md, "sluice-blocklistd"): one request per
 * line, "\n" or "\r\n" ended, at most BL_PROTO_LINE_MAX bytes; answers
 * come in request order, one line each, so a client may pipeline.
 *
 *   Q <id> <ip>      A <id> <list>[,<list>...]   or   A <id> -
 *   PING [<id>]      PONG [<id>] sluice-blocklist/1
 *   STATS            S key=value ...
 *   (anything else)  E <id|-> <reason>
 *
 * <id> is 1-32 of [A-Za-z0-9._:-], chosen by the client and echoed.
 *
 * SECURITY: every byte comes from a network client; nothing here trusts
 * lengths or content, and nothing writes past the buffers it is given.
 */
#ifndef BL_PROTO_H
#define BL_PROTO_H

#include "bl_table.h"

#include <stddef.h>

#define BL_PROTO_LINE_MAX 256
#define BL_PROTO_ID_MAX 32
/* Longest answer line: "A " id " " every list name with commas, "\n". */
#define BL_PROTO_ANSWER_MAX                                                    \
    (4 + BL_PROTO_ID_MAX + BL_MAX_LISTS * (BL_LIST_NAME_MAX + 1) + 2)
#define BL_PROTO_VERSION "sluice-blocklist/1"

enum { BL_REQ_QUERY = 1, BL_REQ_PING, BL_REQ_STATS, BL_REQ_ERROR };

typedef struct bl_req {
    int type;
    char id[BL_PROTO_ID_MAX + 1]; /* "" if none ("-" in an error answer) */
    bl_addr addr;                 /* BL_REQ_QUERY */
    const char *error;            /* BL_REQ_ERROR: static text */
} bl_req;

/* Line splitter state: inside an overlong line being thrown away. */
typedef struct bl_split {
    int discarding;
} bl_split;

enum { BL_SPLIT_MORE = 0, BL_SPLIT_LINE = 1, BL_SPLIT_TOOLONG = 2 };

/*
 * Looks at buf[0..len): BL_SPLIT_LINE with the line in *line and *ll (no
 * "\r\n"); BL_SPLIT_TOOLONG once per overlong line (answer an error);
 * BL_SPLIT_MORE when a complete line is not there yet.  *used is what the
 * caller drops from the front of buf in every case.
 */
int bl_split_next(bl_split *s, const char *buf, size_t len, size_t *used,
                  const char **line, size_t *ll);

/* Parses one line (without its end) into r; never fails: errors are
 * requests of type BL_REQ_ERROR. */
void bl_proto_parse(const char *line, size_t len, bl_req *r);

/* The answer to a QUERY (after the lookup gave `mask`), a PING or an
 * ERROR, "\n" ended, into out (>= BL_PROTO_ANSWER_MAX); its length. */
size_t bl_proto_answer(const bl_table *t, const bl_req *r, uint64_t mask,
                       char *out, size_t outsz);

#endif /* BL_PROTO_H */
