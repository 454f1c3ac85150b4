/*
 * mgr_qfilter.c - the quarantine search's filters (mgr_qfilter.h).
 *
 * SECURITY: every value is from the query string of an authenticated
 * request; lengths are bounded by the caller's buffers (a value too long
 * is refused, not cut), control characters are refused, and the values
 * only ever become statement parameters.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* timegm */
#endif
#include "mgr_qfilter.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int qf_digits(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int mgr_qfilter_time(const char *in, int end_of_day, char *out, size_t outsz)
{
    struct tm tm;
    time_t t;
    size_t n = strlen(in);
    int Y, M, D, h = 0, mi = 0, sec = 0, date_only = 0;

    memset(&tm, 0, sizeof(tm));
    if (n > 0 && n <= 12 && qf_digits(in, n)) {
        t = (time_t)strtoll(in, NULL, 10);
    } else {
        if (n >= 1 && (in[n - 1] == 'Z' || in[n - 1] == 'z'))
            n--;
        if (n == 10)
            date_only = 1;
        else if (n != 16 && n != 19)
            return -1;
        if (!qf_digits(in, 4) || in[4] != '-' || !qf_digits(in + 5, 2) ||
            in[7] != '-' || !qf_digits(in + 8, 2))
            return -1;
        if (!date_only &&
            ((in[10] != 'T' && in[10] != ' ') || !qf_digits(in + 11, 2) ||
             in[13] != ':' || !qf_digits(in + 14, 2)))
            return -1;
        if (n == 19 && (in[16] != ':' || !qf_digits(in + 17, 2)))
            return -1;
        Y = atoi(in);
        M = atoi(in + 5);
        D = atoi(in + 8);
        if (!date_only) {
            h = atoi(in + 11);
            mi = atoi(in + 14);
            if (n == 19)
                sec = atoi(in + 17);
        }
        if (Y < 1970 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31 ||
            h > 23 || mi > 59 || sec > 60)
            return -1;
        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t == (time_t)-1)
            return -1;
        {
            struct tm back;
            gmtime_r(&t, &back);
            if (back.tm_mday != D) /* 2026-02-31 */
                return -1;
        }
        if (date_only && end_of_day)
            t += 86400;
    }
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    if (strftime(out, outsz, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
        return -1;
    return 0;
}

static int qf_text_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int qf_number(const char *s, double lo, double hi, int integer)
{
    char *end;
    double d;

    if (*s == '\0' || strlen(s) > 30 || (integer && !qf_digits(s, strlen(s))))
        return 0;
    errno = 0;
    d = strtod(s, &end);
    if (*end != '\0' || errno != 0 || !isfinite(d) || d < lo || d > hi)
        return 0;
    if (integer && d != floor(d))
        return 0;
    return 1;
}

/* Fetches one value into out; 1 given, 0 not, -1 too long / bad. */
static int qf_get(mgr_qf_get get, void *arg, const char *name, char *out,
                  size_t outsz, char *err, size_t errsz)
{
    char tmp[1024];

    out[0] = '\0';
    if (!get(arg, name, tmp, sizeof(tmp)) || tmp[0] == '\0')
        return 0;
    if (strlen(tmp) >= outsz) {
        snprintf(err, errsz, "%s: too long", name);
        return -1;
    }
    if (!qf_text_ok(tmp)) {
        snprintf(err, errsz, "%s: control characters", name);
        return -1;
    }
    memcpy(out, tmp, strlen(tmp) + 1);
    return 1;
}

int mgr_qfilter_parse(mgr_qf_get get, void *arg, mgr_qfilter *f, char *err,
                      size_t errsz)
{
    static const char *const statuses[] = {"quarantined", "released", "deleted",
                                           "delivered", "any"};
    char raw[64];
    int rc;
    size_t i;

    memset(f, 0, sizeof(*f));
    if ((rc = qf_get(get, arg, "recipient", f->recipient, sizeof(f->recipient),
                     err, errsz)) < 0)
        return -1;
    f->params[0] = rc ? f->recipient : NULL;
    if ((rc = qf_get(get, arg, "sender", f->sender, sizeof(f->sender), err,
                     errsz)) < 0)
        return -1;
    f->params[1] = rc ? f->sender : NULL;
    if ((rc = qf_get(get, arg, "subject", f->subject, sizeof(f->subject), err,
                     errsz)) < 0)
        return -1;
    f->params[2] = rc ? f->subject : NULL;
    for (i = 0; i < 2; i++) {
        const char *name = i ? "to" : "from";
        char *dst = i ? f->to : f->from;
        if ((rc = qf_get(get, arg, name, raw, sizeof(raw), err, errsz)) < 0)
            return -1;
        if (rc && mgr_qfilter_time(raw, (int)i, dst, sizeof(f->from)) < 0) {
            snprintf(err, errsz,
                     "%s: not a time (epoch seconds, YYYY-MM-DD or "
                     "YYYY-MM-DDTHH:MM[:SS]Z)",
                     name);
            return -1;
        }
        f->params[3 + i] = rc ? dst : NULL;
    }
    for (i = 0; i < 2; i++) {
        const char *name = i ? "max_score" : "min_score";
        char *dst = i ? f->max_score : f->min_score;
        if ((rc = qf_get(get, arg, name, dst, sizeof(f->min_score), err,
                         errsz)) < 0)
            return -1;
        if (rc && !qf_number(dst, -1e9, 1e9, 0)) {
            snprintf(err, errsz, "%s: not a number", name);
            return -1;
        }
        f->params[5 + i] = rc ? dst : NULL;
    }
    if ((rc = qf_get(get, arg, "status", f->status, sizeof(f->status), err,
                     errsz)) < 0)
        return -1;
    if (!rc)
        snprintf(f->status, sizeof(f->status), "quarantined");
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(f->status, statuses[i]) == 0)
            break;
    if (i == sizeof(statuses) / sizeof(statuses[0])) {
        snprintf(err, errsz,
                 "status: one of quarantined, released, deleted, "
                 "delivered, any");
        return -1;
    }
    f->params[7] = f->status;
    if ((rc = qf_get(get, arg, "limit", f->limit, sizeof(f->limit), err,
                     errsz)) < 0)
        return -1;
    if (!rc)
        snprintf(f->limit, sizeof(f->limit), "50");
    else if (!qf_number(f->limit, 1, MGR_QF_MAX_LIMIT, 1)) {
        snprintf(err, errsz, "limit: a whole number from 1 to %d",
                 MGR_QF_MAX_LIMIT);
        return -1;
    }
    if ((rc = qf_get(get, arg, "offset", f->offset, sizeof(f->offset), err,
                     errsz)) < 0)
        return -1;
    if (!rc)
        snprintf(f->offset, sizeof(f->offset), "0");
    else if (!qf_number(f->offset, 0, 1000000, 1)) {
        snprintf(err, errsz, "offset: a whole number from 0 to 1000000");
        return -1;
    }
    f->params[8] = f->limit;
    f->params[9] = f->offset;
    return 0;
}
