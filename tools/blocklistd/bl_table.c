/*
 * bl_table.c - building and searching the blocklist table (bl_table.h).
 *
 * Building: each entry becomes two events on its address line, "list L
 * starts at LO" and "list L ends after HI".  bl_table_build() sorts the
 * events and sweeps them once with a per-list counter, which turns any
 * mix of overlapping entries (from one or several lists) into disjoint
 * ranges, each carrying the set of lists that cover it.  Sets are
 * interned: a range stores a 16-bit set number, not a 64-bit mask.
 *
 * Searching: a range is stored by its first address only (the next
 * range's start ends it; range 0 starts at address 0 and usually carries
 * the empty set), so a lookup is one binary search for the last start <=
 * the address.  IPv4: 6 bytes a range; IPv6: 18 bytes.
 *
 * Diagnostics: -1 and a one-line reason in err (with file:line while
 * loading).  Memory exhaustion is reported the same way.
 *
 * SECURITY: list files are operator input but parsed strictly and with
 * bounded copies; lookups take addresses parsed by bl_addr_parse() from
 * untrusted clients.
 */
#include "bl_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 bl_u128;

#define BL_LINE_MAX 1024
#define BL_SET_MAX 65535       /* set numbers are 16 bits */
#define BL_SET_HASH (1u << 17) /* twice BL_SET_MAX: short probe chains */
#define BL_EV_END 0x100u

/* One event of the sweep: position on the address line, list, kind. */
typedef struct bl_ev {
    uint64_t hi, lo;
    uint32_t tag; /* list | BL_EV_END */
} bl_ev;

typedef struct bl_evvec {
    bl_ev *v;
    size_t n, cap;
} bl_evvec;

/* IPv4 events are packed in 64 bits, position (33 bits: an end may be
 * 2^32) above the 9-bit tag, so that a plain integer sort orders them. */
#define BL_EV4_SHIFT 9

typedef struct bl_ev4vec {
    uint64_t *v;
    size_t n, cap;
} bl_ev4vec;

typedef struct bl_a6 {
    uint64_t hi, lo;
} bl_a6;

struct bl_table {
    int built;
    char names[BL_MAX_LISTS][BL_LIST_NAME_MAX + 1];
    unsigned nlists;
    unsigned last_list; /* lookup cache: files repeat one list */
    size_t entries;
    bl_ev4vec ev4;
    bl_evvec ev6;
    /* built */
    uint64_t *sets; /* set number -> mask of lists */
    size_t nsets;
    uint32_t *s4;
    uint16_t *set4;
    size_t n4;
    bl_a6 *s6;
    uint16_t *set6;
    size_t n6;
};

static void bl_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bl_err(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

bl_table *bl_table_new(void)
{
    return calloc(1, sizeof(bl_table));
}

void bl_table_free(bl_table *t)
{
    if (t == NULL)
        return;
    free(t->ev4.v);
    free(t->ev6.v);
    free(t->sets);
    free(t->s4);
    free(t->set4);
    free(t->s6);
    free(t->set6);
    free(t);
}

/* ---------------------------------------------------------------- */
/* Addresses                                                        */

static bl_u128 bl_u128_make(uint64_t hi, uint64_t lo)
{
    return ((bl_u128)hi << 64) | lo;
}

static void bl_a6_from_bytes(const unsigned char *b, uint64_t *hi, uint64_t *lo)
{
    int i;

    *hi = *lo = 0;
    for (i = 0; i < 8; i++) {
        *hi = (*hi << 8) | b[i];
        *lo = (*lo << 8) | b[8 + i];
    }
}

/* An IPv4-mapped address ::ffff:a.b.c.d: top 96 bits 0...0ffff. */
static int bl_is_mapped(uint64_t hi, uint64_t lo)
{
    return hi == 0 && (lo >> 32) == 0xffffu;
}

int bl_addr_parse(const char *s, size_t len, bl_addr *a)
{
    char buf[64];
    unsigned char b[16];

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL)
        return -1;
    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, buf, b) == 1) {
        a->a4 = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                (uint32_t)b[2] << 8 | b[3];
        return 0;
    }
    if (inet_pton(AF_INET6, buf, b) != 1)
        return -1;
    bl_a6_from_bytes(b, &a->hi, &a->lo);
    if (bl_is_mapped(a->hi, a->lo)) {
        a->a4 = (uint32_t)a->lo;
        a->hi = a->lo = 0;
        return 0;
    }
    a->v6 = 1;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Building                                                         */

static int bl_ev_push(bl_evvec *e, uint64_t hi, uint64_t lo, uint32_t tag)
{
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 1024;
        bl_ev *nv = realloc(e->v, nc * sizeof(*nv));
        if (nv == NULL)
            return -1;
        e->v = nv;
        e->cap = nc;
    }
    e->v[e->n].hi = hi;
    e->v[e->n].lo = lo;
    e->v[e->n].tag = tag;
    e->n++;
    return 0;
}

static int bl_ev4_push(bl_ev4vec *e, uint64_t pos, uint32_t tag)
{
    if (e->n == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 1024;
        uint64_t *nv = realloc(e->v, nc * sizeof(*nv));
        if (nv == NULL)
            return -1;
        e->v = nv;
        e->cap = nc;
    }
    e->v[e->n++] = pos << BL_EV4_SHIFT | tag;
    return 0;
}

static int bl_list_name_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > BL_LIST_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' &&
            s[i] != '.')
            return 0;
    return 1;
}

/* List number for a name, creating it; -1 if invalid or too many. */
static int bl_list_index(bl_table *t, const char *s, size_t n, char *err,
                         size_t errsz)
{
    unsigned i;

    if (!bl_list_name_ok(s, n)) {
        bl_err(err, errsz, "bad list name '%.*s' (1-%d of A-Z a-z 0-9 _ - .)",
               (int)(n > 40 ? 40 : n), s, BL_LIST_NAME_MAX);
        return -1;
    }
    if (t->last_list < t->nlists &&
        strncmp(t->names[t->last_list], s, n) == 0 &&
        t->names[t->last_list][n] == '\0')
        return (int)t->last_list;
    for (i = 0; i < t->nlists; i++)
        if (strncmp(t->names[i], s, n) == 0 && t->names[i][n] == '\0')
            return (int)(t->last_list = i);
    if (t->nlists == BL_MAX_LISTS) {
        bl_err(err, errsz, "too many lists (at most %d)", BL_MAX_LISTS);
        return -1;
    }
    memcpy(t->names[t->nlists], s, n);
    t->names[t->nlists][n] = '\0';
    t->last_list = t->nlists;
    return (int)t->nlists++;
}

/* Adds [lo, hi] of IPv4 list l. */
static int bl_add4(bl_table *t, uint32_t lo, uint32_t hi, unsigned l)
{
    if (bl_ev4_push(&t->ev4, lo, l) < 0 ||
        bl_ev4_push(&t->ev4, (uint64_t)hi + 1, l | BL_EV_END) < 0)
        return -1;
    return 0;
}

static int bl_add6(bl_table *t, bl_u128 lo, bl_u128 hi, unsigned l)
{
    if (bl_ev_push(&t->ev6, (uint64_t)(lo >> 64), (uint64_t)lo, l) < 0)
        return -1;
    if (hi == ~(bl_u128)0)
        return 0; /* runs to the end of the line: nothing ends it */
    hi++;
    return bl_ev_push(&t->ev6, (uint64_t)(hi >> 64), (uint64_t)hi,
                      l | BL_EV_END);
}

/* Parses "ADDR[/PREFIX]" of n bytes and adds it to list l. */
static int bl_add_cidr(bl_table *t, const char *s, size_t n, unsigned l,
                       char *err, size_t errsz)
{
    char buf[64];
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    unsigned char b[16];
    unsigned long plen;
    int v6;

    if (alen == 0 || alen >= sizeof(buf)) {
        bl_err(err, errsz, "bad address '%.*s'", (int)(n > 60 ? 60 : n), s);
        return -1;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, b) == 1)
        v6 = 0;
    else if (inet_pton(AF_INET6, buf, b) == 1)
        v6 = 1;
    else {
        bl_err(err, errsz, "bad address '%s'", buf);
        return -1;
    }
    plen = v6 ? 128 : 32;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t dl = n - alen - 1;
        size_t i;
        if (dl == 0 || dl > 3) {
            bl_err(err, errsz, "bad prefix length in '%.*s'",
                   (int)(n > 60 ? 60 : n), s);
            return -1;
        }
        plen = 0;
        for (i = 0; i < dl; i++) {
            if (!isdigit((unsigned char)p[i])) {
                bl_err(err, errsz, "bad prefix length in '%.*s'",
                       (int)(n > 60 ? 60 : n), s);
                return -1;
            }
            plen = plen * 10 + (unsigned long)(p[i] - '0');
        }
        if (plen > (v6 ? 128u : 32u) || (dl > 1 && p[0] == '0')) {
            bl_err(err, errsz, "bad prefix length in '%.*s'",
                   (int)(n > 60 ? 60 : n), s);
            return -1;
        }
    }
    if (!v6) {
        uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3];
        uint32_t host = plen == 0 ? 0xffffffffu : (1u << (32 - plen)) - 1;
        if (plen == 32)
            host = 0;
        if (a & host) {
            bl_err(err, errsz,
                   "host bits set in '%.*s' (the network is %u.%u.%u.%u/%lu)",
                   (int)(n > 60 ? 60 : n), s, (a & ~host) >> 24,
                   ((a & ~host) >> 16) & 255, ((a & ~host) >> 8) & 255,
                   (a & ~host) & 255, plen);
            return -1;
        }
        if (bl_add4(t, a, a | host, l) < 0)
            goto nomem;
    } else {
        uint64_t hi, lo;
        bl_u128 a, host;
        bl_a6_from_bytes(b, &hi, &lo);
        a = bl_u128_make(hi, lo);
        host = plen == 0 ? ~(bl_u128)0 : (((bl_u128)1 << (128 - plen)) - 1);
        if (plen == 128)
            host = 0;
        if (a & host) {
            bl_err(err, errsz, "host bits set in '%.*s'",
                   (int)(n > 60 ? 60 : n), s);
            return -1;
        }
        if (bl_add6(t, a, a | host, l) < 0)
            goto nomem;
        /* The IPv4 side of ::ffff:0:0/96: lookups of mapped addresses go
         * to the IPv4 ranges, so the entry must be there too. */
        if (plen >= 96 && bl_is_mapped(hi, lo)) {
            uint32_t a4 = (uint32_t)lo;
            uint32_t h4 = plen == 96    ? 0xffffffffu
                          : plen == 128 ? 0
                                        : (1u << (128 - plen)) - 1;
            if (bl_add4(t, a4, a4 | h4, l) < 0)
                goto nomem;
        } else if (plen < 96) {
            bl_u128 m = bl_u128_make(0, 0xffff00000000ull);
            if ((m & ~host) == a && bl_add4(t, 0, 0xffffffffu, l) < 0)
                goto nomem;
        }
    }
    t->entries++;
    return 0;
nomem:
    bl_err(err, errsz, "out of memory");
    return -1;
}

int bl_table_add(bl_table *t, const char *cidr, const char *list, char *err,
                 size_t errsz)
{
    int l;

    if (t->built) {
        bl_err(err, errsz, "table already built");
        return -1;
    }
    if ((l = bl_list_index(t, list, strlen(list), err, errsz)) < 0)
        return -1;
    return bl_add_cidr(t, cidr, strlen(cidr), (unsigned)l, err, errsz);
}

static int bl_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line of a list file (without its "\n"). */
static int bl_table_line(bl_table *t, const char *name, size_t lineno,
                         const char *deflist, const char *s, size_t n,
                         char *err, size_t errsz)
{
    const char *tok[3];
    size_t tl[3], nt = 0, i = 0;
    int l;
    char why[200];

    if (n > BL_LINE_MAX) {
        bl_err(err, errsz, "%s:%zu: line longer than %d bytes", name, lineno,
               BL_LINE_MAX);
        return -1;
    }
    if (memchr(s, '\0', n) != NULL) {
        bl_err(err, errsz, "%s:%zu: NUL byte", name, lineno);
        return -1;
    }
    while (nt < 3) {
        while (i < n && bl_space(s[i]))
            i++;
        if (i == n || s[i] == '#')
            break;
        tok[nt] = s + i;
        while (i < n && !bl_space(s[i]) && s[i] != '#')
            i++;
        tl[nt] = (size_t)(tok[nt] - s);
        tl[nt] = i - tl[nt];
        nt++;
    }
    if (nt == 0)
        return 0; /* empty or comment */
    if (nt == 3) {
        bl_err(err, errsz,
               "%s:%zu: unexpected '%.*s' (expected CIDR [LIST] "
               "[# comment])",
               name, lineno, (int)(tl[2] > 40 ? 40 : tl[2]), tok[2]);
        return -1;
    }
    if (nt == 2)
        l = bl_list_index(t, tok[1], tl[1], why, sizeof(why));
    else
        l = bl_list_index(t, deflist, strlen(deflist), why, sizeof(why));
    if (l < 0 ||
        bl_add_cidr(t, tok[0], tl[0], (unsigned)l, why, sizeof(why)) < 0) {
        bl_err(err, errsz, "%s:%zu: %s", name, lineno, why);
        return -1;
    }
    return 0;
}

int bl_table_load_buf(bl_table *t, const char *name, const char *deflist,
                      const char *buf, size_t len, char *err, size_t errsz)
{
    size_t off = 0, lineno = 0;

    if (t->built) {
        bl_err(err, errsz, "table already built");
        return -1;
    }
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - (buf + off)) : len - off;
        lineno++;
        if (bl_table_line(t, name, lineno, deflist, buf + off, ll, err, errsz) <
            0)
            return -1;
        off += ll + (nl != NULL);
    }
    return 0;
}

void bl_table_default_list(const char *path, char *out, size_t outsz)
{
    const char *base = strrchr(path, '/');
    size_t n, i, o = 0;

    if (outsz == 0)
        return;
    base = base ? base + 1 : path;
    n = strlen(base);
    for (i = n; i > 0; i--)
        if (base[i - 1] == '.') {
            n = i - 1;
            break;
        }
    for (i = 0; i < n && o + 1 < outsz && o < BL_LIST_NAME_MAX; i++)
        if (bl_list_name_ok(base + i, 1))
            out[o++] = base[i];
    if (o == 0)
        snprintf(out, outsz, "default");
    else
        out[o] = '\0';
}

int bl_table_load_file(bl_table *t, const char *path, char *err, size_t errsz)
{
    FILE *fp;
    char *line = NULL, deflist[BL_LIST_NAME_MAX + 1];
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;

    if (t->built) {
        bl_err(err, errsz, "table already built");
        return -1;
    }
    if ((fp = fopen(path, "re")) == NULL) {
        bl_err(err, errsz, "%s: %s", path, strerror(errno));
        return -1;
    }
    bl_table_default_list(path, deflist, sizeof(deflist));
    while ((n = getline(&line, &cap, fp)) >= 0) {
        size_t ll = (size_t)n;
        lineno++;
        if (ll > 0 && line[ll - 1] == '\n')
            ll--;
        if (bl_table_line(t, path, lineno, deflist, line, ll, err, errsz) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        bl_err(err, errsz, "%s: read error: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(fp);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Flattening                                                       */

static int bl_ev_cmp(const void *a, const void *b)
{
    const bl_ev *x = a, *y = b;

    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return 0;
}

/* LSD radix sort of packed IPv4 events (42 significant bits, 4 passes of
 * 11): linear, and its one scratch array is as large as the input, where
 * qsort's comparisons cost more time for the same memory. */
static int bl_ev4_sort(bl_ev4vec *e)
{
    uint64_t *tmp, *src = e->v, *dst;
    size_t cnt[2048], i;
    unsigned pass;

    if (e->n < 2)
        return 0;
    if ((tmp = malloc(e->n * sizeof(*tmp))) == NULL)
        return -1;
    dst = tmp;
    for (pass = 0; pass < 4; pass++) {
        unsigned sh = pass * 11;
        size_t sum = 0;
        memset(cnt, 0, sizeof(cnt));
        for (i = 0; i < e->n; i++)
            cnt[(src[i] >> sh) & 2047]++;
        for (i = 0; i < 2048; i++) {
            size_t c = cnt[i];
            cnt[i] = sum;
            sum += c;
        }
        for (i = 0; i < e->n; i++)
            dst[cnt[(src[i] >> sh) & 2047]++] = src[i];
        {
            uint64_t *x = src;
            src = dst;
            dst = x;
        }
    }
    /* an even number of passes: the result is back in e->v */
    free(tmp);
    return 0;
}

/* Event i of either family as (hi, lo, tag). */
static void bl_ev_at(const bl_table *t, int v4, size_t i, uint64_t *hi,
                     uint64_t *lo, unsigned *tag)
{
    if (v4) {
        uint64_t x = t->ev4.v[i];
        *hi = 0;
        *lo = x >> BL_EV4_SHIFT;
        *tag = (unsigned)(x & ((1u << BL_EV4_SHIFT) - 1));
    } else {
        *hi = t->ev6.v[i].hi;
        *lo = t->ev6.v[i].lo;
        *tag = t->ev6.v[i].tag;
    }
}

typedef struct bl_sethash {
    uint64_t *key;
    uint32_t *val; /* set number + 1; 0 = free slot */
} bl_sethash;

/* Set number of mask, interning it; -1 when there are too many sets. */
static long bl_set_intern(bl_table *t, bl_sethash *h, uint64_t mask)
{
    uint64_t x = mask * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(x >> 47) & (BL_SET_HASH - 1);

    if (mask == 0)
        return 0;
    for (;;) {
        if (h->val[i] == 0)
            break;
        if (h->key[i] == mask)
            return (long)h->val[i] - 1;
        i = (i + 1) & (BL_SET_HASH - 1);
    }
    if (t->nsets >= BL_SET_MAX)
        return -1;
    h->key[i] = mask;
    h->val[i] = (uint32_t)t->nsets + 1;
    t->sets[t->nsets] = mask;
    return (long)t->nsets++;
}

/*
 * Sweeps events e (sorted here) into ranges: starts go through put(),
 * which both families implement on their own arrays.  v4: positions past
 * 2^32 - 1 are ends of ranges that run to the last address.
 */
static int bl_sweep(bl_table *t, bl_sethash *h, int v4, char *err, size_t errsz)
{
    uint32_t cnt[BL_MAX_LISTS];
    uint64_t mask = 0;
    size_t nev = v4 ? t->ev4.n : t->ev6.n;
    size_t i = 0, n = 0, cap = nev + 1;
    uint16_t *set = malloc(cap * sizeof(*set));
    void *starts = malloc(cap * (v4 ? sizeof(uint32_t) : sizeof(bl_a6)));
    uint32_t *s4 = starts;
    bl_a6 *s6 = starts;

    if (set == NULL || starts == NULL) {
        free(set);
        free(starts);
        bl_err(err, errsz, "out of memory");
        return -1;
    }
    memset(cnt, 0, sizeof(cnt));
    if (v4 ? bl_ev4_sort(&t->ev4) < 0
           : (nev > 0 &&
              (qsort(t->ev6.v, nev, sizeof(*t->ev6.v), bl_ev_cmp), 0))) {
        free(set);
        free(starts);
        bl_err(err, errsz, "out of memory");
        return -1;
    }
    /* range 0 starts at the first address, with the empty set */
    if (v4)
        s4[0] = 0;
    else
        s6[0].hi = s6[0].lo = 0;
    set[0] = 0;
    n = 1;
    while (i < nev) {
        uint64_t phi, plo, ehi, elo;
        unsigned tag;
        long sn;
        int same;
        bl_ev_at(t, v4, i, &phi, &plo, &tag);
        if (v4 && plo > 0xffffffffu)
            break;
        for (; i < nev; i++) {
            unsigned l;
            bl_ev_at(t, v4, i, &ehi, &elo, &tag);
            if (ehi != phi || elo != plo)
                break;
            l = tag & 0xffu;
            if (tag & BL_EV_END) {
                if (--cnt[l] == 0)
                    mask &= ~(1ull << l);
            } else if (cnt[l]++ == 0) {
                mask |= 1ull << l;
            }
        }
        if ((sn = bl_set_intern(t, h, mask)) < 0) {
            bl_err(err, errsz, "too many distinct combinations of lists");
            free(set);
            free(starts);
            return -1;
        }
        same = v4 ? s4[n - 1] == plo
                  : (s6[n - 1].hi == phi && s6[n - 1].lo == plo);
        if (same) {
            set[n - 1] = (uint16_t)sn;
            if (n >= 2 && set[n - 2] == set[n - 1])
                n--; /* merges with the range before */
        } else if (set[n - 1] != (uint16_t)sn) {
            if (v4)
                s4[n] = (uint32_t)plo;
            else {
                s6[n].hi = phi;
                s6[n].lo = plo;
            }
            set[n++] = (uint16_t)sn;
        }
    }
    /* shrink to fit: the event array was an upper bound */
    {
        uint16_t *ns = realloc(set, n * sizeof(*set));
        void *nst =
            realloc(starts, n * (v4 ? sizeof(uint32_t) : sizeof(bl_a6)));
        if (ns)
            set = ns;
        if (nst)
            starts = nst;
    }
    if (v4) {
        t->s4 = starts;
        t->set4 = set;
        t->n4 = n;
    } else {
        t->s6 = starts;
        t->set6 = set;
        t->n6 = n;
    }
    return 0;
}

int bl_table_build(bl_table *t, char *err, size_t errsz)
{
    bl_sethash h;
    int rc = -1;

    if (t->built) {
        bl_err(err, errsz, "table already built");
        return -1;
    }
    h.key = calloc(BL_SET_HASH, sizeof(*h.key));
    h.val = calloc(BL_SET_HASH, sizeof(*h.val));
    t->sets = calloc(BL_SET_MAX, sizeof(*t->sets));
    if (h.key == NULL || h.val == NULL || t->sets == NULL) {
        bl_err(err, errsz, "out of memory");
        goto out;
    }
    t->sets[0] = 0;
    t->nsets = 1;
    if (bl_sweep(t, &h, 1, err, errsz) < 0)
        goto out;
    free(t->ev4.v); /* as soon as possible: the peak is during the build */
    memset(&t->ev4, 0, sizeof(t->ev4));
    if (bl_sweep(t, &h, 0, err, errsz) < 0)
        goto out;
    {
        uint64_t *ns = realloc(t->sets, t->nsets * sizeof(*ns));
        if (ns)
            t->sets = ns;
    }
    free(t->ev4.v);
    free(t->ev6.v);
    memset(&t->ev4, 0, sizeof(t->ev4));
    memset(&t->ev6, 0, sizeof(t->ev6));
    t->built = 1;
    rc = 0;
out:
    free(h.key);
    free(h.val);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Lookups                                                          */

uint64_t bl_table_lookup(const bl_table *t, const bl_addr *a)
{
    size_t lo = 0, hi;

    if (!t->built)
        return 0;
    if (!a->v6) {
        hi = t->n4; /* invariant: s4[lo] <= a, s4[hi] > a (or end) */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (t->s4[mid] <= a->a4)
                lo = mid;
            else
                hi = mid;
        }
        return t->sets[t->set4[lo]];
    }
    hi = t->n6;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        const bl_a6 *m = &t->s6[mid];
        if (m->hi < a->hi || (m->hi == a->hi && m->lo <= a->lo))
            lo = mid;
        else
            hi = mid;
    }
    return t->sets[t->set6[lo]];
}

const char *bl_table_list_name(const bl_table *t, unsigned i)
{
    return i < t->nlists ? t->names[i] : NULL;
}

void bl_table_stats_get(const bl_table *t, bl_table_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->entries = t->entries;
    st->v4_ranges = t->n4;
    st->v6_ranges = t->n6;
    st->lists = t->nlists;
    st->bytes = t->n4 * (sizeof(uint32_t) + sizeof(uint16_t)) +
                t->n6 * (sizeof(bl_a6) + sizeof(uint16_t)) +
                t->nsets * sizeof(uint64_t) + sizeof(*t);
}
