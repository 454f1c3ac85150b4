/*
 * sluicectl_scan.c - `sluicectl scan`: messages through the configured
 * chain, in-process, without delivering anything.
 *
 * Usage: sluicectl scan [--json] [--without STAGE[,STAGE...]] [-c CONFDIR]
 *                       [-P PLUGINDIR] [-j N] [--client-ip IP] [--helo NAME]
 *                       [--sender ADDR] [--rcpt ADDR]... [-v] FILE|DIR|-...
 *
 * The chain is conf.d's (engine/scan.c): ingress stages are not used (the
 * scanner is the ingress), FINAL stages (deliver, quarantine) never run,
 * `--without` switches more off.  Client, HELO, sender and recipients come
 * from the options, else from the message's own header.  DIRs are walked
 * recursively, files in name order.  With more than one file, -j N (default:
 * one per core) processes each run their own loop and take the next file
 * from a shared counter; stage init() runs once before the fork, fini()
 * after the last process ended.
 *
 * Output: per message, readable lines (verdict, reply, score, symbols,
 * time per stage) or with --json one object per line: file, id, size,
 * score, probability (null unless a stage wrote one), verdict, phase,
 * reply (null if none), symbols [{name, score, reason}], stages {name: ms},
 * ms.  A message that could not be scanned prints {file, error} (and a
 * line on stderr).  Lines are written whole under a lock shared by the
 * processes, so they never interleave.
 *
 * Exit codes: 0 every message scanned; 1 some could not be (unreadable,
 * too large, a process died); 2 usage; 3 configuration error (file:line
 * on stderr).
 *
 * SECURITY: runs with the caller's privileges (never drops them, binds
 * nothing, delivers nothing); stages see the messages as in sluiced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"
#include "sluicectl_scan.h"

#define SCAN_WINDOW 16 /* messages in flight per process */
#define SCAN_MAX_WORKERS 64

typedef struct scan_item {
    char *path; /* as given or found; "-" for stdin */
    char *data; /* stdin's bytes, read before any fork */
    size_t len;
} scan_item;

/* Shared by the processes: the next file to take and the output lock. */
typedef struct scan_shared {
    sem_t lock;
    size_t next;
} scan_shared;

typedef struct scan_opts {
    int json, verbose;
    const char *confdir, *plugin_dir;
    long workers;
    char **without;
    size_t nwithout;
    scan_facts facts; /* from the options */
    scan_item *items;
    size_t nitems;
} scan_opts;

typedef struct scan_proc {
    scan_opts *o;
    scan_shared *sh;
    chain *ch;
    scan_worker *sw;
    int failed;
} scan_proc;

static void sc_usage(FILE *fp)
{
    fprintf(fp,
            "usage: sluicectl scan [--json] [--without STAGE[,STAGE...]] "
            "[-c CONFDIR] [-P PLUGINDIR]\n"
            "                      [-j N] [--client-ip IP] [--helo NAME] "
            "[--sender ADDR]\n"
            "                      [--rcpt ADDR]... [-v] FILE|DIR|-...\n\n"
            "Run messages through the configured chain without delivering "
            "them: every\n"
            "enabled stage but the ingress and the final ones (deliver, "
            "quarantine).\n\n"
            "  --json          one JSON object per message per line\n"
            "  --without LIST  leave these stages out (e.g. dns,blocklist)\n"
            "  -c CONFDIR      configuration directory (default %s)\n"
            "  -P PLUGINDIR    plugin directory (overrides plugin_dir)\n"
            "  -j N            processes for many files (default: cores)\n"
            "  --client-ip IP, --helo NAME, --sender ADDR, --rcpt ADDR\n"
            "                  envelope facts (default: from the message's "
            "Received,\n"
            "                  Return-Path, X-Original-To/Delivered-To/To "
            "header)\n"
            "  -v              log the stages' info lines on stderr\n\n"
            "exit codes: 0 ok, 1 some message could not be scanned, 2 usage, "
            "3 configuration error\n",
            SLUICE_DEFAULT_CONF_DIR);
}

/* ---------------------------------------------------------------- */
/* Input                                                             */

static void sc_add_item(scan_opts *o, const char *path, char *data, size_t len)
{
    o->items = util_realloc(o->items, (o->nitems + 1) * sizeof(*o->items));
    o->items[o->nitems].path = util_strdup(path);
    o->items[o->nitems].data = data;
    o->items[o->nitems].len = len;
    o->nitems++;
}

static int sc_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under dir, recursively, in name order; hidden names are
 * skipped (editor and maildir leftovers). */
static void sc_walk(scan_opts *o, const char *dir, int depth)
{
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, i;

    if (depth > 32 || (d = opendir(dir)) == NULL) {
        sc_add_item(o, dir, NULL, 0); /* reported when it is scanned */
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = util_realloc(names, (n + 1) * sizeof(*names));
        names[n++] = util_printf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), sc_name_cmp);
    for (i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode))
            sc_walk(o, names[i], depth + 1);
        else
            sc_add_item(o, names[i], NULL, 0);
        free(names[i]);
    }
    free(names);
}

static int sc_read_fd(int fd, size_t cap, buf *b, const char **why)
{
    for (;;) {
        ssize_t n;
        buf_reserve(b, 65536);
        n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *why = strerror(errno);
            return -1;
        }
        if (n == 0)
            break;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
        if (b->len > cap)
            break; /* enough to know it is too large */
    }
    return 0;
}

/* The file's bytes (at most cap + 1 of them); -1 with *why. */
static int sc_read(const char *path, size_t cap, buf *b, const char **why)
{
    struct stat st;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        *why = strerror(errno);
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        close(fd);
        return -1;
    }
    rc = sc_read_fd(fd, cap, b, why);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Output                                                            */

/* A JSON string; bytes that are not UTF-8 become U+FFFD, so every line
 * is valid JSON whatever a message or a stage put in a symbol. */
static void sc_json_str(buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    buf_addc(b, '"');
    while (*p) {
        size_t n = 0, i;
        for (i = 0; p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\';
             i++)
            ;
        if (i > 0) { /* a run of plain ASCII at once */
            buf_add(b, p, i);
            p += i;
            continue;
        }
        if (*p < 0x80) {
            if (*p == '"' || *p == '\\')
                buf_printf(b, "\\%c", *p);
            else if (*p < 0x20)
                buf_printf(b, "\\u%04x", *p);
            else
                buf_addc(b, (char)*p);
            p++;
            continue;
        }
        if (*p >= 0xC2 && *p <= 0xDF)
            n = 1;
        else if (*p >= 0xE0 && *p <= 0xEF)
            n = 2;
        else if (*p >= 0xF0 && *p <= 0xF4)
            n = 3;
        for (i = 1; n && i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                n = 0;
        /* overlongs and surrogates */
        if (n == 2 &&
            ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0)))
            n = 0;
        if (n == 3 &&
            ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90)))
            n = 0;
        if (n == 0) {
            buf_adds(b, "\\ufffd");
            p++;
            continue;
        }
        buf_add(b, p, n + 1);
        p += n + 1;
    }
    buf_addc(b, '"');
}

static void sc_write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a closed pipe: nothing more to say */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* One message's output, written whole under the shared lock. */
static void sc_emit(scan_proc *sp, buf *b)
{
    if (sp->sh)
        while (sem_wait(&sp->sh->lock) < 0 && errno == EINTR)
            ;
    sc_write_all(b->data, b->len);
    if (sp->sh)
        sem_post(&sp->sh->lock);
}

static void sc_error(scan_proc *sp, const char *path, const char *why)
{
    buf b;

    sp->failed = 1;
    fprintf(stderr, "sluicectl: scan: %s: %s\n", path, why);
    if (!sp->o->json)
        return;
    buf_init(&b);
    buf_adds(&b, "{\"file\":");
    sc_json_str(&b, path);
    buf_adds(&b, ",\"error\":");
    sc_json_str(&b, why);
    buf_adds(&b, "}\n");
    sc_emit(sp, &b);
    buf_free(&b);
}

static void sc_reply(const scan_result *r, buf *b)
{
    if (r->code)
        buf_printf(b, "%s ", r->code);
    if (r->xcode)
        buf_printf(b, "%s ", r->xcode);
    buf_adds(b, r->text ? r->text : "");
    if (b->len > 0 && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
}

static void sc_format_json(const scan_result *r, const char *path, buf *b)
{
    const sluice_host *h = &host_table;
    size_t i, n = h->symbol_count(r->txn);
    const char *name;
    double ms;
    int first = 1;

    buf_adds(b, "{\"file\":");
    sc_json_str(b, path);
    buf_adds(b, ",\"id\":");
    sc_json_str(b, r->id);
    buf_printf(b, ",\"size\":%zu,\"score\":%.6g,\"probability\":", r->size,
               h->score(r->txn));
    if (r->probability >= 0)
        buf_printf(b, "%.6g", r->probability);
    else
        buf_adds(b, "null");
    buf_adds(b, ",\"verdict\":");
    sc_json_str(b, conf_verdict_name(r->verdict));
    buf_adds(b, ",\"phase\":");
    sc_json_str(b, r->phase);
    buf_adds(b, ",\"reply\":");
    if (r->code || r->text) {
        buf rb;
        buf_init(&rb);
        sc_reply(r, &rb);
        sc_json_str(b, rb.data);
        buf_free(&rb);
    } else {
        buf_adds(b, "null");
    }
    buf_adds(b, ",\"symbols\":[");
    for (i = 0; i < n; i++) {
        double score = 0;
        const char *reason = NULL;
        const char *sym = h->symbol(r->txn, i, &score, &reason);
        buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        sc_json_str(b, sym);
        buf_printf(b, ",\"score\":%.6g,\"reason\":", score);
        sc_json_str(b, reason);
        buf_addc(b, '}');
    }
    buf_adds(b, "],\"rcpt_changes\":[");
    for (i = 0; i < h->rcpt_change_count(r->txn); i++) {
        const sluice_rcpt_change *c = h->rcpt_change(r->txn, i);
        buf_adds(b, i ? ",{\"op\":" : "{\"op\":");
        sc_json_str(b, c->op == SLUICE_RCPT_ADD ? "add" : "del");
        buf_adds(b, ",\"addr\":");
        sc_json_str(b, c->addr);
        buf_addc(b, '}');
    }
    buf_adds(b, "],\"stages\":{");
    for (i = 0; (ms = scan_stage_ms(r, i, &name)) >= 0; i++) {
        if (ms <= 0)
            continue; /* not run for this message */
        if (!first)
            buf_addc(b, ',');
        first = 0;
        sc_json_str(b, name);
        buf_printf(b, ":%.3f", ms);
    }
    buf_printf(b, "},\"ms\":%.3f}\n", r->total_ms);
}

static void sc_format_text(const scan_result *r, const char *path, buf *b)
{
    const sluice_host *h = &host_table;
    size_t i, n = h->symbol_count(r->txn);
    const char *name;
    double ms;

    buf_printf(b, "%s\n  id %s, %zu bytes\n  verdict: %s", path, r->id, r->size,
               conf_verdict_name(r->verdict));
    if (r->verdict != SLUICE_CONTINUE) /* nothing decided otherwise */
        buf_printf(b, " (decided at %s)", r->phase);
    buf_addc(b, '\n');
    if (r->code || r->text) {
        buf_adds(b, "  reply: ");
        sc_reply(r, b);
        buf_addc(b, '\n');
    }
    if (h->rcpt_change_count(r->txn) > 0) { /* the policy's redirect */
        buf_adds(b, "  recipients:");
        for (i = 0; i < h->rcpt_change_count(r->txn); i++) {
            const sluice_rcpt_change *c = h->rcpt_change(r->txn, i);
            buf_printf(b, " %c<%s>", c->op == SLUICE_RCPT_ADD ? '+' : '-',
                       c->addr);
        }
        buf_addc(b, '\n');
    }
    buf_printf(b, "  score: %.2f", h->score(r->txn));
    if (r->probability >= 0)
        buf_printf(b, ", probability %.1f%%", r->probability * 100.0);
    buf_addc(b, '\n');
    if (n > 0)
        buf_adds(b, "  symbols:\n");
    for (i = 0; i < n; i++) {
        double score = 0;
        const char *reason = NULL;
        const char *sym = h->symbol(r->txn, i, &score, &reason);
        buf_printf(b, "    %-32s %8.2f  %s\n", sym, score,
                   reason ? reason : "");
    }
    buf_printf(b, "  time: %.3f ms:", r->total_ms);
    for (i = 0; (ms = scan_stage_ms(r, i, &name)) >= 0; i++)
        if (ms > 0)
            buf_printf(b, " %s %.3f", name, ms);
    buf_adds(b, "\n\n");
}

/* What sc_done() needs of one submitted message. */
typedef struct scan_job {
    scan_proc *sp;
    const char *path; /* the item's, lives as long as the options */
} scan_job;

static void sc_done(const scan_result *r, void *arg)
{
    scan_job *job = arg;
    scan_proc *sp = job->sp;
    const char *path = job->path;
    buf b;

    free(job);
    if (r->error) {
        sc_error(sp, path, r->error);
        return;
    }
    buf_init(&b);
    if (sp->o->json)
        sc_format_json(r, path, &b);
    else
        sc_format_text(r, path, &b);
    sc_emit(sp, &b);
    buf_free(&b);
}

/* ---------------------------------------------------------------- */
/* Driving                                                           */

/* The next item for this process, or -1 when all are taken. */
static long sc_claim(scan_proc *sp, size_t *local)
{
    size_t i;

    if (sp->sh)
        i = __atomic_fetch_add(&sp->sh->next, 1, __ATOMIC_RELAXED);
    else
        i = (*local)++;
    return i < sp->o->nitems ? (long)i : -1;
}

static void sc_copy_facts(const scan_facts *from, scan_facts *to)
{
    size_t i;

    memset(to, 0, sizeof(*to));
    if (from->client_addr)
        to->client_addr = util_strdup(from->client_addr);
    if (from->helo)
        to->helo = util_strdup(from->helo);
    if (from->sender)
        to->sender = util_strdup(from->sender);
    if (from->nrcpts) {
        to->rcpts = util_calloc(from->nrcpts + 1, sizeof(char *));
        for (i = 0; i < from->nrcpts; i++)
            to->rcpts[i] = util_strdup(from->rcpts[i]);
        to->nrcpts = from->nrcpts;
    }
}

/* Start one item; 0 if it could not be (reported). */
static int sc_start(scan_proc *sp, const scan_item *it)
{
    size_t cap = sp->ch->ec.max_message_size;
    const char *why = NULL;
    scan_facts f;
    buf b;
    scan_job *job;

    buf_init(&b);
    if (it->data != NULL)
        buf_add(&b, it->data, it->len);
    else if (sc_read(it->path, cap, &b, &why) < 0) {
        sc_error(sp, it->path, why);
        buf_free(&b);
        return 0;
    }
    sc_copy_facts(&sp->o->facts, &f);
    scan_facts_from_message(b.data, b.len, &f);
    job = util_calloc(1, sizeof(*job));
    job->sp = sp;
    job->path = it->path;
    scan_submit(sp->sw, b.data, b.len, &f, sc_done, job);
    scan_facts_free(&f);
    buf_free(&b);
    return 1;
}

/* This process's share of the items, SCAN_WINDOW at a time. */
static void sc_drive(scan_proc *sp)
{
    size_t local = 0;
    long i;
    int more = 1;

    for (;;) {
        while (more && scan_inflight(sp->sw) < SCAN_WINDOW) {
            if ((i = sc_claim(sp, &local)) < 0) {
                more = 0;
                break;
            }
            sc_start(sp, &sp->o->items[i]);
        }
        if (scan_inflight(sp->sw) == 0 && !more)
            break;
        if (scan_inflight(sp->sw) > 0)
            scan_run_once(sp->sw);
    }
}

/* One scanning process (or the only one): 0, 1 (some failed) or 3. */
static int sc_process(scan_proc *sp)
{
    buf err;

    buf_init(&err);
    if ((sp->sw = scan_worker_new(sp->ch, &err)) == NULL) {
        fprintf(stderr, "%s", err.data);
        buf_free(&err);
        return SCAN_ECONF;
    }
    buf_free(&err);
    sc_drive(sp);
    scan_worker_free(sp->sw);
    sp->sw = NULL;
    return sp->failed ? 1 : 0;
}

static int sc_fork_all(scan_proc *sp, long n)
{
    pid_t pids[SCAN_MAX_WORKERS];
    long i, started = 0;
    int rc = 0;

    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "sluicectl: scan: fork: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0) {
            char role[32];
            snprintf(role, sizeof(role), "scan %ld", i + 1);
            log_set_role(role);
            /* no fini() here: the parent runs it once, at the end */
            _exit(sc_process(sp));
        }
        pids[started++] = pid;
    }
    for (i = 0; i < started; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        if (WIFEXITED(st) && WEXITSTATUS(st) == SCAN_ECONF) {
            rc = SCAN_ECONF;
            continue;
        }
        if (WIFSIGNALED(st))
            fprintf(stderr,
                    "sluicectl: scan: process %ld died (signal %d); its "
                    "messages in flight were not reported\n",
                    (long)pids[i], WTERMSIG(st));
        if (rc == 0)
            rc = 1;
    }
    return rc;
}

/* ---------------------------------------------------------------- */
/* Options                                                           */

static void sc_add_without(scan_opts *o, const char *list)
{
    char *copy = util_strdup(list), *tok, *save = NULL;

    for (tok = strtok_r(copy, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        o->without =
            util_realloc(o->without, (o->nwithout + 2) * sizeof(char *));
        o->without[o->nwithout++] = util_strdup(tok);
        o->without[o->nwithout] = NULL;
    }
    free(copy);
}

static int sc_set(char **dst, const char *v)
{
    free(*dst);
    *dst = util_strdup(v);
    return 0;
}

/* A FILE, DIR or "-" operand. */
static int sc_operand(scan_opts *o, const char *a)
{
    struct stat st;

    if (strcmp(a, "-") == 0) {
        buf b;
        const char *why = NULL;
        buf_init(&b);
        if (sc_read_fd(STDIN_FILENO, (size_t)-2, &b, &why) < 0) {
            fprintf(stderr, "sluicectl: scan: stdin: %s\n", why);
            buf_free(&b);
            return SCAN_EUSAGE;
        }
        sc_add_item(o, "-", b.data, b.len); /* owns b.data now */
    } else if (stat(a, &st) == 0 && S_ISDIR(st.st_mode)) {
        sc_walk(o, a, 0);
    } else {
        sc_add_item(o, a, NULL, 0); /* errors are reported when scanned */
    }
    return 0;
}

/* Parses argv (argv[0] is "scan"), options and operands in any order
 * until "--"; 0, or SCAN_EUSAGE, or -1 for --help. */
static int sc_parse(int argc, char **argv, scan_opts *o)
{
    int i, files = 0, opts_done = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (opts_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (sc_operand(o, a) != 0)
                return SCAN_EUSAGE;
            files++;
        } else if (strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "-v") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return -1;
        } else if (v == NULL) {
            fprintf(stderr, "sluicectl: scan: %s needs a value\n", a);
            return SCAN_EUSAGE;
        } else if (strcmp(a, "--without") == 0) {
            sc_add_without(o, v), i++;
        } else if (strcmp(a, "-c") == 0) {
            o->confdir = v, i++;
        } else if (strcmp(a, "-P") == 0) {
            o->plugin_dir = v, i++;
        } else if (strcmp(a, "-j") == 0) {
            char *end;
            o->workers = strtol(v, &end, 10);
            if (*end != '\0' || o->workers < 1 ||
                o->workers > SCAN_MAX_WORKERS) {
                fprintf(stderr, "sluicectl: scan: -j takes 1..%d\n",
                        SCAN_MAX_WORKERS);
                return SCAN_EUSAGE;
            }
            i++;
        } else if (strcmp(a, "--client-ip") == 0) {
            sc_set(&o->facts.client_addr, v), i++;
        } else if (strcmp(a, "--helo") == 0) {
            sc_set(&o->facts.helo, v), i++;
        } else if (strcmp(a, "--sender") == 0) {
            sc_set(&o->facts.sender, v), i++;
        } else if (strcmp(a, "--rcpt") == 0) {
            o->facts.rcpts = util_realloc(
                o->facts.rcpts, (o->facts.nrcpts + 2) * sizeof(char *));
            o->facts.rcpts[o->facts.nrcpts++] = util_strdup(v);
            o->facts.rcpts[o->facts.nrcpts] = NULL;
            i++;
        } else {
            fprintf(stderr, "sluicectl: scan: unknown option '%s'\n", a);
            return SCAN_EUSAGE;
        }
    }
    if (files == 0) {
        fprintf(stderr, "sluicectl: scan: no FILE, DIR or - given\n");
        return SCAN_EUSAGE;
    }
    return 0;
}

static void sc_opts_free(scan_opts *o)
{
    size_t i;

    for (i = 0; i < o->nwithout; i++)
        free(o->without[i]);
    free(o->without);
    for (i = 0; i < o->nitems; i++) {
        free(o->items[i].path);
        free(o->items[i].data);
    }
    free(o->items);
    scan_facts_free(&o->facts);
}

int sluicectl_scan_main(int argc, char **argv, int json)
{
    scan_opts o;
    scan_proc sp;
    buf err;
    int rc;
    long n;

    memset(&o, 0, sizeof(o));
    memset(&sp, 0, sizeof(sp));
    o.json = json;
    o.confdir = SLUICE_DEFAULT_CONF_DIR;
    o.workers = sysconf(_SC_NPROCESSORS_ONLN);
    if ((rc = sc_parse(argc, argv, &o)) != 0) {
        if (rc < 0)
            sc_usage(stdout);
        else
            sc_usage(stderr);
        sc_opts_free(&o);
        return rc < 0 ? 0 : SCAN_EUSAGE;
    }
    if (o.workers < 1)
        o.workers = 1;
    log_init("sluicectl", o.verbose ? SLUICE_LOG_INFO : SLUICE_LOG_WARN, 0);
    log_set_role("scan");
    signal(SIGPIPE, SIG_IGN);
    buf_init(&err);
    rc = scan_chain_load(o.confdir, o.plugin_dir,
                         (const char *const *)o.without, &sp.ch, &err);
    if (rc != SCAN_OK) {
        fprintf(stderr, "%s%s", rc == SCAN_EUSAGE ? "sluicectl: scan: " : "",
                err.data);
        if (rc == SCAN_ECONF)
            fprintf(stderr, "sluicectl: scan: configuration in %s has errors\n",
                    o.confdir);
        buf_free(&err);
        sc_opts_free(&o);
        return rc;
    }
    buf_free(&err);
    sp.o = &o;
    n = o.workers < (long)o.nitems ? o.workers : (long)o.nitems;
    if (n <= 1) {
        rc = sc_process(&sp);
    } else {
        scan_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED || sem_init(&sh->lock, 1, 1) < 0) {
            fprintf(stderr, "sluicectl: scan: shared memory: %s\n",
                    strerror(errno));
            rc = 1;
        } else {
            sh->next = 0;
            sp.sh = sh;
            rc = sc_fork_all(&sp, n);
            sem_destroy(&sh->lock);
            munmap(sh, sizeof(*sh));
        }
    }
    chain_free(sp.ch); /* fini(), once */
    sc_opts_free(&o);
    return rc;
}
