/*
 * dns.h - the worker's asynchronous DNS resolver: c-ares on a libev loop,
 * with a bounded per-worker answer cache.  It backs host->dns_query() and
 * host->dns_cancel() (stage ABI 1.1).
 *
 * Interface
 *   dns_servers_check(list, err)  validate `dns_servers` values (master)
 *   dns_new(loop, conf, err)      one resolver per worker, after fork
 *   dns_free(r)                   cancel everything (no callback), free
 *   dns_query_start(...)          start a lookup; the callback comes once,
 *                                 later, from the loop (never inside this
 *                                 call), unless the query is cancelled
 *   dns_query_cancel(q)           the callback will not be called
 *   dns_cancel_owner(&head, tag)  cancel every query an owner (a message)
 *                                 holds, or only those started with `tag`
 *
 * Queries for the same name and type share one lookup on the wire and one
 * cache entry.  Positive answers are cached for their TTL (at most
 * DNS_MAX_TTL); negative ones (NXDOMAIN, NODATA) for the SOA's negative
 * TTL, or DNS_NEG_TTL without one; failures and timeouts are not cached.
 * The cache holds at most `cache_size` answers and cache_size * 512 bytes
 * (least recently used go first; an answer over 4 KB and over 1/16 of
 * that budget is not cached).
 *
 * Diagnostics: dns_new() fails with a reason in *err (bad servers, c-ares
 * init failure).  A bad name gives NULL from dns_query_start().
 *
 * SECURITY: answers come from the network: every length and offset of a
 * DNS message is checked before use, names are expanded by c-ares (with its
 * compression-loop protection), and records are bounded in number and size.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stddef.h>
#include <ev.h>
#include <sluice/stage.h>

#include "util.h"

#define DNS_MAX_TTL 86400u /* cap for positive answers */
#define DNS_NEG_TTL 60u    /* negative answers without an SOA */
#define DNS_MAX_NEG_TTL 3600u
#define DNS_MAX_RECORDS 64   /* records kept per answer */
#define DNS_MAX_RDATA 4096   /* bytes kept per record (TXT) */
#define DNS_MAX_ANSWER 16384 /* bytes kept per answer, all records */
/* The cache's byte budget: cache_size times this (a DNSBL answer costs
 * about 150 bytes), so `cache_size` bounds memory as well as entries. */
#define DNS_CACHE_BYTES_PER_ENTRY 512

typedef struct dns_resolver dns_resolver;

typedef struct dns_conf {
    char **servers; /* "ip", "ip:port", "[v6]:port"; NULL: resolv.conf */
    double timeout; /* per try, seconds */
    int tries;
    size_t cache_size; /* answers; 0 disables the cache */
} dns_conf;

/* 0, or -1 with the first bad value named in *err. */
int dns_servers_check(char *const *servers, buf *err);

dns_resolver *dns_new(struct ev_loop *loop, const dns_conf *conf, buf *err);
void dns_free(dns_resolver *r);

/* `owner` (may be NULL) is the head of a list the query joins until it
 * ends, so dns_cancel_owner() can cancel it; `tag` marks who started it. */
sluice_dns_query *dns_query_start(dns_resolver *r, const char *name, int type,
                                  sluice_dns_cb cb, void *arg,
                                  sluice_dns_query **owner, void *tag);
void dns_query_cancel(sluice_dns_query *q);
void dns_cancel_owner(sluice_dns_query **owner, void *tag);

/* Statistics, for tests and status. */
typedef struct dns_stats {
    unsigned long long queries, cache_hits, wire_queries, cached_entries;
    unsigned long long inflight; /* lookups on the wire now */
} dns_stats;
void dns_get_stats(dns_resolver *r, dns_stats *st);

/* Parse a raw answer as the resolver does (NOERROR, or NXDOMAIN by its
 * RCODE): the status, record count and TTL it would deliver.  For tests
 * and the fuzzer. */
sluice_dns_status dns_parse_answer(const unsigned char *msg, size_t len,
                                   int type, size_t *count, unsigned *ttl);

/* Checks a query name: 1..253 octets of LDH labels (and '_'), each 1..63;
 * a trailing dot is allowed. */
int dns_name_valid(const char *name);

#endif
