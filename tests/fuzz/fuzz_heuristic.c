/*
 * fuzz_heuristic.c - libFuzzer target for the rule-file parser: the input
 * is parsed as a sluice rule file and as a SpamAssassin file (first byte
 * picks), then compiled with PCRE2 only (Hyperscan compiles are too slow
 * for a fuzzer; the grouping code is the same).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_limits lim = {.pcre_only = 1, .match_limit = 10000};
    rules_set *rs;
    char err[512];
    int fmt;

    if (size < 1)
        return 0;
    fmt = data[0] & 1 ? RULES_FMT_SA : RULES_FMT_SLUICE;
    if ((rs = rules_new(&lim)) == NULL)
        return 0;
    if (rules_load_buffer(rs, "fuzz", (const char *)data + 1, size - 1, fmt,
                          err, sizeof(err)) == 0)
        (void)rules_compile(rs, err, sizeof(err));
    rules_free(rs);
    return 0;
}
