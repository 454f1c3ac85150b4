/*
 * test_manager_api.c - unit tests of the Manager API's pure parts:
 * mgr_series (dashboard series), mgr_qfilter (quarantine search filters),
 * mgr_text (message view), listent (list entries), mgr_conf (conf.d).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "listent.h"
#include "mgr_conf.h"
#include "mgr_qfilter.h"
#include "mgr_series.h"
#include "mgr_text.h"
#include "testutil.h"

#include <string.h>

/* ---------------------------------------------------------------- series */

static void tot_set(long long t[MGR_S_N], long long msgs, long long spam,
                    long long quar, long long rej)
{
    memset(t, 0, sizeof(long long) * MGR_S_N);
    t[MGR_S_MESSAGES] = msgs;
    t[MGR_S_SPAM] = spam;
    t[MGR_S_QUARANTINED] = quar;
    t[MGR_S_REJECTED] = rej;
}

static void test_series_deltas(void **state)
{
    static mgr_series s;
    long long tot[MGR_S_N], d[MGR_S_N];
    const long long t0 = 1764583200; /* 2025-12-01 10:00:00 UTC */
    mgr_bucket b;

    (void)state;
    mgr_series_init(&s);
    tot_set(tot, 1000, 100, 10, 5);
    /* the first reading is only the base: nothing counted */
    assert_int_equal(mgr_series_sample(&s, t0, 42, tot, d), 0);
    assert_int_equal(d[MGR_S_MESSAGES], 0);
    assert_int_equal(mgr_series_minute(&s, t0).v[MGR_S_MESSAGES], 0);
    tot_set(tot, 1010, 103, 11, 5);
    assert_int_equal(mgr_series_sample(&s, t0 + 10, 42, tot, d), 1);
    assert_int_equal(d[MGR_S_MESSAGES], 10);
    assert_int_equal(d[MGR_S_SPAM], 3);
    tot_set(tot, 1015, 103, 11, 6);
    mgr_series_sample(&s, t0 + 20, 42, tot, d);
    b = mgr_series_minute(&s, t0 + 59);
    assert_int_equal(b.t, t0);
    assert_int_equal(b.v[MGR_S_MESSAGES], 15);
    assert_int_equal(b.v[MGR_S_REJECTED], 1);
    /* the next minute starts at zero */
    tot_set(tot, 1020, 103, 11, 6);
    mgr_series_sample(&s, t0 + 61, 42, tot, d);
    assert_int_equal(mgr_series_minute(&s, t0 + 60).v[MGR_S_MESSAGES], 5);
    assert_int_equal(mgr_series_minute(&s, t0).v[MGR_S_MESSAGES], 15);
    /* no change: nothing to write */
    assert_int_equal(mgr_series_sample(&s, t0 + 70, 42, tot, d), 0);
    /* engine restarted (new pid): its totals are all new */
    tot_set(tot, 7, 1, 0, 0);
    assert_int_equal(mgr_series_sample(&s, t0 + 80, 43, tot, d), 1);
    assert_int_equal(d[MGR_S_MESSAGES], 7);
    /* a total that went down (same pid reported) is a restart too */
    tot_set(tot, 2, 0, 0, 0);
    mgr_series_sample(&s, t0 + 90, 43, tot, d);
    assert_int_equal(d[MGR_S_MESSAGES], 2);
    assert_int_equal(mgr_series_minute(&s, t0 + 60).v[MGR_S_MESSAGES], 14);
}

static void test_series_windows(void **state)
{
    static mgr_series s;
    const long long t0 = 1764583200; /* a whole hour */
    long long v[MGR_S_N];
    mgr_bucket mins[60], hours[24];
    int i;

    (void)state;
    mgr_series_init(&s);
    memset(v, 0, sizeof(v));
    /* one message per minute for 3 hours, from storage */
    for (i = 0; i < 180; i++) {
        v[MGR_S_MESSAGES] = 1;
        v[MGR_S_SPAM] = i % 2;
        mgr_series_set(&s, t0 + i * 60, v);
    }
    mgr_series_minutes(&s, t0 + 179 * 60 + 30, 60, mins);
    assert_int_equal(mins[59].t, t0 + 179 * 60);
    assert_int_equal(mins[0].t, t0 + 120 * 60);
    for (i = 0; i < 60; i++)
        assert_int_equal(mins[i].v[MGR_S_MESSAGES], 1);
    mgr_series_hours(&s, t0 + 179 * 60 + 30, 24, hours);
    assert_int_equal(hours[23].t, t0 + 2 * 3600);
    assert_int_equal(hours[23].v[MGR_S_MESSAGES], 60);
    assert_int_equal(hours[22].v[MGR_S_MESSAGES], 60);
    assert_int_equal(hours[21].v[MGR_S_MESSAGES], 60);
    assert_int_equal(hours[21].v[MGR_S_SPAM], 30);
    assert_int_equal(hours[20].v[MGR_S_MESSAGES], 0);
    /* a day later the ring slots are stale: zeros, not old counts */
    mgr_series_minutes(&s, t0 + 86400 + 30, 60, mins);
    assert_int_equal(mins[59].t, t0 + 86400);
    assert_int_equal(mins[59].v[MGR_S_MESSAGES], 0);
    /* set() does not overwrite a minute already counted in memory */
    v[MGR_S_MESSAGES] = 99;
    mgr_series_set(&s, t0, v);
    assert_int_equal(mgr_series_minute(&s, t0).v[MGR_S_MESSAGES], 1);
}

/* ---------------------------------------------------------------- filters */

typedef struct kv {
    const char *k[12], *v[12];
} kv;

static int kv_get(void *arg, const char *name, char *out, size_t outsz)
{
    kv *q = arg;

    for (int i = 0; i < 12 && q->k[i]; i++)
        if (strcmp(q->k[i], name) == 0) {
            snprintf(out, outsz, "%s", q->v[i]);
            return 1;
        }
    return 0;
}

static int parse(kv *q, mgr_qfilter *f, char *err)
{
    return mgr_qfilter_parse(kv_get, q, f, err, 256);
}

static void test_qfilter(void **state)
{
    mgr_qfilter f;
    char err[256];
    kv none = {{NULL}, {NULL}};
    kv all = {{"recipient", "sender", "subject", "from", "to", "min_score",
               "max_score", "status", "limit", "offset", NULL},
              {"Bob@Example.com", "spam", "Win", "2026-12-01", "2026-12-01",
               "5", "20.5", "any", "10", "20", NULL}};

    (void)state;
    assert_int_equal(parse(&none, &f, err), 0);
    for (int i = 0; i < 7; i++)
        assert_null(f.params[i]);
    assert_string_equal(f.params[7], "quarantined");
    assert_string_equal(f.params[8], "50");
    assert_string_equal(f.params[9], "0");

    assert_int_equal(parse(&all, &f, err), 0);
    assert_string_equal(f.params[0], "Bob@Example.com");
    assert_string_equal(f.params[1], "spam");
    assert_string_equal(f.params[2], "Win");
    assert_string_equal(f.params[3], "2026-12-01 00:00:00+00");
    /* a bare `to` date includes that whole day */
    assert_string_equal(f.params[4], "2026-12-02 00:00:00+00");
    assert_string_equal(f.params[5], "5");
    assert_string_equal(f.params[6], "20.5");
    assert_string_equal(f.params[7], "any");
    assert_string_equal(f.params[8], "10");
    assert_string_equal(f.params[9], "20");

    {
        kv bad[] = {
            {{"min_score", NULL}, {"5; DROP TABLE x", NULL}},
            {{"max_score", NULL}, {"nan", NULL}},
            {{"limit", NULL}, {"0", NULL}},
            {{"limit", NULL}, {"501", NULL}},
            {{"limit", NULL}, {"1e2", NULL}},
            {{"offset", NULL}, {"-1", NULL}},
            {{"status", NULL}, {"quarantined' OR '1'='1", NULL}},
            {{"from", NULL}, {"yesterday", NULL}},
            {{"from", NULL}, {"2026-02-31", NULL}},
            {{"to", NULL}, {"2026-12-01T25:00", NULL}},
            {{"sender", NULL}, {"a\nb", NULL}},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            err[0] = '\0';
            assert_int_equal(parse(&bad[i], &f, err), -1);
            assert_true(strncmp(err, bad[i].k[0], strlen(bad[i].k[0])) == 0);
        }
    }
    assert_int_equal(mgr_qfilter_time("1764583200", 0, err, sizeof(err)), 0);
    assert_string_equal(err, "2025-12-01 10:00:00+00");
    assert_int_equal(mgr_qfilter_time("2026-12-01T10:20Z", 1, err, 64), 0);
    assert_string_equal(err, "2026-12-01 10:20:00+00");
    assert_int_equal(mgr_qfilter_time("2026-12-01 10:20:30", 0, err, 64), 0);
    assert_string_equal(err, "2026-12-01 10:20:30+00");
}

/* ---------------------------------------------------------------- text */

static json_t *view(const char *msg)
{
    return mgr_text_view((const unsigned char *)msg, strlen(msg), 4096);
}

static void test_text_html(void **state)
{
    const char *msg =
        "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.com>\r\n"
        "Subject: =?ISO-8859-1?Q?caf=E9?=\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        "<html><head><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body><p>Hello "
        "<b>world</b> &amp; <a href=\"http://evil.example/\">click</a>"
        "<img src=\"http://tracker.example/p.gif\"></p></body></html>\r\n"
        "--XX\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        "Content-Disposition: attachment; filename=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n";
    json_t *v = view(msg), *h;
    const char *text;

    (void)state;
    assert_non_null(v);
    text = json_string_value(json_object_get(v, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "Hello world & click"));
    assert_null(strchr(text, '<'));
    assert_null(strstr(text, "alert"));
    assert_null(strstr(text, "color:red"));
    assert_null(strstr(text, "tracker.example"));
    h = json_object_get(v, "headers");
    assert_int_equal(json_array_size(h), 4);
    assert_string_equal(
        json_string_value(json_array_get(json_array_get(h, 0), 0)), "From");
    assert_string_equal(
        json_string_value(json_array_get(json_array_get(h, 0), 1)),
        "J\xc3\xbcrgen <j@example.com>");
    assert_string_equal(
        json_string_value(json_array_get(json_array_get(h, 1), 1)),
        "caf\xc3\xa9");
    h = json_object_get(v, "attachments");
    assert_int_equal(json_array_size(h), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(h, 0), "filename")),
        "a.pdf");
    assert_false(json_is_true(json_object_get(v, "text_truncated")));
    json_decref(v);
}

static void test_text_alternative(void **state)
{
    const char *msg =
        "Subject: alt\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nthe plain one\r\n"
        "--B\r\nContent-Type: text/html\r\n\r\n<p>the html one</p>\r\n"
        "--B--\r\n";
    json_t *v = view(msg);
    const char *text = json_string_value(json_object_get(v, "text"));

    (void)state;
    assert_non_null(strstr(text, "the plain one"));
    assert_null(strstr(text, "html one"));
    json_decref(v);
}

static void test_text_clean(void **state)
{
    int cut = 0;
    char *c = mgr_text_clean("a\x01\r\nb\xff\xc3\xa9\xe2\x82", 10, 100, &cut);

    (void)state;
    assert_string_equal(c, "a\nb\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(cut, 0);
    free(c);
    /* cut at a character boundary, never inside one */
    c = mgr_text_clean("\xc3\xa9\xc3\xa9\xc3\xa9", 6, 5, &cut);
    assert_string_equal(c, "\xc3\xa9\xc3\xa9");
    assert_int_equal(cut, 1);
    free(c);
    /* a long plain body is capped */
    {
        char *big = malloc(10000);
        json_t *v;
        memset(big, 'x', 9999);
        big[9999] = '\0';
        memcpy(big, "Subject: x\r\n\r\n", 14);
        v = view(big);
        assert_true(json_string_length(json_object_get(v, "text")) <= 4096);
        assert_true(json_is_true(json_object_get(v, "text_truncated")));
        json_decref(v);
        free(big);
    }
}

/* ---------------------------------------------------------------- lists */

static void test_listent(void **state)
{
    listent e;
    char out[600];

    (void)state;
    assert_int_equal(listent_parse("Bob@Example.COM", &e), 0);
    assert_string_equal(e.addr, "bob@example.com");
    assert_int_equal(listent_parse("*.Example.com", &e), 0);
    assert_string_equal(e.domain, "example.com");
    assert_int_equal(e.subdomains, 1);
    listent_format(&e, out, sizeof(out));
    assert_string_equal(out, "*.example.com");
    assert_int_equal(listent_parse("198.51.100.0/24", &e), 0);
    assert_string_equal(e.net, "198.51.100.0/24");
    assert_int_equal(listent_parse("2001:db8::/32", &e), 0);
    assert_int_equal(listent_parse("", &e), -1);
    assert_int_equal(listent_parse("localhost", &e), -1);
    assert_int_equal(listent_parse("a b@example.com", &e), -1);
    assert_int_equal(listent_parse("example.com/24", &e), -1);
    assert_int_equal(listent_parse("x@y\n.com", &e), -1);
}

static void test_conf(void **state)
{
    char *dir = tu_mkdir(), out[256];
    int found = -1;

    (void)state;
    tu_write(dir, "10-a.conf",
             "engine\nworkers 1\nstage bl\nplugin blocklist\n"
             "server 127.0.0.1:9999\nstage deliver\nnext_hop 10.0.0.1:25\n");
    assert_int_equal(mgr_conf_stage_key(dir, "blocklist", "server", "d", out,
                                        sizeof(out), &found),
                     1);
    assert_string_equal(out, "127.0.0.1:9999");
    assert_int_equal(found, 1);
    assert_int_equal(mgr_conf_stage_key(dir, "deliver", "next_hop", "d", out,
                                        sizeof(out), NULL),
                     1);
    assert_string_equal(out, "10.0.0.1:25");
    assert_int_equal(mgr_conf_stage_key(dir, "policy", "script", "dflt", out,
                                        sizeof(out), &found),
                     0);
    assert_string_equal(out, "dflt");
    assert_int_equal(found, 0);
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_deltas),
        cmocka_unit_test(test_series_windows),
        cmocka_unit_test(test_qfilter),
        cmocka_unit_test(test_text_html),
        cmocka_unit_test(test_text_alternative),
        cmocka_unit_test(test_text_clean),
        cmocka_unit_test(test_listent),
        cmocka_unit_test(test_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
