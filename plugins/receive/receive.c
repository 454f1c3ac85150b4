/*
 * receive.c - the `receive` stage: parses and normalises each message at
 * end of data (the engine's MIME parser, through the host), reports what
 * was malformed as symbols, and adds the trace header that shows a message
 * went through sluice.
 *
 * Symbols (score 0 unless configured: they are findings for later stages
 * and for the log, not a verdict): MIME_TRUNCATED, MIME_BAD_BOUNDARY,
 * MIME_BAD_ENCODING, MIME_BAD_CHARSET, MIME_BAD_HEADER, MIME_NUL,
 * MIME_LONG_LINE, MIME_8BIT_HEADER.
 *
 * SECURITY: everything it looks at is attacker-controlled; it only reads
 * through the host's bounded accessors.
 */
#include <sluice/stage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct receive_conf {
    char *header;       /* trace header name */
    int add_header;
    double malformed_score;
} receive_conf;

typedef struct receive_inst {
    const sluice_host *host;
    sluice_ctx *ctx;
    receive_conf *conf;
} receive_inst;

static const sluice_directive receive_directives[] = {
    {"trace_header", SLUICE_CONF_STRING, offsetof(receive_conf, header),
     "X-Sluice-Status", 0, 0, NULL, "name of the trace header"},
    {"add_trace_header", SLUICE_CONF_BOOL, offsetof(receive_conf, add_header),
     "yes", 0, 0, NULL, "add the trace header"},
    {"malformed_score", SLUICE_CONF_DOUBLE,
     offsetof(receive_conf, malformed_score), "0", 0, 100, NULL,
     "score of each malformation symbol"},
    {NULL, SLUICE_CONF_END, 0, NULL, 0, 0, NULL, NULL}};

static int receive_init(sluice_ctx *ctx, const sluice_host *host, void *conf,
                        void **inst)
{
    receive_inst *ri = calloc(1, sizeof(*ri));

    if (ri == NULL)
        return -1;
    ri->host = host;
    ri->ctx = ctx;
    ri->conf = conf;
    *inst = ri;
    return 0;
}

static void receive_fini(void *inst)
{
    free(inst);
}

static sluice_verdict receive_eom(void *inst, sluice_txn *txn, void *slot)
{
    static const struct {
        unsigned bit;
        const char *name, *why;
    } flags[] = {
        {SLUICE_MIME_TRUNCATED, "MIME_TRUNCATED", "parse limits reached"},
        {SLUICE_MIME_BAD_BOUNDARY, "MIME_BAD_BOUNDARY",
         "multipart without its closing boundary"},
        {SLUICE_MIME_BAD_ENCODING, "MIME_BAD_ENCODING",
         "invalid base64 or quoted-printable"},
        {SLUICE_MIME_BAD_CHARSET, "MIME_BAD_CHARSET",
         "unknown or invalid charset"},
        {SLUICE_MIME_BAD_HEADER, "MIME_BAD_HEADER", "malformed header line"},
        {SLUICE_MIME_NUL, "MIME_NUL", "NUL bytes in the message"},
        {SLUICE_MIME_LONG_LINE, "MIME_LONG_LINE", "line over 998 octets"},
        {SLUICE_MIME_8BIT_HEADER, "MIME_8BIT_HEADER",
         "unencoded 8-bit header"},
    };
    receive_inst *ri = inst;
    const sluice_host *h = ri->host;
    size_t nparts = h->part_count(txn), i, attachments = 0;
    unsigned mf = h->msg_flags(txn);
    char value[256];

    if (nparts == 0) {
        h->log(ri->ctx, txn, SLUICE_LOG_ERROR, "message could not be parsed");
        h->set_reply(txn, "451", "4.3.0", "message could not be parsed");
        return SLUICE_TEMPFAIL;
    }
    for (i = 0; i < nparts; i++) {
        const sluice_part *p = h->part(txn, i);
        if (p && p->is_attachment)
            attachments++;
    }
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (mf & flags[i].bit)
            h->symbol_add(txn, flags[i].name, ri->conf->malformed_score, "%s",
                          flags[i].why);
    h->counter_add(ri->ctx, "messages", 1);
    h->counter_add(ri->ctx, "parts", (long long)nparts);
    if (mf)
        h->counter_add(ri->ctx, "malformed", 1);
    if (ri->conf->add_header) {
        snprintf(value, sizeof(value),
                 "scanned by %s (sluice); id=%s; parts=%zu; attachments=%zu",
                 h->hostname(ri->ctx), h->txn_id(txn), nparts, attachments);
        if (h->header_insert(txn, 0, ri->conf->header, value) < 0)
            h->log(ri->ctx, txn, SLUICE_LOG_WARN,
                   "could not add the %s header", ri->conf->header);
    }
    return SLUICE_CONTINUE;
}

SLUICE_STAGE_DECLARE = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sluice_stage),
    .name = "receive",
    .version = "1.0",
    .description = "parse and normalise the message; add the trace header",
    .flags = SLUICE_STAGE_ADD_HEADERS,
    .directives = receive_directives,
    .conf_size = sizeof(receive_conf),
    .init = receive_init,
    .fini = receive_fini,
    .on_phase = {[SLUICE_PHASE_EOM] = receive_eom},
};
