/*
 * test_deliver_sink.c - starts and stops Postfix's smtp-sink(1) on a
 * loopback port for the deliver tests; see test_deliver_sink.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_deliver_sink.h"

/* Sinks still running, so that a failed test (cmocka jumps out of it)
 * does not leave smtp-sink processes and directories behind. */
static struct {
    pid_t pid;
    char dir[64];
} sink_reg[32];

static void sink_rmdir(const char *dir)
{
    DIR *d;
    struct dirent *e;
    char p[512];

    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void sink_cleanup(void)
{
    size_t i;

    for (i = 0; i < sizeof(sink_reg) / sizeof(sink_reg[0]); i++) {
        if (sink_reg[i].pid > 0) {
            kill(sink_reg[i].pid, SIGTERM);
            waitpid(sink_reg[i].pid, NULL, 0);
        }
        if (sink_reg[i].dir[0])
            sink_rmdir(sink_reg[i].dir);
        sink_reg[i].pid = 0;
        sink_reg[i].dir[0] = '\0';
    }
}

/* A connection to where s listens, or -1. */
static int sink_probe(const sink *s)
{
    int fd = -1;

    if (strcmp(s->family, "unix") == 0) {
        struct sockaddr_un un;
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        if (strlen(s->unix_path) >= sizeof(un.sun_path))
            return -1;
        memcpy(un.sun_path, s->unix_path, strlen(s->unix_path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
            close(fd);
            fd = -1;
        }
    } else if (strcmp(s->family, "v6") == 0) {
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin6_family = AF_INET6;
        sa.sin6_addr = in6addr_loopback;
        sa.sin6_port = htons((uint16_t)s->port);
        fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            close(fd);
            fd = -1;
        }
    } else {
        fd = connect_port(s->port);
    }
    return fd;
}

/* Records s (pid and directory), updating the entry for its directory;
 * remove: forgets it. */
static void sink_track(const sink *s, int remove)
{
    static int hooked;
    size_t i, n = sizeof(sink_reg) / sizeof(sink_reg[0]), freei = n;

    if (!hooked) {
        atexit(sink_cleanup);
        hooked = 1;
    }
    for (i = 0; i < n; i++) {
        if (sink_reg[i].dir[0] == '\0') {
            if (freei == n)
                freei = i;
            continue;
        }
        if (strcmp(sink_reg[i].dir, s->dir) == 0) {
            sink_reg[i].pid = remove ? 0 : s->pid;
            if (remove)
                sink_reg[i].dir[0] = '\0';
            return;
        }
    }
    if (!remove && freei < n) {
        sink_reg[freei].pid = s->pid;
        snprintf(sink_reg[freei].dir, sizeof(sink_reg[freei].dir), "%s",
                 s->dir);
    }
}

static const char *sink_path(void)
{
    const char *p = getenv("SMTP_SINK");
    return p && *p ? p : "/usr/sbin/smtp-sink";
}

int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int connect_port(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    {
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

/* Starts smtp-sink with extra options (NULL-terminated); fails the test if
 * it does not accept connections within 5 s. */
void sink_start(sink *s, const char *const *opts)
{
    const char *argv[32];
    char listen[160], dump[128];
    int i, n = 0, attempt;

    if (s->dir[0] == '\0') {
        snprintf(s->dir, sizeof(s->dir), "/tmp/sluice-sink-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        chmod(s->dir, 0777); /* smtp-sink writes as nobody when we are root */
    }
    if (s->port == 0)
        s->port = free_port();
    if (strcmp(s->family, "unix") == 0) {
        snprintf(s->unix_path, sizeof(s->unix_path), "%s/s.sock", s->dir);
        snprintf(listen, sizeof(listen), "unix:%s", s->unix_path);
    } else if (strcmp(s->family, "v6") == 0) {
        snprintf(listen, sizeof(listen), "[::1]:%d", s->port);
    } else {
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
    }
    snprintf(dump, sizeof(dump), "%s/msg.", s->dir);
    argv[n++] = sink_path();
    if (geteuid() == 0) {
        argv[n++] = "-u";
        argv[n++] = "nobody";
    }
    argv[n++] = "-d";
    argv[n++] = dump;
    for (i = 0; opts && opts[i] && n < 28; i++)
        argv[n++] = opts[i];
    argv[n++] = listen;
    argv[n++] = "16";
    argv[n] = NULL;
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        char logp[128];
        int lfd;
        snprintf(logp, sizeof(logp), "%s/.sink.log", s->dir);
        lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lfd >= 0) {
            dup2(lfd, 1);
            dup2(lfd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (attempt = 0; attempt < 100; attempt++) {
        int fd, st;
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            sink_rmdir(s->dir);
            fail_msg("%s exited at once (status %d); is the postfix package "
                     "installed?",
                     sink_path(), st);
        }
        fd = sink_probe(s);
        if (fd >= 0) {
            close(fd); /* smtp-sink copes with a client that just leaves */
            sink_track(s, 0);
            return;
        }
        nanosleep(&ts, NULL);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    sink_rmdir(s->dir);
    fail_msg("%s did not listen on port %d within 5 s", sink_path(), s->port);
}

void sink_kill(sink *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        sink_track(s, 0);
    }
}

void sink_stop(sink *s)
{
    sink_kill(s);
    sink_rmdir(s->dir);
    sink_track(s, 1);
}

/* The dumped message (the newest file), NUL-terminated, or NULL. */
char *sink_dump(sink *s)
{
    DIR *d;
    struct dirent *e;
    char p[512], *buf = NULL;
    int tries;

    for (tries = 0; tries < 40 && buf == NULL; tries++) {
        struct timespec ts = {0, 25 * 1000 * 1000};
        if ((d = opendir(s->dir)) == NULL)
            return NULL;
        while ((e = readdir(d)) != NULL && buf == NULL) {
            FILE *fp;
            long n;
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", s->dir, e->d_name);
            if ((fp = fopen(p, "rb")) == NULL)
                continue;
            fseek(fp, 0, SEEK_END);
            n = ftell(fp);
            rewind(fp);
            if (n > 0) {
                buf = calloc(1, (size_t)n + 1);
                if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
                    free(buf);
                    buf = NULL;
                }
            }
            fclose(fp);
        }
        closedir(d);
        if (buf == NULL)
            nanosleep(&ts, NULL);
    }
    return buf;
}

char *sink_log(sink *s)
{
    char p[128], *buf;
    FILE *fp;
    long n;

    snprintf(p, sizeof(p), "%s/.sink.log", s->dir);
    if ((fp = fopen(p, "rb")) == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    rewind(fp);
    buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n)
        buf[0] = '\0';
    fclose(fp);
    return buf;
}
