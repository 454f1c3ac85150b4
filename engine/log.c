/*
 * log.c - graded diagnostics to stderr and syslog (facility mail).
 */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_threshold = SLUICE_LOG_INFO;
static int log_syslog;
static char log_role[32] = "sluiced";
static char log_prog[32] = "sluiced"; /* the program, on stderr lines */
static const char *log_names[] = {"debug", "info", "warning", "error"};

void log_init(const char *progname, int level, int use_syslog)
{
    log_threshold = level;
    snprintf(log_prog, sizeof(log_prog), "%s", progname);
    if (use_syslog && !log_syslog)
        openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
    else if (!use_syslog && log_syslog)
        closelog();
    log_syslog = use_syslog;
}

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_set_level(int level)
{
    log_threshold = level;
}

int log_on(int level)
{
    return level >= log_threshold;
}

int log_level_parse(const char *s, int *level)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (strcasecmp(s, log_names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(s, "warn") == 0) {
        *level = SLUICE_LOG_WARN;
        return 0;
    }
    return -1;
}

void log_vmsg(int level, const char *id, const char *fmt, va_list ap)
{
    static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
    char line[8192];
    size_t n = 0;
    struct timeval tv;
    struct tm tm;
    char ts[32];

    if (level < SLUICE_LOG_DEBUG)
        level = SLUICE_LOG_DEBUG;
    if (level > SLUICE_LOG_ERROR)
        level = SLUICE_LOG_ERROR;
    if (level < log_threshold)
        return;
    if (level != SLUICE_LOG_INFO)
        n = (size_t)snprintf(line, sizeof(line), "%s: ", log_names[level]);
    if (id != NULL && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, "id=%s ", id);
    if (n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    /* one line per event, whatever the caller put in it */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld %s[%ld] %s: %s\n", ts,
            (long)tv.tv_usec / 1000, log_prog, (long)getpid(), log_role, line);
    if (log_syslog)
        syslog(prio[level], "%s: %s", log_role, line);
}

void log_msg(int level, const char *id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, id, fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(SLUICE_LOG_ERROR, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
