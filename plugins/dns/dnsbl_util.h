/*
 * dnsbl_util.h - the dns stage's pure parts, apart from the loop and the
 * host so they can be unit-tested: zone lines, return-code matching,
 * trusted networks (CIDR), DNSBL query names for IPv4 (reversed octets)
 * and IPv6 (reversed nibbles), hashed (SXL) labels, and the scanners for
 * URLs in text, IP literals in Received fields and the domain of an
 * address.
 *
 * Diagnostics: parsers return -1 (with a reason for zone lines); nothing
 * logs, nothing exits.
 *
 * SECURITY: the scanners read attacker-controlled text: each takes an
 * explicit length, copies into bounded buffers and stops at its limits.
 */
#ifndef SLUICE_DNSBL_UTIL_H
#define SLUICE_DNSBL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ---- zones ---- */

typedef enum dnsbl_kind {
    DNSBL_IP = 0,     /* dnsbl: client and untrusted Received IPs */
    DNSBL_RHS,        /* rhsbl: sender, From: and HELO domains */
    DNSBL_URI,        /* uribl: registered domains of URLs */
    DNSBL_SXL_URL,    /* sxl-url: hash of each URL */
    DNSBL_SXL_DOMAIN, /* sxl-domain: hash of each domain (URLs, sender) */
    DNSBL_SXL_FILE    /* sxl-file: hash of each attachment's content */
} dnsbl_kind;

enum { DNSBL_HASH_MD5 = 0, DNSBL_HASH_SHA1, DNSBL_HASH_SHA256 };

typedef struct dnsbl_code {
    uint32_t lo, hi; /* host order; a range of answers that count */
    unsigned mask;   /* or: last octet of 127.0.0.x & mask != 0 */
} dnsbl_code;

#define DNSBL_MAX_CODES 16

typedef struct dnsbl_zone {
    char name[64]; /* NAME: upper case, for NAME_UNAVAILABLE */
    dnsbl_kind kind;
    int hash;         /* DNSBL_HASH_* for sxl kinds */
    char suffix[200]; /* lower case, no trailing dot */
    int any;          /* every 127.0.0.0/8 answer counts */
    dnsbl_code codes[DNSBL_MAX_CODES];
    size_t ncodes;
    char symbol[64];
    double weight;
} dnsbl_zone;

/* Parse one zone from 6 words: NAME KIND SUFFIX CODES SYMBOL WEIGHT.
 * KIND: dnsbl | rhsbl | uribl | sxl-url | sxl-domain | sxl-file, the
 * sxl ones optionally with :md5, :sha1 or :sha256 (default `dflt_hash`).
 * CODES: any, or items joined by '|': 127.0.0.2, 127.0.0.2-127.0.0.11,
 * mask:N (a bit of the last octet; N decimal or 0x..). */
int dnsbl_zone_parse(char *const *w, int dflt_hash, dnsbl_zone *z, char *why,
                     size_t whylen);
/* 1 if the A answer counts for the zone, 0 if not, -1 if it is an error
 * code of the list (127.255.255.0/24) or outside 127.0.0.0/8. */
int dnsbl_code_match(const dnsbl_zone *z, const char *answer);

/* ---- networks ---- */

typedef struct dnsbl_net {
    int family; /* 4 or 6 */
    unsigned char addr[16];
    int bits;
} dnsbl_net;

int dnsbl_net_parse(const char *s, dnsbl_net *n);
/* An address in text; 0 and *family, bytes filled, or -1. */
int dnsbl_addr_parse(const char *s, int *family, unsigned char *bytes);
int dnsbl_net_match(const dnsbl_net *nets, size_t n, int family,
                    const unsigned char *bytes);

/* "4.3.2.1" / 32 nibbles for `ip`, then "." suffix; -1 if no IP or the
 * name does not fit. */
int dnsbl_ip_qname(const char *ip, const char *suffix, char *out,
                   size_t outlen);

/* Lower-case hex digest of data, split in labels of at most 32 characters
 * when longer than 63 (sha256), then "." suffix. */
int dnsbl_hash_qname(int hash, const void *data, size_t len, const char *suffix,
                     char *out, size_t outlen);

/* ---- scanners ---- */

/* Called for each URL found: its normalised text (scheme and host lower
 * case) and its host.  Return nonzero to stop. */
typedef int (*dnsbl_url_fn)(const char *url, const char *host, void *arg);
/* Scan text for http://, https:// and www. URLs, up to `max` bytes. */
void dnsbl_scan_urls(const char *text, size_t len, dnsbl_url_fn fn, void *arg);

/* The IP literals ([192.0.2.1], [IPv6:2001:db8::1]) of a Received
 * field's `from` clause (before " by "), canonical text; returns how
 * many were stored (at most max). */
size_t dnsbl_received_ips(const char *value, char out[][48], size_t max);

/* Lower-case domain of an address: after the last '@', in <> if any;
 * -1 if there is none or it is not a host name (IP literals too). */
int dnsbl_addr_domain(const char *addr, char *out, size_t outlen);

/* 1 if s is a host name made of LDH labels with at least one dot. */
int dnsbl_hostname_ok(const char *s);

#endif
