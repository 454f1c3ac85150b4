/*
 * deliver_proto.h - the I/O-free half of the `deliver` stage's SMTP client.
 *
 * Interface
 *   deliver_reply_parse()    one complete (possibly multi-line) reply from a
 *                            byte buffer, or "need more", or a protocol error
 *   deliver_reply_format()   a reply as one safe line "CODE X.Y.Z text"
 *   deliver_ehlo_parse()     the EHLO keywords the client cares about
 *   deliver_xtext()          RFC 3461 xtext encoding
 *   deliver_cmd_xforward()   XFORWARD command(s), each under 512 octets
 *   deliver_params_filter()  ESMTP parameters the server can take
 *   deliver_cmd_mail/rcpt()  MAIL FROM / RCPT TO lines
 *   deliver_dot_*()          CRLF normalisation + dot-stuffing of content
 *                            fed in arbitrary chunks
 *   deliver_outcome()        per-recipient outcome from the reply codes
 *
 * Diagnostics: functions return -1 (or 0 bytes) on bad input or a too small
 * output buffer; the parser sets a static reason string.  Nothing is fatal.
 *
 * SECURITY: replies come from the next hop, envelope data from the
 * original client: both are bounded and checked before use; nothing here
 * copies without a length check.
 */
#ifndef DELIVER_PROTO_H
#define DELIVER_PROTO_H

#include <sluice/stage.h>

#include <stddef.h>
#include <sys/types.h>

/* A reply, all lines included, may not exceed this many octets. */
#define DELIVER_REPLY_MAX 4096
/* SMTP command line limit (RFC 5321 4.5.3.1.4), CRLF included. */
#define DELIVER_LINE_MAX 512
/* One-line reply strings handed to host->rcpt_set(). */
#define DELIVER_ONELINE_MAX 512

typedef struct deliver_reply {
    int code;   /* 200..599 */
    int lines;  /* number of lines */
    size_t len; /* bytes in text */
    /* Lines without code and separator, joined by '\n'; NUL-terminated. */
    char text[DELIVER_REPLY_MAX + 1];
} deliver_reply;

/*
 * Parses one reply at the start of buf[0..len).  Returns the number of
 * bytes it used (> 0) when a complete reply is there, 0 when more input is
 * needed, -1 on a protocol error (*why says what).  Lines end in CRLF or a
 * bare LF.
 */
ssize_t deliver_reply_parse(const char *buf, size_t len, deliver_reply *r,
                            const char **why);

/* "CODE X.Y.Z text" on one line of printable ASCII, lines joined by a
 * space; a missing enhanced code becomes C.0.0.  Returns strlen(out). */
size_t deliver_reply_format(const deliver_reply *r, char *out, size_t outsz);

/* Makes s printable ASCII without CR/LF in place ('?' for others). */
void deliver_safe_text(char *s);

/* Extensions learnt from EHLO. */
enum {
    DELIVER_EXT_PIPELINING = 1u << 0,
    DELIVER_EXT_SIZE = 1u << 1,
    DELIVER_EXT_8BITMIME = 1u << 2,
    DELIVER_EXT_DSN = 1u << 3,
    DELIVER_EXT_XFORWARD = 1u << 4,
    DELIVER_EXT_SMTPUTF8 = 1u << 5,
    DELIVER_EXT_ENHANCED = 1u << 6,
    DELIVER_EXT_AUTH = 1u << 7
};

/* XFORWARD attributes, in the order they are sent. */
enum {
    DELIVER_XF_NAME = 1u << 0,
    DELIVER_XF_ADDR = 1u << 1,
    DELIVER_XF_PORT = 1u << 2,
    DELIVER_XF_PROTO = 1u << 3,
    DELIVER_XF_HELO = 1u << 4,
    DELIVER_XF_IDENT = 1u << 5,
    DELIVER_XF_SOURCE = 1u << 6,
    DELIVER_XF_COUNT = 7
};

typedef struct deliver_features {
    unsigned ext;                  /* DELIVER_EXT_* */
    unsigned xforward;             /* DELIVER_XF_* the server listed */
    unsigned long long size_limit; /* SIZE argument, 0 if none */
} deliver_features;

/* Reads the keywords of an EHLO reply (every line but the first). */
void deliver_ehlo_parse(const deliver_reply *r, deliver_features *f);

/* xtext-encodes in[0..] into out; -1 if it does not fit. */
ssize_t deliver_xtext(const char *in, char *out, size_t outsz);

/* The values for XFORWARD, from host->client(); NULL or "" = unknown. */
typedef struct deliver_xfwd {
    const char *name, *addr, *proto, *helo, *ident, *source;
    int port;
} deliver_xfwd;

/*
 * Writes "XFORWARD A=v ...\r\n" lines for the attributes in `attrs` into
 * out, splitting so that no line exceeds DELIVER_LINE_MAX octets.  Returns
 * the number of commands written (0 if attrs is empty), -1 if out is too
 * small.  *outlen gets the bytes written.
 */
int deliver_cmd_xforward(const deliver_xfwd *x, unsigned attrs, char *out,
                         size_t outsz, size_t *outlen);

/*
 * Keeps the ESMTP parameters of `params` (space separated, as received)
 * that the server can take: MAIL (is_mail 1) SIZE needs SIZE, BODY needs
 * 8BITMIME, RET/ENVID need DSN, SMTPUTF8 needs SMTPUTF8, AUTH needs AUTH;
 * RCPT NOTIFY/ORCPT need DSN.  Others are dropped.  Output starts with a
 * space unless empty.  Returns its length, -1 if it does not fit or a
 * parameter holds a control character.
 */
ssize_t deliver_params_filter(const char *params, const deliver_features *f,
                              int is_mail, char *out, size_t outsz);

/* "MAIL FROM:<addr> params\r\n" / "RCPT TO:<addr> params\r\n".  -1 when the
 * address holds CR, LF or another control character, or it does not fit. */
ssize_t deliver_cmd_mail(const char *addr, const char *params,
                         const deliver_features *f, char *out, size_t outsz);
ssize_t deliver_cmd_rcpt(const char *addr, const char *params,
                         const deliver_features *f, char *out, size_t outsz);

/* Content encoder: LF or CRLF -> CRLF, bare CR kept, leading '.' doubled. */
typedef struct deliver_dot {
    int bol; /* next byte starts a line */
    int cr;  /* the last byte was a CR (already written) */
} deliver_dot;

void deliver_dot_init(deliver_dot *d);
/* Encodes as much of in[0..inlen) as fits in out (at least 3 bytes are
 * needed per input byte in the worst case).  *used gets the input bytes
 * consumed; returns the bytes written. */
size_t deliver_dot_encode(deliver_dot *d, const char *in, size_t inlen,
                          size_t *used, char *out, size_t outsz);
/* The end: CRLF if the content did not end a line, then ".\r\n".  out
 * needs 5 bytes; returns the bytes written, 0 if out is too small. */
size_t deliver_dot_finish(deliver_dot *d, char *out, size_t outsz);

/* Which reply decided a recipient's outcome. */
typedef enum deliver_from {
    DELIVER_FROM_NONE = 0, /* no reply: the connection failed */
    DELIVER_FROM_MAIL,
    DELIVER_FROM_RCPT,
    DELIVER_FROM_DATA,
    DELIVER_FROM_FINAL
} deliver_from;

/* State for a reply code: 2xx DONE, 5xx REJECTED, anything else TEMPFAIL. */
sluice_rcpt_state deliver_code_state(int code);

/*
 * The outcome of one recipient from the codes of MAIL, its RCPT, DATA
 * (354 expected) and the final reply; 0 means "no reply got".  *from says
 * which reply to report.
 */
sluice_rcpt_state deliver_outcome(int mail, int rcpt, int data, int final,
                                  deliver_from *from);

#endif /* DELIVER_PROTO_H */
