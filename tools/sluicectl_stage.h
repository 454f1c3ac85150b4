/*
 * sluicectl_stage.h - `sluicectl stage list|enable|disable|move`: the
 * command line of the chain commands, turned into one control-socket line
 * (stages, enable NAME, disable NAME, move NAME N|before X|after X) that
 * sluicectl's main sends as for its other commands.
 */
#ifndef SLUICECTL_STAGE_H
#define SLUICECTL_STAGE_H

#include <jansson.h>
#include <stddef.h>

/*
 * argv[0] is "stage".  On success fills `line` (newline-ended), *cmd (the
 * engine command: "stages", "enable", "disable" or "move") and *arg (the
 * stage name, or NULL) and returns -1: send it.  Otherwise returns the exit
 * code: 0 after printing the help, 2 after a usage error on stderr.
 */
int sluicectl_stage_line(int argc, char **argv, char *line, size_t linesz,
                         const char **cmd, const char **arg);

/* Prints the engine's reply to `move` readably. */
void sluicectl_stage_show_move(const char *name, const json_t *reply);

#endif
