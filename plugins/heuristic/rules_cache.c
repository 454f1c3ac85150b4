/*
 * rules_cache.c - compiled Hyperscan databases kept on disk, so a load or
 * reload of an unchanged rule set (and every `sluicectl scan`) does not
 * pay Hyperscan's compile again: with sluice's default rules the compile
 * is most of the scanner's start-up, with SpamAssassin's it is seconds.
 *
 * One file per rule group, named by a 64-bit FNV-1a hash of the key: the
 * Hyperscan version and the CPU it compiles for, then every pattern of
 * the group with its flags, in order.  The file holds the whole key (compared byte for byte, so a hash
 * collision is a miss, never a wrong database), the indices of the
 * patterns the compile kept (the ones Hyperscan refused go to PCRE2 as
 * they did at the first compile), the serialized database and a checksum
 * of all of it.  Written to a temporary name and renamed: readers see an
 * old file or a new one, never half of one.  Files unused for
 * RULES_CACHE_MAX_AGE days are removed when a new one is written; any
 * file may be deleted at any time (it is compiled again).
 *
 * SECURITY: a serialized Hyperscan database is code-like data that
 * hs_deserialize_database() trusts, so only files that this user could
 * have written are read: the directory and the file must be owned by the
 * effective user and writable by nobody else, the file a regular file
 * opened without following symbolic links.  The directory is created
 * mode 0700.  Every failure is a miss: the rules compile as without a
 * cache, the stage never fails because of it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rules_int.h"

#ifdef SLUICE_HAVE_HYPERSCAN
#include <hs/hs.h>

#define RULES_CACHE_MAGIC "SLUICEHS1\n"
#define RULES_CACHE_MAX_FILE (512u * 1024 * 1024)
#define RULES_CACHE_MAX_AGE 30 /* days */

static uint64_t rc_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

#define RC_FNV0 UINT64_C(0xcbf29ce484222325)

typedef struct rc_buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} rc_buf;

static void rc_put(rc_buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        unsigned char *np;
        while (nc < b->len + n)
            nc *= 2;
        if ((np = realloc(b->p, nc)) == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void rc_put64(rc_buf *b, uint64_t v)
{
    rc_put(b, &v, sizeof(v));
}

/* The key: what the compile's result depends on. */
static int rc_key(const char *const *pats, const unsigned *flags, size_t n,
                  rc_buf *key)
{
    const char *ver = hs_version();
    hs_platform_info_t plat;
    size_t i;

    /* the compile targets this CPU: another one (a VM, valgrind) gets
     * databases of its own */
    memset(&plat, 0, sizeof(plat));
    if (hs_populate_platform(&plat) != HS_SUCCESS)
        return -1;
    rc_put(key, ver, strlen(ver) + 1);
    rc_put64(key, plat.tune);
    rc_put64(key, plat.cpu_features);
    rc_put64(key, n);
    for (i = 0; i < n; i++) {
        size_t l = strlen(pats[i]);
        rc_put64(key, flags[i]);
        rc_put64(key, l);
        rc_put(key, pats[i], l);
    }
    return key->oom ? -1 : 0;
}

/* The cache directory, opened if it is ours alone; -1 otherwise. */
static int rc_dir_open(const char *dir, int create)
{
    struct stat st;
    int fd;

    if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void rc_name(uint64_t h, char *out, size_t outsz)
{
    snprintf(out, outsz, "hs-%016llx.db", (unsigned long long)h);
}

static int rc_read_all(int fd, size_t len, unsigned char *p)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int rc_get64(const unsigned char **p, const unsigned char *end,
                    uint64_t *v)
{
    if ((size_t)(end - *p) < sizeof(*v))
        return -1;
    memcpy(v, *p, sizeof(*v));
    *p += sizeof(*v);
    return 0;
}

/* Parse a cache file's bytes against key; 0 with *db and keep[] set. */
static int rc_parse(const unsigned char *p, size_t len, const rc_buf *key,
                    size_t n, hs_database_t **db, size_t *keep, size_t *nkeep)
{
    const unsigned char *end = p + len;
    uint64_t v, sum, i, prev = 0;
    size_t ml = strlen(RULES_CACHE_MAGIC);

    if (len < ml + sizeof(sum))
        return -1;
    end -= sizeof(sum);
    memcpy(&sum, end, sizeof(sum));
    if (rc_fnv(RC_FNV0, p, (size_t)(end - p)) != sum ||
        memcmp(p, RULES_CACHE_MAGIC, ml) != 0)
        return -1;
    p += ml;
    if (rc_get64(&p, end, &v) < 0 || v != key->len ||
        (size_t)(end - p) < key->len || memcmp(p, key->p, key->len) != 0)
        return -1;
    p += key->len;
    if (rc_get64(&p, end, &v) < 0 || v > n)
        return -1;
    *nkeep = (size_t)v;
    for (i = 0; i < *nkeep; i++) {
        if (rc_get64(&p, end, &v) < 0 || v >= n || (i > 0 && v <= prev))
            return -1;
        keep[i] = (size_t)v;
        prev = v;
    }
    if (rc_get64(&p, end, &v) < 0 || v != (uint64_t)(end - p))
        return -1;
    if (v == 0)
        return *nkeep == 0 ? 0 : -1; /* the whole group was refused */
    return hs_deserialize_database((const char *)p, (size_t)v, db) ==
                   HS_SUCCESS
               ? 0
               : -1;
}

int rules_cache_get(const char *dir, const char *const *pats,
                    const unsigned *flags, size_t n, void **dbp, size_t *keep,
                    size_t *nkeep)
{
    rc_buf key = {0};
    char name[64];
    struct stat st;
    unsigned char *data = NULL;
    hs_database_t *db = NULL;
    int dfd = -1, fd = -1, rc = -1;

    *dbp = NULL;
    if (dir == NULL || *dir == '\0' || rc_key(pats, flags, n, &key) < 0)
        goto out;
    if ((dfd = rc_dir_open(dir, 0)) < 0)
        goto out;
    rc_name(rc_fnv(RC_FNV0, key.p, key.len), name, sizeof(name));
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 022) != 0 ||
        st.st_size <= 0 || (uint64_t)st.st_size > RULES_CACHE_MAX_FILE)
        goto out;
    if ((data = malloc((size_t)st.st_size)) == NULL ||
        rc_read_all(fd, (size_t)st.st_size, data) < 0)
        goto out;
    if (rc_parse(data, (size_t)st.st_size, &key, n, &db, keep, nkeep) < 0)
        goto out;
    (void)futimens(fd, NULL); /* in use: not pruned */
    *dbp = db;
    rc = 0;
out:
    free(data);
    free(key.p);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* Remove cache files nobody used for RULES_CACHE_MAX_AGE days. */
static void rc_prune(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    time_t old = time(NULL) - (time_t)RULES_CACHE_MAX_AGE * 86400;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t l = strlen(e->d_name);
        int db = strncmp(e->d_name, "hs-", 3) == 0 && l > 6 &&
                 strcmp(e->d_name + l - 3, ".db") == 0;
        int tmp = strncmp(e->d_name, ".hs-", 4) == 0 && l > 8 &&
                  strcmp(e->d_name + l - 4, ".tmp") == 0;
        if (!db && !tmp)
            continue;
        /* a .tmp left by a writer that died: gone after a day */
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) &&
            st.st_mtime < (db ? old : time(NULL) - 86400))
            (void)unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

void rules_cache_put(const char *dir, const char *const *pats,
                     const unsigned *flags, size_t n, const void *dbv,
                     const size_t *keep, size_t nkeep)
{
    const hs_database_t *db = dbv;
    rc_buf key = {0}, f = {0};
    char *ser = NULL, name[64], tmp[96];
    size_t serlen = 0, i;
    uint64_t sum;
    int dfd = -1, fd = -1;

    if (dir == NULL || *dir == '\0' || rc_key(pats, flags, n, &key) < 0)
        goto out;
    if (db != NULL && hs_serialize_database(db, &ser, &serlen) != HS_SUCCESS)
        goto out;
    rc_put(&f, RULES_CACHE_MAGIC, strlen(RULES_CACHE_MAGIC));
    rc_put64(&f, key.len);
    rc_put(&f, key.p, key.len);
    rc_put64(&f, nkeep);
    for (i = 0; i < nkeep; i++)
        rc_put64(&f, keep[i]);
    rc_put64(&f, serlen);
    if (serlen > 0)
        rc_put(&f, ser, serlen);
    if (f.oom)
        goto out;
    sum = rc_fnv(RC_FNV0, f.p, f.len);
    rc_put64(&f, sum);
    if (f.oom || (dfd = rc_dir_open(dir, 1)) < 0)
        goto out;
    rc_name(rc_fnv(RC_FNV0, key.p, key.len), name, sizeof(name));
    snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", name, (long)getpid());
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0)
        goto out;
    for (i = 0; i < f.len;) {
        ssize_t w = write(fd, f.p + i, f.len - i);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        i += (size_t)w;
    }
    if (close(fd) < 0 || i != f.len ||
        renameat(dfd, tmp, dfd, name) < 0) {
        (void)unlinkat(dfd, tmp, 0);
        fd = -1;
        goto out;
    }
    fd = -1;
    rc_prune(dfd);
out:
    free(ser);
    free(key.p);
    free(f.p);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
}

#endif /* SLUICE_HAVE_HYPERSCAN */

int rules_set_cache(rules_set *rs, const char *dir)
{
    char *d = NULL;

    if (dir != NULL && *dir != '\0' && (d = strdup(dir)) == NULL)
        return -1;
    free(rs->hs_cache);
    rs->hs_cache = d;
    return 0;
}
