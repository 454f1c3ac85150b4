/*
 * sluicectl_db.c - `sluicectl db init|migrate|status`: creates and upgrades
 * sluice's schema in PostgreSQL, and says where it stands.
 *
 * Interface: sluicectl_db_main() (sluicectl_db.h), called by sluicectl's
 * main for the `db` command.
 *
 * The database: -d DSN, else $SLUICE_DB, else the private instance that
 * tools/sluice-pg runs under the state directory (-S, $SLUICE_STATE_DIR,
 * /var/lib/sluice): socket STATE/pg/run, passfile STATE/pg/pgpass.
 *
 * Migrations are the files db/migrations/NNNN_name.sql, embedded at build
 * time.  Each is applied in its own transaction together with its row in
 * schema_version (version, name, checksum, applied_at), so a failed one
 * leaves the schema at the previous version.  Migrators serialize on an
 * advisory lock: two gateways starting at once do not race.  A database
 * whose version is newer than this tool knows is left alone.
 *
 * Diagnostics: everything on stderr, prefixed "sluicectl: db"; the
 * server's message for a failed migration names the file.  Exit codes: 0
 * ok, 1 failed, 2 usage, 3 cannot connect, 4 (status) migrations pending,
 * 5 the database is newer than this tool.
 *
 * SECURITY: runs with the caller's privileges; the DSN's password is never
 * printed (status shows host, port, database and user only).  SQL comes
 * from the binary itself; the only run-time values go as parameters.
 */
#include "sluicectl_db.h"

#include "pgpool.h" /* pgpool_private_dsn() */

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_DEFAULT_STATE "/var/lib/sluice"
#define DB_LOCK_KEY "7526413802475978753" /* "sluice-m", as an int8 */

enum { DB_OK = 0, DB_FAIL = 1, DB_USAGE = 2, DB_NOCONN = 3 };

typedef struct db_applied {
    int version;
    char name[128];
    char checksum[17];
    char applied_at[64];
} db_applied;

typedef struct db_state {
    int initialized; /* schema_version exists */
    int current;     /* highest applied version, 0 if none */
    db_applied *rows;
    size_t nrows;
} db_state;

static const char db_usage_text[] =
    "usage: sluicectl [-d DSN] [-S STATE_DIR] [--json] db COMMAND\n\n"
    "  db status          schema version, applied and pending migrations\n"
    "  db init            create the schema in an empty database\n"
    "  db migrate [--to N] [-q]\n"
    "                     apply the pending migrations (up to version N)\n\n"
    "The database: -d DSN, else $SLUICE_DB, else the private instance under\n"
    "the state directory (-S, $SLUICE_STATE_DIR, " DB_DEFAULT_STATE "),\n"
    "started by sluice-pg.\n\n"
    "exit codes: 0 ok, 1 failed, 2 usage, 3 cannot connect, 4 migrations\n"
    "pending (status), 5 the database is newer than this sluicectl\n";

/* FNV-1a, 64 bits: tells an edited migration file from the applied one. */
static void db_checksum(const char *s, size_t n, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int db_head(void)
{
    int v = 0;
    const sluicectl_migration *m;

    for (m = sluicectl_migrations; m->name; m++)
        v = m->version;
    return v;
}

/* The private instance's connection string (tools/sluice-pg's layout,
 * shared with the stages through pgpool_private_dsn()). */
static int db_private_dsn(const char *who, const char *state, char *buf,
                          size_t bufsz)
{
    char pass[4096];
    struct stat st;

    snprintf(pass, sizeof(pass), "%s/pg/pgpass", state);
    if (stat(pass, &st) < 0) {
        fprintf(stderr,
                "sluicectl: %s: no database configured (-d DSN or "
                "$SLUICE_DB) and no private instance in %s/pg (start one "
                "with: sluice-pg start %s)\n",
                who, state, state);
        return -1;
    }
    if (pgpool_private_dsn(state, buf, bufsz) < 0) {
        fprintf(stderr, "sluicectl: %s: state directory path too long\n",
                who);
        return -1;
    }
    return 0;
}

static PGconn *db_connect(const char *who, const char *dsn)
{
    /* Defaults first: the DSN (expanded from dbname) overrides them. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname",
                          NULL};
    const char *vals[] = {"10", "sluicectl", dsn, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (c == NULL) {
        fprintf(stderr, "sluicectl: %s: out of memory\n", who);
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char *e = PQerrorMessage(c), *nl;
        if ((nl = strrchr(e, '\n')) != NULL && nl[1] == '\0')
            *nl = '\0';
        fprintf(stderr, "sluicectl: %s: cannot connect: %s\n", who, e);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, NULL, NULL); /* "already exists, skipping" */
    return c;
}

/* Runs sql; 0 if it succeeded, else -1 with `what` and the error shown. */
static int db_exec(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "sluicectl: db: %s: %s", what,
                r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

static void db_state_free(db_state *s)
{
    free(s->rows);
    memset(s, 0, sizeof(*s));
}

static int db_read_state(PGconn *c, db_state *s)
{
    PGresult *r;
    int i, n;

    memset(s, 0, sizeof(*s));
    r = PQexec(c, "SELECT to_regclass('schema_version') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "sluicectl: db: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    s->initialized = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!s->initialized)
        return 0;
    r = PQexec(c, "SELECT version, name, coalesce(checksum, ''), "
                  "to_char(applied_at AT TIME ZONE 'UTC', "
                  "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                  "FROM schema_version ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "sluicectl: db: schema_version: %s",
                PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    n = PQntuples(r);
    s->rows = calloc((size_t)n + 1, sizeof(*s->rows));
    if (s->rows == NULL) {
        PQclear(r);
        fprintf(stderr, "sluicectl: db: out of memory\n");
        return -1;
    }
    for (i = 0; i < n; i++) {
        db_applied *a = &s->rows[i];
        a->version = atoi(PQgetvalue(r, i, 0));
        snprintf(a->name, sizeof(a->name), "%s", PQgetvalue(r, i, 1));
        snprintf(a->checksum, sizeof(a->checksum), "%s", PQgetvalue(r, i, 2));
        snprintf(a->applied_at, sizeof(a->applied_at), "%s",
                 PQgetvalue(r, i, 3));
        if (a->version > s->current)
            s->current = a->version;
    }
    s->nrows = (size_t)n;
    PQclear(r);
    return 0;
}

static const db_applied *db_find_applied(const db_state *s, int version)
{
    size_t i;

    for (i = 0; i < s->nrows; i++)
        if (s->rows[i].version == version)
            return &s->rows[i];
    return NULL;
}

/* "modified": the applied file's checksum differs from the built-in one. */
static int db_modified(const db_applied *a, const sluicectl_migration *m)
{
    char sum[17];

    db_checksum(m->sql, m->len, sum);
    return a->checksum[0] && strcmp(a->checksum, sum) != 0;
}

/* ---------------------------------------------------------------- status */

static int db_status_json(PGconn *c, const db_state *s, int head)
{
    json_t *o = json_object(), *applied = json_array(), *pending = json_array();
    const sluicectl_migration *m;
    size_t i;
    char *out;

    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "host", json_string(PQhost(c)));
    json_object_set_new(o, "port", json_string(PQport(c)));
    json_object_set_new(o, "database", json_string(PQdb(c)));
    json_object_set_new(o, "user", json_string(PQuser(c)));
    json_object_set_new(o, "server_version", json_integer(PQserverVersion(c)));
    json_object_set_new(o, "initialized", json_boolean(s->initialized));
    json_object_set_new(o, "version", json_integer(s->current));
    json_object_set_new(o, "head", json_integer(head));
    json_object_set_new(o, "up_to_date", json_boolean(s->current == head));
    for (i = 0; i < s->nrows; i++) {
        const db_applied *a = &s->rows[i];
        json_t *e = json_object();
        int modified = 0;
        for (m = sluicectl_migrations; m->name; m++)
            if (m->version == a->version)
                modified = db_modified(a, m);
        json_object_set_new(e, "version", json_integer(a->version));
        json_object_set_new(e, "name", json_string(a->name));
        json_object_set_new(e, "applied_at", json_string(a->applied_at));
        json_object_set_new(e, "modified", json_boolean(modified));
        json_array_append_new(applied, e);
    }
    for (m = sluicectl_migrations; m->name; m++) {
        if (db_find_applied(s, m->version) == NULL) {
            json_t *e = json_object();
            json_object_set_new(e, "version", json_integer(m->version));
            json_object_set_new(e, "name", json_string(m->name));
            json_array_append_new(pending, e);
        }
    }
    json_object_set_new(o, "applied", applied);
    json_object_set_new(o, "pending", pending);
    out = json_dumps(o, JSON_COMPACT);
    if (out)
        puts(out);
    free(out);
    json_decref(o);
    return 0;
}

static int db_status(PGconn *c, int json)
{
    db_state s;
    int head = db_head(), rc;
    const sluicectl_migration *m;
    size_t i;

    if (db_read_state(c, &s) < 0)
        return DB_FAIL;
    if (json) {
        db_status_json(c, &s, head);
    } else {
        int v = PQserverVersion(c);
        printf("database: %s (host %s, port %s, user %s)\n", PQdb(c), PQhost(c),
               PQport(c), PQuser(c));
        printf("server: PostgreSQL %d.%d\n", v / 10000, v % 10000);
        printf("schema version: %d%s\n", s.current,
               s.initialized ? "" : " (not initialized: sluicectl db init)");
        printf("latest known: %d\n", head);
        for (i = 0; i < s.nrows; i++) {
            const db_applied *a = &s.rows[i];
            int modified = 0;
            for (m = sluicectl_migrations; m->name; m++)
                if (m->version == a->version)
                    modified = db_modified(a, m);
            printf("  applied  %04d %-28s %s%s\n", a->version, a->name,
                   a->applied_at, modified ? "  (file changed since)" : "");
        }
        for (m = sluicectl_migrations; m->name; m++)
            if (db_find_applied(&s, m->version) == NULL)
                printf("  pending  %04d %s\n", m->version, m->name);
    }
    if (s.current > head) {
        fprintf(stderr,
                "sluicectl: db: the database is at version %d, newer than "
                "this sluicectl knows (%d)\n",
                s.current, head);
        rc = SLUICECTL_DB_NEWER;
    } else {
        rc = s.current == head ? DB_OK : SLUICECTL_DB_PENDING;
    }
    db_state_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- migrate */

static int db_apply(PGconn *c, const sluicectl_migration *m)
{
    char sum[17], ver[16];
    const char *params[3];
    PGresult *r;
    char what[160];

    snprintf(what, sizeof(what), "migration %s", m->name);
    if (db_exec(c, "BEGIN", what) < 0)
        return -1;
    if (db_exec(c, m->sql, what) < 0) {
        db_exec(c, "ROLLBACK", "rollback");
        return -1;
    }
    db_checksum(m->sql, m->len, sum);
    snprintf(ver, sizeof(ver), "%d", m->version);
    params[0] = ver;
    params[1] = m->name;
    params[2] = sum;
    r = PQexecParams(c,
                     "INSERT INTO schema_version (version, name, checksum) "
                     "VALUES ($1, $2, $3)",
                     3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "sluicectl: db: %s: %s", what, PQresultErrorMessage(r));
        PQclear(r);
        db_exec(c, "ROLLBACK", "rollback");
        return -1;
    }
    PQclear(r);
    return db_exec(c, "COMMIT", what);
}

/* init: only into a database without our schema; migrate: up to `to`. */
static int db_migrate(PGconn *c, int to, int init, int quiet, int json)
{
    db_state s;
    const sluicectl_migration *m;
    int head = db_head(), rc = DB_OK, applied = 0, from;

    if (to > head) {
        fprintf(stderr, "sluicectl: db: no migration %d (latest is %d)\n", to,
                head);
        return DB_USAGE;
    }
    /* Held until we disconnect: one migrator at a time. */
    if (db_exec(c, "SELECT pg_advisory_lock(" DB_LOCK_KEY ")", "lock") < 0)
        return DB_FAIL;
    if (db_read_state(c, &s) < 0)
        return DB_FAIL;
    from = s.current;
    if (init && s.initialized) {
        fprintf(stderr,
                "sluicectl: db: already initialized (schema version %d); "
                "use 'sluicectl db migrate'\n",
                s.current);
        db_state_free(&s);
        return DB_FAIL;
    }
    if (s.current > head) {
        fprintf(stderr,
                "sluicectl: db: the database is at version %d, newer than "
                "this sluicectl knows (%d): nothing done\n",
                s.current, head);
        db_state_free(&s);
        return SLUICECTL_DB_NEWER;
    }
    if (!s.initialized &&
        db_exec(c,
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " checksum text,"
                " applied_at timestamptz NOT NULL DEFAULT now(),"
                " applied_by text NOT NULL DEFAULT current_user)",
                "schema_version") < 0) {
        db_state_free(&s);
        return DB_FAIL;
    }
    for (m = sluicectl_migrations; m->name && m->version <= to; m++) {
        if (db_find_applied(&s, m->version) != NULL)
            continue;
        if (db_apply(c, m) < 0) {
            fprintf(stderr,
                    "sluicectl: db: migration %s failed and was rolled "
                    "back; schema stays at version %d\n",
                    m->name, applied ? m->version - 1 : from);
            rc = DB_FAIL;
            break;
        }
        applied++;
        if (!quiet && !json)
            printf("applied %s\n", m->name);
    }
    db_state_free(&s);
    if (rc == DB_OK) {
        if (db_read_state(c, &s) < 0)
            return DB_FAIL;
        if (json)
            printf("{\"ok\":true,\"from\":%d,\"version\":%d,\"applied\":%d}\n",
                   from, s.current, applied);
        else if (!quiet)
            printf("schema version %d%s\n", s.current,
                   applied ? "" : " (nothing to do)");
        db_state_free(&s);
    }
    return rc;
}

/* ---------------------------------------------------------------- main */

/* The one choice of database for every sub-command (see the header). */
PGconn *sluicectl_db_connect(const char *who, const char *dsn,
                             const char *state_dir)
{
    char priv[9000], abs[4200], cwd[4096];

    if (dsn == NULL || dsn[0] == '\0')
        dsn = getenv("SLUICE_DB");
    if (dsn == NULL || dsn[0] == '\0') {
        if (state_dir == NULL || state_dir[0] == '\0')
            state_dir = getenv("SLUICE_STATE_DIR");
        if (state_dir == NULL || state_dir[0] == '\0')
            state_dir = DB_DEFAULT_STATE;
        /* libpq reads a host not starting with '/' as a host name */
        if (state_dir[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL) {
            snprintf(abs, sizeof(abs), "%s/%s", cwd, state_dir);
            state_dir = abs;
        }
        if (db_private_dsn(who, state_dir, priv, sizeof(priv)) < 0)
            return NULL;
        dsn = priv;
    }
    return db_connect(who, dsn);
}

int sluicectl_db_main(int argc, char **argv, const char *dsn,
                      const char *state_dir, int json)
{
    const char *sub;
    int i, to = db_head(), quiet = 0, rc;
    PGconn *c;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(db_usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? DB_USAGE : DB_OK;
    }
    sub = argv[1];
    if (strcmp(sub, "status") != 0 && strcmp(sub, "init") != 0 &&
        strcmp(sub, "migrate") != 0) {
        fprintf(stderr, "sluicectl: db: unknown command '%s'\n\n%s", sub,
                db_usage_text);
        return DB_USAGE;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(db_usage_text, stdout);
            return DB_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-q") == 0 && strcmp(sub, "status") != 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc &&
                   strcmp(sub, "migrate") == 0) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end != '\0' || v < 1 || v > 9999) {
                fprintf(stderr,
                        "sluicectl: db: --to wants a version, not "
                        "'%s'\n",
                        argv[i]);
                return DB_USAGE;
            }
            to = (int)v;
        } else {
            fprintf(stderr, "sluicectl: db %s: unexpected '%s'\n\n%s", sub,
                    argv[i], db_usage_text);
            return DB_USAGE;
        }
    }
    if ((c = sluicectl_db_connect("db", dsn, state_dir)) == NULL)
        return DB_NOCONN;
    if (strcmp(sub, "status") == 0)
        rc = db_status(c, json);
    else
        rc = db_migrate(c, to, strcmp(sub, "init") == 0, quiet, json);
    PQfinish(c);
    return rc;
}
