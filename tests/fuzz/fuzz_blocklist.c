/*
 * fuzz_blocklist.c - libFuzzer target for sluice-blocklistd's request
 * handling (tools/blocklistd/bl_proto.c) over a small real table
 * (bl_table.c), and for the stage's answer parser (bls_reply.c).
 *
 * The input's first byte sets the chunk size the stream is fed in (as a
 * socket would cut it); the rest is the byte stream of one client.  Every
 * line the splitter hands out is parsed, looked up and answered, as the
 * daemon does.  Checked invariants: a line never exceeds the limit, the
 * splitter always makes progress, every answer is one line of bounded
 * length that starts with A, E or PONG, and every answer parses back
 * with the stage's parser (A and E lines).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bl_proto.h"
#include "bl_table.h"
#include "bls_reply.h"

static bl_table *fz_table;

static void fz_setup(void)
{
    static const char lists[] = "192.0.2.0/24 spam\n"
                                "198.51.100.7 drop\n"
                                "10.0.0.0/8 private\n"
                                "2001:db8::/32 doc6\n"
                                "::ffff:203.0.113.0/120 mapped\n"
                                "0.0.0.0/0 everything\n";
    char err[256];

    fz_table = bl_table_new();
    if (fz_table == NULL ||
        bl_table_load_buf(fz_table, "fuzz.list", "fuzz", lists,
                          sizeof(lists) - 1, err, sizeof(err)) < 0 ||
        bl_table_build(fz_table, err, sizeof(err)) < 0)
        abort();
}

static void fz_answer(const char *line, size_t ll, int toolong)
{
    char out[BL_PROTO_ANSWER_MAX];
    bl_req r;
    uint64_t mask = 0;
    size_t n;

    if (toolong) {
        memset(&r, 0, sizeof(r));
        r.type = BL_REQ_ERROR;
        r.error = "line too long";
    } else {
        if (ll >= BL_PROTO_LINE_MAX)
            abort(); /* the splitter let an overlong line through */
        bl_proto_parse(line, ll, &r);
    }
    if (r.type == BL_REQ_STATS)
        return; /* the daemon formats that one */
    if (r.type == BL_REQ_QUERY)
        mask = bl_table_lookup(fz_table, &r.addr);
    n = bl_proto_answer(fz_table, &r, mask, out, sizeof(out));
    if (n == 0 || n > sizeof(out) || out[n - 1] != '\n' ||
        memchr(out, '\n', n - 1) != NULL)
        abort();
    if (out[0] != 'A' && out[0] != 'E' && memcmp(out, "PONG", 4) != 0)
        abort();
    if (out[0] == 'A' || out[0] == 'E') {
        bls_reply rep;
        out[n - 1] = '\0';
        /* ids from clients need not be numbers; only numeric ones must
         * parse back (the stage only sends numbers) */
        if (r.id[0] >= '0' && r.id[0] <= '9' && strlen(r.id) <= 9 &&
            strspn(r.id, "0123456789") == strlen(r.id) &&
            bls_reply_parse(out, &rep) < 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bl_split s = {0};
    char buf[BL_PROTO_LINE_MAX * 4];
    size_t blen = 0, off = 1, step;

    if (fz_table == NULL)
        fz_setup();
    if (size == 0)
        return 0;
    step = (size_t)data[0] % 300 + 1;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        if (n > sizeof(buf) - blen)
            n = sizeof(buf) - blen;
        memcpy(buf + blen, data + off, n);
        blen += n;
        off += n;
        for (;;) {
            const char *line;
            size_t used, ll;
            int k = bl_split_next(&s, buf, blen, &used, &line, &ll);
            if (used > blen)
                abort();
            if (k == BL_SPLIT_LINE)
                fz_answer(line, ll, 0);
            else if (k == BL_SPLIT_TOOLONG)
                fz_answer(NULL, 0, 1);
            memmove(buf, buf + used, blen - used);
            blen -= used;
            if (k == BL_SPLIT_MORE && used == 0)
                break;
        }
        /* the daemon's buffer never fills with an unfinished line */
        if (blen >= BL_PROTO_LINE_MAX)
            abort();
    }
    return 0;
}
