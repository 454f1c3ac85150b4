/*
 * dnsbl_util.c - the dns stage's pure parts.  See dnsbl_util.h.
 */
#include "dnsbl_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- */
/* Zones                                                             */

static int dnsbl_ident_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n >= max)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

static int dnsbl_ipv4(const char *s, uint32_t *v)
{
    struct in_addr a;

    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *v = ntohl(a.s_addr);
    return 0;
}

/* One CODES item: 127.0.0.2, 127.0.0.2-127.0.0.11 or mask:N. */
static int dnsbl_code_parse(const char *item, dnsbl_code *c)
{
    char lo[32], *dash;
    size_t n = strlen(item);

    memset(c, 0, sizeof(*c));
    if (strncasecmp(item, "mask:", 5) == 0) {
        char *end;
        unsigned long m = strtoul(item + 5, &end, 0);
        if (item[5] == '\0' || *end != '\0' || m == 0 || m > 255)
            return -1;
        c->mask = (unsigned)m;
        return 0;
    }
    if (n >= sizeof(lo))
        return -1;
    memcpy(lo, item, n + 1);
    if ((dash = strchr(lo, '-')) != NULL) {
        *dash = '\0';
        if (dnsbl_ipv4(lo, &c->lo) < 0 || dnsbl_ipv4(dash + 1, &c->hi) < 0 ||
            c->hi < c->lo)
            return -1;
        return 0;
    }
    if (dnsbl_ipv4(lo, &c->lo) < 0)
        return -1;
    c->hi = c->lo;
    return 0;
}

static int dnsbl_kind_parse(const char *s, int dflt_hash, dnsbl_zone *z)
{
    static const struct {
        const char *name;
        dnsbl_kind kind;
    } kinds[] = {{"dnsbl", DNSBL_IP},
                 {"rhsbl", DNSBL_RHS},
                 {"uribl", DNSBL_URI},
                 {"sxl-url", DNSBL_SXL_URL},
                 {"sxl-domain", DNSBL_SXL_DOMAIN},
                 {"sxl-file", DNSBL_SXL_FILE}};
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s), i;

    z->hash = dflt_hash;
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strlen(kinds[i].name) == n && strncasecmp(s, kinds[i].name, n) == 0)
            break;
    if (i == sizeof(kinds) / sizeof(kinds[0]))
        return -1;
    z->kind = kinds[i].kind;
    if (colon == NULL)
        return 0;
    if (z->kind < DNSBL_SXL_URL)
        return -1; /* only hashed lookups take an algorithm */
    if (strcasecmp(colon + 1, "md5") == 0)
        z->hash = DNSBL_HASH_MD5;
    else if (strcasecmp(colon + 1, "sha1") == 0)
        z->hash = DNSBL_HASH_SHA1;
    else if (strcasecmp(colon + 1, "sha256") == 0)
        z->hash = DNSBL_HASH_SHA256;
    else
        return -1;
    return 0;
}

int dnsbl_zone_parse(char *const *w, int dflt_hash, dnsbl_zone *z, char *why,
                     size_t whylen)
{
    char codes[256], *item, *save = NULL, *end;
    size_t i, n;

    memset(z, 0, sizeof(*z));
    for (i = 0; i < 6; i++) {
        if (w[i] == NULL) {
            snprintf(why, whylen,
                     "a zone takes 6 words: NAME KIND SUFFIX CODES SYMBOL "
                     "WEIGHT");
            return -1;
        }
    }
    if (!dnsbl_ident_ok(w[0], sizeof(z->name))) {
        snprintf(why, whylen, "zone name '%s': letters, digits and _ only",
                 w[0]);
        return -1;
    }
    for (i = 0; w[0][i]; i++)
        z->name[i] = (char)toupper((unsigned char)w[0][i]);
    if (dnsbl_kind_parse(w[1], dflt_hash, z) < 0) {
        snprintf(why, whylen,
                 "zone %s: kind '%s' is not dnsbl, rhsbl, uribl, sxl-url, "
                 "sxl-domain or sxl-file (sxl-*: optionally :md5, :sha1, "
                 ":sha256)",
                 z->name, w[1]);
        return -1;
    }
    n = strlen(w[2]);
    if (n > 0 && w[2][n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof(z->suffix)) {
        snprintf(why, whylen, "zone %s: bad suffix '%s'", z->name, w[2]);
        return -1;
    }
    for (i = 0; i < n; i++)
        z->suffix[i] = (char)tolower((unsigned char)w[2][i]);
    if (!dnsbl_hostname_ok(z->suffix)) {
        snprintf(why, whylen, "zone %s: bad suffix '%s'", z->name, w[2]);
        return -1;
    }
    if (strcasecmp(w[3], "any") == 0) {
        z->any = 1;
    } else {
        snprintf(codes, sizeof(codes), "%s", w[3]);
        for (item = strtok_r(codes, "|", &save); item;
             item = strtok_r(NULL, "|", &save)) {
            if (z->ncodes >= DNSBL_MAX_CODES ||
                dnsbl_code_parse(item, &z->codes[z->ncodes]) < 0) {
                snprintf(why, whylen,
                         "zone %s: return codes '%s': any, or up to %d of "
                         "127.0.0.2, 127.0.0.2-127.0.0.11, mask:N joined "
                         "by '|'",
                         z->name, w[3], DNSBL_MAX_CODES);
                return -1;
            }
            z->ncodes++;
        }
        if (z->ncodes == 0) {
            snprintf(why, whylen, "zone %s: no return codes", z->name);
            return -1;
        }
    }
    if (!dnsbl_ident_ok(w[4], sizeof(z->symbol))) {
        snprintf(why, whylen, "zone %s: symbol '%s': letters, digits and _",
                 z->name, w[4]);
        return -1;
    }
    for (i = 0; w[4][i]; i++)
        z->symbol[i] = (char)toupper((unsigned char)w[4][i]);
    z->weight = strtod(w[5], &end);
    if (end == w[5] || *end != '\0' || z->weight != z->weight ||
        z->weight < -1000 || z->weight > 1000) {
        snprintf(why, whylen,
                 "zone %s: weight '%s' is not a number in "
                 "-1000..1000",
                 z->name, w[5]);
        return -1;
    }
    return 0;
}

int dnsbl_code_match(const dnsbl_zone *z, const char *answer)
{
    uint32_t v;
    size_t i;

    if (dnsbl_ipv4(answer, &v) < 0 || (v >> 24) != 127 ||
        (v & 0xffffff00u) == 0x7fffff00u)
        return -1;
    if (z->any)
        return 1;
    for (i = 0; i < z->ncodes; i++) {
        const dnsbl_code *c = &z->codes[i];
        if (c->mask) {
            if ((v & 0xffffff00u) == 0x7f000000u && (v & c->mask))
                return 1;
        } else if (v >= c->lo && v <= c->hi) {
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Networks                                                          */

int dnsbl_addr_parse(const char *s, int *family, unsigned char *bytes)
{
    if (inet_pton(AF_INET, s, bytes) == 1) {
        *family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, bytes) == 1) {
        /* IPv4-mapped: treat as the IPv4 address */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                                 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(bytes, mapped, 12) == 0) {
            memmove(bytes, bytes + 12, 4);
            *family = 4;
            return 0;
        }
        *family = 6;
        return 0;
    }
    return -1;
}

int dnsbl_net_parse(const char *s, dnsbl_net *n)
{
    char a[64], *slash, *end;
    long bits;

    memset(n, 0, sizeof(*n));
    if (strlen(s) >= sizeof(a))
        return -1;
    snprintf(a, sizeof(a), "%s", s);
    if ((slash = strchr(a, '/')) != NULL)
        *slash = '\0';
    if (dnsbl_addr_parse(a, &n->family, n->addr) < 0)
        return -1;
    if (slash == NULL) {
        n->bits = n->family == 4 ? 32 : 128;
        return 0;
    }
    bits = strtol(slash + 1, &end, 10);
    if (slash[1] == '\0' || *end != '\0' || bits < 0 ||
        bits > (n->family == 4 ? 32 : 128))
        return -1;
    n->bits = (int)bits;
    return 0;
}

int dnsbl_net_match(const dnsbl_net *nets, size_t n, int family,
                    const unsigned char *bytes)
{
    for (size_t i = 0; i < n; i++) {
        const dnsbl_net *x = &nets[i];
        int full, rest;
        if (x->family != family)
            continue;
        full = x->bits / 8;
        rest = x->bits % 8;
        if (memcmp(x->addr, bytes, (size_t)full) != 0)
            continue;
        if (rest) {
            unsigned char m = (unsigned char)(0xff << (8 - rest));
            if ((x->addr[full] & m) != (bytes[full] & m))
                continue;
        }
        return 1;
    }
    return 0;
}

int dnsbl_ip_qname(const char *ip, const char *suffix, char *out, size_t outlen)
{
    unsigned char b[16];
    int family, n;

    if (dnsbl_addr_parse(ip, &family, b) < 0)
        return -1;
    if (family == 4) {
        n = snprintf(out, outlen, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0],
                     suffix);
    } else {
        static const char hex[] = "0123456789abcdef";
        char nib[16 * 4];
        size_t o = 0;
        for (int i = 15; i >= 0; i--) {
            nib[o++] = hex[b[i] & 15];
            nib[o++] = '.';
            nib[o++] = hex[b[i] >> 4];
            nib[o++] = '.';
        }
        n = snprintf(out, outlen, "%.*s%s", (int)o, nib, suffix);
    }
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int dnsbl_hash_qname(int hash, const void *data, size_t len, const char *suffix,
                     char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, i;
    const EVP_MD *alg = hash == DNSBL_HASH_MD5    ? EVP_md5()
                        : hash == DNSBL_HASH_SHA1 ? EVP_sha1()
                                                  : EVP_sha256();
    char h[2 * EVP_MAX_MD_SIZE + 8];
    size_t o = 0, hl;
    int n;

    if (EVP_Digest(data, len, md, &mdlen, alg, NULL) != 1)
        return -1;
    hl = (size_t)mdlen * 2;
    for (i = 0; i < mdlen; i++) {
        /* labels are at most 63 octets: split longer digests by 32 */
        if (hl > 63 && i > 0 && i % 16 == 0)
            h[o++] = '.';
        h[o++] = hex[md[i] >> 4];
        h[o++] = hex[md[i] & 15];
    }
    h[o] = '\0';
    n = snprintf(out, outlen, "%s.%s", h, suffix);
    return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* ---------------------------------------------------------------- */
/* Scanners                                                          */

int dnsbl_hostname_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    int dots = 0;

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            dots++;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && dots > 0;
}

static int dnsbl_url_stop(unsigned char c)
{
    return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' ||
           c == '`' || c == '\\' || c == '{' || c == '}' || c == '|' ||
           c == '^' || c >= 127;
}

static int dnsbl_prefix(const char *t, size_t len, size_t i, const char *p)
{
    size_t n = strlen(p);
    return len - i >= n && strncasecmp(t + i, p, n) == 0;
}

#define DNSBL_MAX_URL 2048

void dnsbl_scan_urls(const char *t, size_t len, dnsbl_url_fn fn, void *arg)
{
    size_t i = 0;

    while (i < len) {
        size_t hs, he, ae, pe, at, k;
        const char *scheme;
        char host[256], url[DNSBL_MAX_URL + 16];
        size_t hl, ul;
        int n;

        if (dnsbl_prefix(t, len, i, "http://")) {
            scheme = "http";
            hs = i + 7;
        } else if (dnsbl_prefix(t, len, i, "https://")) {
            scheme = "https";
            hs = i + 8;
        } else if (dnsbl_prefix(t, len, i, "www.") &&
                   (i == 0 ||
                    (!isalnum((unsigned char)t[i - 1]) && t[i - 1] != '.' &&
                     t[i - 1] != '/' && t[i - 1] != '@' && t[i - 1] != '-'))) {
            scheme = "http";
            hs = i;
        } else {
            i++;
            continue;
        }
        /* authority: up to the path; userinfo and port dropped */
        for (ae = hs; ae < len && ae - hs < 512 &&
                      !dnsbl_url_stop((unsigned char)t[ae]) && t[ae] != '/' &&
                      t[ae] != '?' && t[ae] != '#' && t[ae] != ')' &&
                      t[ae] != ']' && t[ae] != '(';
             ae++)
            ;
        at = hs;
        for (k = hs; k < ae; k++)
            if (t[k] == '@')
                at = k + 1;
        for (he = at; he < ae && (isalnum((unsigned char)t[he]) ||
                                  t[he] == '-' || t[he] == '.' || t[he] == '_');
             he++)
            ;
        /* the path, bounded */
        for (pe = ae; pe < len && pe - i < DNSBL_MAX_URL &&
                      !dnsbl_url_stop((unsigned char)t[pe]);
             pe++)
            ;
        while (pe > ae && strchr(".,;:!?)]'\"", t[pe - 1]))
            pe--;
        hl = he - at;
        while (hl > 0 && t[at + hl - 1] == '.')
            hl--;
        if (hl == 0 || hl >= sizeof(host) ||
            (he < ae && t[he] != ':')) { /* odd characters in the host */
            i = pe > i ? pe : i + 1;
            continue;
        }
        for (k = 0; k < hl; k++)
            host[k] = (char)tolower((unsigned char)t[at + k]);
        host[hl] = '\0';
        n = snprintf(url, sizeof(url), "%s://%s", scheme, host);
        ul = (size_t)n;
        if (pe > ae && ul + (pe - ae) < sizeof(url)) {
            memcpy(url + ul, t + ae, pe - ae);
            ul += pe - ae;
        }
        url[ul] = '\0';
        i = pe > i ? pe : i + 1;
        if (!dnsbl_hostname_ok(host))
            continue;
        if (fn(url, host, arg))
            return;
    }
}

size_t dnsbl_received_ips(const char *v, char out[][48], size_t max)
{
    size_t n = strlen(v), end = n, i, got = 0;

    /* the `from` clause: up to the first " by " */
    for (i = 0; i + 3 < n; i++) {
        if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t') &&
            strncasecmp(v + i, "by", 2) == 0 &&
            (v[i + 2] == ' ' || v[i + 2] == '\t')) {
            end = i;
            break;
        }
    }
    for (i = 0; i < end && got < max; i++) {
        char lit[64];
        const char *s;
        size_t j, l;
        unsigned char b[16];
        int family;

        if (v[i] != '[')
            continue;
        for (j = i + 1; j < end && j - i < 60 && v[j] != ']'; j++)
            ;
        if (j >= end || v[j] != ']')
            continue;
        l = j - i - 1;
        memcpy(lit, v + i + 1, l);
        lit[l] = '\0';
        s = strncasecmp(lit, "ipv6:", 5) == 0 ? lit + 5 : lit;
        if (dnsbl_addr_parse(s, &family, b) == 0 &&
            inet_ntop(family == 4 ? AF_INET : AF_INET6, b, out[got], 48)) {
            size_t k;
            for (k = 0; k < got; k++)
                if (strcmp(out[k], out[got]) == 0)
                    break;
            if (k == got)
                got++;
        }
        i = j;
    }
    return got;
}

int dnsbl_addr_domain(const char *addr, char *out, size_t outlen)
{
    const char *s = addr, *e, *lt, *at = NULL, *p;
    size_t n;

    if ((lt = strchr(addr, '<')) != NULL) {
        s = lt + 1;
        e = strchr(s, '>');
        if (e == NULL)
            e = s + strlen(s);
    } else {
        e = addr + strlen(addr);
    }
    for (p = s; p < e; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return -1;
    s = at + 1;
    for (p = s; p < e && *p != ' ' && *p != '\t' && *p != '>' && *p != ',' &&
                *p != ';' && *p != ')';
         p++)
        ;
    n = (size_t)(p - s);
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n >= outlen || *s == '[')
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return dnsbl_hostname_ok(out) ? 0 : -1;
}
