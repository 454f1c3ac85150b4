/* test_dnsbl.c - the dns stage's pure parts (plugins/dns): the Public
 * Suffix List matcher (the list's own test cases on a small list, and the
 * Debian file), zone lines and return codes, trusted networks, DNSBL
 * names for IPv4/IPv6, hashed labels, and the URL, Received and address
 * scanners on hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsbl_util.h"
#include "psl.h"

#define PSL_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

static const char *reg(const psl *p, const char *d)
{
    static char out[256];
    return psl_registered(p, d, out, sizeof(out)) == 0 ? out : NULL;
}

static void test_psl_rules(void **state)
{
    psl *p = psl_from_text("// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\n"
                           "jp\n*.kawasaki.jp\n!city.kawasaki.jp\n"
                           "blogspot.com  // private\n");
    (void)state;
    assert_non_null(p);
    assert_null(reg(p, "com"));
    assert_string_equal(reg(p, "example.com"), "example.com");
    assert_string_equal(reg(p, "a.b.Example.COM."), "example.com");
    assert_null(reg(p, "co.uk"));
    assert_string_equal(reg(p, "www.example.co.uk"), "example.co.uk");
    assert_null(reg(p, "foo.ck"));
    assert_string_equal(reg(p, "bar.foo.ck"), "bar.foo.ck");
    assert_string_equal(reg(p, "www.ck"), "www.ck");
    assert_string_equal(reg(p, "a.www.ck"), "www.ck");
    assert_string_equal(reg(p, "city.kawasaki.jp"), "city.kawasaki.jp");
    assert_string_equal(reg(p, "x.y.kawasaki.jp"), "x.y.kawasaki.jp");
    assert_string_equal(reg(p, "me.blogspot.com"), "me.blogspot.com");
    /* unknown TLD: the default rule "*" */
    assert_string_equal(reg(p, "a.b.example.test"), "example.test");
    assert_null(reg(p, "test"));
    assert_null(reg(p, "a..com"));
    assert_null(reg(p, ".com"));
    assert_null(reg(p, "exa mple.com"));
    assert_null(reg(p, ""));
    psl_free(p);
}

static void test_psl_file(void **state)
{
    char err[256];
    psl *p = psl_load(PSL_FILE, err, sizeof(err));

    (void)state;
    assert_non_null(p);
    assert_true(psl_rule_count(p) > 5000);
    assert_string_equal(reg(p, "mail.example.co.uk"), "example.co.uk");
    assert_string_equal(reg(p, "x.example.com.au"), "example.com.au");
    assert_null(reg(p, "github.io"));
    assert_string_equal(reg(p, "evil.github.io"), "evil.github.io");
    psl_free(p);
    assert_null(psl_load("/nonexistent/psl.dat", err, sizeof(err)));
    assert_non_null(strstr(err, "publicsuffix"));
}

static void test_zone_parse(void **state)
{
    char *ok[] = {"test_bl",  "dnsbl",
                  "Bl.Test.", "127.0.0.2|127.0.0.4-127.0.0.6|mask:0x80",
                  "rbl_test", "2.5",
                  NULL};
    char *sxl[] = {"H", "sxl-file:sha256", "hash.test", "any", "HASH_HIT", "-1",
                   NULL};
    char *bad_kind[] = {"X", "dnsbl:sha1", "bl.test", "any", "S", "1", NULL};
    char *bad_code[] = {"X", "dnsbl", "bl.test", "127.0.0.2,3", "S", "1", NULL};
    char *bad_w[] = {"X", "dnsbl", "bl.test", "any", "S", "lots", NULL};
    char *short_[] = {"X", "dnsbl", "bl.test", NULL};
    dnsbl_zone z;
    char why[256];

    (void)state;
    assert_int_equal(
        dnsbl_zone_parse(ok, DNSBL_HASH_SHA1, &z, why, sizeof(why)), 0);
    assert_string_equal(z.name, "TEST_BL");
    assert_string_equal(z.suffix, "bl.test");
    assert_string_equal(z.symbol, "RBL_TEST");
    assert_int_equal(z.kind, DNSBL_IP);
    assert_int_equal(z.ncodes, 3);
    assert_true(z.weight == 2.5);
    assert_int_equal(dnsbl_code_match(&z, "127.0.0.2"), 1);
    assert_int_equal(dnsbl_code_match(&z, "127.0.0.3"), 0);
    assert_int_equal(dnsbl_code_match(&z, "127.0.0.5"), 1);
    assert_int_equal(dnsbl_code_match(&z, "127.0.0.128"), 1); /* mask */
    assert_int_equal(dnsbl_code_match(&z, "127.0.1.128"), 0);
    assert_int_equal(dnsbl_code_match(&z, "127.255.255.254"), -1);
    assert_int_equal(dnsbl_code_match(&z, "192.0.2.1"), -1);
    assert_int_equal(dnsbl_code_match(&z, "junk"), -1);
    assert_int_equal(
        dnsbl_zone_parse(sxl, DNSBL_HASH_SHA1, &z, why, sizeof(why)), 0);
    assert_int_equal(z.kind, DNSBL_SXL_FILE);
    assert_int_equal(z.hash, DNSBL_HASH_SHA256);
    assert_int_equal(z.any, 1);
    assert_int_equal(dnsbl_code_match(&z, "127.0.0.9"), 1);
    assert_int_equal(dnsbl_zone_parse(bad_kind, 0, &z, why, sizeof(why)), -1);
    assert_int_equal(dnsbl_zone_parse(bad_code, 0, &z, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "return codes"));
    assert_int_equal(dnsbl_zone_parse(bad_w, 0, &z, why, sizeof(why)), -1);
    assert_int_equal(dnsbl_zone_parse(short_, 0, &z, why, sizeof(why)), -1);
}

static void test_nets(void **state)
{
    dnsbl_net n[3];
    unsigned char b[16];
    int fam;

    (void)state;
    assert_int_equal(dnsbl_net_parse("10.0.0.0/8", &n[0]), 0);
    assert_int_equal(dnsbl_net_parse("172.16.0.0/12", &n[1]), 0);
    assert_int_equal(dnsbl_net_parse("fc00::/7", &n[2]), 0);
    assert_int_equal(dnsbl_net_parse("10.0.0.0/33", &n[0]), -1);
    assert_int_equal(dnsbl_net_parse("bogus/8", &n[0]), -1);
    dnsbl_net_parse("10.0.0.0/8", &n[0]);
    dnsbl_addr_parse("10.9.8.7", &fam, b);
    assert_true(dnsbl_net_match(n, 3, fam, b));
    dnsbl_addr_parse("172.31.255.1", &fam, b);
    assert_true(dnsbl_net_match(n, 3, fam, b));
    dnsbl_addr_parse("172.32.0.1", &fam, b);
    assert_false(dnsbl_net_match(n, 3, fam, b));
    dnsbl_addr_parse("fd12::1", &fam, b);
    assert_true(dnsbl_net_match(n, 3, fam, b));
    dnsbl_addr_parse("::ffff:10.1.1.1", &fam, b); /* mapped: IPv4 */
    assert_int_equal(fam, 4);
    assert_true(dnsbl_net_match(n, 3, fam, b));
}

static void test_qnames(void **state)
{
    char out[512];

    (void)state;
    assert_int_equal(dnsbl_ip_qname("192.0.2.99", "bl.test", out, sizeof(out)),
                     0);
    assert_string_equal(out, "99.2.0.192.bl.test");
    assert_int_equal(dnsbl_ip_qname("2001:db8::1", "bl.test", out, sizeof(out)),
                     0);
    assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                             "8.b.d.0.1.0.0.2.bl.test");
    assert_int_equal(dnsbl_ip_qname("not-an-ip", "bl.test", out, sizeof(out)),
                     -1);
    assert_int_equal(dnsbl_ip_qname("192.0.2.99", "bl.test", out, 10), -1);
    assert_int_equal(
        dnsbl_hash_qname(DNSBL_HASH_MD5, "abc", 3, "h.test", out, sizeof(out)),
        0);
    assert_string_equal(out, "900150983cd24fb0d6963f7d28e17f72.h.test");
    assert_int_equal(
        dnsbl_hash_qname(DNSBL_HASH_SHA1, "abc", 3, "h.test", out, sizeof(out)),
        0);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d.h.test");
    assert_int_equal(dnsbl_hash_qname(DNSBL_HASH_SHA256, "abc", 3, "h.test",
                                      out, sizeof(out)),
                     0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223."
                             "b00361a396177a9cb410ff61f20015ad.h.test");
}

typedef struct seen {
    int n;
    char url[8][256];
    char host[8][256];
} seen;

static int seen_cb(const char *url, const char *host, void *arg)
{
    seen *s = arg;
    if (s->n < 8) {
        snprintf(s->url[s->n], 256, "%s", url);
        snprintf(s->host[s->n], 256, "%s", host);
    }
    s->n++;
    return 0;
}

static void test_urls(void **state)
{
    const char *t = "Click HTTP://User:pw@Evil.Example.COM:8080/x?y=1. or "
                    "<a href=\"https://www.shop.example.org/buy\">here</a>, "
                    "www.plain.example.net) and http://[::1]/v6 and "
                    "http://b\xc3\xa4"
                    "d.example/ and mailto:x@www.nope.example "
                    "http://192.0.2.5/ip http://";
    seen s;
    char big[5000];

    (void)state;
    memset(&s, 0, sizeof(s));
    dnsbl_scan_urls(t, strlen(t), seen_cb, &s);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.url[0], "http://evil.example.com/x?y=1");
    assert_string_equal(s.host[0], "evil.example.com");
    assert_string_equal(s.url[1], "https://www.shop.example.org/buy");
    assert_string_equal(s.host[2], "www.plain.example.net");
    /* an address is reported as a host: the stage tells them apart */
    assert_string_equal(s.host[3], "192.0.2.5");
    /* a long run of junk with no URL and a truncated one */
    memset(big, 'h', sizeof(big));
    memcpy(big + sizeof(big) - 8, "http://a", 8);
    memset(&s, 0, sizeof(s));
    dnsbl_scan_urls(big, sizeof(big), seen_cb, &s);
    assert_int_equal(s.n, 0);
}

static void test_received(void **state)
{
    char ips[4][48];

    (void)state;
    assert_int_equal(dnsbl_received_ips("from mx.example.org (mx.example.org "
                                        "[192.0.2.7]) by mail.test (Postfix) "
                                        "with ESMTP id X [10.1.1.1]",
                                        ips, 4),
                     1);
    assert_string_equal(ips[0], "192.0.2.7");
    assert_int_equal(dnsbl_received_ips("from a ([IPv6:2001:DB8::5] [bogus] "
                                        "[198.51.100.1] [198.51.100.1])\tby b",
                                        ips, 4),
                     2);
    assert_string_equal(ips[0], "2001:db8::5");
    assert_string_equal(ips[1], "198.51.100.1");
    assert_int_equal(
        dnsbl_received_ips("by only.example with [192.0.2.1]", ips, 4), 0);
    assert_int_equal(dnsbl_received_ips("from x [1.2.3.4", ips, 4), 0);
}

static void test_addr_domain(void **state)
{
    char d[256];

    (void)state;
    assert_int_equal(
        dnsbl_addr_domain("\"Bob\" <bob@Mail.Example.ORG>", d, sizeof(d)), 0);
    assert_string_equal(d, "mail.example.org");
    assert_int_equal(dnsbl_addr_domain("a@b@example.net", d, sizeof(d)), 0);
    assert_string_equal(d, "example.net");
    assert_int_equal(dnsbl_addr_domain("user@[192.0.2.1]", d, sizeof(d)), -1);
    assert_int_equal(dnsbl_addr_domain("nobody", d, sizeof(d)), -1);
    assert_int_equal(dnsbl_addr_domain("", d, sizeof(d)), -1);
    assert_int_equal(dnsbl_addr_domain("x@localhost", d, sizeof(d)), -1);
    assert_int_equal(dnsbl_addr_domain("x@bad_\x01"
                                       ".example",
                                       d, sizeof(d)),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psl_rules),  cmocka_unit_test(test_psl_file),
        cmocka_unit_test(test_zone_parse), cmocka_unit_test(test_nets),
        cmocka_unit_test(test_qnames),     cmocka_unit_test(test_urls),
        cmocka_unit_test(test_received),   cmocka_unit_test(test_addr_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
