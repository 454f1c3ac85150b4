/*
 * bayes_db.c - the Bayes token database: one memory-mapped file.
 *
 * Layout: a 128-byte bayes_filehdr (magic, versions, sizes, message
 * totals, days, and a hash of the header), then nslots (a power of two)
 * bayes_slot records of 24 bytes: an open-addressing table with linear
 * probing, hash 0 meaning empty.  Host byte order: the file is local to
 * one machine; the export format is the portable one.
 *
 * Concurrency (why rename rather than in-place updates): the table is
 * read on every message by every worker, and written only by training.
 * Readers map the file read-only and take no lock; a writer holds an
 * exclusive flock() on PATH.lock (writers wait for each other), builds the
 * new table in memory, writes PATH.XXXXXX, fsync()s it and rename()s it
 * over PATH.  A reader's mapping keeps the old inode alive, so it sees the
 * old table or the new one, never a mixture, without a seqlock on the
 * lookup path; bayes_db_refresh() notices the new inode with one stat().
 * The price is a full rewrite per commit (learn in batches: the tool
 * commits once per command; 24 MB, a million tokens, is written in tens of
 * milliseconds).
 *
 * Expiry: each slot keeps the last day it was learned.  bayes_wr_expire()
 * drops what was not learned for max_age days, then, if there are still
 * more than max_tokens tokens, the oldest and rarest tokens first
 * (message records only by age).  Slots whose counts
 * fell to zero (unlearn) are dropped at every commit.
 *
 * Diagnostics: bayes.h.  SECURITY: the file is as trusted as the directory
 * it lives in; still, its header is checked before use and every probe is
 * bounded by the table size, so a damaged file is refused or, at worst,
 * gives wrong counts.
 */
#include "bayes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_MIN_SLOTS 16

struct bayes_db {
    char *path;
    void *map;
    size_t len;
    dev_t dev;
    ino_t ino;
    bayes_table table;
};

struct bayes_wr {
    char *path; /* NULL: in memory only */
    int lockfd;
    bayes_slot *slots;
    uint64_t mask, nused;
    uint64_t nspam, nham;
    uint32_t created, expired;
    bayes_table view;
};

static void db_err(char *err, size_t errlen, const char *fmt, ...)
    SLUICE_PRINTF(3, 4);

static void db_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint32_t bayes_today(void)
{
    return (uint32_t)(time(NULL) / 86400);
}

static uint64_t db_hdr_check(const bayes_filehdr *h)
{
    return bayes_hash("hdr", h, offsetof(bayes_filehdr, check));
}

int bayes_file_check(const void *img, size_t len, char *err, size_t errlen)
{
    const bayes_filehdr *h = img;

    if (len < sizeof(*h)) {
        db_err(err, errlen, "truncated: %zu bytes, header needs %zu", len,
               sizeof(*h));
        return -1;
    }
    if (memcmp(h->magic, BAYES_MAGIC, sizeof(h->magic)) != 0) {
        db_err(err, errlen, "not a sluice Bayes database (bad magic)");
        return -1;
    }
    if (h->version != BAYES_FILE_VERSION || h->hdr_size != sizeof(*h) ||
        h->slot_size != sizeof(bayes_slot)) {
        db_err(err, errlen,
               "file format version %u (header %u, slot %u); "
               "this build reads version %u",
               h->version, h->hdr_size, h->slot_size, BAYES_FILE_VERSION);
        return -1;
    }
    if (h->check != db_hdr_check(h)) {
        db_err(err, errlen, "header checksum mismatch");
        return -1;
    }
    if (h->tok_version != BAYES_TOKENIZER_VERSION) {
        db_err(err, errlen,
               "built by tokenizer version %u, this build's is %u "
               "(its tokens are no longer made): remove it and learn "
               "again (relearn)",
               h->tok_version, BAYES_TOKENIZER_VERSION);
        return -1;
    }
    if (h->nslots < DB_MIN_SLOTS || (h->nslots & (h->nslots - 1)) != 0 ||
        h->nused >= h->nslots) {
        db_err(err, errlen,
               "bad table size (%" PRIu64 " slots, %" PRIu64 " used)",
               h->nslots, h->nused);
        return -1;
    }
    if (h->nslots > (len - sizeof(*h)) / sizeof(bayes_slot) ||
        len != sizeof(*h) + h->nslots * sizeof(bayes_slot)) {
        db_err(err, errlen, "truncated or padded: %zu bytes, expected %" PRIu64,
               len,
               (uint64_t)sizeof(*h) + h->nslots * (uint64_t)sizeof(bayes_slot));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- reader */

static int db_map(bayes_db *db, char *err, size_t errlen)
{
    struct stat st;
    char why[256];
    void *map;
    int fd;

    if ((fd = open(db->path, O_RDONLY | O_CLOEXEC)) < 0) {
        db_err(err, errlen, "%s: %s", db->path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(bayes_filehdr)) {
        db_err(err, errlen, "%s: truncated (%lld bytes)", db->path,
               (long long)st.st_size);
        close(fd);
        return -1;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        db_err(err, errlen, "%s: mmap: %s", db->path, strerror(errno));
        return -1;
    }
    if (bayes_file_check(map, (size_t)st.st_size, why, sizeof(why)) < 0) {
        db_err(err, errlen, "%s: %s", db->path, why);
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    if (db->map != NULL)
        munmap(db->map, db->len);
    db->map = map;
    db->len = (size_t)st.st_size;
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    {
        const bayes_filehdr *h = map;
        db->table.nspam = h->nspam;
        db->table.nham = h->nham;
        db->table.nused = h->nused;
        db->table.mask = h->nslots - 1;
        db->table.slots = (const bayes_slot *)((const char *)map + h->hdr_size);
    }
    return 0;
}

bayes_db *bayes_db_open(const char *path, char *err, size_t errlen)
{
    bayes_db *db = calloc(1, sizeof(*db));

    if (db == NULL || (db->path = strdup(path)) == NULL) {
        free(db);
        db_err(err, errlen, "out of memory");
        return NULL;
    }
    if (db_map(db, err, errlen) < 0) {
        bayes_db_close(db);
        return NULL;
    }
    return db;
}

int bayes_db_refresh(bayes_db *db, char *err, size_t errlen)
{
    struct stat st;

    if (stat(db->path, &st) < 0) {
        db_err(err, errlen, "%s: %s", db->path, strerror(errno));
        return -1;
    }
    if (st.st_ino == db->ino && st.st_dev == db->dev)
        return 0;
    return db_map(db, err, errlen) < 0 ? -1 : 1;
}

const bayes_table *bayes_db_table(const bayes_db *db)
{
    return &db->table;
}

const bayes_filehdr *bayes_db_header(const bayes_db *db)
{
    return db->map;
}

void bayes_db_close(bayes_db *db)
{
    if (db == NULL)
        return;
    if (db->map != NULL)
        munmap(db->map, db->len);
    free(db->path);
    free(db);
}

/* ---------------------------------------------------------------- writer */

static void wr_view(bayes_wr *w)
{
    w->view.nspam = w->nspam;
    w->view.nham = w->nham;
    w->view.nused = w->nused;
    w->view.slots = w->slots;
    w->view.mask = w->mask;
}

static int wr_alloc(bayes_wr *w, uint64_t nslots)
{
    bayes_slot *s = calloc(nslots, sizeof(*s));

    if (s == NULL)
        return -1;
    free(w->slots);
    w->slots = s;
    w->mask = nslots - 1;
    w->nused = 0;
    wr_view(w);
    return 0;
}

/* Slots for n entries at a load of at most 0.6. */
static uint64_t wr_size_for(uint64_t n)
{
    uint64_t s = DB_MIN_SLOTS;

    while (s * 3 < n * 5 + 5)
        s <<= 1;
    return s;
}

static void wr_put(bayes_slot *slots, uint64_t mask, const bayes_slot *e)
{
    uint64_t i = e->hash & mask;

    while (slots[i].hash != 0)
        i = (i + 1) & mask;
    slots[i] = *e;
}

/* Rebuild with the non-empty entries (counts not both zero) only. */
static int wr_rebuild(bayes_wr *w, uint64_t live)
{
    uint64_t nslots = wr_size_for(live), i, n = 0;
    bayes_slot *s = calloc(nslots, sizeof(*s));

    if (s == NULL)
        return -1;
    for (i = 0; w->slots != NULL && i <= w->mask; i++) {
        const bayes_slot *e = &w->slots[i];
        if (e->hash != 0 && (e->spam != 0 || e->ham != 0)) {
            wr_put(s, nslots - 1, e);
            n++;
        }
    }
    free(w->slots);
    w->slots = s;
    w->mask = nslots - 1;
    w->nused = n;
    wr_view(w);
    return 0;
}

static uint64_t wr_live(const bayes_wr *w)
{
    uint64_t i, n = 0;

    for (i = 0; w->slots != NULL && i <= w->mask; i++)
        n += w->slots[i].hash != 0 &&
             (w->slots[i].spam != 0 || w->slots[i].ham != 0);
    return n;
}

/* The slot of h; with create, inserted (zeroed) if missing.  The pointer
 * is valid until the next insertion. */
static bayes_slot *wr_slot(bayes_wr *w, uint64_t h, int create)
{
    uint64_t i;

    for (i = h & w->mask; w->slots[i].hash != 0; i = (i + 1) & w->mask)
        if (w->slots[i].hash == h)
            return &w->slots[i];
    if (!create)
        return NULL;
    if ((w->nused + 1) * 10 > (w->mask + 1) * 7) {
        if (wr_rebuild(w, wr_live(w) * 2 + 1) < 0)
            return NULL;
        for (i = h & w->mask; w->slots[i].hash != 0; i = (i + 1) & w->mask)
            ;
    }
    w->slots[i].hash = h;
    w->nused++;
    w->view.nused = w->nused;
    return &w->slots[i];
}

bayes_wr *bayes_wr_new(void)
{
    bayes_wr *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->lockfd = -1;
    w->created = bayes_today();
    if (wr_alloc(w, DB_MIN_SLOTS) < 0) {
        free(w);
        return NULL;
    }
    return w;
}

static int wr_load(bayes_wr *w, char *err, size_t errlen)
{
    struct stat st;
    const bayes_filehdr *h;
    unsigned char *buf;
    size_t got = 0;
    ssize_t r;
    char why[256];
    int fd;

    if ((fd = open(w->path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return 0; /* a new database */
        db_err(err, errlen, "%s: %s", w->path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
        db_err(err, errlen, "%s: %s", w->path, strerror(errno));
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size &&
           (r = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)r;
    close(fd);
    if (bayes_file_check(buf, got, why, sizeof(why)) < 0) {
        db_err(err, errlen, "%s: %s", w->path, why);
        free(buf);
        return -1;
    }
    h = (const bayes_filehdr *)buf;
    if (wr_alloc(w, h->nslots) < 0) {
        db_err(err, errlen, "out of memory");
        free(buf);
        return -1;
    }
    memcpy(w->slots, buf + h->hdr_size, h->nslots * sizeof(bayes_slot));
    w->nused = h->nused;
    w->nspam = h->nspam;
    w->nham = h->nham;
    w->created = h->created;
    w->expired = h->expired;
    wr_view(w);
    free(buf);
    return 0;
}

bayes_wr *bayes_wr_open(const char *path, char *err, size_t errlen)
{
    bayes_wr *w = bayes_wr_new();
    char lock[4096];

    if (w == NULL || (w->path = strdup(path)) == NULL) {
        bayes_wr_close(w);
        db_err(err, errlen, "out of memory");
        return NULL;
    }
    if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >= sizeof(lock)) {
        db_err(err, errlen, "%s: path too long", path);
        bayes_wr_close(w);
        return NULL;
    }
    /* flock() works on a read-only descriptor too: a lock file created
     * by another user (root running sluicectl learn) still serves */
    if ((w->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0 &&
        errno == EACCES)
        w->lockfd = open(lock, O_RDONLY | O_CLOEXEC);
    if (w->lockfd < 0 || flock(w->lockfd, LOCK_EX) < 0) {
        db_err(err, errlen, "%s: %s", lock, strerror(errno));
        bayes_wr_close(w);
        return NULL;
    }
    if (wr_load(w, err, errlen) < 0) {
        bayes_wr_close(w);
        return NULL;
    }
    return w;
}

const bayes_table *bayes_wr_table(bayes_wr *w)
{
    wr_view(w);
    return &w->view;
}

void bayes_wr_close(bayes_wr *w)
{
    if (w == NULL)
        return;
    if (w->lockfd >= 0)
        close(w->lockfd); /* releases the flock */
    free(w->slots);
    free(w->path);
    free(w);
}

/* ---------------------------------------------------------------- learning */

static uint64_t wr_msg_hash(const bayes_toks *tk)
{
    return bayes_hash("learned", &tk->digest, sizeof(tk->digest));
}

static int wr_apply(bayes_wr *w, const bayes_toks *tk, int spam, int delta,
                    uint32_t day)
{
    size_t i;

    for (i = 0; i < tk->count; i++) {
        bayes_slot *s = wr_slot(w, tk->list[i], delta > 0);
        uint32_t *cnt;
        if (s == NULL) {
            if (delta > 0)
                return -1; /* ENOMEM */
            continue;
        }
        cnt = spam ? &s->spam : &s->ham;
        if (delta > 0) {
            if (*cnt < UINT32_MAX)
                (*cnt)++;
            s->day = day;
        } else if (*cnt > 0) {
            (*cnt)--;
        }
    }
    if (spam)
        w->nspam = delta > 0 ? w->nspam + 1 : w->nspam ? w->nspam - 1 : 0;
    else
        w->nham = delta > 0 ? w->nham + 1 : w->nham ? w->nham - 1 : 0;
    wr_view(w);
    return 0;
}

int bayes_wr_learned(bayes_wr *w, const bayes_toks *tk)
{
    const bayes_slot *m = wr_slot(w, wr_msg_hash(tk), 0);

    if (m == NULL || (m->spam == 0 && m->ham == 0))
        return -1;
    return m->spam != 0;
}

int bayes_wr_learn(bayes_wr *w, const bayes_toks *tk, int spam, uint32_t day)
{
    int was = bayes_wr_learned(w, tk);
    bayes_slot *m;

    spam = spam != 0;
    if (was == spam)
        return BAYES_SKIPPED;
    if (was >= 0 && wr_apply(w, tk, was, -1, day) < 0)
        return -1;
    if (wr_apply(w, tk, spam, +1, day) < 0)
        return -1;
    if ((m = wr_slot(w, wr_msg_hash(tk), 1)) == NULL)
        return -1;
    m->spam = spam;
    m->ham = !spam;
    m->day = day;
    m->flags = BAYES_SLOT_MSG;
    return BAYES_LEARNED;
}

int bayes_wr_unlearn(bayes_wr *w, const bayes_toks *tk)
{
    int was = bayes_wr_learned(w, tk);
    bayes_slot *m;

    if (was < 0)
        return BAYES_SKIPPED;
    if (wr_apply(w, tk, was, -1, 0) < 0)
        return -1;
    if ((m = wr_slot(w, wr_msg_hash(tk), 0)) != NULL)
        m->spam = m->ham = 0; /* dropped at the next commit */
    return BAYES_LEARNED;
}

/* ---------------------------------------------------------------- expiry */

/* Oldest first; within a day, the rarest first. */
static int wr_cmp_age(const void *a, const void *b)
{
    const bayes_slot *x = a, *y = b;
    uint64_t nx = (uint64_t)x->spam + x->ham, ny = (uint64_t)y->spam + y->ham;

    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return nx < ny ? -1 : nx > ny ? 1 : 0;
}

size_t bayes_wr_expire(bayes_wr *w, uint32_t today, uint32_t max_age,
                       size_t max_tokens)
{
    uint32_t cutoff = max_age > 0 && today > max_age ? today - max_age : 0;
    uint64_t i, removed = 0, live = 0;
    bayes_slot *all;
    size_t n = 0, k;

    for (i = 0; i <= w->mask; i++) {
        bayes_slot *s = &w->slots[i];
        if (s->hash == 0 || (s->spam == 0 && s->ham == 0))
            continue;
        if (s->day < cutoff) {
            s->spam = s->ham = 0;
            removed++;
        } else if (!(s->flags & BAYES_SLOT_MSG)) {
            live++;
        }
    }
    /* The size cap counts tokens only: message records are what unlearn
     * and the relearn check need, and as count-1 slots they would
     * otherwise be the first to go.  They expire by age. */
    if (max_tokens > 0 && live > max_tokens &&
        (all = malloc(live * sizeof(*all))) != NULL) {
        for (i = 0; i <= w->mask; i++)
            if (w->slots[i].hash != 0 &&
                !(w->slots[i].flags & BAYES_SLOT_MSG) &&
                (w->slots[i].spam != 0 || w->slots[i].ham != 0))
                all[n++] = w->slots[i];
        qsort(all, n, sizeof(*all), wr_cmp_age);
        for (k = 0; k < n - max_tokens; k++) {
            bayes_slot *s = wr_slot(w, all[k].hash, 0);
            if (s != NULL)
                s->spam = s->ham = 0;
            removed++;
        }
        free(all);
    }
    w->expired = today;
    if (removed > 0)
        wr_rebuild(w, wr_live(w)); /* on ENOMEM: zeroed slots stay */
    return (size_t)removed;
}

/* ---------------------------------------------------------------- saving */

static int db_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    ssize_t r;

    while (n > 0) {
        if ((r = write(fd, s, n)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

static void db_fsync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd;

    if (copy == NULL)
        return;
    if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int bayes_wr_save(bayes_wr *w, const char *path, char *err, size_t errlen)
{
    bayes_filehdr h;
    char tmp[4096];
    int fd;

    if (wr_rebuild(w, wr_live(w)) < 0) {
        db_err(err, errlen, "out of memory");
        return -1;
    }
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, BAYES_MAGIC, sizeof(h.magic));
    h.version = BAYES_FILE_VERSION;
    h.hdr_size = sizeof(h);
    h.slot_size = sizeof(bayes_slot);
    h.tok_version = BAYES_TOKENIZER_VERSION;
    h.nslots = w->mask + 1;
    h.nused = w->nused;
    h.nspam = w->nspam;
    h.nham = w->nham;
    h.created = w->created;
    h.updated = bayes_today();
    h.expired = w->expired;
    h.check = db_hdr_check(&h);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
        db_err(err, errlen, "%s: path too long", path);
        return -1;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        db_err(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    if (db_write_all(fd, &h, sizeof(h)) < 0 ||
        db_write_all(fd, w->slots, (w->mask + 1) * sizeof(bayes_slot)) < 0 ||
        fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        db_err(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        db_err(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    db_fsync_dir(path);
    return 0;
}

int bayes_wr_commit(bayes_wr *w, char *err, size_t errlen)
{
    if (w->path == NULL) {
        db_err(err, errlen, "in-memory table: nothing to commit to");
        return -1;
    }
    return bayes_wr_save(w, w->path, err, errlen);
}

/* ---------------------------------------------------------------- export */

#define EXPORT_MAGIC "sluice-bayes-export"

int bayes_table_export(const bayes_table *t, FILE *out)
{
    uint64_t i, n = 0;

    fprintf(out, "%s %d tokenizer %d\n", EXPORT_MAGIC, BAYES_FILE_VERSION,
            BAYES_TOKENIZER_VERSION);
    fprintf(out, "messages %" PRIu64 " %" PRIu64 "\n", t->nspam, t->nham);
    for (i = 0; t->slots != NULL && i <= t->mask; i++) {
        const bayes_slot *s = &t->slots[i];
        if (s->hash == 0 || (s->spam == 0 && s->ham == 0))
            continue;
        fprintf(out, "%c %016" PRIx64 " %" PRIu32 " %" PRIu32 " %" PRIu32 "\n",
                (s->flags & BAYES_SLOT_MSG) ? 'm' : 't', s->hash, s->spam,
                s->ham, s->day);
        n++;
    }
    fprintf(out, "end %" PRIu64 "\n", n);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

static uint32_t wr_sat_add(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

int bayes_wr_import(bayes_wr *w, FILE *in, int merge, char *err, size_t errlen)
{
    char line[256], kind, nl;
    unsigned ver, tokver;
    uint64_t nspam, nham, h, end = 0, n = 0, lineno = 2;
    uint32_t sp, hm, day;
    int used;

    if (fgets(line, sizeof(line), in) == NULL ||
        sscanf(line, EXPORT_MAGIC " %u tokenizer %u", &ver, &tokver) != 2) {
        db_err(err, errlen, "line 1: not a sluice Bayes export");
        return -1;
    }
    if (ver != BAYES_FILE_VERSION || tokver != BAYES_TOKENIZER_VERSION) {
        db_err(err, errlen,
               "export version %u tokenizer %u; this build "
               "needs %d and %d: export it again from a database of this "
               "build, or learn the mail again",
               ver, tokver, BAYES_FILE_VERSION, BAYES_TOKENIZER_VERSION);
        return -1;
    }
    if (fgets(line, sizeof(line), in) == NULL ||
        sscanf(line, "messages %" SCNu64 " %" SCNu64 "%c", &nspam, &nham,
               &nl) != 3 ||
        nl != '\n') {
        db_err(err, errlen, "line 2: expected \"messages SPAM HAM\"");
        return -1;
    }
    if (!merge && wr_alloc(w, DB_MIN_SLOTS) < 0) {
        db_err(err, errlen, "out of memory");
        return -1;
    }
    w->nspam = merge ? w->nspam + nspam : nspam;
    w->nham = merge ? w->nham + nham : nham;
    while (fgets(line, sizeof(line), in) != NULL) {
        bayes_slot *s;
        lineno++;
        if (sscanf(line, "end %" SCNu64 "%c", &end, &nl) == 2 && nl == '\n')
            break;
        used = 0;
        if (sscanf(line,
                   "%c %16" SCNx64 " %" SCNu32 " %" SCNu32 " %" SCNu32 "%n",
                   &kind, &h, &sp, &hm, &day, &used) != 5 ||
            (kind != 't' && kind != 'm') || h == 0 ||
            strcmp(line + used, "\n") != 0) {
            db_err(err, errlen, "line %" PRIu64 ": bad record", lineno);
            return -1;
        }
        if ((s = wr_slot(w, h, 1)) == NULL) {
            db_err(err, errlen, "out of memory");
            return -1;
        }
        s->spam = wr_sat_add(s->spam, sp);
        s->ham = wr_sat_add(s->ham, hm);
        s->day = s->day > day ? s->day : day;
        s->flags = kind == 'm' ? BAYES_SLOT_MSG : 0;
        n++;
    }
    if (feof(in) || end != n) {
        db_err(err, errlen,
               "truncated export: %" PRIu64 " records, end line "
               "%s",
               n, feof(in) ? "missing" : "disagrees");
        return -1;
    }
    wr_view(w);
    return 0;
}
