#!/usr/bin/env bash
# reload.sh - SIGHUP under a steady stream: 10 reloads while a client sends
# straight to sluiced's ingress (deliver -> a private Postfix's reinjection
# smtpd -> Maildir).  No connection refused or failed, every message
# delivered exactly once.  Then a configuration error and SIGHUP: the old
# configuration keeps serving and the log names the file and line.
. "$(dirname "$0")/lib.sh"
it_init reload
read -r IN FILTER REINJ <<<"$(it_ports 3)"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
pf_start
sl_conf "$T/conf" "$FILTER" "$REINJ"
sl_start "$T/conf"

it_plan "$T/m1" --limit 600
# Direct to sluiced: no retries allowed (--strict); a 421 on an idle
# cached connection before MAIL is a reconnect, as for Postfix's client.
$MAILTOOL send --port "$FILTER" --conns 4 --rate 100 --strict "$T/m1" >"$T/send1.log" 2>&1 &
send_pid=$!
sleep 0.5
for i in $(seq 1 10); do
    sl_reload
    sleep 0.4
done
wait "$send_pid"
rc=$?
cat "$T/send1.log"
[ "$rc" = 0 ] || it_fail "the stream saw failures during reloads"
grep -q " 0 failed, 0 retries" "$T/send1.log" || it_fail "the stream saw failures during reloads"
$MAILTOOL wait --maildir "$MAILDIR" --count 600 --timeout 60 || it_fail "not everything was delivered"
pf_wait_empty 60 || it_fail "Postfix queue not empty"
PREFIX=$SL_DIRECT_PREFIX check_maildir "$T/m1" || it_fail "Maildir check after reloads failed"
reloads=$(grep -ciE 'reload' "$T/sluiced.log")
it_log "10 SIGHUPs under load: ok ($reloads log lines mention reload)"

# A configuration error: the old configuration stays.
echo "no_such_option 1" >>"$T/conf/20-receive.conf"
line=$(wc -l <"$T/conf/20-receive.conf")
if "$SLUICED" -t -u nobody -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" >"$T/check.out" 2>&1; then
    cat "$T/check.out"
    it_fail "sluiced -t accepted a configuration with an unknown option"
fi
grep -q "20-receive.conf:$line" "$T/check.out" || { cat "$T/check.out"; it_fail "sluiced -t does not name 20-receive.conf:$line"; }
mark=$(wc -l <"$T/sluiced.log")
sl_reload
sleep 1.5
tail -n +"$((mark + 1))" "$T/sluiced.log" >"$T/reload-error.log"
grep -q "20-receive.conf:$line" "$T/reload-error.log" || {
    cat "$T/reload-error.log"
    it_fail "the failed reload's log does not name 20-receive.conf:$line"
}
kill -0 "$SL_PID" 2>/dev/null || it_fail "sluiced died on a bad reload"
it_plan "$T/m2" --offset 600 --limit 20 --start 600
$MAILTOOL send --port "$FILTER" --conns 2 --strict "$T/m2" || it_fail "old configuration does not serve after a bad reload"
cat "$T/m1" "$T/m2" >"$T/all"
$MAILTOOL wait --maildir "$MAILDIR" --count 620 --timeout 60 || it_fail "not everything was delivered"
PREFIX=$SL_DIRECT_PREFIX check_maildir "$T/all" || it_fail "Maildir check after the bad reload failed"
sl_finish
echo "reload: ok"
