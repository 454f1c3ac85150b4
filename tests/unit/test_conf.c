/* test_conf.c - conf.d reading, value syntaxes, directive tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "conf.h"
#include "engine.h"
#include "testutil.h"

static void test_values(void **state)
{
    double d;
    size_t sz;
    int b;
    util_endpoint ep;

    (void)state;
    assert_int_equal(util_parse_duration("30", &d), 0);
    assert_true(d == 30.0);
    assert_int_equal(util_parse_duration("250ms", &d), 0);
    assert_true(d > 0.2499 && d < 0.2501);
    assert_int_equal(util_parse_duration("5m", &d), 0);
    assert_true(d == 300.0);
    assert_int_equal(util_parse_duration("1h", &d), 0);
    assert_true(d == 3600.0);
    assert_int_equal(util_parse_duration("5 minutes", &d), -1);
    assert_int_equal(util_parse_duration("-1s", &d), -1);
    assert_int_equal(util_parse_duration("", &d), -1);
    assert_int_equal(util_parse_size("64k", &sz), 0);
    assert_int_equal(sz, 65536);
    assert_int_equal(util_parse_size("10M", &sz), 0);
    assert_int_equal(sz, 10485760);
    assert_int_equal(util_parse_size("1G", &sz), 0);
    assert_int_equal(util_parse_size("12q", &sz), -1);
    assert_int_equal(util_parse_bool("yes", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(util_parse_bool("Off", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(util_parse_bool("maybe", &b), -1);
    assert_int_equal(util_parse_endpoint("127.0.0.1:10025", &ep), 0);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_string_equal(ep.port, "10025");
    assert_int_equal(util_parse_endpoint("[::1]:25", &ep), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(util_parse_endpoint("unix:/run/x.sock", &ep), 0);
    assert_true(ep.is_unix);
    assert_string_equal(ep.path, "/run/x.sock");
    assert_int_equal(util_parse_endpoint("::1:25", &ep), -1);
    assert_int_equal(util_parse_endpoint("host:99999", &ep), -1);
    assert_int_equal(util_parse_endpoint("host:", &ep), -1);
    assert_int_equal(util_parse_endpoint("noport", &ep), -1);
}

static void test_sections_and_order(void **state)
{
    char *dir = tu_mkdir();
    conf_tree t;
    buf err;

    (void)state;
    tu_write(dir, "20-b.conf", "# comment\nstage bee\nenabled no\n");
    tu_write(dir, "10-a.conf",
             "engine\nworkers 2 # trailing comment\n\nstage aye\n"
             "opt value with spaces\n");
    tu_write(dir, "ignored.txt", "stage nope\n");
    buf_init(&err);
    assert_int_equal(conf_read_dir(dir, &t, &err), 0);
    assert_int_equal(t.nsecs, 3);
    assert_true(t.secs[0].is_engine);
    assert_string_equal(t.secs[0].opts[0].key, "workers");
    assert_string_equal(t.secs[0].opts[0].value, "2");
    assert_string_equal(t.secs[1].name, "aye");
    assert_string_equal(t.secs[1].opts[0].value, "value with spaces");
    assert_int_equal(t.secs[1].opts[0].line, 5);
    assert_string_equal(t.secs[2].name, "bee");
    conf_tree_free(&t);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_errors_name_file_and_line(void **state)
{
    char *dir = tu_mkdir();
    conf_tree t;
    buf err;

    (void)state;
    tu_write(dir, "a.conf", "workers 2\nstage Bad!Name\n");
    buf_init(&err);
    assert_int_equal(conf_read_dir(dir, &t, &err), 2);
    assert_non_null(strstr(err.data, "a.conf:1: 'workers' outside a section"));
    assert_non_null(strstr(err.data, "a.conf:2: stage name 'Bad!Name'"));
    conf_tree_free(&t);
    buf_free(&err);
    tu_rmdir(dir);
}

/* sluice-manager's section: read into extra, never among the stages. */
static void test_manager_section(void **state)
{
    char *dir = tu_mkdir();
    conf_tree t;
    buf err;

    (void)state;
    tu_write(dir, "05-manager.conf",
             "manager\nlisten 127.0.0.1:18080\nstage aye\nmanager x\n");
    buf_init(&err);
    assert_int_equal(conf_read_dir(dir, &t, &err), 1);
    assert_non_null(strstr(err.data, "05-manager.conf:4: 'manager' takes no"));
    assert_int_equal(t.nsecs, 1);
    assert_string_equal(t.secs[0].name, "aye");
    assert_int_equal(t.nextra, 2);
    assert_string_equal(t.extra[0].name, "manager");
    assert_string_equal(t.extra[0].opts[0].key, "listen");
    assert_string_equal(t.extra[0].opts[0].value, "127.0.0.1:18080");
    assert_int_equal(t.extra[0].opts[0].line, 2);
    conf_tree_free(&t);
    buf_free(&err);
    tu_rmdir(dir);
}

typedef struct demo {
    char *s;
    long long n;
    int b;
    double d;
    size_t sz;
    int v;
    char **l;
    int e;
    double f;
} demo;

static const char *const demo_choices[] = {"one", "two", NULL};
static const sluice_directive demo_table[] = {
    {"s", SLUICE_CONF_STRING, offsetof(demo, s), "dflt", 0, 0, NULL, NULL},
    {"n", SLUICE_CONF_INT, offsetof(demo, n), "3", 1, 10, NULL, NULL},
    {"b", SLUICE_CONF_BOOL, offsetof(demo, b), "no", 0, 0, NULL, NULL},
    {"d", SLUICE_CONF_DURATION, offsetof(demo, d), "1s", 0, 0, NULL, NULL},
    {"sz", SLUICE_CONF_SIZE, offsetof(demo, sz), "1k", 0, 0, NULL, NULL},
    {"v", SLUICE_CONF_VERDICT, offsetof(demo, v), "tempfail", 0, 0, NULL,
     NULL},
    {"l", SLUICE_CONF_STRLIST, offsetof(demo, l), NULL, 0, 0, NULL, NULL},
    {"e", SLUICE_CONF_ENUM, offsetof(demo, e), "one", 0, 0, demo_choices,
     NULL},
    {"f", SLUICE_CONF_DOUBLE, offsetof(demo, f), "0.5", -1, 1, NULL, NULL},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static void test_apply_table(void **state)
{
    char *dir = tu_mkdir();
    conf_tree t;
    buf err;
    demo d;

    (void)state;
    tu_write(dir, "x.conf",
             "stage x\nn 7\nb yes\nd 250ms\nsz 2M\nv reject\nl a b\nl c\n"
             "e two\nf -0.25\nbogus 1\n");
    buf_init(&err);
    assert_int_equal(conf_read_dir(dir, &t, &err), 0);
    memset(&d, 0, sizeof(d));
    assert_int_equal(
        conf_apply(demo_table, &d, &t.secs[0], "stage 'x'", NULL, NULL, &err),
        0);
    assert_string_equal(d.s, "dflt");
    assert_int_equal(d.n, 7);
    assert_int_equal(d.b, 1);
    assert_true(d.d > 0.2499 && d.d < 0.2501);
    assert_int_equal(d.sz, 2 * 1048576);
    assert_int_equal(d.v, SLUICE_REJECT);
    assert_string_equal(d.l[0], "a");
    assert_string_equal(d.l[1], "b");
    assert_string_equal(d.l[2], "c");
    assert_null(d.l[3]);
    assert_int_equal(d.e, 1);
    assert_true(d.f == -0.25);
    /* the unknown option is reported with its place */
    assert_int_equal(conf_check_unused(&t.secs[0], "stage 'x'", &err), 1);
    assert_non_null(strstr(err.data, "x.conf:11: stage 'x': unknown option "
                                     "'bogus'"));
    conf_release(demo_table, &d);
    conf_tree_free(&t);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_apply_bad_values(void **state)
{
    char *dir = tu_mkdir();
    conf_tree t;
    buf err;
    demo d;

    (void)state;
    tu_write(dir, "x.conf",
             "stage x\nn 11\nb perhaps\nd soon\nsz lots\nv pending\ne three\n"
             "f 2\n");
    buf_init(&err);
    assert_int_equal(conf_read_dir(dir, &t, &err), 0);
    memset(&d, 0, sizeof(d));
    assert_int_equal(
        conf_apply(demo_table, &d, &t.secs[0], "stage 'x'", NULL, NULL, &err),
        7);
    assert_non_null(strstr(err.data, "x.conf:2: stage 'x': n: 11 is out of "
                                     "range 1..10"));
    assert_non_null(strstr(err.data, "x.conf:3: stage 'x': b: 'perhaps' is "
                                     "not yes/no"));
    assert_non_null(strstr(err.data, "x.conf:4:"));
    assert_non_null(strstr(err.data, "x.conf:5:"));
    assert_non_null(strstr(err.data, "x.conf:6: stage 'x': v: 'pending' is "
                                     "not a verdict"));
    assert_non_null(strstr(err.data, "x.conf:7: stage 'x': e: 'three' is not "
                                     "one of: one two"));
    assert_non_null(strstr(err.data, "x.conf:8:"));
    conf_release(demo_table, &d);
    conf_tree_free(&t);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_set_enabled(void **state)
{
    char *dir = tu_mkdir();
    buf err;
    const char *text;

    (void)state;
    tu_write(dir, "a.conf", "stage one\nopt 1\n\nstage two\nenabled yes\n");
    tu_write(dir, "b.conf", "stage three");  /* no final newline */
    buf_init(&err);
    assert_int_equal(conf_set_enabled(dir, "two", 0, &err), 0);
    text = tu_read(dir, "a.conf");
    assert_string_equal(text, "stage one\nopt 1\n\nstage two\nenabled no\n");
    assert_int_equal(conf_set_enabled(dir, "one", 0, &err), 0);
    text = tu_read(dir, "a.conf");
    assert_string_equal(text,
                        "stage one\nenabled no\nopt 1\n\nstage two\nenabled no\n");
    assert_int_equal(conf_set_enabled(dir, "three", 0, &err), 0);
    text = tu_read(dir, "b.conf");
    assert_string_equal(text, "stage three\nenabled no\n");
    assert_int_equal(conf_set_enabled(dir, "four", 1, &err), -1);
    assert_non_null(strstr(err.data, "no stage named 'four'"));
    buf_free(&err);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_sections_and_order),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_manager_section),
        cmocka_unit_test(test_apply_table),
        cmocka_unit_test(test_apply_bad_values),
        cmocka_unit_test(test_set_enabled),
    };
    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
