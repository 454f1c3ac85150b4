/*
 * plist.h - allow/block lists in memory: the entries of the list_entry
 * table (db/migrations/0001), as one worker caches them, and the match
 * the policy's `list` test asks for.
 *
 * Semantics: a message is on list KIND when a site entry of that kind
 * matches its sender or client, or when EVERY recipient has a matching
 * domain entry (owner = the recipient's domain) or user entry (owner = the
 * recipient's address).  One verdict covers the whole message, so a user's
 * own list decides only for messages to that user alone (or to users who
 * all agree).  An entry matches on the envelope sender's address, on its
 * domain (with subdomains if asked), or on the client's network.
 *
 * Look-ups are linear in the entries; lists of a few thousand entries cost
 * microseconds per message.  No allocation during a look-up.
 */
#ifndef SLUICE_PLIST_H
#define SLUICE_PLIST_H

#include "plang.h"
#include <stddef.h>

enum { PLIST_SITE = 0, PLIST_DOMAIN, PLIST_USER };

typedef struct plist_entry {
    int block;    /* 0 allow, 1 block */
    int scope;    /* PLIST_* */
    char *owner;  /* "" for site */
    char *addr;   /* or NULL */
    char *domain; /* or NULL */
    int subdomains;
    int has_net;
    plang_net net;
} plist_entry;

typedef struct plist {
    plist_entry *v;
    size_t n, cap;
    long long generation;
} plist;

/* Adds one entry from the table's text columns ("" for NULL); 0, or -1 on
 * a bad entry (unknown kind or scope, bad network) or out of memory. */
int plist_add(plist *l, const char *kind, const char *scope, const char *owner,
              const char *addr, const char *domain, int subdomains,
              const char *net);
void plist_free(plist *l);
/* 1 if the message is on the list (block: 1, allow: 0), else 0. */
int plist_match(const plist *l, int block, const char *sender,
                const char *client, const char *const *rcpts, size_t nrcpt);

#endif
