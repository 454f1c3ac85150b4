/* test_conf_move.c - moving a stage in conf.d (engine/conf_move.c): file
 * renames, blocks moved inside and between files, new files, names that
 * sort between two others, and the undo that restores conf.d exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "conf_move.h"
#include "engine.h"
#include "testutil.h"

/* Every file of dir, sorted, as "name:\n<content>\n--\n". */
static char *snapshot(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort), i;
    buf b;

    buf_init(&b);
    for (i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            const char *t = tu_read(dir, ents[i]->d_name);
            buf_printf(&b, "%s:\n%s\n--\n", ents[i]->d_name, t ? t : "?");
        }
        free(ents[i]);
    }
    free(ents);
    return b.data;
}

static char *order(const char *dir)
{
    char **names;
    size_t n, i;
    buf err, b;

    buf_init(&err);
    buf_init(&b);
    assert_int_equal(conf_stage_order(dir, &names, &n, &err), 0);
    for (i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", names[i]);
    conf_names_free(names);
    buf_free(&err);
    return b.data;
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* move, check the order, undo, check conf.d is byte for byte as before */
static void move_and_undo(const char *dir, const char *name, size_t pos,
                          const char *want_order)
{
    char *before = snapshot(dir), *after, *o;
    conf_undo *u = NULL;
    int changed = -1;
    buf err;

    buf_init(&err);
    assert_int_equal(conf_move_stage(dir, name, pos, &changed, &u, &err), 0);
    assert_int_equal(changed, 1);
    o = order(dir);
    assert_string_equal(o, want_order);
    free(o);
    assert_int_equal(conf_undo_restore(u, &err), 0);
    conf_undo_free(u);
    after = snapshot(dir);
    assert_string_equal(after, before);
    free(before);
    free(after);
    buf_free(&err);
}

static void write_layout(const char *dir)
{
    tu_write(dir, "00-engine.conf", "# engine\nengine\nworkers 1\n");
    tu_write(dir, "10-smtp.conf", "# ingress\nstage smtp\nlisten x\n");
    tu_write(dir, "20-receive.conf", "stage receive\n");
    tu_write(dir, "50-bayes.conf",
             "# Bayes\n#\n# more\nstage bayes\n"
             "enabled no\n");
    tu_write(dir, "70-policy.conf", "stage policy\n");
    tu_write(dir, "90-deliver.conf", "stage deliver\n");
}

/* One stage per file: the file is renamed, its text untouched. */
static void test_rename(void **state)
{
    char *dir = tu_mkdir();
    conf_undo *u = NULL;
    int changed;
    buf err;
    char *o;

    (void)state;
    write_layout(dir);
    buf_init(&err);
    assert_int_equal(conf_move_stage(dir, "bayes", 4, &changed, &u, &err), 0);
    assert_int_equal(changed, 1);
    assert_false(exists(dir, "50-bayes.conf"));
    assert_string_equal(tu_read(dir, "80-bayes.conf"),
                        "# Bayes\n#\n# more\nstage bayes\nenabled no\n");
    o = order(dir);
    assert_string_equal(o, "smtp receive policy bayes deliver");
    free(o);
    conf_undo_free(u);
    /* to the front, and to the end */
    assert_int_equal(conf_move_stage(dir, "policy", 1, &changed, &u, &err), 0);
    assert_true(exists(dir, "05-policy.conf"));
    conf_undo_free(u);
    assert_int_equal(conf_move_stage(dir, "policy", 5, &changed, &u, &err), 0);
    assert_true(exists(dir, "95-policy.conf"));
    conf_undo_free(u);
    o = order(dir);
    assert_string_equal(o, "smtp receive bayes deliver policy");
    free(o);
    /* already there: nothing written */
    assert_int_equal(conf_move_stage(dir, "policy", 5, &changed, &u, &err), 0);
    assert_int_equal(changed, 0);
    assert_null(u);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_undo_restores(void **state)
{
    char *dir = tu_mkdir();

    (void)state;
    write_layout(dir);
    move_and_undo(dir, "bayes", 4, "smtp receive policy bayes deliver");
    move_and_undo(dir, "deliver", 1, "deliver smtp receive bayes policy");
    tu_rmdir(dir);
}

/* Sections sharing one file: blocks move inside it, comments with them. */
static void test_same_file(void **state)
{
    char *dir = tu_mkdir();
    conf_undo *u = NULL;
    int changed;
    buf err;
    char *o;

    (void)state;
    tu_write(dir, "a.conf",
             "# head\n\nstage one\nx 1\n\n# about two\nstage two\ny 2\n\n"
             "stage three\n");
    buf_init(&err);
    assert_int_equal(conf_move_stage(dir, "three", 1, &changed, &u, &err), 0);
    assert_string_equal(tu_read(dir, "a.conf"),
                        "# head\n\nstage three\n\nstage one\nx 1\n\n"
                        "# about two\nstage two\ny 2\n\n");
    conf_undo_free(u);
    assert_int_equal(conf_move_stage(dir, "two", 1, &changed, &u, &err), 0);
    assert_string_equal(tu_read(dir, "a.conf"),
                        "# head\n\n# about two\nstage two\ny 2\n\n"
                        "stage three\n\nstage one\nx 1\n\n");
    conf_undo_free(u);
    /* to the end of the file: after the last block */
    assert_int_equal(conf_move_stage(dir, "two", 3, &changed, &u, &err), 0);
    o = order(dir);
    assert_string_equal(o, "three one two");
    free(o);
    assert_string_equal(tu_read(dir, "a.conf"),
                        "# head\n\nstage three\n\nstage one\nx 1\n\n"
                        "# about two\nstage two\ny 2\n");
    conf_undo_free(u);
    move_and_undo(dir, "one", 1, "one three two");
    buf_free(&err);
    tu_rmdir(dir);
}

/* Out of a shared file to a file boundary: a new file; from a file of its
 * own to between two sections of another file: into it, its file gone. */
static void test_between_files(void **state)
{
    char *dir = tu_mkdir();
    conf_undo *u = NULL;
    int changed;
    buf err;
    char *o;

    (void)state;
    tu_write(dir, "00-engine.conf", "engine\nworkers 1\n\nstage a\n");
    tu_write(dir, "50-x.conf", "stage p\n\n# q's\nstage q\nopt 1\n");
    tu_write(dir, "90-z.conf", "# zed\n\nstage z\n");
    buf_init(&err);
    move_and_undo(dir, "q", 2, "a q p z");
    /* nothing sorts before 00-engine.conf's stage: refused, untouched */
    {
        char *before = snapshot(dir), *after;
        assert_int_equal(conf_move_stage(dir, "q", 1, &changed, &u, &err), -1);
        assert_non_null(strstr(err.data, "no file name sorts between "
                                         "(start) and 00-engine.conf"));
        after = snapshot(dir);
        assert_string_equal(after, before);
        free(before);
        free(after);
        err.len = 0;
    }
    assert_int_equal(conf_move_stage(dir, "q", 4, &changed, &u, &err), 0);
    assert_string_equal(tu_read(dir, "95-q.conf"), "# q's\nstage q\nopt 1\n");
    assert_string_equal(tu_read(dir, "50-x.conf"), "stage p\n\n");
    conf_undo_free(u);
    /* the engine file keeps its engine section */
    assert_int_equal(conf_move_stage(dir, "a", 2, &changed, &u, &err), 0);
    assert_string_equal(tu_read(dir, "00-engine.conf"),
                        "engine\nworkers 1\n\n");
    assert_string_equal(tu_read(dir, "70-a.conf"), "stage a\n");
    conf_undo_free(u);
    o = order(dir);
    assert_string_equal(o, "p a z q");
    free(o);
    /* p and q together again; z, alone with a head comment, between them */
    tu_write(dir, "50-x.conf", "stage p\n\nstage q\n");
    {
        char path[512];
        snprintf(path, sizeof(path), "%s/95-q.conf", dir);
        unlink(path);
    }
    o = order(dir);
    assert_string_equal(o, "p q a z");
    free(o);
    move_and_undo(dir, "z", 2, "p z q a");
    assert_int_equal(conf_move_stage(dir, "z", 2, &changed, &u, &err), 0);
    assert_false(exists(dir, "90-z.conf"));
    assert_string_equal(tu_read(dir, "50-x.conf"),
                        "stage p\n\n# zed\n\nstage z\n\nstage q\n");
    conf_undo_free(u);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_refusals(void **state)
{
    char *dir = tu_mkdir();
    conf_undo *u = NULL;
    int changed;
    buf err;

    (void)state;
    write_layout(dir);
    buf_init(&err);
    assert_int_equal(conf_move_stage(dir, "nope", 1, &changed, &u, &err), -1);
    assert_non_null(strstr(err.data, "no stage named 'nope'"));
    err.len = 0;
    assert_int_equal(conf_move_stage(dir, "bayes", 6, &changed, &u, &err), -1);
    assert_non_null(strstr(err.data, "out of range: 1..5"));
    err.len = 0;
    assert_int_equal(conf_move_stage(dir, "bayes", 0, &changed, &u, &err), -1);
    tu_write(dir, "95-dup.conf", "stage bayes\n");
    err.len = 0;
    assert_int_equal(conf_move_stage(dir, "policy", 1, &changed, &u, &err), -1);
    assert_non_null(strstr(err.data, "95-dup.conf:1: stage 'bayes' is "
                                     "defined twice"));
    assert_null(u);
    buf_free(&err);
    tu_rmdir(dir);
}

static void test_names(void **state)
{
    char *dir = tu_mkdir(), *n;

    (void)state;
    n = conf_move_name(dir, "20-a.conf", "30-b.conf", "x");
    assert_string_equal(n, "25-x.conf");
    free(n);
    n = conf_move_name(dir, "50-a.conf", "51-b.conf", "x");
    assert_string_equal(n, "501-x.conf");
    free(n);
    n = conf_move_name(dir, NULL, NULL, "x");
    assert_string_equal(n, "50-x.conf");
    free(n);
    n = conf_move_name(dir, "90-a.conf", NULL, "x");
    assert_string_equal(n, "95-x.conf");
    free(n);
    tu_write(dir, "25-x.conf", "");
    n = conf_move_name(dir, "20-a.conf", "30-b.conf", "x");
    assert_string_equal(n, "21-x.conf"); /* 25 taken */
    free(n);
    n = conf_move_name(dir, "policy.conf", "zz.conf", "x");
    assert_string_equal(n, "policy_x.conf");
    free(n);
    assert_null(conf_move_name(dir, "b.conf", "b_.conf", "x"));
    tu_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rename),    cmocka_unit_test(test_undo_restores),
        cmocka_unit_test(test_same_file), cmocka_unit_test(test_between_files),
        cmocka_unit_test(test_refusals),  cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
