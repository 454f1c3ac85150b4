#!/usr/bin/env bash
# spamd.sh - sluice against SpamAssassin on the same messages with the same
# rules: messages/s of Debian's spamd (its rules from /usr/share/
# spamassassin, Bayes trained with sa-learn on the whole corpus, network
# tests off) fed by spamc with 2 parallel clients, and of `sluicectl scan`
# with those rule files loaded (heuristic `sa_rules`, sluice's own rules
# left out) and its Bayes trained on the same corpus; both figures and
# their ratio.  Figures printed, nothing asserted.
#
# The sample: every 10th corpus message (ham and spam in the corpus's
# proportion, about 300); SPAMD_SAMPLE=N takes N instead.  spamd's
# start-up (rule parsing) and sluice's (rule compile, cached in the run's
# directory after the first start) are left out of the rates: sluice's
# start-up is timed with one message and deducted, as bench/scan.sh does.
# sluicectl scan also runs over the whole corpus with the SA rules.
#
# Environment: SLUICECTL, SLUICE_PLUGIN_DIR, SLUICE_BAYES (default build/
# tools/sluice-bayes), SLUICE_CORPUS, SPAMD_SAMPLE, SPAMD_BAYES (a
# directory with an sa-learn database to reuse: training takes minutes),
# BENCH_RUNS (sluice runs, default 3).
#
# SECURITY: spamd listens on 127.0.0.1 only, on a free port, as nobody
# when started as root; everything lives in a temporary directory.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICECTL=${SLUICECTL:-$REPO/build/tools/sluicectl}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
SLUICE_BAYES=${SLUICE_BAYES:-$REPO/build/tools/sluice-bayes}
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
RUNS=${BENCH_RUNS:-3}
SA_RULES=/usr/share/spamassassin
PYTHON=/usr/bin/python3
for t in "$SLUICECTL" "$SLUICE_BAYES"; do
    [ -x "$t" ] || { echo "spamd.sh: no $t (./build.sh first)"; exit 1; }
done
for t in spamd spamc sa-learn; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] ||
        { echo "spamd.sh: $t missing (Debian packages spamassassin spamd spamc)"; exit 1; }
done
SPAMD=$(command -v spamd || echo /usr/sbin/spamd)
[ -d "$SA_RULES" ] || { echo "spamd.sh: no $SA_RULES"; exit 1; }

T=$(mktemp -d /tmp/sluice-spamd.XXXXXX)
chmod 755 "$T"
SPAMD_PID=
cleanup() {
    [ -n "$SPAMD_PID" ] && { kill -TERM "$SPAMD_PID" 2>/dev/null; wait "$SPAMD_PID" 2>/dev/null; }
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The sample, in a list file (one path a line).
$PYTHON - "$SLUICE_CORPUS" "${SPAMD_SAMPLE:-}" "$T/sample" <<'EOF'
import os, sys
corpus, n, out = sys.argv[1], sys.argv[2], sys.argv[3]
files = [os.path.join(corpus, d, f) for d in ("ham", "spam")
         for f in sorted(os.listdir(os.path.join(corpus, d)))]
step = max(1, len(files) // int(n)) if n else 10
open(out, "w").write("".join(f + "\n" for f in files[::step]))
EOF
N=$(wc -l <"$T/sample")
mapfile -t SAMPLE <"$T/sample"

# ---------------------------------------------------------------- spamd
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(-u nobody); fi
mkdir -p "$T/site" "$T/home" "$T/bayes"
cp /etc/spamassassin/*.pre "$T/site/" 2>/dev/null
cat >"$T/site/local.cf" <<EOF
# the accuracy setting of issue 5: Bayes on, network tests off
use_bayes 1
bayes_auto_learn 0
bayes_path $T/bayes/bayes
bayes_file_mode 0777
dns_available no
skip_rbl_checks 1
use_razor2 0
use_pyzor 0
EOF
if [ -n "${SPAMD_BAYES:-}" ] && [ -e "$SPAMD_BAYES/bayes_toks" ]; then
    cp "$SPAMD_BAYES"/bayes_* "$T/bayes/"
    echo "SpamAssassin Bayes: copied from $SPAMD_BAYES"
else
    t0=$(date +%s)
    for kind in spam ham; do
        sa-learn -C "$SA_RULES" --siteconfigpath "$T/site" --no-sync \
            --"$kind" "$SLUICE_CORPUS/$kind" >"$T/learn-$kind.log" 2>&1 ||
            { echo "sa-learn --$kind failed:"; tail -n 5 "$T/learn-$kind.log"; exit 1; }
    done
    sa-learn -C "$SA_RULES" --siteconfigpath "$T/site" --sync >/dev/null 2>&1
    echo "SpamAssassin Bayes: sa-learn on the corpus in $(($(date +%s) - t0)) s" \
        "($(cat "$T"/learn-*.log | tr '\n' ' '))"
fi
chmod -R a+rwX "$T/bayes"

PORT=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s)
"$SPAMD" "${RUN_AS[@]}" -C "$SA_RULES" --siteconfigpath "$T/site" -H "$T/home" \
    --listen "127.0.0.1:$PORT" --allowed-ips 127.0.0.1 --min-children 2 \
    --max-children 2 --min-spare 2 --max-spare 2 --nouser-config \
    --pidfile "$T/spamd.pid" -s stderr >"$T/spamd.log" 2>&1 &
SPAMD_PID=$!
for ((i = 0; i < 1200; i++)); do
    spamc -d 127.0.0.1 -p "$PORT" -K >/dev/null 2>&1 && break
    kill -0 "$SPAMD_PID" 2>/dev/null || break
    sleep 0.25
done
spamc -d 127.0.0.1 -p "$PORT" -K >/dev/null 2>&1 ||
    { echo "spamd did not start:"; tail -n 10 "$T/spamd.log"; exit 1; }
echo "spamd ready on 127.0.0.1:$PORT after $(($(date +%s) - t0)) s (2 children)"

# Two clients, each its half of the sample, one spamc per message
# (the way an MTA calls it); spamc -c: score only, the whole scan runs.
t0=$($PYTHON -c 'import time; print(time.monotonic())')
xargs -P 2 -n 1 -a "$T/sample" sh -c \
    'spamc -d 127.0.0.1 -p '"$PORT"' -s 52428800 -c <"$1" >>'"$T"'/spamc.out 2>&1; true' sh
t1=$($PYTHON -c 'import time; print(time.monotonic())')
SA_RATE=$($PYTHON -c "print('%.1f' % ($N / ($t1 - $t0)))")
SA_SPAM=$(grep -c '^[0-9.-]*/[0-9.]*$' "$T/spamc.out")
echo "spamd + spamc (2 clients): $N msgs in $($PYTHON -c "print('%.1f' % ($t1 - $t0))") s:" \
    "$SA_RATE msg/s ($SA_SPAM answers)"
kill -TERM "$SPAMD_PID" 2>/dev/null
wait "$SPAMD_PID" 2>/dev/null
SPAMD_PID=

# ---------------------------------------------------------------- sluice
mkdir -p "$T/conf" "$T/state"
cp "$REPO"/conf.d/*.conf "$T/conf/"
"$SLUICE_BAYES" -d "$T/sluice-bayes.db" learn spam "$SLUICE_CORPUS/spam" >/dev/null 2>&1 &&
    "$SLUICE_BAYES" -d "$T/sluice-bayes.db" learn ham "$SLUICE_CORPUS/ham" >/dev/null 2>&1 ||
    { echo "sluice-bayes learn failed"; exit 1; }
sed -i -e 's/^enabled no/enabled yes/' -e "s|^database .*|database $T/sluice-bayes.db|" \
    "$T/conf/"*bayes*.conf
# The SA rule files instead of sluice's own; compiled once into the cache.
sed -i -e "s|^rules .*|sa_rules $SA_RULES/*.cf|" -e '/^cache_dir/d' "$T/conf/"*heuristic*.conf
echo "cache_dir $T/hs-cache" >>"$T/conf/"*heuristic*.conf
one=$(head -n 1 "$T/sample")
t0=$(date +%s)
"$SLUICECTL" scan --json -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" --without dns,blocklist \
    "$one" >/dev/null 2>"$T/first.log" || { echo "sluicectl scan failed:"; tail -n 5 "$T/first.log"; exit 1; }
echo "sluicectl scan: SpamAssassin rules compiled and cached in $(($(date +%s) - t0)) s"

sluice_rate() { # LABEL FILE|DIR... -> prints, sets SL_RATE
    local label=$1
    shift
    SL_RATE=$($PYTHON - "$RUNS" "$one" "$SLUICECTL" scan --json -c "$T/conf" \
        -P "$SLUICE_PLUGIN_DIR" --without dns,blocklist -- "$@" <<'EOF'
import os, statistics, subprocess, sys, time
runs, one, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
i = cmd.index("--"); cmd, dirs = cmd[:i], cmd[i + 1:]
def timed(args):
    t0 = time.monotonic()
    p = subprocess.run(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = [l for l in p.stdout.splitlines() if l.startswith(b'{"file"')]
    bad = sum(1 for l in lines if b'"error":' in l)
    return time.monotonic() - t0, len(lines), bad
rates = []
for _ in range(runs):
    t1, _, _ = timed([one])       # start-up: load, cached compile, one message
    dt, n, bad = timed(dirs)
    rates.append((n - 1) / max(dt - t1, 1e-3))
print("%.0f %d %.0f %d" % (statistics.median(rates), n, max(rates), bad))
EOF
)
    read -r SL_RATE n best bad <<<"$SL_RATE"
    echo "sluicectl scan, SA rules + Bayes, $label: $n msgs: median $SL_RATE msg/s," \
        "best $best (start-up deducted, $RUNS runs)$([ "$bad" = 0 ] || echo ", $bad failed")"
}
sluice_rate "the sample" "${SAMPLE[@]}"
SAMPLE_RATE=$SL_RATE
sluice_rate "whole corpus" "$SLUICE_CORPUS/ham" "$SLUICE_CORPUS/spam"

echo
printf '%-44s %10s\n' "same $N messages, same SA rules, Bayes" "msg/s"
printf '%-44s %10s\n' "spamd + spamc (2 children, 2 clients)" "$SA_RATE"
printf '%-44s %10s\n' "sluicectl scan (all cores)" "$SAMPLE_RATE"
printf '%-44s %9sx\n' "ratio" "$($PYTHON -c "print('%.1f' % ($SAMPLE_RATE / $SA_RATE if $SA_RATE else 0))")"
