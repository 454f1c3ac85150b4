/*
 * sluicectl_list.c - `sluicectl list`: the allow/block lists in
 * PostgreSQL (list_entry; every change bumps list_generation, and the
 * policy stage's workers reload within their list_refresh).
 *
 *   list add allow|block ENTRY [--domain D | --user ADDR] [--comment TEXT]
 *   list remove allow|block ENTRY [--domain D | --user ADDR]
 *   list show [allow|block] [--domain D | --user ADDR | --site]
 * ENTRY: an address (user@example.com: the envelope sender), a domain
 * (example.com; *.example.com or .example.com: with its subdomains), or a
 * client address or network (192.0.2.1, 198.51.100.0/24, 2001:db8::/32).
 * Scope: site (the default), --domain D (mail to domain D), --user ADDR
 * (mail to ADDR).  Everything is stored in lower case.
 *
 * Exit codes: 0 ok (add of an existing entry too: it says so), 1 failed or
 * (remove) no such entry, 2 usage, 3 cannot connect.
 *
 * SECURITY: values go to the server as parameters, never into SQL text.
 */
#include "sluicectl_list.h"
#include "sluicectl_db.h"

#include "listent.h"

#include <ctype.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct list_args {
    const char *kind;  /* allow, block, or NULL (show: both) */
    const char *scope; /* site, domain, user */
    char owner[512];
    char addr[512], domain[512], net[64];
    int subdomains;
    const char *comment;
    int scope_given;
} list_args;

static void list_usage(FILE *fp)
{
    fprintf(fp,
            "usage: sluicectl list add allow|block ENTRY [--domain D | --user "
            "ADDR] [--comment TEXT]\n"
            "       sluicectl list remove allow|block ENTRY [--domain D | "
            "--user ADDR]\n"
            "       sluicectl list show [allow|block] [--site | --domain D | "
            "--user ADDR]\n"
            "ENTRY: sender address, sender domain (*.domain: with "
            "subdomains), client IP or CIDR.\n"
            "exit codes: 0 ok, 1 failed or not found, 2 usage, 3 cannot "
            "connect\n");
}

/* Classifies ENTRY into exactly one of address, domain, network (the
 * rules are listent.c's, shared with the Manager). */
static int list_entry_parse(list_args *a, const char *entry)
{
    listent e;

    if (listent_parse(entry, &e) < 0)
        return -1;
    memcpy(a->addr, e.addr, sizeof(a->addr));
    memcpy(a->domain, e.domain, sizeof(a->domain));
    memcpy(a->net, e.net, sizeof(a->net));
    a->subdomains = e.subdomains;
    return 0;
}

static int list_parse(int argc, char **argv, int first, int need_entry,
                      list_args *a)
{
    const char *entry = NULL;

    memset(a, 0, sizeof(*a));
    a->scope = "site";
    a->comment = "";
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc &&
            !a->scope_given) {
            a->scope = "domain";
            listent_lower(a->owner, sizeof(a->owner), argv[++i]);
            a->scope_given = 1;
        } else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc &&
                   !a->scope_given) {
            a->scope = "user";
            listent_lower(a->owner, sizeof(a->owner), argv[++i]);
            a->scope_given = 1;
        } else if (strcmp(argv[i], "--site") == 0 && !a->scope_given) {
            a->scope_given = 1;
        } else if (strcmp(argv[i], "--comment") == 0 && i + 1 < argc) {
            a->comment = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "sluicectl: list: bad option '%s'\n", argv[i]);
            return -1;
        } else if (a->kind == NULL && (strcmp(argv[i], "allow") == 0 ||
                                       strcmp(argv[i], "block") == 0)) {
            a->kind = argv[i];
        } else if (need_entry && entry == NULL) {
            entry = argv[i];
        } else {
            fprintf(stderr, "sluicectl: list: unexpected '%s'\n", argv[i]);
            return -1;
        }
    }
    if (need_entry && (a->kind == NULL || entry == NULL)) {
        fprintf(stderr, "sluicectl: list: KIND (allow|block) and ENTRY "
                        "needed\n");
        return -1;
    }
    if (a->scope_given && strcmp(a->scope, "site") != 0 &&
        a->owner[0] == '\0') {
        fprintf(stderr, "sluicectl: list: empty owner\n");
        return -1;
    }
    if (entry && list_entry_parse(a, entry) < 0) {
        fprintf(stderr,
                "sluicectl: list: '%s' is not an address, a domain "
                "or a network\n",
                entry);
        return -1;
    }
    return 0;
}

static int list_add(PGconn *c, const list_args *a, int json)
{
    static const char sql[] =
        "INSERT INTO list_entry (kind, scope, owner, sender_addr, "
        "sender_domain, subdomains, client_net, comment, created_by) "
        "VALUES ($1::list_kind, $2::list_scope, $3, nullif($4, ''), "
        "nullif($5, ''), $6::boolean, nullif($7, '')::cidr, $8, $9) "
        "ON CONFLICT DO NOTHING RETURNING id";
    const char *user = getenv("USER");
    const char *v[9] = {a->kind, a->scope,   a->owner,
                        a->addr, a->domain,  a->subdomains ? "true" : "false",
                        a->net,  a->comment, user ? user : "sluicectl"};
    PGresult *r = PQexecParams(c, sql, 9, NULL, v, NULL, NULL, 0);
    int rc = 1;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "sluicectl: list: add failed: %s",
                PQresultErrorMessage(r));
    } else {
        int added = PQntuples(r) == 1;
        if (json)
            printf("{\"ok\": true, \"added\": %s, \"id\": %s}\n",
                   added ? "true" : "false",
                   added ? PQgetvalue(r, 0, 0) : "null");
        else if (added)
            printf("added %s entry %s (scope %s%s%s)\n", a->kind,
                   PQgetvalue(r, 0, 0), a->scope, a->owner[0] ? " " : "",
                   a->owner);
        else
            printf("already listed; nothing changed\n");
        rc = 0;
    }
    PQclear(r);
    return rc;
}

static int list_remove(PGconn *c, const list_args *a, int json)
{
    static const char sql[] =
        "DELETE FROM list_entry WHERE kind = $1::list_kind "
        "AND scope = $2::list_scope AND owner = $3 "
        "AND coalesce(sender_addr, '') = $4 "
        "AND coalesce(sender_domain, '') = $5 AND subdomains = $6::boolean "
        "AND coalesce(client_net::text, '') = "
        "coalesce(nullif($7, '')::cidr::text, '')";
    const char *v[7] = {a->kind, a->scope,  a->owner,
                        a->addr, a->domain, a->subdomains ? "true" : "false",
                        a->net};
    PGresult *r = PQexecParams(c, sql, 7, NULL, v, NULL, NULL, 0);
    int rc = 1;

    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "sluicectl: list: remove failed: %s",
                PQresultErrorMessage(r));
    } else if (atoi(PQcmdTuples(r)) == 0) {
        if (json)
            printf("{\"ok\": false, \"error\": \"no such entry\"}\n");
        fprintf(stderr, "sluicectl: list: no such entry\n");
    } else {
        if (json)
            printf("{\"ok\": true, \"removed\": %s}\n", PQcmdTuples(r));
        else
            printf("removed %s entry\n", a->kind);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

static int list_show(PGconn *c, const list_args *a, int json)
{
    static const char sql[] =
        "SELECT id, kind, scope, owner, coalesce(sender_addr, ''), "
        "coalesce(sender_domain, ''), subdomains, "
        "coalesce(client_net::text, ''), comment, created_by, "
        "to_char(created_at, 'YYYY-MM-DD HH24:MI:SS') FROM list_entry "
        "WHERE ($1 = '' OR kind = $1::list_kind) "
        "AND ($2 = '' OR (scope = $2::list_scope AND owner = $3)) "
        "ORDER BY kind, scope, owner, id";
    const char *v[3] = {a->kind ? a->kind : "", a->scope_given ? a->scope : "",
                        a->owner};
    PGresult *r = PQexecParams(c, sql, 3, NULL, v, NULL, NULL, 0);
    json_t *arr;
    int rows;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "sluicectl: list: show failed: %s",
                PQresultErrorMessage(r));
        PQclear(r);
        return 1;
    }
    rows = PQntuples(r);
    arr = json ? json_array() : NULL;
    if (!json)
        printf("%-6s %-6s %-7s %-24s %-32s %s\n", "ID", "KIND", "SCOPE",
               "OWNER", "ENTRY", "COMMENT");
    for (int i = 0; i < rows; i++) {
        char entry[600];
        const char *addr = PQgetvalue(r, i, 4), *dom = PQgetvalue(r, i, 5);
        int sub = PQgetvalue(r, i, 6)[0] == 't';
        if (*addr)
            snprintf(entry, sizeof(entry), "%s", addr);
        else if (*dom)
            snprintf(entry, sizeof(entry), "%s%s", sub ? "*." : "", dom);
        else
            snprintf(entry, sizeof(entry), "%s", PQgetvalue(r, i, 7));
        if (json) {
            json_array_append_new(
                arr,
                json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
                          (json_int_t)atoll(PQgetvalue(r, i, 0)), "kind",
                          PQgetvalue(r, i, 1), "scope", PQgetvalue(r, i, 2),
                          "owner", PQgetvalue(r, i, 3), "entry", entry,
                          "comment", PQgetvalue(r, i, 8), "created_by",
                          PQgetvalue(r, i, 9), "created_at",
                          PQgetvalue(r, i, 10)));
        } else {
            printf("%-6s %-6s %-7s %-24s %-32s %s\n", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                   *PQgetvalue(r, i, 3) ? PQgetvalue(r, i, 3) : "-", entry,
                   PQgetvalue(r, i, 8));
        }
    }
    if (json) {
        json_t *o = json_pack("{s:b, s:o}", "ok", 1, "entries", arr);
        json_dumpf(o, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(o);
    }
    PQclear(r);
    return 0;
}

int sluicectl_list_main(int argc, char **argv, const char *dsn,
                        const char *state_dir, int json)
{
    list_args a;
    PGconn *c;
    int rc, op;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        list_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    op = strcmp(argv[1], "add") == 0      ? 1
         : strcmp(argv[1], "remove") == 0 ? 2
         : strcmp(argv[1], "show") == 0   ? 3
                                          : 0;
    if (op == 0) {
        fprintf(stderr, "sluicectl: list: unknown sub-command '%s'\n", argv[1]);
        list_usage(stderr);
        return 2;
    }
    if (list_parse(argc, argv, 2, op != 3, &a) < 0) {
        list_usage(stderr);
        return 2;
    }
    if ((c = sluicectl_db_connect("list", dsn, state_dir)) == NULL)
        return 3;
    rc = op == 1   ? list_add(c, &a, json)
         : op == 2 ? list_remove(c, &a, json)
                   : list_show(c, &a, json);
    PQfinish(c);
    return rc;
}
