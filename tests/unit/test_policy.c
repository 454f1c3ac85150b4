/*
 * test_policy.c - the policy language (plugins/policy/plang.c) and the
 * allow/block lists in memory (plist.c), table-driven: scripts against
 * messages' facts with the expected action, edits and text; scripts with
 * syntax errors and the line:column they must report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pact.h"
#include "plang.h"
#include "plist.h"

extern const char policy_default_script[];

/* ---------------------------------------------------------------- facts */

typedef struct tmsg {
    const char *headers[8][2]; /* name, value */
    const char *sender;
    const char *rcpts[4];
    const char *client;
    double score;
    const char *syms[4];
    double symscore[4];
    size_t size;
    int allow, block;
} tmsg;

static const char *t_header(void *arg, const char *name, size_t nth)
{
    const tmsg *m = arg;

    for (size_t i = 0; i < 8 && m->headers[i][0]; i++)
        if (strcasecmp(m->headers[i][0], name) == 0 && nth-- == 0)
            return m->headers[i][1];
    return NULL;
}

static const char *t_rcpt(void *arg, size_t i)
{
    return ((const tmsg *)arg)->rcpts[i];
}

static const char *t_symbol(void *arg, size_t i, double *score)
{
    const tmsg *m = arg;

    *score = m->symscore[i];
    return m->syms[i];
}

static int t_listed(void *arg, const char *kind)
{
    const tmsg *m = arg;

    return strcmp(kind, "allow") == 0 ? m->allow : m->block;
}

static void t_facts(const tmsg *m, plang_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->arg = (void *)m;
    f->header = t_header;
    f->sender = m->sender ? m->sender : "";
    while (f->nrcpt < 4 && m->rcpts[f->nrcpt])
        f->nrcpt++;
    f->rcpt = t_rcpt;
    f->client_addr = m->client ? m->client : "";
    f->score = m->score;
    while (f->nsym < 4 && m->syms[f->nsym])
        f->nsym++;
    f->symbol = t_symbol;
    f->size = m->size;
    f->listed = t_listed;
}

static const tmsg msg_plain = {
    .headers = {{"From", "\"Alice\" <alice+news@Example.COM>"},
                {"To", "bob@example.org, carol@example.net"},
                {"Subject", "Quarterly report"},
                {"Received", "from a"},
                {"Received", "from b"}},
    .sender = "alice+news@example.com",
    .rcpts = {"bob@example.org", "carol@example.net"},
    .client = "192.0.2.10",
    .score = 3.5,
    .syms = {"BAYES_50", "DNSBL_SPAMHAUS"},
    .symscore = {0.0, 2.5},
    .size = 2048,
};

static const tmsg msg_spam = {
    .headers = {{"From", "x@spam.test"},
                {"Subject", "Buy now"},
                {"X-Sluice-Spam", "forged"}},
    .sender = "x@spam.test",
    .rcpts = {"bob@example.org"},
    .client = "203.0.113.5",
    .score = 7,
    .syms = {"BAYES_99", "URIBL_BLACK", "HTML_ONLY"},
    .symscore = {4, 3, 0.5},
    .size = 500000,
};

static const tmsg msg_high = {
    .headers = {{"Subject", "x"}},
    .sender = "x@spam.test",
    .rcpts = {"bob@example.org"},
    .client = "10.1.2.3",
    .score = 20,
};

static const tmsg msg_allow = {.sender = "friend@partner.test",
                               .rcpts = {"bob@example.org"},
                               .client = "198.51.100.1",
                               .score = 30,
                               .allow = 1};

static const tmsg msg_block = {.sender = "foe@bad.test",
                               .rcpts = {"bob@example.org"},
                               .client = "198.51.100.2",
                               .score = 0,
                               .block = 1};

#define R(x)                                                                   \
    "require [\"sluice\", \"variables\", \"editheader\", "                     \
    "\"relational\", \"reject\", \"envelope\", \"subaddress\", "               \
    "\"enotify\", \"comparator-i;ascii-numeric\"];\n" x

typedef struct tcase {
    const char *name;
    const char *script;
    const tmsg *msg;
    plang_action action;
    const char *text;  /* expected text, or NULL: any */
    const char *edits; /* expected edits "op:name=value|...", or NULL: any */
} tcase;

static const tcase cases[] = {
    /* core */
    {"empty is implicit keep", "", &msg_plain, PLANG_KEEP, "", ""},
    {"comments", "# hash\n/* bracket\n comment */ keep;", &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"discard", "discard;", &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"stop ends", R("stop; discard;"), &msg_plain, PLANG_KEEP, NULL, NULL},
    {"last action wins", R("discard; keep;"), &msg_plain, PLANG_KEEP, NULL,
     NULL},
    {"true/false",
     "if false { discard; } elsif true { stop; } else { discard; }", &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"else taken", "if false { discard; } else { discard; }", &msg_plain,
     PLANG_DISCARD, NULL, NULL},
    {"not", "if not false { discard; }", &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"allof", "if allof (true, false) { discard; }", &msg_plain, PLANG_KEEP,
     NULL, NULL},
    {"anyof", "if anyof (false, true) { discard; }", &msg_plain, PLANG_DISCARD,
     NULL, NULL},
    {"header :is casemap",
     "if header :is \"subject\" \"QUARTERLY REPORT\" "
     "{ discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"header :is octet",
     "if header :comparator \"i;octet\" :is \"subject\" "
     "\"QUARTERLY REPORT\" { discard; }",
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"header :contains list",
     "if header :contains [\"to\", \"cc\"] "
     "[\"nobody\", \"carol\"] { discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"header :matches",
     "if header :matches \"subject\" \"*ter?y*\" "
     "{ discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"header :matches escaped",
     "if header :matches \"subject\" \"\\\\*\" "
     "{ discard; }",
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"header missing", "if header :contains \"x-none\" \"\" { discard; }",
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"exists", "if exists [\"from\", \"subject\"] { discard; }", &msg_plain,
     PLANG_DISCARD, NULL, NULL},
    {"exists not all", "if exists [\"from\", \"x-nope\"] { discard; }",
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"size over", "if size :over 1K { discard; }", &msg_plain, PLANG_DISCARD,
     NULL, NULL},
    {"size under", "if size :under 1K { discard; }", &msg_plain, PLANG_KEEP,
     NULL, NULL},
    {"size M", "if size :over 1M { discard; }", &msg_spam, PLANG_KEEP, NULL,
     NULL},
    {"address :domain",
     "if address :domain :is \"from\" \"example.com\" "
     "{ discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"address :localpart",
     "if address :localpart \"from\" \"alice+news\" "
     "{ discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"address list header",
     "if address :all :is \"to\" \"carol@example.net\" "
     "{ discard; }",
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"subaddress :user", R("if address :user \"from\" \"alice\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"subaddress :detail",
     R("if address :detail \"from\" \"news\" "
       "{ discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"envelope from",
     R("if envelope :domain \"from\" \"example.com\" "
       "{ discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"envelope to",
     R("if envelope :is \"to\" \"carol@example.net\" "
       "{ discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"relational :count",
     R("if header :count \"ge\" :comparator "
       "\"i;ascii-numeric\" \"received\" \"2\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"relational :count lt",
     R("if header :count \"lt\" \"received\" \"2\" "
       "{ discard; }"),
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"relational :value",
     R("if header :value \"gt\" \"subject\" \"P\" "
       "{ discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"envelope :count",
     R("if envelope :count \"eq\" \"to\" \"2\" { discard; }"), &msg_plain,
     PLANG_DISCARD, NULL, NULL},
    /* sluice tests */
    {"score ge", R("if score :value \"ge\" \"5\" { discard; }"), &msg_spam,
     PLANG_DISCARD, NULL, NULL},
    {"score ge no", R("if score :value \"ge\" \"5\" { discard; }"), &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"sluice_score", R("if sluice_score :value \"lt\" \"3.6\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"score :over number", R("if score :over 6 { discard; }"), &msg_spam,
     PLANG_DISCARD, NULL, NULL},
    {"score :under", R("if score :under \"3\" { discard; }"), &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"score variable",
     R("set \"t\" \"3\"; if score :value \"gt\" \"${t}\" "
       "{ discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"symbol", R("if symbol \"BAYES_99\" { discard; }"), &msg_spam,
     PLANG_DISCARD, NULL, NULL},
    {"symbol absent", R("if symbol \"BAYES_99\" { discard; }"), &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"symbol :matches", R("if symbol :matches \"DNSBL_*\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"symbol :count", R("if symbol :count \"ge\" \"3\" { discard; }"),
     &msg_spam, PLANG_DISCARD, NULL, NULL},
    {"list block", R("if list \"block\" { reject \"go away\"; }"), &msg_block,
     PLANG_REJECT, "go away", NULL},
    {"list allow", R("if list \"allow\" { keep; stop; } discard;"), &msg_allow,
     PLANG_KEEP, NULL, NULL},
    {"list not", R("if list [\"allow\", \"block\"] { discard; }"), &msg_plain,
     PLANG_KEEP, NULL, NULL},
    {"client :cidr",
     R("if client :cidr [\"10.0.0.0/8\", \"2001:db8::/32\"] "
       "{ discard; }"),
     &msg_high, PLANG_DISCARD, NULL, NULL},
    {"client :cidr no", R("if client :cidr \"10.0.0.0/8\" { discard; }"),
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"client :cidr /32", R("if address_in \"192.0.2.10\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"client :matches", R("if client :matches \"192.0.2.*\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    {"direction outbound", R("if direction \"outbound\" { discard; }"),
     &msg_high, PLANG_DISCARD, NULL, NULL},
    {"direction inbound", R("if direction \"inbound\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
    /* actions */
    {"reject text", R("reject \"no thanks\";"), &msg_plain, PLANG_REJECT,
     "no thanks", NULL},
    {"reject multiline", R("reject text:\nline one\n..dot\n.\n;"), &msg_plain,
     PLANG_REJECT, "line one\n.dot\n", NULL},
    {"tempfail", R("tempfail \"later\";"), &msg_plain, PLANG_TEMPFAIL, "later",
     NULL},
    {"quarantine", R("quarantine \"score ${score}\";"), &msg_spam,
     PLANG_QUARANTINE, "score 7.00", NULL},
    {"quarantine bare", R("quarantine;"), &msg_spam, PLANG_QUARANTINE, "",
     NULL},
    {"deliver", R("deliver;"), &msg_spam, PLANG_KEEP, NULL, NULL},
    {"tagsubject", R("tagsubject \"[SPAM]\";"), &msg_spam, PLANG_KEEP, NULL,
     "S:Subject=[SPAM]"},
    {"addheader",
     R("addheader \"X-A\" \"1\"; addheader :last \"X-B\" "
       "\"${symbols}\";"),
     &msg_spam, PLANG_KEEP, NULL,
     "I:X-A=1|A:X-B=BAYES_99(4.00) URIBL_BLACK(3.00) HTML_ONLY(0.50)"},
    {"deleteheader all", R("deleteheader \"received\";"), &msg_plain,
     PLANG_KEEP, NULL, "D:received#1|D:received#0"},
    {"deleteheader :index", R("deleteheader :index 2 \"received\";"),
     &msg_plain, PLANG_KEEP, NULL, "D:received#1"},
    {"deleteheader :last", R("deleteheader :index 1 :last \"received\";"),
     &msg_plain, PLANG_KEEP, NULL, "D:received#1"},
    {"deleteheader value", R("deleteheader :contains \"received\" \"a\";"),
     &msg_plain, PLANG_KEEP, NULL, "D:received#0"},
    {"deleteheader none", R("deleteheader \"x-none\";"), &msg_plain, PLANG_KEEP,
     NULL, ""},
    {"set modifiers",
     R("set :upper \"v\" \"abc\"; set :length \"l\" "
       "\"${v}\"; addheader \"X\" \"${v}-${l}-${unknown}-${score}\";"),
     &msg_plain, PLANG_KEEP, NULL, "I:X=ABC-3--3.50"},
    {"set quotewildcard",
     R("set :quotewildcard \"p\" \"a*\"; if header "
       ":matches \"subject\" \"${p}\" { discard; }"),
     &msg_plain, PLANG_KEEP, NULL, NULL},
    {"not a variable", R("addheader \"X\" \"${1 a}$\";"), &msg_plain,
     PLANG_KEEP, NULL, "I:X=${1 a}$"},
    {"variables need require", "addheader \"X\" \"${score}\";", &msg_plain,
     PLANG_KEEP, NULL, NULL}, /* compile error: checked below */
    {"notify logged", R("notify :message \"hi\" \"mailto:a@b\";"), &msg_plain,
     PLANG_KEEP, NULL, ""},
    {"nested if",
     R("if true { if score :value \"ge\" \"5\" { quarantine; } "
       "else { tagsubject \"[x]\"; } }"),
     &msg_plain, PLANG_KEEP, NULL, "S:Subject=[x]"},
    {"presets", R("if score :value \"ge\" \"${tag_score}\" { discard; }"),
     &msg_plain, PLANG_DISCARD, NULL, NULL},
};

static void edits_str(const plang_result *r, char *buf, size_t n)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < r->nedits && o < n; i++) {
        const plang_edit *e = &r->edits[i];
        int w;
        if (e->op == PLANG_EDIT_DELETE)
            w = snprintf(buf + o, n - o, "%sD:%s#%zu", i ? "|" : "", e->name,
                         e->nth);
        else
            w = snprintf(buf + o, n - o, "%s%c:%s=%s", i ? "|" : "",
                         e->op == PLANG_EDIT_INSERT ? 'I'
                         : e->op == PLANG_EDIT_ADD  ? 'A'
                                                    : 'S',
                         e->name, e->value);
        o += (size_t)w;
    }
}

static void test_table(void **state)
{
    static const char *const vars[] = {"tag_score=3", "quarantine_score=15",
                                       NULL};
    static const char *const internal[] = {"10.0.0.0/8", "::1", NULL};
    plang_opts o = {vars, internal};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tcase *c = &cases[i];
        char err[256], ed[2048];
        plang_script *s =
            plang_compile(c->script, strlen(c->script), &o, err, sizeof(err));
        plang_facts f;
        plang_result r;

        if (strcmp(c->name, "variables need require") == 0) {
            if (s != NULL)
                fail_msg("%s: compiled", c->name);
            continue;
        }
        if (s == NULL)
            fail_msg("%s: %s", c->name, err);
        t_facts(c->msg, &f);
        assert_int_equal(plang_eval(s, &f, &r), 0);
        if (r.action != c->action)
            fail_msg("%s: action %s, expected %s", c->name,
                     plang_action_name(r.action), plang_action_name(c->action));
        if (c->text && strcmp(r.text, c->text) != 0)
            fail_msg("%s: text \"%s\", expected \"%s\"", c->name, r.text,
                     c->text);
        edits_str(&r, ed, sizeof(ed));
        if (c->edits && strcmp(ed, c->edits) != 0)
            fail_msg("%s: edits \"%s\", expected \"%s\"", c->name, ed,
                     c->edits);
        plang_result_free(&r);
        plang_free(s);
    }
}

/* ---------------------------------------------------------------- errors */

static const struct {
    const char *script;
    const char *err; /* prefix: "LINE:COL: ..." */
} errors[] = {
    {"keep", "1:5: expected \";\""},
    {"keep;\n  frob;", "2:3: unknown command \"frob\""},
    {"if true {\n keep;\n", "3:1: expected \"}\""},
    {"if header :is \"a\" { keep; }", "1:4: header: missing a string list"},
    {"if bogus { keep; }", "1:4: unknown test \"bogus\""},
    {"keep;\nrequire \"sluice\";", "2:1: require must come before"},
    {"require \"nope\";", "1:9: unsupported extension \"nope\""},
    {"quarantine;", "1:1: quarantine needs require \"sluice\""},
    {"require \"sluice\";\nif score :value \"ge\" \"x5\" { stop; }",
     "2:4: score: \"x5\" is not a number"},
    {"require [\"sluice\",\"relational\"];\nif score :value \"zz\" \"5\" { "
     "stop; }",
     "2:17: unknown relational operator"},
    {"if header :count \"ge\" \"a\" \"1\" { stop; }",
     "1:11: :count needs require \"relational\""},
    {"require \"sluice\";\nif client :cidr \"10.0.0.0/33\" { stop; }",
     "2:4: client: \"10.0.0.0/33\" is not a network"},
    {"redirect \"not an address\";",
     "1:10: redirect: \"not an address\" is not an address"},
    {"redirect :copy \"a@b.test\";", "1:10: :copy needs require \"copy\""},
    {"redirect;", "1:1: redirect: missing a string"},
    {"require \"enotify\"; notify \"xmpp:a@b.test\";",
     "1:27: notify: \"xmpp:a@b.test\": only the mailto"},
    {"require \"enotify\"; notify \"mailto:?subject=x\";",
     "1:27: notify: the mailto URI has no address"},
    {"require \"enotify\"; notify \"mailto:a@b.test?subject=%zz\";",
     "1:27: notify: bad %-escape"},
    {"require \"enotify\"; notify :importance \"7\" \"mailto:a@b.test\";",
     "1:20: notify: :importance is"},
    {"notify \"mailto:a@b.test\";", "1:1: notify needs require \"enotify\""},
    {"fileinto \"Junk\";", "1:1: fileinto is not supported"},
    {"\"str\";", "1:1: expected a command"},
    {"reject \"x\";", "1:1: reject needs require \"reject\""},
    {"keep \"x\";", "1:6: keep: too many arguments"},
    {"if true keep;", "1:13: expected \"{\""},
    {"else { keep; }", "1:1: else without a preceding if"},
    {"if true { keep; } else keep;", "1:28: expected \"{\""},
    {"keep { stop; }", "1:1: keep takes no block"},
    {"if true;", "1:8: expected \"{\" to open the if block"},
    {"discard; /* open", "1:10: unterminated comment"},
    {"reject \"open", "1:8: unterminated string"},
    {"if header :is :contains \"a\" \"b\" { stop; }",
     "1:15: more than one match type"},
    {"if header :frob \"a\" \"b\" { stop; }",
     "1:11: header does not take :frob"},
    {"if header \"a\" :is \"b\" { stop; }", "1:15: tag :is after"},
    {"if size 5 { stop; }", "1:4: size needs :over or :under"},
    {"if header [\"a\" \"b\"] \"c\" { stop; }", "1:16: expected \",\""},
    {"if address :user \"from\" \"a\" { stop; }",
     "1:12: :user needs require \"subaddress\""},
    {"set \"a\" \"b\";", "1:1: set needs require \"variables\""},
    {"require \"variables\"; set \"9a\" \"b\";",
     "1:22: set: bad variable name"},
    {"require \"editheader\"; addheader \"X\";",
     "1:23: addheader: missing a string"},
    {"if not (true, false) { stop; }", "1:4: not needs one test"},
    {"if allof true { stop; }", "1:4: allof needs a test list"},
    {"keep;\n\n   @", "3:4: unexpected character '@'"},
    {"if true { } elsif { }", "1:13: elsif needs exactly one test"},
    {"require \"sluice\"; if direction \"sideways\" { stop; }",
     "1:22: direction: \"inbound\" or \"outbound\""},
    {"require \"sluice\"; if list \"grey\" { stop; }",
     "1:22: list: \"allow\" or \"block\""},
    {"require \"envelope\"; if envelope \"cc\" \"a\" { stop; }",
     "1:24: envelope: only \"from\" and \"to\""},
    {"reject text:\nno end\n", "1:8: text: without its final"},
    {"if header :comparator \"i;nope\" \"a\" \"b\" { stop; }",
     "1:23: unknown comparator"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        char err[256];
        plang_script *s = plang_compile(
            errors[i].script, strlen(errors[i].script), NULL, err, sizeof(err));
        if (s != NULL)
            fail_msg("compiled: %s", errors[i].script);
        if (strncmp(err, errors[i].err, strlen(errors[i].err)) != 0)
            fail_msg("script %zu: \"%s\", expected \"%s...\"", i, err,
                     errors[i].err);
    }
}

static void test_deep_nesting(void **state)
{
    char buf[4096], err[256];
    size_t o = 0;

    (void)state;
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "if true {");
    buf[o] = '\0';
    assert_null(plang_compile(buf, o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "nested too deeply"));
    o = 0;
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "if ");
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "not ");
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "true { stop; }");
    assert_null(plang_compile(buf, o, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "nested too deeply"));
}

static void test_opts_errors(void **state)
{
    static const char *const badvar[] = {"novalue", NULL};
    static const char *const badnet[] = {"10.0.0.0/99", NULL};
    plang_opts o1 = {badvar, NULL}, o2 = {NULL, badnet};
    char err[256];

    (void)state;
    assert_null(plang_compile("keep;", 5, &o1, err, sizeof(err)));
    assert_non_null(strstr(err, "novalue"));
    assert_null(plang_compile("keep;", 5, &o2, err, sizeof(err)));
    assert_non_null(strstr(err, "10.0.0.0/99"));
}

/* ---------------------------------------------------------------- default */

static void test_default_policy(void **state)
{
    static const char *const vars[] = {"tag_score=5", "quarantine_score=15",
                                       NULL};
    plang_opts o = {vars, NULL};
    char err[256], ed[2048];
    plang_script *s =
        plang_compile(policy_default_script, strlen(policy_default_script), &o,
                      err, sizeof(err));
    plang_facts f;
    plang_result r;

    (void)state;
    if (s == NULL)
        fail_msg("default policy: %s", err);
    t_facts(&msg_plain, &f);
    assert_int_equal(plang_eval(s, &f, &r), 0);
    assert_int_equal(r.action, PLANG_KEEP);
    edits_str(&r, ed, sizeof(ed));
    assert_string_equal(ed, "I:X-Sluice-Policy=clean; score=3.50");
    plang_result_free(&r);

    t_facts(&msg_spam, &f); /* 7: tagged; the forged header goes */
    assert_int_equal(plang_eval(s, &f, &r), 0);
    assert_int_equal(r.action, PLANG_KEEP);
    edits_str(&r, ed, sizeof(ed));
    assert_string_equal(ed, "D:X-Sluice-Spam#0|S:Subject=[SPAM]|"
                            "I:X-Sluice-Spam=yes; score=7.00; symbols="
                            "BAYES_99(4.00) URIBL_BLACK(3.00) HTML_ONLY(0.50)|"
                            "I:X-Sluice-Policy=tagged; score=7.00");
    plang_result_free(&r);

    t_facts(&msg_high, &f);
    assert_int_equal(plang_eval(s, &f, &r), 0);
    assert_int_equal(r.action, PLANG_QUARANTINE);
    assert_string_equal(r.text, "score 20.00 >= 15");
    plang_result_free(&r);

    t_facts(&msg_allow, &f); /* score 30 but allowed */
    assert_int_equal(plang_eval(s, &f, &r), 0);
    assert_int_equal(r.action, PLANG_KEEP);
    plang_result_free(&r);

    t_facts(&msg_block, &f);
    assert_int_equal(plang_eval(s, &f, &r), 0);
    assert_int_equal(r.action, PLANG_REJECT);
    assert_non_null(strstr(r.text, "block list"));
    assert_true(r.ntrace > 0);
    plang_result_free(&r);
    plang_free(s);
}

/* ---------------------------------------------------------------- lists */

static void test_lists(void **state)
{
    plist l;
    const char *r1[] = {"bob@example.org"};
    const char *r2[] = {"bob@example.org", "eve@other.test"};

    (void)state;
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        plist_add(&l, "block", "site", "", "spam@bad.test", "", 0, ""), 0);
    assert_int_equal(plist_add(&l, "block", "site", "", "", "evil.test", 1, ""),
                     0);
    assert_int_equal(
        plist_add(&l, "block", "site", "", "", "", 0, "203.0.113.0/24"), 0);
    assert_int_equal(plist_add(&l, "allow", "domain", "example.org", "",
                               "partner.test", 0, ""),
                     0);
    assert_int_equal(plist_add(&l, "block", "user", "bob@example.org", "",
                               "ads.test", 0, ""),
                     0);
    assert_int_equal(
        plist_add(&l, "allow", "site", "", "", "", 0, "2001:db8::/32"), 0);
    /* bad entries */
    assert_int_equal(plist_add(&l, "grey", "site", "", "a@b", "", 0, ""), -1);
    assert_int_equal(plist_add(&l, "block", "galaxy", "", "a@b", "", 0, ""),
                     -1);
    assert_int_equal(plist_add(&l, "block", "site", "", "", "", 0, "nope"), -1);
    assert_int_equal(plist_add(&l, "block", "site", "", "", "", 0, ""), -1);

    assert_true(plist_match(&l, 1, "SPAM@bad.test", "192.0.2.1", r1, 1));
    assert_false(plist_match(&l, 1, "other@bad.test", "192.0.2.1", r1, 1));
    assert_true(plist_match(&l, 1, "a@evil.test", "192.0.2.1", r1, 1));
    assert_true(plist_match(&l, 1, "a@mx.evil.test", "192.0.2.1", r1, 1));
    assert_false(plist_match(&l, 1, "a@notevil.test", "192.0.2.1", r1, 1));
    assert_true(plist_match(&l, 1, "", "203.0.113.77", r1, 1));
    assert_false(plist_match(&l, 1, "", "203.0.114.1", r1, 1));
    assert_false(plist_match(&l, 1, "", "", r1, 1));
    /* domain scope: only for the owner's domain, all recipients */
    assert_true(plist_match(&l, 0, "x@partner.test", "192.0.2.1", r1, 1));
    assert_false(plist_match(&l, 0, "x@sub.partner.test", "192.0.2.1", r1, 1));
    assert_false(plist_match(&l, 0, "x@partner.test", "192.0.2.1", r2, 2));
    assert_false(plist_match(&l, 0, "x@partner.test", "192.0.2.1", NULL, 0));
    /* user scope */
    assert_true(plist_match(&l, 1, "x@ads.test", "192.0.2.1", r1, 1));
    assert_false(plist_match(&l, 1, "x@ads.test", "192.0.2.1", r2, 2));
    /* IPv6, and v4-mapped clients against v4 networks */
    assert_true(plist_match(&l, 0, "", "2001:db8::5", r1, 1));
    assert_true(plist_match(&l, 1, "", "::ffff:203.0.113.9", r1, 1));
    plist_free(&l);
}

static void test_nets(void **state)
{
    plang_net n;

    (void)state;
    assert_int_equal(plang_net_parse("10.0.0.0/8", &n), 0);
    assert_true(plang_net_contains(&n, "10.255.1.1"));
    assert_false(plang_net_contains(&n, "11.0.0.1"));
    assert_false(plang_net_contains(&n, "garbage"));
    assert_int_equal(plang_net_parse("192.0.2.129/25", &n), 0);
    assert_true(plang_net_contains(&n, "192.0.2.200"));
    assert_false(plang_net_contains(&n, "192.0.2.100"));
    assert_int_equal(plang_net_parse("::/0", &n), 0);
    assert_true(plang_net_contains(&n, "2001:db8::1"));
    assert_int_equal(plang_net_parse("0.0.0.0/0", &n), 0);
    assert_true(plang_net_contains(&n, "8.8.8.8"));
    assert_int_equal(plang_net_parse("10.0.0.0/", &n), -1);
    assert_int_equal(plang_net_parse("/8", &n), -1);
    assert_int_equal(plang_net_parse("1.2.3.4/-1", &n), -1);
    assert_int_equal(plang_net_parse("2001:db8::/129", &n), -1);
}

/* ------------------------------------------------------ redirect, notify */

#define RN(x)                                                                  \
    "require [\"sluice\", \"variables\", \"copy\", \"enotify\", "              \
    "\"reject\"];\n" x

static const tmsg msg_auto = {
    .headers = {{"Subject", "Out of office"},
                {"Auto-Submitted", "auto-replied"}},
    .sender = "",
    .rcpts = {"bob@example.org"},
    .score = 1,
};

static const tmsg msg_auto_no = {
    .headers = {{"Subject", "hand written"}, {"Auto-Submitted", " No "}},
    .sender = "a@example.com",
    .rcpts = {"bob@example.org"},
};

typedef struct rcase {
    const char *name;
    const char *script;
    const tmsg *msg;
    plang_action action;
    const char *redirects; /* "a|b" */
    int keep_cancelled;
    /* "RCPTS;SUBJECT;BODY;FROM;MESSAGE;IMPORTANCE|..." */
    const char *notifies;
    const char *error; /* run-time error prefix, or NULL: none */
} rcase;

static const rcase rcases[] = {
    {"redirect replaces", RN("redirect \"alice@test.example\";"), &msg_plain,
     PLANG_REDIRECT, "alice@test.example", 1, "", NULL},
    {"redirect :copy keeps", RN("redirect :copy \"alice@test.example\";"),
     &msg_plain, PLANG_KEEP, "alice@test.example", 0, "", NULL},
    {"redirect then keep", RN("redirect \"a@x.test\"; keep;"), &msg_plain,
     PLANG_KEEP, "a@x.test", 0, "", NULL},
    {"keep then redirect", RN("keep; redirect \"a@x.test\";"), &msg_plain,
     PLANG_KEEP, "a@x.test", 0, "", NULL},
    {"redirect twice, once",
     RN("redirect \"a@x.test\"; redirect \"A@X.test\";"
        " redirect :copy \"b@x.test\";"),
     &msg_plain, PLANG_REDIRECT, "a@x.test|b@x.test", 1, "", NULL},
    {"discard and redirect", RN("discard; redirect :copy \"a@x.test\";"),
     &msg_plain, PLANG_REDIRECT, "a@x.test", 1, "", NULL},
    {"quarantine and redirect",
     RN("redirect \"a@x.test\"; quarantine \"held\";"), &msg_spam,
     PLANG_QUARANTINE, "a@x.test", 1, "", NULL},
    {"reject drops redirect", RN("redirect \"a@x.test\"; reject \"no\";"),
     &msg_plain, PLANG_REJECT, "", 0, "", NULL},
    {"redirect with variable",
     RN("set \"who\" \"sec\"; redirect \"${who}@x.test\";"), &msg_plain,
     PLANG_REDIRECT, "sec@x.test", 1, "", NULL},
    {"redirect bad at run time",
     RN("set \"who\" \"a b\"; tagsubject \"[x]\"; redirect \"${who}\";"
        " discard;"),
     &msg_plain, PLANG_KEEP, "", 0, "", "line 2: redirect to an invalid"},
    {"redirect after stop", RN("stop; redirect \"a@x.test\";"), &msg_plain,
     PLANG_KEEP, "", 0, "", NULL},
    {"notify", RN("notify :message \"hi ${score}\" \"mailto:admin@x.test\";"),
     &msg_plain, PLANG_KEEP, "", 0, "admin@x.test;;;;hi 3.50;2", NULL},
    {"notify uri fields",
     RN("notify :from \"Gate <gw@x.test>\" :importance \"1\" "
        "\"mailto:a@x.test,b%40x.test?to=c@x.test&subject=Alert%20now&"
        "body=see%0Athis&cc=ignored@x.test\";"),
     &msg_plain, PLANG_KEEP, "", 0,
     "a@x.test,b@x.test,c@x.test;Alert now;see\nthis;gw@x.test;;1", NULL},
    {"notify twice, once",
     RN("notify :message \"m\" \"mailto:a@x.test\"; notify :message \"m\" "
        "\"mailto:a@x.test\"; notify \"mailto:a@x.test\";"),
     &msg_plain, PLANG_KEEP, "", 0, "a@x.test;;;;m;2|a@x.test;;;;;2", NULL},
    {"notify bad :from", RN("notify :from \"nope\" \"mailto:a@x.test\";"),
     &msg_plain, PLANG_KEEP, "", 0, "a@x.test;;;;;2", NULL},
    {"notify with reject", RN("notify \"mailto:a@x.test\"; reject \"go\";"),
     &msg_plain, PLANG_REJECT, "", 0, "a@x.test;;;;;2", NULL},
    {"notify auto-submitted skipped", RN("notify \"mailto:a@x.test\";"),
     &msg_auto, PLANG_KEEP, "", 0, "", NULL},
    {"notify auto-submitted no", RN("notify \"mailto:a@x.test\";"),
     &msg_auto_no, PLANG_KEEP, "", 0, "a@x.test;;;;;2", NULL},
    {"notify bad uri at run time",
     RN("set \"u\" \"mailto:\"; notify \"${u}\"; discard;"), &msg_plain,
     PLANG_KEEP, "", 0, "", "line 2: notify: the mailto URI has no address"},
    {"valid_notify_method",
     RN("if valid_notify_method [\"mailto:a@x.test\", \"mailto:b@x.test\"] "
        "{ discard; }"),
     &msg_plain, PLANG_DISCARD, "", 0, "", NULL},
    {"valid_notify_method no",
     RN("if valid_notify_method \"xmpp:a@x.test\" { discard; }"), &msg_plain,
     PLANG_KEEP, "", 0, "", NULL},
};

static void join_result(const plang_result *r, char *red, size_t rn, char *ntf,
                        size_t nn)
{
    size_t o = 0;

    red[0] = ntf[0] = '\0';
    for (size_t i = 0; i < r->nredirects; i++)
        o += (size_t)snprintf(red + o, rn - o, "%s%s", i ? "|" : "",
                              r->redirects[i]);
    o = 0;
    for (size_t i = 0; i < r->nnotifies; i++) {
        const plang_notify *n = &r->notifies[i];
        o += (size_t)snprintf(ntf + o, nn - o, "%s", i ? "|" : "");
        for (size_t k = 0; k < n->nrcpts; k++)
            o += (size_t)snprintf(ntf + o, nn - o, "%s%s", k ? "," : "",
                                  n->rcpts[k]);
        o += (size_t)snprintf(ntf + o, nn - o, ";%s;%s;%s;%s;%d", n->subject,
                              n->body, n->from, n->message, n->importance);
    }
}

static void test_redirect_notify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
        const rcase *c = &rcases[i];
        char err[256], red[1024], ntf[2048];
        plang_script *s =
            plang_compile(c->script, strlen(c->script), NULL, err, sizeof(err));
        plang_facts f;
        plang_result r;

        if (s == NULL)
            fail_msg("%s: %s", c->name, err);
        t_facts(c->msg, &f);
        assert_int_equal(plang_eval(s, &f, &r), 0);
        if (r.action != c->action)
            fail_msg("%s: action %s, expected %s", c->name,
                     plang_action_name(r.action), plang_action_name(c->action));
        join_result(&r, red, sizeof(red), ntf, sizeof(ntf));
        if (strcmp(red, c->redirects) != 0)
            fail_msg("%s: redirects \"%s\", expected \"%s\"", c->name, red,
                     c->redirects);
        if (r.keep_cancelled != c->keep_cancelled)
            fail_msg("%s: keep_cancelled %d", c->name, r.keep_cancelled);
        if (strcmp(ntf, c->notifies) != 0)
            fail_msg("%s: notifies \"%s\", expected \"%s\"", c->name, ntf,
                     c->notifies);
        if (c->error ? strncmp(r.error, c->error, strlen(c->error)) != 0
                     : r.error[0] != '\0')
            fail_msg("%s: error \"%s\"", c->name, r.error);
        plang_result_free(&r);
        plang_free(s);
    }
}

/* The notification's text: headers a loop check and a reader rely on. */
static void test_notify_message(void **state)
{
    plang_notify n;
    pact_info in;
    char err[64], *m;
    size_t len;

    (void)state;
    memset(&n, 0, sizeof(n));
    assert_int_equal(plang_mailto("mailto:admin@x.test?subject=Caf%C3%A9", &n,
                                  err, sizeof(err)),
                     0);
    n.from = strdup("");
    n.message = strdup("line one\nline two\r\n.dot");
    n.importance = 1;
    memset(&in, 0, sizeof(in));
    in.from = "postmaster@gw.test";
    in.hostname = "gw.test";
    in.id = "ABC123";
    in.mta_id = "4XyZ";
    in.sender = "evil@x.test\r\nBcc: injected@x.test";
    in.rcpts = "<bob@example.org>";
    in.subject = "hello\r\nX-Injected: 1";
    in.hfrom = "Eve <evil@x.test>";
    in.score = 7.5;
    in.action = "keep";
    in.now = 0;
    in.seq = 2;
    m = pact_message(&in, &n, &len);
    assert_non_null(m);
    assert_int_equal(strlen(m), len);
    assert_non_null(
        strstr(m, "From: postmaster@gw.test\r\nTo: admin@x.test\r\n"));
    assert_non_null(strstr(m, "\r\nSubject: =?utf-8?B?Q2Fmw6k=?=\r\n"));
    assert_non_null(strstr(m, "\r\nAuto-Submitted: auto-notified\r\n"));
    assert_non_null(strstr(m, "\r\nMessage-ID: <ABC123.notify2@gw.test>\r\n"));
    assert_non_null(strstr(m, "\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
    assert_non_null(strstr(m, "\r\nImportance: high\r\n"));
    assert_non_null(strstr(m, "\r\n\r\nline one\r\nline two\r\n.dot\r\n"));
    assert_non_null(strstr(m, "ABC123 (MTA queue id 4XyZ)"));
    /* nothing from the message becomes a header line of its own */
    assert_null(strstr(m, "\nBcc:"));
    assert_null(strstr(m, "\nX-Injected"));
    assert_null(strstr(m, "\r\r"));
    for (size_t i = 0; i < len; i++)
        if (m[i] == '\n')
            assert_true(i > 0 && m[i - 1] == '\r');
    free(m);
    plang_notify_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_opts_errors),
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_nets),
        cmocka_unit_test(test_redirect_notify),
        cmocka_unit_test(test_notify_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
