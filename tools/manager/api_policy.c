/*
 * api_policy.c - the policy script:
 *
 *   GET  /api/policy -> {"script","version","path","default",
 *        "versions":[{"version","saved_at","saved_by"}]}: the script the
 *        engine's policy stage runs (control `policy-show`; the built-in
 *        default when conf.d names none); version is the newest saved
 *        version with exactly that text, or null (edited elsewhere).
 *   GET  /api/policy/versions/:n -> {"version","script","saved_at","saved_by"}
 *   POST /api/policy {"script"} -> compiled with the policy stage's own
 *        compiler first: 400 {"error","line","column"} and nothing saved
 *        when it does not compile; else, in one database transaction, the
 *        version is stored, the script written to the file the engine
 *        names (policy-show's "pending": the engine's
 *        STATE_DIR/manager/policy.pending) and the engine told to install
 *        it (control `policy-install`: the master copies it to the policy
 *        stage's file and reloads, putting the old file back if the
 *        reload fails); the version is committed only once the engine
 *        applied it: 200 {"version","generation"}; 409 the engine refused
 *        (nothing changed), 502 engine not reachable.
 *
 * The Manager never writes conf.d or the policy file itself: the master
 * (root) does, from the one pending file (engine/control_policy.c).
 *
 * SECURITY: saving needs the admin role and is audited.  The script is
 * the administrator's (trusted like conf.d), but bounded
 * (PLANG_MAX_SCRIPT) and compiled before anything is stored.  The pending
 * file is written 0640 and renamed into place, so the master never reads
 * half of it.
 */
#include "api_util.h"
#include "mgr_conf.h"
#include "plang.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char policy_default_script[];

#define PO_VERSIONS 100

static json_t *po_versions(PGconn *c, char *err, size_t errsz)
{
    PGresult *res = api_exec_quiet(
        c,
        "SELECT version, to_char(saved_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), saved_by FROM policy_version "
        "ORDER BY version DESC LIMIT 100",
        0, NULL, 0, err, errsz);
    json_t *a;
    int i;

    if (res == NULL)
        return NULL;
    a = json_array();
    for (i = 0; i < PQntuples(res); i++)
        json_array_append_new(
            a, json_pack("{s:I, s:o, s:o}", "version",
                         (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10),
                         "saved_at", api_jstr(PQgetvalue(res, i, 1)),
                         "saved_by", api_jstr(PQgetvalue(res, i, 2))));
    PQclear(res);
    return a;
}

static void po_get(mgr_req *r, mgr_resp *resp)
{
    json_t *show = api_control_ok(r, resp, "policy-show"), *out, *vers;
    const char *text, *p[1];
    char err[512];
    PGconn *c;
    PGresult *res;

    if (show == NULL)
        return;
    if (json_is_true(json_object_get(show, "default")))
        text = policy_default_script;
    else if ((text = json_string_value(json_object_get(show, "text"))) ==
             NULL) {
        mgr_reply_error(resp, 502, "the engine cannot read %s: %s",
                        json_string_value(json_object_get(show, "script")),
                        json_string_value(json_object_get(show, "read_error")));
        json_decref(show);
        return;
    }
    if ((c = api_db(r, resp)) == NULL) {
        json_decref(show);
        return;
    }
    out = json_object();
    json_object_set_new(out, "script", api_jstr(text));
    json_object_set(out, "path", json_object_get(show, "script"));
    json_object_set(out, "default", json_object_get(show, "default"));
    p[0] = text;
    res = api_exec_quiet(c,
                         "SELECT max(version) FROM policy_version WHERE "
                         "script = $1",
                         1, p, 0, err, sizeof(err));
    json_object_set_new(
        out, "version",
        res && !PQgetisnull(res, 0, 0)
            ? json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10))
            : json_null());
    PQclear(res);
    json_decref(show);
    if ((vers = po_versions(c, err, sizeof(err))) == NULL) {
        json_decref(out);
        mgr_reply_error(resp, 503, "database: %s", err);
        return;
    }
    json_object_set_new(out, "versions", vers);
    mgr_reply_json(resp, 200, out);
}

static void po_version(mgr_req *r, mgr_resp *resp)
{
    long long n = api_id(r, resp, 0);
    char nb[32];
    const char *p[1] = {nb};
    PGconn *c;
    PGresult *res;

    if (n < 0 || (c = api_db(r, resp)) == NULL)
        return;
    snprintf(nb, sizeof(nb), "%lld", n);
    res = api_exec(r, resp, c,
                   "SELECT version, script, to_char(saved_at AT TIME ZONE "
                   "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), saved_by FROM "
                   "policy_version WHERE version = $1",
                   1, p);
    if (res == NULL)
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        mgr_reply_error(resp, 404, "no policy version %lld", n);
        return;
    }
    mgr_reply_json(resp, 200,
                   json_pack("{s:I, s:o, s:o, s:o}", "version", (json_int_t)n,
                             "script", api_jstr(PQgetvalue(res, 0, 1)),
                             "saved_at", api_jstr(PQgetvalue(res, 0, 2)),
                             "saved_by", api_jstr(PQgetvalue(res, 0, 3))));
    PQclear(res);
}

/* "LINE:COLUMN: message" from plang_compile(). */
static void po_position(const char *err, long *line, long *col)
{
    char *end;

    *line = strtol(err, &end, 10);
    if (end == err || *end != ':') {
        *line = *col = 0;
        return;
    }
    *col = strtol(end + 1, &end, 10);
    if (*end != ':')
        *col = 0;
}

/* Compiles as the policy stage does, with its thresholds from conf.d. */
static int po_compile(mgr *m, const char *text, size_t len, char *err,
                      size_t errsz)
{
    char tag[64], quar[64], v1[80], v2[80];
    const char *vars[3] = {v1, v2, NULL};
    plang_opts opts;
    plang_script *s;

    mgr_conf_stage_key(mgr_conf_dir(m), "policy", "tag_score", "5", tag,
                       sizeof(tag), NULL);
    mgr_conf_stage_key(mgr_conf_dir(m), "policy", "quarantine_score", "12",
                       quar, sizeof(quar), NULL);
    snprintf(v1, sizeof(v1), "tag_score=%s", tag);
    snprintf(v2, sizeof(v2), "quarantine_score=%s", quar);
    memset(&opts, 0, sizeof(opts));
    opts.vars = vars;
    if ((s = plang_compile(text, len, &opts, err, errsz)) == NULL)
        return -1;
    plang_free(s);
    return 0;
}

/* The engine's pending file (policy-show's "pending"), written whole to a
 * temporary file beside it, then renamed. */
static int po_write_pending(const char *path, const char *text, size_t len,
                            char *err, size_t errsz)
{
    char dir[4096], tmp[4200];
    const char *slash = strrchr(path, '/');
    size_t off = 0;
    int fd;

    if (path[0] != '/' || slash == NULL ||
        (size_t)(slash - path) >= sizeof(dir)) {
        snprintf(err, errsz, "the engine named no usable pending file");
        return -1;
    }
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errsz, "%s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < len || fsync(fd) < 0) {
        snprintf(err, errsz, "%s: write failed: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void po_post(mgr_req *r, mgr_resp *resp)
{
    json_t *b = mgr_body_json(r, resp), *s, *reply = NULL, *show = NULL;
    const char *text, *p[2], *pending;
    char err[1024], by[128];
    size_t len;
    long line, col;
    long long version, gen;
    PGconn *c;
    PGresult *res;

    if (b == NULL)
        return;
    s = json_object_get(b, "script");
    if (!json_is_string(s)) {
        json_decref(b);
        mgr_reply_error(resp, 400, "script: the policy text is needed");
        return;
    }
    text = json_string_value(s);
    len = json_string_length(s);
    if (len > PLANG_MAX_SCRIPT || strlen(text) != len) {
        json_decref(b);
        mgr_reply_error(resp, 400, "script: at most %u bytes, no NUL",
                        PLANG_MAX_SCRIPT);
        return;
    }
    if (po_compile(r->m, text, len, err, sizeof(err)) < 0) {
        po_position(err, &line, &col);
        mgr_audit(r, "policy refused: %s", err);
        mgr_reply_json(resp, 400,
                       json_pack("{s:o, s:i, s:i}", "error", api_jstr(err),
                                 "line", (int)line, "column", (int)col));
        json_decref(b);
        return;
    }
    /* where the engine wants it (and that it has a policy stage at all) */
    if ((show = api_control_ok(r, resp, "policy-show")) == NULL) {
        json_decref(b);
        return;
    }
    if ((c = api_db(r, resp)) == NULL) {
        json_decref(show);
        json_decref(b);
        return;
    }
    snprintf(by, sizeof(by), "%s", r->user ? r->user->name : "?");
    p[0] = text;
    p[1] = by;
    if ((res = api_exec(r, resp, c, "BEGIN", 0, NULL)) == NULL) {
        json_decref(show);
        json_decref(b);
        return;
    }
    PQclear(res);
    res = api_exec(r, resp, c,
                   "INSERT INTO policy_version (script, saved_by) VALUES "
                   "($1, $2) RETURNING version",
                   2, p);
    if (res == NULL)
        goto rollback_quiet;
    version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    pending = json_string_value(json_object_get(show, "pending"));
    if (po_write_pending(pending ? pending : "", text, len, err, sizeof(err)) <
        0) {
        mgr_reply_error(resp, 500, "%s", err);
        goto rollback_quiet;
    }
    if (mgr_control(r->m, "policy-install", &reply, err, sizeof(err)) < 0) {
        mgr_reply_error(resp, 502, "engine not reachable: %s", err);
        goto rollback_quiet;
    }
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        mgr_audit(r, "policy version %lld refused by the engine: %s", version,
                  e ? e : "?");
        mgr_reply_error(resp, 409, "the engine refused the policy: %s",
                        e ? e : "unknown error");
        goto rollback_quiet;
    }
    gen = json_integer_value(json_object_get(reply, "generation"));
    res = api_exec_quiet(c, "COMMIT", 0, NULL, 0, err, sizeof(err));
    if (res == NULL) {
        mgr_audit(r,
                  "policy applied (generation %lld) but version not "
                  "recorded: %s",
                  gen, err);
        mgr_reply_error(resp, 500,
                        "the engine applied the policy (generation %lld) but "
                        "the database did not record the version: %s",
                        gen, err);
        goto out;
    }
    PQclear(res);
    mgr_audit(r, "policy version %lld saved and applied (generation %lld)",
              version, gen);
    mgr_reply_json(resp, 200,
                   json_pack("{s:I, s:I}", "version", (json_int_t)version,
                             "generation", (json_int_t)gen));
    goto out;
rollback_quiet:
    PQclear(api_exec_quiet(c, "ROLLBACK", 0, NULL, 0, err, sizeof(err)));
out:
    json_decref(show);
    json_decref(reply);
    json_decref(b);
}

const mgr_route mgr_routes_policy[] = {
    {"GET", "/api/policy", MGR_ROLE_AUDITOR, po_get},
    {"POST", "/api/policy", MGR_ROLE_ADMIN, po_post},
    {"GET", "/api/policy/versions/:n", MGR_ROLE_AUDITOR, po_version},
    {NULL, NULL, 0, NULL},
};
