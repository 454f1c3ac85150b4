/*
 * sluicectl_list.h - `sluicectl list add|remove|show`: the allow/block
 * lists in PostgreSQL (table list_entry, db/migrations/0001).
 */
#ifndef SLUICECTL_LIST_H
#define SLUICECTL_LIST_H

/* argv[0] is "list".  dsn: -d, else $SLUICE_DB, else the private
 * instance under state_dir ($SLUICE_STATE_DIR, /var/lib/sluice).  Exit
 * code: 0 ok, 1 failed or not found, 2 usage, 3 cannot connect. */
int sluicectl_list_main(int argc, char **argv, const char *dsn,
                        const char *state_dir, int json);

#endif
