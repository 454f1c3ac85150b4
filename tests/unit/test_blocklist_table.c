/*
 * test_blocklist_table.c - unit tests of sluice-blocklistd's table
 * (tools/blocklistd/bl_table.c): loading, CIDR edge cases (/0, /32,
 * /128, the ends of the address space), overlaps within and across
 * lists, IPv4-mapped IPv6 both as entries and as lookups, malformed lines
 * with file:line errors, list names, and a randomised cross-check of the
 * flattened ranges against a naive scan of the entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_table.h"

static bl_table *load(const char *text)
{
    bl_table *t = bl_table_new();
    char err[256] = "";

    assert_non_null(t);
    if (bl_table_load_buf(t, "test.list", "test", text, strlen(text), err,
                          sizeof(err)) < 0)
        fail_msg("load: %s", err);
    if (bl_table_build(t, err, sizeof(err)) < 0)
        fail_msg("build: %s", err);
    return t;
}

/* The lists holding addr, comma-joined, or "-". */
static const char *lists(const bl_table *t, const char *addr)
{
    static char out[512];
    bl_addr a;
    uint64_t m;
    unsigned i;
    size_t o = 0;

    if (bl_addr_parse(addr, strlen(addr), &a) < 0)
        return "BAD";
    m = bl_table_lookup(t, &a);
    if (m == 0)
        return "-";
    out[0] = '\0';
    for (i = 0; i < BL_MAX_LISTS; i++)
        if (m & (1ull << i))
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s",
                                  o ? "," : "", bl_table_list_name(t, i));
    return out;
}

static void expect_error(const char *text, const char *want)
{
    bl_table *t = bl_table_new();
    char err[256] = "";

    assert_int_equal(bl_table_load_buf(t, "bad.list", "bad", text, strlen(text),
                                       err, sizeof(err)),
                     -1);
    if (strstr(err, want) == NULL)
        fail_msg("'%s': error '%s' lacks '%s'", text, err, want);
    bl_table_free(t);
}

static void test_basic(void **state)
{
    bl_table *t = load("# comment\n"
                       "\n"
                       "192.0.2.0/24\n"
                       "  198.51.100.7   other   # one host\n"
                       "2001:db8::/32 v6\n");
    bl_table_stats st;

    assert_string_equal(lists(t, "192.0.2.0"), "test");
    assert_string_equal(lists(t, "192.0.2.255"), "test");
    assert_string_equal(lists(t, "192.0.1.255"), "-");
    assert_string_equal(lists(t, "192.0.3.0"), "-");
    assert_string_equal(lists(t, "198.51.100.7"), "other");
    assert_string_equal(lists(t, "198.51.100.6"), "-");
    assert_string_equal(lists(t, "198.51.100.8"), "-");
    assert_string_equal(lists(t, "2001:db8::1"), "v6");
    assert_string_equal(lists(t, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
                        "v6");
    assert_string_equal(lists(t, "2001:db9::"), "-");
    assert_string_equal(lists(t, "2001:db7:ffff::"), "-");
    bl_table_stats_get(t, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.lists, 3);
    bl_table_free(t);
}

static void test_edges_v4(void **state)
{
    bl_table *t = load("0.0.0.0/0 all\n"
                       "255.255.255.255/32 top\n"
                       "0.0.0.0/32 zero\n"
                       "10.0.0.0/31 pair\n");

    assert_string_equal(lists(t, "0.0.0.0"), "all,zero");
    assert_string_equal(lists(t, "0.0.0.1"), "all");
    assert_string_equal(lists(t, "255.255.255.255"), "all,top");
    assert_string_equal(lists(t, "255.255.255.254"), "all");
    assert_string_equal(lists(t, "10.0.0.1"), "all,pair");
    assert_string_equal(lists(t, "10.0.0.2"), "all");
    assert_string_equal(lists(t, "2001:db8::1"), "-"); /* v4 only */
    bl_table_free(t);
}

static void test_edges_v6(void **state)
{
    bl_table *t = load("::/0 all6\n"
                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128 top\n"
                       "::/128 zero\n"
                       "2001:db8::1 host\n"
                       "2001:db8:0:0:8000::/65 half\n");

    assert_string_equal(lists(t, "::"), "all6,zero");
    assert_string_equal(lists(t, "::2"), "all6");
    assert_string_equal(lists(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                        "all6,top");
    assert_string_equal(lists(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
                        "all6");
    assert_string_equal(lists(t, "2001:db8::1"), "all6,host");
    assert_string_equal(lists(t, "2001:db8::2"), "all6");
    assert_string_equal(lists(t, "2001:db8::8000:0:0:0"), "all6,half");
    assert_string_equal(lists(t, "2001:db8::7fff:ffff:ffff:ffff"), "all6");
    /* ::/0 covers ::ffff:0:0/96, so every IPv4 address too */
    assert_string_equal(lists(t, "192.0.2.1"), "all6");
    bl_table_free(t);
}

static void test_overlaps(void **state)
{
    bl_table *t = load("10.0.0.0/8 a\n"
                       "10.1.0.0/16 a\n" /* inside, same list */
                       "10.1.2.0/24 b\n" /* inside, other list */
                       "10.0.0.0/8 a\n"  /* duplicate */
                       "10.255.255.0/24 c\n"
                       "11.0.0.0/8 a\n"); /* adjacent, same list */

    assert_string_equal(lists(t, "9.255.255.255"), "-");
    assert_string_equal(lists(t, "10.0.0.0"), "a");
    assert_string_equal(lists(t, "10.1.2.3"), "a,b");
    assert_string_equal(lists(t, "10.1.3.0"), "a");
    assert_string_equal(lists(t, "10.1.1.255"), "a");
    assert_string_equal(lists(t, "10.255.255.255"), "a,c");
    assert_string_equal(lists(t, "11.0.0.0"), "a");
    assert_string_equal(lists(t, "11.255.255.255"), "a");
    assert_string_equal(lists(t, "12.0.0.0"), "-");
    bl_table_free(t);
}

static void test_mapped(void **state)
{
    bl_table *t = load("::ffff:192.0.2.0/120 m\n"
                       "::ffff:198.51.100.7 m1\n"
                       "203.0.113.0/24 plain\n"
                       "::ffff:0:0/96 allmapped\n");

    /* mapped entries answer IPv4 lookups, in both spellings */
    assert_string_equal(lists(t, "192.0.2.77"), "m,allmapped");
    assert_string_equal(lists(t, "::ffff:192.0.2.77"), "m,allmapped");
    assert_string_equal(lists(t, "198.51.100.7"), "m1,allmapped");
    /* a plain IPv4 entry answers a mapped lookup */
    assert_string_equal(lists(t, "::ffff:203.0.113.9"), "plain,allmapped");
    assert_string_equal(lists(t, "::ffff:cb00:7109"), "plain,allmapped");
    assert_string_equal(lists(t, "1.2.3.4"), "allmapped");
    assert_string_equal(lists(t, "2001:db8::1"), "-");
    bl_table_free(t);
}

static void test_malformed(void **state)
{
    expect_error("192.0.2.0/24\nnot-an-ip\n", "bad.list:2: bad address");
    expect_error("192.0.2.0/33\n", "bad.list:1: bad prefix length");
    expect_error("2001:db8::/129\n", "bad.list:1: bad prefix length");
    expect_error("192.0.2.0/\n", "bad.list:1: bad prefix length");
    expect_error("192.0.2.0/024\n", "bad.list:1: bad prefix length");
    expect_error("192.0.2.0/2x\n", "bad.list:1: bad prefix length");
    expect_error("\n\n192.0.2.1/24\n", "bad.list:3: host bits set");
    expect_error("2001:db8::1/32\n", "bad.list:1: host bits set");
    expect_error("192.0.2.0/24 a b\n", "bad.list:1: unexpected 'b'");
    expect_error("192.0.2.0/24 bad!name\n", "bad.list:1: bad list name");
    expect_error("192.0.2.0/24 "
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 33 chars */
                 "bad.list:1: bad list name");
    expect_error("1.2.3.4.5\n", "bad.list:1: bad address");
    expect_error("/24\n", "bad.list:1: bad address");
    expect_error("01.2.3.4\n", "bad.list:1: bad address");
}

static void test_nul_line(void **state)
{
    bl_table *t = bl_table_new();
    char err[256] = "";
    static const char text[] = "192.0.2.0/24\n10.0.0.0/8 x\0y\n";

    assert_int_equal(bl_table_load_buf(t, "nul.list", "n", text,
                                       sizeof(text) - 1, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "nul.list:2: NUL byte"));
    bl_table_free(t);
}

static void test_too_many_lists(void **state)
{
    bl_table *t = bl_table_new();
    char err[256] = "", name[16];
    int i;

    for (i = 0; i < BL_MAX_LISTS; i++) {
        snprintf(name, sizeof(name), "l%d", i);
        assert_int_equal(bl_table_add(t, "192.0.2.1", name, err, sizeof(err)),
                         0);
    }
    assert_int_equal(bl_table_add(t, "192.0.2.1", "one-more", err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "too many lists"));
    assert_int_equal(bl_table_build(t, err, sizeof(err)), 0);
    {
        bl_addr a;
        assert_int_equal(bl_addr_parse("192.0.2.1", 9, &a), 0);
        assert_true(bl_table_lookup(t, &a) == ~0ull);
    }
    bl_table_free(t);
}

static void test_file(void **state)
{
    char path[] = "/tmp/test_blocklist_XXXXXX";
    char named[300], err[256] = "";
    int fd = mkstemp(path);
    FILE *fp;
    bl_table *t;

    assert_true(fd >= 0);
    close(fd);
    snprintf(named, sizeof(named), "%s.drop-v4.list", path);
    assert_int_equal(rename(path, named), 0);
    fp = fopen(named, "w");
    assert_non_null(fp);
    fputs("192.0.2.0/24\r\n203.0.113.0/24 other\n# end", fp);
    fclose(fp);
    t = bl_table_new();
    assert_int_equal(bl_table_load_file(t, named, err, sizeof(err)), 0);
    assert_int_equal(bl_table_build(t, err, sizeof(err)), 0);
    /* the default list is the base name without the extension, with the
     * characters a list name may not have left out */
    assert_non_null(strstr(lists(t, "192.0.2.1"), "drop-v4"));
    assert_string_equal(lists(t, "203.0.113.1"), "other");
    bl_table_free(t);
    /* a bad line names the file and the line */
    fp = fopen(named, "a");
    fputs("\nbogus\n", fp);
    fclose(fp);
    t = bl_table_new();
    assert_int_equal(bl_table_load_file(t, named, err, sizeof(err)), -1);
    assert_non_null(strstr(err, named));
    assert_non_null(strstr(err, ":4: bad address 'bogus'"));
    bl_table_free(t);
    unlink(named);
    t = bl_table_new();
    assert_int_equal(bl_table_load_file(t, named, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
    bl_table_free(t);
}

static void test_addr_parse(void **state)
{
    bl_addr a;

    assert_int_equal(bl_addr_parse("192.0.2.1", 9, &a), 0);
    assert_int_equal(a.v6, 0);
    assert_true(a.a4 == 0xc0000201u);
    assert_int_equal(bl_addr_parse("::ffff:192.0.2.1", 16, &a), 0);
    assert_int_equal(a.v6, 0);
    assert_true(a.a4 == 0xc0000201u);
    assert_int_equal(bl_addr_parse("2001:db8::1", 11, &a), 0);
    assert_int_equal(a.v6, 1);
    assert_true(a.hi == 0x20010db800000000ull && a.lo == 1);
    assert_int_equal(bl_addr_parse("", 0, &a), -1);
    assert_int_equal(bl_addr_parse("192.0.2.1/32", 12, &a), -1);
    assert_int_equal(bl_addr_parse("fe80::1%eth0", 12, &a), -1);
    assert_int_equal(bl_addr_parse("256.0.0.1", 9, &a), -1);
    /* length, not NUL, bounds the input */
    assert_int_equal(bl_addr_parse("192.0.2.12345", 9, &a), 0);
}

/* Random entries in a small space, checked against a naive scan. */
static void test_random_crosscheck(void **state)
{
    enum { N = 400 };
    struct {
        uint32_t lo, hi;
        unsigned l;
    } e[N];
    bl_table *t = bl_table_new();
    char err[256], cidr[64], name[8];
    unsigned seed = 12345, i, k;

    for (i = 0; i < N; i++) {
        unsigned plen = 20 + (unsigned)(rand_r(&seed) % 13); /* /20../32 */
        uint32_t a = 0x0a000000u | ((uint32_t)rand_r(&seed) & 0xfffffu);
        uint32_t host = plen == 32 ? 0 : (1u << (32 - plen)) - 1;
        a &= ~host;
        e[i].lo = a;
        e[i].hi = a | host;
        e[i].l = (unsigned)(rand_r(&seed) % 5);
        snprintf(cidr, sizeof(cidr), "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255,
                 (a >> 8) & 255, a & 255, plen);
        snprintf(name, sizeof(name), "L%u", e[i].l);
        assert_int_equal(bl_table_add(t, cidr, name, err, sizeof(err)), 0);
    }
    assert_int_equal(bl_table_build(t, err, sizeof(err)), 0);
    for (k = 0; k < 20000; k++) {
        bl_addr a;
        uint64_t want = 0, got;
        memset(&a, 0, sizeof(a));
        a.a4 = 0x0a000000u | ((uint32_t)rand_r(&seed) & 0xfffffu);
        if (k % 7 == 0)
            a.a4 = e[k % N].hi + (k % 2); /* range ends and just after */
        for (i = 0; i < N; i++)
            if (a.a4 >= e[i].lo && a.a4 <= e[i].hi) {
                char nm[8];
                unsigned j;
                snprintf(nm, sizeof(nm), "L%u", e[i].l);
                for (j = 0; j < BL_MAX_LISTS; j++)
                    if (bl_table_list_name(t, j) &&
                        strcmp(bl_table_list_name(t, j), nm) == 0)
                        want |= 1ull << j;
            }
        got = bl_table_lookup(t, &a);
        if (got != want)
            fail_msg("address %08x: got %llx want %llx", a.a4,
                     (unsigned long long)got, (unsigned long long)want);
    }
    bl_table_free(t);
}

static void test_empty(void **state)
{
    bl_table *t = load("# nothing\n");
    assert_string_equal(lists(t, "192.0.2.1"), "-");
    assert_string_equal(lists(t, "2001:db8::1"), "-");
    bl_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_edges_v4),
        cmocka_unit_test(test_edges_v6),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nul_line),
        cmocka_unit_test(test_too_many_lists),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_random_crosscheck),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
