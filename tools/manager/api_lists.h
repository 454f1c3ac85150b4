/*
 * api_lists.h - adding a list entry, shared by /api/lists and the
 * quarantine's allow-release (api_quarantine.c).
 */
#ifndef SLUICE_API_LISTS_H
#define SLUICE_API_LISTS_H

#include <libpq-fe.h>
#include <stddef.h>

enum {
    API_LISTS_OK = 0,
    API_LISTS_BAD = 1,    /* a value that is not valid: err says which */
    API_LISTS_EXISTS = 2, /* the same entry is already there */
    API_LISTS_DB = 3      /* the database failed: err has its message */
};

/* Checks and inserts one entry (owner "" for site); *id on success. */
int api_lists_add(PGconn *c, const char *kind, const char *level,
                  const char *owner, const char *value, const char *comment,
                  const char *by, long long *id, char *err, size_t errsz);

#endif
