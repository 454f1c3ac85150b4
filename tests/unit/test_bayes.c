/*
 * test_bayes.c - the Bayes library (plugins/heuristic): tokenizer on
 * messages written here, chi-square and bands, learn/unlearn/classify,
 * the database file (save, open, refresh, corruption refused), expiry,
 * export/import.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bayes.h"
#include "mime.h"

/* ---------------------------------------------------------------- helpers */

static void tk_msg_opts(const char *text, const bayes_tok_opts *o,
                        bayes_toks *tk)
{
    mime_msg *m = mime_parse((const unsigned char *)text, strlen(text), NULL);
    bayes_input in;

    assert_non_null(m);
    bayes_input_mime(&in, m);
    assert_int_equal(bayes_tokenize(&in, o, tk), 0);
    mime_free(m);
}

static void tk_msg(const char *text, bayes_toks *tk)
{
    tk_msg_opts(text, NULL, tk);
}

#define HAS(tk, prefix, word)                                                  \
    assert_true(bayes_toks_has(tk, bayes_hash(prefix, word, strlen(word))))
#define HASNT(tk, prefix, word)                                                \
    assert_false(bayes_toks_has(tk, bayes_hash(prefix, word, strlen(word))))

static char *tmpdir_make(void)
{
    char tmpl[] = "/tmp/sluice-bayes-XXXXXX";
    char *d = mkdtemp(tmpl);

    assert_non_null(d);
    return strdup(d);
}

static void tmpdir_rm(char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

static uint64_t rng_state = 42;

static unsigned rng(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

static const char *const spam_words[] = {
    "cheap", "pills",  "casino", "winner", "prize", "money",      "offer",
    "free",  "credit", "loan",   "viagra", "bonus", "guaranteed", "income"};
static const char *const ham_words[] = {
    "meeting", "agenda", "project", "review",   "kernel", "patch",   "build",
    "release", "thanks", "lunch",   "schedule", "draft",  "minutes", "budget"};

/* A made-up message: n words of one vocabulary, two shared ones, and a
 * unique Message-ID. */
static void synth(char *buf, size_t len, int spam, int id)
{
    const char *const *v = spam ? spam_words : ham_words;
    size_t off;
    int i;

    off = (size_t)snprintf(buf, len,
                           "From: %s@example.org\r\nSubject: %s %s\r\n"
                           "Message-ID: <%d.%d@example.org>\r\n\r\n"
                           "the and ",
                           spam ? "promo" : "colleague", v[rng(14)], v[rng(14)],
                           id, spam);
    for (i = 0; i < 8 && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s ", v[rng(14)]);
}

static bayes_wr *trained(int nspam, int nham)
{
    bayes_wr *w = bayes_wr_new();
    char buf[1024];
    bayes_toks tk;
    int i;

    assert_non_null(w);
    for (i = 0; i < nspam + nham; i++) {
        synth(buf, sizeof(buf), i < nspam, i);
        tk_msg(buf, &tk);
        assert_int_equal(bayes_wr_learn(w, &tk, i < nspam, 1000),
                         BAYES_LEARNED);
        bayes_toks_free(&tk);
    }
    return w;
}

/* ---------------------------------------------------------------- tokenizer */

static void test_tok_plain(void **state)
{
    bayes_toks tk;

    (void)state;
    tk_msg("From: Alice <alice@Example.org>\r\n"
           "To: bob@example.net\r\n"
           "Subject: Cheap Watches Now\r\n"
           "X-Spam-Status: Yes, score=99\r\n"
           "Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n"
           "Message-ID: <abc@mail.example.org>\r\n"
           "\r\n"
           "Hello world, visit http://www.Example.COM/path now! FREE offer.\r\n"
           "Call 0123456789 today; it's a-ok.\r\n",
           &tk);
    HAS(&tk, NULL, "hello");
    HAS(&tk, NULL, "hello 1 world"); /* bigram (default window 1) */
    HASNT(&tk, NULL, "hello 2 visit");
    HAS(&tk, NULL, "it's");
    HAS(&tk, NULL, "a-ok");
    HAS(&tk, NULL, "#10"); /* long number, by its length */
    HAS(&tk, "U", "FREE"); /* capitals kept apart */
    HAS(&tk, NULL, "free");
    HAS(&tk, "url", "www.example.com");
    HAS(&tk, "url", "example.com");
    HAS(&tk, "subject", "cheap");
    HAS(&tk, "subject", "cheap 1 watches");
    HAS(&tk, "from", "alice@example.org");
    HAS(&tk, "from", "@example.org");
    HAS(&tk, "to", "bob@example.net");
    HAS(&tk, "H", "from");
    HAS(&tk, "H", "date");
    HAS(&tk, "mid", "mail.example.org");
    HAS(&tk, "ct", "text/plain");
    HAS(&tk, "rcvd:hops", "0");
    HASNT(&tk, "date", "tue");          /* dates are skipped */
    HASNT(&tk, "x-spam-status", "yes"); /* so are other filters' verdicts */
    HASNT(&tk, NULL, "cheap");          /* header words keep their prefix */
    HASNT(&tk, NULL, "a");              /* one-letter words dropped */
    assert_false(tk.truncated);
    assert_int_equal(tk.digest,
                     bayes_hash("msgid", "<abc@mail.example.org>", 22));
    bayes_toks_free(&tk);
}

static void test_tok_html(void **state)
{
    bayes_toks tk;

    (void)state;
    tk_msg("Subject: x\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           "<html><head><style>p { color: red }</style>"
           "<script>var secretword=1;</script></head><body>"
           "<p>Buy&nbsp;v<b>ia</b>gra &amp; m=C3=A9ds</p>"
           "<!-- hiddencomment -->"
           "<a href=3D\"http://user@spam.example.net:8080/x\">click</a> "
           "&#72;ello &#x57;orld <img src=3D'http://10.1.2.3/p.gif'>"
           "<FONT Size=3D2 color=3D\"red bogus=3D1\" face=3Darial>big</font>"
           "</body></html>\r\n"
           "--b1\r\nContent-Type: application/pdf\r\n"
           "Content-Disposition: attachment; filename=\"Invoice.PDF\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
           "--b1--\r\n",
           &tk);
    HAS(&tk, NULL, "buy");
    HAS(&tk, NULL, "viagra"); /* inline tags do not split words */
    HAS(&tk, NULL,
        "m\xc3\xa9"
        "ds");
    HAS(&tk, NULL, "hello"); /* numeric entities decoded */
    HAS(&tk, NULL, "world");
    HAS(&tk, NULL, "click");
    HASNT(&tk, NULL, "secretword");
    HASNT(&tk, NULL, "hiddencomment");
    HASNT(&tk, NULL, "color");
    HASNT(&tk, NULL, "href");
    HAS(&tk, "html", "p");
    HAS(&tk, "html", "a");
    HAS(&tk, "html", "script");
    /* attribute names by tag, lower case; values (quoted or not) skipped */
    HAS(&tk, "html", "a:href");
    HAS(&tk, "html", "img:src");
    HAS(&tk, "html", "font:size");
    HAS(&tk, "html", "font:color");
    HAS(&tk, "html", "font:face");
    HASNT(&tk, "html", "font:bogus");
    HASNT(&tk, "html", "font:red");
    HASNT(&tk, "html", "font:arial");
    HAS(&tk, NULL, "big");
    HAS(&tk, "url", "spam.example.net");
    HAS(&tk, "url", "example.net");
    HAS(&tk, "url", "userinfo");
    HAS(&tk, "url", "IP");
    HAS(&tk, "ct", "multipart/alternative");
    HAS(&tk, "ct", "text/html");
    HAS(&tk, "cs", "utf-8");
    HAS(&tk, "att", "pdf");
    bayes_toks_free(&tk);
}

static void test_tok_received(void **state)
{
    bayes_toks tk;

    (void)state;
    tk_msg("Received: from mail.bad-host.example (dsl-12-34.pool.Example.com"
           " [192.0.2.55])\r\n\tby mx.example.org (Postfix 2.11.6) with ESMTP "
           "id 4ABC123; Tue, 1 Dec 2026 08:00:00 +0000\r\n"
           "Received: from localhost by x.example.org; Tue, 1 Dec 2026\r\n"
           "Subject: hi\r\n\r\nbody\r\n",
           &tk);
    HAS(&tk, "rcvd:ip", "192.0.2");
    HAS(&tk, "rcvd", "dsl-#-#.pool.example.com");
    HAS(&tk, "rcvd:dom", "example.com");
    HAS(&tk, "rcvd", "mx.example.org");
    HAS(&tk, "rcvd:dom", "example.org");
    HAS(&tk, "rcvd", "esmtp");
    HAS(&tk, "rcvd", "postfix");
    HAS(&tk, "rcvd:hops", "2");
    HASNT(&tk, "rcvd", "4abc123"); /* queue ids are noise */
    HASNT(&tk, "rcvd", "#.#.#");   /* versions too */
    HASNT(&tk, "rcvd", "tue");     /* the date after ';' */
    bayes_toks_free(&tk);
}

static void test_tok_bounded(void **state)
{
    size_t len = 64 + 200000 * 9, off, i;
    char *msg = malloc(len);
    bayes_tok_opts o;
    bayes_toks tk;

    (void)state;
    assert_non_null(msg);
    off = (size_t)snprintf(msg, len, "Subject: many words\r\n\r\n");
    for (i = 0; i < 200000; i++)
        off += (size_t)snprintf(msg + off, len - off, "w%06zu ", i);
    bayes_tok_opts_default(&o);
    o.max_tokens = 500;
    tk_msg_opts(msg, &o, &tk);
    assert_int_equal(tk.count, 500);
    assert_true(tk.truncated);
    HAS(&tk, "subject", "many"); /* headers come first */
    HAS(&tk, NULL, "w000000");
    HASNT(&tk, NULL, "w199999");
    bayes_toks_free(&tk);
    /* the text limit alone */
    o.max_tokens = 1000000;
    o.max_text = 1000;
    tk_msg_opts(msg, &o, &tk);
    assert_true(tk.truncated);
    assert_true(tk.count < 400);
    bayes_toks_free(&tk);
    free(msg);
}

static void test_tok_digest(void **state)
{
    bayes_toks a, b, c, d;

    (void)state;
    tk_msg("Message-ID: <1@x>\r\nSubject: a\r\n\r\nsame\r\n", &a);
    tk_msg("Received: from y\r\nMessage-ID: <1@x>\r\nSubject: b\r\n\r\nx\r\n",
           &b);
    tk_msg("Subject: a\r\n\r\nsame text\r\n", &c);
    tk_msg("Subject: b\r\n\r\nother text\r\n", &d);
    assert_int_equal(a.digest, b.digest); /* same Message-ID */
    assert_int_not_equal(a.digest, c.digest);
    assert_int_not_equal(c.digest, d.digest); /* no id: the text */
    bayes_toks_free(&a);
    bayes_toks_free(&b);
    bayes_toks_free(&c);
    bayes_toks_free(&d);
}

/* ---------------------------------------------------------------- maths */

static void test_chi2_bands(void **state)
{
    (void)state;
    assert_true(fabs(bayes_chi2q(4.0, 1) - exp(-2.0)) < 1e-12);
    assert_true(fabs(bayes_chi2q(6.0, 2) - exp(-3.0) * 4.0) < 1e-12);
    assert_true(bayes_chi2q(0.0, 5) == 1.0);
    assert_true(bayes_chi2q(5000.0, 10) < 1e-300);
    /* the sum of Poisson terms, against a direct one for 6 d.o.f. */
    assert_true(fabs(bayes_chi2q(7.0, 3) -
                     exp(-3.5) * (1 + 3.5 + 3.5 * 3.5 / 2)) < 1e-12);
    /* many degrees of freedom, x far below and far above them */
    assert_true(fabs(bayes_chi2q(10.0, 400) - 1.0) < 1e-12);
    assert_true(bayes_chi2q(4000.0, 400) < 1e-100);
    assert_true(bayes_chi2q(10.0, 200) <= 1.0);
    assert_string_equal(bayes_band(0.0), "BAYES_00");
    assert_string_equal(bayes_band(0.03), "BAYES_05");
    assert_string_equal(bayes_band(0.5), "BAYES_50");
    assert_string_equal(bayes_band(0.97), "BAYES_95");
    assert_string_equal(bayes_band(1.0), "BAYES_99");
    assert_null(bayes_band(-1.0));
}

/* ---------------------------------------------------------------- learning */

static void test_classify_roundtrip(void **state)
{
    bayes_wr *w = trained(60, 60);
    const bayes_table *t = bayes_wr_table(w);
    bayes_result r;
    bayes_toks tk;
    char buf[1024];

    (void)state;
    assert_int_equal(t->nspam, 60);
    assert_int_equal(t->nham, 60);
    synth(buf, sizeof(buf), 1, 9001);
    tk_msg(buf, &tk);
    assert_int_equal(bayes_classify(t, &tk, NULL, &r), 0);
    assert_true(r.prob > 0.9);
    assert_string_equal(r.band, "BAYES_99");
    assert_true(isfinite(r.logit) && r.logit > 5.0);
    assert_true(fabs(1.0 / (1.0 + exp(-r.logit)) - r.prob) < 1e-12);
    assert_true(r.known > 0 && r.used > 0 && r.used <= r.known);
    bayes_toks_free(&tk);
    synth(buf, sizeof(buf), 0, 9002);
    tk_msg(buf, &tk);
    assert_int_equal(bayes_classify(t, &tk, NULL, &r), 0);
    assert_true(r.prob < 0.1);
    assert_true(isfinite(r.logit) && r.logit < -5.0);
    bayes_toks_free(&tk);
    /* nothing known: undecided */
    tk_msg("Subject: zzq\r\n\r\nqqq rrr\r\n", &tk);
    assert_int_equal(bayes_classify(t, &tk, NULL, &r), 0);
    assert_true(fabs(r.prob - 0.5) < 0.2);
    bayes_toks_free(&tk);
    bayes_wr_close(w);
}

/* Clues with the same counts (seen together every time: the words of one
 * header) count once; without that they outvote the message's other
 * evidence. */
static void test_classify_dedup(void **state)
{
    bayes_wr *w = bayes_wr_new();
    bayes_params bp;
    bayes_result on, off;
    bayes_toks tk;
    char buf[512];
    int i;

    (void)state;
    assert_non_null(w);
    for (i = 0; i < 40; i++) {
        int spam = i < 20, k = spam ? i : i - 20;
        snprintf(buf, sizeof(buf),
                 "Message-ID: <%d@example.org>\r\n%s\r\n"
                 "%s %s %s %s\r\n",
                 i,
                 spam ? "X-Tag: alpha beta gamma delta epsilon zeta\r\n"
                      : "X-Other: x\r\n",
                 spam ? "spamonly" : "meeting", !spam && k < 15 ? "agenda" : "",
                 !spam && k < 10 ? "kernel" : "",
                 !spam && k < 6 ? "patch" : "");
        tk_msg(buf, &tk);
        assert_int_equal(bayes_wr_learn(w, &tk, spam, 1000), BAYES_LEARNED);
        bayes_toks_free(&tk);
    }
    tk_msg("Message-ID: <t@example.org>\r\n"
           "X-Tag: alpha beta gamma delta epsilon zeta\r\n\r\n"
           "meeting agenda kernel patch\r\n",
           &tk);
    bayes_params_default(&bp);
    assert_int_equal(bp.dedup_min, 4);
    bp.min_spam = bp.min_ham = 20; /* the default asks for 50 */
    assert_int_equal(bayes_classify(bayes_wr_table(w), &tk, &bp, &on), 0);
    bp.dedup_min = 0;
    assert_int_equal(bayes_classify(bayes_wr_table(w), &tk, &bp, &off), 0);
    /* H:x-tag and its six words (20 spam, 0 ham each) enter once, and so
     * does each body pair with the count of its second word ("meeting 1
     * agenda" and "agenda": 0 spam, 15 ham): 6 + 3 fewer clues */
    assert_int_equal(off.used - on.used, 9);
    assert_int_equal(on.known, off.known);
    /* four hammy words against one spammy header (0.24); counted seven
     * times against seven, the two sides cancel out at 0.5 */
    assert_string_equal(on.band, "BAYES_40");
    assert_string_equal(off.band, "BAYES_50");
    assert_true(off.prob > on.prob + 0.2);
    /* counts below dedup_min are not merged: at 20 only the spam group
     * (20 messages) merges, not the ham one (15); above it, neither */
    bp.dedup_min = 20;
    assert_int_equal(bayes_classify(bayes_wr_table(w), &tk, &bp, &off), 0);
    assert_int_equal(off.used, on.used + 3);
    bp.dedup_min = 21;
    assert_int_equal(bayes_classify(bayes_wr_table(w), &tk, &bp, &off), 0);
    assert_int_equal(off.used, on.used + 9);
    bayes_toks_free(&tk);
    bayes_wr_close(w);
}

static void test_untrained(void **state)
{
    bayes_wr *w = trained(10, 60);
    bayes_result r;
    bayes_toks tk;

    (void)state;
    tk_msg("Subject: cheap\r\n\r\ncasino\r\n", &tk);
    assert_int_equal(bayes_classify(bayes_wr_table(w), &tk, NULL, &r), -1);
    assert_true(r.prob < 0);
    assert_null(r.band);
    bayes_toks_free(&tk);
    bayes_wr_close(w);
}

static void test_learn_unlearn(void **state)
{
    bayes_wr *w = bayes_wr_new();
    const char *msg = "Message-ID: <u1@x>\r\nSubject: zork\r\n\r\nfrob\r\n";
    uint64_t h = bayes_hash(NULL, "frob", 4);
    const bayes_slot *s;
    bayes_toks tk;

    (void)state;
    tk_msg(msg, &tk);
    assert_int_equal(bayes_wr_learned(w, &tk), -1);
    assert_int_equal(bayes_wr_unlearn(w, &tk), BAYES_SKIPPED);
    assert_int_equal(bayes_wr_learn(w, &tk, 1, 7), BAYES_LEARNED);
    assert_int_equal(bayes_wr_learn(w, &tk, 1, 7), BAYES_SKIPPED);
    s = bayes_table_find(bayes_wr_table(w), h);
    assert_non_null(s);
    assert_int_equal(s->spam, 1);
    assert_int_equal(s->ham, 0);
    assert_int_equal(s->day, 7);
    assert_int_equal(bayes_wr_learned(w, &tk), 1);
    /* relearned as ham: moved, not counted twice */
    assert_int_equal(bayes_wr_learn(w, &tk, 0, 8), BAYES_LEARNED);
    s = bayes_table_find(bayes_wr_table(w), h);
    assert_int_equal(s->spam, 0);
    assert_int_equal(s->ham, 1);
    assert_int_equal(bayes_wr_table(w)->nspam, 0);
    assert_int_equal(bayes_wr_table(w)->nham, 1);
    assert_int_equal(bayes_wr_unlearn(w, &tk), BAYES_LEARNED);
    s = bayes_table_find(bayes_wr_table(w), h);
    assert_true(s == NULL || (s->spam == 0 && s->ham == 0));
    assert_int_equal(bayes_wr_table(w)->nham, 0);
    assert_int_equal(bayes_wr_learned(w, &tk), -1);
    bayes_toks_free(&tk);
    bayes_wr_close(w);
}

/* ---------------------------------------------------------------- storage */

static void classify_same(const bayes_table *a, const bayes_table *b)
{
    char buf[1024];
    bayes_result ra, rb;
    bayes_toks tk;
    int i;

    for (i = 0; i < 10; i++) {
        synth(buf, sizeof(buf), i & 1, 5000 + i);
        tk_msg(buf, &tk);
        assert_int_equal(bayes_classify(a, &tk, NULL, &ra), 0);
        assert_int_equal(bayes_classify(b, &tk, NULL, &rb), 0);
        assert_true(ra.prob == rb.prob);
        assert_int_equal(ra.known, rb.known);
        bayes_toks_free(&tk);
    }
}

static void test_file_roundtrip(void **state)
{
    char *dir = tmpdir_make(), path[512], err[256];
    bayes_wr *w = trained(60, 60), *w2;
    bayes_db *db;

    (void)state;
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    assert_int_equal(bayes_wr_save(w, path, err, sizeof(err)), 0);
    db = bayes_db_open(path, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(bayes_db_table(db)->nspam, 60);
    assert_memory_equal(bayes_db_header(db)->magic, BAYES_MAGIC, 8);
    classify_same(bayes_wr_table(w), bayes_db_table(db));
    assert_int_equal(bayes_db_refresh(db, err, sizeof(err)), 0);

    /* a writer commits: the reader keeps its table until it refreshes */
    w2 = bayes_wr_open(path, err, sizeof(err));
    assert_non_null(w2);
    assert_int_equal(bayes_wr_table(w2)->nspam, 60);
    classify_same(bayes_wr_table(w), bayes_wr_table(w2));
    {
        bayes_toks tk;
        tk_msg("Subject: new\r\n\r\nnovel words here\r\n", &tk);
        assert_int_equal(bayes_wr_learn(w2, &tk, 1, 1), BAYES_LEARNED);
        bayes_toks_free(&tk);
    }
    assert_int_equal(bayes_wr_commit(w2, err, sizeof(err)), 0);
    bayes_wr_close(w2);
    assert_int_equal(bayes_db_table(db)->nspam, 60);
    assert_int_equal(bayes_db_refresh(db, err, sizeof(err)), 1);
    assert_int_equal(bayes_db_table(db)->nspam, 61);
    assert_non_null(
        bayes_table_find(bayes_db_table(db), bayes_hash(NULL, "novel", 5)));
    bayes_db_close(db);
    bayes_wr_close(w);
    tmpdir_rm(dir);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    struct stat st;
    unsigned char *p;
    FILE *f = fopen(path, "rb");

    assert_non_null(f);
    assert_int_equal(fstat(fileno(f), &st), 0);
    p = malloc((size_t)st.st_size);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    *n = (size_t)st.st_size;
    return p;
}

static void expect_refused(const char *path, const char *why)
{
    char err[256];
    bayes_db *db = bayes_db_open(path, err, sizeof(err));
    bayes_wr *w;

    assert_null(db);
    if (strstr(err, why) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, why);
    w = bayes_wr_open(path, err, sizeof(err));
    assert_null(w);
    if (strstr(err, why) == NULL)
        fail_msg("writer error \"%s\" does not mention \"%s\"", err, why);
}

static void test_file_corrupt(void **state)
{
    char *dir = tmpdir_make(), path[512], bad[512], err[256];
    bayes_wr *w = trained(60, 60);
    unsigned char *img, *copy;
    size_t n;

    (void)state;
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    snprintf(bad, sizeof(bad), "%s/bad.db", dir);
    assert_int_equal(bayes_wr_save(w, path, err, sizeof(err)), 0);
    img = read_file(path, &n);
    copy = malloc(n);
    assert_non_null(copy);
    assert_int_equal(bayes_file_check(img, n, err, sizeof(err)), 0);

    memcpy(copy, img, n);
    copy[0] ^= 0xFF;
    write_file(bad, copy, n);
    expect_refused(bad, "magic");

    write_file(bad, img, n - sizeof(bayes_slot));
    expect_refused(bad, "truncated");

    write_file(bad, img, 10);
    expect_refused(bad, "truncated");

    write_file(bad, img, 0);
    expect_refused(bad, "truncated");

    memcpy(copy, img, n); /* a counter in the header changed */
    ((bayes_filehdr *)copy)->nspam++;
    write_file(bad, copy, n);
    expect_refused(bad, "checksum");

    memcpy(copy, img, n); /* another format version, checksum made good */
    ((bayes_filehdr *)copy)->version = 99;
    ((bayes_filehdr *)copy)->check =
        bayes_hash("hdr", copy, offsetof(bayes_filehdr, check));
    write_file(bad, copy, n);
    expect_refused(bad, "version");

    memcpy(copy, img, n); /* learned by an older tokenizer: its hashes
                           * would never match, so refused with advice */
    ((bayes_filehdr *)copy)->tok_version = BAYES_TOKENIZER_VERSION - 1;
    ((bayes_filehdr *)copy)->check =
        bayes_hash("hdr", copy, offsetof(bayes_filehdr, check));
    write_file(bad, copy, n);
    expect_refused(bad, "learn again");

    memcpy(copy, img, n); /* nslots not matching the size */
    ((bayes_filehdr *)copy)->nslots *= 2;
    ((bayes_filehdr *)copy)->check =
        bayes_hash("hdr", copy, offsetof(bayes_filehdr, check));
    write_file(bad, copy, n);
    expect_refused(bad, "truncated");

    /* a refused file is left alone, and a missing one is an empty table */
    snprintf(bad, sizeof(bad), "%s/none.db", dir);
    assert_null(bayes_db_open(bad, err, sizeof(err)));
    w = (bayes_wr_close(w), bayes_wr_open(bad, err, sizeof(err)));
    assert_non_null(w);
    assert_int_equal(bayes_wr_table(w)->nspam, 0);
    bayes_wr_close(w);
    free(copy);
    free(img);
    tmpdir_rm(dir);
}

/* ---------------------------------------------------------------- expiry */

static size_t live_tokens(const bayes_table *t)
{
    size_t i, n = 0;

    for (i = 0; i <= t->mask; i++)
        n += t->slots[i].hash != 0 &&
             (t->slots[i].spam != 0 || t->slots[i].ham != 0);
    return n;
}

static void test_expire(void **state)
{
    bayes_wr *w = bayes_wr_new();
    bayes_toks old, mid, young;
    size_t before, n;

    (void)state;
    tk_msg("Message-ID: <o@x>\r\n\r\nancient relic\r\n", &old);
    tk_msg("Message-ID: <m@x>\r\n\r\nmiddle aged\r\n", &mid);
    tk_msg("Message-ID: <y@x>\r\n\r\nfresh news\r\n", &young);
    assert_int_equal(bayes_wr_learn(w, &old, 1, 100), BAYES_LEARNED);
    assert_int_equal(bayes_wr_learn(w, &mid, 0, 150), BAYES_LEARNED);
    assert_int_equal(bayes_wr_learn(w, &young, 0, 200), BAYES_LEARNED);
    before = live_tokens(bayes_wr_table(w));
    /* nothing older than 200 days before day 250 */
    assert_int_equal(bayes_wr_expire(w, 250, 200, 0), 0);
    /* older than 120 days before 250: the day-100 message goes */
    n = bayes_wr_expire(w, 250, 120, 0);
    assert_true(n > 0);
    assert_int_equal(live_tokens(bayes_wr_table(w)), before - n);
    assert_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "ancient", 7)));
    assert_non_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "middle", 6)));
    assert_int_equal(bayes_wr_learned(w, &old), -1); /* its record too */
    assert_int_equal(bayes_wr_learned(w, &mid), 0);
    /* over a size cap, the oldest tokens go first; message records are
     * not counted against it, and stay */
    before = live_tokens(bayes_wr_table(w));
    /* (2 records; the day-150 message alone had 3 tokens: middle, aged
     * and their bigram) */
    n = bayes_wr_expire(w, 250, 0, before - 2 - 3);
    assert_int_equal(n, 3);
    assert_int_equal(live_tokens(bayes_wr_table(w)), before - 3);
    assert_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "middle", 6)));
    assert_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "aged", 4)));
    assert_int_equal(bayes_wr_learned(w, &mid), 0);
    assert_int_equal(bayes_wr_learned(w, &young), 0);
    assert_non_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "fresh", 5)));
    assert_non_null(
        bayes_table_find(bayes_wr_table(w), bayes_hash(NULL, "news", 4)));
    /* message totals are not touched by expiry */
    assert_int_equal(bayes_wr_table(w)->nspam, 1);
    assert_int_equal(bayes_wr_table(w)->nham, 2);
    bayes_toks_free(&old);
    bayes_toks_free(&mid);
    bayes_toks_free(&young);
    bayes_wr_close(w);
}

/* ---------------------------------------------------------------- export */

static void tables_equal(const bayes_table *a, const bayes_table *b,
                         unsigned factor)
{
    size_t i, n = 0;

    assert_int_equal(a->nspam * factor, b->nspam);
    assert_int_equal(a->nham * factor, b->nham);
    for (i = 0; i <= a->mask; i++) {
        const bayes_slot *s = &a->slots[i], *o;
        if (s->hash == 0 || (s->spam == 0 && s->ham == 0))
            continue;
        o = bayes_table_find(b, s->hash);
        assert_non_null(o);
        assert_int_equal(o->spam, s->spam * factor);
        assert_int_equal(o->ham, s->ham * factor);
        assert_int_equal(o->day, s->day);
        assert_int_equal(o->flags, s->flags);
        n++;
    }
    assert_int_equal(n, live_tokens(b));
}

static void test_export_import(void **state)
{
    bayes_wr *w = trained(60, 60), *w2 = bayes_wr_new();
    char err[256], *text, *cut;
    size_t len;
    FILE *f = tmpfile(), *g;

    (void)state;
    assert_non_null(f);
    assert_int_equal(bayes_table_export(bayes_wr_table(w), f), 0);
    rewind(f);
    assert_int_equal(bayes_wr_import(w2, f, 0, err, sizeof(err)), 0);
    tables_equal(bayes_wr_table(w), bayes_wr_table(w2), 1);
    classify_same(bayes_wr_table(w), bayes_wr_table(w2));
    /* merge adds the counts */
    rewind(f);
    assert_int_equal(bayes_wr_import(w2, f, 1, err, sizeof(err)), 0);
    tables_equal(bayes_wr_table(w), bayes_wr_table(w2), 2);
    /* replace starts afresh */
    rewind(f);
    assert_int_equal(bayes_wr_import(w2, f, 0, err, sizeof(err)), 0);
    tables_equal(bayes_wr_table(w), bayes_wr_table(w2), 1);

    /* a truncated export (no end line) is refused */
    len = (size_t)ftell(f);
    text = malloc(len + 1);
    assert_non_null(text);
    rewind(f);
    assert_int_equal(fread(text, 1, len, f), len);
    text[len] = '\0';
    cut = strstr(text, "\nend ");
    assert_non_null(cut);
    g = fmemopen(text, (size_t)(cut + 1 - text), "r");
    assert_int_equal(bayes_wr_import(w2, g, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));
    fclose(g);
    /* a damaged record names its line */
    text[strlen(text) / 2] = 'Z';
    g = fmemopen(text, len, "r");
    assert_int_equal(bayes_wr_import(w2, g, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line"));
    fclose(g);
    g = fmemopen((char *)"something else\n", 15, "r");
    assert_int_equal(bayes_wr_import(w2, g, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a sluice Bayes export"));
    fclose(g);
    free(text);
    fclose(f);
    bayes_wr_close(w);
    bayes_wr_close(w2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tok_plain),
        cmocka_unit_test(test_tok_html),
        cmocka_unit_test(test_tok_received),
        cmocka_unit_test(test_tok_bounded),
        cmocka_unit_test(test_tok_digest),
        cmocka_unit_test(test_chi2_bands),
        cmocka_unit_test(test_classify_roundtrip),
        cmocka_unit_test(test_classify_dedup),
        cmocka_unit_test(test_untrained),
        cmocka_unit_test(test_learn_unlearn),
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_file_corrupt),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_export_import),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
