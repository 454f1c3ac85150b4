/* test_dns.c - the worker resolver (engine/dns.c) on a real libev loop
 * against a tiny fake DNS server on the same loop (UDP, 127.0.0.1, a port
 * of its own): every record type's presentation form, the cache (hits,
 * TTL, negative answers, LRU bound), sharing of in-flight lookups,
 * SERVFAIL, timeouts, garbled answers, cancellation (also by owner and
 * tag), callbacks never from inside dns_query_start(), dns_free() with
 * queries outstanding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "engine.h"
#include "testutil.h"

/* ---------------------------------------------------------------- */
/* The fake server                                                   */

static struct {
    int fd;
    int port;
    ev_io io;
    int hits; /* queries received */
} srv;

static size_t put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

static size_t put32(unsigned char *p, unsigned v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
    return 4;
}

/* A domain name in wire form. */
static size_t put_name(unsigned char *p, const char *name)
{
    size_t n = 0;
    const char *s = name;

    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        p[n++] = (unsigned char)l;
        memcpy(p + n, s, l);
        n += l;
        s += l;
        if (*s == '.')
            s++;
    }
    p[n++] = 0;
    return n;
}

/* RR header for the question name (pointer to offset 12). */
static size_t put_rr(unsigned char *p, unsigned type, unsigned ttl,
                     const unsigned char *rd, size_t rdlen)
{
    size_t n = 0;

    n += put16(p + n, 0xC00C);
    n += put16(p + n, type);
    n += put16(p + n, 1);
    n += put32(p + n, ttl);
    n += put16(p + n, (unsigned)rdlen);
    memcpy(p + n, rd, rdlen);
    return n + rdlen;
}

static size_t put_soa(unsigned char *p, unsigned ttl, unsigned minimum)
{
    unsigned char rd[128];
    size_t r = 0;

    r += put_name(rd + r, "ns.test");
    r += put_name(rd + r, "hostmaster.test");
    r += put32(rd + r, 1);
    r += put32(rd + r, 3600);
    r += put32(rd + r, 600);
    r += put32(rd + r, 86400);
    r += put32(rd + r, minimum);
    return put_rr(p, 6, ttl, rd, r);
}

static void srv_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    unsigned char q[512], a[1024], rd[256];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n =
        recvfrom(srv.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    char name[256];
    size_t o = 12, nl = 0, qend, len, r;
    unsigned an = 0, ns = 0, rcode = 0, qtype;

    if (n < 17)
        return;
    srv.hits++;
    /* question name as text */
    while (o < (size_t)n && q[o] != 0 && nl < sizeof(name) - 64) {
        size_t l = q[o++];
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + o, l);
        nl += l;
        o += l;
    }
    name[nl] = '\0';
    qend = o + 1 + 4;
    qtype = (unsigned)q[o + 1] << 8 | q[o + 2];
    memcpy(a, q, qend);
    len = qend;

    if (strcmp(name, "drop.test") == 0)
        return;
    if (strcmp(name, "a.test") == 0 || strcmp(name, "b.test") == 0 ||
        strcmp(name, "c.test") == 0) {
        unsigned char ip[4] = {127, 0, 0, 2};
        len += put_rr(a + len, 1, 300, ip, 4);
        ip[3] = 4;
        len += put_rr(a + len, 1, 100, ip, 4);
        an = 2;
    } else if (strcmp(name, "short.test") == 0) {
        unsigned char ip[4] = {127, 0, 0, 3};
        len += put_rr(a + len, 1, 1, ip, 4);
        an = 1;
    } else if (strcmp(name, "aaaa.test") == 0) {
        unsigned char ip6[16];
        inet_pton(AF_INET6, "2001:db8::1", ip6);
        len += put_rr(a + len, 28, 300, ip6, 16);
        an = 1;
    } else if (strcmp(name, "txt.test") == 0) {
        r = 0;
        rd[r++] = 7;
        memcpy(rd + r, "v=spf1 ", 7);
        r += 7;
        rd[r++] = 5;
        memcpy(rd + r, "-all\x01", 5);
        r += 5;
        len += put_rr(a + len, 16, 300, rd, r);
        an = 1;
    } else if (strcmp(name, "mx.test") == 0) {
        r = put16(rd, 10);
        r += put_name(rd + r, "mail.test");
        len += put_rr(a + len, 15, 300, rd, r);
        an = 1;
    } else if (strcmp(name, "ptr.test") == 0 || strcmp(name, "ns.test") == 0 ||
               strcmp(name, "cname.test") == 0) {
        r = put_name(rd, "target.example");
        len += put_rr(a + len, qtype, 300, rd, r);
        an = 1;
    } else if (strcmp(name, "nodata.test") == 0) {
        len += put_soa(a + len, 600, 45);
        ns = 1;
    } else if (strcmp(name, "fail.test") == 0) {
        rcode = 2;
    } else if (strcmp(name, "garbled.test") == 0) {
        an = 3; /* claims three records, carries none */
    } else {
        rcode = 3; /* NXDOMAIN, SOA minimum 30 under a TTL of 600 */
        len += put_soa(a + len, 600, 30);
        ns = 1;
    }
    a[2] = 0x81; /* QR, RD */
    a[3] = (unsigned char)(0x80 | rcode);
    put16(a + 6, an);
    put16(a + 8, ns);
    put16(a + 10, 0);
    sendto(srv.fd, a, len, 0, (struct sockaddr *)&from, fl);
}

static void srv_start(struct ev_loop *loop)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    srv.fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(srv.fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(srv.fd, (struct sockaddr *)&sin, &sl);
    srv.port = ntohs(sin.sin_port);
    srv.hits = 0;
    ev_io_init(&srv.io, srv_cb, srv.fd, EV_READ);
    ev_io_start(loop, &srv.io);
}

static void srv_stop(struct ev_loop *loop)
{
    ev_io_stop(loop, &srv.io);
    close(srv.fd);
}

/* ---------------------------------------------------------------- */
/* Harness                                                           */

typedef struct got {
    int calls;
    int in_start; /* set while dns_query_start() runs */
    sluice_dns_status status;
    unsigned ttl;
    int cached;
    size_t count;
    char rec[4][128];
} got;

static int starting;

static void got_cb(sluice_dns_query *q, const sluice_dns_answer *a, void *arg)
{
    got *g = arg;

    g->calls++;
    g->in_start |= starting;
    g->status = a->status;
    g->ttl = a->ttl;
    g->cached = a->cached;
    g->count = a->count;
    for (size_t i = 0; i < a->count && i < 4; i++)
        snprintf(g->rec[i], sizeof(g->rec[i]), "%s", a->records[i]);
}

typedef struct fx {
    struct ev_loop *loop;
    dns_resolver *r;
} fx;

static dns_resolver *fx_resolver(struct ev_loop *loop, double timeout,
                                 size_t cache)
{
    char server[64], *servers[2];
    dns_conf dc;
    buf err;
    dns_resolver *r;

    snprintf(server, sizeof(server), "127.0.0.1:%d", srv.port);
    servers[0] = server;
    servers[1] = NULL;
    memset(&dc, 0, sizeof(dc));
    dc.servers = servers;
    dc.timeout = timeout;
    dc.tries = 1;
    dc.cache_size = cache;
    buf_init(&err);
    r = dns_new(loop, &dc, &err);
    if (r == NULL)
        fprintf(stderr, "dns_new: %s\n", err.data);
    buf_free(&err);
    assert_non_null(r);
    return r;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));

    f->loop = ev_loop_new(EVFLAG_AUTO);
    srv_start(f->loop);
    f->r = fx_resolver(f->loop, 0.3, 100);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    dns_free(f->r);
    srv_stop(f->loop);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

static void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    *(int *)t->data = 1;
}

/* Run the loop until *calls reaches want, or `secs` pass. */
static void run_until(struct ev_loop *loop, int *calls, int want, double secs)
{
    ev_timer guard;
    int expired = 0;

    ev_timer_init(&guard, guard_cb, secs, 0.);
    guard.data = &expired;
    ev_timer_start(loop, &guard);
    while (*calls < want && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &guard);
}

static sluice_dns_query *start(fx *f, const char *name, int type, got *g,
                               sluice_dns_query **owner, void *tag)
{
    sluice_dns_query *q;

    starting = 1;
    q = dns_query_start(f->r, name, type, got_cb, g, owner, tag);
    starting = 0;
    return q;
}

/* ---------------------------------------------------------------- */
/* Tests                                                             */

static void test_types(void **state)
{
    fx *f = *state;
    static const struct {
        const char *name;
        int type;
        const char *want;
    } cases[] = {
        {"a.test", SLUICE_DNS_A, "127.0.0.2"},
        {"aaaa.test", SLUICE_DNS_AAAA, "2001:db8::1"},
        {"txt.test", SLUICE_DNS_TXT, "v=spf1 -all?"},
        {"mx.test", SLUICE_DNS_MX, "10 mail.test"},
        {"ptr.test", SLUICE_DNS_PTR, "target.example"},
        {"ns.test", SLUICE_DNS_NS, "target.example"},
        {"cname.test", SLUICE_DNS_CNAME, "target.example"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got g;
        memset(&g, 0, sizeof(g));
        assert_non_null(start(f, cases[i].name, cases[i].type, &g, NULL, NULL));
        assert_int_equal(g.calls, 0);
        run_until(f->loop, &g.calls, 1, 2.0);
        assert_int_equal(g.calls, 1);
        assert_int_equal(g.in_start, 0);
        assert_int_equal(g.status, SLUICE_DNS_OK);
        assert_string_equal(g.rec[0], cases[i].want);
    }
}

static void test_a_two_records_min_ttl(void **state)
{
    fx *f = *state;
    got g;

    memset(&g, 0, sizeof(g));
    start(f, "a.test", SLUICE_DNS_A, &g, NULL, NULL);
    run_until(f->loop, &g.calls, 1, 2.0);
    assert_int_equal(g.count, 2);
    assert_string_equal(g.rec[1], "127.0.0.4");
    assert_int_equal(g.ttl, 100);
    assert_int_equal(g.cached, 0);
}

static void test_cache_hit(void **state)
{
    fx *f = *state;
    got g1, g2;
    dns_stats st;

    memset(&g1, 0, sizeof(g1));
    memset(&g2, 0, sizeof(g2));
    start(f, "a.test", SLUICE_DNS_A, &g1, NULL, NULL);
    run_until(f->loop, &g1.calls, 1, 2.0);
    assert_int_equal(srv.hits, 1);
    /* the same name in another case, with a trailing dot: the cache */
    assert_non_null(start(f, "A.Test.", SLUICE_DNS_A, &g2, NULL, NULL));
    assert_int_equal(g2.calls, 0); /* even a cached answer comes later */
    run_until(f->loop, &g2.calls, 1, 2.0);
    assert_int_equal(g2.calls, 1);
    assert_int_equal(g2.in_start, 0);
    assert_int_equal(g2.cached, 1);
    assert_int_equal(g2.count, 2);
    assert_true(g2.ttl <= 100 && g2.ttl >= 99);
    assert_int_equal(srv.hits, 1);
    dns_get_stats(f->r, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.wire_queries, 1);
}

static void test_shared_inflight(void **state)
{
    fx *f = *state;
    got g[3];

    memset(g, 0, sizeof(g));
    for (int i = 0; i < 3; i++)
        start(f, "b.test", SLUICE_DNS_A, &g[i], NULL, NULL);
    run_until(f->loop, &g[2].calls, 1, 2.0);
    run_until(f->loop, &g[0].calls, 1, 0.2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, SLUICE_DNS_OK);
    }
    assert_int_equal(srv.hits, 1);
}

static void test_negative_cached(void **state)
{
    fx *f = *state;
    got g, g2, g3;

    memset(&g, 0, sizeof(g));
    memset(&g2, 0, sizeof(g2));
    memset(&g3, 0, sizeof(g3));
    start(f, "2.0.0.127.nx.test", SLUICE_DNS_A, &g, NULL, NULL);
    run_until(f->loop, &g.calls, 1, 2.0);
    assert_int_equal(g.status, SLUICE_DNS_NXDOMAIN);
    assert_int_equal(g.ttl, 30); /* min(SOA TTL, SOA minimum) */
    start(f, "2.0.0.127.nx.test", SLUICE_DNS_A, &g2, NULL, NULL);
    run_until(f->loop, &g2.calls, 1, 2.0);
    assert_int_equal(g2.status, SLUICE_DNS_NXDOMAIN);
    assert_int_equal(g2.cached, 1);
    assert_int_equal(srv.hits, 1);
    start(f, "nodata.test", SLUICE_DNS_A, &g3, NULL, NULL);
    run_until(f->loop, &g3.calls, 1, 2.0);
    assert_int_equal(g3.status, SLUICE_DNS_NODATA);
    assert_int_equal(g3.ttl, 45);
}

static void test_servfail_not_cached(void **state)
{
    fx *f = *state;
    got g, g2, gb;

    memset(&g, 0, sizeof(g));
    memset(&g2, 0, sizeof(g2));
    memset(&gb, 0, sizeof(gb));
    start(f, "fail.test", SLUICE_DNS_A, &g, NULL, NULL);
    run_until(f->loop, &g.calls, 1, 2.0);
    assert_int_equal(g.status, SLUICE_DNS_SERVFAIL);
    start(f, "fail.test", SLUICE_DNS_A, &g2, NULL, NULL);
    run_until(f->loop, &g2.calls, 1, 2.0);
    assert_int_equal(g2.status, SLUICE_DNS_SERVFAIL);
    assert_int_equal(g2.cached, 0);
    assert_int_equal(srv.hits, 2);
    start(f, "garbled.test", SLUICE_DNS_A, &gb, NULL, NULL);
    run_until(f->loop, &gb.calls, 1, 2.0);
    assert_int_equal(gb.calls, 1);
    assert_true(gb.status == SLUICE_DNS_SERVFAIL);
}

static void test_timeout(void **state)
{
    fx *f = *state;
    got g;
    double t0 = ev_time();

    memset(&g, 0, sizeof(g));
    start(f, "drop.test", SLUICE_DNS_A, &g, NULL, NULL);
    run_until(f->loop, &g.calls, 1, 3.0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, SLUICE_DNS_TIMEOUT);
    assert_true(ev_time() - t0 < 1.5);
}

static void test_cancel(void **state)
{
    fx *f = *state;
    got g1, g2, g3;
    sluice_dns_query *q1, *q2;

    memset(&g1, 0, sizeof(g1));
    memset(&g2, 0, sizeof(g2));
    memset(&g3, 0, sizeof(g3));
    q1 = start(f, "c.test", SLUICE_DNS_A, &g1, NULL, NULL);
    q2 = start(f, "c.test", SLUICE_DNS_A, &g2, NULL, NULL);
    dns_query_cancel(q1);
    run_until(f->loop, &g2.calls, 1, 2.0);
    assert_int_equal(g1.calls, 0);
    assert_int_equal(g2.calls, 1);
    (void)q2;
    /* cancelled while its (cached) answer waits in the ready queue */
    q1 = start(f, "c.test", SLUICE_DNS_A, &g1, NULL, NULL);
    start(f, "c.test", SLUICE_DNS_A, &g3, NULL, NULL);
    dns_query_cancel(q1);
    run_until(f->loop, &g3.calls, 1, 2.0);
    assert_int_equal(g1.calls, 0);
    assert_int_equal(g3.calls, 1);
}

/* The only waiter gives up: the lookup leaves the wire, nothing holds
 * the loop. */
static void test_cancel_last_drops_wire(void **state)
{
    fx *f = *state;
    got g;
    dns_stats st;
    sluice_dns_query *q;

    memset(&g, 0, sizeof(g));
    q = start(f, "drop.test", SLUICE_DNS_A, &g, NULL, NULL);
    {
        int none = 0;
        run_until(f->loop, &none, 1, 0.05);
    }
    dns_get_stats(f->r, &st);
    assert_int_equal(st.inflight, 1);
    dns_query_cancel(q);
    dns_get_stats(f->r, &st);
    assert_int_equal(st.inflight, 0);
    {
        int none = 0;
        run_until(f->loop, &none, 1, 0.5);
    }
    assert_int_equal(g.calls, 0);
}

static void test_cancel_owner(void **state)
{
    fx *f = *state;
    sluice_dns_query *owner = NULL;
    int tag_a, tag_b;
    got ga, gb, gc, gd;

    memset(&ga, 0, sizeof(ga));
    memset(&gb, 0, sizeof(gb));
    memset(&gc, 0, sizeof(gc));
    memset(&gd, 0, sizeof(gd));
    start(f, "aaaa.test", SLUICE_DNS_AAAA, &ga, &owner, &tag_a);
    start(f, "mx.test", SLUICE_DNS_MX, &gb, &owner, &tag_b);
    start(f, "txt.test", SLUICE_DNS_TXT, &gc, &owner, &tag_a);
    start(f, "ptr.test", SLUICE_DNS_PTR, &gd, &owner, &tag_b);
    dns_cancel_owner(&owner, &tag_a); /* a stage's pending hook ended */
    run_until(f->loop, &gd.calls, 1, 2.0);
    run_until(f->loop, &gb.calls, 1, 1.0);
    assert_int_equal(ga.calls + gc.calls, 0);
    assert_int_equal(gb.calls + gd.calls, 2);
    assert_null(owner); /* answered queries leave the owner's list */
    start(f, "ns.test", SLUICE_DNS_NS, &ga, &owner, &tag_a);
    start(f, "cname.test", SLUICE_DNS_CNAME, &gb, &owner, &tag_b);
    assert_non_null(owner);
    dns_cancel_owner(&owner, NULL); /* the message ended */
    assert_null(owner);
    {
        int none = 0;
        run_until(f->loop, &none, 1, 0.3);
    }
    assert_int_equal(ga.calls, 0);
    assert_int_equal(gb.calls, 1);
}

static void test_lru_bound(void **state)
{
    fx *f = *state;
    dns_resolver *small;
    got g[4];
    dns_stats st;
    const char *names[] = {"a.test", "b.test", "c.test", "a.test"};

    memset(g, 0, sizeof(g));
    dns_free(f->r);
    small = f->r = fx_resolver(f->loop, 0.3, 2);
    for (int i = 0; i < 4; i++) {
        start(f, names[i], SLUICE_DNS_A, &g[i], NULL, NULL);
        run_until(f->loop, &g[i].calls, 1, 2.0);
        assert_int_equal(g[i].calls, 1);
    }
    /* a.test was evicted by c.test: asked on the wire again */
    assert_int_equal(g[3].cached, 0);
    assert_int_equal(srv.hits, 4);
    dns_get_stats(small, &st);
    assert_int_equal(st.cached_entries, 2);
}

static void test_ttl_expiry(void **state)
{
    fx *f = *state;
    got g1, g2;

    memset(&g1, 0, sizeof(g1));
    memset(&g2, 0, sizeof(g2));
    start(f, "short.test", SLUICE_DNS_A, &g1, NULL, NULL);
    run_until(f->loop, &g1.calls, 1, 2.0);
    assert_int_equal(g1.ttl, 1);
    usleep(1100 * 1000);
    ev_now_update(f->loop);
    start(f, "short.test", SLUICE_DNS_A, &g2, NULL, NULL);
    run_until(f->loop, &g2.calls, 1, 2.0);
    assert_int_equal(g2.cached, 0);
    assert_int_equal(srv.hits, 2);
}

static void test_bad_names(void **state)
{
    fx *f = *state;
    got g;
    char longlabel[80], longname[300];

    memset(&g, 0, sizeof(g));
    memset(longlabel, 'a', 64);
    longlabel[64] = '\0';
    memset(longname, 0, sizeof(longname));
    for (int i = 0; i < 26; i++)
        strcat(longname, "abcdefghi.");
    assert_null(start(f, "", SLUICE_DNS_A, &g, NULL, NULL));
    assert_null(start(f, "a..b", SLUICE_DNS_A, &g, NULL, NULL));
    assert_null(start(f, "sp ace.test", SLUICE_DNS_A, &g, NULL, NULL));
    assert_null(start(f, "nul\x01.test", SLUICE_DNS_A, &g, NULL, NULL));
    assert_null(start(f, longlabel, SLUICE_DNS_A, &g, NULL, NULL));
    assert_null(start(f, longname, SLUICE_DNS_A, &g, NULL, NULL));
    assert_true(dns_name_valid("_dmarc.example.org."));
    assert_true(dns_name_valid("2.0.0.127.zen.example"));
    assert_int_equal(g.calls, 0);
}

static void test_servers_check(void **state)
{
    buf err;
    char *ok[] = {"192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53",
                  "2001:db8::2", NULL};
    char *bad[] = {"192.0.2.1", "dns.example:53", NULL};

    (void)state;
    buf_init(&err);
    assert_int_equal(dns_servers_check(ok, &err), 0);
    assert_int_equal(dns_servers_check(bad, &err), -1);
    assert_non_null(strstr(err.data, "dns.example:53"));
    assert_int_equal(dns_servers_check(NULL, &err), 0);
    buf_free(&err);
}

/* Freed with queries in flight and answers ready: no callback. */
static void test_free_outstanding(void **state)
{
    fx *f = *state;
    sluice_dns_query *owner = NULL;
    got g1, g2, g3;

    memset(&g1, 0, sizeof(g1));
    memset(&g2, 0, sizeof(g2));
    memset(&g3, 0, sizeof(g3));
    start(f, "a.test", SLUICE_DNS_A, &g1, NULL, NULL);
    run_until(f->loop, &g1.calls, 1, 2.0);
    start(f, "drop.test", SLUICE_DNS_A, &g2, &owner, NULL);
    start(f, "a.test", SLUICE_DNS_A, &g3, &owner, NULL); /* ready */
    dns_free(f->r);
    assert_null(owner); /* the owner's list is left empty, not dangling */
    f->r = fx_resolver(f->loop, 0.3, 100);
    {
        int none = 0;
        run_until(f->loop, &none, 1, 0.5);
    }
    assert_int_equal(g2.calls + g3.calls, 0);
}

/* The engine's side: host->dns_query() with a txn joins the txn's list,
 * txn_free() cancels what is left; no resolver, no query. */
static void test_txn_free_cancels(void **state)
{
    fx *f = *state;
    char *dir = tu_mkdir();
    buf err;
    chain *ch;
    worker w;
    stats_worker slot;
    sluice_txn *t;
    got g1, g2, g3;
    int none = 0;

    tu_write(dir, "00-engine.conf", TU_ENGINE);
    buf_init(&err);
    ch = chain_load(dir, NULL, "/tmp", NULL, NULL, NULL, 1, &err);
    buf_free(&err);
    assert_non_null(ch);
    memset(&w, 0, sizeof(w));
    memset(&slot, 0, sizeof(slot));
    memset(&g1, 0, sizeof(g1));
    memset(&g2, 0, sizeof(g2));
    memset(&g3, 0, sizeof(g3));
    w.loop = f->loop;
    w.ch = ch;
    w.stats = &slot;
    t = txn_new(&w, NULL);
    assert_null(host_table.dns_query(NULL, t, "a.test", SLUICE_DNS_A, got_cb,
                                     &g1)); /* no resolver */
    w.dns = f->r;
    assert_non_null(host_table.dns_query(NULL, t, "a.test", SLUICE_DNS_A,
                                         got_cb, &g1));
    assert_non_null(host_table.dns_query(NULL, t, "drop.test", SLUICE_DNS_A,
                                         got_cb, &g2));
    assert_non_null(t->dns_queries);
    txn_free(t);
    run_until(f->loop, &none, 1, 0.3);
    assert_int_equal(g1.calls + g2.calls, 0);
    /* another message's query, cancelled by the stage itself */
    t = txn_new(&w, NULL);
    host_table.dns_cancel(
        host_table.dns_query(NULL, t, "b.test", SLUICE_DNS_A, got_cb, &g3));
    assert_null(t->dns_queries);
    txn_free(t);
    run_until(f->loop, &none, 1, 0.2);
    assert_int_equal(g3.calls, 0);
    chain_free(ch);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_two_records_min_ttl, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cache_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servfail_not_cached, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_last_drops_wire, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lru_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test(test_servers_check),
        cmocka_unit_test_setup_teardown(test_free_outstanding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_free_cancels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
