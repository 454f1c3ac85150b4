/*
 * test_bayes_stage.c - the `bayes` stage (bayes.so) loaded with dlopen and
 * driven through a fake host: no database (said once, mail passes),
 * a trained database (symbol with the band's score, header), configured
 * scores and their errors, an untrained database, and a database
 * retrained under a running stage (picked up after `refresh`).
 *
 * Usage: test_bayes_stage PATH/bayes.so
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bayes.h"
#include "mime.h"
#include "stageconf.h"

static const char *so_path;
static const sluice_stage *stage;

/* ---------------------------------------------------------------- host */

static struct {
    double now;
    mime_msg *msg;
    char log[1024];
    int warnings;
    char sym[64];
    double sym_score;
    int nsym;
    char hdr_name[64], hdr_value[256];
    int nhdr;
    long long no_db, classified, untrained;
} H;

static void fake_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap) SLUICE_PRINTF(4, 0);
static void fake_log(sluice_ctx *ctx, sluice_txn *txn, int level,
                     const char *fmt, ...) SLUICE_PRINTF(4, 5);

static void fake_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap)
{
    (void)ctx, (void)txn;
    vsnprintf(H.log, sizeof(H.log), fmt, ap);
    if (level >= SLUICE_LOG_WARN)
        H.warnings++;
}

static void fake_log(sluice_ctx *ctx, sluice_txn *txn, int level,
                     const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fake_vlog(ctx, txn, level, fmt, ap);
    va_end(ap);
}

static double fake_now(sluice_ctx *ctx)
{
    (void)ctx;
    return H.now;
}

static size_t fake_header_count(sluice_txn *txn)
{
    (void)txn;
    return mime_header_count(H.msg);
}

static const sluice_header *fake_header(sluice_txn *txn, size_t i)
{
    (void)txn;
    return mime_header(H.msg, i);
}

static size_t fake_part_count(sluice_txn *txn)
{
    (void)txn;
    return mime_part_count(H.msg);
}

static const sluice_part *fake_part(sluice_txn *txn, size_t i)
{
    (void)txn;
    return mime_part(H.msg, i);
}

static void fake_symbol_add(sluice_txn *txn, const char *name, double score,
                            const char *fmt, ...)
{
    (void)txn, (void)fmt;
    snprintf(H.sym, sizeof(H.sym), "%s", name);
    H.sym_score = score;
    H.nsym++;
}

static int fake_header_add(sluice_txn *txn, const char *name, const char *value)
{
    (void)txn;
    snprintf(H.hdr_name, sizeof(H.hdr_name), "%s", name);
    snprintf(H.hdr_value, sizeof(H.hdr_value), "%s", value);
    H.nhdr++;
    return 0;
}

static void fake_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
    (void)ctx;
    if (strcmp(name, "no_database") == 0)
        H.no_db += n;
    else if (strcmp(name, "classified") == 0)
        H.classified += n;
    else if (strcmp(name, "untrained") == 0)
        H.untrained += n;
}

static sluice_host host = {
    .size = sizeof(sluice_host),
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .log = fake_log,
    .vlog = fake_vlog,
    .now = fake_now,
    .header_count = fake_header_count,
    .header = fake_header,
    .part_count = fake_part_count,
    .part = fake_part,
    .symbol_add = fake_symbol_add,
    .header_add = fake_header_add,
    .counter_add = fake_counter_add,
};

/* ---------------------------------------------------------------- conf */

/* The stage's configuration as sluiced fills it (stageconf.h): every
 * default, `database` set, and an optional `score` line. */
static void *conf_new(const char *db, const char *scores)
{
    const char *set[] = {"database", db, scores ? "score" : NULL, scores, NULL};
    void *c = stageconf_new(stage, set);

    assert_non_null(c);
    return c;
}

static void conf_free(void *c)
{
    stageconf_free(stage, c);
}

/* ---------------------------------------------------------------- data */

static uint64_t rng_state = 7;

static unsigned rng(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

static const char *const vocab[2][8] = {
    {"meeting", "agenda", "project", "review", "kernel", "patch", "build",
     "release"},
    {"cheap", "pills", "casino", "winner", "prize", "money", "offer", "free"}};

static void synth(char *buf, size_t len, int which, int id)
{
    size_t off = (size_t)snprintf(buf, len,
                                  "Message-ID: <%d.%d@t>\r\nSubject: %s\r\n"
                                  "\r\n",
                                  id, which, vocab[which][rng(8)]);
    int i;

    for (i = 0; i < 10 && off < len; i++)
        off +=
            (size_t)snprintf(buf + off, len - off, "%s ", vocab[which][rng(8)]);
}

/* Train: n messages of vocabulary 1 as `spam1`, n of vocabulary 0 as the
 * other class. */
static void train(const char *path, int n, int spam1)
{
    bayes_wr *w = bayes_wr_new();
    char buf[512], err[256];
    int i;

    assert_non_null(w);
    for (i = 0; i < 2 * n; i++) {
        mime_msg *m;
        bayes_input in;
        bayes_toks tk;
        synth(buf, sizeof(buf), i & 1, i);
        m = mime_parse((const unsigned char *)buf, strlen(buf), NULL);
        bayes_input_mime(&in, m);
        assert_int_equal(bayes_tokenize(&in, NULL, &tk), 0);
        assert_int_equal(bayes_wr_learn(w, &tk, (i & 1) ? spam1 : !spam1, 1),
                         BAYES_LEARNED);
        bayes_toks_free(&tk);
        mime_free(m);
    }
    assert_int_equal(bayes_wr_save(w, path, err, sizeof(err)), 0);
    bayes_wr_close(w);
}

/* Run the EOM hook on a made-up message of vocabulary `which`. */
static sluice_verdict eom(void *inst, int which)
{
    static char buf[512];
    sluice_verdict v;

    synth(buf, sizeof(buf), which, 100000 + rng(1000));
    H.msg = mime_parse((const unsigned char *)buf, strlen(buf), NULL);
    assert_non_null(H.msg);
    H.nsym = H.nhdr = 0;
    H.sym[0] = H.hdr_value[0] = '\0';
    v = stage->on_phase[SLUICE_PHASE_EOM](inst, NULL, NULL);
    mime_free(H.msg);
    H.msg = NULL;
    return v;
}

/* ---------------------------------------------------------------- tests */

static void test_descriptor(void **state)
{
    (void)state;
    assert_int_equal(stage->abi_major, SLUICE_ABI_MAJOR);
    assert_string_equal(stage->name, "bayes");
    assert_true(stage->flags & SLUICE_STAGE_ADD_HEADERS);
    assert_non_null(stage->on_phase[SLUICE_PHASE_EOM]);
}

static void test_stage(void **state)
{
    char dir[] = "/tmp/sluice-bayess-XXXXXX", path[256];
    void *conf, *inst = NULL;
    int warn0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    memset(&H, 0, sizeof(H));
    H.now = 1000.0;
    conf = conf_new(path, NULL);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), 0);
    assert_int_equal(stage->worker_start(inst), 0);
    warn0 = H.warnings;
    assert_int_equal(warn0, 0); /* no database yet: normal, said once */
    assert_non_null(strstr(H.log, "no Bayes database at"));

    /* no database: mail passes, nothing added, no new warning */
    H.now += 5;
    assert_int_equal(eom(inst, 1), SLUICE_CONTINUE);
    assert_int_equal(H.nsym, 0);
    assert_int_equal(H.nhdr, 0);
    assert_int_equal(H.no_db, 1);
    assert_int_equal(H.warnings, warn0);

    /* too little training: header says so, no symbol */
    train(path, 10, 1);
    H.now += 5;
    assert_int_equal(eom(inst, 1), SLUICE_CONTINUE);
    assert_int_equal(H.nsym, 0);
    assert_string_equal(H.hdr_name, "X-Sluice-Bayes");
    assert_string_equal(H.hdr_value, "untrained (10 spam, 10 ham learned)");
    assert_int_equal(H.untrained, 1);

    /* trained: vocabulary 1 is spam */
    train(path, 60, 1);
    assert_int_equal(eom(inst, 1), SLUICE_CONTINUE); /* not refreshed yet */
    assert_int_equal(H.nsym, 0);
    H.now += 5;
    assert_int_equal(eom(inst, 1), SLUICE_CONTINUE);
    assert_int_equal(H.nsym, 1);
    assert_string_equal(H.sym, "BAYES_99");
    assert_true(H.sym_score == 5.0);
    assert_non_null(strstr(H.hdr_value, " BAYES_99 tokens="));
    assert_int_equal(eom(inst, 0), SLUICE_CONTINUE);
    assert_string_equal(H.sym, "BAYES_00");
    assert_true(H.sym_score == -3.75);
    assert_int_equal(H.classified, 2);

    /* retrained the other way round: picked up after `refresh` */
    train(path, 60, 0);
    H.now += 0.5;
    eom(inst, 1);
    assert_string_equal(H.sym, "BAYES_99");
    H.now += 1.0;
    eom(inst, 1);
    assert_string_equal(H.sym, "BAYES_00");

    /* a damaged file replaces it: warning, the loaded table stays */
    {
        char tmp[300];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        f = fopen(tmp, "w");
        assert_non_null(f);
        fputs("garbage, not a database\n", f);
        fclose(f);
        assert_int_equal(rename(tmp, path), 0);
    }
    warn0 = H.warnings;
    H.now += 5;
    eom(inst, 1);
    assert_string_equal(H.sym, "BAYES_00"); /* old mapping still used */
    assert_int_equal(H.warnings, warn0 + 1);
    assert_non_null(strstr(H.log, "keeping the one loaded"));
    H.now += 5;
    eom(inst, 1); /* said once, not per message */
    assert_int_equal(H.warnings, warn0 + 1);
    stage->fini(inst);
    conf_free(conf);
    unlink(path);
    rmdir(dir);
}

static void test_scores(void **state)
{
    char dir[] = "/tmp/sluice-bayess-XXXXXX", path[256];
    const char *good = "BAYES_99 7.5 BAYES_00 -0.25";
    const char *bad_band = "BAYES_42 1";
    const char *bad_value = "BAYES_99 lots";
    const char *odd = "BAYES_99";
    void *conf, *inst = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    memset(&H, 0, sizeof(H));
    train(path, 60, 1);
    conf = conf_new(path, good);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), 0);
    eom(inst, 1);
    assert_string_equal(H.sym, "BAYES_99");
    assert_true(H.sym_score == 7.5);
    eom(inst, 0);
    assert_true(H.sym_score == -0.25);
    stage->fini(inst);
    conf_free(conf);

    conf = conf_new(path, bad_band);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), -1);
    assert_non_null(strstr(H.log, "BAYES_42"));
    conf_free(conf);
    conf = conf_new(path, bad_value);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), -1);
    assert_non_null(strstr(H.log, "lots"));
    conf_free(conf);
    conf = conf_new(path, odd);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), -1);
    conf_free(conf);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_stage),
        cmocka_unit_test(test_scores),
    };
    void *so;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: test_bayes_stage PATH/bayes.so\n");
        return 2;
    }
    so_path = argv[1];
    if ((so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL)) == NULL ||
        (stage = dlsym(so, SLUICE_STAGE_SYMBOL_NAME)) == NULL) {
        fprintf(stderr, "test_bayes_stage: %s\n", dlerror());
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    dlclose(so);
    return rc;
}
