/*
 * sluicectl_admin.h - `sluicectl admin add|list|remove|passwd|unlock|token`:
 * the Manager's accounts and API tokens (sluicectl_admin.c).
 */
#ifndef SLUICECTL_ADMIN_H
#define SLUICECTL_ADMIN_H

/* argv[0] is "admin".  dsn/state_dir as for `db`.  Returns the exit code:
 * 0 ok, 1 failed, 2 usage, 3 cannot connect. */
int sluicectl_admin_main(int argc, char **argv, const char *dsn,
                         const char *state_dir, int json);

#endif
