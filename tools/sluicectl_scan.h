/*
 * sluicectl_scan.h - `sluicectl scan` (sluicectl_scan.c): argv[0] is
 * "scan"; `json` is sluicectl's global --json.  Returns the exit code.
 */
#ifndef SLUICECTL_SCAN_H
#define SLUICECTL_SCAN_H

int sluicectl_scan_main(int argc, char **argv, int json);

#endif
