/*
 * listent.c - parse and format allow/block list entries (listent.h).
 *
 * SECURITY: bounded copies only; the network test is plang_net_parse()
 * (the policy stage's own), so what is accepted here is what the stage
 * matches.
 */
#include "listent.h"

#include "plang.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

void listent_lower(char *dst, size_t n, const char *src)
{
    size_t i;

    if (n == 0)
        return;
    for (i = 0; src[i] && i + 1 < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static int listent_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int listent_parse(const char *entry, listent *e)
{
    plang_net net;

    memset(e, 0, sizeof(*e));
    if (*entry == '\0' || strlen(entry) >= sizeof(e->addr) - 1 ||
        !listent_clean(entry))
        return -1;
    if (plang_net_parse(entry, &net) == 0) {
        snprintf(e->net, sizeof(e->net), "%s", entry);
        return 0;
    }
    if (strchr(entry, '@')) {
        listent_lower(e->addr, sizeof(e->addr), entry);
        return 0;
    }
    if (entry[0] == '*' && entry[1] == '.') {
        entry += 2;
        e->subdomains = 1;
    } else if (entry[0] == '.') {
        entry++;
        e->subdomains = 1;
    }
    if (*entry == '\0' || strchr(entry, '.') == NULL || strchr(entry, '/')) {
        memset(e, 0, sizeof(*e));
        return -1;
    }
    listent_lower(e->domain, sizeof(e->domain), entry);
    return 0;
}

void listent_format(const listent *e, char *out, size_t outsz)
{
    if (e->addr[0])
        snprintf(out, outsz, "%s", e->addr);
    else if (e->domain[0])
        snprintf(out, outsz, "%s%s", e->subdomains ? "*." : "", e->domain);
    else
        snprintf(out, outsz, "%s", e->net);
}
