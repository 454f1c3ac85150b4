/*
 * listent.h - one allow/block list entry as an administrator writes it,
 * classified the way table list_entry (db/migrations/0001) stores it.
 * Shared by `sluicectl list` and the Manager's /api/lists, so both accept
 * exactly the same entries.
 *
 *   user@example.com               the envelope sender's address
 *   example.com                    the sender's domain
 *   *.example.com, .example.com    the domain and its subdomains
 *   192.0.2.1, 198.51.100.0/24     the client's address or network
 *
 * Addresses and domains come out in lower case (the table's CHECKs).
 * SECURITY: the input is untrusted (a web form); it is bounded, and
 * blanks and control characters are refused.
 */
#ifndef SLUICE_LISTENT_H
#define SLUICE_LISTENT_H

#include <stddef.h>

typedef struct listent {
    char addr[512];   /* sender_addr, or "" */
    char domain[512]; /* sender_domain, or "" */
    char net[64];     /* client_net, or "" */
    int subdomains;
} listent;

/* 0 and *e filled (exactly one of addr, domain, net), or -1. */
int listent_parse(const char *entry, listent *e);
/* The entry as listent_parse reads it back ("*.example.com" ...). */
void listent_format(const listent *e, char *out, size_t outsz);
/* ASCII lower case copy, cut to n - 1 bytes. */
void listent_lower(char *dst, size_t n, const char *src);

#endif
