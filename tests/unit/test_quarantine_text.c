/* test_quarantine_text.c - the quarantine stage's input hygiene, on its
 * own: qr_text() (what a hostile header or address becomes before it is
 * sent to PostgreSQL as text: valid UTF-8, bounded, cut on a character
 * boundary) and qr_inet() (which client addresses go to the inet column).
 * A value PostgreSQL refuses would make the store fail on every retry,
 * leaving the message in the MTA's queue until it bounces.  The stage's
 * file is included so its static helpers can be reached. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../plugins/quarantine/quarantine.c"

static void check_text(const char *in, size_t max, const char *want)
{
    char *out = qr_text(in, max);

    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
}

static void test_text_valid_kept(void **state)
{
    (void)state;
    check_text("plain ascii", 100, "plain ascii");
    check_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 100,
               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    check_text("", 100, "");
    check_text(NULL, 100, "");
}

static void test_text_invalid_replaced(void **state)
{
    (void)state;
    check_text("caf\xe9!", 100, "caf?!");            /* Latin-1 */
    check_text("\xc3", 100, "?");                    /* truncated */
    check_text("\xc0\xaf", 100, "??");               /* overlong / */
    check_text("\xe0\x80\xaf", 100, "???");          /* overlong, 3 */
    check_text("\xed\xa0\x80", 100, "???");          /* surrogate */
    check_text("\xf4\x90\x80\x80", 100, "????");     /* > U+10FFFF */
    check_text("\xff\xfe ok", 100, "?? ok");
    check_text("a\x80" "b", 100, "a?b");             /* stray continuation */
}

static void test_text_bounded(void **state)
{
    (void)state;
    check_text("abcdef", 3, "abc");
    /* a cut inside a character drops the partial bytes as invalid */
    check_text("ab\xc3\xa9", 3, "ab?");
}

static void test_inet(void **state)
{
    char *a;

    (void)state;
    assert_null(qr_inet(NULL));
    assert_null(qr_inet(""));
    assert_null(qr_inet("[UNAVAILABLE]"));
    assert_null(qr_inet("192.0.2.300"));
    assert_null(qr_inet("mx.example.org"));
    a = qr_inet("192.0.2.7");
    assert_string_equal(a, "192.0.2.7");
    free(a);
    a = qr_inet("IPv6:2001:db8::1"); /* Postfix's XFORWARD form */
    assert_string_equal(a, "2001:db8::1");
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_valid_kept),
        cmocka_unit_test(test_text_invalid_replaced),
        cmocka_unit_test(test_text_bounded),
        cmocka_unit_test(test_inet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
