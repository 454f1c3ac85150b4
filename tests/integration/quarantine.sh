#!/usr/bin/env bash
# quarantine.sh - the `quarantine` stage and `sluicectl quarantine` end to
# end, against a real PostgreSQL (tools/sluice-pg in the test's state
# directory, as `nobody`) and a real Postfix in front of and behind
# sluiced (smtp, receive, verdict, quarantine, deliver):
#   - corpus mail with "X-Sluice-Test: quarantine" is stored (one message
#     row, one recipient row, its symbols and metadata each), not
#     delivered; clean mail is delivered once, byte-identical;
#   - `quarantine list --json` shows them; `release` reinjects each through
#     Postfix's reinjection smtpd: delivered once, byte-identical apart
#     from the trace fields, rows `released`; a second release finds
#     nothing left (exit 4);
#   - a re-sent transaction of the same queued message (same XFORWARD
#     IDENT, body, Message-ID: what the MTA does when our 250 was lost) is
#     stored once;
#   - `delete` (marks), `delete --purge`, `expire --days`;
#   - the database stopped while mail flows: quarantine-bound messages are
#     temp-failed and stay in Postfix's queue, clean mail keeps flowing;
#     with the database back and the queue flushed, each is stored exactly
#     once and nothing is lost.
. "$(dirname "$0")/lib.sh"
it_init quarantine
PG=$SLUICE_SOURCE_DIR/tools/sluice-pg
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
export SLUICE_PG_NOSYNC=1 SLUICECTL
mkdir -p "$T/state" && chown nobody: "$T/state"
q_cleanup() {
    local rc=$?
    "$PG" -q stop "$T/state" >/dev/null 2>&1
    (exit "$rc")
    it_cleanup
}
trap q_cleanup EXIT
"$PG" -q -u nobody start "$T/state" || it_fail "sluice-pg start failed"
DSN=$("$PG" dsn "$T/state")
sql() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }
q() { "$SLUICECTL" -S "$T/state" quarantine "$@"; }
sql "SELECT 1 FROM quarantine_message LIMIT 0" >/dev/null || it_fail "schema missing"

read -r IN FILTER REINJ <<<"$(it_ports 3)"
cat >"$T/extra.conf" <<EOF
stage verdict
stage quarantine
query_timeout 3s
connect_timeout 2s
timeout 10s
EOF
pf_setup "$IN" "$FILTER" "$REINJ" lmtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
pf_start
sl_start "$T/conf"

# ---------------------------------------------------------------- store
$MAILTOOL plan --out "$T/qman" --prefix q --offset 100 --limit 20 \
    --header "X-Sluice-Test: quarantine" "$SLUICE_CORPUS/spam" || it_fail "plan"
$MAILTOOL plan --out "$T/cman" --prefix c --offset 100 --limit 20 \
    "$SLUICE_CORPUS/ham" || it_fail "plan"
cat "$T/qman" "$T/cman" >"$T/both"
$MAILTOOL send --port "$IN" --conns 4 "$T/both" || it_fail "submission failed"
pf_wait_empty 60 || it_fail "Postfix queue not empty"
$MAILTOOL wait --maildir "$MAILDIR" --count 20 --timeout 30 || it_fail "clean mail not delivered"
sleep 1
[ "$(maildir_count)" = 20 ] || it_fail "$(maildir_count) delivered, want 20 (quarantined mail delivered?)"
check_maildir "$T/cman" || it_fail "clean mail not delivered intact"
n=$(sql "SELECT count(*) FROM quarantine_message")
r=$(sql "SELECT count(*) FROM quarantine_rcpt WHERE status = 'quarantined'")
[ "$n" = 20 ] && [ "$r" = 20 ] || it_fail "stored $n messages, $r recipients; want 20, 20"
bad=$(sql "SELECT count(*) FROM quarantine_message m WHERE size <> length(raw)
           OR mta_id = '' OR node = '' OR reason NOT LIKE '%quarantine%'
           OR sender <> 'sender@sender.test' OR subject = ''")
[ "$bad" = 0 ] || it_fail "$bad rows with wrong metadata"
# the symbols stored are the ones sluiced logged for that message
sql "SELECT m.msg_id, coalesce(string_agg(s.name, ',' ORDER BY s.name), '-')
     FROM quarantine_message m LEFT JOIN quarantine_symbol s ON s.message_id = m.id
     GROUP BY m.msg_id" >"$T/syms.db"
$PYTHON - "$T/syms.db" "$T/sluiced.log" <<'EOF' || it_fail "symbols differ from the log"
import re, sys
db = dict(l.rstrip("\n").split("|") for l in open(sys.argv[1]) if l.strip())
seen = 0
for l in open(sys.argv[2]):
    m = re.search(r"id=(\S+) from=.* verdict=quarantine .*symbols=(\S+)", l)
    if not m or m.group(1) not in db:
        continue
    logged = "-" if m.group(2) == "-" else ",".join(sorted(
        re.sub(r"\(.*?\)", "", x) for x in m.group(2).split(",")))
    assert db[m.group(1)] == logged, (m.group(1), db[m.group(1)], logged)
    seen += 1
assert seen == len(db), (seen, len(db))
EOF
it_log "20 quarantined (stored), 20 clean delivered"

q list --json --limit 1000 >"$T/list.json" || it_fail "list failed"
$PYTHON - "$T/list.json" <<'EOF' || it_fail "list --json wrong"
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 20, len(a)
for m in a:
    assert len(m["rcpts"]) == 1 and m["rcpts"][0]["status"] == "quarantined", m
    assert m["rcpts"][0]["rcpt"].startswith("mq"), m
    assert m["size"] > 0 and m["msg_id"], m
EOF
one=$(sql "SELECT min(id) FROM quarantine_message")
rc1=$(sql "SELECT rcpt FROM quarantine_rcpt WHERE message_id = $one")
n=$(q list --json --rcpt "$rc1" | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 1 ] || it_fail "list --rcpt found $n"
n=$(q list --json --since "2000-01-01" --until "2000-01-02" | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || it_fail "list --until found $n"
n=$(q list --json --min-score 1000 | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || it_fail "list --min-score found $n"
q show "$one" >"$T/show.txt" || it_fail "show failed"
grep -q "^recipients: $rc1:quarantined" "$T/show.txt" || it_fail "show: $(cat "$T/show.txt")"
mid=$(sql "SELECT msg_id FROM quarantine_message WHERE id = $one")
q show "$mid" --raw >"$T/raw.eml" || it_fail "show --raw by message id failed"
[ "$(stat -c %s "$T/raw.eml")" = "$(sql "SELECT size FROM quarantine_message WHERE id = $one")" ] ||
    it_fail "show --raw size"
q show 999999; [ $? = 4 ] || it_fail "show of a missing id: want exit 4"
q frobnicate; [ $? = 2 ] || it_fail "unknown sub-command: want exit 2"
"$SLUICECTL" -d "host=/nonexistent dbname=x" quarantine list; [ $? = 3 ] ||
    it_fail "no database: want exit 3"

# ---------------------------------------------------------------- release
t0=$(date +%s.%N)
for id in $(sql "SELECT id FROM quarantine_message ORDER BY id"); do
    q release "$id" --next-hop "127.0.0.1:$REINJ" >/dev/null || it_fail "release $id failed"
done
t1=$(date +%s.%N)
it_log "released 20 in $(echo "$t1 - $t0" | bc) s"
$MAILTOOL wait --maildir "$MAILDIR" --count 40 --timeout 30 || it_fail "released mail not delivered"
check_maildir "$T/both" || it_fail "released mail not delivered intact, or twice"
r=$(sql "SELECT count(*) FROM quarantine_rcpt WHERE status = 'released' AND status_by LIKE 'sluicectl:%'")
[ "$r" = 20 ] || it_fail "$r rows released, want 20"
q release "$one" --next-hop "127.0.0.1:$REINJ"; [ $? = 4 ] || it_fail "second release: want exit 4"
n=$(q list --json | $PYTHON -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || it_fail "list shows $n after release (released ones only with --all)"
# a next hop that refuses one recipient: both reported, exit 1, only the
# accepted one marked; a next hop that is down: exit 1, nothing marked
read -r FAKE DOWN <<<"$(it_ports 2)"
cat >"$T/fake.py" <<'EOF'
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(5)
def serve(c, f):
    c.sendall(b"220 fake\r\n")
    for line in f:
        cmd = line.decode().upper()
        if cmd.startswith("RCPT") and "REFUSE" in cmd:
            c.sendall(b"550 5.1.1 no such user\r\n")
        elif cmd.startswith("DATA"):
            c.sendall(b"354 go\r\n")
            for l in f:
                if l == b".\r\n":
                    break
            c.sendall(b"250 2.0.0 taken\r\n")
        elif cmd.startswith("QUIT"):
            c.sendall(b"221 bye\r\n")
            return
        else:
            c.sendall(b"250 ok\r\n")
while True:  # it_wait_listen's probe is a connection too
    c, _ = srv.accept()
    try:
        serve(c, c.makefile("rb"))
    except OSError:
        pass
    c.close()
EOF
$PYTHON "$T/fake.py" "$FAKE" &
FAKE_PID=$!
it_wait_listen "$FAKE" 10 || it_fail "fake next hop"
q release "$one" --to "taken@test.example" --to "refuse@test.example" \
    --next-hop "127.0.0.1:$FAKE" >"$T/rel.out"; [ $? = 1 ] || it_fail "partial release: want exit 1"
grep -q "^refuse@test.example refused" "$T/rel.out" || it_fail "refused recipient not reported"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt WHERE message_id = $one AND rcpt = 'taken@test.example' AND status = 'released'")" = 1 ] ||
    it_fail "accepted recipient not marked released"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt WHERE rcpt = 'refuse@test.example'")" = 0 ] ||
    it_fail "a refused recipient marked released"
kill "$FAKE_PID"
sql "UPDATE quarantine_rcpt SET status = 'quarantined' WHERE message_id = $one AND rcpt = '$rc1'"
q release "$one" --next-hop "127.0.0.1:$DOWN"; [ $? = 1 ] || it_fail "release to a dead hop: want exit 1"
[ "$(sql "SELECT status FROM quarantine_rcpt WHERE message_id = $one AND rcpt = '$rc1'")" = quarantined ] ||
    it_fail "marked released although the next hop was down"
sql "UPDATE quarantine_rcpt SET status = 'released' WHERE message_id = $one"
it_log "release ok; refused recipient and dead next hop reported"

# ---------------------------------------------------------------- exactly once
# The same queued message twice (same IDENT, Message-ID and body): the
# second transaction finds the first row.
cat >"$T/dup.py" <<'EOF'
import smtplib, sys
port, rcpt = int(sys.argv[1]), sys.argv[2]
msg = (b"From: a@sender.test\r\nTo: %s\r\nMessage-ID: <dup-1@sender.test>\r\n"
       b"Subject: dup\r\nX-Sluice-Test: quarantine\r\n\r\nsame body\r\n" % rcpt.encode())
for attempt in range(2):
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("mta.test")
    code, _ = s.docmd("XFORWARD", "NAME=mx.sender.test ADDR=192.0.2.7 IDENT=DUPQ1 HELO=mx.sender.test")
    assert code == 250, code
    s.sendmail("a@sender.test", [rcpt], msg)
    s.quit()
EOF
$PYTHON "$T/dup.py" "$FILTER" "dup@test.example" || it_fail "duplicate submission refused"
n=$(sql "SELECT count(*) FROM quarantine_message WHERE mta_id = 'DUPQ1'")
r=$(sql "SELECT count(*) FROM quarantine_rcpt r JOIN quarantine_message m ON m.id = r.message_id WHERE m.mta_id = 'DUPQ1'")
[ "$n" = 1 ] && [ "$r" = 1 ] || it_fail "re-sent message stored $n times ($r recipient rows)"
grep -q "already stored: a retry" "$T/sluiced.log" || it_fail "no retry line in the log"
[ "$(sql "SELECT host(client_addr) FROM quarantine_message WHERE mta_id = 'DUPQ1'")" = 192.0.2.7 ] ||
    it_fail "client address not stored"
# hostile bytes: invalid UTF-8 in the subject and the sender, an
# unusable client address: stored (text made valid), never a 451 loop
cat >"$T/bad.py" <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = c.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return int(l[:3])
def cmd(line, want):
    c.sendall(line + b"\r\n")
    code = reply()
    assert code == want, (line, code)
assert reply() == 220
cmd(b"EHLO mta.test", 250)
cmd(b"XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] IDENT=BADQ1", 250)
cmd(b"MAIL FROM:<b\xe9d@sender.test>", 250)
cmd(b"RCPT TO:<bad@test.example>", 250)
cmd(b"DATA", 354)
cmd(b"From: \xff\xfe <x@y>\r\nSubject: caf\xe9 \xc3\r\n"
    b"X-Sluice-Test: quarantine\r\n\r\nbody \xff\r\n.", 250)
cmd(b"QUIT", 221)
EOF
$PYTHON "$T/bad.py" "$FILTER" || it_fail "a message with invalid UTF-8 was not stored"
[ "$(sql "SELECT (subject LIKE 'caf%') || '|' || coalesce(host(client_addr), 'null') FROM quarantine_message WHERE mta_id = 'BADQ1'")" = "true|null" ] ||
    it_fail "invalid UTF-8 subject or client address stored wrongly"
sql "DELETE FROM quarantine_message WHERE mta_id = 'BADQ1'"
it_log "a re-sent message is stored once; invalid UTF-8 stored"

# ---------------------------------------------------------------- delete, expire
dup=$(sql "SELECT id FROM quarantine_message WHERE mta_id = 'DUPQ1'")
q delete "$dup" >/dev/null || it_fail "delete failed"
[ "$(sql "SELECT status FROM quarantine_rcpt WHERE message_id = $dup")" = deleted ] ||
    it_fail "delete did not mark the row"
q release "$dup" --next-hop "127.0.0.1:$REINJ"; [ $? = 4 ] || it_fail "release of a deleted one: want exit 4"
q delete "$dup" --purge >/dev/null || it_fail "delete --purge failed"
[ "$(sql "SELECT count(*) FROM quarantine_message WHERE id = $dup")" = 0 ] || it_fail "purge left the row"
sql "UPDATE quarantine_message SET received_at = now() - interval '10 days' WHERE id IN
     (SELECT id FROM quarantine_message ORDER BY id LIMIT 5)"
q expire --days 7 --dry-run | grep -q "^5 messages would expire" || it_fail "expire --dry-run"
q expire --days 7 | grep -q "^5 messages expired" || it_fail "expire"
[ "$(sql "SELECT count(*) FROM quarantine_message")" = 15 ] || it_fail "expire removed the wrong rows"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt")" = 15 ] || it_fail "expire left recipient rows"
q expire; [ $? = 2 ] || it_fail "expire without --days: want exit 2"
it_log "delete, purge, expire ok"

# ---------------------------------------------------------------- outage
sql "DELETE FROM quarantine_message"
rm -f "$MAILDIR"/new/* "$MAILDIR"/cur/*
"$PG" -q stop "$T/state" || it_fail "sluice-pg stop"
$MAILTOOL plan --out "$T/oq" --prefix oq --offset 200 --limit 10 \
    --header "X-Sluice-Test: quarantine" "$SLUICE_CORPUS/spam" || it_fail "plan"
$MAILTOOL plan --out "$T/oc" --prefix oc --offset 200 --limit 10 \
    "$SLUICE_CORPUS/ham" || it_fail "plan"
cat "$T/oq" "$T/oc" >"$T/oboth"
$MAILTOOL send --port "$IN" --conns 4 "$T/oboth" || it_fail "submission failed"
$MAILTOOL wait --maildir "$MAILDIR" --count 10 --timeout 30 || it_fail "clean mail stopped flowing"
for ((i = 0; i < 40; i++)); do
    [ "$(pf_queue_count)" = 10 ] && break
    sleep 0.5
done
[ "$(pf_queue_count)" = 10 ] || it_fail "$(pf_queue_count) in Postfix's queue, want the 10 quarantine-bound"
grep -q "quarantine not available" "$T/pf/maillog" || it_fail "no 451 from the quarantine in the maillog"
it_log "database down: 10 clean delivered, 10 quarantine-bound deferred"
"$PG" -q -u nobody start "$T/state" || it_fail "sluice-pg start again"
pf_flush
pf_wait_empty 60 || it_fail "deferred mail not stored after the database came back"
n=$(sql "SELECT count(*) FROM quarantine_message")
r=$(sql "SELECT count(DISTINCT rcpt) || ' ' || count(*) FROM quarantine_rcpt WHERE rcpt LIKE 'moq%'")
[ "$n" = 10 ] && [ "$r" = "10 10" ] || it_fail "after the outage: $n messages, rcpts $r; want 10, 10 10"
[ "$(maildir_count)" = 10 ] || it_fail "quarantined mail delivered during the outage"
check_maildir "$T/oc" || it_fail "clean mail during the outage"
it_log "database back: each deferred message stored once"

sl_finish
it_log "PASS"
