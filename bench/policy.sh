#!/usr/bin/env bash
# policy.sh - the policy stage's cost, figures printed, nothing asserted:
#   1. compile time and evaluations/s in-process (bench/policy_bench.c) of
#      the default policy and of a generated 500-rule policy (header,
#      address, envelope, symbol, score, client and allof tests; edits,
#      tags, quarantine, reject);
#   2. messages/s through a running chain, corpus ham -> sluiced (smtp,
#      receive, [policy], deliver) -> smtp-sink, 2 workers: policy off,
#      default policy, 500-rule policy.  The policy stage reads its lists
#      from a private PostgreSQL (tools/sluice-pg, under the bench's state
#      directory, named by the engine section's `database`); lists are
#      cached in memory, so the database is not on the message path.
#
# Environment: SLUICED, SLUICECTL, SLUICE_PLUGIN_DIR (./build.sh bench sets
# them), POLICY_BENCH (the driver; default next to sluiced's build),
# SLUICE_CORPUS, BENCH_SCALE (default 1).
#
# SECURITY: loopback only; sluiced's workers and PostgreSQL run as nobody.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-$REPO/build/plugins.d}
BUILD=$(cd "$(dirname "$SLUICED")/.." && pwd)
SLUICECTL=${SLUICECTL:-$BUILD/tools/sluicectl}
DRIVER=${POLICY_BENCH:-$BUILD/plugins/policy/policy_bench}
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
SCALE=${BENCH_SCALE:-1}
PYTHON=/usr/bin/python3
MAILTOOL="$PYTHON $REPO/tests/integration/mailtool.py"
PG=$REPO/tools/sluice-pg
for f in "$SLUICED" "$SLUICECTL" "$DRIVER"; do
    [ -x "$f" ] || { echo "policy.sh: $f missing (./build.sh first)"; exit 1; }
done
command -v smtp-sink >/dev/null || { echo "policy.sh: smtp-sink missing (postfix)"; exit 1; }

T=$(mktemp -d /tmp/sluice-pbench.XXXXXX)
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

# ---------------------------------------------------------------- 500 rules
$PYTHON - "$T/gen500.sieve" <<'EOF'
import sys
out = ['require ["sluice", "variables", "editheader", "relational", '
       '"reject", "envelope", "subaddress"];',
       '# 500 generated rules (bench/policy.sh)']
for i in range(500):
    k = i % 7
    if k == 0:
        out.append('if header :contains "subject" "spamword%d" '
                   '{ addheader "X-Rule" "r%d"; }' % (i, i))
    elif k == 1:
        out.append('if address :domain :is "from" "bad%d.example" '
                   '{ reject "blocked by rule %d"; stop; }' % (i, i))
    elif k == 2:
        out.append('if symbol "SYM_%d" { addheader "X-Rule" "s%d"; }' % (i, i))
    elif k == 3:
        out.append('if allof (score :value "ge" "%d", header :matches "to" '
                   '"*@dept%d.example") { tagsubject "[R%d]"; }'
                   % (i % 20, i, i))
    elif k == 4:
        out.append('if envelope :domain :is "from" "env%d.example" '
                   '{ quarantine "envelope rule %d"; stop; }' % (i, i))
    elif k == 5:
        out.append('if client :cidr "10.%d.%d.0/24" { addheader "X-Net" "%d"; }'
                   % (i // 256, i % 256, i))
    else:
        out.append('if anyof (header :is "x-mailer" "mailer%d", '
                   'address :localpart :is "to" "user%d") '
                   '{ set "hit" "%d"; }' % (i, i, i))
out.append('if score :value "ge" "${quarantine_score}" '
           '{ quarantine "score ${score}"; stop; }')
out.append('if score :value "ge" "${tag_score}" { tagsubject "[SPAM]"; }')
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF
chmod 644 "$T/gen500.sieve"

echo "policy bench: $(nproc) cores, $(date -u +%F)"
echo "== compile and evaluate, in-process (one core)"
"$DRIVER" -n 50 -e $((100000 * SCALE)) default
"$DRIVER" -n 20 -e $((20000 * SCALE)) "$T/gen500.sieve"

# ---------------------------------------------------------------- the chain
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
smtp-sink -u nobody -m 512 127.0.0.1:"$SINK" 1024 >/dev/null 2>&1 &
SINK_PID=$!
wait_port "$SINK" || { echo "smtp-sink did not start"; exit 1; }

cat >"$T/conf/00-engine.conf" <<EOF
engine
workers 2
syslog no
log_level warning
database $DSN
EOF
printf 'stage smtp\nlisten 127.0.0.1:%s\n' "$FILTER" >"$T/conf/10-smtp.conf"
printf 'stage receive\n' >"$T/conf/20-receive.conf"
printf 'stage deliver\nnext_hop 127.0.0.1:%s\n' "$SINK" >"$T/conf/90-deliver.conf"

N=$((2000 * SCALE))
$MAILTOOL plan --out "$T/clean" --prefix p --limit "$N" "$SLUICE_CORPUS/ham" >/dev/null

# run NAME POLICY_SECTION: sluiced with it, the manifest over 8
# connections, messages/s
run() {
    local t0 t1
    printf '%s' "$2" >"$T/conf/70-policy.conf"
    "$SLUICED" -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" -u nobody >"$T/sluiced.log" 2>&1 &
    SL_PID=$!
    wait_port "$FILTER" || { echo "sluiced did not start:"; cat "$T/sluiced.log"; exit 1; }
    sleep 1
    t0=$(now)
    $MAILTOOL send --port "$FILTER" --conns 8 "$T/clean" >"$T/send.log" 2>&1 ||
        echo "($1: send reported failures: $(tail -n 2 "$T/send.log"))"
    t1=$(now)
    printf '%-34s %6d messages  %6s msg/s\n' "$1" "$N" "$(rate "$N" "$(echo "$t1 - $t0" | bc)")"
    grep -E "error|AddressSanitizer" "$T/sluiced.log" | head -n 3
    kill -TERM "$SL_PID"
    wait "$SL_PID" 2>/dev/null
    SL_PID=
}

echo "== through sluiced (smtp, receive, policy, deliver -> smtp-sink), 2 workers"
run "policy off" $'stage policy\nenabled no\n'
run "default policy" $'stage policy\n'
run "500-rule policy" "$(printf 'stage policy\nscript %s\n' "$T/gen500.sieve")"
