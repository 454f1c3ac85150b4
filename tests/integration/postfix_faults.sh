#!/usr/bin/env bash
# postfix_faults.sh - nothing is lost when things break, with mail flowing
# through a real Postfix (content_filter over SMTP) and sluiced:
#   a) workers killed with SIGKILL several times
#   b) the whole sluiced stopped, then started again
#   c) the reinjection target (10026) unreachable for a while
#   d) a stage that crashes its worker on some messages (test stage crash)
#   e) a stage that never calls done() (test stage hang, timeout 2s)
# After each phase every message submitted so far is delivered exactly
# once; duplicates are allowed only where the no-loss rule allows them (a
# worker killed between reinjection and its 250): they are counted and
# reported, never lost mail.
. "$(dirname "$0")/lib.sh"
it_init postfix_faults
read -r IN FILTER REINJ DEAD <<<"$(it_ports 4)"
pf_setup "$IN" "$FILTER" "$REINJ" "${FILTER_PROTO:-smtp}"
cat >"$T/extra.conf" <<EOF
stage crash
enabled yes
stage hang
enabled yes
timeout 2s
on_timeout tempfail
EOF
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
sl_start "$T/conf"
pf_start

NEXT=0    # next message id
DUPS=0

# phase_plan N [HEADER]: append N corpus messages (ids NEXT..) to a new
# phase manifest $T/phase and to the cumulative one.
phase_plan() {
    local n=$1 hdr=${2:-}
    : >"$T/phase"
    it_plan "$T/phase" --offset "$((NEXT % 2500))" --limit "$n" --start "$NEXT" \
        ${hdr:+--header "$hdr"}
    cat "$T/phase" >>"$T/all"
    NEXT=$((NEXT + n))
}

send_bg() { # manifest rate
    $MAILTOOL send --port "$IN" --conns 3 --rate "$2" "$1" >>"$T/send.log" 2>&1 &
    SEND_PID=$!
}

send_wait() {
    wait "$SEND_PID" || { cat "$T/send.log"; it_fail "submission to Postfix failed"; }
}

# settle PHASE: queue empty, every message so far there exactly once.
settle() {
    local phase=$1 out
    pf_wait_empty "${2:-120}" || it_fail "$phase: Postfix queue not empty"
    if ! out=$(check_maildir "$T/all" --allow-dups 2>&1); then
        echo "$out"
        it_fail "$phase: Maildir check failed"
    fi
    echo "$out" | head -n 1
    local d
    d=$(echo "$out" | sed -n 's/.*(\([0-9]*\) extra copies).*/\1/p' | head -n 1)
    DUPS=${d:-0}
    it_log "$phase: ok ($(wc -l <"$T/all") messages so far, $DUPS duplicates in total)"
}

delivered() { # id -> number of copies in the Maildir
    grep -rl "^Delivered-To: m$1@test.example" "$MAILDIR/new" 2>/dev/null | wc -l
}

# ---------------------------------------------------------------- a
it_log "a) SIGKILL workers while mail flows"
phase_plan 300
send_bg "$T/phase" 60
kills=0
for i in 1 2 3 4; do
    sleep 1
    w=$(sl_workers)
    [ -n "$w" ] || it_fail "a: no workers found under sluiced pid $SL_PID"
    victim=$(echo "$w" | awk '{print $1}')
    kill -KILL "$victim" && kills=$((kills + 1))
    it_log "a: killed worker $victim (workers were: $w)"
done
send_wait
sleep 1
[ -n "$(sl_workers)" ] || it_fail "a: the master did not restart its workers"
settle "a"

# ---------------------------------------------------------------- b
it_log "b) stop the whole sluiced while mail flows, start it again"
phase_plan 200
send_bg "$T/phase" 80
sleep 1
sl_stop
it_log "b: sluiced stopped (status $SL_RC)"
sleep 2
send_wait
sl_start "$T/conf"
it_log "b: sluiced started again"
pf_flush
settle "b"

# ---------------------------------------------------------------- c
it_log "c) reinjection target unreachable for a while"
sed -i "s/^next_hop .*/next_hop 127.0.0.1:$DEAD/" "$T/conf/90-deliver.conf"
sl_reload
sleep 1.5
before=$(maildir_count)
phase_plan 100
$MAILTOOL send --port "$IN" --conns 3 "$T/phase" || it_fail "c: submission failed"
sleep 4
after=$(maildir_count)
# Postfix moves queue files between directories (active <-> deferred) while
# find walks them, so one count can miss a file in transit: count again
# for up to 10 s before calling a message lost.
for _ in $(seq 20); do
    queued=$(pf_queue_count)
    [ "$queued" -ge 100 ] && break
    sleep 0.5
done
it_log "c: while unreachable: $((after - before)) delivered, $queued queued"
[ "$after" = "$before" ] || it_fail "c: $((after - before)) messages delivered while next_hop was unreachable"
[ "$queued" -ge 100 ] || it_fail "c: only $queued messages queued in Postfix, expected 100"
grep -q "status=deferred" "$PF/maillog" || it_fail "c: Postfix deferred nothing"
sed -i "s/^next_hop .*/next_hop 127.0.0.1:$REINJ/" "$T/conf/90-deliver.conf"
sl_reload
sleep 1
pf_flush
settle "c"

# disable_stage NAME: sluicectl if we have it, else conf edit + SIGHUP.
disable_stage() {
    if [ -x "${SLUICECTL:-}" ]; then
        sl_ctl disable "$1" || it_fail "sluicectl disable $1 failed"
    else
        $PYTHON - "$T/conf/50-extra.conf" "$1" <<'PYEOF'
import sys
path, name = sys.argv[1], sys.argv[2]
out, cur = [], None
for ln in open(path):
    w = ln.split()
    if w[:1] == ["stage"]:
        cur = w[1]
    if cur == name and w[:1] == ["enabled"]:
        ln = "enabled no\n"
    out.append(ln)
open(path, "w").writelines(out)
PYEOF
        sl_reload
    fi
    sleep 1
}

# ---------------------------------------------------------------- d
it_log "d) a stage that crashes its worker"
phase_plan 1 "X-Sluice-Test: crash"
crash_id=$(cut -f1 "$T/phase")
cp "$T/phase" "$T/crash.manifest"
$MAILTOOL send --port "$IN" --conns 1 "$T/phase" || it_fail "d: submission failed"
phase_plan 100
$MAILTOOL send --port "$IN" --conns 3 "$T/phase" || it_fail "d: submission failed"
# Others flow: the 100 plain ones arrive while the crash message stays.
want=$(($(wc -l <"$T/all") - 1 + DUPS))
$MAILTOOL wait --maildir "$MAILDIR" --count "$want" --timeout 60 ||
    it_fail "d: other mail stopped flowing"
sleep 3
[ "$(delivered "$crash_id")" = 0 ] || it_fail "d: the crashing message was delivered"
[ "$(pf_queue_count)" -ge 1 ] || it_fail "d: the crashing message is not in Postfix's queue"
grep -q "crash: X-Sluice-Test" "$T/sluiced.log" || it_fail "d: the crash stage never ran"
[ -n "$(sl_workers)" ] || it_fail "d: no workers after the crashes"
it_log "d: $(grep -c 'crash: X-Sluice-Test' "$T/sluiced.log") crashes so far; message $crash_id queued; disabling crash"
disable_stage crash
pf_flush
settle "d"

# ---------------------------------------------------------------- e
it_log "e) a stage that never calls done()"
phase_plan 1 "X-Sluice-Test: hang"
hang_id=$(cut -f1 "$T/phase")
$MAILTOOL send --port "$IN" --conns 1 "$T/phase" || it_fail "e: submission failed"
phase_plan 50
$MAILTOOL send --port "$IN" --conns 3 "$T/phase" || it_fail "e: submission failed"
want=$(($(wc -l <"$T/all") - 1 + DUPS))
$MAILTOOL wait --maildir "$MAILDIR" --count "$want" --timeout 60 ||
    it_fail "e: other mail stopped flowing"
sleep 4
[ "$(delivered "$hang_id")" = 0 ] || it_fail "e: the hanging message was delivered"
[ "$(pf_queue_count)" -ge 1 ] || it_fail "e: the hanging message is not in Postfix's queue"
grep -q "hang: X-Sluice-Test" "$T/sluiced.log" || it_fail "e: the hang stage never ran"
grep -Eiq "time(d)? ?out" "$T/sluiced.log" || it_fail "e: sluiced's log does not show the timeout"
grep -q "hang: aborted by the engine" "$T/sluiced.log" || it_fail "e: on_abort was not called"
it_log "e: message $hang_id timed out and stays queued; disabling hang"
disable_stage hang
pf_flush
settle "e"

sl_finish
echo "postfix_faults: $(wc -l <"$T/all") messages, $kills worker kills, all delivered; $DUPS duplicate(s) (allowed: kill between reinjection and 250)"
