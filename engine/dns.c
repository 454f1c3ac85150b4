/*
 * dns.c - the worker's resolver: c-ares driven by the worker's libev loop
 * (socket watchers from c-ares's sock_state_cb, one ev_timer from
 * ares_timeout()), no threads, nothing blocks.  See dns.h.
 *
 * Shape: an entry per (type, name) lives in one hash table.  An entry is
 * either in flight (one c-ares query, a list of waiting queries) or cached
 * (a shared, reference-counted result, on the LRU list).  Every callback
 * goes through the ready queue, drained by a zero-delay timer, so none is
 * ever called from inside dns_query_start() and a cancelled query is simply
 * taken off whatever list it is on.
 *
 * c-ares cannot cancel one query, so a lookup whose waiters all went away
 * runs to its end and only fills the cache; once no query at all waits,
 * every lookup on the wire is cancelled, so idle watchers never hold a
 * stopping worker's loop.
 *
 * SECURITY: see dns.h.  The answer parser trusts no count or length.
 */
#include "dns.h"
#include "log.h"

#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct dns_result {
    int refs;
    sluice_dns_status status;
    int type;
    unsigned ttl;
    size_t count;
    size_t bytes;   /* what it costs the cache */
    char **records; /* count + 1, NULL-terminated */
} dns_result;

typedef struct dns_entry dns_entry;

struct sluice_dns_query {
    dns_resolver *r;
    dns_entry *e;    /* waiting on this entry's lookup, or NULL */
    dns_result *res; /* when ready */
    int cached;
    unsigned ttl; /* as delivered (remaining, for cached answers) */
    sluice_dns_cb cb;
    void *arg;
    sluice_dns_query *next, *prev; /* entry's waiters or the ready queue */
    sluice_dns_query **owner;
    sluice_dns_query *onext, *oprev;
    void *tag;
};

struct dns_entry {
    dns_resolver *r; /* the c-ares callback gets only the entry */
    char *key;       /* "TYPE/name", lower case, no trailing dot */
    int type;
    unsigned hash;
    dns_entry *hnext;               /* hash chain */
    dns_entry *lru_prev, *lru_next; /* cached entries only */
    int inflight;
    sluice_dns_query *waiters;
    dns_result *res; /* cached result */
    double expires;
};

typedef struct dns_watch {
    ev_io io;
    dns_resolver *r;
    ares_socket_t fd;
    struct dns_watch *next;
} dns_watch;

struct dns_resolver {
    struct ev_loop *loop;
    ares_channel channel;
    int destroying;
    ev_timer ares_timer;
    ev_timer ready_timer;
    dns_watch *watches;
    sluice_dns_query *ready_head, *ready_tail;
    dns_entry **buckets;
    size_t nbuckets;
    dns_entry *lru_head, *lru_tail; /* head: most recently used */
    size_t ncached, max_cached;
    size_t cached_bytes, max_bytes;
    size_t nwaiting;  /* queries waiting on the wire */
    size_t ninflight; /* c-ares queries outstanding */
    dns_stats st;
};

static int dns_lib_refs;

/* ---------------------------------------------------------------- */
/* Names and keys                                                    */

int dns_name_valid(const char *name)
{
    size_t len = strlen(name), label = 0, i;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return 0;
        if (++label > 63)
            return 0;
    }
    return 1;
}

static char *dns_key(const char *name, int type)
{
    char *k = util_printf("%d/%s", type, name);
    size_t n = strlen(k);

    if (n > 0 && k[n - 1] == '.')
        k[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        k[i] = (char)tolower((unsigned char)k[i]);
    return k;
}

static unsigned dns_hash(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* ---------------------------------------------------------------- */
/* Results                                                           */

static dns_result *dns_result_new(sluice_dns_status st, int type)
{
    dns_result *res = util_calloc(1, sizeof(*res));

    res->refs = 1;
    res->status = st;
    res->type = type;
    res->records = util_calloc(1, sizeof(char *));
    res->bytes = sizeof(*res) + 64;
    return res;
}

static void dns_result_add(dns_result *res, const char *rec, unsigned ttl)
{
    size_t n = strlen(rec) + 1 + sizeof(char *);

    if (res->count >= DNS_MAX_RECORDS || res->bytes + n > DNS_MAX_ANSWER)
        return;
    res->bytes += n;
    res->records =
        util_realloc(res->records, (res->count + 2) * sizeof(char *));
    res->records[res->count++] = util_strdup(rec);
    res->records[res->count] = NULL;
    if (res->count == 1 || ttl < res->ttl)
        res->ttl = ttl;
}

static void dns_result_unref(dns_result *res)
{
    if (res == NULL || --res->refs > 0)
        return;
    for (size_t i = 0; i < res->count; i++)
        free(res->records[i]);
    free(res->records);
    free(res);
}

/* ---------------------------------------------------------------- */
/* The answer parser                                                 */

static unsigned dns_u16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned dns_u32(const unsigned char *p)
{
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 |
           p[3];
}

/* Step over a (possibly compressed) name at *off. */
static int dns_skip_name(const unsigned char *m, size_t len, size_t *off)
{
    size_t o = *off;
    int i;

    for (i = 0; i < 128; i++) {
        unsigned c;
        if (o >= len)
            return -1;
        c = m[o];
        if (c == 0) {
            *off = o + 1;
            return 0;
        }
        if ((c & 0xC0) == 0xC0) {
            if (o + 2 > len)
                return -1;
            *off = o + 2;
            return 0;
        }
        if (c & 0xC0)
            return -1;
        o += 1 + c;
    }
    return -1;
}

/* A name inside rdata, in presentation form; NULL if malformed. */
static char *dns_expand(const unsigned char *at, const unsigned char *m,
                        size_t len)
{
    char *s = NULL, *out;
    long enclen;

    if (len > 65535 ||
        ares_expand_name(at, m, (int)len, &s, &enclen) != ARES_SUCCESS)
        return NULL;
    out = util_strdup(s);
    ares_free_string(s);
    return out;
}

/* One record's presentation form; NULL to skip it. */
static char *dns_rdata_str(int type, const unsigned char *m, size_t len,
                           size_t rd, size_t rdlen)
{
    char tmp[INET6_ADDRSTRLEN];
    const unsigned char *p = m + rd;

    switch (type) {
    case SLUICE_DNS_A:
        if (rdlen != 4 || inet_ntop(AF_INET, p, tmp, sizeof(tmp)) == NULL)
            return NULL;
        return util_strdup(tmp);
    case SLUICE_DNS_AAAA:
        if (rdlen != 16 || inet_ntop(AF_INET6, p, tmp, sizeof(tmp)) == NULL)
            return NULL;
        return util_strdup(tmp);
    case SLUICE_DNS_TXT: {
        buf b;
        size_t o = 0;
        buf_init(&b);
        while (o < rdlen) {
            size_t n = p[o++];
            if (n > rdlen - o)
                break;
            for (size_t i = 0; i < n && b.len < DNS_MAX_RDATA; i++) {
                unsigned char c = p[o + i];
                buf_addc(&b, (c >= 32 && c < 127) ? (char)c : '?');
            }
            o += n;
        }
        return b.data ? b.data : util_strdup("");
    }
    case SLUICE_DNS_MX: {
        char *n, *s;
        if (rdlen < 3 || (n = dns_expand(p + 2, m, len)) == NULL)
            return NULL;
        s = util_printf("%u %s", dns_u16(p), n);
        free(n);
        return s;
    }
    case SLUICE_DNS_PTR:
    case SLUICE_DNS_NS:
    case SLUICE_DNS_CNAME:
        if (rdlen < 1)
            return NULL;
        return dns_expand(p, m, len);
    default:
        return NULL;
    }
}

/*
 * Parse an answer for `type`: records of that type (CNAMEs on the way are
 * followed by the server, we only keep the asked type), or the negative
 * TTL from the authority section's SOA.
 */
static dns_result *dns_parse(const unsigned char *m, size_t len, int type,
                             sluice_dns_status st)
{
    dns_result *res = dns_result_new(st, type);
    unsigned qd, an, ns, i;
    size_t off = 12;
    unsigned neg = DNS_NEG_TTL;

    if (len < 12)
        goto bad;
    qd = dns_u16(m + 4);
    an = dns_u16(m + 6);
    ns = dns_u16(m + 8);
    for (i = 0; i < qd; i++) {
        if (dns_skip_name(m, len, &off) < 0 || off + 4 > len)
            goto bad;
        off += 4;
    }
    for (i = 0; i < an + ns; i++) {
        unsigned rtype, rclass, ttl, rdlen;
        if (dns_skip_name(m, len, &off) < 0 || off + 10 > len)
            goto bad;
        rtype = dns_u16(m + off);
        rclass = dns_u16(m + off + 2);
        ttl = dns_u32(m + off + 4);
        if (ttl > 0x7fffffffu)
            ttl = 0;
        rdlen = dns_u16(m + off + 8);
        off += 10;
        if (rdlen > len - off)
            goto bad;
        if (i < an && st == SLUICE_DNS_OK && rclass == 1 &&
            (int)rtype == type) {
            char *s = dns_rdata_str(type, m, len, off, rdlen);
            if (s) {
                dns_result_add(res, s, ttl);
                free(s);
            }
        } else if (i >= an && rtype == 6 && rclass == 1) {
            /* SOA: mname, rname, serial, refresh, retry, expire, minimum */
            size_t so = off;
            if (dns_skip_name(m, off + rdlen, &so) == 0 &&
                dns_skip_name(m, off + rdlen, &so) == 0 &&
                so + 20 <= off + rdlen) {
                unsigned min = dns_u32(m + so + 16);
                neg = min < ttl ? min : ttl;
            }
        }
        off += rdlen;
    }
    if (res->status == SLUICE_DNS_OK && res->count == 0)
        res->status = SLUICE_DNS_NODATA; /* only CNAMEs, say */
    if (res->status != SLUICE_DNS_OK)
        res->ttl = neg < DNS_MAX_NEG_TTL ? neg : DNS_MAX_NEG_TTL;
    else if (res->ttl > DNS_MAX_TTL)
        res->ttl = DNS_MAX_TTL;
    return res;
bad:
    dns_result_unref(res);
    res = dns_result_new(SLUICE_DNS_SERVFAIL, type); /* garbled answer */
    return res;
}

sluice_dns_status dns_parse_answer(const unsigned char *msg, size_t len,
                                   int type, size_t *count, unsigned *ttl)
{
    sluice_dns_status st = SLUICE_DNS_OK;
    dns_result *res;

    if (len >= 4 && (msg[3] & 0x0f) == 3)
        st = SLUICE_DNS_NXDOMAIN;
    res = dns_parse(msg, len, type, st);
    st = res->status;
    *count = res->count;
    *ttl = res->ttl;
    for (size_t i = 0; i < res->count; i++)
        if (res->records[i] == NULL ||
            strlen(res->records[i]) > DNS_MAX_RDATA + 300)
            abort(); /* an invariant for the fuzzer */
    dns_result_unref(res);
    return st;
}

/* ---------------------------------------------------------------- */
/* Owner lists and the ready queue                                   */

static void dns_owner_unlink(sluice_dns_query *q)
{
    if (q->owner == NULL)
        return;
    if (q->oprev)
        q->oprev->onext = q->onext;
    else
        *q->owner = q->onext;
    if (q->onext)
        q->onext->oprev = q->oprev;
    q->owner = NULL;
    q->onext = q->oprev = NULL;
}

static void dns_list_remove(sluice_dns_query **head, sluice_dns_query **tail,
                            sluice_dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        *head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else if (tail)
        *tail = q->prev;
    q->next = q->prev = NULL;
}

static void dns_ready_push(dns_resolver *r, sluice_dns_query *q,
                           dns_result *res, int cached, unsigned ttl)
{
    res->refs++;
    q->res = res;
    q->cached = cached;
    q->ttl = ttl;
    q->e = NULL;
    q->next = NULL;
    q->prev = r->ready_tail;
    if (r->ready_tail)
        r->ready_tail->next = q;
    else
        r->ready_head = q;
    r->ready_tail = q;
    if (!ev_is_active(&r->ready_timer)) {
        ev_timer_set(&r->ready_timer, 0., 0.);
        ev_timer_start(r->loop, &r->ready_timer);
    }
}

static void dns_query_release(sluice_dns_query *q)
{
    dns_owner_unlink(q);
    dns_result_unref(q->res);
    free(q);
}

static void dns_ready_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    dns_resolver *r = t->data;
    sluice_dns_query *q;

    /* Pop one at a time: a callback may cancel or start other queries. */
    while ((q = r->ready_head) != NULL) {
        sluice_dns_answer a;
        dns_list_remove(&r->ready_head, &r->ready_tail, q);
        dns_owner_unlink(q);
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.status = q->res->status;
        a.type = q->res->type;
        a.ttl = q->ttl;
        a.count = q->res->count;
        a.records = (const char *const *)q->res->records;
        a.cached = q->cached;
        q->cb(q, &a, q->arg);
        dns_result_unref(q->res);
        free(q);
    }
}

/* ---------------------------------------------------------------- */
/* The table and the cache                                           */

static dns_entry *dns_entry_find(dns_resolver *r, const char *key, unsigned h)
{
    dns_entry *e;

    for (e = r->buckets[h & (r->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void dns_lru_unlink(dns_resolver *r, dns_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        r->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        r->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
    r->ncached--;
    r->cached_bytes -= e->res->bytes;
}

static void dns_lru_push(dns_resolver *r, dns_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = r->lru_head;
    if (r->lru_head)
        r->lru_head->lru_prev = e;
    else
        r->lru_tail = e;
    r->lru_head = e;
    r->ncached++;
    r->cached_bytes += e->res->bytes;
}

static void dns_entry_free(dns_resolver *r, dns_entry *e)
{
    dns_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    if (e->res) {
        dns_lru_unlink(r, e);
        dns_result_unref(e->res);
    }
    free(e->key);
    free(e);
}

/* Cache a finished lookup, or drop the entry. */
static void dns_entry_settle(dns_resolver *r, dns_entry *e, dns_result *res)
{
    int cacheable =
        r->max_cached > 0 && res->ttl > 0 &&
        (res->status == SLUICE_DNS_OK || res->status == SLUICE_DNS_NXDOMAIN ||
         res->status == SLUICE_DNS_NODATA);

    e->inflight = 0;
    if (!cacheable) {
        dns_entry_free(r, e);
        return;
    }
    if (res->bytes > r->max_bytes / 16 && res->bytes > 4096) {
        dns_entry_free(r, e); /* one answer may not crowd out the rest */
        return;
    }
    while ((r->ncached >= r->max_cached ||
            r->cached_bytes + res->bytes > r->max_bytes) &&
           r->lru_tail)
        dns_entry_free(r, r->lru_tail);
    res->refs++;
    e->res = res;
    e->expires = ev_now(r->loop) + res->ttl;
    dns_lru_push(r, e);
}

/* ---------------------------------------------------------------- */
/* c-ares on libev                                                   */

static void dns_timer_update(dns_resolver *r)
{
    struct timeval tv, *tvp;

    if (r->destroying)
        return;
    tvp = ares_timeout(r->channel, NULL, &tv);
    ev_timer_stop(r->loop, &r->ares_timer);
    if (tvp == NULL)
        return;
    ev_timer_set(&r->ares_timer,
                 (double)tvp->tv_sec + (double)tvp->tv_usec / 1e6, 0.);
    ev_timer_start(r->loop, &r->ares_timer);
}

static void dns_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    dns_watch *dw = (dns_watch *)w;
    dns_resolver *r = dw->r;
    ares_socket_t fd = dw->fd;

    /* dw may be freed by sock_state_cb inside ares_process_fd */
    ares_process_fd(r->channel, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_timer_update(r);
}

static void dns_ares_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    dns_resolver *r = t->data;

    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_timer_update(r);
}

static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable,
                              int writable)
{
    dns_resolver *r = data;
    dns_watch **pp, *dw;
    int ev = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

    for (pp = &r->watches; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
        ;
    dw = *pp;
    if (ev == 0) {
        if (dw) {
            ev_io_stop(r->loop, &dw->io);
            *pp = dw->next;
            free(dw);
        }
        return;
    }
    if (dw == NULL) {
        dw = util_calloc(1, sizeof(*dw));
        dw->r = r;
        dw->fd = fd;
        ev_io_init(&dw->io, dns_io_cb, fd, ev);
        dw->next = r->watches;
        r->watches = dw;
    } else {
        ev_io_stop(r->loop, &dw->io);
        ev_io_set(&dw->io, fd, ev);
    }
    ev_io_start(r->loop, &dw->io);
}

static sluice_dns_status dns_status_map(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return SLUICE_DNS_OK;
    case ARES_ENODATA:
        return SLUICE_DNS_NODATA;
    case ARES_ENOTFOUND:
        return SLUICE_DNS_NXDOMAIN;
    case ARES_ETIMEOUT:
        return SLUICE_DNS_TIMEOUT;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
    case ARES_EFORMERR:
    case ARES_ECONNREFUSED:
    case ARES_EBADRESP:
        return SLUICE_DNS_SERVFAIL;
    default:
        return SLUICE_DNS_ERROR;
    }
}

static void dns_ares_cb(void *arg, int status, int timeouts,
                        unsigned char *abuf, int alen)
{
    dns_entry *e = arg;
    dns_resolver *r;
    dns_result *res;
    sluice_dns_query *q;
    sluice_dns_status st = dns_status_map(status);

    r = e->r;
    if (r->destroying) {
        e->inflight = 0;
        return; /* dns_free() frees the entry */
    }
    if (status == ARES_ECANCELLED && e->waiters == NULL) {
        /* nobody waited: see dns_query_cancel() */
        r->ninflight--;
        dns_entry_free(r, e);
        return;
    }
    if (abuf != NULL && alen > 0 &&
        (st == SLUICE_DNS_OK || st == SLUICE_DNS_NXDOMAIN ||
         st == SLUICE_DNS_NODATA))
        res = dns_parse(abuf, (size_t)alen, e->type, st);
    else
        res = dns_result_new(st, e->type);
    r->ninflight--;
    while ((q = e->waiters) != NULL) {
        dns_list_remove(&e->waiters, NULL, q);
        r->nwaiting--;
        dns_ready_push(r, q, res, 0, res->ttl);
    }
    dns_entry_settle(r, e, res);
    dns_result_unref(res);
}

/* ---------------------------------------------------------------- */
/* Public interface                                                  */

int dns_servers_check(char *const *servers, buf *err)
{
    unsigned char a[16];

    for (size_t i = 0; servers && servers[i]; i++) {
        const char *s = servers[i];
        util_endpoint ep;
        int ok;
        if (util_parse_endpoint(s, &ep) == 0 && !ep.is_unix)
            ok = inet_pton(AF_INET, ep.host, a) == 1 ||
                 inet_pton(AF_INET6, ep.host, a) == 1;
        else
            ok =
                inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
        if (!ok) {
            buf_printf(err,
                       "dns_servers: '%s' is not an IP address with an "
                       "optional port (192.0.2.1, 192.0.2.1:5353, "
                       "[2001:db8::1]:53)",
                       s);
            return -1;
        }
    }
    return 0;
}

/* "ip:port,[v6]:port" for ares_set_servers_ports_csv(). */
static char *dns_servers_csv(char *const *servers)
{
    buf b;

    buf_init(&b);
    for (size_t i = 0; servers[i]; i++) {
        util_endpoint ep;
        const char *s = servers[i];
        if (i)
            buf_addc(&b, ',');
        if (util_parse_endpoint(s, &ep) == 0 && !ep.is_unix) {
            if (strchr(ep.host, ':'))
                buf_printf(&b, "[%s]:%s", ep.host, ep.port);
            else
                buf_printf(&b, "%s:%s", ep.host, ep.port);
        } else if (strchr(s, ':')) {
            buf_printf(&b, "[%s]:53", s);
        } else {
            buf_printf(&b, "%s:53", s);
        }
    }
    return b.data ? b.data : util_strdup("");
}

dns_resolver *dns_new(struct ev_loop *loop, const dns_conf *conf, buf *err)
{
    dns_resolver *r;
    struct ares_options o;
    int rc, mask;
    size_t nb = 64;

    if (dns_lib_refs++ == 0 &&
        (rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
        dns_lib_refs--;
        buf_printf(err, "c-ares: %s", ares_strerror(rc));
        return NULL;
    }
    r = util_calloc(1, sizeof(*r));
    r->loop = loop;
    r->max_cached = conf->cache_size;
    r->max_bytes = conf->cache_size * DNS_CACHE_BYTES_PER_ENTRY;
    while (nb < conf->cache_size && nb < (1u << 20))
        nb <<= 1;
    r->nbuckets = nb;
    r->buckets = util_calloc(nb, sizeof(*r->buckets));
    ev_timer_init(&r->ares_timer, dns_ares_timer_cb, 0., 0.);
    r->ares_timer.data = r;
    ev_timer_init(&r->ready_timer, dns_ready_cb, 0., 0.);
    r->ready_timer.data = r;

    memset(&o, 0, sizeof(o));
    o.sock_state_cb = dns_sock_state_cb;
    o.sock_state_cb_data = r;
    o.timeout = (int)(conf->timeout * 1000.0 + 0.5);
    if (o.timeout < 1)
        o.timeout = 1;
    o.tries = conf->tries > 0 ? conf->tries : 1;
    mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if ((rc = ares_init_options(&r->channel, &o, mask)) != ARES_SUCCESS) {
        buf_printf(err, "c-ares init: %s", ares_strerror(rc));
        r->channel = NULL;
        dns_free(r);
        return NULL;
    }
    if (conf->servers && conf->servers[0]) {
        char *csv = dns_servers_csv(conf->servers);
        rc = ares_set_servers_ports_csv(r->channel, csv);
        if (rc != ARES_SUCCESS) {
            buf_printf(err, "dns_servers '%s': %s", csv, ares_strerror(rc));
            free(csv);
            dns_free(r);
            return NULL;
        }
        free(csv);
    }
    return r;
}

void dns_free(dns_resolver *r)
{
    sluice_dns_query *q;
    size_t i;

    if (r == NULL)
        return;
    r->destroying = 1;
    ev_timer_stop(r->loop, &r->ares_timer);
    ev_timer_stop(r->loop, &r->ready_timer);
    while ((q = r->ready_head) != NULL) {
        dns_list_remove(&r->ready_head, &r->ready_tail, q);
        dns_query_release(q);
    }
    for (i = 0; i < r->nbuckets; i++) {
        dns_entry *e;
        for (e = r->buckets[i]; e; e = e->hnext) {
            while ((q = e->waiters) != NULL) {
                dns_list_remove(&e->waiters, NULL, q);
                dns_query_release(q);
            }
        }
    }
    if (r->channel)
        ares_destroy(r->channel); /* callbacks see r->destroying */
    while (r->watches) {
        dns_watch *dw = r->watches;
        r->watches = dw->next;
        ev_io_stop(r->loop, &dw->io);
        free(dw);
    }
    for (i = 0; i < r->nbuckets; i++)
        while (r->buckets[i])
            dns_entry_free(r, r->buckets[i]);
    free(r->buckets);
    free(r);
    if (--dns_lib_refs == 0)
        ares_library_cleanup();
}

static void dns_owner_link(sluice_dns_query *q, sluice_dns_query **owner)
{
    if (owner == NULL)
        return;
    q->owner = owner;
    q->oprev = NULL;
    q->onext = *owner;
    if (*owner)
        (*owner)->oprev = q;
    *owner = q;
}

sluice_dns_query *dns_query_start(dns_resolver *r, const char *name, int type,
                                  sluice_dns_cb cb, void *arg,
                                  sluice_dns_query **owner, void *tag)
{
    sluice_dns_query *q;
    dns_entry *e;
    char *key;
    unsigned h;

    if (r == NULL || r->destroying || cb == NULL || name == NULL ||
        !dns_name_valid(name) || type <= 0 || type > 65535)
        return NULL;
    q = util_calloc(1, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->tag = tag;
    dns_owner_link(q, owner);
    r->st.queries++;

    key = dns_key(name, type);
    h = dns_hash(key);
    e = dns_entry_find(r, key, h);
    if (e && !e->inflight && e->expires <= ev_now(r->loop)) {
        dns_entry_free(r, e); /* expired */
        e = NULL;
    }
    if (e && !e->inflight) {
        double left = e->expires - ev_now(r->loop);
        dns_lru_unlink(r, e);
        dns_lru_push(r, e);
        r->st.cache_hits++;
        dns_ready_push(r, q, e->res, 1, left < 1 ? 1u : (unsigned)left);
        free(key);
        return q;
    }
    if (e) { /* the same lookup is on the wire: wait for it */
        r->nwaiting++;
        q->e = e;
        q->next = e->waiters;
        if (e->waiters)
            e->waiters->prev = q;
        e->waiters = q;
        free(key);
        return q;
    }
    e = util_calloc(1, sizeof(*e));
    e->r = r;
    e->key = key;
    e->hash = h;
    e->type = type;
    e->inflight = 1;
    e->hnext = r->buckets[h & (r->nbuckets - 1)];
    r->buckets[h & (r->nbuckets - 1)] = e;
    q->e = e;
    e->waiters = q;
    r->nwaiting++;
    r->ninflight++;
    r->st.wire_queries++;
    /* may call back at once (bad name, no servers): the callback only
     * queues, so this call never runs a stage's callback */
    ares_query(r->channel, name, 1 /* IN */, type, dns_ares_cb, e);
    dns_timer_update(r);
    return q;
}

void dns_query_cancel(sluice_dns_query *q)
{
    dns_resolver *r;

    if (q == NULL)
        return;
    r = q->r;
    if (q->res) { /* ready, not delivered yet */
        dns_list_remove(&r->ready_head, &r->ready_tail, q);
    } else if (q->e) {
        dns_list_remove(&q->e->waiters, NULL, q);
        r->nwaiting--;
    }
    dns_query_release(q);
    /* Nobody in this worker waits for an answer any more: drop what is
     * still on the wire, so its sockets and timer do not hold the loop
     * (a stopping worker would wait for them) for nothing. */
    if (r->nwaiting == 0 && r->ninflight > 0 && !r->destroying) {
        ares_cancel(r->channel);
        dns_timer_update(r);
    }
}

void dns_cancel_owner(sluice_dns_query **owner, void *tag)
{
    sluice_dns_query *q, *next;

    for (q = *owner; q; q = next) {
        next = q->onext;
        if (tag == NULL || q->tag == tag)
            dns_query_cancel(q);
    }
}

void dns_get_stats(dns_resolver *r, dns_stats *st)
{
    *st = r->st;
    st->cached_entries = r->ncached;
    st->inflight = r->ninflight;
}
