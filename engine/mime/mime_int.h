/*
 * mime_int.h - internals shared by the files of sluice_mime; not installed,
 * not for the engine.  Byte buffers and an arena (mime_buf.c), UTF-8 and
 * windows-1252 (mime_utf8.c), charset conversion with a per-parse iconv
 * cache (mime_charset.c), transfer decodings (mime_cte.c), structured
 * header values and RFC 2231 parameters (mime_param.c), and the internal
 * entry points of hdr.c.
 *
 * Diagnostics: allocation failure is sticky in a mime_buf (->oom) and in
 * the arena; callers check once at the end.
 */
#ifndef SLUICE_MIME_INT_H
#define SLUICE_MIME_INT_H

#include "mime.h"

#include <iconv.h>
#include <stdint.h>

/* ---- mime_buf.c ------------------------------------------------- */

typedef struct mime_buf {
    unsigned char *data;
    size_t len, cap;
    int oom;
} mime_buf;

int mime_buf_reserve(mime_buf *b, size_t extra);
int mime_buf_put(mime_buf *b, const void *p, size_t n);
int mime_buf_putc(mime_buf *b, unsigned char c);
/* NUL-terminate and hand over the data (malloc'd); the buffer is reset.
 * NULL if an allocation failed at any point. */
unsigned char *mime_buf_finish(mime_buf *b, size_t *len);
void mime_buf_free(mime_buf *b);

typedef struct mime_arena_blk mime_arena_blk;
typedef struct mime_arena {
    mime_arena_blk *head;
    void **owned; /* malloc'd blocks adopted by the arena */
    size_t nowned, capowned;
    int oom;
} mime_arena;

void *mime_arena_alloc(mime_arena *a, size_t n);
char *mime_arena_strndup(mime_arena *a, const void *s, size_t n);
char *mime_arena_lower(mime_arena *a, const void *s, size_t n);
/* Take ownership of a malloc'd pointer (freed with the arena); on failure
 * frees it and returns -1. */
int mime_arena_adopt(mime_arena *a, void *p);
void mime_arena_free(mime_arena *a);

/* ---- mime_utf8.c ------------------------------------------------ */

/* Length (1..4) of the valid UTF-8 sequence at s, 0 if invalid/short. */
size_t mime_utf8_seq(const unsigned char *s, size_t n);
/* Length of the longest valid UTF-8 prefix of s. */
size_t mime_utf8_valid_prefix(const unsigned char *s, size_t n);
int mime_utf8_valid(const unsigned char *s, size_t n);
/* Index of the first byte >= 0x80, or n. */
size_t mime_ascii_prefix(const unsigned char *s, size_t n);
void mime_utf8_put(mime_buf *b, uint32_t cp);
/* Valid UTF-8 kept, every other byte taken as windows-1252. */
void mime_utf8_lenient(mime_buf *b, const unsigned char *s, size_t n);
/* Valid UTF-8 kept, every invalid sequence becomes U+FFFD; returns the
 * number of replacements. */
size_t mime_utf8_repair(mime_buf *b, const unsigned char *s, size_t n);
void mime_cp1252_put(mime_buf *b, const unsigned char *s, size_t n);

/* ---- mime_charset.c --------------------------------------------- */

#define MIME_CS_SLOTS 8
#define MIME_CS_NAMELEN 48

typedef struct mime_cs_ent {
    char name[MIME_CS_NAMELEN]; /* normalised declared name */
    int kind;
    int ascii_ok; /* iconv: pure ASCII converts to itself */
    iconv_t cd;
} mime_cs_ent;

/* iconv_open calls allowed per cache (per parse): bounds the work an
 * input rotating through many charset names can cause. */
#define MIME_CS_MAX_OPENS 32

typedef struct mime_charsets {
    mime_cs_ent ent[MIME_CS_SLOTS];
    size_t n, next;
    unsigned opens;
} mime_charsets;

void mime_charsets_init(mime_charsets *cs);
void mime_charsets_close(mime_charsets *cs);
/* Append s[0..n), declared in charset name[0..nlen) ("" = undeclared), to
 * b as UTF-8.  Returns SLUICE_MIME_BAD_CHARSET or 0. */
unsigned mime_charset_convert(mime_charsets *cs, const char *name, size_t nlen,
                              const unsigned char *s, size_t n, mime_buf *b);
/* 1 if converting s from this charset would copy it unchanged (valid
 * UTF-8 for UTF-8-compatible charsets, pure ASCII otherwise). */
int mime_charset_identity(mime_charsets *cs, const char *name, size_t nlen,
                          const unsigned char *s, size_t n);

/* ---- mime_cte.c ------------------------------------------------- */

/* Each appends to b and returns SLUICE_MIME_BAD_ENCODING or 0. */
unsigned mime_cte_base64(const unsigned char *s, size_t n, mime_buf *b);
unsigned mime_cte_qp(const unsigned char *s, size_t n, mime_buf *b);
unsigned mime_cte_qword(const unsigned char *s, size_t n, mime_buf *b);
int mime_cte_hex(unsigned char c);

/* ---- mime_param.c ----------------------------------------------- */

/* A structured value: "type/subtype; a=b; c*0*=..." after unfolding. */
typedef struct mime_param {
    size_t name_off, name_len; /* into mime_ctype.text */
    size_t val_off, val_len;   /* into mime_ctype.text (unquoted) */
    int section;               /* RFC 2231 *N, -1 if none */
    int extended;              /* RFC 2231 trailing '*' */
} mime_param;

typedef struct mime_ctype {
    mime_buf text;             /* unfolded copy + unquoted values */
    size_t main_off, main_len; /* "type/subtype" or the first token */
    size_t sub_off, sub_len;   /* subtype, if parse_type */
    mime_param *params;
    size_t nparams, capparams;
    int bad; /* syntax error seen */
    int oom;
} mime_ctype;

/* Parse raw[0..n).  want_type: expect "type/subtype" (Content-Type), else
 * a single token.  Returns 0, -1 on ENOMEM. */
int mime_ctype_parse(mime_ctype *ct, const char *raw, size_t n, int want_type);
void mime_ctype_free(mime_ctype *ct);
/* Value of parameter `name`, RFC 2231 sections joined and converted, RFC
 * 2047 words decoded; a malloc'd UTF-8 string or NULL if absent (or on
 * ENOMEM: *oom set).  raw_only: the plain unquoted value, no decoding. */
char *mime_ctype_param(mime_ctype *ct, const char *name, int raw_only,
                       mime_charsets *cs, unsigned *flags, int *oom);

/* ---- hdr.c internals -------------------------------------------- */

/* hdr_parse reusing out->fields (capacity *cap; 0 = none yet). */
int hdr_scan(const unsigned char *buf, size_t len, const mime_limits *lim,
             hdr_block *out, size_t *cap);
/* hdr_decode with a charset cache (NULL: a private one). */
char *hdr_decode_cs(const char *raw, size_t len, unsigned *flags,
                    mime_charsets *cs);
/* Effective limits: lim or defaults, zero fields defaulted, depth capped. */
void hdr_limits(const mime_limits *lim, mime_limits *eff);

#endif /* SLUICE_MIME_INT_H */
