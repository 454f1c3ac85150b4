/*
 * bl_table.h - the blocklist daemon's address table: IPv4 and IPv6 CIDR
 * entries from several named lists, flattened into sorted, disjoint
 * ranges that a binary search answers.
 *
 * Interface
 *   bl_table_new()            an empty table being built
 *   bl_table_load_file(t, path, err, errsz)
 *                             parse a list file into t (see the format
 *                             below); -1 with "path:line: reason" in err
 *   bl_table_load_buf(t, name, deflist, buf, len, err, errsz)
 *                             the same from memory (tests, fuzzing)
 *   bl_table_add(t, cidr, list, err, errsz)
 *                             one entry, "192.0.2.0/24" or "2001:db8::1"
 *   bl_table_build(t, err, errsz)
 *                             flatten: after this only lookups are allowed
 *   bl_table_lookup(t, addr)  bit mask of the lists that hold addr
 *   bl_table_list_name(t, i)  name of list bit i
 *   bl_table_free(t)
 *   bl_addr_parse(s, len, a)  a textual address; IPv4-mapped IPv6
 *                             (::ffff:192.0.2.1) becomes IPv4
 *
 * File format: one entry per line, `CIDR [LIST] [# comment]`; empty and
 * comment lines are skipped.  CIDR is an IPv4 or IPv6 address with an
 * optional /PREFIX (a bare address is /32 or /128); host bits below the
 * prefix must be zero.  LIST is [A-Za-z0-9_.-]{1,32}; without it the
 * entry goes to the file's default list (its base name without the
 * extension).  At most BL_MAX_LISTS lists.  An IPv6 entry that covers
 * part of ::ffff:0:0/96 also applies to the IPv4 addresses it maps.
 *
 * Diagnostics: every function that can fail returns -1 and writes one
 * line into err; nothing is fatal and nothing is logged here.
 */
#ifndef BL_TABLE_H
#define BL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define BL_MAX_LISTS 64
#define BL_LIST_NAME_MAX 32

typedef struct bl_table bl_table;

typedef struct bl_addr {
    int v6;          /* 0: IPv4 in a4 */
    uint32_t a4;     /* host order */
    uint64_t hi, lo; /* IPv6, host order halves */
} bl_addr;

typedef struct bl_table_stats {
    size_t entries;   /* lines/adds accepted */
    size_t v4_ranges; /* disjoint ranges after build */
    size_t v6_ranges;
    size_t lists;
    size_t bytes; /* memory held by the built table */
} bl_table_stats;

bl_table *bl_table_new(void);
void bl_table_free(bl_table *t);
int bl_table_add(bl_table *t, const char *cidr, const char *list, char *err,
                 size_t errsz);
int bl_table_load_buf(bl_table *t, const char *name, const char *deflist,
                      const char *buf, size_t len, char *err, size_t errsz);
int bl_table_load_file(bl_table *t, const char *path, char *err, size_t errsz);
int bl_table_build(bl_table *t, char *err, size_t errsz);
uint64_t bl_table_lookup(const bl_table *t, const bl_addr *a);
const char *bl_table_list_name(const bl_table *t, unsigned i);
void bl_table_stats_get(const bl_table *t, bl_table_stats *st);

int bl_addr_parse(const char *s, size_t len, bl_addr *a);
/* The list name a file path gives by default: base name, extension cut. */
void bl_table_default_list(const char *path, char *out, size_t outsz);

#endif /* BL_TABLE_H */
