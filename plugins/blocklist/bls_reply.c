/*
 * bls_reply.c - parses sluice-blocklistd's answer lines (bls_reply.h).
 *
 * SECURITY: the daemon is local and trusted to be ours, but its answers
 * are still checked strictly: list names must look like list names (they
 * become symbol names), ids must be numbers.
 */
#include "bls_reply.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int bls_name_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > 32)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int bls_id_parse(const char *s, unsigned long *id)
{
    char *e;

    if (strcmp(s, "-") == 0) {
        *id = ULONG_MAX;
        return 0;
    }
    if (*s < '0' || *s > '9' || strlen(s) > 10)
        return -1;
    *id = strtoul(s, &e, 10);
    return *e == '\0' ? 0 : -1;
}

int bls_reply_parse(char *line, bls_reply *r)
{
    char *sp1, *sp2, *p;

    memset(r, 0, sizeof(*r));
    if ((line[0] != 'A' && line[0] != 'E') || line[1] != ' ')
        return -1;
    sp1 = line + 1;
    if ((sp2 = strchr(sp1 + 1, ' ')) == NULL)
        return -1;
    *sp2 = '\0';
    if (bls_id_parse(sp1 + 1, &r->id) < 0)
        return -1;
    if (line[0] == 'E') {
        r->error = 1;
        r->reason = sp2 + 1;
        return 0;
    }
    if (r->id == ULONG_MAX)
        return -1;
    p = sp2 + 1;
    if (strcmp(p, "-") == 0)
        return 0;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!bls_name_ok(p) || r->nlists == BLS_MAX_HITS)
            return -1;
        r->lists[r->nlists++] = p;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}
