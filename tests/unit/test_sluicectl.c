/*
 * test_sluicectl.c - runs the built sluicectl binary (SLUICECTL_BIN)
 * against a forked fake control socket server that answers canned JSON,
 * and checks its output, the command line the server got, and the exit
 * codes: 0 ok, 1 ok:false, 2 usage, 3 no answer (refused, missing socket,
 * timeout, garbage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SLUICECTL_BIN
#error "SLUICECTL_BIN must name the sluicectl binary"
#endif

enum { SRV_NORMAL, SRV_MUTE, SRV_GARBAGE };

typedef struct fixture {
    char dir[64];
    char sock[128];
    pid_t srv;
    char *out, *err;
    int code;
} fixture;

static const char status_json[] =
    "{\"ok\":true,\"version\":\"0.1.0\",\"abi\":\"1.0\",\"pid\":4242,"
    "\"uptime\":3725,\"generation\":3,\"config_dir\":\"/etc/sluice/conf.d\","
    "\"hostname\":\"gw.example\",\"workers_configured\":2,"
    "\"messages_live_workers\":17,\"in_flight\":1,\"workers\":["
    "{\"number\":0,\"pid\":4243,\"generation\":3,\"state\":\"running\","
    "\"uptime\":100,\"messages\":10,\"in_flight\":1},"
    "{\"number\":1,\"pid\":4244,\"generation\":2,\"state\":\"stopping\","
    "\"uptime\":200,\"messages\":7,\"in_flight\":0}],"
    "\"stages\":[{\"position\":1,\"name\":\"smtp\",\"plugin\":\"/p/smtp.so\","
    "\"enabled\":true,\"kind\":\"ingress\",\"calls\":0,\"avg_ms\":0.0},"
    "{\"position\":2,\"name\":\"deliver\",\"plugin\":\"/p/deliver.so\","
    "\"enabled\":false,\"kind\":\"final\",\"calls\":17,\"avg_ms\":2.5}]}\n";

static const char stages_json[] =
    "{\"ok\":true,\"stages\":[{\"position\":1,\"name\":\"receive\","
    "\"plugin\":\"/p/receive.so\",\"description\":\"parse\",\"version\":\"1\","
    "\"abi\":\"1.0\",\"enabled\":true,\"kind\":\"filter\",\"timeout\":60.0,"
    "\"on_timeout\":\"tempfail\",\"config\":\"conf.d/20-receive.conf:2\","
    "\"calls\":1234,\"timeouts\":1,\"errors\":0,\"time_ms\":617.0,"
    "\"avg_ms\":0.5,\"verdicts\":{\"continue\":1234,\"accept\":0},"
    "\"counters\":{}},{\"position\":2,\"name\":\"deliver\","
    "\"plugin\":\"/p/deliver.so\",\"enabled\":false,\"kind\":\"final\","
    "\"calls\":99,\"timeouts\":0,\"errors\":2,\"time_ms\":990.0,"
    "\"avg_ms\":10.0,\"verdicts\":{\"continue\":99},"
    "\"counters\":{\"delivered_rcpts\":120,\"connections_opened\":3}}]}\n";

/* ---------------------------------------------------------------- */
/* The fake engine                                                  */

static const char *srv_answer(const char *line)
{
    if (strcmp(line, "status") == 0)
        return status_json;
    if (strcmp(line, "stages") == 0 || strcmp(line, "stats") == 0)
        return stages_json;
    if (strcmp(line, "reload") == 0)
        return "{\"ok\":true,\"generation\":4}\n";
    if (strcmp(line, "enable deliver") == 0)
        return "{\"ok\":true,\"changed\":true,\"stage\":\"deliver\","
               "\"enabled\":true,\"generation\":5}\n";
    if (strcmp(line, "disable smtp") == 0)
        return "{\"ok\":true,\"changed\":false,\"stage\":\"smtp\","
               "\"enabled\":false}\n";
    if (strncmp(line, "enable ", 7) == 0 || strncmp(line, "disable ", 8) == 0)
        return "{\"ok\":false,\"error\":\"no stage named 'nosuch'\"}\n";
    return "{\"ok\":false,\"error\":\"unknown command\"}\n";
}

static void srv_loop(int lfd, int mode, const char *dir)
{
    char logp[128];

    snprintf(logp, sizeof(logp), "%s/received", dir);
    for (;;) {
        char line[512];
        size_t n = 0;
        int fd = accept(lfd, NULL, NULL);
        FILE *log;
        const char *ans;
        if (fd < 0)
            continue;
        if (mode == SRV_MUTE) {
            sleep(30);
            close(fd);
            continue;
        }
        while (n + 1 < sizeof(line)) {
            ssize_t r = read(fd, line + n, 1);
            if (r <= 0 || line[n] == '\n')
                break;
            n++;
        }
        line[n] = '\0';
        if ((log = fopen(logp, "a")) != NULL) {
            fprintf(log, "%s\n", line);
            fclose(log);
        }
        ans = mode == SRV_GARBAGE ? "this is not json\n" : srv_answer(line);
        if (write(fd, ans, strlen(ans)) < 0)
            _exit(1);
        close(fd);
    }
}

static void srv_start(fixture *f, int mode, int listening)
{
    struct sockaddr_un sa;
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);

    assert_true(lfd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    assert_true(strlen(f->sock) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (!listening) {
        close(lfd); /* the file stays; nobody listens: ECONNREFUSED */
        return;
    }
    assert_int_equal(listen(lfd, 8), 0);
    f->srv = fork();
    assert_true(f->srv >= 0);
    if (f->srv == 0) {
        srv_loop(lfd, mode, f->dir);
        _exit(0);
    }
    close(lfd);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL)
        return strdup("");
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n)
        buf[0] = '\0';
    fclose(fp);
    return buf;
}

/* Runs sluicectl with argv (NULL-terminated, without argv[0]). */
static void run(fixture *f, const char *env_sock, const char *const *args)
{
    const char *argv[16];
    char op[128], ep[128];
    int n = 0, st;
    pid_t pid;

    argv[n++] = SLUICECTL_BIN;
    while (*args && n < 15)
        argv[n++] = *args++;
    argv[n] = NULL;
    snprintf(op, sizeof(op), "%s/out", f->dir);
    snprintf(ep, sizeof(ep), "%s/err", f->dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(99);
        dup2(o, 1);
        dup2(e, 2);
        if (env_sock)
            setenv("SLUICE_CONTROL", env_sock, 1);
        else
            unsetenv("SLUICE_CONTROL");
        execv(argv[0], (char *const *)argv);
        _exit(98);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    free(f->out);
    free(f->err);
    f->out = slurp(op);
    f->err = slurp(ep);
    f->code = WEXITSTATUS(st);
    assert_true(f->code != 98 && f->code != 99);
}

static char *received(fixture *f)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/received", f->dir);
    return slurp(p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/sluicectl-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->sock, sizeof(f->sock), "%s/control.sock", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    static const char *const files[] = {"out", "err", "received",
                                        "control.sock"};
    size_t i;

    if (f->srv > 0) {
        kill(f->srv, SIGKILL);
        waitpid(f->srv, NULL, 0);
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", f->dir, files[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f->out);
    free(f->err);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------- */

static void test_status(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "status", NULL};
    char *got;

    srv_start(f, SRV_NORMAL, 1);
    run(f, NULL, a);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "version: 0.1.0\n"));
    assert_non_null(strstr(f->out, "pid: 4242\n"));
    assert_non_null(strstr(f->out, "uptime: 1h 02m 05s (3725 s)\n"));
    assert_non_null(strstr(f->out, "generation: 3\n"));
    /* the workers and stages tables */
    assert_non_null(strstr(f->out, "4244"));
    assert_non_null(strstr(f->out, "stopping"));
    assert_non_null(strstr(f->out, "deliver"));
    assert_null(strstr(f->out, "ok:"));
    assert_string_equal(f->err, "");
    got = received(f);
    assert_string_equal(got, "status\n");
    free(got);
}

static void test_stages_table(void **state)
{
    fixture *f = *state;
    const char *a[] = {"stages", NULL};
    const char *line;

    srv_start(f, SRV_NORMAL, 1);
    run(f, f->sock, a); /* socket from $SLUICE_CONTROL */
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "POS"));
    assert_non_null(strstr(f->out, "AVG_MS"));
    line = strstr(f->out, "\n1 ");
    assert_non_null(line);
    assert_non_null(strstr(line, "receive"));
    assert_non_null(strstr(f->out, "yes"));
    line = strstr(f->out, "\n2 ");
    assert_non_null(line);
    assert_non_null(strstr(line, "deliver"));
    assert_non_null(strstr(line, " no "));
    assert_non_null(strstr(line, "10.000"));
    assert_non_null(strstr(line, "99"));
}

static void test_stats(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "stats", NULL};

    srv_start(f, SRV_NORMAL, 1);
    run(f, NULL, a);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "TIMEOUTS"));
    assert_non_null(strstr(f->out, "617.0"));
    assert_non_null(strstr(f->out, "deliver counters: delivered_rcpts=120, "
                                   "connections_opened=3\n"));
    assert_non_null(strstr(f->out, "receive verdicts: continue=1234"));
}

static void test_json(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "--json", "stages", NULL};

    srv_start(f, SRV_NORMAL, 1);
    run(f, NULL, a);
    assert_int_equal(f->code, 0);
    assert_string_equal(f->out, stages_json);
}

static void test_reload_enable_disable(void **state)
{
    fixture *f = *state;
    const char *r[] = {"-s", f->sock, "reload", NULL};
    const char *e[] = {"-s", f->sock, "enable", "deliver", NULL};
    const char *d[] = {"-s", f->sock, "disable", "smtp", NULL};
    char *got;

    srv_start(f, SRV_NORMAL, 1);
    run(f, NULL, r);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "generation 4"));
    run(f, NULL, e);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "stage deliver enabled"));
    assert_non_null(strstr(f->out, "generation 5"));
    run(f, NULL, d);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "already disabled"));
    got = received(f);
    assert_string_equal(got, "reload\nenable deliver\ndisable smtp\n");
    free(got);
}

static void test_ok_false(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "enable", "nosuch", NULL};
    const char *j[] = {"-s", f->sock, "--json", "disable", "nosuch", NULL};

    srv_start(f, SRV_NORMAL, 1);
    run(f, NULL, a);
    assert_int_equal(f->code, 1);
    assert_non_null(strstr(f->err, "no stage named 'nosuch'"));
    assert_string_equal(f->out, "");
    run(f, NULL, j);
    assert_int_equal(f->code, 1);
    assert_non_null(strstr(f->out, "\"ok\":false"));
}

static void test_refused(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "status", NULL};

    /* no socket file at all */
    run(f, NULL, a);
    assert_int_equal(f->code, 3);
    assert_non_null(strstr(f->err, f->sock));
    assert_non_null(strstr(f->err, strerror(ENOENT)));
    /* a socket file nobody listens on */
    srv_start(f, SRV_NORMAL, 0);
    run(f, NULL, a);
    assert_int_equal(f->code, 3);
    assert_non_null(strstr(f->err, f->sock));
    assert_non_null(strstr(f->err, strerror(ECONNREFUSED)));
    assert_string_equal(f->out, "");
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "-t", "0.5", "status", NULL};
    struct timespec t0, t1;
    double secs;

    srv_start(f, SRV_MUTE, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run(f, NULL, a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) +
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(f->code, 3);
    assert_non_null(strstr(f->err, "no complete reply"));
    assert_true(secs >= 0.4 && secs < 5);
}

static void test_garbage(void **state)
{
    fixture *f = *state;
    const char *a[] = {"-s", f->sock, "status", NULL};

    srv_start(f, SRV_GARBAGE, 1);
    run(f, NULL, a);
    assert_int_equal(f->code, 3);
    assert_non_null(strstr(f->err, "unreadable reply"));
}

static void test_usage(void **state)
{
    fixture *f = *state;
    static const char *const none[] = {NULL};
    const char *unknown[] = {"-s", f->sock, "frobnicate", NULL};
    const char *noarg[] = {"-s", f->sock, "enable", NULL};
    const char *extra[] = {"-s", f->sock, "status", "now", NULL};
    const char *badname[] = {"-s", f->sock, "enable", "a b\nreload", NULL};
    const char *badopt[] = {"--frob", "status", NULL};
    const char *help[] = {"--help", NULL};
    const char *cmdhelp[] = {"disable", "--help", NULL};
    const char *helpcmd[] = {"help", "stats", NULL};

    run(f, NULL, none);
    assert_int_equal(f->code, 2);
    assert_non_null(strstr(f->err, "usage:"));
    run(f, NULL, unknown);
    assert_int_equal(f->code, 2);
    assert_non_null(strstr(f->err, "frobnicate"));
    run(f, NULL, noarg);
    assert_int_equal(f->code, 2);
    run(f, NULL, extra);
    assert_int_equal(f->code, 2);
    run(f, NULL, badname);
    assert_int_equal(f->code, 2);
    run(f, NULL, badopt);
    assert_int_equal(f->code, 2);
    run(f, NULL, help);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "enable NAME"));
    assert_non_null(strstr(f->out, "exit codes"));
    run(f, NULL, cmdhelp);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "sluicectl [-s SOCKET] [--json] disable "
                                   "NAME"));
    run(f, NULL, helpcmd);
    assert_int_equal(f->code, 0);
    assert_non_null(strstr(f->out, "Per-stage statistics"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stages_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_enable_disable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ok_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
