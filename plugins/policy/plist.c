/*
 * plist.c - allow/block lists in memory (see plist.h).
 */
#include "plist.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int plist_add(plist *l, const char *kind, const char *scope, const char *owner,
              const char *addr, const char *domain, int subdomains,
              const char *net)
{
    plist_entry e;

    memset(&e, 0, sizeof(e));
    if (strcmp(kind, "block") == 0)
        e.block = 1;
    else if (strcmp(kind, "allow") != 0)
        return -1;
    if (strcmp(scope, "site") == 0)
        e.scope = PLIST_SITE;
    else if (strcmp(scope, "domain") == 0)
        e.scope = PLIST_DOMAIN;
    else if (strcmp(scope, "user") == 0)
        e.scope = PLIST_USER;
    else
        return -1;
    if (*net) {
        if (plang_net_parse(net, &e.net) < 0)
            return -1;
        e.has_net = 1;
    } else if (*addr == '\0' && *domain == '\0') {
        return -1;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        plist_entry *nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    e.subdomains = subdomains;
    e.owner = strdup(owner);
    e.addr = *addr ? strdup(addr) : NULL;
    e.domain = *domain ? strdup(domain) : NULL;
    if (e.owner == NULL || (*addr && e.addr == NULL) ||
        (*domain && e.domain == NULL)) {
        free(e.owner);
        free(e.addr);
        free(e.domain);
        return -1;
    }
    l->v[l->n++] = e;
    return 0;
}

void plist_free(plist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].owner);
        free(l->v[i].addr);
        free(l->v[i].domain);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static const char *plist_domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

/* Does the entry match this sender or client?  Domains compare without
 * case; "sub.example.com" is under "example.com" only at a dot. */
static int plist_entry_hits(const plist_entry *e, const char *sender,
                            const char *sdom, const char *client)
{
    if (e->has_net)
        return *client && plang_net_contains(&e->net, client);
    if (e->addr)
        return *sender && strcasecmp(e->addr, sender) == 0;
    if (*sdom == '\0')
        return 0;
    if (strcasecmp(e->domain, sdom) == 0)
        return 1;
    if (e->subdomains) {
        size_t dl = strlen(e->domain), sl = strlen(sdom);
        return sl > dl && sdom[sl - dl - 1] == '.' &&
               strcasecmp(sdom + sl - dl, e->domain) == 0;
    }
    return 0;
}

static int plist_rcpt_hits(const plist *l, int block, const char *rcpt,
                           const char *sender, const char *sdom,
                           const char *client)
{
    const char *rdom = plist_domain_of(rcpt);

    for (size_t i = 0; i < l->n; i++) {
        const plist_entry *e = &l->v[i];
        if (e->block != block || e->scope == PLIST_SITE)
            continue;
        if (strcasecmp(e->owner, e->scope == PLIST_DOMAIN ? rdom : rcpt))
            continue;
        if (plist_entry_hits(e, sender, sdom, client))
            return 1;
    }
    return 0;
}

int plist_match(const plist *l, int block, const char *sender,
                const char *client, const char *const *rcpts, size_t nrcpt)
{
    const char *sdom = plist_domain_of(sender);
    size_t r;

    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].block == block && l->v[i].scope == PLIST_SITE &&
            plist_entry_hits(&l->v[i], sender, sdom, client))
            return 1;
    if (nrcpt == 0)
        return 0;
    for (r = 0; r < nrcpt; r++)
        if (!plist_rcpt_hits(l, block, rcpts[r], sender, sdom, client))
            return 0;
    return 1;
}
