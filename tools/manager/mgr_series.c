/*
 * mgr_series.c - the dashboard's per-minute ring (mgr_series.h).
 *
 * SECURITY: pure bookkeeping over numbers from the engine's control
 * socket; indices are always reduced modulo the ring size.
 */
#include "mgr_series.h"

#include <string.h>

const char *const mgr_series_names[MGR_S_N] = {
    "messages", "spam",       "quarantined", "rejected",
    "accepted", "tempfailed", "discarded"};

static long long ms_minute(long long t)
{
    return t - (((t % 60) + 60) % 60);
}

static mgr_bucket *ms_slot(mgr_series *s, long long minute)
{
    long long i = (minute / 60) % MGR_SERIES_MINUTES;

    if (i < 0)
        i += MGR_SERIES_MINUTES;
    return &s->ring[i];
}

void mgr_series_init(mgr_series *s)
{
    memset(s, 0, sizeof(*s));
}

void mgr_series_add(mgr_series *s, long long now,
                    const long long delta[MGR_S_N])
{
    long long m = ms_minute(now);
    mgr_bucket *b = ms_slot(s, m);
    int k;

    if (b->t != m) { /* a minute from a day ago, or never used */
        memset(b, 0, sizeof(*b));
        b->t = m;
    }
    for (k = 0; k < MGR_S_N; k++)
        b->v[k] += delta[k];
}

int mgr_series_sample(mgr_series *s, long long now, long pid,
                      const long long tot[MGR_S_N], long long delta[MGR_S_N])
{
    long long d[MGR_S_N];
    int k, reset = 0, any = 0;

    if (!s->have_base) {
        memcpy(s->base, tot, sizeof(s->base));
        s->base_pid = pid;
        s->have_base = 1;
        if (delta)
            memset(delta, 0, sizeof(long long) * MGR_S_N);
        return 0;
    }
    if (pid != s->base_pid)
        reset = 1;
    for (k = 0; k < MGR_S_N; k++)
        if (tot[k] < s->base[k])
            reset = 1;
    for (k = 0; k < MGR_S_N; k++) {
        d[k] = reset ? tot[k] : tot[k] - s->base[k];
        if (d[k] < 0)
            d[k] = 0;
        if (d[k] != 0)
            any = 1;
    }
    memcpy(s->base, tot, sizeof(s->base));
    s->base_pid = pid;
    if (delta)
        memcpy(delta, d, sizeof(d));
    if (any)
        mgr_series_add(s, now, d);
    return any;
}

mgr_bucket mgr_series_minute(const mgr_series *s, long long t)
{
    long long m = ms_minute(t);
    mgr_bucket out;

    memset(&out, 0, sizeof(out));
    {
        const mgr_bucket *b = ms_slot((mgr_series *)s, m);
        if (b->t == m)
            out = *b;
    }
    out.t = m;
    return out;
}

void mgr_series_set(mgr_series *s, long long t, const long long v[MGR_S_N])
{
    long long m = ms_minute(t);
    mgr_bucket *b = ms_slot(s, m);
    int k;

    if (b->t == m)
        for (k = 0; k < MGR_S_N; k++)
            if (b->v[k] != 0)
                return; /* counted here already: keep it */
    b->t = m;
    memcpy(b->v, v, sizeof(b->v));
}

void mgr_series_minutes(const mgr_series *s, long long now, int n,
                        mgr_bucket *out)
{
    long long m = ms_minute(now);
    int i;

    if (n > MGR_SERIES_MINUTES)
        n = MGR_SERIES_MINUTES;
    for (i = 0; i < n; i++)
        out[i] = mgr_series_minute(s, m - (long long)(n - 1 - i) * 60);
}

void mgr_series_hours(const mgr_series *s, long long now, int n,
                      mgr_bucket *out)
{
    long long h = now - (((now % 3600) + 3600) % 3600);
    int i, j, k;

    if (n > MGR_SERIES_MINUTES / 60)
        n = MGR_SERIES_MINUTES / 60;
    for (i = 0; i < n; i++) {
        long long start = h - (long long)(n - 1 - i) * 3600;
        memset(&out[i], 0, sizeof(out[i]));
        out[i].t = start;
        for (j = 0; j < 60; j++) {
            mgr_bucket b = mgr_series_minute(s, start + j * 60);
            for (k = 0; k < MGR_S_N; k++)
                out[i].v[k] += b.v[k];
        }
    }
}
