/*
 * sluicectl_policy.h - `sluicectl policy check|test|default`: the policy
 * compiler (plugins/policy/plang.c) linked into the tool.
 */
#ifndef SLUICECTL_POLICY_H
#define SLUICECTL_POLICY_H

/* argv[0] is "policy".  Exit code: 0 ok, 1 the script does not compile
 * (or a file cannot be read), 2 usage. */
int sluicectl_policy_main(int argc, char **argv, int json);

#endif
