/*
 * mgr_series.h - the dashboard's time series, I/O-free: a ring of 24 h of
 * per-minute buckets fed with the engine's cumulative counters.
 *
 * Interface
 *   mgr_series_sample() takes one reading of the engine's totals (control
 *   `stats`) and adds what changed since the last reading to the current
 *   minute.  The first reading only sets the base; a reading from another
 *   engine process (pid) or with a total that went down (a restarted
 *   engine) counts its totals as new.  mgr_series_set() puts back a
 *   minute read from the database; mgr_series_minutes()/_hours() give the
 *   last N minutes/hours, oldest first, empty ones as zeros.
 *
 * Diagnostics: none; times are epoch seconds (UTC), minutes start at a
 * multiple of 60.
 */
#ifndef SLUICE_MGR_SERIES_H
#define SLUICE_MGR_SERIES_H

#define MGR_SERIES_MINUTES 1440 /* 24 h */

enum {
    MGR_S_MESSAGES = 0,
    MGR_S_SPAM,
    MGR_S_QUARANTINED,
    MGR_S_REJECTED,
    MGR_S_ACCEPTED,
    MGR_S_TEMPFAILED,
    MGR_S_DISCARDED,
    MGR_S_N
};

/* Column names, in MGR_S_* order (also the stats_minute columns). */
extern const char *const mgr_series_names[MGR_S_N];

typedef struct mgr_bucket {
    long long t; /* start of the minute/hour; 0: empty slot */
    long long v[MGR_S_N];
} mgr_bucket;

typedef struct mgr_series {
    mgr_bucket ring[MGR_SERIES_MINUTES];
    int have_base;
    long base_pid;
    long long base[MGR_S_N];
} mgr_series;

void mgr_series_init(mgr_series *s);
/* One reading; what it added to the current minute goes to delta (may be
 * NULL).  Returns 1 if the minute changed, else 0. */
int mgr_series_sample(mgr_series *s, long long now, long pid,
                      const long long tot[MGR_S_N], long long delta[MGR_S_N]);
/* Adds delta to the minute holding `now`. */
void mgr_series_add(mgr_series *s, long long now,
                    const long long delta[MGR_S_N]);
/* The bucket of the minute holding `t` (zeros if none). */
mgr_bucket mgr_series_minute(const mgr_series *s, long long t);
/* Sets the minute starting at t (from storage) unless it has counts. */
void mgr_series_set(mgr_series *s, long long t, const long long v[MGR_S_N]);
/* The n (<= 1440) minutes up to and including now's, oldest first. */
void mgr_series_minutes(const mgr_series *s, long long now, int n,
                        mgr_bucket *out);
/* The n (<= 24) hours up to and including now's, oldest first. */
void mgr_series_hours(const mgr_series *s, long long now, int n,
                      mgr_bucket *out);

#endif
