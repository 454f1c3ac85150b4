/*
 * sluicectl_quarantine.c - `sluicectl quarantine list|show|release|delete|
 * expire`: what an administrator does with quarantined mail from a shell.
 *
 * Interface: sluicectl_quarantine_main() (sluicectl_quarantine.h), called
 * by sluicectl's main for the `quarantine` command.  libpq, synchronous:
 * this is a command-line tool, not an event loop.
 *
 * Release (sluicectl_release.c, shared with the Manager): the stored
 * messages are reinjected over plain SMTP (no XFORWARD), all of them in
 * one session, to the deliver path's next hop (default 127.0.0.1:10026,
 * Postfix's second smtpd), to the original recipients still quarantined
 * or to the ones given with --to.  A recipient's row becomes `released`
 * only after the MTA accepted it (RCPT 2xx and 250 after the data), inside
 * one database transaction per message that holds its row locked (FOR
 * UPDATE), so two releases at once cannot both send it.  If the database
 * fails after the MTA's 250, the tool says so and exits 1: the mail is
 * delivered but the row still says quarantined (a second release would
 * send it twice; nothing is lost).
 *
 * Diagnostics: on stderr, prefixed "sluicectl: quarantine".  Exit codes:
 * 0 ok, 1 failed (also: a release that only some recipients accepted),
 * 2 usage, 3 cannot connect to the database, 4 no such message (or
 * nothing left to release).
 *
 * SECURITY: runs with the caller's privileges.  Stored messages are
 * attacker-controlled: they go to the MTA as data (dot-stuffed), and
 * envelope addresses with control characters or angle brackets are
 * refused before they reach a command line.  Values reach SQL as
 * parameters only.
 */
#include "sluicectl_quarantine.h"
#include "sluicectl_db.h"

#include "sluicectl_release.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define Q_DEFAULT_STATE "/var/lib/sluice"
#define Q_MAX_TO 1000

enum { Q_OK = 0, Q_FAIL = 1, Q_USAGE = 2, Q_NOCONN = 3 };

static const char q_usage_text[] =
    "usage: sluicectl [-d DSN] [-S STATE_DIR] [--json] quarantine COMMAND\n\n"
    "  list [--rcpt ADDR] [--sender ADDR] [--since TIME] [--until TIME]\n"
    "       [--min-score N] [--all] [--limit N] [--json]\n"
    "                     quarantined messages, newest first (--all: also\n"
    "                     those already released or deleted for everyone)\n"
    "  show ID [--raw] [--json]\n"
    "                     one message: metadata, recipients, symbols; --raw\n"
    "                     writes the stored message itself to stdout\n"
    "  release ID... [-] [--to ADDR]... [--next-hop HOST:PORT]\n"
    "          [--timeout SECS] [--json]\n"
    "                     reinject to the recipients still quarantined (or\n"
    "                     to ADDR...) over SMTP, default 127.0.0.1:10026;\n"
    "                     each row is marked released once the MTA took it.\n"
    "                     Many IDs (and `-`: IDs from stdin, one a line) go\n"
    "                     through one SMTP session, one transaction each\n"
    "  delete ID [--purge]\n"
    "                     mark its quarantined recipients deleted; --purge\n"
    "                     removes the message and its rows for good\n"
    "  expire --days N [--dry-run]\n"
    "                     remove messages received more than N days ago\n"
    "                     (or past their own expiry); run it daily\n\n"
    "ID is the row id (list's first column) or sluice's message id (as in\n"
    "the logs and the MTA's \"quarantined as\" reply).  TIME is anything\n"
    "PostgreSQL reads as a timestamp: '2026-12-01', '2026-12-01 10:00'.\n"
    "The database: -d DSN, else $SLUICE_DB, else the private instance under\n"
    "the state directory (-S, $SLUICE_STATE_DIR, " Q_DEFAULT_STATE ").\n\n"
    "exit codes: 0 ok, 1 failed (also a release only some recipients\n"
    "accepted), 2 usage, 3 cannot connect, 4 no such message\n";

/* ---------------------------------------------------------------- */
/* Database                                                         */

/* Runs sql; the result if it succeeded, else NULL with the error shown. */
static PGresult *q_exec(PGconn *c, const char *sql, int n,
                        const char *const *v, int binary)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, binary);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    fprintf(stderr, "sluicectl: quarantine: %s",
            r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return NULL;
}

/* The row id for ID (a row id or a message id); 0 and a message if
 * there is none, -1 on a database error. */
static long long q_resolve(PGconn *c, const char *id)
{
    char err[512];
    long long rid = sluicectl_quarantine_ref(c, id, 0, err, sizeof(err));

    if (rid <= 0)
        fprintf(stderr, "sluicectl: quarantine: %s\n", err);
    return rid;
}

/* ---------------------------------------------------------------- */
/* list, show                                                       */

static const char q_list_sql[] =
    "SELECT m.id, m.msg_id, to_char(m.received_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), m.sender, m.subject, m.score, m.size, "
    "m.node, m.mta_id, coalesce(host(m.client_addr), ''), "
    "(SELECT coalesce(json_agg(json_build_object('rcpt', r.rcpt, "
    "'status', r.status, 'status_by', r.status_by, 'status_at', "
    "to_char(r.status_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) ORDER BY r.rcpt), '[]') "
    "FROM quarantine_rcpt r WHERE r.message_id = m.id), "
    "(SELECT coalesce(json_agg(json_build_object('name', s.name, 'score', "
    "s.score, 'reason', s.reason) ORDER BY s.score DESC, s.name), '[]') "
    "FROM quarantine_symbol s WHERE s.message_id = m.id), "
    "m.header_from, m.reason "
    "FROM quarantine_message m WHERE "
    "($1::text IS NULL OR EXISTS (SELECT 1 FROM quarantine_rcpt r "
    "WHERE r.message_id = m.id AND r.rcpt = lower($1))) AND "
    "($2::text IS NULL OR lower(m.sender) = lower($2)) AND "
    "($3::timestamptz IS NULL OR m.received_at >= $3::timestamptz) AND "
    "($4::timestamptz IS NULL OR m.received_at < $4::timestamptz) AND "
    "($5::float8 IS NULL OR m.score >= $5::float8) AND "
    "($6::boolean OR EXISTS (SELECT 1 FROM quarantine_rcpt r WHERE "
    "r.message_id = m.id AND r.status = 'quarantined')) AND "
    "($7::bigint IS NULL OR m.id = $7::bigint) "
    "ORDER BY m.received_at DESC, m.id DESC LIMIT $8::bigint";

enum { L_ID, L_MSGID, L_RECV, L_SENDER, L_SUBJ, L_SCORE, L_SIZE, L_NODE,
       L_MTAID, L_CLIENT, L_RCPTS, L_SYMS, L_FROM, L_REASON };

static json_t *q_row_json(PGresult *r, int i)
{
    json_t *o = json_object();
    json_error_t e;

    json_object_set_new(o, "id",
                        json_integer(strtoll(PQgetvalue(r, i, L_ID), NULL, 10)));
    json_object_set_new(o, "msg_id", json_string(PQgetvalue(r, i, L_MSGID)));
    json_object_set_new(o, "received_at",
                        json_string(PQgetvalue(r, i, L_RECV)));
    json_object_set_new(o, "sender", json_string(PQgetvalue(r, i, L_SENDER)));
    json_object_set_new(o, "from", json_string(PQgetvalue(r, i, L_FROM)));
    json_object_set_new(o, "subject", json_string(PQgetvalue(r, i, L_SUBJ)));
    json_object_set_new(o, "score",
                        json_real(strtod(PQgetvalue(r, i, L_SCORE), NULL)));
    json_object_set_new(
        o, "size", json_integer(strtoll(PQgetvalue(r, i, L_SIZE), NULL, 10)));
    json_object_set_new(o, "node", json_string(PQgetvalue(r, i, L_NODE)));
    json_object_set_new(o, "mta_id", json_string(PQgetvalue(r, i, L_MTAID)));
    json_object_set_new(o, "client_addr",
                        json_string(PQgetvalue(r, i, L_CLIENT)));
    json_object_set_new(o, "reason", json_string(PQgetvalue(r, i, L_REASON)));
    json_object_set_new(o, "rcpts",
                        json_loads(PQgetvalue(r, i, L_RCPTS), 0, &e));
    json_object_set_new(o, "symbols",
                        json_loads(PQgetvalue(r, i, L_SYMS), 0, &e));
    return o;
}

/* "a@x:quarantined b@y:released" from the recipients' JSON. */
static void q_print_rcpts(const char *js, const char *sep)
{
    json_error_t e;
    json_t *a = json_loads(js, 0, &e), *x;
    size_t i;

    json_array_foreach(a, i, x)
    {
        printf("%s%s:%s", i ? sep : "",
               json_string_value(json_object_get(x, "rcpt")),
               json_string_value(json_object_get(x, "status")));
    }
    json_decref(a);
}

static int q_list(PGconn *c, int argc, char **argv, int json)
{
    const char *v[8] = {NULL, NULL, NULL, NULL, NULL, "false", NULL, "100"};
    PGresult *r;
    int i;

    for (i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--json") == 0)
            json = 1;
        else if (strcmp(o, "--all") == 0)
            v[5] = "true";
        else if (i + 1 < argc && strcmp(o, "--rcpt") == 0)
            v[0] = argv[++i];
        else if (i + 1 < argc && strcmp(o, "--sender") == 0)
            v[1] = argv[++i];
        else if (i + 1 < argc && strcmp(o, "--since") == 0)
            v[2] = argv[++i];
        else if (i + 1 < argc && strcmp(o, "--until") == 0)
            v[3] = argv[++i];
        else if (i + 1 < argc && strcmp(o, "--min-score") == 0) {
            char *end;
            (void)strtod(argv[++i], &end);
            if (*end != '\0' || argv[i][0] == '\0') {
                fprintf(stderr, "sluicectl: quarantine: --min-score wants "
                                "a number\n");
                return Q_USAGE;
            }
            v[4] = argv[i];
        } else if (i + 1 < argc && strcmp(o, "--limit") == 0) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 1) {
                fprintf(stderr, "sluicectl: quarantine: --limit wants a "
                                "positive number\n");
                return Q_USAGE;
            }
            v[7] = argv[i];
        } else {
            fprintf(stderr, "sluicectl: quarantine list: unexpected '%s'\n\n%s",
                    o, q_usage_text);
            return Q_USAGE;
        }
    }
    if ((r = q_exec(c, q_list_sql, 8, v, 0)) == NULL)
        return Q_FAIL;
    if (json) {
        json_t *a = json_array();
        for (i = 0; i < PQntuples(r); i++)
            json_array_append_new(a, q_row_json(r, i));
        json_dumpf(a, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(a);
    } else {
        if (PQntuples(r) > 0)
            printf("%-8s %-20s %7s %-30s %s\n", "ID", "RECEIVED", "SCORE",
                   "SENDER", "SUBJECT / RECIPIENTS");
        for (i = 0; i < PQntuples(r); i++) {
            printf("%-8s %-20s %7.2f %-30s %s\n         ",
                   PQgetvalue(r, i, L_ID), PQgetvalue(r, i, L_RECV),
                   strtod(PQgetvalue(r, i, L_SCORE), NULL),
                   PQgetvalue(r, i, L_SENDER)[0] ? PQgetvalue(r, i, L_SENDER)
                                                 : "<>",
                   PQgetvalue(r, i, L_SUBJ));
            q_print_rcpts(PQgetvalue(r, i, L_RCPTS), " ");
            printf("\n");
        }
    }
    PQclear(r);
    return Q_OK;
}

static int q_show(PGconn *c, const char *id, int raw, int json)
{
    char idbuf[32];
    const char *v[8] = {NULL, NULL, NULL, NULL, NULL, "true", idbuf, "1"};
    PGresult *r;
    long long rid;
    json_t *o;

    if ((rid = q_resolve(c, id)) <= 0)
        return rid < 0 ? Q_FAIL : SLUICECTL_Q_NOTFOUND;
    snprintf(idbuf, sizeof(idbuf), "%lld", rid);
    if (raw) {
        const char *p[1] = {idbuf};
        if ((r = q_exec(c, "SELECT raw FROM quarantine_message WHERE id = $1",
                        1, p, 1)) == NULL)
            return Q_FAIL;
        fwrite(PQgetvalue(r, 0, 0), 1, (size_t)PQgetlength(r, 0, 0), stdout);
        PQclear(r);
        return fflush(stdout) == 0 ? Q_OK : Q_FAIL;
    }
    if ((r = q_exec(c, q_list_sql, 8, v, 0)) == NULL)
        return Q_FAIL;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return SLUICECTL_Q_NOTFOUND;
    }
    o = q_row_json(r, 0);
    if (json) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        json_t *x;
        size_t i;
        printf("id:          %s\nmessage id:  %s\nnode:        %s\n"
               "MTA id:      %s\nreceived:    %s\nclient:      %s\n"
               "sender:      <%s>\nFrom:        %s\nsubject:     %s\n"
               "size:        %s\nscore:       %.2f\nreason:      %s\n"
               "recipients: ",
               PQgetvalue(r, 0, L_ID), PQgetvalue(r, 0, L_MSGID),
               PQgetvalue(r, 0, L_NODE), PQgetvalue(r, 0, L_MTAID),
               PQgetvalue(r, 0, L_RECV), PQgetvalue(r, 0, L_CLIENT),
               PQgetvalue(r, 0, L_SENDER), PQgetvalue(r, 0, L_FROM),
               PQgetvalue(r, 0, L_SUBJ), PQgetvalue(r, 0, L_SIZE),
               strtod(PQgetvalue(r, 0, L_SCORE), NULL),
               PQgetvalue(r, 0, L_REASON));
        q_print_rcpts(PQgetvalue(r, 0, L_RCPTS), "\n             ");
        printf("\nsymbols:");
        json_array_foreach(json_object_get(o, "symbols"), i, x)
        {
            printf(" %s(%.2f)", json_string_value(json_object_get(x, "name")),
                   json_number_value(json_object_get(x, "score")));
        }
        printf("\n");
    }
    json_decref(o);
    PQclear(r);
    return Q_OK;
}

/* ---------------------------------------------------------------- */
/* release (sluicectl_release.c), delete, expire                    */

typedef struct q_rel {
    sluicectl_release_opts o;
    const char *to[Q_MAX_TO];
    size_t nto;
    int json, many;
    json_t *out;          /* --json: one object per ID */
    size_t ok, notfound;  /* IDs fully released, IDs with nothing found */
} q_rel;

static void q_release_report(const sluicectl_release_result *r, void *arg)
{
    q_rel *q = arg;
    size_t i;

    if (r->status == SLUICECTL_REL_OK)
        q->ok++;
    if (r->status == SLUICECTL_REL_NOTFOUND)
        q->notfound++;
    if (q->json) {
        json_t *o = json_object(), *rel = json_array(), *ref = json_array();
        for (i = 0; i < r->nrcpts; i++)
            json_array_append_new(r->released[i] ? rel : ref,
                                  json_string(r->rcpts[i]));
        json_object_set_new(o, "ref", json_string(r->ref));
        json_object_set_new(o, "id", json_integer(r->id));
        json_object_set_new(o, "status", json_string(
                                   sluicectl_release_status_name(r->status)));
        json_object_set_new(o, "released", rel);
        json_object_set_new(o, "refused", ref);
        if (r->error && r->error[0] && r->status != SLUICECTL_REL_OK)
            json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(q->out, o);
        return;
    }
    for (i = 0; i < r->nrcpts && r->status != SLUICECTL_REL_FAILED &&
                r->status != SLUICECTL_REL_UNRECORDED;
         i++)
        printf("%s%s%s %s\n", q->many ? r->ref : "", q->many ? " " : "",
               r->rcpts[i], r->released[i] ? "released" : "refused");
    if (r->status == SLUICECTL_REL_PARTIAL)
        fprintf(stderr, "sluicectl: quarantine: %s: %zu of %zu recipients "
                        "released (%s)\n", r->ref, r->nreleased, r->nrcpts,
                r->error);
    else if (r->status != SLUICECTL_REL_OK)
        fprintf(stderr, "sluicectl: quarantine: %s not released: %s\n",
                r->ref, r->error && r->error[0] ? r->error : "?");
}

/* Reads IDs one per line from stdin into *ids (grown); -1 on a bad line. */
static int q_read_ids(char ***ids, size_t *n)
{
    char line[300];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t l = strlen(line);
        char **nids;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' ||
                         line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        if (l == 0)
            continue;
        if (l > 200 || strchr(line, ' ') != NULL)
            return -1;
        if ((nids = realloc(*ids, (*n + 1) * sizeof(**ids))) == NULL)
            return -1;
        *ids = nids;
        if (((*ids)[*n] = strdup(line)) == NULL)
            return -1;
        (*n)++;
    }
    return 0;
}

/* Exit code: 0 all released, 4 nothing found for any (and nothing else
 * went wrong), 1 otherwise. */
static int q_release(PGconn *c, const char *const *ids, size_t n, q_rel *q)
{
    const char *who = getenv("SUDO_USER") ? getenv("SUDO_USER")
                      : getenv("USER")    ? getenv("USER")
                                          : "sluicectl";
    char by[300];
    int rc;

    snprintf(by, sizeof(by), "sluicectl:%s", who);
    q->o.by = by;
    q->o.to = q->nto ? q->to : NULL;
    q->o.nto = q->nto;
    q->many = n > 1;
    if (q->json)
        q->out = json_array();
    rc = sluicectl_release(c, ids, n, &q->o, q_release_report, q);
    if (q->json) {
        char *js = json_dumps(q->out, JSON_INDENT(2));
        printf("%s\n", js ? js : "[]");
        free(js);
        json_decref(q->out);
    }
    if (rc == 0)
        return Q_OK;
    if (rc > 0 && q->notfound == (size_t)rc && q->ok + q->notfound == n &&
        q->ok == 0)
        return SLUICECTL_Q_NOTFOUND;
    return Q_FAIL;
}

static int q_delete(PGconn *c, const char *id, int purge)
{
    char idbuf[32], by[300];
    const char *p[2] = {idbuf, by};
    const char *who = getenv("SUDO_USER") ? getenv("SUDO_USER")
                      : getenv("USER")    ? getenv("USER")
                                          : "sluicectl";
    PGresult *r;
    long long rid;

    if ((rid = q_resolve(c, id)) <= 0)
        return rid < 0 ? Q_FAIL : SLUICECTL_Q_NOTFOUND;
    snprintf(idbuf, sizeof(idbuf), "%lld", rid);
    snprintf(by, sizeof(by), "sluicectl:%s", who);
    if (purge)
        r = q_exec(c, "DELETE FROM quarantine_message WHERE id = $1", 1, p, 0);
    else
        r = q_exec(c,
                   "UPDATE quarantine_rcpt SET status = 'deleted', status_at "
                   "= now(), status_by = $2 WHERE message_id = $1 AND status "
                   "= 'quarantined'",
                   2, p, 0);
    if (r == NULL)
        return Q_FAIL;
    printf("%s %s (%s recipient row%s)\n", id, purge ? "purged" : "deleted",
           PQcmdTuples(r), purge ? "s with it" : "s");
    PQclear(r);
    return Q_OK;
}

static int q_expire(PGconn *c, const char *days, int dry, int json)
{
    const char *p[1] = {days};
    PGresult *r;

    r = q_exec(c,
               dry ? "SELECT count(*) FROM quarantine_message WHERE "
                     "coalesce(expires_at, received_at + make_interval(days "
                     "=> $1::int)) < now()"
                   : "WITH gone AS (DELETE FROM quarantine_message WHERE "
                     "coalesce(expires_at, received_at + make_interval(days "
                     "=> $1::int)) < now() RETURNING 1) "
                     "SELECT count(*) FROM gone",
               1, p, 0);
    if (r == NULL)
        return Q_FAIL;
    if (json)
        printf("{\"expired\": %s, \"dry_run\": %s}\n", PQgetvalue(r, 0, 0),
               dry ? "true" : "false");
    else
        printf("%s message%s %s\n", PQgetvalue(r, 0, 0),
               strcmp(PQgetvalue(r, 0, 0), "1") ? "s" : "",
               dry ? "would expire" : "expired");
    PQclear(r);
    return Q_OK;
}

/* ---------------------------------------------------------------- */

static int q_usage(const char *what, const char *arg)
{
    fprintf(stderr, "sluicectl: quarantine: %s '%s'\n\n%s", what, arg,
            q_usage_text);
    return Q_USAGE;
}

int sluicectl_quarantine_main(int argc, char **argv, const char *dsn,
                              const char *state_dir, int json)
{
    const char *sub, *id = NULL, *days = NULL;
    int i, raw = 0, purge = 0, dry = 0, rc, from_stdin = 0;
    q_rel rel;
    PGconn *c;
    char **ids = NULL; /* release: every ID, argv's and stdin's */
    size_t nids = 0, nargv_ids = 0;

    memset(&rel, 0, sizeof(rel));
    rel.o.next_hop = "127.0.0.1:10026";
    rel.o.timeout = 60;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(q_usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? Q_USAGE : Q_OK;
    }
    sub = argv[1];
    for (i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(q_usage_text, stdout);
            return Q_OK;
        }
    if (strcmp(sub, "list") != 0) {
        for (i = 2; i < argc; i++) {
            const char *o = argv[i];
            if (strcmp(o, "--json") == 0)
                json = 1;
            else if (strcmp(sub, "show") == 0 && strcmp(o, "--raw") == 0)
                raw = 1;
            else if (strcmp(sub, "delete") == 0 && strcmp(o, "--purge") == 0)
                purge = 1;
            else if (strcmp(sub, "expire") == 0 && strcmp(o, "--dry-run") == 0)
                dry = 1;
            else if (strcmp(sub, "expire") == 0 && strcmp(o, "--days") == 0 &&
                     i + 1 < argc)
                days = argv[++i];
            else if (strcmp(sub, "release") == 0 && strcmp(o, "--to") == 0 &&
                     i + 1 < argc) {
                if (rel.nto == Q_MAX_TO)
                    return q_usage("too many --to, at most", "1000");
                rel.to[rel.nto++] = argv[++i];
            } else if (strcmp(sub, "release") == 0 &&
                       strcmp(o, "--next-hop") == 0 && i + 1 < argc)
                rel.o.next_hop = argv[++i];
            else if (strcmp(sub, "release") == 0 &&
                     strcmp(o, "--timeout") == 0 && i + 1 < argc) {
                char *end;
                rel.o.timeout = strtod(argv[++i], &end);
                if (*end != '\0' ||
                    !(rel.o.timeout > 0 && rel.o.timeout < 3600))
                    return q_usage("--timeout wants seconds, not",
                                   argv[i]);
            } else if (strcmp(sub, "release") == 0 && strcmp(o, "-") == 0) {
                from_stdin = 1;
                if (id == NULL)
                    id = o;
            } else if (strcmp(sub, "release") == 0 && o[0] != '-') {
                argv[2 + nargv_ids++] = argv[i]; /* IDs to the front */
                if (id == NULL)
                    id = o;
            } else if (o[0] != '-' && id == NULL && strcmp(sub, "expire") != 0)
                id = o;
            else
                return q_usage("unexpected", o);
        }
        if (strcmp(sub, "show") != 0 && strcmp(sub, "release") != 0 &&
            strcmp(sub, "delete") != 0 && strcmp(sub, "expire") != 0)
            return q_usage("unknown command", sub);
        if (strcmp(sub, "expire") != 0 && id == NULL)
            return q_usage("a message ID is needed by", sub);
        if (strcmp(sub, "expire") == 0) {
            char *end;
            long d = days ? strtol(days, &end, 10) : -1;
            if (days == NULL || *end != '\0' || d < 0 || d > 100000)
                return q_usage("expire wants --days N with N >= 0, not",
                               days ? days : "nothing");
        }
    }
    if (strcmp(sub, "release") == 0) {
        size_t k;
        if ((ids = calloc(nargv_ids + 1, sizeof(*ids))) == NULL)
            return Q_FAIL;
        for (k = 0; k < nargv_ids; k++)
            if ((ids[nids++] = strdup(argv[2 + k])) == NULL)
                goto oom;
        if (from_stdin && q_read_ids(&ids, &nids) < 0) {
            fprintf(stderr, "sluicectl: quarantine: release -: want one ID "
                            "per line\n");
            goto oom;
        }
        if (nids == 0) {
            free(ids);
            return q_usage("no message ID on", "stdin");
        }
    }
    if ((c = sluicectl_db_connect("quarantine", dsn, state_dir)) == NULL) {
        rc = Q_NOCONN;
        goto free_ids;
    }
    if (strcmp(sub, "list") == 0)
        rc = q_list(c, argc, argv, json);
    else if (strcmp(sub, "show") == 0)
        rc = q_show(c, id, raw, json);
    else if (strcmp(sub, "release") == 0)
    {
        rel.json = json;
        rc = q_release(c, (const char *const *)ids, nids, &rel);
    }
    else if (strcmp(sub, "delete") == 0)
        rc = q_delete(c, id, purge);
    else
        rc = q_expire(c, days, dry, json);
    PQfinish(c);
free_ids:
    for (size_t k = 0; k < nids; k++)
        free(ids[k]);
    free(ids);
    return rc;
oom:
    rc = Q_FAIL;
    goto free_ids;
}
