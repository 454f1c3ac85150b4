/*
 * bayes_journal.c - the auto-learn queue: workers append the token sets of
 * messages to learn to a journal file; an apply learns them all into the
 * database in one commit.  Learning never happens on a worker's loop: a
 * commit rewrites the whole database file (bayes_db.c), which is fine in
 * batches and wrong per message.
 *
 * Record (host byte order, like the database): a 32-byte header - magic
 * "SLJ2" (2: the tokenizer version), class (1 spam, 0 ham), day, token count, the message digest and
 * a check hash over the header and the tokens - then count 64-bit token
 * hashes.  One record is one write() on an O_APPEND descriptor.  A record
 * that does not check out (a crash in the middle of a write, a damaged
 * file) ends the reading of that journal: it and what follows are counted
 * as bad and dropped.
 *
 * Concurrency, without blocking a worker:
 *   append: open(O_APPEND|O_CREAT), flock(LOCK_SH|LOCK_NB), check that
 *     the descriptor is still the file at the journal's path (same inode),
 *     write, close.  Shared locks let every worker append at once.
 *   apply: take the database's writer lock (bayes_wr_open), rename the
 *     journal to JOURNAL.apply, flock(LOCK_EX) it - which waits for the
 *     appends already under way (microseconds) -, learn, commit, unlink.
 *     An appender that opened the old file but finds it locked, or no
 *     longer at the path, opens the new one (a few tries, then the message
 *     is dropped from learning and the append reports an error).
 *   A crash between the commit and the unlink leaves JOURNAL.apply; the
 *   next apply learns it again, which changes nothing: a message already
 *   learned in the same class is skipped (bayes_wr_learn).
 *
 * Limits: max_size bounds the journal (an apply that never runs must not
 * fill the disk): past it, messages are not queued (append returns 1).
 *
 * SECURITY: the journal lives beside the database and is as trusted as
 * its directory; still every record is bounded and checked before use.
 */
#include "bayes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "SLJ2" little-endian: the digit is the tokenizer version of the
 * records' tokens, so a journal queued by another tokenizer stops at its
 * first record, like a torn one, instead of being learned into a table
 * whose tokens it does not share. */
#define BJ_MAGIC 0x324a4c53u
_Static_assert(BAYES_TOKENIZER_VERSION == 2,
               "the journal magic's digit follows the tokenizer version");
#define BJ_MAX_TOKENS 1000000u
#define BJ_TRIES 4

typedef struct bj_rec {
    uint32_t magic;
    uint32_t spam;
    uint32_t day;
    uint32_t ntok;
    uint64_t digest;
    uint64_t check;
} bj_rec;

static uint64_t bj_check(const bj_rec *r, const uint64_t *toks)
{
    return bayes_hash("journal", r, offsetof(bj_rec, check)) ^
           (bayes_hash("journal-tokens", toks, (size_t)r->ntok * 8) *
            0x9e3779b97f4a7c15ULL);
}

static int bj_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    ssize_t w;

    while (n > 0) {
        if ((w = write(fd, s, n)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* An open descriptor on the file now at `path`, share-locked; -1 with
 * errno (EWOULDBLOCK: an apply kept it locked on every try). */
static int bj_open_locked(const char *path)
{
    struct stat a, b;
    int i, fd;

    for (i = 0; i < BJ_TRIES; i++) {
        if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                       0640)) < 0)
            return -1;
        if (flock(fd, LOCK_SH | LOCK_NB) == 0 && fstat(fd, &a) == 0 &&
            stat(path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            return fd;
        /* locked by an apply, or renamed away since: the path has (or is
         * about to have) a new file */
        close(fd);
        errno = EWOULDBLOCK;
    }
    return -1;
}

int bayes_journal_append(const char *journal, const bayes_toks *tk, int spam,
                         uint32_t day, size_t max_size, char *err,
                         size_t errlen)
{
    size_t n = tk->count < BJ_MAX_TOKENS ? tk->count : BJ_MAX_TOKENS;
    size_t len = sizeof(bj_rec) + n * 8;
    unsigned char *buf;
    struct stat st;
    bj_rec r;
    int fd, rc = 0;

    memset(&r, 0, sizeof(r));
    r.magic = BJ_MAGIC;
    r.spam = spam != 0;
    r.day = day;
    r.ntok = (uint32_t)n;
    r.digest = tk->digest;
    r.check = bj_check(&r, tk->list);
    if ((buf = malloc(len)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(buf, &r, sizeof(r));
    memcpy(buf + sizeof(r), tk->list, n * 8);
    if ((fd = bj_open_locked(journal)) < 0) {
        snprintf(err, errlen, "%s: %s", journal, strerror(errno));
        free(buf);
        return -1;
    }
    if (fstat(fd, &st) == 0 && max_size > 0 &&
        (size_t)st.st_size + len > max_size) {
        rc = 1;
    } else if (bj_write_all(fd, buf, len) < 0) {
        snprintf(err, errlen, "%s: %s", journal, strerror(errno));
        rc = -1;
    }
    close(fd); /* releases the shared lock */
    free(buf);
    return rc;
}

/* Learn every record of the open journal fd into w. */
static int bj_learn_fd(bayes_wr *w, int fd, bayes_journal_stats *st,
                       char *err, size_t errlen)
{
    struct stat sb;
    unsigned char *buf;
    size_t off = 0, got = 0;
    ssize_t r;

    if (fstat(fd, &sb) < 0) {
        snprintf(err, errlen, "fstat: %s", strerror(errno));
        return -1;
    }
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (got < (size_t)sb.st_size &&
           (r = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
        got += (size_t)r;
    while (off < got) {
        bj_rec rec;
        bayes_toks tk;
        uint64_t *toks;
        int rc;

        if (got - off < sizeof(rec))
            break;
        memcpy(&rec, buf + off, sizeof(rec));
        if (rec.magic != BJ_MAGIC || rec.ntok > BJ_MAX_TOKENS ||
            got - off - sizeof(rec) < (size_t)rec.ntok * 8)
            break;
        if ((toks = malloc((size_t)rec.ntok * 8 + 8)) == NULL) {
            free(buf);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(toks, buf + off + sizeof(rec), (size_t)rec.ntok * 8);
        if (bj_check(&rec, toks) != rec.check) {
            free(toks);
            break;
        }
        memset(&tk, 0, sizeof(tk));
        tk.list = toks;
        tk.count = rec.ntok;
        tk.digest = rec.digest;
        rc = bayes_wr_learn(w, &tk, (int)rec.spam, rec.day);
        free(toks);
        if (rc < 0) {
            free(buf);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (rc == BAYES_SKIPPED)
            st->skipped++;
        else
            st->learned++;
        off += sizeof(rec) + (size_t)rec.ntok * 8;
    }
    if (off < got)
        st->bad++; /* the damaged record and whatever followed it */
    free(buf);
    return 0;
}

/* Learn the journal at path, if there is one. */
static int bj_learn_path(bayes_wr *w, const char *path,
                         bayes_journal_stats *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* appends that began before the rename finish first */
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
        ;
    rc = bj_learn_fd(w, fd, st, err, errlen);
    close(fd);
    return rc;
}

int bayes_journal_apply(const char *db, const char *journal,
                        bayes_journal_stats *st, char *err, size_t errlen)
{
    char aside[4096], why[512];
    struct stat sb;
    bayes_wr *w;
    int had_aside;

    memset(st, 0, sizeof(*st));
    if ((size_t)snprintf(aside, sizeof(aside), "%s.apply", journal) >=
        sizeof(aside)) {
        snprintf(err, errlen, "%s: path too long", journal);
        return -1;
    }
    had_aside = stat(aside, &sb) == 0;
    if (!had_aside && (stat(journal, &sb) < 0 || sb.st_size == 0))
        return 0; /* nothing queued: do not even take the lock */
    if ((w = bayes_wr_open(db, why, sizeof(why))) == NULL) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    /* under the database lock: no other apply runs */
    if (had_aside && bj_learn_path(w, aside, st, err, errlen) < 0)
        goto fail;
    if (rename(journal, aside) < 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "rename %s: %s", journal, strerror(errno));
            goto fail;
        }
    } else if (bj_learn_path(w, aside, st, err, errlen) < 0) {
        goto fail;
    }
    if (bayes_wr_commit(w, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    unlink(aside);
    bayes_wr_close(w);
    return 0;
fail:
    bayes_wr_close(w);
    return -1;
}
