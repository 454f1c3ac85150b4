/* fuzz_dns.c - libFuzzer target for what the DNS code reads from the
 * network and from messages: the resolver's answer parser (engine/dns.c,
 * names expanded by c-ares), and the dns stage's scanners (URLs in text,
 * IP literals in Received fields, the domain of an address) and PSL
 * matcher.  The first byte picks the target and the record type. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnsbl_util.h"
#include "psl.h"

static const int fuzz_types[] = {SLUICE_DNS_A,   SLUICE_DNS_AAAA,
                                 SLUICE_DNS_TXT, SLUICE_DNS_MX,
                                 SLUICE_DNS_PTR, SLUICE_DNS_NS,
                                 SLUICE_DNS_CNAME};

static int fuzz_url(const char *url, const char *host, void *arg)
{
    size_t *n = arg;
    if (strlen(url) > 2100 || strlen(host) > 255 || !dnsbl_hostname_ok(host))
        abort();
    return ++*n > 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static psl *p;
    char *text, out[256], ips[4][48];
    size_t n = 0, count;
    unsigned ttl;

    if (size < 1)
        return 0;
    if (p == NULL)
        p = psl_from_text("com\nuk\nco.uk\n*.ck\n!www.ck\n");
    if ((data[0] & 1) == 0) {
        int type = fuzz_types[(data[0] >> 1) % 7];
        dns_parse_answer(data + 1, size - 1, type, &count, &ttl);
        if (count > DNS_MAX_RECORDS)
            abort();
        return 0;
    }
    text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    dnsbl_scan_urls((const char *)data + 1, size - 1, fuzz_url, &n);
    dnsbl_received_ips(text, ips, 4);
    dnsbl_addr_domain(text, out, sizeof(out));
    psl_registered(p, text, out, sizeof(out));
    free(text);
    return 0;
}
