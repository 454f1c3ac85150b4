/*
 * log.h - the one logging module: graded diagnostics to stderr and syslog.
 *
 * Every line that concerns a message carries its id ("id=..."); the
 * process role and pid prefix each stderr line.  log_fatal() logs and
 * exits with status 1.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <sluice/stage.h>

void log_init(const char *progname, int level, int use_syslog);
void log_set_role(const char *role); /* "master", "worker 1" */
void log_set_level(int level);
/* 1 if a line at `level` would be written: skip building costly lines */
int log_on(int level);
int log_level_parse(const char *s, int *level);

void log_vmsg(int level, const char *id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
void log_msg(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(SLUICE_LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_msg(SLUICE_LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(SLUICE_LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(SLUICE_LOG_ERROR, NULL, __VA_ARGS__)
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
