/*
 * test_rule_samples.c - the shipped rules (rules/NAME.rules) against sample
 * messages written for the test (tests/rules/samples/NAME.eml).  Each sample
 * names what it must and must not hit in two header fields:
 *
 *     X-Sluice-Test-Expect: RULE_A RULE_B     every one must hit
 *     X-Sluice-Test-Absent: RULE_C            none may hit
 *     X-Sluice-Test-Symbols: BAYES_99         other stages' symbols
 *
 * A name that no loaded rule has is an error (a renamed rule must not
 * leave a test that passes for nothing), and so is a sample with neither
 * field, and a rule file that does not load.  The clock of each scan is
 * the sample's Date plus ten minutes (arrival), so date rules do not age.
 * Every reported rule must be expected by some sample: a rule added
 * without one fails the test.  The summary counts checks.
 *
 * Usage: test_rule_samples RULES_DIR SAMPLES_DIR
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mimeview.h"

static const char *rules_dir, *samples_dir;
static rules_set *rs;
static unsigned char *expected; /* per rule: some sample expects it */

/* Other stages' symbols (BAYES_99, RBL_...) the sample says are present:
 * its X-Sluice-Test-Symbols field, space separated (arg). */
static int t_symbol(void *arg, const char *name, double *score)
{
    const char *p = arg;
    size_t n = strlen(name);

    (void)score;
    while (p != NULL && (p = strstr(p, name)) != NULL) {
        if ((p == (const char *)arg || p[-1] == ' ') &&
            (p[n] == '\0' || p[n] == ' '))
            return 1;
        p += n;
    }
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/* The values of every header field `name` in the head of msg, unfolded
 * and joined with spaces, or NULL when there is none. */
static char *head_field(const char *msg, const char *name)
{
    size_t nl = strlen(name), used = 0;
    const char *p = msg, *e;
    char *out = NULL, *o;

    while (*p != '\0' && *p != '\r' && *p != '\n') {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            e = p;
            while (*e != '\0' &&
                   !((e[0] == '\n' && e[1] != ' ' && e[1] != '\t')))
                e++;
            out = realloc(out, used + (size_t)(e - p) + 2);
            assert_non_null(out);
            o = out + used;
            if (used > 0)
                *o++ = ' ';
            for (; p < e; p++)
                *o++ = (*p == '\r' || *p == '\n' || *p == '\t') ? ' ' : *p;
            *o = '\0';
            used = (size_t)(o - out);
        }
        p = strchr(p, '\n');
        if (p == NULL)
            break;
        p++;
    }
    return out;
}

/* "Tue, 1 Dec 2025 08:00:00 +0100" (day name optional) -> time_t, or 0. */
static time_t date_of(const char *s)
{
    static const char mons[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4];
    int d, y, hh, mm, ss = 0, zone = 0, n;
    const char *m;
    struct tm tm;

    if (s == NULL)
        return 0;
    if ((m = strchr(s, ',')) != NULL)
        s = m + 1;
    if (sscanf(s, " %d %3s %d %d:%d:%d %d%n", &d, mon, &y, &hh, &mm, &ss,
               &zone, &n) < 6)
        return 0;
    if ((m = strstr(mons, mon)) == NULL || (m - mons) % 3 != 0)
        return 0;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = (int)(m - mons) / 3;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm) - (zone / 100 * 3600 + zone % 100 * 60);
}

static int hits(const rules_result *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->nhits; i++)
        if (strcmp(rules_info(rs, r->hits[i].rule, NULL, NULL, NULL), name) ==
            0)
            return 1;
    return 0;
}

/* Check each name of list (space separated) against the result. */
static int check_list(const char *file, char *list, const rules_result *r,
                      int want)
{
    char *save = NULL, *name;
    int bad = 0;
    long idx;

    for (name = strtok_r(list, " ,", &save); name != NULL;
         name = strtok_r(NULL, " ,", &save)) {
        idx = rules_find(rs, name);
        if (idx < 0) {
            print_error("%s: no rule named %s\n", file, name);
            bad++;
            continue;
        }
        if (want)
            expected[idx] = 1;
        if (hits(r, name) != want) {
            print_error("%s: %s %s\n", file, name,
                        want ? "did not hit" : "hit but must not");
            bad++;
        }
    }
    return bad;
}

static void test_load(void **state)
{
    char pat[4096], err[512];
    glob_t g;
    size_t i;

    (void)state;
    snprintf(pat, sizeof(pat), "%s/*.rules", rules_dir);
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    rs = rules_new(NULL);
    assert_non_null(rs);
    for (i = 0; i < g.gl_pathc; i++)
        if (rules_load_file(rs, g.gl_pathv[i], RULES_FMT_SLUICE, err,
                            sizeof(err)) != 0)
            break;
    if (i < g.gl_pathc || rules_compile(rs, err, sizeof(err)) != 0) {
        rules_free(rs);
        rs = NULL; /* test_samples then fails instead of scanning */
        globfree(&g);
        fail_msg("%s", err);
    }
    printf("# %zu rule files, %zu rules\n", g.gl_pathc, rules_count(rs));
    assert_true(rules_count(rs) > 0);
    expected = calloc(rules_count(rs), 1);
    assert_non_null(expected);
    globfree(&g);
}

static void test_samples(void **state)
{
    rules_limits lim = {.max_text = 262144, .max_uris = 200};
    char pat[4096];
    glob_t g;
    size_t i, len, checked = 0;
    int bad = 0;

    (void)state;
    assert_non_null(rs);
    assert_non_null(expected);
    snprintf(pat, sizeof(pat), "%s/*.eml", samples_dir);
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    for (i = 0; i < g.gl_pathc; i++) {
        const char *file = g.gl_pathv[i];
        char *msg = slurp(file, &len), *exp, *abs, *date, *syms;
        mime_msg *m;
        rules_scratch *s;
        rules_view v;
        rules_result r;
        time_t t;

        assert_non_null(msg);
        exp = head_field(msg, "X-Sluice-Test-Expect");
        abs = head_field(msg, "X-Sluice-Test-Absent");
        if (exp == NULL && abs == NULL) {
            print_error("%s: neither X-Sluice-Test-Expect nor -Absent\n",
                        file);
            bad++;
        }
        m = mime_parse((const unsigned char *)msg, len, NULL);
        assert_non_null(m);
        s = rules_scratch_new(rs);
        assert_non_null(s);
        date = head_field(msg, "Date");
        t = date_of(date);
        mimeview_init(&v, m, msg, len,
                      t ? t + 600 : 1764580000); /* else 2025-12-01 */
        syms = head_field(msg, "X-Sluice-Test-Symbols");
        v.symbol = t_symbol;
        v.symbol_arg = syms;
        assert_int_equal(rules_view_build(&v, &lim), 0);
        assert_int_equal(rules_scan(rs, s, &v, &r), 0);
        if (exp != NULL)
            bad += check_list(file, exp, &r, 1);
        if (abs != NULL)
            bad += check_list(file, abs, &r, 0);
        checked++;
        rules_result_free(&r);
        rules_view_free(&v);
        rules_scratch_free(s);
        mime_free(m);
        free(exp);
        free(abs);
        free(date);
        free(syms);
        free(msg);
    }
    for (i = 0; i < rules_count(rs); i++) {
        double w;
        const char *n = rules_info(rs, i, &w, NULL, NULL);

        if (!expected[i] && strncmp(n, "__", 2) != 0 && w != 0) {
            print_error("no sample expects %s\n", n);
            bad++;
        }
    }
    printf("# %zu samples checked, %d failures\n", checked, bad);
    globfree(&g);
    assert_true(checked > 0);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_samples),
    };
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: test_rule_samples RULES_DIR SAMPLES_DIR\n");
        return 2;
    }
    rules_dir = argv[1];
    samples_dir = argv[2];
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rs != NULL)
        rules_free(rs);
    free(expected);
    return rc;
}
