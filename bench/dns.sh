#!/usr/bin/env bash
# dns.sh - benchmark of the dns stage: messages/s through
#   client -> sluiced (smtp -> receive -> dns -> deliver) -> smtp-sink
# with the dns stage on (against a local rbldnsd) and off, and the
# latency it adds (p50/p99 of MAIL..250-after-the-dot, python3 client,
# 8 connections).  Figures printed, nothing asserted.
#
# Each message carries a Received field with an IP of its own, a sender
# domain and two URL domains out of a few hundred, and one URL of its own:
# about 5-6 distinct queries per message over 4 zones (dnsbl, rhsbl, uribl,
# sxl-url), ~10% of them listed.  The first pass starts with cold caches;
# the second replays the same mail (every answer cached per worker).
#
# Environment: SLUICED, SLUICE_PLUGIN_DIR (./build.sh bench sets them),
# BENCH_SCALE (default 1: multiply message counts).
#
# SECURITY: loopback only; runs sluiced's workers and rbldnsd as nobody
# when root.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
SCALE=${BENCH_SCALE:-1}
PYTHON=/usr/bin/python3
MAILTOOL="$PYTHON $REPO/tests/integration/mailtool.py"
N=$((2000 * SCALE))
[ -x "$SLUICED" ] || { echo "dns.sh: no sluiced at $SLUICED (./build.sh first)"; exit 1; }
[ -f "$SLUICE_PLUGIN_DIR/dns.so" ] || { echo "dns.sh: no dns.so in $SLUICE_PLUGIN_DIR"; exit 1; }
command -v rbldnsd >/dev/null || { echo "dns.sh: rbldnsd missing (Debian package rbldnsd)"; exit 1; }
command -v smtp-sink >/dev/null || { echo "dns.sh: smtp-sink missing (Debian package postfix)"; exit 1; }

T=$(mktemp -d /tmp/sluice-bench-dns.XXXXXX)
chmod 755 "$T"
SINK_PID= SL_PID= RBL_PID=
sl_stop() {
    [ -n "$SL_PID" ] && { kill -TERM "$SL_PID" 2>/dev/null; wait "$SL_PID" 2>/dev/null; }
    SL_PID=
}
cleanup() {
    sl_stop
    [ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    [ -n "$RBL_PID" ] && { kill "$RBL_PID" 2>/dev/null; wait "$RBL_PID" 2>/dev/null; }
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r SINK FILTER DNSPORT <<<"$($PYTHON -c '
import socket
s=[socket.socket() for _ in range(3)]
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

# ------------------------------------------------------------ mail + zones
mkdir -p "$T/zones" "$T/mail"
$PYTHON - "$T" "$N" <<'EOF'
import os, sys
t, n = sys.argv[1], int(sys.argv[2])
ips, doms = [], 300
with open(os.path.join(t, "zones/bl4"), "w") as bl, \
     open(os.path.join(t, "zones/uri"), "w") as uri, \
     open(os.path.join(t, "zones/rhs"), "w") as rhs, \
     open(os.path.join(t, "zones/sxl"), "w") as sxl:
    bl.write(":127.0.0.2:listed\n")
    uri.write(":127.0.0.2:listed\n")
    rhs.write(":127.0.0.2:listed\n")
    sxl.write(":127.0.0.2:listed\n")
    for i in range(0, n, 10):
        bl.write("198.18.%d.%d\n" % (i // 250, i % 250 + 1))
    for d in range(0, doms, 10):
        uri.write("dom%d.bench\n" % d)
    rhs.write("sender7.bench\n")
man = open(os.path.join(t, "manifest"), "w")
for i in range(n):
    p = os.path.join(t, "mail/%05d.eml" % i)
    with open(p, "w") as f:
        f.write("Received: from relay%d.bench (relay%d.bench [198.18.%d.%d])\n"
                "\tby mx.bench (Postfix) with ESMTP id %d\n"
                % (i, i, i // 250, i % 250 + 1, i))
        f.write("From: news@sender%d.bench\nTo: bench@test.example\n"
                "Subject: bench %d\nMessage-ID: <%d@bench>\n"
                "Content-Type: text/plain\n\n" % (i % 20, i, i))
        f.write("Offers at http://www.dom%d.bench/offer/%d and\n"
                "https://shop.dom%d.bench/?id=%d\n" % (i % doms, i,
                                                      (i * 7) % doms, i))
        f.write(("lorem ipsum dolor sit amet, consectetur adipiscing elit\n")
                * 40)
    man.write("%05d\t%s\t\n" % (i, p))
EOF
chmod 644 "$T/zones"/*
rbldnsd -n -u nobody -b "127.0.0.1/$DNSPORT" -w "$T/zones" -t 300 \
    bl.bench:ip4set:bl4 uri.bench:dnset:uri rhs.bench:dnset:rhs \
    sxl.bench:dnset:sxl >"$T/rbldnsd.log" 2>&1 &
RBL_PID=$!
smtp-sink -u nobody -m 512 127.0.0.1:"$SINK" 1024 >/dev/null 2>&1 &
SINK_PID=$!
wait_port "$SINK" || { echo "smtp-sink did not start"; exit 1; }
sleep 0.3
kill -0 "$RBL_PID" 2>/dev/null || { echo "rbldnsd did not start:"; cat "$T/rbldnsd.log"; exit 1; }

# ------------------------------------------------------------ sluiced
sl_start() { # ENABLED(yes|no)
    rm -rf "$T/conf" "$T/state"
    mkdir -p "$T/conf" "$T/state"
    cat >"$T/conf/00-engine.conf" <<EOF
engine
workers 2
syslog no
log_level warning
state_dir $T/state
dns_servers 127.0.0.1:$DNSPORT
dns_timeout 1s
EOF
    printf 'stage smtp\nlisten 127.0.0.1:%s\n' "$FILTER" >"$T/conf/10-smtp.conf"
    printf 'stage receive\n' >"$T/conf/20-receive.conf"
    cat >"$T/conf/40-dns.conf" <<EOF
stage dns
enabled $1
timeout 30s
on_timeout continue
deadline 5s
zone BENCH_BL dnsbl bl.bench 127.0.0.2 RBL_BENCH 3
zone BENCH_RHS rhsbl rhs.bench any RHS_BENCH 2
zone BENCH_URI uribl uri.bench any URIBL_BENCH 4
zone BENCH_SXL sxl-url sxl.bench any SXL_BENCH 1
EOF
    printf 'stage deliver\nnext_hop 127.0.0.1:%s\n' "$SINK" >"$T/conf/90-deliver.conf"
    "$SLUICED" -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" -u nobody \
        >>"$T/sluiced.log" 2>&1 &
    SL_PID=$!
    wait_port "$FILTER" || { echo "sluiced did not start:"; cat "$T/sluiced.log"; exit 1; }
    sleep 0.3
}

lat_run() { # -> "rate p50 p99"
    $MAILTOOL send --port "$FILTER" --conns 8 --sender bench@sender7.bench \
        "$T/manifest" 2>&1 |
        sed -n 's/.*in \([0-9.]*\)s (\([0-9.]*\) msg\/s); latency p50 \([0-9.]*\)ms p99 \([0-9.]*\)ms.*/\2 \3 \4/p'
}

sl_start no
lat_run >/dev/null # warm-up: connections, page cache, python
read -r off_r off_p50 off_p99 <<<"$(lat_run)"
sl_stop
sl_start yes
read -r cold_r cold_p50 cold_p99 <<<"$(lat_run)"
read -r warm_r warm_p50 warm_p99 <<<"$(lat_run)"
SLUICECTL=${SLUICECTL:-$(dirname "$SLUICED")/../tools/sluicectl}
if [ -x "$SLUICECTL" ]; then
    echo "dns stage counters (both passes, all workers):"
    "$SLUICECTL" -s "$T/state/control.sock" stats 2>&1 | grep -iE "^ *dns|queries|hits|unavail" | head -n 8
fi
sl_stop
printf '\n%-44s %10s %12s %12s\n' "dns stage ($N msgs, 8 conns, 2 workers)" "msg/s" "p50 ms" "p99 ms"
printf '%-44s %10s %12s %12s\n' "off (smtp -> receive -> deliver)" "${off_r%.*}" "$off_p50" "$off_p99"
printf '%-44s %10s %12s %12s\n' "on, cold cache (rbldnsd on loopback)" "${cold_r%.*}" "$cold_p50" "$cold_p99"
printf '%-44s %10s %12s %12s\n' "on, warm cache (same mail again)" "${warm_r%.*}" "$warm_p50" "$warm_p99"
printf '%-44s %10s %12s %12s\n' "added latency, cold" "" \
    "$($PYTHON -c "print('%.2f' % ($cold_p50 - $off_p50))")" "$($PYTHON -c "print('%.2f' % ($cold_p99 - $off_p99))")"
printf '%-44s %10s %12s %12s\n' "added latency, warm" "" \
    "$($PYTHON -c "print('%.2f' % ($warm_p50 - $off_p50))")" "$($PYTHON -c "print('%.2f' % ($warm_p99 - $off_p99))")"
if grep -qiE 'error|warn' "$T/sluiced.log"; then
    echo "sluiced log (warnings and errors, first 10):"
    grep -iE 'error|warn' "$T/sluiced.log" | head -n 10
fi
