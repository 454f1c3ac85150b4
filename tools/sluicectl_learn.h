/*
 * sluicectl_learn.h - `sluicectl learn` (sluicectl_learn.c): argv[0] is
 * "learn"; state_dir is sluicectl's -S (may be NULL); json its --json.
 * Returns the exit code.
 */
#ifndef SLUICECTL_LEARN_H
#define SLUICECTL_LEARN_H

int sluicectl_learn_main(int argc, char **argv, const char *state_dir,
                         int json);

#endif
