/*
 * sluicectl_admin.c - `sluicectl admin ...`: the Manager's accounts and
 * API tokens in PostgreSQL (tables admin_user and api_token, migration
 * 0004_admin.sql).
 *
 *   admin add USER --role admin|auditor   new account; password from stdin
 *   admin list                            accounts (--json)
 *   admin remove USER                     account and its tokens
 *   admin passwd USER                     new password (also unlocks)
 *   admin unlock USER                     clear the failure count and lock
 *   admin token USER [NAME]               new API token, printed once
 *
 * Passwords: with a terminal on stdin, a prompt without echo, asked twice;
 * otherwise the first line of stdin.  At least MGR_PASS_MIN_LEN characters.
 * Hashed with argon2id by tools/manager/mgr_pass.c, the code the manager
 * verifies with.  There is no default account.
 *
 * Exit codes: 0 ok, 1 failed (message on stderr: no such user, exists
 * already, bad password...), 2 usage, 3 cannot connect to the database.
 *
 * SECURITY: run by the operator; the password and the token are wiped from
 * memory after use; only the token's SHA-256 is stored.
 */
#include "sluicectl_admin.h"
#include "sluicectl_db.h"
#include "mgr_pass.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

enum { ADM_OK = 0, ADM_FAIL = 1, ADM_USAGE = 2, ADM_NOCONN = 3 };

static const char adm_usage_text[] =
    "usage: sluicectl admin COMMAND ...   (the Manager's accounts)\n"
    "  admin add USER --role admin|auditor\n"
    "                         new account; the password is read from the\n"
    "                         terminal (no echo, twice) or the first line\n"
    "                         of stdin\n"
    "  admin list             accounts, roles, failures, locks, tokens\n"
    "  admin remove USER      delete the account and its API tokens\n"
    "  admin passwd USER      set a new password (also unlocks)\n"
    "  admin unlock USER      clear failed logins and the lockout\n"
    "  admin token USER [NAME]\n"
    "                         a new API token (printed once; only its\n"
    "                         SHA-256 is stored)\n"
    "roles: admin (may change things), auditor (read only).\n"
    "exit codes: 0 ok, 1 failed, 2 usage, 3 cannot connect\n";

static int adm_valid_name(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > 63)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* One line from fp without its newline; -1 at EOF or when too long. */
static int adm_read_line(FILE *fp, char *out, size_t outsz)
{
    size_t n;

    if (fgets(out, (int)outsz, fp) == NULL)
        return -1;
    n = strlen(out);
    if (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    else if (!feof(fp))
        return -1; /* longer than outsz */
    if (n > 0 && out[n - 1] == '\r')
        out[--n] = '\0';
    return 0;
}

static int adm_prompt(const char *prompt, char *out, size_t outsz)
{
    struct termios old, quiet;
    int rc;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) < 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        return -1;
    rc = adm_read_line(stdin, out, outsz);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return rc;
}

/* The new password, checked; -1 with a message. */
static int adm_get_password(const char *user, char *pw, size_t pwsz)
{
    char again[MGR_PASS_MAX_LEN + 2], err[256], prompt[128];

    if (isatty(STDIN_FILENO)) {
        snprintf(prompt, sizeof(prompt), "New password for %s: ", user);
        if (adm_prompt(prompt, pw, pwsz) < 0) {
            fprintf(stderr, "sluicectl: admin: no password read\n");
            return -1;
        }
        if (mgr_pass_check(pw, err, sizeof(err)) < 0) {
            fprintf(stderr, "sluicectl: admin: %s\n", err);
            return -1;
        }
        if (adm_prompt("Again: ", again, sizeof(again)) < 0 ||
            strcmp(pw, again) != 0) {
            mgr_pass_wipe(again, sizeof(again));
            fprintf(stderr, "sluicectl: admin: the passwords differ\n");
            return -1;
        }
        mgr_pass_wipe(again, sizeof(again));
        return 0;
    }
    if (adm_read_line(stdin, pw, pwsz) < 0) {
        fprintf(stderr,
                "sluicectl: admin: no password on stdin (one line, "
                "at most %d bytes)\n",
                MGR_PASS_MAX_LEN);
        return -1;
    }
    if (mgr_pass_check(pw, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluicectl: admin: %s\n", err);
        return -1;
    }
    return 0;
}

static PGresult *adm_exec(PGconn *c, const char *sql, int n,
                          const char *const *params, int *ok)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);

    *ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (!*ok) {
        const char *e = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (code && strcmp(code, "42P01") == 0)
            fprintf(stderr, "sluicectl: admin: the accounts table is "
                            "missing: run 'sluicectl db migrate'\n");
        else
            fprintf(stderr, "sluicectl: admin: %s\n",
                    e ? e : PQerrorMessage(c));
    }
    return r;
}

static int adm_need_user(const char *name)
{
    if (!adm_valid_name(name)) {
        fprintf(stderr,
                "sluicectl: admin: user name '%s' is not valid "
                "(1-63 of A-Z a-z 0-9 _ . @ -)\n",
                name);
        return -1;
    }
    return 0;
}

static int adm_add(PGconn *c, const char *name, const char *role)
{
    char pw[MGR_PASS_MAX_LEN + 2], hash[MGR_PASS_ENCODED_MAX], err[256];
    const char *params[3];
    PGresult *r;
    int ok;

    if (adm_get_password(name, pw, sizeof(pw)) < 0) {
        mgr_pass_wipe(pw, sizeof(pw));
        return ADM_FAIL;
    }
    ok = mgr_pass_hash(pw, hash, sizeof(hash), err, sizeof(err)) == 0;
    mgr_pass_wipe(pw, sizeof(pw));
    if (!ok) {
        fprintf(stderr, "sluicectl: admin: %s\n", err);
        return ADM_FAIL;
    }
    params[0] = name;
    params[1] = role;
    params[2] = hash;
    r = adm_exec(c,
                 "INSERT INTO admin_user (name, role, pw_hash) "
                 "VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                 3, params, &ok);
    if (ok && strcmp(PQcmdTuples(r), "1") != 0) {
        fprintf(stderr,
                "sluicectl: admin: user '%s' exists already (admin "
                "passwd to change the password)\n",
                name);
        ok = 0;
    }
    PQclear(r);
    if (ok)
        printf("user %s added (role %s)\n", name, role);
    return ok ? ADM_OK : ADM_FAIL;
}

static int adm_list(PGconn *c, int json)
{
    PGresult *r;
    int ok, i, n;
    json_t *arr;

    r = adm_exec(c,
                 "SELECT u.name, u.role, u.failed, "
                 "coalesce(to_char(u.locked_until AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
                 "u.locked_until IS NOT NULL AND u.locked_until > now(), "
                 "to_char(u.created AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                 "coalesce(to_char(u.last_login AT TIME ZONE 'UTC', "
                 "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
                 "(SELECT count(*) FROM api_token t WHERE t.user_id = u.id) "
                 "FROM admin_user u ORDER BY u.name",
                 0, NULL, &ok);
    if (!ok) {
        PQclear(r);
        return ADM_FAIL;
    }
    n = PQntuples(r);
    if (json) {
        arr = json_array();
        for (i = 0; i < n; i++) {
            const char *lu = PQgetvalue(r, i, 3), *ll = PQgetvalue(r, i, 6);
            json_array_append_new(
                arr,
                json_pack("{s:s,s:s,s:i,s:b,s:o,s:s,s:o,s:i}", "name",
                          PQgetvalue(r, i, 0), "role", PQgetvalue(r, i, 1),
                          "failed", atoi(PQgetvalue(r, i, 2)), "locked",
                          strcmp(PQgetvalue(r, i, 4), "t") == 0, "locked_until",
                          *lu ? json_string(lu) : json_null(), "created",
                          PQgetvalue(r, i, 5), "last_login",
                          *ll ? json_string(ll) : json_null(), "tokens",
                          atoi(PQgetvalue(r, i, 7))));
        }
        {
            json_t *o = json_pack("{s:o}", "users", arr);
            char *s = json_dumps(o, JSON_INDENT(2));
            if (s)
                puts(s);
            free(s);
            json_decref(o);
        }
    } else {
        printf("%-24s %-8s %-6s %-21s %-21s %s\n", "USER", "ROLE", "FAILED",
               "LOCKED UNTIL", "LAST LOGIN", "TOKENS");
        for (i = 0; i < n; i++) {
            int locked = strcmp(PQgetvalue(r, i, 4), "t") == 0;
            printf("%-24s %-8s %-6s %-21s %-21s %s\n", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
                   locked ? PQgetvalue(r, i, 3) : "-",
                   *PQgetvalue(r, i, 6) ? PQgetvalue(r, i, 6) : "never",
                   PQgetvalue(r, i, 7));
        }
        if (n == 0)
            printf("(no accounts: create one with 'sluicectl admin add "
                   "USER --role admin')\n");
    }
    PQclear(r);
    return ADM_OK;
}

/* An UPDATE/DELETE on one user; "no such user" when it touched nothing. */
static int adm_one(PGconn *c, const char *sql, const char *name,
                   const char *extra, const char *done)
{
    const char *params[2] = {name, extra};
    PGresult *r;
    int ok;

    r = adm_exec(c, sql, extra ? 2 : 1, params, &ok);
    if (ok && strcmp(PQcmdTuples(r), "1") != 0) {
        fprintf(stderr, "sluicectl: admin: no user '%s'\n", name);
        ok = 0;
    }
    PQclear(r);
    if (ok)
        printf("user %s %s\n", name, done);
    return ok ? ADM_OK : ADM_FAIL;
}

static int adm_passwd(PGconn *c, const char *name)
{
    char pw[MGR_PASS_MAX_LEN + 2], hash[MGR_PASS_ENCODED_MAX], err[256];
    int ok;

    if (adm_get_password(name, pw, sizeof(pw)) < 0) {
        mgr_pass_wipe(pw, sizeof(pw));
        return ADM_FAIL;
    }
    ok = mgr_pass_hash(pw, hash, sizeof(hash), err, sizeof(err)) == 0;
    mgr_pass_wipe(pw, sizeof(pw));
    if (!ok) {
        fprintf(stderr, "sluicectl: admin: %s\n", err);
        return ADM_FAIL;
    }
    return adm_one(c,
                   "UPDATE admin_user SET pw_hash = $2, failed = 0, "
                   "locked_until = NULL WHERE name = $1",
                   name, hash, "password changed");
}

static int adm_token(PGconn *c, const char *name, const char *tname, int json)
{
    char tok[MGR_TOKEN_HEX + 1], hash[MGR_TOKEN_HEX + 1];
    const char *params[3] = {name, hash, tname};
    PGresult *r;
    int ok;

    if (strlen(tname) > 200) {
        fprintf(stderr, "sluicectl: admin: token name too long\n");
        return ADM_USAGE;
    }
    if (mgr_pass_token(tok) < 0) {
        fprintf(stderr, "sluicectl: admin: random generator failed\n");
        return ADM_FAIL;
    }
    mgr_pass_token_hash(tok, strlen(tok), hash);
    r = adm_exec(c,
                 "INSERT INTO api_token (token_hash, user_id, name) "
                 "SELECT $2, id, $3 FROM admin_user WHERE name = $1",
                 3, params, &ok);
    if (ok && strcmp(PQcmdTuples(r), "1") != 0) {
        fprintf(stderr, "sluicectl: admin: no user '%s'\n", name);
        ok = 0;
    }
    PQclear(r);
    if (ok) {
        if (json)
            printf("{\"user\": \"%s\", \"token\": \"%s\"}\n", name, tok);
        else
            printf("%s\n", tok);
        fprintf(stderr,
                "sluicectl: API token for %s: shown once, keep it safe "
                "(use: curl -H 'Authorization: Bearer TOKEN' ...)\n",
                name);
    }
    mgr_pass_wipe(tok, sizeof(tok));
    return ok ? ADM_OK : ADM_FAIL;
}

int sluicectl_admin_main(int argc, char **argv, const char *dsn,
                         const char *state_dir, int json)
{
    const char *sub, *role = NULL, *args[3] = {NULL, NULL, NULL};
    int i, nargs = 0, rc;
    PGconn *c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(adm_usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? ADM_USAGE : ADM_OK;
    }
    sub = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(adm_usage_text, stdout);
            return ADM_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "sluicectl: admin: unknown option '%s'\n\n%s",
                    argv[i], adm_usage_text);
            return ADM_USAGE;
        } else if (nargs < 3) {
            args[nargs++] = argv[i];
        } else {
            nargs++;
        }
    }
#define ADM_WANT(lo, hi)                                                       \
    if (nargs < (lo) || nargs > (hi)) {                                        \
        fprintf(stderr, "sluicectl: admin %s: wrong arguments\n\n%s", sub,     \
                adm_usage_text);                                               \
        return ADM_USAGE;                                                      \
    }
    if (strcmp(sub, "add") == 0) {
        ADM_WANT(1, 1);
        if (role == NULL ||
            (strcmp(role, "admin") != 0 && strcmp(role, "auditor") != 0)) {
            fprintf(stderr, "sluicectl: admin add: --role admin|auditor is "
                            "required\n");
            return ADM_USAGE;
        }
    } else if (strcmp(sub, "list") == 0) {
        ADM_WANT(0, 0);
    } else if (strcmp(sub, "remove") == 0 || strcmp(sub, "passwd") == 0 ||
               strcmp(sub, "unlock") == 0) {
        ADM_WANT(1, 1);
    } else if (strcmp(sub, "token") == 0) {
        ADM_WANT(1, 2);
    } else {
        fprintf(stderr, "sluicectl: admin: unknown command '%s'\n\n%s", sub,
                adm_usage_text);
        return ADM_USAGE;
    }
#undef ADM_WANT
    if (role != NULL && strcmp(sub, "add") != 0) {
        fprintf(stderr, "sluicectl: admin %s: --role is for add\n", sub);
        return ADM_USAGE;
    }
    if (nargs >= 1 && adm_need_user(args[0]) < 0)
        return ADM_USAGE;
    if ((c = sluicectl_db_connect("admin", dsn, state_dir)) == NULL)
        return ADM_NOCONN;
    if (strcmp(sub, "add") == 0)
        rc = adm_add(c, args[0], role);
    else if (strcmp(sub, "list") == 0)
        rc = adm_list(c, json);
    else if (strcmp(sub, "remove") == 0)
        rc = adm_one(c, "DELETE FROM admin_user WHERE name = $1", args[0], NULL,
                     "removed (its sessions end at its next request)");
    else if (strcmp(sub, "passwd") == 0)
        rc = adm_passwd(c, args[0]);
    else if (strcmp(sub, "unlock") == 0)
        rc = adm_one(c,
                     "UPDATE admin_user SET failed = 0, locked_until = NULL "
                     "WHERE name = $1",
                     args[0], NULL, "unlocked");
    else
        rc = adm_token(c, args[0], args[1] ? args[1] : "", json);
    PQfinish(c);
    return rc;
}
