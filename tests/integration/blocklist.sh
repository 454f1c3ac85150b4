#!/usr/bin/env bash
# blocklist.sh - sluice-blocklistd and the blocklist stage end to end.
#
# sluiced (smtp -> receive -> blocklist -> deliver) delivers to a private
# Postfix's reinjection smtpd; messages go straight to sluiced's listener
# with XFORWARD ADDR=... (blocklist_tool.py send).  Checks:
#   - a listed client gets BLOCKLIST_<LIST> (one per list, list_score
#     honoured; IPv4, IPv6, Postfix's "IPv6:" form), an unlisted one none;
#     also with 40 messages at once (queries pipelined per worker);
#   - malformed requests get error answers, pipelined, connection kept;
#   - SIGHUP reloads under pipelined query load with no failed query; a
#     bad file keeps the old table and logs file:line;
#   - action reject: 554 5.7.1 with the list named, nothing delivered;
#   - daemon stopped, then hung (SIGSTOP): BLOCKLIST_UNAVAILABLE, mail
#     still delivered, within the query timeout; back once it returns.
. "$(dirname "$0")/lib.sh"
IT_TIMEOUT=${IT_TIMEOUT:-170}
it_init blocklist
TOOL="$PYTHON $IT_DIR/blocklist_tool.py"
read -r IN FILTER REINJ BL <<<"$(it_ports 4)"

mkdir -p "$T/lists"
cat >"$T/lists/spam.list" <<'EOF'
# test list: default list name "spam" (the file's name)
192.0.2.0/24
198.51.100.0/24          # also in "drop" below for .7
2001:db8:bad::/48
EOF
cat >"$T/lists/drop.list" <<'EOF'
198.51.100.7/32 drop
EOF
chmod 755 "$T/lists"
chmod 644 "$T/lists"/*.list
bl_start "$BL" "$T/lists"

cat >"$T/blocklist.conf" <<EOF
stage blocklist
server 127.0.0.1:$BL
query_timeout 1s
list_score drop 50
timeout 10s
EOF
pf_setup "$IN" "$FILTER" "$REINJ" smtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/blocklist.conf"
pf_start
sl_start "$T/conf"

N=0
# send ADDR: one message from a unique sender; sets SENDER, REPLY (tool
# output) and SYMS (the symbols= field of sluiced's line for it).
send() {
    N=$((N + 1))
    SENDER="t$N@client.test"
    REPLY=$($TOOL send "$FILTER" "$1" "$SENDER") || it_fail "send $1: $REPLY"
    SYMS=
    local i
    for ((i = 0; i < 50; i++)); do
        SYMS=$(grep -F "from=<$SENDER>" "$T/sluiced.log" | grep -o 'symbols=[^ ]*' | tail -n 1)
        [ -n "$SYMS" ] && break
        case $REPLY in *"data=-"*) break ;; esac
        sleep 0.1
    done
    it_log "ADDR=$1: $(echo "$REPLY" | tr '\n' ' ') $SYMS"
}
expect_delivered() {
    case $REPLY in *"data=250 "*) ;; *) it_fail "$1: not accepted: $REPLY" ;; esac
}

# ---- listed, unlisted
send 192.0.2.7
expect_delivered listed
case $SYMS in *"BLOCKLIST_SPAM(10.00)"*) ;; *) it_fail "192.0.2.7: no BLOCKLIST_SPAM in '$SYMS'" ;; esac
send 198.51.100.7
case $SYMS in *BLOCKLIST_SPAM*"BLOCKLIST_DROP(50.00)"* | *"BLOCKLIST_DROP(50.00)"*BLOCKLIST_SPAM*) ;;
*) it_fail "198.51.100.7: expected BLOCKLIST_SPAM and BLOCKLIST_DROP(50.00) in '$SYMS'" ;; esac
send IPv6:2001:db8:bad::25
case $SYMS in *BLOCKLIST_SPAM*) ;; *) it_fail "IPv6 listed: no symbol in '$SYMS'" ;; esac
send 203.0.113.5
expect_delivered unlisted
[ -n "$SYMS" ] || it_fail "no summary line for the unlisted client"
case $SYMS in *BLOCKLIST*) it_fail "unlisted client got '$SYMS'" ;; esac
send 2001:db8:1::1
case $SYMS in *BLOCKLIST*) it_fail "unlisted IPv6 client got '$SYMS'" ;; esac

# ---- many messages at once: queries pipelined on each worker's
# connection, every answer matched to its own message
$TOOL burst "$FILTER" 40 "$T/sluiced.log" || it_fail "concurrent messages got wrong symbols"

# ---- the protocol: malformed requests answered, pipelined
$TOOL proto "$BL" || it_fail "protocol checks failed"

# ---- reload under load: no failed query; a bad file keeps the old table
$PYTHON - "$T/lists/more.list" <<'EOF'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for _ in range(50000):
        f.write("%d.%d.%d.0/24 more\n" % (r.randrange(1, 180), r.randrange(256), r.randrange(256)))
EOF
chmod 644 "$T/lists/more.list"
$TOOL load "$BL" 6 "$T/load.out" &
LOAD_PID=$!
sleep 0.5
for i in 1 2 3 4 5 6 7 8; do
    kill -HUP "$BL_PID"
    sleep 0.4
    if [ "$i" = 4 ]; then
        echo "bogus line here" >"$T/lists/zz-bad.list"
        chmod 644 "$T/lists/zz-bad.list"
    fi
    if [ "$i" = 6 ]; then rm -f "$T/lists/zz-bad.list"; fi
done
wait "$LOAD_PID" || it_fail "queries failed during reloads: $(cat "$T/load.out" 2>/dev/null)"
grep -q 'reload failed, keeping the current lists: .*zz-bad.list:1: ' "$T/blocklistd.log" ||
    it_fail "the bad file's reload did not log file:line"
n_ok=$(grep -c 'info: reloaded:' "$T/blocklistd.log")
[ "$n_ok" -ge 2 ] || it_fail "only $n_ok successful reloads"
kill -0 "$BL_PID" || it_fail "blocklistd died during the reloads"
it_log "reloads: $n_ok ok, load: $(cat "$T/load.out")"
[ "$($TOOL query "$BL" 192.0.2.1)" = "A 1 spam" ] || it_fail "table wrong after reloads"

# ---- action reject
sed -i 's/^list_score drop 50$/list_score drop 50\naction reject/' "$T/conf/50-extra.conf"
sl_reload
# the new workers take over within a moment; until then old ones answer
for ((i = 0; i < 20; i++)); do
    sleep 0.5
    send 192.0.2.8
    case $REPLY in *"mail=554 "*) break ;; esac
done
case $REPLY in *"mail=554 5.7.1 Client host [192.0.2.8] blocked using spam"*) ;;
*) it_fail "action reject: expected 554 5.7.1 naming the list, got: $REPLY" ;; esac
send 203.0.113.6
expect_delivered "unlisted under action reject"

# ---- daemon stopped: unavailable, mail still goes through (even with reject)
bl_stop
sleep 0.3
send 192.0.2.9
expect_delivered "daemon down"
case $SYMS in *"BLOCKLIST_UNAVAILABLE(0.00)"*) ;; *) it_fail "daemon down: no BLOCKLIST_UNAVAILABLE in '$SYMS'" ;; esac

# ---- back: the stage reconnects by itself (back-off)
bl_start "$BL" "$T/lists"
ok=
for ((i = 0; i < 20; i++)); do
    sleep 1
    send 203.0.113.7
    case $SYMS in *BLOCKLIST_UNAVAILABLE*) ;; *) ok=1; break ;; esac
done
[ -n "$ok" ] || it_fail "the stage did not reconnect in 20 s"

# ---- hung daemon: the query timeout (1s) ends it, mail continues
kill -STOP "$BL_PID"
t0=$(date +%s%N)
send 203.0.113.8
t1=$(date +%s%N)
kill -CONT "$BL_PID"
expect_delivered "daemon hung"
case $SYMS in *BLOCKLIST_UNAVAILABLE*) ;; *) it_fail "daemon hung: no BLOCKLIST_UNAVAILABLE in '$SYMS'" ;; esac
ms=$(((t1 - t0) / 1000000))
[ "$ms" -lt 5000 ] || it_fail "a hung daemon delayed the message ${ms} ms"
it_log "hung daemon: message took ${ms} ms"

sl_finish
bl_stop
[ "${BL_RC:-1}" = 0 ] || it_fail "blocklistd exited with status $BL_RC"
if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/blocklistd.log"; then
    it_fail "sanitizer report in blocklistd's log"
fi
echo "blocklist: ok"
