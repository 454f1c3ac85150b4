/*
 * test_bayes_concurrent.c - readers of the Bayes database while it is
 * being learned, in other processes.
 *
 * Every message the writers learn carries the token "common" and the
 * class totals move with it, so in any whole table
 *     find("common").spam == nspam  and  find("common").ham == nham,
 * and the header's nused equals the occupied slots.  A reader that saw a
 * half-written table (or a table of one commit with the header of
 * another) would find these broken.  Readers refresh and check in a loop
 * while two writer processes commit one message at a time; the writers
 * also check each other through the lock: no learned message is lost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bayes.h"
#include "mime.h"

#define WRITERS 2
#define READERS 2
#define COMMITS 30 /* per writer */

static void tok(const char *text, bayes_toks *tk)
{
    mime_msg *m = mime_parse((const unsigned char *)text, strlen(text), NULL);
    bayes_input in;

    if (m == NULL)
        _exit(3);
    bayes_input_mime(&in, m);
    if (bayes_tokenize(&in, NULL, tk) < 0)
        _exit(3);
    mime_free(m);
}

/* 0 if the table is whole. */
static int check(const bayes_db *db)
{
    const bayes_table *t = bayes_db_table(db);
    const bayes_slot *c = bayes_table_find(t, bayes_hash(NULL, "common", 6));
    uint64_t i, used = 0;

    for (i = 0; i <= t->mask; i++)
        used += t->slots[i].hash != 0;
    if (used != t->nused)
        return 1;
    if (c == NULL)
        return t->nspam + t->nham == 0 ? 0 : 2;
    return c->spam == t->nspam && c->ham == t->nham ? 0 : 3;
}

/* Reader: exits 0 after seeing at least two versions, all whole. */
static void reader(const char *path, const char *stop)
{
    char err[256];
    bayes_db *db = NULL;
    int versions = 0, rc;
    time_t end = time(NULL) + 60;

    while (db == NULL && time(NULL) < end)
        if ((db = bayes_db_open(path, err, sizeof(err))) == NULL)
            usleep(1000);
    if (db == NULL)
        _exit(10);
    versions = 1;
    while (access(stop, F_OK) != 0 && time(NULL) < end) {
        if ((rc = check(db)) != 0) {
            fprintf(stderr, "reader: torn table (%d)\n", rc);
            _exit(20 + rc);
        }
        if ((rc = bayes_db_refresh(db, err, sizeof(err))) < 0) {
            fprintf(stderr, "reader: %s\n", err);
            _exit(11);
        }
        versions += rc;
    }
    rc = check(db);
    bayes_db_close(db);
    _exit(rc != 0 ? 20 + rc : versions >= 2 ? 0 : 12);
}

static void writer(const char *path, int id)
{
    char err[256], msg[256];
    bayes_toks tk;
    bayes_wr *w;
    int i;

    for (i = 0; i < COMMITS; i++) {
        snprintf(msg, sizeof(msg),
                 "Message-ID: <%d.%d@t>\r\nSubject: s\r\n\r\n"
                 "common w%d_%d filler%d\r\n",
                 id, i, id, i, i % 7);
        tok(msg, &tk);
        if ((w = bayes_wr_open(path, err, sizeof(err))) == NULL)
            _exit(4);
        if (bayes_wr_learn(w, &tk, (i + id) & 1, bayes_today()) !=
                BAYES_LEARNED ||
            bayes_wr_commit(w, err, sizeof(err)) < 0) {
            fprintf(stderr, "writer: %s\n", err);
            _exit(5);
        }
        bayes_wr_close(w);
        bayes_toks_free(&tk);
    }
    _exit(0);
}

static void test_readers_during_learning(void **state)
{
    char dir[] = "/tmp/sluice-bayesc-XXXXXX", path[256], stop[256], err[256];
    pid_t rd[READERS], wr[WRITERS];
    int i, status;
    bayes_wr *w;
    bayes_db *db;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/bayes.db", dir);
    snprintf(stop, sizeof(stop), "%s/stop", dir);
    /* start from a committed empty table so readers can open at once */
    w = bayes_wr_open(path, err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(bayes_wr_commit(w, err, sizeof(err)), 0);
    bayes_wr_close(w);

    for (i = 0; i < READERS; i++)
        if ((rd[i] = fork()) == 0)
            reader(path, stop);
    for (i = 0; i < WRITERS; i++)
        if ((wr[i] = fork()) == 0)
            writer(path, i);
    for (i = 0; i < WRITERS; i++) {
        assert_true(wr[i] > 0);
        assert_int_equal(waitpid(wr[i], &status, 0), wr[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    fclose(fopen(stop, "w"));
    for (i = 0; i < READERS; i++) {
        assert_true(rd[i] > 0);
        assert_int_equal(waitpid(rd[i], &status, 0), rd[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* no update lost between the two writers */
    db = bayes_db_open(path, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(bayes_db_table(db)->nspam + bayes_db_table(db)->nham,
                     WRITERS * COMMITS);
    assert_int_equal(check(db), 0);
    bayes_db_close(db);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_during_learning),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
