#!/usr/bin/env bash
# scan.sh - messages/s of `sluicectl scan --json` over the whole corpus
# (ham/ and spam/) with the repository's default conf.d, and the peak RSS
# of the largest scanning process.  Figures printed, nothing asserted.
#
# Runs: all cores (-j default), one process (-j 1), and all cores with
# the network checks left out (--without blocklist,dns), each BENCH_RUNS
# times (default 3); the best and the median rate are printed, with the
# start-up (conf.d load, stage init such as rule compilation, fork, one
# message) timed apart, the median rate once it is paid, and the CPU
# time per message (user + system of every process, start-up deducted),
# the figure that does not swing with the machine's other load.  The
# blocklist stage is on in conf.d: without a sluice-blocklistd it answers
# BLOCKLIST_UNAVAILABLE at once, as a gateway whose daemon is down would.
#
# Environment: SLUICECTL (default build/tools/sluicectl), SLUICE_PLUGIN_DIR
# (default build/plugins.d), SLUICE_CORPUS, SLUICE_CONF (default conf.d),
# BENCH_RUNS.
#
# SECURITY: reads the corpus, binds nothing, delivers nothing.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICECTL=${SLUICECTL:-$REPO/build/tools/sluicectl}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
SLUICE_CONF=${SLUICE_CONF:-$REPO/conf.d}
RUNS=${BENCH_RUNS:-3}
PYTHON=/usr/bin/python3
[ -x "$SLUICECTL" ] || { echo "scan.sh: no sluicectl at $SLUICECTL (./build.sh first)"; exit 1; }

# One run under Python, for the wall time and the children's peak RSS
# (RUSAGE_CHILDREN's maxrss: the largest process of the tree).
run() { # LABEL ARGS...
    local label=$1
    shift
    $PYTHON - "$RUNS" "$label" "$SLUICE_CORPUS" "$SLUICECTL" scan --json \
        -c "$SLUICE_CONF" -P "$SLUICE_PLUGIN_DIR" "$@" <<'EOF'
import json, os, resource, statistics, subprocess, sys, time
runs, label, corpus, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
one = os.path.join(corpus, "ham", sorted(os.listdir(os.path.join(corpus, "ham")))[0])
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
def timed(args):
    t0, c0 = time.monotonic(), cpu()
    p = subprocess.run(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    dt, dc = time.monotonic() - t0, cpu() - c0
    lines = p.stdout.splitlines()
    bad = sum(1 for l in lines if "error" in json.loads(l)) + (p.returncode != 0)
    return dt, dc, len(lines), bad
rates, steady, starts, cpums, n, bad = [], [], [], [], 0, 0
for _ in range(runs):
    t1, c1, _, _ = timed([one])  # start-up: load, init(), fork, one message
    dt, dc, n, bad = timed([os.path.join(corpus, "ham"), os.path.join(corpus, "spam")])
    starts.append(t1)
    rates.append(n / dt)
    steady.append((n - 1) / max(dt - t1, 1e-3))
    cpums.append(max(dc - c1, 0) / (n - 1) * 1000)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
# CPU time per message does not depend on what else the machine runs
print("%-26s %4d msgs  best %5.0f  median %5.0f msg/s  start-up %3.0f ms, "
      "then %5.0f msg/s, CPU %.3f ms/msg  peak RSS %.1f MB%s"
      % (label, n, max(rates), statistics.median(rates),
         statistics.median(starts) * 1000, statistics.median(steady),
         min(cpums), rss, "  (%d failed)" % bad if bad else ""))
EOF
}

echo "sluicectl scan --json over $SLUICE_CORPUS (ham + spam), conf $SLUICE_CONF,"
echo "$(nproc) cores, $RUNS runs each"
run "all cores" 
run "one process (-j 1)" -j 1
run "all cores, no network" --without blocklist,dns
