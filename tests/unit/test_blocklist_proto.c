/*
 * test_blocklist_proto.c - unit tests of the blocklist protocol, both
 * sides: sluice-blocklistd's line splitter, request parser and answer
 * formatting (tools/blocklistd/bl_proto.c), and the stage's answer parser
 * (plugins/blocklist/bls_reply.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl_proto.h"
#include "bl_table.h"
#include "bls_reply.h"

static void parse(const char *line, bl_req *r)
{
    bl_proto_parse(line, strlen(line), r);
}

/* The answer line (without "\n") for one request line. */
static const char *answer(const bl_table *t, const char *line)
{
    static char out[BL_PROTO_ANSWER_MAX];
    bl_req r;
    size_t n;
    uint64_t mask = 0;

    parse(line, &r);
    if (r.type == BL_REQ_QUERY && t != NULL)
        mask = bl_table_lookup(t, &r.addr);
    n = bl_proto_answer(t, &r, mask, out, sizeof(out));
    assert_true(n > 0 && out[n - 1] == '\n');
    out[n - 1] = '\0';
    return out;
}

static void test_parse_ok(void **state)
{
    bl_req r;

    parse("Q 1 192.0.2.1", &r);
    assert_int_equal(r.type, BL_REQ_QUERY);
    assert_string_equal(r.id, "1");
    assert_int_equal(r.addr.v6, 0);
    parse("Q a.b_c:d-9 2001:db8::1", &r);
    assert_int_equal(r.type, BL_REQ_QUERY);
    assert_string_equal(r.id, "a.b_c:d-9");
    assert_int_equal(r.addr.v6, 1);
    parse("Q 7 ::ffff:192.0.2.1", &r);
    assert_int_equal(r.type, BL_REQ_QUERY);
    assert_int_equal(r.addr.v6, 0);
    parse("PING", &r);
    assert_int_equal(r.type, BL_REQ_PING);
    parse("PING x1", &r);
    assert_int_equal(r.type, BL_REQ_PING);
    assert_string_equal(r.id, "x1");
    parse("STATS", &r);
    assert_int_equal(r.type, BL_REQ_STATS);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *line, *id, *why;
    } cases[] = {
        {"", "", "empty request"},
        {"Q", "", "usage: Q <id> <ip>"},
        {"Q 1", "1", "usage: Q <id> <ip>"},
        {"Q 1 192.0.2.1 x", "1", "extra arguments"},
        {"Q 1 bogus", "1", "bad address"},
        {"Q 1 192.0.2.1/32", "1", "bad address"},
        {"Q 1 192.0.2.256", "1", "bad address"},
        {"Q bad/id 192.0.2.1", "", "bad id"},
        {"Q 123456789012345678901234567890123 1.2.3.4", "", "bad id"},
        {"Q  1 1.2.3.4", "", "bad spacing"},
        {"Q 1 1.2.3.4 ", "", "bad spacing"},
        {" Q 1 1.2.3.4", "", "bad spacing"},
        {"Q\t1\t1.2.3.4", "", "control character in request"},
        {"q 1 1.2.3.4", "1", "unknown command"},
        {"QUERY 1 1.2.3.4", "1", "unknown command"},
        {"PING a b", "a", "extra arguments"},
        {"PING !", "", "bad id"},
        {"STATS now", "now", "extra arguments"},
        {"\x7f", "", "control character in request"},
    };
    size_t i;
    bl_req r;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse(cases[i].line, &r);
        if (r.type != BL_REQ_ERROR || strcmp(r.error, cases[i].why) != 0 ||
            strcmp(r.id, cases[i].id) != 0)
            fail_msg("'%s': type %d error '%s' id '%s'", cases[i].line, r.type,
                     r.error ? r.error : "", r.id);
    }
    /* a NUL byte inside the line */
    bl_proto_parse("Q 1 1.2.3.4\0x", 13, &r);
    assert_int_equal(r.type, BL_REQ_ERROR);
    /* a line at the limit */
    {
        char big[BL_PROTO_LINE_MAX + 1];
        memset(big, 'A', sizeof(big));
        bl_proto_parse(big, sizeof(big), &r);
        assert_int_equal(r.type, BL_REQ_ERROR);
        assert_string_equal(r.error, "line too long");
    }
}

static void test_answers(void **state)
{
    bl_table *t = bl_table_new();
    char err[200];
    char big[BL_PROTO_ANSWER_MAX];

    assert_int_equal(bl_table_add(t, "192.0.2.0/24", "spam", err, sizeof(err)),
                     0);
    assert_int_equal(bl_table_add(t, "192.0.2.7", "drop", err, sizeof(err)), 0);
    assert_int_equal(bl_table_build(t, err, sizeof(err)), 0);
    assert_string_equal(answer(t, "Q 1 192.0.2.1"), "A 1 spam");
    assert_string_equal(answer(t, "Q 2 192.0.2.7"), "A 2 spam,drop");
    assert_string_equal(answer(t, "Q 3 198.51.100.1"), "A 3 -");
    assert_string_equal(answer(t, "Q 4 x"), "E 4 bad address");
    assert_string_equal(answer(t, "nonsense"), "E - unknown command");
    assert_string_equal(answer(t, "PING"), "PONG " BL_PROTO_VERSION);
    assert_string_equal(answer(t, "PING 9"), "PONG 9 " BL_PROTO_VERSION);
    /* too small a buffer: nothing, never an overflow */
    {
        bl_req r;
        parse("Q 1 192.0.2.1", &r);
        assert_int_equal(bl_proto_answer(t, &r, 1, big, 10), 0);
    }
    bl_table_free(t);
}

/* Feeds `in` in chunks of `step` bytes; collects lines and error marks. */
static void split_all(const char *in, size_t len, size_t step, char *out,
                      size_t outsz)
{
    bl_split s = {0};
    char buf[4096];
    size_t blen = 0, fed = 0, o = 0;

    out[0] = '\0';
    while (fed < len || blen > 0) {
        size_t n = len - fed < step ? len - fed : step;
        int progress = 0;
        memcpy(buf + blen, in + fed, n);
        blen += n;
        fed += n;
        for (;;) {
            const char *line;
            size_t used, ll;
            int k = bl_split_next(&s, buf, blen, &used, &line, &ll);
            if (k == BL_SPLIT_LINE)
                o += (size_t)snprintf(out + o, outsz - o, "[%.*s]", (int)ll,
                                      line);
            else if (k == BL_SPLIT_TOOLONG)
                o += (size_t)snprintf(out + o, outsz - o, "[TOOLONG]");
            memmove(buf, buf + used, blen - used);
            blen -= used;
            if (used)
                progress = 1;
            if (k == BL_SPLIT_MORE && used == 0)
                break;
        }
        if (fed == len && !progress)
            break; /* an unfinished last line stays buffered */
    }
}

static void test_split(void **state)
{
    char in[2048], out[2048];
    size_t n, step;

    n = (size_t)snprintf(in, sizeof(in), "Q 1 a\r\nPING\n\nSTATS\npartial");
    for (step = 1; step <= n; step++) {
        split_all(in, n, step, out, sizeof(out));
        assert_string_equal(out, "[Q 1 a][PING][][STATS]");
    }
    /* an overlong line: one error, then the next line is fine */
    memset(in, 'x', 1000);
    memcpy(in + 1000, "\nQ 2 b\n", 7);
    for (step = 1; step <= 1007; step += 97) {
        split_all(in, 1007, step, out, sizeof(out));
        assert_string_equal(out, "[TOOLONG][Q 2 b]");
    }
    /* exactly the limit (with its "\n") is allowed; one more is not */
    memset(in, 'y', BL_PROTO_LINE_MAX - 1);
    in[BL_PROTO_LINE_MAX - 1] = '\n';
    split_all(in, BL_PROTO_LINE_MAX, 1000, out, sizeof(out));
    assert_int_equal(strlen(out), BL_PROTO_LINE_MAX - 1 + 2);
    memset(in, 'y', BL_PROTO_LINE_MAX);
    in[BL_PROTO_LINE_MAX] = '\n';
    split_all(in, BL_PROTO_LINE_MAX + 1, 1000, out, sizeof(out));
    assert_string_equal(out, "[TOOLONG]");
}

static void test_reply_parse(void **state)
{
    bls_reply r;
    char l1[] = "A 17 -", l2[] = "A 18 spam,drop-v4,x.y",
         l3[] = "E 5 bad address";
    char l4[] = "E - line too long", l5[] = "A - spam", l6[] = "A 1 bad!name";
    char l7[] = "X 1 -", l8[] = "A 1", l9[] = "A x1 -", l10[] = "A 1 a,,b";
    char l11[] = "A 99999999999 -", l12[] = "A 1 ";

    assert_int_equal(bls_reply_parse(l1, &r), 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.id, 17);
    assert_int_equal(r.nlists, 0);
    assert_int_equal(bls_reply_parse(l2, &r), 0);
    assert_int_equal(r.nlists, 3);
    assert_string_equal(r.lists[0], "spam");
    assert_string_equal(r.lists[1], "drop-v4");
    assert_string_equal(r.lists[2], "x.y");
    assert_int_equal(bls_reply_parse(l3, &r), 0);
    assert_int_equal(r.error, 1);
    assert_int_equal(r.id, 5);
    assert_string_equal(r.reason, "bad address");
    assert_int_equal(bls_reply_parse(l4, &r), 0);
    assert_true(r.id == ULONG_MAX);
    assert_int_equal(bls_reply_parse(l5, &r), -1);
    assert_int_equal(bls_reply_parse(l6, &r), -1);
    assert_int_equal(bls_reply_parse(l7, &r), -1);
    assert_int_equal(bls_reply_parse(l8, &r), -1);
    assert_int_equal(bls_reply_parse(l9, &r), -1);
    assert_int_equal(bls_reply_parse(l10, &r), -1);
    assert_int_equal(bls_reply_parse(l11, &r), -1);
    assert_int_equal(bls_reply_parse(l12, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),    cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_answers),     cmocka_unit_test(test_split),
        cmocka_unit_test(test_reply_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
