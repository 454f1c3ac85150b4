#!/usr/bin/env bash
# quarantine.sh - the quarantine stage's cost, figures printed, nothing
# asserted:
#   corpus mail -> sluiced (smtp, receive, verdict, quarantine, deliver)
#   -> smtp-sink, with a private PostgreSQL (tools/sluice-pg, fsync on, as
#   in production) under the bench's state directory:
#   1. all clean (the stage looks and passes): messages/s;
#   2. 10 % quarantined (the `verdict` test stage's header): messages/s;
#   3. all quarantined: stores (one transaction each, COMMIT before 250)/s;
#   4. `sluicectl quarantine release` of stored messages to smtp-sink: one
#      command each (connect, lock, SMTP session, mark, commit), then 100
#      and 1000 IDs in one command (one SMTP session): releases/s.
#      BENCH_RELEASE_LOOP_ALL=1 also times one command each for all 1000.
#
# Environment: SLUICED, SLUICECTL, SLUICE_PLUGIN_DIR (./build.sh bench sets
# the first and the last), SLUICE_CORPUS, BENCH_SCALE (default 1).  The
# `verdict` test stage comes from the plugin dir, or is compiled here
# (release builds leave it out).
#
# SECURITY: loopback only; sluiced's workers and PostgreSQL run as nobody.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
SLUICECTL=${SLUICECTL:-$(dirname "$SLUICED")/../tools/sluicectl}
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
SCALE=${BENCH_SCALE:-1}
PYTHON=/usr/bin/python3
MAILTOOL="$PYTHON $REPO/tests/integration/mailtool.py"
PG=$REPO/tools/sluice-pg
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -n 1)
for f in "$SLUICED" "$SLUICECTL"; do
    [ -x "$f" ] || { echo "quarantine.sh: $f missing (./build.sh first)"; exit 1; }
done
command -v smtp-sink >/dev/null || { echo "quarantine.sh: smtp-sink missing (postfix)"; exit 1; }

T=$(mktemp -d /tmp/sluice-qbench.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/state" "$T/conf" && chown nobody: "$T/state"
SINK_PID= SL_PID=
cleanup() {
    [ -n "$SL_PID" ] && { kill -TERM "$SL_PID" 2>/dev/null; wait "$SL_PID" 2>/dev/null; }
    [ -n "$SINK_PID" ] && { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
    "$PG" -q stop "$T/state" >/dev/null 2>&1
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
now() { date +%s.%N; }
rate() { $PYTHON -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print('%.0f' % (n/t if t>0 else 0))" "$@"; }

SLUICECTL=$SLUICECTL "$PG" -q -u nobody start "$T/state" || { echo "sluice-pg start failed"; exit 1; }
DSN=$("$PG" dsn "$T/state")
sql() { "$BIN/psql" -X -q -At -d "$DSN" -c "$1"; }

smtp-sink -u nobody -m 512 127.0.0.1:"$SINK" 1024 >/dev/null 2>&1 &
SINK_PID=$!
wait_port "$SINK" || { echo "smtp-sink did not start"; exit 1; }

cat >"$T/conf/00-engine.conf" <<EOF
engine
workers 2
syslog no
log_level warning
EOF
printf 'stage smtp\nlisten 127.0.0.1:%s\n' "$FILTER" >"$T/conf/10-smtp.conf"
printf 'stage receive\n' >"$T/conf/20-receive.conf"
# the test stage is not in a release build (SLUICE_TESTS=OFF): build it
VERDICT=$SLUICE_PLUGIN_DIR/verdict.so
if [ ! -f "$VERDICT" ]; then
    VERDICT=$T/verdict.so
    ${CC:-cc} -O2 -shared -fPIC -fvisibility=hidden -I"$REPO/abi" \
        "$REPO/plugins/testing/verdict.c" -o "$VERDICT" ||
        { echo "quarantine.sh: cannot build the verdict test stage"; exit 1; }
fi
printf 'stage verdict\nplugin %s\n' "$VERDICT" >"$T/conf/70-verdict.conf"
cp "$REPO/conf.d/80-quarantine.conf" "$T/conf/"
printf 'stage deliver\nnext_hop 127.0.0.1:%s\n' "$SINK" >"$T/conf/90-deliver.conf"
"$SLUICED" -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" -u nobody >"$T/sluiced.log" 2>&1 &
SL_PID=$!
wait_port "$FILTER" || { echo "sluiced did not start:"; cat "$T/sluiced.log"; exit 1; }
sleep 0.5

# run NAME MANIFEST: sends it over 8 connections, prints messages/s
run() {
    local t0 t1 n
    n=$(wc -l <"$2")
    t0=$(now)
    $MAILTOOL send --port "$FILTER" --conns 8 "$2" >"$T/send.log" 2>&1 ||
        echo "($1: send reported failures: $(tail -n 2 "$T/send.log"))"
    t1=$(now)
    printf '%-34s %6d messages  %6s msg/s\n' "$1" "$n" "$(rate "$n" "$(echo "$t1 - $t0" | bc)")"
}

N=$((2000 * SCALE))
Q=$((N / 10))
$MAILTOOL plan --out "$T/clean" --prefix a --limit "$N" "$SLUICE_CORPUS/ham" >/dev/null
$MAILTOOL plan --out "$T/mix" --prefix b --limit $((N - Q)) "$SLUICE_CORPUS/ham" >/dev/null
$MAILTOOL plan --out "$T/mixq" --prefix bq --limit "$Q" \
    --header "X-Sluice-Test: quarantine" "$SLUICE_CORPUS/spam" >/dev/null
# interleave: one quarantined in ten
paste -d '\n' <(awk 'NR % 9 == 1' "$T/mix") "$T/mixq" <(awk 'NR % 9 != 1' "$T/mix") |
    sed '/^$/d' >"$T/mixed"
$MAILTOOL plan --out "$T/allq" --prefix c --limit $((1000 * SCALE)) \
    --header "X-Sluice-Test: quarantine" "$SLUICE_CORPUS/spam" "$SLUICE_CORPUS/ham" >/dev/null

echo "quarantine bench: 2 workers, PostgreSQL fsync on, $(nproc) cores, $(date -u +%F)"
run "all clean" "$T/clean"
sql "TRUNCATE quarantine_message CASCADE"
run "10 % quarantined" "$T/mixed"
echo "  stored: $(sql "SELECT count(*) FROM quarantine_message") of $Q"
sql "TRUNCATE quarantine_message CASCADE"
run "all quarantined (stores)" "$T/allq"
echo "  stored: $(sql "SELECT count(*) FROM quarantine_message"), $(sql "SELECT pg_size_pretty(pg_total_relation_size('quarantine_message'))") on disk"

# release: the stored messages to smtp-sink.  First one sluicectl per
# message (a process, a database connection and an SMTP session each: the
# way before bulk release), then many IDs in one sluicectl (one SMTP
# session, one transaction per message; sluicectl_release.c).
relrate() { # relrate LABEL N SECONDS FAILS
    printf '%-34s %6d messages  %6s releases/s (%d failed)\n' "$1" "$2" \
        "$(rate "$2" "$3")" "$4"
}
unrelease() { sql "UPDATE quarantine_rcpt SET status = 'quarantined'"; }
R=$((100 * SCALE))
ids=$(sql "SELECT id FROM quarantine_message ORDER BY id LIMIT $R")
t0=$(now)
fails=0
for id in $ids; do
    "$SLUICECTL" -S "$T/state" quarantine release "$id" --next-hop "127.0.0.1:$SINK" >/dev/null || fails=$((fails + 1))
done
t1=$(now)
relrate "release, one sluicectl each" "$R" "$(echo "$t1 - $t0" | bc)" "$fails"
if [ -n "${BENCH_RELEASE_LOOP_ALL:-}" ]; then  # the old way for every one
    unrelease
    all=$(sql "SELECT id FROM quarantine_message ORDER BY id")
    n=$(echo "$all" | wc -l)
    t0=$(now)
    fails=0
    for id in $all; do
        "$SLUICECTL" -S "$T/state" quarantine release "$id" --next-hop "127.0.0.1:$SINK" >/dev/null || fails=$((fails + 1))
    done
    t1=$(now)
    relrate "release, one sluicectl each" "$n" "$(echo "$t1 - $t0" | bc)" "$fails"
fi
for R in $((100 * SCALE)) $((1000 * SCALE)); do
    unrelease
    sql "SELECT id FROM quarantine_message ORDER BY id LIMIT $R" >"$T/ids"
    n=$(wc -l <"$T/ids")
    t0=$(now)
    "$SLUICECTL" -S "$T/state" quarantine release - --next-hop "127.0.0.1:$SINK" <"$T/ids" >/dev/null
    rc=$?
    t1=$(now)
    left=$(sql "SELECT count(*) FROM quarantine_rcpt r JOIN quarantine_message m ON m.id = r.message_id
                WHERE r.status <> 'released' AND m.id IN (SELECT id FROM quarantine_message ORDER BY id LIMIT $R)")
    relrate "release, $n IDs in one sluicectl" "$n" "$(echo "$t1 - $t0" | bc)" "$left"
    [ "$rc" = 0 ] || echo "  (sluicectl exit $rc)"
done
grep -E "ERROR|AddressSanitizer" "$T/sluiced.log" | head -n 5 || true
