#!/usr/bin/env bash
# policy.sh - the policy stage end to end: sluiced (smtp ingress ->
# receive -> verdict (test stage: `X-Sluice-Test: score=N` adds the symbol
# TEST_SCORE) -> policy (built-in default policy, lists refreshed every
# 1s) -> deliver) -> smtp-sink, whose dump file shows what was delivered;
# the lists in a private PostgreSQL (sluice-pg) under sluiced's state
# directory, which the stage finds on its own.
#
#  1. clean mail: delivered with X-Sluice-Policy: clean.
#  2. score 8 (tag_score 5): delivered with "[SPAM] " before the subject,
#     X-Sluice-Spam with the score and TEST_SCORE, a forged X-Sluice-Spam
#     removed.
#  3. `sluicectl list add block SENDER`: within a few refresh intervals,
#     mail from SENDER is refused (550, block list), without a restart;
#     a client network on the block list too; `list remove` lets it in
#     again; `list show --json` lists the entries.
#  4. sluicectl policy check: exit 1 with FILE:LINE:COL; policy test.
#  5. PostgreSQL stopped: the cached lists stay in force, clean mail
#     flows, the outage is logged once per worker.
. "$(dirname "$0")/lib.sh"
IT_TIMEOUT=${IT_TIMEOUT:-100}
it_init policy
SEND="$PYTHON $IT_DIR/dns_tool.py send"
pol_cleanup() {
    local rc=$?
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null
    SINK_PID=
    [ -n "${PG_UP:-}" ] && "$SLUICE_PG" -q stop "$T/state" >/dev/null 2>&1
    (exit "$rc") # it_cleanup reports and returns the script's status
    it_cleanup
}
trap pol_cleanup EXIT

command -v smtp-sink >/dev/null || it_fail "smtp-sink missing (Debian package postfix)"
read -r FILTER SINK <<<"$(it_ports 2)"

# ------------------------------------------------------------ PostgreSQL
mkdir -p "$T/state" "$T/sink"
chown nobody: "$T/state" "$T/sink"
export SLUICE_PG_NOSYNC=1
SLUICECTL=$SLUICECTL "$SLUICE_PG" -q -u nobody start "$T/state" >"$T/pg.log" 2>&1 ||
    { cat "$T/pg.log"; it_fail "sluice-pg start"; }
PG_UP=1
ctl() { "$SLUICECTL" -S "$T/state" "$@"; }
ctl db status >/dev/null || ctl db migrate >/dev/null || it_fail "db migrate"

# ------------------------------------------------------------ sink, sluiced
smtp-sink -u nobody -D "$T/sink/dump" 127.0.0.1:"$SINK" 100 >/dev/null 2>&1 &
SINK_PID=$!
it_wait_listen "$SINK" 10 "$SINK_PID" || it_fail "smtp-sink not listening"
cat >"$T/extra.conf" <<'EOF2'
stage verdict
stage policy
list_refresh 1s
tag_score 5
quarantine_score 50
EOF2
SL_WORKERS=2 sl_conf "$T/conf" "$FILTER" "$SINK" "$T/extra.conf"
sl_start "$T/conf"

msg() { # msg FILE SUBJECT TEST-HEADER [EXTRA-HEADER]
    {
        echo "From: sender@example.net"
        echo "To: user@test.example"
        echo "Subject: $2"
        echo "Message-ID: <$RANDOM.$RANDOM@example.net>"
        [ -n "$3" ] && echo "X-Sluice-Test: $3"
        [ -n "${4:-}" ] && echo "$4"
        echo
        echo "Hello, this is the body."
    } >"$1"
}
# the header block of the last dumped message that contains $1
dumped() { awk -v s="$1" 'BEGIN{RS=""} index($0, s){m=$0} END{print m}' "$T/sink/dump"; }

# 1. clean
msg "$T/clean.eml" "clean one" ""
$SEND --port "$FILTER" --sender a@example.net "$T/clean.eml" >/dev/null ||
    it_fail "clean mail refused"
sleep 0.3
dumped "clean one" | grep -q '^X-Sluice-Policy: clean; score=0.00' ||
    it_fail "clean: no status header: $(dumped 'clean one')"
it_log "clean mail delivered with X-Sluice-Policy"

# 2. tagged
msg "$T/spam.eml" "buy pills" "score=8" "X-Sluice-Spam: forged by the sender"
$SEND --port "$FILTER" --sender b@example.net "$T/spam.eml" >/dev/null ||
    it_fail "score-8 mail refused"
sleep 0.3
D=$(dumped "buy pills")
grep -q '^Subject: \[SPAM\] buy pills' <<<"$D" || it_fail "no [SPAM] tag: $D"
grep -q '^X-Sluice-Spam: yes; score=8.00; symbols=TEST_SCORE(8.00)' <<<"$D" ||
    it_fail "no X-Sluice-Spam: $D"
! grep -q 'forged by the sender' <<<"$D" || it_fail "forged header kept: $D"
grep -q '^X-Sluice-Policy: tagged' <<<"$D" || it_fail "no tagged status: $D"
it_log "score 8: [SPAM] subject and X-Sluice-Spam"

# 3. lists, changed while sluiced runs
msg "$T/b.eml" "from a soon blocked sender" ""
$SEND --port "$FILTER" --sender spammer@bad.test "$T/b.eml" >/dev/null ||
    it_fail "sender refused before it was listed"
ctl list add block spammer@bad.test --comment "it test" >"$T/add.out" ||
    it_fail "list add: $(cat "$T/add.out")"
ctl list add block spammer@bad.test | grep -q "already listed" ||
    it_fail "second list add did not say already listed"
t0=$(date +%s.%N)
refused=
for ((i = 0; i < 40; i++)); do
    if ! $SEND --port "$FILTER" --sender spammer@bad.test "$T/b.eml" \
        >"$T/send.err" 2>&1; then
        refused=1
        break
    fi
    sleep 0.25
done
[ -n "$refused" ] || it_fail "blocklisted sender still accepted after 10s"
grep -q "reply=550" "$T/send.err" || it_fail "not a 550 reply: $(cat "$T/send.err")"
grep -q "reject: sender or client is on the block list" "$T/sluiced.log" ||
    it_fail "no block-list reject logged"
it_log "blocklisted sender refused after $(echo "$(date +%s.%N) - $t0" | bc)s, no restart"

ctl list add block 192.0.2.0/24 >/dev/null || it_fail "list add network"
for ((i = 0; i < 40; i++)); do
    $SEND --port "$FILTER" --addr 192.0.2.7 --sender ok@fine.test "$T/clean.eml" \
        >/dev/null 2>&1 || break
    sleep 0.25
done
[ "$i" -lt 40 ] || it_fail "blocklisted client network still accepted"
$SEND --port "$FILTER" --addr 198.51.100.7 --sender ok@fine.test "$T/clean.eml" \
    >/dev/null 2>&1 || it_fail "client outside the listed network refused"
it_log "blocklisted client network refused"

ctl --json list show block >"$T/show.json" || it_fail "list show"
grep -q '"entry": "spammer@bad.test"' "$T/show.json" || it_fail "show: $(cat "$T/show.json")"
grep -q '"entry": "192.0.2.0/24"' "$T/show.json" || it_fail "show: $(cat "$T/show.json")"
ctl list remove block spammer@bad.test >/dev/null || it_fail "list remove"
ctl list remove block spammer@bad.test >/dev/null 2>&1
[ $? = 1 ] || it_fail "removing a missing entry did not exit 1"
for ((i = 0; i < 40; i++)); do
    $SEND --port "$FILTER" --sender spammer@bad.test "$T/b.eml" >/dev/null 2>&1 && break
    sleep 0.25
done
[ "$i" -lt 40 ] || it_fail "removed sender still refused"
it_log "list remove: sender accepted again"

# an allowlisted sender skips the thresholds
ctl list add allow friend@partner.test >/dev/null || it_fail "list add allow"
msg "$T/f.eml" "friendly offer" "score=8"
for ((i = 0; i < 40; i++)); do
    $SEND --port "$FILTER" --sender friend@partner.test "$T/f.eml" >/dev/null ||
        it_fail "allowlisted mail refused"
    sleep 0.3
    dumped "friendly offer" | grep -q '^X-Sluice-Policy: allowed' && break
done
[ "$i" -lt 40 ] || it_fail "allowlisted sender not allowed"
it_log "allowlisted sender delivered untagged"

# 4. the tool
printf 'require "sluice";\nif score :value "ge" "5" {\n  quarantine\n}\n' >"$T/bad.sieve"
ctl policy check "$T/bad.sieve" 2>"$T/check.err"
[ $? = 1 ] || it_fail "policy check of a bad script did not exit 1"
grep -q "bad.sieve:4:1: expected \";\"" "$T/check.err" || it_fail "check: $(cat "$T/check.err")"
ctl policy test @default "$T/spam.eml" --score 20 | grep -q '^action: keep' &&
    it_fail "policy test: score 20 kept"
ctl policy test @default "$T/spam.eml" --score 7 | grep -q '^action: keep' ||
    it_fail "policy test: score 7 not kept"
it_log "sluicectl policy check/test"

# 5. the database goes away: the workers keep their last copy, and say
#    so once per outage (not at every poll)
ctl list add block late@bad.test >/dev/null || it_fail "list add late"
for ((i = 0; i < 40; i++)); do
    $SEND --port "$FILTER" --sender late@bad.test "$T/b.eml" >/dev/null 2>&1 || break
    sleep 0.25
done
[ "$i" -lt 40 ] || it_fail "late@bad.test not refused"
"$SLUICE_PG" -q stop "$T/state" >/dev/null 2>&1 || it_fail "sluice-pg stop"
PG_UP=
sleep 3.5 # three refresh intervals
$SEND --port "$FILTER" --sender late@bad.test "$T/b.eml" >/dev/null 2>&1 &&
    it_fail "database down: the cached block list was dropped"
$SEND --port "$FILTER" --sender fine@ok.test "$T/clean.eml" >/dev/null 2>&1 ||
    it_fail "database down: clean mail refused"
n=$(grep -c "lists: database unavailable" "$T/sluiced.log")
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || it_fail "database down logged $n times (want once per worker)"
it_log "database down: last lists kept, logged $n time(s)"

sl_stop
grep -q "lists: .* entries loaded" "$T/sluiced.log" || it_fail "no list load logged"
it_log "ok"
