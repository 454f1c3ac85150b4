/*
 * mgr_qfilter.h - the quarantine search's filters (GET /api/quarantine),
 * I/O-free: query-string values checked and turned into the parameters of
 * one fixed SQL statement (MGR_QF_WHERE), so no value ever becomes SQL
 * text.
 *
 *   recipient, sender, subject   case-insensitive substring (<= 320 bytes)
 *   from, to                     received at >= from, < to: epoch seconds,
 *                                YYYY-MM-DD (to: the whole day included),
 *                                YYYY-MM-DDTHH:MM[:SS][Z] (UTC)
 *   min_score, max_score         numbers, inclusive
 *   status                       quarantined (default), released, deleted,
 *                                delivered, any: a recipient in that state
 *   limit (1..500, 50), offset (0..1000000, 0)
 *
 * Diagnostics: mgr_qfilter_parse() returns -1 with the reason in err
 * ("min_score: not a number").
 */
#ifndef SLUICE_MGR_QFILTER_H
#define SLUICE_MGR_QFILTER_H

#include <stddef.h>

#define MGR_QF_NPARAMS 10
#define MGR_QF_MAX_LIMIT 500

/* $1..$8; $9 limit and $10 offset only in the page query. */
#define MGR_QF_WHERE                                                           \
    " WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM quarantine_rcpt fr "    \
    "WHERE fr.message_id = m.id AND strpos(fr.rcpt, lower($1)) > 0)) "         \
    "AND ($2::text IS NULL OR strpos(lower(m.sender), lower($2)) > 0) "        \
    "AND ($3::text IS NULL OR strpos(lower(m.subject), lower($3)) > 0) "       \
    "AND ($4::timestamptz IS NULL OR m.received_at >= $4::timestamptz) "       \
    "AND ($5::timestamptz IS NULL OR m.received_at < $5::timestamptz) "        \
    "AND ($6::float8 IS NULL OR m.score >= $6::float8) "                       \
    "AND ($7::float8 IS NULL OR m.score <= $7::float8) "                       \
    "AND ($8::text = 'any' OR EXISTS (SELECT 1 FROM quarantine_rcpt fs "       \
    "WHERE fs.message_id = m.id AND fs.status::text = $8)) "

typedef struct mgr_qfilter {
    char recipient[321], sender[321], subject[321];
    char from[40], to[40];
    char min_score[40], max_score[40];
    char status[16];
    char limit[16], offset[16];
    /* for PQexecParams: NULL where the filter is unset */
    const char *params[MGR_QF_NPARAMS];
} mgr_qfilter;

/* Where the values come from: 1 and out filled if `name` was given. */
typedef int (*mgr_qf_get)(void *arg, const char *name, char *out, size_t outsz);

int mgr_qfilter_parse(mgr_qf_get get, void *arg, mgr_qfilter *f, char *err,
                      size_t errsz);

/* A time as the filters take it, normalised to "YYYY-MM-DD HH:MM:SS+00";
 * end_of_day: a bare date means the start of the next day.  0 or -1. */
int mgr_qfilter_time(const char *in, int end_of_day, char *out, size_t outsz);

#endif
