/*
 * test_bayes_autolearn.c - auto-learning: the journal (bayes_journal.c)
 * and the `bayes` stage's use of it.
 *
 *   journal: records appended are learned by an apply, once (a second
 *     apply of the same messages skips them); a torn last record is
 *     dropped and counted, the records before it learned; a child process
 *     appending while the parent applies over and over loses nothing.
 *   stage (bayes.so through a fake host): a message whose score without
 *     BAYES_* reaches autolearn_spam ends up learned as spam in the
 *     database under state_dir, one at or below autolearn_ham as ham; a
 *     message over the threshold only thanks to its BAYES_99 symbol, a
 *     deferred one and one in between are not learned; with
 *     SLUICE_NO_AUTOLEARN set nothing is queued.
 *
 * Usage: test_bayes_autolearn PATH/bayes.so
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bayes.h"
#include "mime.h"
#include "stageconf.h"

static const char *so_path;
static const sluice_stage *stage;

/* ---------------------------------------------------------------- data */

/* A made-up message: `id` makes it (and its digest) unique. */
static void synth(char *buf, size_t len, int spam, int id)
{
    snprintf(buf, len,
             "From: a%d@example.org\r\nTo: b@example.net\r\n"
             "Subject: %s %d\r\nMessage-ID: <%d.%d@test>\r\n\r\n"
             "%s word%d other%d\r\n",
             id, spam ? "cheap pills" : "meeting notes", id, id, spam,
             spam ? "buy now cheap offer winner" : "agenda minutes review",
             id % 50, id % 7);
}

static void toks_of(bayes_toks *tk, int spam, int id)
{
    char buf[512];

    synth(buf, sizeof(buf), spam, id);
    assert_int_equal(bayes_tokenize_buf(buf, strlen(buf), NULL, tk), 0);
}

static void db_counts(const char *db, uint64_t *ns, uint64_t *nh)
{
    char err[512];
    bayes_db *d = bayes_db_open(db, err, sizeof(err));

    if (d == NULL) {
        *ns = *nh = 0;
        return;
    }
    *ns = bayes_db_table(d)->nspam;
    *nh = bayes_db_table(d)->nham;
    bayes_db_close(d);
}

/* ---------------------------------------------------------------- journal */

static void test_journal(void **state)
{
    char dir[] = "/tmp/sluice-autolearn-XXXXXX", db[256], j[256], err[600];
    bayes_journal_stats st;
    bayes_toks tk;
    uint64_t ns, nh;
    int i, fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/bayes.db", dir);
    snprintf(j, sizeof(j), "%s/bayes.db.journal", dir);

    /* nothing queued: no database written */
    assert_int_equal(bayes_journal_apply(db, j, &st, err, sizeof(err)), 0);
    assert_int_equal(access(db, F_OK), -1);

    for (i = 0; i < 3; i++) {
        toks_of(&tk, i != 2, i);
        assert_int_equal(bayes_journal_append(j, &tk, i != 2, 1, 0, err,
                                              sizeof(err)),
                         0);
        bayes_toks_free(&tk);
    }
    assert_int_equal(bayes_journal_apply(db, j, &st, err, sizeof(err)), 0);
    assert_int_equal(st.learned, 3);
    assert_int_equal(st.bad, 0);
    db_counts(db, &ns, &nh);
    assert_int_equal(ns, 2);
    assert_int_equal(nh, 1);
    assert_int_equal(access(j, F_OK), -1); /* consumed */

    /* the same message again: skipped; then a torn record at the end */
    toks_of(&tk, 1, 0);
    assert_int_equal(bayes_journal_append(j, &tk, 1, 1, 0, err, sizeof(err)),
                     0);
    bayes_toks_free(&tk);
    toks_of(&tk, 1, 7);
    assert_int_equal(bayes_journal_append(j, &tk, 1, 1, 0, err, sizeof(err)),
                     0);
    bayes_toks_free(&tk);
    {
        struct stat sb;
        assert_int_equal(stat(j, &sb), 0);
        fd = open(j, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "SLJ2\1\0\0\0garbage", 15), 15);
        close(fd);
    }
    assert_int_equal(bayes_journal_apply(db, j, &st, err, sizeof(err)), 0);
    assert_int_equal(st.skipped, 1);
    assert_int_equal(st.learned, 1);
    assert_int_equal(st.bad, 1);
    db_counts(db, &ns, &nh);
    assert_int_equal(ns, 3);

    /* over max_size: dropped, not written */
    toks_of(&tk, 1, 8);
    assert_int_equal(bayes_journal_append(j, &tk, 1, 1, 16, err, sizeof(err)),
                     1);
    bayes_toks_free(&tk);
    unlink(j);
    unlink(db);
    snprintf(j, sizeof(j), "%s/bayes.db.lock", dir);
    unlink(j);
    rmdir(dir);
}

/* A child appends N messages while the parent applies again and again:
 * every one of them must end up learned exactly once. */
static void test_journal_concurrent(void **state)
{
    enum { N = 300 };
    char dir[] = "/tmp/sluice-autolearn-XXXXXX", db[256], j[256], err[600];
    bayes_journal_stats st;
    size_t learned = 0;
    uint64_t ns, nh;
    int status, rounds = 0;
    pid_t pid;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/bayes.db", dir);
    snprintf(j, sizeof(j), "%s/bayes.db.journal", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int i, bad = 0;
        for (i = 0; i < N; i++) {
            bayes_toks tk;
            char e[600], buf[512];
            synth(buf, sizeof(buf), i & 1, 1000 + i);
            if (bayes_tokenize_buf(buf, strlen(buf), NULL, &tk) < 0 ||
                bayes_journal_append(j, &tk, i & 1, 1, 0, e, sizeof(e)) != 0)
                bad++;
            bayes_toks_free(&tk);
        }
        _exit(bad ? 1 : 0);
    }
    for (;;) {
        int done = waitpid(pid, &status, WNOHANG) == pid;
        assert_int_equal(bayes_journal_apply(db, j, &st, err, sizeof(err)), 0);
        learned += st.learned;
        rounds++;
        if (done)
            break;
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(bayes_journal_apply(db, j, &st, err, sizeof(err)), 0);
    learned += st.learned;
    assert_int_equal(learned, N);
    db_counts(db, &ns, &nh);
    assert_int_equal(ns + nh, N);
    assert_int_equal(ns, N / 2);
    print_message("%d applies while appending\n", rounds);
    unlink(db);
    snprintf(j, sizeof(j), "%s/bayes.db.lock", dir);
    unlink(j);
    rmdir(dir);
}

/* ---------------------------------------------------------------- host */

#define MAX_SYMS 8

static struct {
    double now;
    mime_msg *msg;
    char log[1024];
    const char *state_dir;
    const char *sym[MAX_SYMS];
    double score[MAX_SYMS];
    int nsym;
    sluice_verdict disposition;
    long long queued_spam, queued_ham, applied;
} H;

static void fake_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap) SLUICE_PRINTF(4, 0);
static void fake_log(sluice_ctx *ctx, sluice_txn *txn, int level,
                     const char *fmt, ...) SLUICE_PRINTF(4, 5);

static void fake_vlog(sluice_ctx *ctx, sluice_txn *txn, int level,
                      const char *fmt, va_list ap)
{
    (void)ctx, (void)txn, (void)level;
    vsnprintf(H.log, sizeof(H.log), fmt, ap);
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
    if (H.nsym < MAX_SYMS) {
        H.sym[H.nsym] = name; /* the stage's names are static strings */
        H.score[H.nsym++] = score;
    }
}

static size_t fake_symbol_count(sluice_txn *txn)
{
    (void)txn;
    return (size_t)H.nsym;
}

static const char *fake_symbol(sluice_txn *txn, size_t i, double *score,
                               const char **reason)
{
    (void)txn;
    if (i >= (size_t)H.nsym)
        return NULL;
    if (score)
        *score = H.score[i];
    if (reason)
        *reason = "";
    return H.sym[i];
}

static int fake_header_add(sluice_txn *txn, const char *name, const char *value)
{
    (void)txn, (void)name, (void)value;
    return 0;
}

static void fake_counter_add(sluice_ctx *ctx, const char *name, long long n)
{
    (void)ctx;
    if (strcmp(name, "autolearn_spam") == 0)
        H.queued_spam += n;
    else if (strcmp(name, "autolearn_ham") == 0)
        H.queued_ham += n;
    else if (strcmp(name, "autolearn_applied") == 0)
        H.applied += n;
}

static sluice_verdict fake_disposition(sluice_txn *txn)
{
    (void)txn;
    return H.disposition;
}

static const char *fake_state_dir(sluice_ctx *ctx)
{
    (void)ctx;
    return H.state_dir;
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
    .symbol_count = fake_symbol_count,
    .symbol = fake_symbol,
    .header_add = fake_header_add,
    .counter_add = fake_counter_add,
    .disposition = fake_disposition,
    .state_dir = fake_state_dir,
};

/* The stage's configuration as sluiced fills it (stageconf.h): every
 * default, then `set` (NAME, VALUE pairs). */
static void *conf_new(const char *const *set)
{
    void *c = stageconf_new(stage, set);

    assert_non_null(c);
    return c;
}

static void conf_free(void *c)
{
    stageconf_free(stage, c);
}

/* One message through EOM and close: `other` is the other stages' score
 * (a TEST_SCORE symbol), `bayes` adds a BAYES_99 symbol worth 4 (as a
 * trained database would), `disp` is the message's disposition. */
static void run_msg(void *inst, int spam, int id, double other, int bayes,
                    sluice_verdict disp)
{
    char buf[512];
    void *slot = calloc(1, stage->slot_size ? stage->slot_size : 1);

    assert_non_null(slot);
    synth(buf, sizeof(buf), spam, id);
    H.msg = mime_parse((const unsigned char *)buf, strlen(buf), NULL);
    assert_non_null(H.msg);
    H.nsym = 0;
    H.disposition = disp;
    fake_symbol_add(NULL, "TEST_SCORE", other, "x");
    assert_int_equal(stage->on_phase[SLUICE_PHASE_EOM](inst, NULL, slot),
                     SLUICE_CONTINUE);
    if (bayes)
        fake_symbol_add(NULL, "BAYES_99", 4.0, "x");
    H.now += 1;
    stage->on_close(inst, NULL, slot);
    mime_free(H.msg);
    H.msg = NULL;
    free(slot);
}

static void test_stage_autolearn(void **state)
{
    char dir[] = "/tmp/sluice-autolearn-XXXXXX", db[256], p[256];
    const char *set[] = {"autolearn_spam", "6",   "autolearn_ham", "-1",
                         "autolearn_apply", "0",  "min_spam",      "1",
                         "min_ham",        "1",   NULL};
    void *conf, *inst = NULL;
    uint64_t ns, nh;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/bayes.db", dir);
    memset(&H, 0, sizeof(H));
    H.now = 1000;
    H.state_dir = dir;
    assert_non_null(stage->on_close);
    conf = conf_new(set);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), 0);
    assert_int_equal(stage->worker_start(inst), 0);

    run_msg(inst, 1, 1, 8.0, 0, SLUICE_CONTINUE);   /* spam */
    run_msg(inst, 1, 2, 3.0, 1, SLUICE_CONTINUE);   /* 7 only with Bayes */
    run_msg(inst, 1, 3, 10.0, 0, SLUICE_TEMPFAIL);  /* deferred */
    run_msg(inst, 0, 4, 1.0, 0, SLUICE_CONTINUE);   /* in between */
    run_msg(inst, 0, 5, -2.0, 0, SLUICE_ACCEPT);    /* ham */
    assert_int_equal(H.queued_spam, 1);
    assert_int_equal(H.queued_ham, 1);
    stage->worker_stop(inst, 1); /* joins an apply under way */
    /* an apply starts at a close once something is queued: run one more
     * close to start it if the first one found the journal empty */
    db_counts(db, &ns, &nh);
    if (ns + nh < 2) {
        run_msg(inst, 0, 6, 1.0, 0, SLUICE_CONTINUE);
        stage->worker_stop(inst, 1);
        db_counts(db, &ns, &nh);
    }
    assert_int_equal(ns, 1);
    assert_int_equal(nh, 1);
    assert_int_equal(H.applied, 2);
    stage->fini(inst);
    conf_free(conf);

    /* a dry run (sluicectl scan): nothing queued */
    setenv("SLUICE_NO_AUTOLEARN", "1", 1);
    memset(&H, 0, sizeof(H));
    H.now = 1000;
    H.state_dir = dir;
    conf = conf_new(set);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), 0);
    run_msg(inst, 1, 11, 20.0, 0, SLUICE_CONTINUE);
    assert_int_equal(H.queued_spam, 0);
    stage->fini(inst);
    conf_free(conf);
    unsetenv("SLUICE_NO_AUTOLEARN");
    snprintf(p, sizeof(p), "%s.journal", db);
    assert_int_equal(access(p, F_OK), -1);

    unlink(db);
    snprintf(p, sizeof(p), "%s.lock", db);
    unlink(p);
    rmdir(dir);
}

static void test_bad_threshold(void **state)
{
    const char *bad[] = {"autolearn_spam", "lots", NULL};
    const char *inverted[] = {"autolearn_spam", "2", "autolearn_ham", "3",
                              NULL};
    void *conf, *inst = NULL;

    (void)state;
    memset(&H, 0, sizeof(H));
    H.state_dir = "/tmp";
    conf = conf_new(bad);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), -1);
    assert_non_null(strstr(H.log, "autolearn_spam"));
    conf_free(conf);
    conf = conf_new(inverted);
    assert_int_equal(stage->init(NULL, &host, conf, &inst), -1);
    assert_non_null(strstr(H.log, "must be below"));
    conf_free(conf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal),
        cmocka_unit_test(test_journal_concurrent),
        cmocka_unit_test(test_stage_autolearn),
        cmocka_unit_test(test_bad_threshold),
    };
    void *so;

    if (argc != 2) {
        fprintf(stderr, "usage: test_bayes_autolearn PATH/bayes.so\n");
        return 2;
    }
    so_path = argv[1];
    if ((so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL)) == NULL ||
        (stage = dlsym(so, SLUICE_STAGE_SYMBOL_NAME)) == NULL) {
        fprintf(stderr, "%s: %s\n", so_path, dlerror());
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
