/*
 * mime.h - the message parser: header blocks, header decoding, MIME tree.
 *
 * Interface
 *   hdr_parse()/hdr_block_free(): one header block, zero-copy (offsets into
 *   the caller's buffer).  hdr_decode(): unfold + RFC 2047 decode a raw
 *   value to UTF-8.  mime_parse()/mime_free() and the accessors: the whole
 *   message as a tree of sluice_part (abi/sluice/stage.h), part 0 being the
 *   message itself, parts in document order (a parent precedes its
 *   children).  Raw pointers and offsets refer to the caller's buffer, which
 *   must outlive the mime_msg; decoded text and strings are owned by it.
 *
 *   Containers (multipart/ types, and message/rfc822 whose body is parsed as a
 *   child message) have is_multipart = 1 and no decoded content; every
 *   other part is a leaf with transfer-decoded content, converted to UTF-8
 *   for text leaves.  A multipart without any delimiter line gets one
 *   headerless text/plain child covering its body (flag BAD_BOUNDARY), so
 *   that its content stays visible to the stages.  An unknown
 *   Content-Disposition type counts as "attachment" (RFC 2183).  A
 *   message/rfc822 body with a base64 or quoted-printable encoding is a
 *   leaf (its decoded bytes are not in the caller's buffer).
 *
 * Diagnostics
 *   Functions fail only on memory exhaustion (-1 / NULL).  Malformed input
 *   is never an error: it sets SLUICE_MIME_* flags on the part concerned
 *   (mime_flags() is the OR of all of them) and is parsed as a mail reader
 *   would.  Limits (mime_limits) bound the work; hitting one sets a flag.
 *
 * SECURITY
 *   Every byte of input is attacker-controlled.  The parser never reads
 *   outside [buf, buf + len), never recurses deeper than the depth limit
 *   (capped at MIME_DEPTH_CAP whatever the caller asks), and runs in time
 *   linear in the input times the nesting depth.  Decoded header values
 *   contain no NUL, CR or LF bytes.  Charset conversion uses glibc iconv
 *   only for names made of [a-z0-9._:-].
 */
#ifndef SLUICE_MIME_H
#define SLUICE_MIME_H

#include <stddef.h>
#include <sluice/stage.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard cap on max_depth, whatever the caller configures (stack bound). */
#define MIME_DEPTH_CAP 200

typedef struct mime_limits {
    size_t max_parts;        /* default 1000; beyond: root TRUNCATED */
    int max_depth;           /* default 20 nesting levels */
    size_t max_header_count; /* per header block, default 1000 */
    size_t max_header_len;   /* one field incl. folds, default 65536 */
} mime_limits;

/* Fill *lim with the defaults.  A zero field in a caller's limits also
 * means "the default". */
void mime_limits_default(mime_limits *lim);

/* One header field (zero-copy): offsets into the parsed buffer. */
typedef struct hdr_field {
    size_t name_off, name_len; /* name as written, without the colon */
    size_t raw_off, raw_len;   /* value after the colon, folds kept, up to
                                * (not incl.) the final line ending */
    size_t end_off;            /* just past the final line ending */
} hdr_field;

typedef struct hdr_block {
    hdr_field *fields;
    size_t count;
    size_t body_off; /* first body byte (past the empty line), len if none */
    unsigned flags;  /* SLUICE_MIME_* found in the header block */
} hdr_block;

/* Parse the header block at buf[0..len).  Returns 0, or -1 on ENOMEM
 * (*out is then empty).  lim may be NULL (defaults). */
int hdr_parse(const unsigned char *buf, size_t len, const mime_limits *lim,
              hdr_block *out);
void hdr_block_free(hdr_block *b);

/* Unfold and decode a raw value to a malloc'd NUL-terminated UTF-8 string;
 * NULL only on ENOMEM.  *flags (may be NULL) gets BAD_CHARSET,
 * BAD_ENCODING and 8BIT_HEADER bits OR'ed in. */
char *hdr_decode(const char *raw, size_t len, unsigned *flags);

typedef struct mime_msg mime_msg;

/* Parse a whole message; NULL only on ENOMEM.  lim may be NULL. */
mime_msg *mime_parse(const unsigned char *buf, size_t len,
                     const mime_limits *lim);
void mime_free(mime_msg *m);
size_t mime_part_count(const mime_msg *m);
const sluice_part *mime_part(const mime_msg *m, size_t i);
unsigned mime_flags(const mime_msg *m);
size_t mime_header_count(const mime_msg *m);
const sluice_header *mime_header(const mime_msg *m, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_MIME_H */
