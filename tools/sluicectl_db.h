/*
 * sluicectl_db.h - `sluicectl db init|migrate|status`: the schema in
 * PostgreSQL, versioned by db/migrations/NNNN_name.sql (compiled into the
 * binary by embed_sql.cmake).
 */
#ifndef SLUICECTL_DB_H
#define SLUICECTL_DB_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct sluicectl_migration {
    int version;      /* NNNN of the file name: 1, 2, ... without gaps */
    const char *name; /* "0001_initial" */
    const char *sql;  /* NUL-terminated */
    size_t len;
} sluicectl_migration;

/* The embedded migrations, in version order, ended by {0, NULL, ...}. */
extern const sluicectl_migration sluicectl_migrations[];

/* Exit codes of `sluicectl db`, beyond sluicectl's 0-3. */
enum {
    SLUICECTL_DB_PENDING = 4, /* status: migrations to apply (or none yet) */
    SLUICECTL_DB_NEWER = 5    /* the database is newer than this tool */
};

/*
 * Runs `db SUBCOMMAND ...`; argv[0] is "db".  dsn: -d, else $SLUICE_DB,
 * else NULL for the private instance under state_dir.  Returns the exit
 * code: 0 ok, 1 failed (message on stderr), 2 usage, 3 cannot connect,
 * 4/5 as above.
 */
int sluicectl_db_main(int argc, char **argv, const char *dsn,
                      const char *state_dir, int json);

/* The database of every sub-command: dsn (-d), else $SLUICE_DB, else the
 * private instance under state_dir (-S), $SLUICE_STATE_DIR or
 * /var/lib/sluice (relative: to the working directory).  Connected with a
 * 10 s connect timeout and notices silenced; NULL with the reason on
 * stderr as "sluicectl: WHO: ..." (who: the sub-command's name). */
PGconn *sluicectl_db_connect(const char *who, const char *dsn,
                             const char *state_dir);

#endif
