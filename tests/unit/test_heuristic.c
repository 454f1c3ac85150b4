/*
 * test_heuristic.c - the rule engine (plugins/heuristic/rules_*.c) and the
 * `heuristic` stage: every construct of the sluice rule format, errors
 * with file:line, SpamAssassin files from the Debian package (counts
 * reported), known messages hitting known rules, meta rules over rules
 * and other stages' symbols, score and probability, the stage through a
 * fake host, and every corpus message scanned (under ASan in the test
 * build).
 *
 * Usage: test_heuristic 'RULES_DIR/NAME.rules pattern' HEURISTIC.so [CORPUS]
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mimeview.h"

static const char *default_rules, *so_path, *corpus;

/* ---------------------------------------------------------------- helpers */


static const char *ext_syms[4];

static int t_symbol(void *arg, const char *name, double *score)
{
    size_t i;

    (void)arg, (void)score;
    for (i = 0; i < 4 && ext_syms[i] != NULL; i++)
        if (strcmp(ext_syms[i], name) == 0)
            return 1;
    return 0;
}

/* Scan `msg` with rs; returns the result (caller frees). */
static rules_result scan(rules_set *rs, const char *msg)
{
    mime_msg *m = mime_parse((const unsigned char *)msg, strlen(msg), NULL);
    rules_limits lim = {.max_text = 262144, .max_uris = 200};
    rules_scratch *s = rules_scratch_new(rs);
    rules_view v;
    rules_result r;

    assert_non_null(m);
    assert_non_null(s);
    mimeview_init(&v, m, msg, strlen(msg), 1764580000); /* 2025-12-01 */
    v.symbol = t_symbol;
    assert_int_equal(rules_view_build(&v, &lim), 0);
    assert_int_equal(rules_scan(rs, s, &v, &r), 0);
    rules_view_free(&v);
    rules_scratch_free(s);
    mime_free(m);
    return r;
}

static int hit(const rules_set *rs, const rules_result *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->nhits; i++)
        if (strcmp(rules_info(rs, r->hits[i].rule, NULL, NULL, NULL), name) ==
            0)
            return 1;
    return 0;
}

static rules_set *load(const char *text, int fmt)
{
    rules_set *rs = rules_new(NULL);
    char err[512];

    assert_non_null(rs);
    if (rules_load_buffer(rs, "t.rules", text, strlen(text), fmt, err,
                          sizeof(err)) != 0 ||
        rules_compile(rs, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    return rs;
}

/* ---------------------------------------------------------------- parser */

static const char every_construct[] =
    "# comment\n"
    "   \n"
    "header H_RE 1.5 \"subject word\" Subject =~ /\\bhello\\b/i\n"
    "header H_NEG 0.5 \"no x-ok\" X-Ok !~ /yes/\n"
    "header H_RAW 0.1 \"raw subject\" Subject:raw =~ m{=\\?utf-8\\?}i\n"
    "header H_EXISTS 0.2 \"has x-mailer\" exists:X-Mailer\n"
    "header H_UNSET 0.3 \"unset default\" X-Foo =~ /dflt/ [if-unset: dflt]\n"
    "header H_ALL 0.1 \"any header\" ALL =~ /^To: b@/m\n"
    "body B_RE 1 \"body word\" /cheap \\\"pills\\\"|cheap pills/i\n"
    "body B_BACKREF 0.4 \"repeated word\" /\\b(\\w+) \\1\\b/\n"
    "rawbody RB 0.7 \"html font\" /<font/i\n"
    "full F 0.1 \"full\" /^Subject: /m\n"
    "uri U 0.9 \"ip uri\" /^https?:\\/\\/\\d+\\.\\d+\\.\\d+\\.\\d+/\n"
    "eval E_CAPS 0.5 \"caps\" subject_all_caps(5)\n"
    "eval E_MSGID 1 \"no msgid\" missing_header(Message-ID)\n"
    "meta M_AND 2 \"and\" H_RE && B_RE\n"
    "meta M_ARITH 1 \"arith\" (H_RE + B_RE + U) * 2 >= 4 && !H_EXISTS\n"
    "meta M_EXT 1 \"external symbol\" BAYES_99 || RBL_TEST\n"
    "meta M_META 1 \"meta of meta\" M_AND && -1 < 0 && 3 / 3 == 1 && 1 != 2\n"
    "meta __SUB 0 \"sub rule\" H_RE\n"
    "meta M_SUB 0.25 \"uses sub\" __SUB || M_AND\n";

static const char construct_msg[] =
    "From: a@example.org\r\n"
    "To: b@example.net\r\n"
    "Subject: =?utf-8?q?HELLO_THERE?=\r\n"
    "Date: Mon, 1 Dec 2025 08:00:00 +0000\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<html><font size=3>Buy cheap pills the the best</font>"
    "<a href=\"http://192.0.2.1/x\">here</a></html>\r\n";

static void test_every_construct(void **state)
{
    rules_set *rs = load(every_construct, RULES_FMT_SLUICE);
    const char *names[] = {"H_RE", "H_NEG", "H_RAW", "H_UNSET", "H_ALL",
                           "B_RE", "B_BACKREF", "RB", "F", "U", "E_CAPS",
                           "E_MSGID", "M_AND", "M_ARITH", "M_META", "M_SUB"};
    rules_result r;
    double w;
    const char *d;
    size_t i;

    (void)state;
    assert_true(rules_get_stats(rs)->loaded >= 19);
    assert_non_null(rules_info(rs, (size_t)rules_find(rs, "H_RE"), &w, &d,
                               NULL));
    assert_true(w == 1.5);
    assert_string_equal(d, "subject word");
    ext_syms[0] = NULL;
    r = scan(rs, construct_msg);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!hit(rs, &r, names[i]))
            fail_msg("%s did not hit", names[i]);
    assert_false(hit(rs, &r, "H_EXISTS"));
    assert_false(hit(rs, &r, "M_EXT"));
    assert_false(hit(rs, &r, "__SUB")); /* never reported */
    rules_result_free(&r);
    ext_syms[0] = "RBL_TEST";
    r = scan(rs, construct_msg);
    assert_true(hit(rs, &r, "M_EXT"));
    ext_syms[0] = NULL;
    rules_result_free(&r);
    rules_free(rs);
}

static void test_errors(void **state)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"# ok\nfoo X 1 \"d\" /x/\n", "t.rules:2: unknown rule kind"},
        {"body 9X 1 \"d\" /x/\n", "t.rules:1: bad rule name"},
        {"body X one \"d\" /x/\n", "t.rules:1: body X: bad weight"},
        {"body X 1 /x/\n", "t.rules:1: body X: expected a \"description\""},
        {"body X 1 \"d /x/\n", "t.rules:1: body X: unterminated"},
        {"body X 1 \"\" /x/\n", "t.rules:1: body X: empty description"},
        {"body X 1 \"d\"\n", "t.rules:1: body X: missing the rule itself"},
        {"body X 1 \"d\" x/\n", "t.rules:1: expected a regex"},
        {"body X 1 \"d\" /x\n", "t.rules:1: regex: no closing"},
        {"body X 1 \"d\" /x/q\n", "t.rules:1: regex: unknown flag"},
        {"header X 1 \"d\" Subject /x/\n", "t.rules:1: header rule: expected"},
        {"meta X 1 \"d\" A &&\n", "t.rules:1: meta: expression ends early"},
        {"meta X 1 \"d\" (A\n", "t.rules:1: meta: missing )"},
        {"meta X 1 \"d\" A B\n", "t.rules:1: meta: unexpected text"},
        {"eval X 1 \"d\" nosuch(1)\n", "t.rules:1: eval: unknown function"},
        {"eval X 1 \"d\" date_future(x)\n", "t.rules:1: eval: date_future() takes a number"},
        {"body X 1 \"d\" /a/\nbody X 1 \"d\" /b/\n", "t.rules:2: rule X already defined at t.rules:1"},
    };
    static const struct {
        const char *text, *want;
    } bad_compile[] = {
        {"\nbody X 1 \"d\" /(unclosed/\n", "t.rules:2: X: regex at offset"},
        {"meta A 1 \"d\" B\nmeta B 1 \"d\" A\n", "circular reference"},
    };
    char err[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rules_set *rs = rules_new(NULL);
        err[0] = '\0';
        assert_int_equal(rules_load_buffer(rs, "t.rules", bad[i].text,
                                           strlen(bad[i].text),
                                           RULES_FMT_SLUICE, err, sizeof(err)),
                         -1);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
        rules_free(rs);
    }
    for (i = 0; i < sizeof(bad_compile) / sizeof(bad_compile[0]); i++) {
        rules_set *rs = rules_new(NULL);
        const char *t = bad_compile[i].text;
        assert_int_equal(rules_load_buffer(rs, "t.rules", t, strlen(t),
                                           RULES_FMT_SLUICE, err, sizeof(err)),
                         0);
        assert_int_equal(rules_compile(rs, err, sizeof(err)), -1);
        if (strstr(err, bad_compile[i].want) == NULL)
            fail_msg("compile case %zu: got \"%s\"", i, err);
        rules_free(rs);
    }
}

/* SpamAssassin constructs in a file written for the test. */
static void test_sa_constructs(void **state)
{
    static const char sa[] =
        "ifplugin Mail::SpamAssassin::Plugin::Foo\n"
        "header SA_SUBJ Subject =~ /hello/i\n"
        "endif\n"
        "if can(Mail::SpamAssassin::Conf::feature_nothing)\n"
        "body SA_NEVER /hello/\n"
        "endif\n"
        "if (version >= 3.004000)\n"
        "body SA_BODY m{cheap\\s+pills}i\n"
        "else\n"
        "body SA_NOT_ELSE /x/\n"
        "endif\n"
        "header SA_EVAL eval:check_for_something()\n"
        "meta SA_META_EVAL SA_EVAL && SA_SUBJ\n"
        "meta SA_META SA_SUBJ && SA_BODY\n"
        "rawbody __SA_SUB /<font/i\n"
        "uri SA_URI /192\\.0\\.2/\n"
        "full SA_FULL /^To: /m\n"
        "header SA_MISSING X-Nope =~ /^$/ [if-unset: UNSET]\n"
        "score SA_SUBJ 2.5\n"
        "score SA_BODY 0 1 3.5 1\n"
        "describe SA_SUBJ Says hello\n"
        "tflags SA_URI multiple\n"
        "report _SUMMARY_\n"
        "lang de describe SA_SUBJ Sagt hallo\n";
    rules_set *rs = load(sa, RULES_FMT_SA);
    const rules_stats *st = rules_get_stats(rs);
    rules_result r;
    double w;
    const char *d;

    (void)state;
    assert_int_equal(st->skipped_eval, 1);
    assert_true(st->skipped_other >= 1); /* the meta over the eval */
    assert_true(st->ignored_lines >= 2);
    assert_int_equal(rules_find(rs, "SA_NEVER"), -1);
    assert_int_equal(rules_find(rs, "SA_NOT_ELSE"), -1);
    rules_info(rs, (size_t)rules_find(rs, "SA_SUBJ"), &w, &d, NULL);
    assert_true(w == 2.5);
    assert_string_equal(d, "Says hello");
    rules_info(rs, (size_t)rules_find(rs, "SA_BODY"), &w, NULL, NULL);
    assert_true(w == 3.5); /* score set 2: Bayes, no network */
    r = scan(rs, construct_msg);
    assert_true(hit(rs, &r, "SA_SUBJ"));
    assert_true(hit(rs, &r, "SA_BODY"));
    assert_true(hit(rs, &r, "SA_META"));
    assert_true(hit(rs, &r, "SA_URI"));
    assert_true(hit(rs, &r, "SA_FULL"));
    assert_false(hit(rs, &r, "SA_MISSING"));
    assert_false(hit(rs, &r, "SA_EVAL"));
    assert_false(hit(rs, &r, "__SA_SUB"));
    rules_result_free(&r);
    rules_free(rs);
}

/* The Debian package's rule files: PCRE2 only here, so the ASan build
 * stays fast (bench/rules.sh measures the Hyperscan compile). */
static void test_sa_debian(void **state)
{
    rules_limits lim = {.pcre_only = 1};
    rules_set *rs = rules_new(&lim);
    const rules_stats *st;
    rules_result r;
    char err[512];
    glob_t g;
    size_t i;

    (void)state;
    if (glob("/usr/share/spamassassin/*.cf", 0, NULL, &g) != 0)
        fail_msg("no /usr/share/spamassassin/*.cf: install spamassassin");
    for (i = 0; i < g.gl_pathc; i++)
        assert_int_equal(rules_load_file(rs, g.gl_pathv[i], RULES_FMT_SA, err,
                                         sizeof(err)), 0);
    assert_int_equal(rules_compile(rs, err, sizeof(err)), 0);
    st = rules_get_stats(rs);
    printf("# SpamAssassin %zu files: %zu rules loaded, skipped: %zu eval:, "
           "%zu regex, %zu other (metas over skipped rules, SA pseudo-"
           "headers); %zu other directives ignored\n",
           g.gl_pathc, st->loaded, st->skipped_eval, st->skipped_regex,
           st->skipped_other, st->ignored_lines);
    globfree(&g);
    assert_true(st->loaded > 1000);
    assert_true(st->skipped_eval > 100);
    r = scan(rs, construct_msg);
    assert_true(r.nhits > 0);
    rules_result_free(&r);
    rules_free(rs);
}

/* ---------------------------------------------------------------- default */

static rules_set *load_default_lim(const rules_limits *lim)
{
    rules_set *rs = rules_new(lim);
    char err[512];
    glob_t g;
    size_t i;

    /* the shipped set: every file the pattern names (rules/NAME.rules) */
    assert_int_equal(glob(default_rules, 0, NULL, &g), 0);
    for (i = 0; i < g.gl_pathc; i++)
        if (rules_load_file(rs, g.gl_pathv[i], RULES_FMT_SLUICE, err,
                            sizeof(err)) != 0)
            fail_msg("%s", err);
    globfree(&g);
    if (rules_compile(rs, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return rs;
}

static rules_set *load_default(void)
{
    return load_default_lim(NULL);
}

static const char spam_msg[] =
    "Received: from mx.example.org by mail.example.net; Mon, 1 Dec 2025 07:00:00 +0000\r\n"
    "Received: from client by mx.example.org; Mon, 8 Dec 2025 07:00:00 +0000\r\n"
    "From: \"Bank\" <123456789@example.com>\r\n"
    "To: undisclosed-recipients:;\r\n"
    "Subject: VERIFY YOUR ACCOUNT NOW!!!\r\n"
    "Date: Mon, 1 Dec 2031 08:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b\"\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=koi8-r\r\n"
    "\r\n"
    "Dear customer, please verify your account today or it will be closed. "
    "Buy v1agra and F R E E meds, 100% guaranteed, click here now, "
    "this offer is only for our best customers and it is time limited.\r\n"
    "--b\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<html><head><style>p{color:red} td{padding:0} table{border:0}</style>"
    "<script>var a=1;var b=2;var c=3;</script>"
    "<style>.a{margin:0;padding:0;border:0;font-size:100%;font:inherit}"
    ".b{margin:0;padding:0;border:0;font-size:100%;font:inherit}"
    ".c{margin:0;padding:0;border:0;font-size:100%;font:inherit}</style>"
    "</script></head><body><div style=\"display:none\">hidden words</div>"
    "<a href=\"http://198.51.100.7/login\">https://www.mybank.com/login</a>"
    "<a href=\"http://user@evil.example/x.exe\">x</a>"
    "<table><tr><td></td><td></td><td></td><td></td><td></td><td></td></tr>"
    "<tr><td></td><td></td><td></td><td></td><td></td><td></td></tr></table>"
    "</body></html>\r\n"
    "--b--\r\n";

static const char ham_msg[] =
    "Received: from mx.example.org by mail.example.net; Mon, 1 Dec 2025 07:00:01 +0000\r\n"
    "Received: from laptop by mx.example.org; Mon, 1 Dec 2025 07:00:00 +0000\r\n"
    "From: Alice Example <alice@example.org>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Minutes of Tuesday's meeting\r\n"
    "Date: Mon, 1 Dec 2025 07:59:00 +0000\r\n"
    "Message-ID: <20251201075900.123@example.org>\r\n"
    "List-Id: <team.example.org>\r\n"
    "List-Unsubscribe: <mailto:leave@example.org>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hi Bob,\r\n\r\nattached are the minutes; the next meeting is on "
    "Thursday. See https://wiki.example.org/minutes for the agenda.\r\n";

static void test_known_messages(void **state)
{
    rules_set *rs = load_default();
    const char *want[] = {"SUBJ_EXCLAIM_RUN", "SUBJ_ALL_CAPS", "FROM_NO_NAME_DIGITS",
                          "TO_UNDISCLOSED", "BODY_CLICK_HERE", "BODY_GUARANTEE",
                          "BODY_DEAR_FRIEND", "BODY_VERIFY_ACCOUNT",
                          "HTML_HIDDEN_TEXT", "URI_IP_HOST", "URI_AT_SIGN",
                          "URI_EXE", "HTML_MOSTLY_TAGS", "OBFUSCATED_WORDS",
                          "DATE_IN_FUTURE", "RCVD_FORGED", "LINK_MISMATCH",
                          "CHARSET_MISMATCH", "MISSING_MESSAGE_ID",
                          "PHISH_LINK_ACCOUNT", "MANY_SPAM_SIGNS",
                          "SUBJ_URGENT_ACCOUNT"};
    rules_result r;
    size_t i;
    double sum = 0;

    (void)state;
    r = scan(rs, spam_msg);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!hit(rs, &r, want[i]))
            fail_msg("spam: %s did not hit", want[i]);
    for (i = 0; i < r.nhits; i++)
        sum += r.hits[i].weight;
    assert_true(fabs(sum - r.score) < 1e-9);
    assert_true(r.score > 15);
    rules_result_free(&r);

    r = scan(rs, ham_msg);
    for (i = 0; i < r.nhits; i++)
        if (r.hits[i].weight > 0)
            fail_msg("ham: %s hit",
                     rules_info(rs, r.hits[i].rule, NULL, NULL, NULL));
    assert_true(hit(rs, &r, "LIST_MAIL"));
    assert_true(r.score < 0);
    rules_result_free(&r);
    rules_free(rs);
}

/* The three matching set-ups agree: Hyperscan + PCRE2, Hyperscan
 * prefiltering for PCRE2, PCRE2 alone. */
static void test_engines_agree(void **state)
{
    rules_limits lims[3] = {{.pcre_only = 0}, {.prefilter = 1},
                            {.pcre_only = 1}};
    const char *msgs[3] = {spam_msg, ham_msg, construct_msg};
    double scores[3][3];
    size_t nhits[3][3], l, m;

    (void)state;
    for (l = 0; l < 3; l++) {
        rules_set *rs = load_default_lim(&lims[l]);
        for (m = 0; m < 3; m++) {
            rules_result r = scan(rs, msgs[m]);
            scores[l][m] = r.score;
            nhits[l][m] = r.nhits;
            rules_result_free(&r);
        }
        if (l == 1)
            assert_true(rules_get_stats(rs)->prefiltered >= 1);
        rules_free(rs);
    }
    for (l = 1; l < 3; l++)
        for (m = 0; m < 3; m++) {
            assert_true(fabs(scores[l][m] - scores[0][m]) < 1e-9);
            assert_int_equal(nhits[l][m], nhits[0][m]);
        }
}

static void test_probability(void **state)
{
    (void)state;
    assert_true(fabs(rules_probability(5, 5, 1.5) - 0.5) < 1e-9);
    assert_true(rules_probability(0, 5, 1.5) < 0.05);
    assert_true(rules_probability(10, 5, 1.5) > 0.95);
    assert_true(fabs(rules_probability(7.3, 5, 1.5) - 0.8227) < 0.001);
    assert_true(rules_probability(-1000, 5, 1.5) >= 0);
    assert_true(rules_probability(1000, 5, 1.5) <= 1);
    assert_true(rules_probability(6, 5, 1) > rules_probability(6, 5, 2));
}

static void test_html_text(void **state)
{
    const char html[] = "<p>Hello&nbsp;<b>W</b>orld &amp; &#65;&#x42;</p>"
                        "<script>hidden()</script><!-- c --><a href='http://x.example/'>"
                        "link</a>";
    rules_view v;
    size_t n;
    char *t;

    (void)state;
    memset(&v, 0, sizeof(v));
    t = rules_html_text(html, strlen(html), 1000, &n, &v);
    assert_non_null(t);
    assert_string_equal(t, "Hello World & AB link");
    assert_int_equal(v.nlinks, 1);
    assert_string_equal(v.links[0].text, "link");
    assert_string_equal(v.links[0].href, "http://x.example/");
    free(t);
    rules_view_free(&v);
}

/* ---------------------------------------------------------------- evals */

/* The structural built-ins of rules_eval.c: each hits the message written
 * to show its sign and misses the look-alike legitimate one. */
static const char eval_rules[] =
    "eval E_HTML_ONLY 1 \"d\" html_only()\n"
    "eval E_NO_TEXT 1 \"d\" mime_no_text()\n"
    "eval E_IMG_ONLY 1 \"d\" image_only_html(200)\n"
    "eval E_ALT 1 \"d\" alternative_mismatch(0.3)\n"
    "eval E_CAPS 1 \"d\" body_caps_ratio(50, 200)\n"
    "eval E_EXCL 1 \"d\" exclaim_density(5, 4)\n"
    "eval E_MONEY 1 \"d\" money_density(4, 3)\n"
    "eval E_HIDDEN 1 \"d\" html_color_hidden(200)\n"
    "eval E_FROM_NAME 1 \"d\" from_name_address()\n"
    "eval E_REPLYTO 1 \"d\" reply_to_other_domain()\n"
    "eval E_SUBJ_ID 1 \"d\" subject_trailing_id(5)\n"
    "eval E_RCPT 1 \"d\" many_recipients(15)\n"
    "eval E_HELO 1 \"d\" helo_ip_mismatch()\n";

#define EV_HDRS                                                              \
    "From: Ann <ann@example.org>\r\nTo: bob@example.net\r\n"                   \
    "Subject: hello\r\nDate: Mon, 1 Dec 2025 08:00:00 +0000\r\n"               \
    "Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n"
#define EV_PLAIN EV_HDRS "Content-Type: text/plain\r\n\r\n"
#define EV_HTML EV_HDRS "Content-Type: text/html\r\n\r\n"
#define EV_ALT(plain, html)                                                  \
    EV_HDRS "Content-Type: multipart/alternative; boundary=b\r\n\r\n"          \
            "--b\r\nContent-Type: text/plain\r\n\r\n" plain "\r\n"             \
            "--b\r\nContent-Type: text/html\r\n\r\n" html "\r\n--b--\r\n"
#define EV_WORDS_A                                                           \
    "the quarterly meeting moved to thursday afternoon because several "     \
    "people travel that week please bring the budget figures and your "      \
    "notes about hiring plans for next spring we also review office moves"
#define EV_WORDS_B                                                           \
    "cheap replica watches discount genuine leather handbags shipped "       \
    "worldwide order today limited stock exclusive offer members receive "   \
    "bonus gifts secure checkout satisfaction guaranteed visit store"
#define EV_LETTERS                                                           \
    "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "  \
    "tempor incididunt ut labore et dolore magna aliqua Ut enim ad minim "   \
    "veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex "   \
    "ea commodo consequat Duis aute irure dolor in reprehenderit in volup"
#define EV_CAPS_TEXT                                                         \
    "ACT NOW AND CLAIM YOUR FREE BONUS BEFORE THE OFFER ENDS THIS IS A "     \
    "LIMITED TIME PROMOTION FOR SELECTED CUSTOMERS ONLY DO NOT MISS OUT ON " \
    "THE DEAL OF THE YEAR REPLY TODAY TO RECEIVE YOUR REWARD AND SAVE BIG "  \
    "ON EVERYTHING WE SELL"
#define EV_GIF                                                               \
    "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n"       \
    "Content-Disposition: inline\r\n\r\nR0lGODlhAQABAAAAACw=\r\n"
#define EV_RCVD(from)                                                        \
    "Received: from " from " by mx.example.net with ESMTP id 1;"            \
    " Mon, 1 Dec 2025 08:00:05 +0000\r\n"

static const struct {
    const char *rule, *pos, *neg;
} eval_cases[] = {
    {"E_HTML_ONLY", EV_HTML "<p>Hello there, friend</p>",
     EV_ALT("Hello there, friend", "<p>Hello there, friend</p>")},
    {"E_NO_TEXT",
     EV_HDRS "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n" EV_GIF
             "--m--\r\n",
     EV_HDRS "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
             "Content-Type: text/plain\r\n\r\nSee the picture.\r\n--m\r\n" EV_GIF
             "--m--\r\n"},
    {"E_IMG_ONLY", EV_HTML "<p><img src=\"http://img.example.com/a.gif\">Hi</p>",
     EV_HTML "<p><img src=\"http://img.example.com/a.gif\">" EV_LETTERS
             "</p>"},
    {"E_ALT", EV_ALT(EV_WORDS_A, "<p>" EV_WORDS_B "</p>"),
     EV_ALT(EV_WORDS_A, "<p><b>" EV_WORDS_A "</b></p>")},
    {"E_CAPS", EV_PLAIN EV_CAPS_TEXT " " EV_CAPS_TEXT "\r\n", EV_PLAIN EV_LETTERS "\r\n"},
    {"E_EXCL", EV_PLAIN "Buy now! Great! Wow! Yes! Act fast! Hurry!\r\n",
     EV_PLAIN "Great news! " EV_LETTERS " Thanks!\r\n"},
    {"E_MONEY", EV_PLAIN "Win $100, $ 200, $5,000, 30 USD or \xc2\xa3" "30!\r\n",
     EV_PLAIN "The lunch was $10 each. " EV_LETTERS "\r\n"},
    {"E_HIDDEN",
     EV_HTML "<body bgcolor=\"#FFFFFF\"><p>Hello</p><font color=\"#fffffe\">"
             EV_LETTERS "</font></body>",
     EV_HTML "<table><tr><td bgcolor=\"#003366\"><font color=\"#ffffff\">"
             EV_LETTERS "</font></td></tr></table>"},
    {"E_FROM_NAME",
     "From: \"service@paypal.com\" <x@bad.example>\r\n" EV_PLAIN "Hi\r\n",
     "From: \"ann@example.org\" <ann@mail.example.org>\r\n" EV_PLAIN "Hi\r\n"},
    {"E_REPLYTO", "Reply-To: <drop@other.example>\r\n" EV_PLAIN "Hi\r\n",
     "Reply-To: Ann <ann@lists.example.org>\r\n" EV_PLAIN "Hi\r\n"},
    {"E_SUBJ_ID", "Subject: Your offer inside          KX83jd2\r\n" EV_PLAIN "Hi\r\n",
     "Subject: Re: ticket   [#4521]\r\n" EV_PLAIN "Hi\r\n"},
    {"E_RCPT",
     "To: a@x.example, b@x.example, c@x.example, d@x.example, e@x.example,"
     " f@x.example, g@x.example, h@x.example\r\nCc: i@x.example, j@x.example,"
     " k@x.example, l@x.example, m@x.example, n@x.example, o@x.example\r\n"
     EV_PLAIN "Hi\r\n",
     "To: \"a@b, c@d, e@f, g@h, i@j, k@l, m@n, o@p\" <team@x.example>\r\n"
     EV_PLAIN "Hi\r\n"},
    {"E_HELO", EV_RCVD("203.0.113.9 (unknown [198.51.100.4])") EV_PLAIN "Hi\r\n",
     EV_RCVD("mail.example.org (mail.example.org [203.0.113.9])")
     EV_RCVD("203.0.113.9 (unknown [203.0.113.9])")
     EV_RCVD("[192.168.1.5] (dsl.example.net [198.51.100.4])")
     EV_RCVD("[203.0.113.9] (helo=[203.0.113.9])") EV_PLAIN "Hi\r\n"},
};

/* Negatives that need more than one message. */
static const struct {
    const char *rule, *msg;
} eval_more_neg[] = {
    /* a style sheet may set the page's background: white text unjudged */
    {"E_HIDDEN", EV_HTML "<style>body { background: #222 }</style>"
                 "<font color=white>" EV_LETTERS "</font>"},
    /* white on a dark cell, then ordinary text after the cell closed */
    {"E_HIDDEN", EV_HTML "<table><tr><td style=\"background-color:#000\">"
                 "<span style=\"color: #FFF\">Sale</span></td></tr></table>"
                 "<p>" EV_LETTERS "</p>"},
    {"E_HIDDEN", EV_HTML "<td background=\"bg.jpg\"><font color=#ffffff>"
                 EV_LETTERS "</font></td>"},
    {"E_SUBJ_ID", "Subject: Meeting at 10\r\n" EV_PLAIN "Hi\r\n"},
    {"E_FROM_NAME", EV_PLAIN "Hi\r\n"},
    /* the receiving host's address after "by" is not the client's */
    {"E_HELO", "Received: from 203.0.113.9 (unknown [203.0.113.9]) by"
               " mx.example.net ([198.51.100.1]); Mon, 1 Dec 2025 08:00:05"
               " +0000\r\n" EV_PLAIN "Hi\r\n"},
    {"E_NO_TEXT", EV_PLAIN ""},
};

/* Positives that need more than one message. */
static const struct {
    const char *rule, *msg;
} eval_more_pos[] = {
    {"E_HIDDEN", EV_HTML "<div style=\"background:#000000\"><p>x</p>"
                 "<span style='color:rgb(0, 0, 0)'>" EV_LETTERS "</span></div>"},
    {"E_HELO", EV_RCVD("[198.51.100.4] (helo=203.0.113.9)") EV_PLAIN "Hi\r\n"},
    {"E_HELO", EV_RCVD("[203.0.113.9] (host.example [198.51.100.4])")
               EV_PLAIN "Hi\r\n"},
    {"E_HTML_ONLY", EV_ALT("", "<p>" EV_LETTERS "</p>")},
};

static void eval_expect(rules_set *rs, const char *rule, const char *msg,
                        int want, const char *what, size_t i)
{
    rules_result r = scan(rs, msg);
    int got = hit(rs, &r, rule);

    rules_result_free(&r);
    if (got != want)
        fail_msg("%s: %s case %zu %s", rule, what, i,
                 want ? "did not hit" : "hit");
}

static void test_evals(void **state)
{
    rules_set *rs = load(eval_rules, RULES_FMT_SLUICE);
    char err[512];
    size_t i;

    (void)state;
    ext_syms[0] = NULL;
    for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        eval_expect(rs, eval_cases[i].rule, eval_cases[i].pos, 1, "positive", i);
        eval_expect(rs, eval_cases[i].rule, eval_cases[i].neg, 0, "negative", i);
    }
    for (i = 0; i < sizeof(eval_more_neg) / sizeof(eval_more_neg[0]); i++)
        eval_expect(rs, eval_more_neg[i].rule, eval_more_neg[i].msg, 0,
                    "extra negative", i);
    for (i = 0; i < sizeof(eval_more_pos) / sizeof(eval_more_pos[0]); i++)
        eval_expect(rs, eval_more_pos[i].rule, eval_more_pos[i].msg, 1,
                    "extra positive", i);
    rules_free(rs);
    /* argument checks of the new functions */
    {
        static const struct {
            const char *text, *want;
        } bad[] = {
            {"eval X 1 \"d\" body_caps_ratio(50)\n", "takes two numbers"},
            {"eval X 1 \"d\" exclaim_density(5,)\n", "takes two numbers"},
            {"eval X 1 \"d\" money_density(, 3)\n", "takes two numbers"},
            {"eval X 1 \"d\" image_only_html(-1)\n", "takes numbers >= 0"},
            {"eval X 1 \"d\" money_density(1, inf)\n", "takes numbers >= 0"},
            {"eval X 1 \"d\" html_only(1)\n", "takes no argument"},
            {"eval X 1 \"d\" many_recipients()\n", "takes a number"},
        };
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            rs = rules_new(NULL);
            err[0] = '\0';
            assert_int_equal(rules_load_buffer(rs, "t.rules", bad[i].text,
                                               strlen(bad[i].text),
                                               RULES_FMT_SLUICE, err,
                                               sizeof(err)),
                             -1);
            if (strstr(err, bad[i].want) == NULL)
                fail_msg("arg case %zu: got \"%s\"", i, err);
            rules_free(rs);
        }
    }
}

/* ---------------------------------------------------------------- URIs */

static int view_has_uri(const rules_view *v, const char *u)
{
    size_t i;

    for (i = 0; i < v->nuris; i++)
        if (strcmp(v->uris[i], u) == 0)
            return 1;
    return 0;
}

/* Every place a link hides in: each source yields its URI in the view,
 * entity-decoded; attributes that are no URI yield nothing. */
static void test_uri_sources(void **state)
{
    static const char msg[] = EV_ALT(
        "Write to mailto:off@list.example?subject=remove today, not to"
        " mailto: alone nor automailto:no@x.example.",
        "<html><head><base href=\"http://base.example/\">"
        "<meta http-equiv=\"Refresh\" content=\"0; URL='http://meta.example/d'\">"
        "<meta name=\"description\" content=\"url=http://desc.example/\">"
        "<link rel=\"stylesheet\" href=\"http://link.example/s.css\">"
        "<style>body { background: url('http://sheet.example/g.png') }"
        "</style></head><body>"
        "<iframe src=\"http://if.example/a\"></iframe>"
        "<frameset><frame src=\"http://fr.example/b\"></frameset>"
        "<map><area href=\"http://ar.example/c\" coords=\"0,0,1,1\"></map>"
        "<table><tr><td background=\"http://bg.example/e.jpg\""
        " title=\"http://title.example/\">x</td></tr></table>"
        "<div style=\"background-image: url(&quot;http://css.example/f.png"
        "&quot;)\">y</div>"
        "<a href=\"&#104;ttp://198.51.100.7/\">num</a>"
        "<a href=\"http://q.example/?a=1&amp;b=&#x2f;\">amp</a>"
        "</body></html>");
    static const char *const want[] = {
        "mailto:off@list.example?subject=remove", "http://base.example/",
        "http://meta.example/d", "http://sheet.example/g.png",
        "http://if.example/a", "http://fr.example/b", "http://ar.example/c",
        "http://bg.example/e.jpg", "http://css.example/f.png",
        "http://198.51.100.7/", "&#104;ttp://198.51.100.7/",
        "http://q.example/?a=1&b=/",
        "http://q.example/?a=1&amp;b=&#x2f"}; /* as written: it has &# */
    static const char *const not_want[] = {
        "http://desc.example/", "http://link.example/s.css",
        "http://title.example/", "mailto:", "mailto:no@x.example"};
    mime_msg *m = mime_parse((const unsigned char *)msg, strlen(msg), NULL);
    rules_limits lim = {.max_text = 262144, .max_uris = 200};
    rules_view v;
    size_t i;

    (void)state;
    assert_non_null(m);
    mimeview_init(&v, m, msg, strlen(msg), 1764580000);
    assert_int_equal(rules_view_build(&v, &lim), 0);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!view_has_uri(&v, want[i]))
            fail_msg("URI %s missing", want[i]);
    for (i = 0; i < sizeof(not_want) / sizeof(not_want[0]); i++)
        if (view_has_uri(&v, not_want[i]))
            fail_msg("URI %s should not be there", not_want[i]);
    assert_int_equal(v.nuris, sizeof(want) / sizeof(want[0]));
    /* the link keeps the decoded href, for the link-mismatch test */
    assert_int_equal(v.nlinks, 2);
    assert_string_equal(v.links[0].href, "http://198.51.100.7/");
    rules_view_free(&v);
    mime_free(m);
}

/* Hostile attribute values: entities cut short, out of range, unclosed
 * url( and quotes stay within the value. */
static void test_uri_hostile(void **state)
{
    const char html[] =
        "<a href=\"&#;&#x;&#9999999999;&#xzz;&unknown;&\">a</a>"
        "<div style=\"url(\"></div><style>p{background:url('http://s.example/"
        "</style><p>after</p><meta http-equiv=refresh content=\"url='x\">";
    rules_view v;
    size_t n;
    char *t;

    (void)state;
    memset(&v, 0, sizeof(v));
    t = rules_html_text(html, strlen(html), 1000, &n, &v);
    assert_non_null(t);
    assert_non_null(strstr(t, "after")); /* </style> was not skipped */
    assert_true(view_has_uri(&v, "http://s.example/"));
    assert_int_equal(v.nlinks, 1);
    /* raw (it has &#) and decoded: U+FFFD for each bad number */
    assert_true(view_has_uri(&v, "&#;&#x;&#9999999999;&#xzz;"
                                 "&unknown;&"));
    assert_string_equal(v.links[0].href,
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "&unknown;&");
    free(t);
    rules_view_free(&v);
}

/* ---------------------------------------------------------------- stage */

static struct {
    mime_msg *msg;
    const char *raw;
    char syms[32][64];
    double scores[32];
    size_t nsym;
    char hdr[3][2][256];
    int nhdr;
} H;

static void f_vlog(sluice_ctx *c, sluice_txn *t, int l, const char *f,
                   va_list ap) SLUICE_PRINTF(4, 0);
static void f_log(sluice_ctx *c, sluice_txn *t, int l, const char *f, ...)
    SLUICE_PRINTF(4, 5);
static void f_vlog(sluice_ctx *c, sluice_txn *t, int l, const char *f,
                   va_list ap)
{
    (void)c, (void)t, (void)l, (void)f, (void)ap;
}
static void f_log(sluice_ctx *c, sluice_txn *t, int l, const char *f, ...)
{
    (void)c, (void)t, (void)l, (void)f;
}
static size_t f_hcount(sluice_txn *t) { (void)t; return mime_header_count(H.msg); }
static const sluice_header *f_hdr(sluice_txn *t, size_t i) { (void)t; return mime_header(H.msg, i); }
static size_t f_pcount(sluice_txn *t) { (void)t; return mime_part_count(H.msg); }
static const sluice_part *f_part(sluice_txn *t, size_t i) { (void)t; return mime_part(H.msg, i); }
static int f_message(sluice_txn *t, sluice_str *o)
{
    (void)t;
    o->ptr = H.raw;
    o->len = strlen(H.raw);
    return 0;
}
static const sluice_addr *f_sender(sluice_txn *t)
{
    static const sluice_addr a = {sizeof(sluice_addr), "x@example.org", ""};
    (void)t;
    return &a;
}
static void f_symbol_add(sluice_txn *t, const char *name, double score,
                         const char *fmt, ...)
{
    (void)t, (void)fmt;
    if (H.nsym < 32) {
        snprintf(H.syms[H.nsym], 64, "%s", name);
        H.scores[H.nsym++] = score;
    }
}
static size_t f_symcount(sluice_txn *t) { (void)t; return H.nsym; }
static const char *f_symbol(sluice_txn *t, size_t i, double *score,
                            const char **reason)
{
    (void)t;
    if (i >= H.nsym)
        return NULL;
    if (score)
        *score = H.scores[i];
    if (reason)
        *reason = "";
    return H.syms[i];
}
static double f_score(sluice_txn *t)
{
    double s = 0;
    size_t i;
    (void)t;
    for (i = 0; i < H.nsym; i++)
        s += H.scores[i];
    return s;
}
static int f_header_add(sluice_txn *t, const char *n, const char *v)
{
    (void)t;
    if (H.nhdr < 3) {
        snprintf(H.hdr[H.nhdr][0], 256, "%s", n);
        snprintf(H.hdr[H.nhdr][1], 256, "%s", v);
        H.nhdr++;
    }
    return 0;
}
static void f_counter(sluice_ctx *c, const char *n, long long v)
{
    (void)c, (void)n, (void)v;
}

static sluice_host host = {
    .size = sizeof(sluice_host),
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .log = f_log,
    .vlog = f_vlog,
    .sender = f_sender,
    .message = f_message,
    .header_count = f_hcount,
    .header = f_hdr,
    .part_count = f_pcount,
    .part = f_part,
    .symbol_add = f_symbol_add,
    .symbol_count = f_symcount,
    .symbol = f_symbol,
    .score = f_score,
    .header_add = f_header_add,
    .counter_add = f_counter,
};

static void test_stage(void **state)
{
    void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    const sluice_stage *st;
    const sluice_directive *d;
    char *conf, *rules_list[2] = {(char *)default_rules, NULL};
    void *inst = NULL;

    (void)state;
    assert_non_null(dl);
    st = dlsym(dl, SLUICE_STAGE_SYMBOL_NAME);
    assert_non_null(st);
    assert_string_equal(st->name, "heuristic");
    conf = calloc(1, st->conf_size);
    for (d = st->directives; d->name != NULL; d++) {
        void *f = conf + d->offset;
        if (strcmp(d->name, "rules") == 0)
            *(char ***)f = rules_list;
        else if (d->type == SLUICE_CONF_DOUBLE)
            *(double *)f = strtod(d->dflt, NULL);
        else if (d->type == SLUICE_CONF_BOOL)
            *(int *)f = 1;
        else if (d->type == SLUICE_CONF_INT)
            *(long long *)f = atoll(d->dflt);
        else if (d->type == SLUICE_CONF_SIZE)
            *(size_t *)f = 262144;
    }
    assert_int_equal(st->init(NULL, &host, conf, &inst), 0);
    assert_int_equal(st->worker_start(inst), 0);
    memset(&H, 0, sizeof(H));
    H.raw = spam_msg;
    H.msg = mime_parse((const unsigned char *)spam_msg, strlen(spam_msg), NULL);
    /* a symbol from an earlier stage counts in the score */
    snprintf(H.syms[0], 64, "BAYES_99");
    H.scores[0] = 4;
    H.nsym = 1;
    assert_int_equal(st->on_phase[SLUICE_PHASE_EOM](inst, NULL, NULL),
                     SLUICE_CONTINUE);
    assert_true(H.nsym > 10);
    assert_int_equal(H.nhdr, 3);
    assert_string_equal(H.hdr[0][0], "X-Sluice-Score");
    assert_true(strtod(H.hdr[0][1], NULL) > 19);
    assert_string_equal(H.hdr[1][0], "X-Sluice-Probability");
    assert_string_equal(H.hdr[1][1], "100%");
    assert_string_equal(H.hdr[2][0], "X-Sluice-Symbols");
    assert_non_null(strstr(H.hdr[2][1], "BAYES_99(4.0)"));
    mime_free(H.msg);

    memset(&H, 0, sizeof(H));
    H.raw = ham_msg; /* dated against its Received field, not the clock */
    H.msg = mime_parse((const unsigned char *)H.raw, strlen(H.raw), NULL);
    st->on_phase[SLUICE_PHASE_EOM](inst, NULL, NULL);
    assert_string_equal(H.hdr[0][1], "-0.5");
    assert_string_equal(H.hdr[1][1], "2%");
    mime_free(H.msg);
    st->fini(inst);
    free(conf);
    dlclose(dl);
}

/* ---------------------------------------------------------------- corpus */

static size_t corpus_scan_dir(rules_set *rs, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL || depth > 6) {
        if (d)
            closedir(d);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char p[4096], *buf;
        struct stat stt;
        FILE *fp;
        size_t len;
        rules_result r;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &stt) < 0)
            continue;
        if (S_ISDIR(stt.st_mode)) {
            n += corpus_scan_dir(rs, p, depth + 1);
            continue;
        }
        if (!S_ISREG(stt.st_mode) || (fp = fopen(p, "rb")) == NULL)
            continue;
        buf = malloc((size_t)stt.st_size + 1);
        assert_non_null(buf);
        len = fread(buf, 1, (size_t)stt.st_size, fp);
        buf[len] = '\0';
        fclose(fp);
        r = scan(rs, buf); /* messages with NUL bytes: scanned up to it */
        rules_result_free(&r);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void test_corpus(void **state)
{
    rules_set *rs;
    size_t n;

    (void)state;
    if (corpus == NULL) {
        skip();
        return;
    }
    rs = load_default();
    n = corpus_scan_dir(rs, corpus, 0);
    printf("# corpus: %zu messages scanned with the default rules\n", n);
    assert_true(n > 0);
    rules_free(rs);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_construct),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sa_constructs),
        cmocka_unit_test(test_sa_debian),
        cmocka_unit_test(test_known_messages),
        cmocka_unit_test(test_engines_agree),
        cmocka_unit_test(test_probability),
        cmocka_unit_test(test_html_text),
        cmocka_unit_test(test_evals),
        cmocka_unit_test(test_uri_sources),
        cmocka_unit_test(test_uri_hostile),
        cmocka_unit_test(test_stage),
        cmocka_unit_test(test_corpus),
    };

    if (argc < 3) {
        fprintf(stderr, "usage: test_heuristic RULES_GLOB HEURISTIC.so "
                        "[CORPUS]\n");
        return 2;
    }
    default_rules = argv[1];
    so_path = argv[2];
    corpus = argc > 3 ? argv[3] : NULL;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
