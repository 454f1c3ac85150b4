/*
 * mimeview.h - the rules' view of a message parsed by the engine's MIME
 * parser, as the heuristic stage builds it from the host: for the unit
 * tests of the rule engine (test_heuristic, test_rules_cache,
 * test_rule_samples).
 */
#ifndef SLUICE_TEST_MIMEVIEW_H
#define SLUICE_TEST_MIMEVIEW_H

#include <stddef.h>
#include <time.h>

#include "mime.h"
#include "rules.h"

/* Zero v and point its input at m (headers, parts) and raw (the message
 * as received, len bytes), with `now` as the clock; the caller then sets
 * what else it needs (symbol lookup) and calls rules_view_build(). */
void mimeview_init(rules_view *v, mime_msg *m, const char *raw, size_t len,
                   time_t now);

#endif
