/*
 * dnsbl.c - the `dns` stage: DNSBL (client and untrusted Received IPs),
 * RHSBL (envelope sender, From: and HELO domains), URIBL (registered
 * domains of the URLs in text and HTML parts) and SXL-style hashed
 * lookups (URLs, domains, attachment contents), through the engine's
 * resolver (host->dns_query, ABI 1.1), all of a message's queries at once.
 *
 * At end of data the stage collects every subject, builds the query names
 * for every configured zone, drops duplicates, caps them at max_queries
 * and starts them together; it returns PENDING and calls done() once: when
 * the last answer is in, or at the message's DNS deadline, whichever comes
 * first.  It never decides a verdict: it adds symbols (zone SYMBOL with the
 * zone's weight on a listed answer; NAME_UNAVAILABLE with score 0 when a
 * zone timed out, failed, answered an error code or missed the deadline)
 * and always continues.
 *
 * Zones are `zone NAME KIND SUFFIX CODES SYMBOL WEIGHT` lines (see
 * dnsbl_util.h and README.md).  Several lines may share a suffix (one
 * symbol per return code): the query is made once.
 *
 * SECURITY: every subject comes from the message or the client: URLs are
 * scanned in the first scan_limit bytes of each text part, the number of
 * domains, URLs, attachments and Received fields is capped, and each name
 * is checked before it is asked.  DNS answers are only compared with the
 * zone's codes.  Nothing blocks the loop.
 */
#include <sluice/stage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsbl_util.h"
#include "psl.h"

#define DNSBL_MAX_ZONES 64
#define DNSBL_QNAME 512

typedef struct dnsbl_conf {
    char **zones;   /* words, 6 per zone */
    char **trusted; /* CIDR list; NULL: the built-in default */
    int received;
    long long max_received;
    double deadline;
    long long max_queries;
    long long max_urls;
    long long max_attachments;
    size_t scan_limit;
    char *psl_path;
    int sxl_hash;
} dnsbl_conf;

static const char *const dnsbl_hashes[] = {"md5", "sha1", "sha256", NULL};

#define DC(f) offsetof(dnsbl_conf, f)
static const sluice_directive dnsbl_directives[] = {
    {"zone", SLUICE_CONF_STRLIST, DC(zones), NULL, 0, 0, NULL,
     "NAME KIND SUFFIX CODES SYMBOL WEIGHT; repeat for each zone"},
    {"trusted_networks", SLUICE_CONF_STRLIST, DC(trusted), NULL, 0, 0, NULL,
     "CIDRs never looked up (default loopback, RFC 1918, link-local, ULA); "
     "'none' for none"},
    {"check_received", SLUICE_CONF_BOOL, DC(received), "yes", 0, 0, NULL,
     "also look up the untrusted IPs of the Received chain"},
    {"max_received", SLUICE_CONF_INT, DC(max_received), "8", 0, 100, NULL,
     "Received fields read, from the top"},
    {"deadline", SLUICE_CONF_DURATION, DC(deadline), "5s", 0, 3600, NULL,
     "a message's DNS work ends then, with what it has"},
    {"max_queries", SLUICE_CONF_INT, DC(max_queries), "100", 1, 10000, NULL,
     "DNS queries per message (after removing duplicates)"},
    {"max_urls", SLUICE_CONF_INT, DC(max_urls), "50", 0, 10000, NULL,
     "distinct URL domains (and as many URLs) looked up per message"},
    {"max_attachments", SLUICE_CONF_INT, DC(max_attachments), "20", 0, 1000,
     NULL, "attachments hashed per message (sxl-file zones)"},
    {"scan_limit", SLUICE_CONF_SIZE, DC(scan_limit), "1M", 0, 0, NULL,
     "bytes of each text part scanned for URLs"},
    {"public_suffix_list", SLUICE_CONF_STRING, DC(psl_path),
     "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0, NULL,
     "Public Suffix List file (Debian package publicsuffix)"},
    {"sxl_hash", SLUICE_CONF_ENUM, DC(sxl_hash), "sha1", 0, 0, dnsbl_hashes,
     "default hash of sxl-* zones: md5, sha1 or sha256"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static const char *const dnsbl_default_trusted[] = {
    "127.0.0.0/8",    "10.0.0.0/8",     "172.16.0.0/12",
    "192.168.0.0/16", "169.254.0.0/16", "::1/128",
    "fc00::/7",       "fe80::/10",      NULL};

typedef struct dnsbl_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    dnsbl_conf *conf;
    dnsbl_zone *zones;
    size_t nzones;
    unsigned kinds; /* bit per dnsbl_kind in use */
    dnsbl_net *trusted;
    size_t ntrusted;
    psl *psl;
} dnsbl_inst;

struct dnsbl_msg;

/* One query name, and the zones it serves. */
typedef struct dnsbl_q {
    struct dnsbl_msg *m;
    sluice_dns_query *dq;
    char *qname;
    char *subject;
    uint64_t zones;
    int open;
} dnsbl_q;

/* The per-message slot. */
typedef struct dnsbl_msg {
    dnsbl_inst *di;
    sluice_txn *txn;
    dnsbl_q *qs;
    size_t nq, cap;
    size_t pending;
    size_t dropped; /* names over max_queries */
    sluice_timer *deadline;
    int finished;
} dnsbl_msg;

/* ---------------------------------------------------------------- */
/* Configuration                                                     */

static int dnsbl_init_zones(dnsbl_inst *di)
{
    char **w = di->conf->zones;
    size_t n = 0;
    char why[256];

    while (w && w[n])
        n++;
    if (n % 6 != 0) {
        di->host->log(di->ctx, NULL, SLUICE_LOG_ERROR,
                      "zone: %zu words; each zone is 6: NAME KIND SUFFIX "
                      "CODES SYMBOL WEIGHT (CODES joined by '|', not ',')",
                      n);
        return -1;
    }
    if (n / 6 > DNSBL_MAX_ZONES) {
        di->host->log(di->ctx, NULL, SLUICE_LOG_ERROR, "more than %d zones",
                      DNSBL_MAX_ZONES);
        return -1;
    }
    di->nzones = n / 6;
    di->zones = calloc(di->nzones ? di->nzones : 1, sizeof(*di->zones));
    if (di->zones == NULL)
        return -1;
    for (size_t i = 0; i < di->nzones; i++) {
        if (dnsbl_zone_parse(w + 6 * i, di->conf->sxl_hash, &di->zones[i], why,
                             sizeof(why)) < 0) {
            di->host->log(di->ctx, NULL, SLUICE_LOG_ERROR, "zone %zu: %s",
                          i + 1, why);
            return -1;
        }
        di->kinds |= 1u << di->zones[i].kind;
    }
    return 0;
}

static int dnsbl_init_trusted(dnsbl_inst *di)
{
    char *const *list = di->conf->trusted;
    size_t n = 0;

    if (list == NULL)
        list = (char *const *)dnsbl_default_trusted;
    while (list[n])
        n++;
    di->trusted = calloc(n ? n : 1, sizeof(*di->trusted));
    if (di->trusted == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(list[i], "none") == 0)
            continue;
        if (dnsbl_net_parse(list[i], &di->trusted[di->ntrusted]) < 0) {
            di->host->log(di->ctx, NULL, SLUICE_LOG_ERROR,
                          "trusted_networks: '%s' is not an address or "
                          "CIDR (192.0.2.0/24, 2001:db8::/32)",
                          list[i]);
            return -1;
        }
        di->ntrusted++;
    }
    return 0;
}

static void dnsbl_fini(void *inst)
{
    dnsbl_inst *di = inst;

    if (di == NULL)
        return;
    psl_free(di->psl);
    free(di->zones);
    free(di->trusted);
    free(di);
}

static int dnsbl_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                      void **inst)
{
    dnsbl_inst *di;
    char err[512];

    if (!SLUICE_HOST_HAS(host, dns_query) ||
        !SLUICE_HOST_HAS(host, dns_cancel)) {
        host->log(ctx, NULL, SLUICE_LOG_ERROR,
                  "this engine has no DNS resolver (needs stage ABI 1.1)");
        return -1;
    }
    if ((di = calloc(1, sizeof(*di))) == NULL)
        return -1;
    di->host = host;
    di->ctx = ctx;
    di->conf = conf;
    if (dnsbl_init_zones(di) < 0 || dnsbl_init_trusted(di) < 0) {
        dnsbl_fini(di);
        return -1;
    }
    if (di->kinds &
        ((1u << DNSBL_RHS) | (1u << DNSBL_URI) | (1u << DNSBL_SXL_DOMAIN))) {
        if ((di->psl = psl_load(di->conf->psl_path, err, sizeof(err))) ==
            NULL) {
            host->log(ctx, NULL, SLUICE_LOG_ERROR, "public_suffix_list: %s",
                      err);
            dnsbl_fini(di);
            return -1;
        }
    }
    if (di->nzones == 0)
        host->log(ctx, NULL, SLUICE_LOG_WARN,
                  "no zone configured: the stage does nothing");
    *inst = di;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Collecting query names                                            */

static int dnsbl_has(const dnsbl_inst *di, dnsbl_kind k)
{
    return (di->kinds >> k) & 1u;
}

/* Add (or join) the query `qname` for zone z; 0, or -1 when full. */
static int dnsbl_add(dnsbl_msg *m, size_t z, const char *qname,
                     const char *subject)
{
    dnsbl_q *q;

    for (size_t i = 0; i < m->nq; i++) {
        if (strcmp(m->qs[i].qname, qname) == 0) {
            m->qs[i].zones |= (uint64_t)1 << z;
            return 0;
        }
    }
    if (m->nq >= (size_t)m->di->conf->max_queries) {
        m->dropped++;
        return -1;
    }
    if (m->nq == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        dnsbl_q *nq = realloc(m->qs, nc * sizeof(*nq));
        if (nq == NULL)
            return -1;
        m->qs = nq;
        m->cap = nc;
    }
    q = &m->qs[m->nq];
    memset(q, 0, sizeof(*q));
    q->qname = strdup(qname);
    q->subject = strdup(subject);
    if (q->qname == NULL || q->subject == NULL) {
        free(q->qname);
        free(q->subject);
        return -1;
    }
    q->m = m;
    q->zones = (uint64_t)1 << z;
    m->nq++;
    return 0;
}

static int dnsbl_ip_trusted(const dnsbl_inst *di, const char *ip)
{
    unsigned char b[16];
    int family;

    if (dnsbl_addr_parse(ip, &family, b) < 0)
        return 1; /* not an address: nothing to look up */
    return dnsbl_net_match(di->trusted, di->ntrusted, family, b);
}

static void dnsbl_add_ip(dnsbl_msg *m, const char *ip)
{
    const dnsbl_inst *di = m->di;
    char qn[DNSBL_QNAME];

    if (strncasecmp(ip, "IPv6:", 5) == 0) /* as some MTAs write it */
        ip += 5;
    if (dnsbl_ip_trusted(di, ip))
        return;
    for (size_t z = 0; z < di->nzones; z++)
        if (di->zones[z].kind == DNSBL_IP &&
            dnsbl_ip_qname(ip, di->zones[z].suffix, qn, sizeof(qn)) == 0)
            dnsbl_add(m, z, qn, ip);
}

/* A domain for the kinds that take domains (rhsbl: `rhs` set). */
static void dnsbl_add_domain(dnsbl_msg *m, const char *domain, int rhs, int uri)
{
    const dnsbl_inst *di = m->di;
    char reg[256], qn[DNSBL_QNAME];
    int n;

    /* the registered domain: "example.co.uk" for "www.example.co.uk" */
    if (di->psl == NULL ||
        psl_registered(di->psl, domain, reg, sizeof(reg)) < 0)
        return; /* a public suffix itself, or not a host name */
    for (size_t z = 0; z < di->nzones; z++) {
        const dnsbl_zone *zz = &di->zones[z];
        if ((zz->kind == DNSBL_RHS && rhs) || (zz->kind == DNSBL_URI && uri)) {
            n = snprintf(qn, sizeof(qn), "%s.%s", reg, zz->suffix);
            if (n > 0 && (size_t)n < sizeof(qn))
                dnsbl_add(m, z, qn, reg);
        } else if (zz->kind == DNSBL_SXL_DOMAIN &&
                   dnsbl_hash_qname(zz->hash, reg, strlen(reg), zz->suffix, qn,
                                    sizeof(qn)) == 0) {
            dnsbl_add(m, z, qn, reg);
        }
    }
}

static void dnsbl_collect_ips(dnsbl_msg *m)
{
    const dnsbl_inst *di = m->di;
    const sluice_host *h = di->host;
    const sluice_client *c = h->client(m->txn);

    if (c && c->addr && c->addr[0])
        dnsbl_add_ip(m, c->addr);
    if (!di->conf->received)
        return;
    for (size_t i = 0; i < (size_t)di->conf->max_received; i++) {
        const sluice_header *hd = h->header_find(m->txn, "Received", i);
        char ips[4][48];
        size_t n;
        if (hd == NULL)
            break;
        if (hd->value == NULL)
            continue;
        n = dnsbl_received_ips(hd->value, ips, 4);
        for (size_t k = 0; k < n; k++)
            dnsbl_add_ip(m, ips[k]);
    }
}

static void dnsbl_collect_senders(dnsbl_msg *m)
{
    const sluice_host *h = m->di->host;
    const sluice_addr *s = h->sender(m->txn);
    const sluice_header *from = h->header_find(m->txn, "From", 0);
    const sluice_client *c = h->client(m->txn);
    char d[256];

    if (s && s->addr && dnsbl_addr_domain(s->addr, d, sizeof(d)) == 0)
        dnsbl_add_domain(m, d, 1, 0);
    if (from && from->value &&
        dnsbl_addr_domain(from->value, d, sizeof(d)) == 0)
        dnsbl_add_domain(m, d, 1, 0);
    if (c && c->helo && c->helo[0] && c->helo[0] != '[' &&
        strlen(c->helo) < sizeof(d)) {
        size_t n = strlen(c->helo), i;
        unsigned char b[16];
        int family;
        for (i = 0; i < n; i++)
            d[i] = (char)((c->helo[i] >= 'A' && c->helo[i] <= 'Z')
                              ? c->helo[i] + 32
                              : c->helo[i]);
        d[n] = '\0';
        if (dnsbl_addr_parse(d, &family, b) < 0 && dnsbl_hostname_ok(d))
            dnsbl_add_domain(m, d, 1, 0);
    }
}

typedef struct dnsbl_urls {
    dnsbl_msg *m;
    char (*hosts)[256];
    size_t nhosts, nurls, max;
    char **urls; /* seen, for sxl-url */
} dnsbl_urls;

static int dnsbl_url_cb(const char *url, const char *host, void *arg)
{
    dnsbl_urls *u = arg;
    dnsbl_msg *m = u->m;
    const dnsbl_inst *di = m->di;
    size_t i;

    if (dnsbl_has(di, DNSBL_SXL_URL) && u->nurls < u->max) {
        for (i = 0; i < u->nurls; i++)
            if (strcmp(u->urls[i], url) == 0)
                break;
        if (i == u->nurls && (u->urls[u->nurls] = strdup(url)) != NULL) {
            char qn[DNSBL_QNAME];
            u->nurls++;
            for (size_t z = 0; z < di->nzones; z++) {
                const dnsbl_zone *zz = &di->zones[z];
                if (zz->kind == DNSBL_SXL_URL &&
                    dnsbl_hash_qname(zz->hash, url, strlen(url), zz->suffix, qn,
                                     sizeof(qn)) == 0)
                    dnsbl_add(m, z, qn, url);
            }
        }
    }
    for (i = 0; i < u->nhosts; i++)
        if (strcmp(u->hosts[i], host) == 0)
            break;
    if (i == u->nhosts && u->nhosts < u->max) {
        unsigned char b[16];
        int family;
        snprintf(u->hosts[u->nhosts++], 256, "%s", host);
        if (dnsbl_addr_parse(host, &family, b) < 0)
            dnsbl_add_domain(m, host, 0, 1);
    }
    return u->nhosts >= u->max &&
           (!dnsbl_has(di, DNSBL_SXL_URL) || u->nurls >= u->max);
}

static void dnsbl_collect_urls(dnsbl_msg *m)
{
    const dnsbl_inst *di = m->di;
    const sluice_host *h = di->host;
    dnsbl_urls u;
    size_t np = h->part_count(m->txn);

    memset(&u, 0, sizeof(u));
    u.m = m;
    u.max = (size_t)di->conf->max_urls;
    if (u.max == 0)
        return;
    u.hosts = calloc(u.max, sizeof(*u.hosts));
    u.urls = calloc(u.max, sizeof(char *));
    if (u.hosts == NULL || u.urls == NULL)
        goto out;
    for (size_t i = 0; i < np; i++) {
        const sluice_part *p = h->part(m->txn, i);
        size_t len;
        if (p == NULL || p->is_multipart || p->is_attachment ||
            p->decoded == NULL || strncmp(p->type, "text/", 5) != 0)
            continue;
        len = p->decoded_len < di->conf->scan_limit ? p->decoded_len
                                                    : di->conf->scan_limit;
        dnsbl_scan_urls((const char *)p->decoded, len, dnsbl_url_cb, &u);
        if (u.nhosts >= u.max &&
            (!dnsbl_has(di, DNSBL_SXL_URL) || u.nurls >= u.max))
            break;
    }
out:
    for (size_t i = 0; i < u.nurls; i++)
        free(u.urls[i]);
    free(u.urls);
    free(u.hosts);
}

static void dnsbl_collect_files(dnsbl_msg *m)
{
    const dnsbl_inst *di = m->di;
    const sluice_host *h = di->host;
    size_t np = h->part_count(m->txn), done = 0;
    char qn[DNSBL_QNAME];

    for (size_t i = 0; i < np && done < (size_t)di->conf->max_attachments;
         i++) {
        const sluice_part *p = h->part(m->txn, i);
        if (p == NULL || p->is_multipart || !p->is_attachment ||
            p->decoded == NULL || p->decoded_len == 0)
            continue;
        done++;
        for (size_t z = 0; z < di->nzones; z++) {
            const dnsbl_zone *zz = &di->zones[z];
            if (zz->kind == DNSBL_SXL_FILE &&
                dnsbl_hash_qname(zz->hash, p->decoded, p->decoded_len,
                                 zz->suffix, qn, sizeof(qn)) == 0)
                dnsbl_add(m, z, qn,
                          p->filename[0] ? p->filename : "attachment");
        }
    }
}

/* ---------------------------------------------------------------- */
/* Answers                                                           */

static void dnsbl_unavailable(dnsbl_msg *m, uint64_t zones, const char *why)
{
    const dnsbl_inst *di = m->di;
    char sym[96];

    for (size_t z = 0; z < di->nzones; z++) {
        if (!(zones & ((uint64_t)1 << z)))
            continue;
        snprintf(sym, sizeof(sym), "%s_UNAVAILABLE", di->zones[z].name);
        di->host->symbol_add(m->txn, sym, 0, "%s: %s", di->zones[z].suffix,
                             why);
    }
    di->host->counter_add(di->ctx, "unavailable", 1);
}

static void dnsbl_finish(dnsbl_msg *m)
{
    const sluice_host *h = m->di->host;

    if (m->finished)
        return;
    m->finished = 1;
    if (m->deadline) {
        h->timer_free(m->deadline);
        m->deadline = NULL;
    }
    h->done(m->txn, SLUICE_CONTINUE);
}

static void dnsbl_answer(sluice_dns_query *dq, const sluice_dns_answer *a,
                         void *arg)
{
    dnsbl_q *q = arg;
    dnsbl_msg *m = q->m;
    const dnsbl_inst *di = m->di;
    const sluice_host *h = di->host;

    q->dq = NULL;
    q->open = 0;
    if (a->status == SLUICE_DNS_OK) {
        for (size_t z = 0; z < di->nzones; z++) {
            const dnsbl_zone *zz = &di->zones[z];
            int listed = 0, error = 0;
            const char *code = NULL;
            if (!(q->zones & ((uint64_t)1 << z)))
                continue;
            for (size_t r = 0; r < a->count; r++) {
                int v = dnsbl_code_match(zz, a->records[r]);
                if (v > 0 && !listed) {
                    listed = 1;
                    code = a->records[r];
                } else if (v < 0) {
                    error = 1;
                    code = code ? code : a->records[r];
                }
            }
            if (listed) {
                h->symbol_add(m->txn, zz->symbol, zz->weight,
                              "%s listed in %s (%s)", q->subject, zz->suffix,
                              code);
                h->log(di->ctx, m->txn, SLUICE_LOG_INFO,
                       "%s listed in %s (%s): %s", q->subject, zz->suffix, code,
                       zz->symbol);
                h->counter_add(di->ctx, "hits", 1);
            } else if (error) {
                /* 127.255.255.x or a resolver rewriting NXDOMAIN */
                h->log(di->ctx, m->txn, SLUICE_LOG_WARN,
                       "%s answered %s for %s: an error code, not a "
                       "listing (is the resolver allowed to query it?)",
                       zz->suffix, code, q->qname);
                dnsbl_unavailable(m, (uint64_t)1 << z, "error code");
            }
        }
    } else if (a->status == SLUICE_DNS_TIMEOUT ||
               a->status == SLUICE_DNS_SERVFAIL ||
               a->status == SLUICE_DNS_ERROR) {
        const char *why = a->status == SLUICE_DNS_TIMEOUT    ? "timeout"
                          : a->status == SLUICE_DNS_SERVFAIL ? "servfail"
                                                             : "error";
        h->log(di->ctx, m->txn, SLUICE_LOG_DEBUG, "%s: %s", q->qname, why);
        dnsbl_unavailable(m, q->zones, why);
    }
    if (--m->pending == 0)
        dnsbl_finish(m);
}

static void dnsbl_cancel_all(dnsbl_msg *m, int mark)
{
    const sluice_host *h = m->di->host;
    size_t late = 0;

    for (size_t i = 0; i < m->nq; i++) {
        dnsbl_q *q = &m->qs[i];
        if (!q->open)
            continue;
        if (q->dq)
            h->dns_cancel(q->dq);
        q->dq = NULL;
        q->open = 0;
        if (mark)
            dnsbl_unavailable(m, q->zones, "deadline");
        late++;
    }
    m->pending = 0;
    if (mark && late)
        h->log(m->di->ctx, m->txn, SLUICE_LOG_INFO,
               "DNS deadline (%.1fs): %zu of %zu queries unanswered",
               m->di->conf->deadline, late, m->nq);
}

static void dnsbl_deadline(sluice_timer *t, void *arg)
{
    dnsbl_msg *m = arg;

    dnsbl_cancel_all(m, 1);
    dnsbl_finish(m);
}

/* ---------------------------------------------------------------- */
/* Hooks                                                             */

static sluice_verdict dnsbl_eom(void *inst, sluice_txn *txn, void *slot)
{
    dnsbl_inst *di = inst;
    dnsbl_msg *m = slot;
    const sluice_host *h = di->host;
    size_t i, started = 0;

    m->di = di;
    m->txn = txn;
    if (di->nzones == 0)
        return SLUICE_CONTINUE;
    if (dnsbl_has(di, DNSBL_IP))
        dnsbl_collect_ips(m);
    if (dnsbl_has(di, DNSBL_RHS) || dnsbl_has(di, DNSBL_SXL_DOMAIN))
        dnsbl_collect_senders(m);
    if (dnsbl_has(di, DNSBL_URI) || dnsbl_has(di, DNSBL_SXL_URL) ||
        dnsbl_has(di, DNSBL_SXL_DOMAIN))
        dnsbl_collect_urls(m);
    if (dnsbl_has(di, DNSBL_SXL_FILE))
        dnsbl_collect_files(m);
    if (m->dropped)
        h->log(di->ctx, txn, SLUICE_LOG_INFO,
               "%zu DNS names over max_queries (%lld) not looked up",
               m->dropped, di->conf->max_queries);
    if (m->nq == 0)
        return SLUICE_CONTINUE;

    /* every pointer into m->qs is stable from here on */
    m->pending = m->nq;
    for (i = 0; i < m->nq; i++)
        m->qs[i].open = 1;
    for (i = 0; i < m->nq; i++) {
        dnsbl_q *q = &m->qs[i];
        q->dq =
            h->dns_query(di->ctx, txn, q->qname, SLUICE_DNS_A, dnsbl_answer, q);
        if (q->dq == NULL) {
            q->open = 0;
            m->pending--;
            dnsbl_unavailable(m, q->zones, "no resolver");
            continue;
        }
        started++;
    }
    h->counter_add(di->ctx, "queries", (long long)started);
    h->log(di->ctx, txn, SLUICE_LOG_DEBUG, "%zu DNS queries", started);
    if (m->pending == 0)
        return SLUICE_CONTINUE;
    if ((m->deadline = h->timer_new(di->ctx, dnsbl_deadline, m)) == NULL) {
        dnsbl_cancel_all(m, 1);
        return SLUICE_CONTINUE;
    }
    h->timer_start(m->deadline, di->conf->deadline);
    return SLUICE_PENDING;
}

static void dnsbl_abort(void *inst, sluice_txn *txn, void *slot)
{
    dnsbl_msg *m = slot;
    const sluice_host *h = ((dnsbl_inst *)inst)->host;

    if (m->di == NULL)
        return;
    dnsbl_cancel_all(m, 0);
    m->finished = 1;
    if (m->deadline) {
        h->timer_free(m->deadline);
        m->deadline = NULL;
    }
}

static void dnsbl_close(void *inst, sluice_txn *txn, void *slot)
{
    dnsbl_msg *m = slot;

    if (m->di == NULL)
        return;
    dnsbl_abort(inst, txn, slot);
    for (size_t i = 0; i < m->nq; i++) {
        free(m->qs[i].qname);
        free(m->qs[i].subject);
    }
    free(m->qs);
    m->qs = NULL;
    m->nq = m->cap = 0;
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = 1, /* host->dns_query */
    .size = sizeof(sluice_stage),
    .name = "dns",
    .version = "0.1.0",
    .description = "DNSBL, RHSBL, URIBL and hashed (SXL) lookups",
    .flags = 0,
    .directives = dnsbl_directives,
    .conf_size = sizeof(dnsbl_conf),
    .slot_size = sizeof(dnsbl_msg),
    .init = dnsbl_init,
    .fini = dnsbl_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = dnsbl_eom},
    .on_abort = dnsbl_abort,
    .on_close = dnsbl_close,
};
