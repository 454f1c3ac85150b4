/*
 * mime_buf.c - growable byte buffers and a bump arena for sluice_mime.
 *
 * Interface (mime_int.h): mime_buf_reserve/put/putc/finish/free;
 * mime_arena_alloc/strndup/lower/adopt/free.
 *
 * Diagnostics: allocation failure sets a sticky oom flag and the call
 * returns -1 / NULL; nothing is fatal.  Sizes are checked for overflow.
 */
#include "mime_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int mime_buf_reserve(mime_buf *b, size_t extra)
{
    size_t need, ncap;
    unsigned char *p;

    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    need = b->len + extra + 1; /* room for a final NUL */
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    p = realloc(b->data, ncap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = ncap;
    return 0;
}

int mime_buf_put(mime_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return b->oom ? -1 : 0;
    if (mime_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int mime_buf_putc(mime_buf *b, unsigned char c)
{
    if (b->len + 1 >= b->cap && mime_buf_reserve(b, 1) < 0)
        return -1;
    if (b->oom)
        return -1;
    b->data[b->len++] = c;
    return 0;
}

unsigned char *mime_buf_finish(mime_buf *b, size_t *len)
{
    unsigned char *p;

    if (mime_buf_reserve(b, 0) < 0) {
        mime_buf_free(b);
        return NULL;
    }
    b->data[b->len] = '\0';
    p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void mime_buf_free(mime_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* ---------------------------------------------------------------- */

#define ARENA_BLOCK 8192

struct mime_arena_blk {
    mime_arena_blk *next;
    size_t used, cap;
    max_align_t align[]; /* data */
};

void *mime_arena_alloc(mime_arena *a, size_t n)
{
    mime_arena_blk *blk = a->head;
    size_t al = (n + 15) & ~(size_t)15;
    void *p;

    if (a->oom || n > SIZE_MAX / 2)
        return NULL;
    if (al > ARENA_BLOCK / 4) {
        /* Big: a block of its own, kept behind the current head. */
        blk = malloc(sizeof(*blk) + al);
        if (blk == NULL) {
            a->oom = 1;
            return NULL;
        }
        blk->used = blk->cap = al;
        if (a->head) {
            blk->next = a->head->next;
            a->head->next = blk;
        } else {
            blk->next = NULL;
            a->head = blk;
        }
        return (unsigned char *)blk->align;
    }
    if (blk == NULL || blk->cap - blk->used < al) {
        blk = malloc(sizeof(*blk) + ARENA_BLOCK);
        if (blk == NULL) {
            a->oom = 1;
            return NULL;
        }
        blk->used = 0;
        blk->cap = ARENA_BLOCK;
        blk->next = a->head;
        a->head = blk;
    }
    p = (unsigned char *)blk->align + blk->used;
    blk->used += al;
    return p;
}

char *mime_arena_strndup(mime_arena *a, const void *s, size_t n)
{
    char *p = mime_arena_alloc(a, n + 1);

    if (p == NULL)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mime_arena_lower(mime_arena *a, const void *s, size_t n)
{
    char *p = mime_arena_strndup(a, s, n);
    size_t i;

    if (p == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] - 'A' + 'a');
    return p;
}

int mime_arena_adopt(mime_arena *a, void *p)
{
    if (p == NULL)
        return 0;
    if (a->nowned == a->capowned) {
        size_t nc = a->capowned ? a->capowned * 2 : 16;
        void **o = realloc(a->owned, nc * sizeof(*o));
        if (o == NULL) {
            free(p);
            a->oom = 1;
            return -1;
        }
        a->owned = o;
        a->capowned = nc;
    }
    a->owned[a->nowned++] = p;
    return 0;
}

void mime_arena_free(mime_arena *a)
{
    mime_arena_blk *blk, *next;
    size_t i;

    for (blk = a->head; blk; blk = next) {
        next = blk->next;
        free(blk);
    }
    for (i = 0; i < a->nowned; i++)
        free(a->owned[i]);
    free(a->owned);
    memset(a, 0, sizeof(*a));
}
