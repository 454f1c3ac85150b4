#!/usr/bin/env bash
# throughput.sh - pass-through benchmark of sluiced with the default chain
# (smtp -> receive -> deliver), figures printed, nothing asserted.
#
#   smtp-source -> sluiced (ingress) -> deliver -> smtp-sink
# beside the ceiling on the same machine:
#   smtp-source -> smtp-sink
# for 4 KB and 64 KB messages, plus a corpus replay (python3 client).
# Per-message latency p50/p99 comes from a python3 client timing each
# transaction (MAIL .. 250 after the dot) through sluiced and directly;
# the difference is the latency sluiced adds.  Peak RSS per worker is
# VmHWM from /proc/PID/status of each worker at the end.
#
# The chain is conf.d's with the bayes stage switched on, its database
# trained on the corpus with sluice-bayes (BENCH_BAYES=no: conf.d as is).
#
# Environment: SLUICED, SLUICE_PLUGIN_DIR (./build.sh bench sets them),
# SLUICE_BAYES (default: sluice-bayes beside sluiced's build), SLUICE_CORPUS,
# BENCH_SCALE (default 1: multiply message counts), BENCH_BAYES.
#
# SECURITY: loopback only; runs sluiced's workers as nobody when root.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
SLUICE_BAYES=${SLUICE_BAYES:-$(dirname "$SLUICED")/../tools/sluice-bayes}
SCALE=${BENCH_SCALE:-1}
PYTHON=/usr/bin/python3
MAILTOOL="$PYTHON $REPO/tests/integration/mailtool.py"
[ -x "$SLUICED" ] || { echo "throughput.sh: no sluiced at $SLUICED (./build.sh first)"; exit 1; }
command -v smtp-source >/dev/null || { echo "throughput.sh: smtp-source missing (Debian package postfix)"; exit 1; }

T=$(mktemp -d /tmp/sluice-bench.XXXXXX)
chmod 755 "$T"
SINK_PID= SL_PID=
cleanup() {
    [ -n "$SL_PID" ] && { kill -TERM "$SL_PID" 2>/dev/null; wait "$SL_PID" 2>/dev/null; }
    [ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r SINK FILTER <<<"$($PYTHON -c '
import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')"

wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        $PYTHON -c "import socket; socket.create_connection(('127.0.0.1',$1),1).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

smtp-sink -u nobody -m 512 127.0.0.1:"$SINK" 1024 >/dev/null 2>&1 &
SINK_PID=$!
wait_port "$SINK" || { echo "smtp-sink did not start"; exit 1; }

mkdir -p "$T/conf" "$T/state"
cp "$REPO"/conf.d/*.conf "$T/conf/"
# The default chain, moved to our ports, state dir and a quiet log.
sed -i -e "s/^listen .*/listen 127.0.0.1:$FILTER/" "$T/conf/"*smtp*.conf
sed -i -e "s/^next_hop .*/next_hop 127.0.0.1:$SINK/" "$T/conf/"*deliver*.conf
sed -i -e 's/^syslog .*/syslog no/' -e 's/^log_level .*/log_level warning/' \
    -e "s|^state_dir .*|state_dir $T/state|" "$T/conf/"*engine*.conf
# The bayes stage on (off in conf.d until a database is trained), with a
# database trained on the corpus; BENCH_BAYES=no keeps conf.d as it is.
BAYES_ON=no
if [ "${BENCH_BAYES:-yes}" != no ] && [ -x "$SLUICE_BAYES" ] && [ -d "$SLUICE_CORPUS/spam" ] &&
    "$SLUICE_BAYES" -d "$T/bayes.db" learn spam "$SLUICE_CORPUS/spam" >/dev/null 2>&1 &&
    "$SLUICE_BAYES" -d "$T/bayes.db" learn ham "$SLUICE_CORPUS/ham" >/dev/null 2>&1; then
    chmod 644 "$T/bayes.db"
    sed -i -e 's/^enabled no/enabled yes/' -e "s|^database .*|database $T/bayes.db|" \
        "$T/conf/"*bayes*.conf
    BAYES_ON=yes
fi
echo "chain: conf.d's default stages, bayes stage on: $BAYES_ON"
"$SLUICED" -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" -u nobody >"$T/sluiced.log" 2>&1 &
SL_PID=$!
wait_port "$FILTER" || { echo "sluiced did not start:"; cat "$T/sluiced.log"; exit 1; }
sleep 0.5

now() { date +%s.%N; }
rate() { $PYTHON -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print('%.0f' % (n/t if t>0 else 0))" "$@"; }

# source_run PORT SIZE COUNT SESSIONS -> messages/s
source_run() {
    local t0 t1
    t0=$(now)
    smtp-source -d -s "$4" -m "$3" -l "$2" -f bench@sender.test -t bench@test.example \
        127.0.0.1:"$1" >"$T/source.log" 2>&1 || { echo "(smtp-source failed: $(tail -n 2 "$T/source.log"))" >&2; }
    t1=$(now)
    rate "$3" "$($PYTHON -c "print($t1-$t0)")"
}

declare -A R
printf '\n%-34s %10s %10s %8s\n' "benchmark" "sluiced" "direct" "ratio"
for spec in "4096 $((4000 * SCALE)) 10" "65536 $((600 * SCALE)) 10"; do
    read -r size count sess <<<"$spec"
    via=$(source_run "$FILTER" "$size" "$count" "$sess")
    direct=$(source_run "$SINK" "$size" "$count" "$sess")
    printf '%-34s %8s/s %8s/s %8s\n' "smtp-source $((size / 1024)) KB x$count, $sess sessions" \
        "$via" "$direct" "$($PYTHON -c "print('%.2f' % ($via/$direct if $direct else 0))")"
done

# Latency: python3 client, 4 connections, each transaction timed.
mkmsg() { # SIZE FILE
    $PYTHON - "$1" "$2" <<'EOF'
import sys
size, path = int(sys.argv[1]), sys.argv[2]
hdr = b"From: bench@sender.test\nTo: bench@test.example\nSubject: bench\nMessage-ID: <bench@sender.test>\n\n"
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n"
body = line * ((size - len(hdr)) // len(line) + 1)
open(path, "wb").write((hdr + body)[:size - 1] + b"\n")
EOF
}
lat_run() { # PORT MANIFEST -> "rate p50 p99"
    $MAILTOOL send --port "$1" --conns 4 --latency-out "$T/lat" "$2" 2>&1 |
        sed -n 's/.*in \([0-9.]*\)s (\([0-9.]*\) msg\/s); latency p50 \([0-9.]*\)ms p99 \([0-9.]*\)ms.*/\2 \3 \4/p'
}
printf '\n%-34s %22s %22s %10s\n' "latency (python client, 4 conns)" "sluiced p50/p99 ms" "direct p50/p99 ms" "added p99"
for size in 4096 65536; do
    mkmsg "$size" "$T/msg$size"
    : >"$T/m$size"
    for ((i = 0; i < 1000 * SCALE; i++)); do printf '%05d\t%s\t\n' "$i" "$T/msg$size" >>"$T/m$size"; done
    read -r _ vp50 vp99 <<<"$(lat_run "$FILTER" "$T/m$size")"
    read -r _ dp50 dp99 <<<"$(lat_run "$SINK" "$T/m$size")"
    printf '%-34s %22s %22s %10s\n' "$((size / 1024)) KB x$((1000 * SCALE))" "$vp50 / $vp99" "$dp50 / $dp99" \
        "$($PYTHON -c "print('%.2f ms' % ($vp99 - $dp99))")"
done

# Corpus replay (python3 client, 4 connections).
# sluiced's CPU time (master and workers, user + system), in seconds.
sl_cpu() {
    local p t=0 tck
    tck=$(getconf CLK_TCK)
    for p in "$SL_PID" $(pgrep -P "$SL_PID"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    $PYTHON -c "print($t / $tck)"
}
if [ -d "$SLUICE_CORPUS/ham" ]; then
    $MAILTOOL plan --out "$T/corpus" "$SLUICE_CORPUS/ham" "$SLUICE_CORPUS/spam" >/dev/null
    n=$(wc -l <"$T/corpus")
    c0=$(sl_cpu)
    read -r vr vp50 vp99 <<<"$(lat_run "$FILTER" "$T/corpus")"
    c1=$(sl_cpu)
    read -r dr dp50 dp99 <<<"$(lat_run "$SINK" "$T/corpus")"
    printf '\n%-34s %10s %10s %8s\n' "corpus replay ($n msgs, 4 conns)" "${vr%.*}/s" "${dr%.*}/s" \
        "$($PYTHON -c "print('%.2f' % ($vr/$dr if $dr else 0))")"
    printf '%-34s %22s %22s\n' "  latency p50/p99 ms" "$vp50 / $vp99" "$dp50 / $dp99"
    # CPU per message does not swing with the machine's other load; the
    # rate two idle cores would give follows from it (an estimate)
    $PYTHON -c "
c = ($c1 - $c0) / $n
print('%-34s %10.3f ms/msg (2 idle cores: about %.0f msg/s)' % ('  sluiced CPU per message', c * 1000, 2 / c if c > 0 else 0))"
fi

printf '\n%-34s' "peak RSS per worker (VmHWM)"
for w in $(pgrep -P "$SL_PID"); do
    printf ' %s' "$(awk '/VmHWM/{printf "%.1fMB", $2/1024}' "/proc/$w/status" 2>/dev/null)"
done
printf '   master %s\n' "$(awk '/VmHWM/{printf "%.1fMB", $2/1024}' "/proc/$SL_PID/status" 2>/dev/null)"
if grep -qiE 'error|warn' "$T/sluiced.log"; then
    echo "sluiced log (warnings and errors, first 10):"
    grep -iE 'error|warn' "$T/sluiced.log" | head -n 10
fi
