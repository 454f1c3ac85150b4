/* test_edits.c - ABI 1.1 on the engine side: header edits recorded for an
 * ingress to replay (header_edit_count/header_edit), body_replace and
 * body_changed, and the client's `auth` field; libmilter's socket
 * spellings in the engine's LISTEN parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "log.h"
#include "testutil.h"

static stats_worker slot;

typedef struct fixture {
    char *dir;
    worker *w;
    struct sluice_ctx ing; /* a stand-in ingress: the caller of the edits */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char text[256];
    buf err;

    f->dir = tu_mkdir();
    snprintf(text, sizeof(text), TU_ENGINE);
    tu_write(f->dir, "00-engine.conf", text);
    buf_init(&err);
    f->w = calloc(1, sizeof(*f->w));
    f->w->ch = chain_load(f->dir, NULL, "/tmp", NULL, NULL, NULL, 1, &err);
    if (f->w->ch == NULL)
        print_error("%s", err.data);
    assert_non_null(f->w->ch);
    buf_free(&err);
    memset(&slot, 0, sizeof(slot));
    f->w->loop = ev_default_loop(0);
    f->w->stats = &slot;
    f->ing.name = "ingress";
    f->ing.index = -1;
    f->ing.chain = f->w->ch;
    f->ing.worker = f->w;
    f->ing.desc.flags = SLUICE_STAGE_ADD_HEADERS | SLUICE_STAGE_CHG_HEADERS |
                        SLUICE_STAGE_CHG_BODY | SLUICE_STAGE_INGRESS;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    if (--f->w->ch->refs == 0)
        chain_free(f->w->ch);
    free(f->w);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

static sluice_txn *msg_txn(fixture *f, const char *msg)
{
    sluice_txn *t = txn_new(f->w, &f->ing);

    assert_int_equal(host_table.txn_write(t, msg, strlen(msg)), 0);
    return t;
}

static void test_edits_recorded(void **state)
{
    fixture *f = *state;
    sluice_txn *t =
        msg_txn(f, "Subject: a\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n");
    const sluice_header_edit *e;

    assert_int_equal(host_table.header_edit_count(t), 0);
    assert_int_equal(host_table.header_add(t, "X-B", "b"), 0);
    assert_int_equal(host_table.header_insert(t, 0, "X-Top", "t"), 0);
    assert_int_equal(host_table.header_change(t, "Subject", 0, "c"), 0);
    assert_int_equal(host_table.header_change(t, "x-a", 1, NULL), 0);
    /* refused edits are not recorded */
    assert_int_equal(host_table.header_change(t, "X-None", 0, "v"), -1);
    assert_int_equal(host_table.header_add(t, "Bad Name", "v"), -1);
    assert_int_equal(host_table.header_edit_count(t), 4);

    e = host_table.header_edit(t, 0);
    assert_int_equal(e->op, SLUICE_HDR_ADD);
    assert_string_equal(e->name, "X-B");
    assert_string_equal(e->value, "b");
    e = host_table.header_edit(t, 1);
    assert_int_equal(e->op, SLUICE_HDR_INSERT);
    assert_int_equal(e->index, 0);
    assert_string_equal(e->name, "X-Top");
    e = host_table.header_edit(t, 2);
    assert_int_equal(e->op, SLUICE_HDR_CHANGE);
    assert_int_equal(e->nth, 0);
    assert_string_equal(e->value, "c");
    e = host_table.header_edit(t, 3);
    assert_int_equal(e->op, SLUICE_HDR_DELETE);
    assert_int_equal(e->nth, 1);
    assert_null(e->value);
    assert_null(host_table.header_edit(t, 4));
    assert_int_equal(host_table.header_count(t), 4); /* 3 + 2 - 1 */
    assert_string_equal(host_table.header(t, 0)->value, "t");
    txn_free(t);
}

static void test_body_replace(void **state)
{
    fixture *f = *state;
    sluice_txn *t = msg_txn(f, "Subject: a\r\n\r\nold body\r\n");
    const sluice_header *h;
    sluice_str s;

    h = host_table.header_find(t, "subject", 0);
    assert_non_null(h);
    assert_int_equal(host_table.body_changed(t), 0);
    assert_int_equal(host_table.body_replace(t, "new\r\n", 5), 0);
    assert_int_equal(host_table.body_changed(t), 1);
    assert_int_equal(host_table.body(t, &s), 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.ptr, "new\r\n", 5);
    assert_int_equal(host_table.message(t, &s), 0);
    assert_int_equal(s.len, strlen("Subject: a\r\n\r\nnew\r\n"));
    assert_memory_equal(s.ptr, "Subject: a\r\n\r\nnew\r\n", s.len);
    /* the header still reads right (it points into the old buffer) */
    assert_string_equal(host_table.header_find(t, "Subject", 0)->value, "a");
    assert_int_equal(host_table.part_count(t), 1);
    /* twice */
    assert_int_equal(host_table.body_replace(t, "", 0), 0);
    assert_int_equal(host_table.body(t, &s), 0);
    assert_int_equal(s.len, 0);
    txn_free(t);

    /* a message without its empty line gets one */
    t = msg_txn(f, "Subject: a\r\n");
    assert_int_equal(host_table.body_replace(t, "b\r\n", 3), 0);
    assert_int_equal(host_table.message(t, &s), 0);
    assert_memory_equal(s.ptr, "Subject: a\r\n\r\nb\r\n", s.len);
    txn_free(t);
}

static void test_body_replace_needs_flag(void **state)
{
    fixture *f = *state;
    sluice_txn *t;

    f->ing.desc.flags &= ~(uint32_t)SLUICE_STAGE_CHG_BODY;
    t = msg_txn(f, "Subject: a\r\n\r\nbody\r\n");
    assert_int_equal(host_table.body_replace(t, "x", 1), -1);
    assert_int_equal(host_table.body_changed(t), 0);
    txn_free(t);
}

static void test_client_auth(void **state)
{
    fixture *f = *state;
    sluice_txn *t = msg_txn(f, "\r\n");
    sluice_client c;

    assert_string_equal(host_table.client(t)->auth, "");
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.addr = "192.0.2.1";
    c.auth = "alice\r\n";
    host_table.txn_set_client(t, &c);
    assert_string_equal(host_table.client(t)->auth, "alice  ");
    assert_string_equal(host_table.client(t)->addr, "192.0.2.1");
    /* a 1.0 ingress (smaller struct) leaves auth empty */
    c.size = offsetof(sluice_client, auth);
    host_table.txn_set_client(t, &c);
    assert_string_equal(host_table.client(t)->auth, "");
    txn_free(t);
}

static void test_milter_endpoints(void **state)
{
    util_endpoint ep;

    (void)state;
    assert_int_equal(util_parse_endpoint("inet:3366@127.0.0.1", &ep), 0);
    assert_false(ep.is_unix);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_string_equal(ep.port, "3366");
    assert_int_equal(util_parse_endpoint("inet6:3366@[::1]", &ep), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(util_parse_endpoint("inet6:25@::1", &ep), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(util_parse_endpoint("inet:3366@localhost", &ep), 0);
    assert_string_equal(ep.host, "localhost");
    assert_int_equal(util_parse_endpoint("local:/run/sluice/m.sock", &ep), 0);
    assert_true(ep.is_unix);
    assert_string_equal(ep.path, "/run/sluice/m.sock");
    assert_int_equal(util_parse_endpoint("127.0.0.1:3366", &ep), 0);
    assert_int_equal(util_parse_endpoint("inet:@127.0.0.1", &ep), -1);
    assert_int_equal(util_parse_endpoint("inet:99999@127.0.0.1", &ep), -1);
    assert_int_equal(util_parse_endpoint("inet:33x@127.0.0.1", &ep), -1);
    assert_int_equal(util_parse_endpoint("inet:25@", &ep), -1);
    assert_int_equal(util_parse_endpoint("local:", &ep), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_edits_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_replace_needs_flag, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_auth, setup, teardown),
        cmocka_unit_test(test_milter_endpoints),
    };
    log_init("test_edits", SLUICE_LOG_ERROR, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
