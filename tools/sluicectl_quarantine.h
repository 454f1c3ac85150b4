/*
 * sluicectl_quarantine.h - `sluicectl quarantine list|show|release|delete|
 * expire`: the quarantine in PostgreSQL, from a shell.
 */
#ifndef SLUICECTL_QUARANTINE_H
#define SLUICECTL_QUARANTINE_H

/* Exit codes of `sluicectl quarantine`, beyond sluicectl's 0-3. */
enum {
    SLUICECTL_Q_NOTFOUND = 4 /* no such message (or nothing to release) */
};

/*
 * Runs `quarantine SUBCOMMAND ...`; argv[0] is "quarantine".  dsn: -d,
 * else $SLUICE_DB, else the private instance under state_dir.  Returns the
 * exit code: 0 ok, 1 failed (a release only partly accepted included),
 * 2 usage, 3 cannot connect, 4 no such message.
 */
int sluicectl_quarantine_main(int argc, char **argv, const char *dsn,
                              const char *state_dir, int json);

#endif
