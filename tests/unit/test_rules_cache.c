/*
 * test_rules_cache.c - the compiled Hyperscan database cache of the rule
 * engine (plugins/heuristic/rules_cache.c): a second compile of the same
 * rules reads every database from the cache and matches as the first
 * did; a changed pattern is a miss; a damaged file, a file or directory
 * others may write, and a symbolic link are never read; rules come back
 * from the cache with the same split between Hyperscan and PCRE2.
 *
 * Usage: test_rules_cache
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mimeview.h"

static char dir[64];

static const char rules_a[] =
    "header SUBJ_WIN 1 \"won\" Subject =~ /\\byou(?:'ve| have) won\\b/i\n"
    "header SUBJ_ACCT 1 \"acct\" Subject =~ "
    "/\\b(?:account|password)\\b.{0,40}\\b(?:verify|locked)/i\n"
    "body BODY_PILLS 1 \"pills\" /\\b(?:viagra|cialis)\\b/i\n"
    "body BODY_REPEAT 1 \"repeat\" /\\b(\\w{3,})\\s+\\1\\b/i\n"
    "body BODY_FEE 1 \"fee\" /\\bbeneficiary\\b.{0,200}\\bmillion/is\n"
    "rawbody RAW_FONT 1 \"font\" /<font[^>]{0,80}size=[01]/i\n"
    "uri URI_IP 1 \"ip\" /^https?:\\/\\/\\d{1,3}(?:\\.\\d{1,3}){3}/i\n";

static const char msg_spam[] =
    "From: a@example.com\r\nTo: b@example.org\r\n"
    "Subject: You have won! Your account needs you to verify\r\n"
    "Content-Type: text/html\r\n\r\n"
    "<font size=1>cheap viagra viagra</font> beneficiary of ten million "
    "<a href=\"http://10.1.2.3/x\">here</a>\r\n";
static const char msg_ham[] =
    "From: a@example.com\r\nTo: b@example.org\r\nSubject: lunch\r\n\r\n"
    "See you at noon.\r\n";


/* The rules of rs that msg hits, as a bit mask over rule order. */
static unsigned hits(rules_set *rs, const char *msg)
{
    mime_msg *m = mime_parse((const unsigned char *)msg, strlen(msg), NULL);
    rules_limits lim = {.max_text = 262144, .max_uris = 200};
    rules_scratch *s = rules_scratch_new(rs);
    rules_view v;
    rules_result r;
    unsigned mask = 0;
    size_t i;

    assert_non_null(m);
    assert_non_null(s);
    mimeview_init(&v, m, msg, strlen(msg), 1764580000);
    assert_int_equal(rules_view_build(&v, &lim), 0);
    assert_int_equal(rules_scan(rs, s, &v, &r), 0);
    for (i = 0; i < r.nhits; i++)
        mask |= 1u << r.hits[i].rule;
    rules_result_free(&r);
    rules_view_free(&v);
    rules_scratch_free(s);
    mime_free(m);
    return mask;
}

/* Load and compile text with the cache; stats copied out. */
static rules_set *load(const char *text, const char *cache, rules_stats *st)
{
    rules_set *rs = rules_new(NULL);
    char err[512];

    assert_non_null(rs);
    assert_int_equal(rules_set_cache(rs, cache), 0);
    if (rules_load_buffer(rs, "t.rules", text, strlen(text), RULES_FMT_SLUICE,
                          err, sizeof(err)) != 0 ||
        rules_compile(rs, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    *st = *rules_get_stats(rs);
    return rs;
}

static size_t cache_files(char names[][300], size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "hs-", 3) == 0 && n < max)
            snprintf(names[n++], 300, "%s/%s", dir, e->d_name);
    closedir(d);
    return n;
}

static void rm_cache(void)
{
    char names[64][300];
    size_t i, n = cache_files(names, 64);

    for (i = 0; i < n; i++)
        unlink(names[i]);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sluice-rcache.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_cache();
    rmdir(dir);
    return 0;
}

static void test_second_compile_hits(void **state)
{
    rules_stats s1, s2, s3;
    rules_set *a, *b, *c;
    char names[64][300];
    unsigned spam_a, ham_a;

    (void)state;
    rm_cache();
    c = load(rules_a, NULL, &s3); /* no cache at all: the reference */
    assert_int_equal(s3.hs_cached, 0);
    a = load(rules_a, dir, &s1);
    assert_true(s1.hs_groups >= 3);
    assert_int_equal(s1.hs_cached, 0);
    assert_int_equal(cache_files(names, 64), s1.hs_groups);
    b = load(rules_a, dir, &s2);
    assert_int_equal(s2.hs_groups, s1.hs_groups);
    assert_int_equal(s2.hs_cached, s1.hs_groups);
    assert_int_equal(s2.hyperscan, s1.hyperscan);
    assert_int_equal(s2.pcre, s1.pcre);
    spam_a = hits(a, msg_spam);
    ham_a = hits(a, msg_ham);
    assert_int_equal(spam_a, 0x7f); /* every rule hits */
    assert_int_equal(ham_a, 0);
    assert_int_equal(hits(b, msg_spam), spam_a);
    assert_int_equal(hits(b, msg_ham), ham_a);
    assert_int_equal(hits(c, msg_spam), spam_a);
    rules_free(a);
    rules_free(b);
    rules_free(c);
}

static void test_changed_pattern_misses(void **state)
{
    rules_stats s1, s2;
    rules_set *a, *b;
    char *text = strdup(rules_a), *p;

    (void)state;
    rm_cache();
    a = load(rules_a, dir, &s1);
    rules_free(a);
    p = strstr(text, "viagra|cialis");
    assert_non_null(p);
    memcpy(p, "viagrx", 6);
    b = load(text, dir, &s2);
    /* the body group changed, the others did not */
    assert_int_equal(s2.hs_cached, s1.hs_groups - 1);
    assert_int_equal(hits(b, msg_spam) & 0x4, 0);
    rules_free(b);
    free(text);
}

/* Damage every cache file a way the reader must refuse, then compile. */
static void damaged(int how)
{
    rules_stats s1, s2;
    rules_set *a, *b;
    char names[64][300];
    size_t i, n;

    rm_cache();
    a = load(rules_a, dir, &s1);
    n = cache_files(names, 64);
    assert_true(n > 0);
    for (i = 0; i < n; i++) {
        FILE *f;
        struct stat st;
        assert_int_equal(stat(names[i], &st), 0);
        switch (how) {
        case 0: /* a flipped byte in the middle */
            f = fopen(names[i], "r+b");
            assert_non_null(f);
            fseek(f, st.st_size / 2, SEEK_SET);
            {
                int c = fgetc(f);
                fseek(f, st.st_size / 2, SEEK_SET);
                fputc(c ^ 0x55, f);
            }
            fclose(f);
            break;
        case 1: /* cut short */
            assert_int_equal(truncate(names[i], st.st_size - 9), 0);
            break;
        case 2: /* writable by others */
            assert_int_equal(chmod(names[i], 0666), 0);
            break;
        default: { /* a symbolic link to the real file */
            char real[320];
            snprintf(real, sizeof(real), "%s.real", names[i]);
            assert_int_equal(rename(names[i], real), 0);
            assert_int_equal(symlink(real, names[i]), 0);
            break;
        }
        }
    }
    b = load(rules_a, dir, &s2);
    assert_int_equal(s2.hs_cached, 0);
    assert_int_equal(hits(b, msg_spam), hits(a, msg_spam));
    rules_free(a);
    rules_free(b);
    if (how == 3) {
        n = cache_files(names, 64);
        for (i = 0; i < n; i++)
            unlink(names[i]);
    }
}

static void test_damaged_files_refused(void **state)
{
    int how;

    (void)state;
    for (how = 0; how < 4; how++)
        damaged(how);
}

static void test_open_directory_refused(void **state)
{
    rules_stats s1, s2;
    rules_set *a, *b;

    (void)state;
    rm_cache();
    a = load(rules_a, dir, &s1);
    assert_int_equal(chmod(dir, 0777), 0);
    b = load(rules_a, dir, &s2);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(s2.hs_cached, 0);
    rules_free(a);
    rules_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_compile_hits),
        cmocka_unit_test(test_changed_pattern_misses),
        cmocka_unit_test(test_damaged_files_refused),
        cmocka_unit_test(test_open_directory_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
