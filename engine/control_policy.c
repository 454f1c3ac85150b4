/*
 * control_policy.c - the control socket's policy commands, for the Manager
 * (tools/manager/api_policy.c), which must not write conf.d itself:
 *
 *   policy-show     the policy stage's script in effect: {"ok","stage",
 *                   "script": path or "" (the built-in default), "default",
 *                   "text"?, "pending": where policy-install reads from}
 *   policy-install  copies STATE_DIR/manager/policy.pending (written by the
 *                   Manager after it compiled the script) over the policy
 *                   stage's `script` file, or, when the stage has none, to
 *                   CONFDIR/policy.sieve and adds `script CONFDIR/policy.sieve`
 *                   to the stage's section; then reloads.  A refused reload
 *                   puts the previous file (and section) back and returns
 *                   the error; the running generation never changes then.
 *                   {"ok":true,"generation":n,"script":path}
 *
 * The policy stage is the first stage whose plugin calls itself "policy".
 *
 * SECURITY: runs in the master (root when started as root).  The pending
 * file lives in a directory the Manager's user owns: it is opened without
 * following a symbolic link at either the directory or the file, must be a
 * regular file of at most CONTROL_POLICY_MAX bytes, and is only ever
 * copied to the one file the policy stage reads, never to a path the
 * Manager names.  Its content is checked by the reload (the stage compiles
 * it); a script that does not compile is never left in place.
 */
#include "engine.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTROL_POLICY_MAX (1024 * 1024)
#define CONTROL_POLICY_PENDING "policy.pending"


/* The policy stage of the running chain, or NULL. */
static struct sluice_ctx *cp_stage(chain *ch)
{
    size_t i;

    for (i = 0; i < ch->nstages; i++)
        if (ch->stages[i]->desc.name &&
            strcmp(ch->stages[i]->desc.name, "policy") == 0)
            return ch->stages[i];
    return NULL;
}

/* The stage's `script` value ("" if none), as the running chain read it. */
static const char *cp_script_path(chain *ch, const char *stage)
{
    const char *v = "";
    size_t i, j;

    for (i = 0; i < ch->tree.nsecs; i++) {
        conf_section *s = &ch->tree.secs[i];
        if (s->is_engine || strcmp(s->name, stage) != 0)
            continue;
        for (j = 0; j < s->nopts; j++)
            if (strcmp(s->opts[j].key, "script") == 0)
                v = s->opts[j].value;
    }
    return v;
}

/* Reads fd to the end, at most CONTROL_POLICY_MAX bytes, into b. */
static int cp_read_fd(int fd, buf *b, buf *err, const char *what)
{
    char chunk[8192];
    ssize_t r;

    for (;;) {
        r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            buf_printf(err, "%s: %s", what, strerror(errno));
            return -1;
        }
        if (r == 0)
            return 0;
        if (b->len + (size_t)r > CONTROL_POLICY_MAX) {
            buf_printf(err, "%s: larger than %d bytes", what,
                       CONTROL_POLICY_MAX);
            return -1;
        }
        buf_add(b, chunk, (size_t)r);
    }
}

/* Whole file at path into b: 1 read, 0 it does not exist, -1 error. */
static int cp_read_path(const char *path, buf *b, mode_t *mode, buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    struct stat st;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        buf_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && mode != NULL)
        *mode = st.st_mode & 0777;
    rc = cp_read_fd(fd, b, err, path);
    close(fd);
    return rc < 0 ? -1 : 1;
}

void control_policy_show(struct master *m, buf *reply)
{
    chain *ch = master_chain(m);
    struct sluice_ctx *s = cp_stage(ch);
    const char *path;
    buf text, err;

    if (s == NULL) {
        control_error(reply, "no policy stage in the chain");
        return;
    }
    path = cp_script_path(ch, s->name);
    buf_adds(reply, "{\"ok\":true,\"stage\":");
    buf_json_str(reply, s->name);
    buf_adds(reply, ",\"script\":");
    buf_json_str(reply, path);
    buf_printf(reply, ",\"default\":%s", *path ? "false" : "true");
    {
        char cwd[4096];
        const char *sd = ch->ec.state_dir;
        int rel = sd[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL;
        char *pending = util_printf("%s%s%s/manager/%s", rel ? cwd : "",
                                    rel ? "/" : "", sd, CONTROL_POLICY_PENDING);
        buf_adds(reply, ",\"pending\":");
        buf_json_str(reply, pending);
        free(pending);
    }
    if (*path) {
        buf_init(&text);
        buf_init(&err);
        if (cp_read_path(path, &text, NULL, &err) == 1) {
            buf_adds(reply, ",\"text\":");
            buf_json_str(reply, text.data);
        } else {
            buf_adds(reply, ",\"read_error\":");
            buf_json_str(reply, err.len ? err.data : "file missing");
        }
        buf_free(&text);
        buf_free(&err);
    }
    buf_adds(reply, "}");
}

/* The pending file, opened without following links. */
static int cp_read_pending(chain *ch, buf *out, buf *err)
{
    char *dir = util_printf("%s/manager", ch->ec.state_dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = -1, rc = -1;
    struct stat st;

    if (dfd < 0) {
        buf_printf(err, "%s: %s", dir, strerror(errno));
        goto out;
    }
    fd = openat(dfd, CONTROL_POLICY_PENDING,
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        buf_printf(err, "%s/%s: %s", dir, CONTROL_POLICY_PENDING,
                   strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONTROL_POLICY_MAX) {
        buf_printf(err, "%s/%s: not a regular file of at most %d bytes", dir,
                   CONTROL_POLICY_PENDING, CONTROL_POLICY_MAX);
        goto out;
    }
    rc = cp_read_fd(fd, out, err, CONTROL_POLICY_PENDING);
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

static void cp_unlink_pending(chain *ch)
{
    char *p =
        util_printf("%s/manager/%s", ch->ec.state_dir, CONTROL_POLICY_PENDING);

    if (unlink(p) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", p, strerror(errno));
    free(p);
}

void control_policy_install(struct master *m, buf *reply)
{
    chain *ch = master_chain(m);
    struct sluice_ctx *s = cp_stage(ch);
    buf next, old, err;
    char *stage = NULL, *target = NULL;
    int had_old = 0, added_key = 0;
    mode_t mode = 0644;

    buf_init(&next);
    buf_init(&old);
    buf_init(&err);
    if (s == NULL) {
        control_error(reply, "no policy stage in the chain");
        goto out;
    }
    stage = util_strdup(s->name);
    if (*cp_script_path(ch, stage))
        target = util_strdup(cp_script_path(ch, stage));
    else {
        target = util_printf("%s/policy.sieve", master_confdir(m));
        added_key = 1;
    }
    if (strpbrk(target, " \t\"'#") != NULL) {
        buf_printf(&err, "policy file path '%s' has blanks or quotes", target);
        goto fail;
    }
    if (cp_read_pending(ch, &next, &err) < 0)
        goto fail;
    if ((had_old = cp_read_path(target, &old, &mode, &err)) < 0)
        goto fail;
    if (util_write_atomic(target, next.data ? next.data : "", next.len, mode,
                          (uid_t)-1, (gid_t)-1, &err) < 0)
        goto fail;
    if (added_key &&
        conf_set_option(master_confdir(m), stage, "script", target, &err) < 0)
        goto restore;
    /* ch (and s) are gone after a successful reload: only copies below */
    if (master_do_reload(m, &err) < 0) {
        if (added_key) {
            buf e2;
            buf_init(&e2);
            if (conf_set_option(master_confdir(m), stage, "script", NULL, &e2) <
                0)
                log_error("policy-install: cannot take the script line "
                          "back: %s",
                          e2.data);
            buf_free(&e2);
        }
        goto restore;
    }
    ch = master_chain(m);
    cp_unlink_pending(ch);
    log_info("policy script %s installed by the control socket "
             "(generation %u)",
             target, ch->gen);
    buf_printf(reply, "{\"ok\":true,\"generation\":%u,\"script\":", ch->gen);
    buf_json_str(reply, target);
    buf_adds(reply, "}");
    goto out;
restore : {
    buf e2;
    buf_init(&e2);
    if (had_old
            ? util_write_atomic(target, old.data ? old.data : "", old.len,
                                mode, (uid_t)-1, (gid_t)-1, &e2) < 0
            : unlink(target) < 0)
        log_error("policy-install: cannot restore %s: %s", target,
                  e2.len ? e2.data : strerror(errno));
    buf_free(&e2);
}
fail:
    control_error(reply, err.data ? err.data : "policy-install failed");
out:
    free(stage);
    free(target);
    buf_free(&next);
    buf_free(&old);
    buf_free(&err);
}
