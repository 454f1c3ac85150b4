#!/usr/bin/env bash
# blocklist.sh - sluice-blocklistd benchmark, figures printed, nothing
# asserted:
#   - load time and memory (VmRSS, VmHWM) for 1M random entries (800k
#     IPv4: /32 and /24; 200k IPv6: /128 and /64) in 4 lists;
#   - reload (SIGHUP) time with the same entries, RSS after;
#   - lookups/s over loopback with pipelining (bl_bench, C): 1 and 2
#     connections, 128 requests in flight each, 10% IPv6 queries.
#
# Environment: SLUICED (./build.sh bench sets it; the daemon and bl_bench
# are taken from the same build tree), BL_ENTRIES (default 1000000),
# BL_QUERIES (default 2000000).
#
# SECURITY: loopback only; the daemon drops to sluice/nobody when root.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
BUILD=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$SLUICED")/.." && pwd)}
BLD=$BUILD/tools/blocklistd/sluice-blocklistd
BENCH=$BUILD/tools/blocklistd/bl_bench
ENTRIES=${BL_ENTRIES:-1000000}
QUERIES=${BL_QUERIES:-2000000}
PYTHON=/usr/bin/python3
[ -x "$BLD" ] && [ -x "$BENCH" ] ||
    { echo "blocklist.sh: no $BLD or $BENCH (./build.sh first)"; exit 1; }

T=$(mktemp -d /tmp/sluice-blbench.XXXXXX)
chmod 755 "$T"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

echo "== sluice-blocklistd: $ENTRIES random entries"
$PYTHON - "$T" "$ENTRIES" <<'PY'
import random, sys
d, n = sys.argv[1], int(sys.argv[2])
r = random.Random(4466)
n4 = n * 8 // 10
names = ["spam", "drop", "botnet", "tor"]
files = [open("%s/%s.list" % (d, x), "w") for x in names]
for i in range(n):
    f = files[i % 4]
    if i < n4:
        a = r.getrandbits(32)
        if r.random() < 0.5:
            f.write("%d.%d.%d.%d\n" % (a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255))
        else:
            f.write("%d.%d.%d.0/24\n" % (a >> 24, a >> 16 & 255, a >> 8 & 255))
    else:
        h = [r.getrandbits(16) for _ in range(8)]
        h[0] = 0x2001
        if r.random() < 0.5:
            f.write("%s\n" % ":".join("%x" % x for x in h))
        else:
            f.write("%s::/64\n" % ":".join("%x" % x for x in h[:4]))
for f in files:
    f.close()
PY
chmod 644 "$T"/*.list
echo "list files: $(cat "$T"/*.list | wc -l) lines, $(du -sh "$T" | cut -f1)"

PORT=$($PYTHON -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s%N)
"$BLD" -n -l "127.0.0.1:$PORT" "$T" 2>"$T/log" &
PID=$!
# it binds first, then loads: wait for the load's log line
for ((i = 0; i < 1200; i++)); do
    grep -q 'loaded:' "$T/log" && break
    sleep 0.05
done
t1=$(date +%s%N)
mem() { awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MB  ", $1, $2/1024}' "/proc/$PID/status"; }
echo "start to loaded: $(((t1 - t0) / 1000000)) ms; $(grep -o 'loaded: .*' "$T/log")"
echo "memory after load: $(mem)"

echo "== reload (SIGHUP), same entries"
kill -HUP "$PID"
for ((i = 0; i < 600; i++)); do
    grep -q 'reloaded:' "$T/log" && break
    sleep 0.05
done
echo "$(grep -o 'reloaded: .*' "$T/log" | tail -n 1)"
echo "memory after reload: $(mem)"

echo "== lookups over loopback, pipelined (128 in flight per connection)"
for c in 1 2; do
    printf 'connections=%d: ' "$c"
    "$BENCH" 127.0.0.1 "$PORT" "$QUERIES" "$c" 128 10
done
printf 'connections=1, no pipelining (depth 1), 100k queries: '
"$BENCH" 127.0.0.1 "$PORT" 100000 1 1 10
echo "memory at the end: $(mem)"
