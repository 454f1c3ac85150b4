/*
 * sluicectl_policy.c - `sluicectl policy`: check a policy script, show
 * what it does to a message, print the built-in default policy.
 *
 *   policy check [--var N=V]... FILE...
 *       compile each FILE as the stage would; errors as FILE:LINE:COL.
 *   policy test FILE MSG [--score N] [--symbol NAME[=SCORE]]...
 *       [--from ADDR] [--to ADDR]... [--client IP] [--list allow|block]
 *       [--var N=V]... [--internal NET]...
 *       run FILE against the message MSG with the given facts; prints
 *       which rules fired, the header edits and the resulting action.
 *   policy default
 *       print the built-in default policy.
 * FILE "@default" is the built-in default policy.  The thresholds of
 * conf.d (tag_score 5, quarantine_score 12) are preset; --var overrides.
 *
 * The message's header is read as written (unfolded, not RFC 2047
 * decoded, at most 1000 fields); the envelope sender defaults to its
 * Return-Path.
 *
 * SECURITY: runs with the caller's privileges; the message file is not
 * trusted (bounded reads: 64 MB, header fields as above).
 */
#include "sluicectl_policy.h"

#include "plang.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const char policy_default_script[];

#define POL_MAX_MSG (64u * 1024u * 1024u)
#define POL_MAX_FIELDS 1000
#define POL_MAX_LIST 64

typedef struct pol_msg {
    char *name[POL_MAX_FIELDS], *value[POL_MAX_FIELDS];
    size_t n;
    const char *rcpts[POL_MAX_LIST];
    size_t nrcpt;
    const char *syms[POL_MAX_LIST];
    double symscore[POL_MAX_LIST];
    size_t nsym;
    int listed_allow, listed_block;
} pol_msg;

static char *pol_read(const char *path, size_t max, size_t *len)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t cap = 65536, n = 0, r;

    if (fp == NULL)
        return NULL;
    buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += r;
        if (n == cap) {
            char *nb;
            if (cap >= max)
                break;
            cap *= 2;
            if ((nb = realloc(buf, cap + 1)) == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
    }
    if (fp != stdin)
        fclose(fp);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* The header block: fields until the first empty line, unfolded. */
static void pol_parse_header(pol_msg *m, char *data)
{
    char *p = data;

    while (*p && m->n < POL_MAX_FIELDS) {
        char *eol = strchr(p, '\n'), *colon, *v, *w;
        if (*p == '\n' || (*p == '\r' && p[1] == '\n'))
            break;
        if (*p == ' ' || *p == '\t' || (colon = strchr(p, ':')) == NULL ||
            (eol && colon > eol)) {
            if (eol == NULL)
                break;
            p = eol + 1; /* a line that is no field: skipped */
            continue;
        }
        /* the field ends where a line does not start with WSP */
        while (eol && (eol[1] == ' ' || eol[1] == '\t'))
            eol = strchr(eol + 1, '\n');
        *colon = '\0';
        v = colon + 1;
        if (eol)
            *eol = '\0';
        for (w = v; *v; v++) /* unfold: drop CR and LF */
            if (*v != '\r' && *v != '\n')
                *w++ = *v;
        *w = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        m->name[m->n] = p;
        m->value[m->n++] = v;
        if (eol == NULL)
            break;
        p = eol + 1;
    }
}

static const char *pol_header(void *arg, const char *name, size_t nth)
{
    pol_msg *m = arg;

    for (size_t i = 0; i < m->n; i++)
        if (strcasecmp(m->name[i], name) == 0 && nth-- == 0)
            return m->value[i];
    return NULL;
}

static const char *pol_rcpt(void *arg, size_t i)
{
    return ((pol_msg *)arg)->rcpts[i];
}

static const char *pol_symbol(void *arg, size_t i, double *score)
{
    pol_msg *m = arg;

    *score = m->symscore[i];
    return m->syms[i];
}

static int pol_listed(void *arg, const char *kind)
{
    pol_msg *m = arg;

    return strcmp(kind, "allow") == 0 ? m->listed_allow : m->listed_block;
}

static plang_script *pol_compile(const char *file, const char *const *vars,
                                 const char *const *nets)
{
    plang_opts o = {vars, nets};
    char err[512], *text;
    size_t len;
    plang_script *s;

    if (strcmp(file, "@default") == 0) {
        s = plang_compile(policy_default_script, strlen(policy_default_script),
                          &o, err, sizeof(err));
    } else {
        if ((text = pol_read(file, PLANG_MAX_SCRIPT + 1, &len)) == NULL) {
            fprintf(stderr, "sluicectl: policy: cannot read %s\n", file);
            return NULL;
        }
        s = plang_compile(text, len, &o, err, sizeof(err));
        free(text);
    }
    if (s == NULL)
        fprintf(stderr, "%s:%s\n", file, err);
    return s;
}

static void pol_usage(FILE *fp)
{
    fprintf(fp, "usage: sluicectl policy check [--var N=V]... FILE...\n"
                "       sluicectl policy test FILE MSG [--score N] "
                "[--symbol NAME[=SCORE]]...\n"
                "             [--from ADDR] [--to ADDR]... [--client IP] "
                "[--list allow|block]\n"
                "             [--var N=V]... [--internal NET]...\n"
                "       sluicectl policy default\n"
                "FILE @default is the built-in default policy.\n"
                "exit codes: 0 ok, 1 the script does not compile or a file "
                "cannot be read, 2 usage\n");
}

static void pol_print(const pol_msg *m, const plang_result *r, int json,
                      double score)
{
    static const char *const ops[] = {"", "insert", "add", "delete",
                                      "tag_subject"};

    if (json) {
        json_t *o = json_object(), *tr = json_array(), *ed = json_array();
        for (size_t i = 0; i < r->ntrace; i++)
            json_array_append_new(tr, json_string(r->trace[i]));
        for (size_t i = 0; i < r->nedits; i++) {
            const plang_edit *e = &r->edits[i];
            json_t *x =
                json_pack("{s:s, s:s}", "op", ops[e->op], "name", e->name);
            if (e->value)
                json_object_set_new(x, "value", json_string(e->value));
            if (e->op == PLANG_EDIT_DELETE)
                json_object_set_new(x, "nth", json_integer((json_int_t)e->nth));
            json_array_append_new(ed, x);
        }
        json_object_set_new(o, "ok", json_true());
        json_object_set_new(o, "action",
                            json_string(plang_action_name(r->action)));
        json_object_set_new(o, "text", json_string(r->text));
        json_object_set_new(o, "score", json_real(score));
        json_object_set_new(o, "fired", tr);
        json_object_set_new(o, "edits", ed);
        {
            json_t *rd = json_array(), *nf = json_array();
            for (size_t i = 0; i < r->nredirects; i++)
                json_array_append_new(rd, json_string(r->redirects[i]));
            for (size_t i = 0; i < r->nnotifies; i++)
                json_array_append_new(
                    nf, json_pack("{s:s, s:s}", "method", r->notifies[i].method,
                                  "message", r->notifies[i].message));
            json_object_set_new(o, "redirects", rd);
            json_object_set_new(o, "keep_cancelled",
                                json_boolean(r->keep_cancelled));
            json_object_set_new(o, "notifies", nf);
            json_object_set_new(o, "error", json_string(r->error));
        }
        json_dumpf(o, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(o);
        return;
    }
    (void)m;
    printf("fired:\n");
    for (size_t i = 0; i < r->ntrace; i++)
        printf("  %s\n", r->trace[i]);
    if (r->ntrace == 0)
        printf("  (nothing)\n");
    printf("header edits:\n");
    for (size_t i = 0; i < r->nedits; i++) {
        const plang_edit *e = &r->edits[i];
        if (e->op == PLANG_EDIT_DELETE)
            printf("  delete %s #%zu\n", e->name, e->nth + 1);
        else
            printf("  %s %s: %s\n", ops[e->op], e->name, e->value);
    }
    if (r->nedits == 0)
        printf("  (none)\n");
    for (size_t i = 0; i < r->nredirects; i++)
        printf("redirect: %s%s\n", r->redirects[i],
               r->keep_cancelled ? "" : " (copy)");
    for (size_t i = 0; i < r->nnotifies; i++)
        printf("notify: %s%s%s\n", r->notifies[i].method,
               r->notifies[i].message[0] ? " message: " : "",
               r->notifies[i].message);
    if (r->error[0])
        printf("run-time error: %s\n", r->error);
    printf("action: %s%s%s\n", plang_action_name(r->action),
           r->text[0] ? ": " : "", r->text);
}

/* Options shared by check and test; returns 1 if argv[*i] was one. */
static int pol_common_opt(char **argv, int argc, int *i, const char **vars,
                          size_t *nv, const char **nets, size_t *nn)
{
    if (strcmp(argv[*i], "--var") == 0 && *i + 1 < argc && *nv < POL_MAX_LIST) {
        vars[(*nv)++] = argv[++*i];
        return 1;
    }
    if (strcmp(argv[*i], "--internal") == 0 && *i + 1 < argc &&
        *nn < POL_MAX_LIST) {
        nets[(*nn)++] = argv[++*i];
        return 1;
    }
    return 0;
}

static int pol_test(int argc, char **argv, int json, const char **vars,
                    size_t nv)
{
    const char *files[2] = {NULL, NULL}, *nets[POL_MAX_LIST + 1];
    const char *from = NULL, *client = "";
    size_t nf = 0, nn = 0, len;
    double score = 0;
    pol_msg *m = calloc(1, sizeof(*m));
    char *data = NULL;
    plang_script *s = NULL;
    plang_facts f;
    plang_result r;
    int rc = 2;

    if (m == NULL)
        return 1;
    for (int i = 2; i < argc; i++) {
        char *a = argv[i], *e;
        if (pol_common_opt(argv, argc, &i, vars, &nv, nets, &nn)) {
            continue;
        } else if (strcmp(a, "--score") == 0 && i + 1 < argc) {
            score = strtod(argv[++i], &e);
            if (*e) {
                fprintf(stderr, "sluicectl: policy: bad score '%s'\n", argv[i]);
                goto out;
            }
        } else if (strcmp(a, "--symbol") == 0 && i + 1 < argc &&
                   m->nsym < POL_MAX_LIST) {
            char *eq = strchr(argv[++i], '=');
            m->symscore[m->nsym] = eq ? strtod(eq + 1, NULL) : 0;
            if (eq)
                *eq = '\0';
            m->syms[m->nsym++] = argv[i];
        } else if (strcmp(a, "--from") == 0 && i + 1 < argc) {
            from = argv[++i];
        } else if (strcmp(a, "--to") == 0 && i + 1 < argc &&
                   m->nrcpt < POL_MAX_LIST) {
            m->rcpts[m->nrcpt++] = argv[++i];
        } else if (strcmp(a, "--client") == 0 && i + 1 < argc) {
            client = argv[++i];
        } else if (strcmp(a, "--list") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "allow") == 0)
                m->listed_allow = 1;
            else if (strcmp(argv[i], "block") == 0)
                m->listed_block = 1;
            else {
                fprintf(stderr, "sluicectl: policy: --list allow|block\n");
                goto out;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sluicectl: policy: unknown option '%s'\n", a);
            pol_usage(stderr);
            goto out;
        } else if (nf < 2) {
            files[nf++] = a;
        } else {
            pol_usage(stderr);
            goto out;
        }
    }
    if (nf != 2) {
        pol_usage(stderr);
        goto out;
    }
    vars[nv] = NULL;
    nets[nn] = NULL;
    rc = 1;
    if ((s = pol_compile(files[0], vars, nn ? nets : NULL)) == NULL)
        goto out;
    if ((data = pol_read(files[1], POL_MAX_MSG, &len)) == NULL) {
        fprintf(stderr, "sluicectl: policy: cannot read %s\n", files[1]);
        goto out;
    }
    pol_parse_header(m, data);
    if (from == NULL) { /* Return-Path: <addr> */
        const char *rp = pol_header(m, "Return-Path", 0);
        static char buf[1024];
        from = "";
        if (rp) {
            const char *lt = strchr(rp, '<'), *gt = lt ? strchr(lt, '>') : NULL;
            if (lt && gt) {
                snprintf(buf, sizeof(buf), "%.*s", (int)(gt - lt - 1), lt + 1);
                from = buf;
            }
        }
    }
    memset(&f, 0, sizeof(f));
    f.arg = m;
    f.header = pol_header;
    f.sender = from;
    f.nrcpt = m->nrcpt;
    f.rcpt = pol_rcpt;
    f.client_addr = client;
    f.score = score;
    f.nsym = m->nsym;
    f.symbol = pol_symbol;
    f.size = len;
    f.listed = pol_listed;
    if (plang_eval(s, &f, &r) < 0) {
        fprintf(stderr, "sluicectl: policy: out of memory\n");
        plang_result_free(&r);
        goto out;
    }
    pol_print(m, &r, json, score);
    plang_result_free(&r);
    rc = 0;
out:
    plang_free(s);
    free(data);
    free(m);
    return rc;
}

static int pol_check(int argc, char **argv, int json, const char **vars,
                     size_t nv)
{
    const char *nets[POL_MAX_LIST + 1];
    size_t nn = 0;
    int files = 0, bad = 0;

    for (int i = 2; i < argc; i++)
        if (pol_common_opt(argv, argc, &i, vars, &nv, nets, &nn))
            continue;
    vars[nv] = NULL;
    nets[nn] = NULL;
    for (int i = 2; i < argc; i++) {
        plang_script *s;
        if (strcmp(argv[i], "--var") == 0 ||
            strcmp(argv[i], "--internal") == 0) {
            i++;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "sluicectl: policy: unknown option '%s'\n",
                    argv[i]);
            return 2;
        }
        files++;
        if ((s = pol_compile(argv[i], vars, nn ? nets : NULL)) == NULL) {
            bad++;
            continue;
        }
        plang_free(s);
        if (json) {
            json_t *o = json_pack("{s:b, s:s}", "ok", 1, "file", argv[i]);
            json_dumpf(o, stdout, JSON_COMPACT);
            printf("\n");
            json_decref(o);
        } else
            printf("%s: ok\n", argv[i]);
    }
    if (files == 0) {
        pol_usage(stderr);
        return 2;
    }
    return bad ? 1 : 0;
}

int sluicectl_policy_main(int argc, char **argv, int json)
{
    const char *vars[POL_MAX_LIST + 3] = {"tag_score=5", "quarantine_score=12"};

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        pol_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return pol_check(argc, argv, json, vars, 2);
    if (strcmp(argv[1], "test") == 0)
        return pol_test(argc, argv, json, vars, 2);
    if (strcmp(argv[1], "default") == 0 && argc == 2) {
        fputs(policy_default_script, stdout);
        return 0;
    }
    fprintf(stderr, "sluicectl: policy: unknown sub-command '%s'\n", argv[1]);
    pol_usage(stderr);
    return 2;
}
