#!/usr/bin/env bash
# milter_miltertest.sh - the milter ingress against miltertest(8) scripts
# (milter/*.lua): every callback and verdict, header edits and body
# replacement, several-MB bodies and the size limit, protocol version 2 and
# the JSMS profile, aborted, reused and interleaved connections, a reload
# in the middle of a message; then hostile raw clients (bad_packets.py);
# then `profile jsms` on a unix socket that survives a reload; then a chain
# slower than reply_timeout (tempfail, or accept with fail_open yes).
# sluiced runs two workers on one milter socket the master bound.
. "$(dirname "$0")/lib.sh"
it_init milter_miltertest
command -v miltertest >/dev/null || it_fail "miltertest not installed (build.sh TEST_PKGS)"
read -r FILTER REINJ MPORT <<<"$(it_ports 3)"
cat >"$T/extra.conf" <<EOF
stage milter
listen inet:$MPORT@127.0.0.1
reply_timeout 30s
stage verdict
EOF
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
sed -i 's/^max_message_size .*/max_message_size 12M/' "$T/conf/00-engine.conf"
sl_start "$T/conf"
it_wait_listen "$MPORT" 20 "$SL_PID" || it_fail "no milter socket on $MPORT"

export MT_DIR=$IT_DIR/milter MILTER_SOCK="inet:$MPORT@127.0.0.1" SL_PID
for t in verdicts versions sessions large reload; do
    start=$SECONDS
    out=$(timeout 180 miltertest -s "$MT_DIR/$t.lua" 2>&1)
    rc=$?
    echo "$out"
    if [ "$rc" != 0 ] || ! grep -q "^$t: ok" <<<"$out"; then
        it_fail "miltertest $t.lua failed (rc $rc)"
    fi
    it_log "$t.lua passed in $((SECONDS - start))s"
done
it_log "hostile clients"
$PYTHON "$MT_DIR/bad_packets.py" "$MPORT" || it_fail "hostile clients"

# the macros reached the engine's summary line (client, queue id)
grep -q 'client=client.example\[192.0.2.7\] mta_id=Q1 ' "$T/sluiced.log" ||
    it_fail "no summary line with the client and queue id from the macros"
sl_finish

# `profile jsms` and a unix socket (kept across a reload)
it_log "profile jsms on a unix socket"
cat >"$T/conf/50-extra.conf" <<EOF
stage milter
listen local:$T/milter.sock
profile jsms
stage verdict
EOF
sl_start "$T/conf"
export MILTER_SOCK="unix:$T/milter.sock"
for i in 1 2; do
    out=$(timeout 60 miltertest -s "$MT_DIR/profile_jsms.lua" 2>&1)
    echo "$out"
    grep -q "^profile_jsms: ok" <<<"$out" || it_fail "profile_jsms.lua failed"
    if [ "$i" = 1 ]; then
        sl_reload
        sleep 2
        [ -S "$T/milter.sock" ] || it_fail "the unix socket is gone after a reload"
    fi
done
sl_finish

# a chain slower than reply_timeout: tempfail, or accept with fail_open
for mode in tempfail accept; do
    it_log "reply_timeout, answering $mode"
    fo=no
    [ "$mode" = accept ] && fo=yes
    cat >"$T/conf/50-extra.conf" <<EOF
stage milter
listen inet:$MPORT@127.0.0.1
reply_timeout 1s
fail_open $fo
stage hang
timeout 3s
EOF
    sl_start "$T/conf"
    it_wait_listen "$MPORT" 20 "$SL_PID" || it_fail "no milter socket on $MPORT"
    out=$(EXPECT=$mode MILTER_SOCK="inet:$MPORT@127.0.0.1" \
        timeout 60 miltertest -s "$MT_DIR/timeout.lua" 2>&1)
    echo "$out"
    grep -q "^timeout: ok" <<<"$out" || it_fail "timeout.lua ($mode) failed"
    grep -q "no verdict for eom (SLOW1) within 1s; answering $mode" \
        "$T/sluiced.log" || it_fail "no log line for the timeout ($mode)"
    sl_finish
done
echo "milter_miltertest: ok"
