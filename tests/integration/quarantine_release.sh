#!/usr/bin/env bash
# quarantine_release.sh - many quarantined messages released at once,
# through a REAL Postfix, and the engine-level `database`:
#   - PostgreSQL runs in its own directory (not sluiced's state dir) and
#     only the engine section names it (`database DSN`); the quarantine
#     stage has no `database` line: the messages are stored there;
#   - `sluicectl quarantine release ID...` of 30 messages: one SMTP
#     session to Postfix's reinjection smtpd (one `connect from` in its
#     log), each message delivered by virtual(8) to the Maildir exactly
#     once and byte-identical apart from the trace fields, every row
#     `released`; IDs from stdin (`-`) work the same;
#   - an unknown ID among good ones: the good ones are released, exit 1;
#     a second release of the same IDs finds nothing (exit 4);
#   - a next hop that is down: all fail at once (no wait per message),
#     exit 1, nothing marked.
. "$(dirname "$0")/lib.sh"
it_init quarantine_release
PG=$SLUICE_SOURCE_DIR/tools/sluice-pg
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
export SLUICE_PG_NOSYNC=1 SLUICECTL
mkdir -p "$T/db" && chown nobody: "$T/db"
qr_cleanup() {
    local rc=$?
    "$PG" -q stop "$T/db" >/dev/null 2>&1
    (exit "$rc")
    it_cleanup
}
trap qr_cleanup EXIT
"$PG" -q -u nobody start "$T/db" || it_fail "sluice-pg start failed"
DSN=$("$PG" dsn "$T/db")
sql() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }
q() { "$SLUICECTL" -d "$DSN" quarantine "$@"; }
reinj_connects() { grep -c "postfix/reinject/smtpd\[[0-9]*\]: connect from" "$T/pf/maillog"; }

read -r IN FILTER REINJ <<<"$(it_ports 3)"
printf 'stage verdict\nstage quarantine\nquery_timeout 3s\ntimeout 10s\n' >"$T/extra.conf"
pf_setup "$IN" "$FILTER" "$REINJ" lmtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf" "database $DSN"
grep -q '^database' "$T/conf/50-extra.conf" && it_fail "the stage must not name the database"
pf_start
sl_start "$T/conf"

$MAILTOOL plan --out "$T/qman" --prefix r --offset 200 --limit 40 \
    --header "X-Sluice-Test: quarantine" "$SLUICE_CORPUS/spam" || it_fail "plan"
$MAILTOOL send --port "$IN" --conns 4 "$T/qman" || it_fail "submission failed"
pf_wait_empty 60 || it_fail "Postfix queue not empty"
n=$(sql "SELECT count(*) FROM quarantine_message")
[ "$n" = 40 ] || it_fail "stored $n of 40 in the engine's database"
[ "$(maildir_count)" = 0 ] || it_fail "quarantined mail delivered"
[ ! -e "$T/state/pg" ] || it_fail "a private instance appeared in the state dir"
it_log "40 stored through the engine-level database (no stage names it)"

# ---------------------------------------------------------------- 30 at once
ids=$(sql "SELECT id FROM quarantine_message ORDER BY id LIMIT 30")
c0=$(reinj_connects)
t0=$(date +%s.%N)
# shellcheck disable=SC2086
q release $ids --next-hop "127.0.0.1:$REINJ" >"$T/rel.out" 2>"$T/rel.err" ||
    it_fail "bulk release failed: $(cat "$T/rel.err")"
t1=$(date +%s.%N)
[ "$(grep -c ' released$' "$T/rel.out")" = 30 ] || it_fail "want 30 released lines: $(cat "$T/rel.out")"
$MAILTOOL wait --maildir "$MAILDIR" --count 30 --timeout 60 || it_fail "released mail not delivered"
c1=$(reinj_connects)
[ $((c1 - c0)) = 1 ] || it_fail "$((c1 - c0)) SMTP sessions for 30 releases, want 1"
r=$(sql "SELECT count(*) FROM quarantine_rcpt WHERE status = 'released' AND status_by LIKE 'sluicectl:%'")
[ "$r" = 30 ] || it_fail "$r rows released, want 30"
it_log "30 released in $(echo "$t1 - $t0" | bc) s over one SMTP session"

# the other 10 by stdin, one of them twice, and an unknown ID: exit 1
rest=$(sql "SELECT id FROM quarantine_message ORDER BY id OFFSET 30")
first=$(echo "$rest" | head -n 1)
{ echo "$rest"; echo "$first"; echo "no-such-id"; } |
    q release - --next-hop "127.0.0.1:$REINJ" >"$T/rel2.out" 2>"$T/rel2.err"
[ $? = 1 ] || it_fail "an unknown ID among good ones: want exit 1"
grep -q "no-such-id not released: no message 'no-such-id'" "$T/rel2.err" ||
    it_fail "unknown ID not reported: $(cat "$T/rel2.err")"
grep -q "$first not released: no recipient left" "$T/rel2.err" ||
    it_fail "the repeated ID not reported: $(cat "$T/rel2.err")"
$MAILTOOL wait --maildir "$MAILDIR" --count 40 --timeout 60 || it_fail "stdin releases not delivered"
pf_wait_empty 60 || it_fail "Postfix queue not empty"
sleep 1
[ "$(maildir_count)" = 40 ] || it_fail "$(maildir_count) delivered, want 40 (one twice?)"
check_maildir "$T/qman" || it_fail "released mail not delivered intact, or twice"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt WHERE status = 'released'")" = 40 ] ||
    it_fail "not every row released"
# shellcheck disable=SC2086
q release $ids --next-hop "127.0.0.1:$REINJ" 2>/dev/null; [ $? = 4 ] ||
    it_fail "second release of the same IDs: want exit 4"
it_log "IDs from stdin, a repeated and an unknown ID: reported, exit 1; nothing twice"

# ---------------------------------------------------------------- next hop down
sql "UPDATE quarantine_rcpt SET status = 'quarantined'"
read -r DOWN <<<"$(it_ports 1)"
t0=$(date +%s.%N)
q release --json $(sql "SELECT id FROM quarantine_message") --next-hop "127.0.0.1:$DOWN" \
    >"$T/down.json" 2>/dev/null; [ $? = 1 ] || it_fail "release to a dead hop: want exit 1"
t1=$(date +%s.%N)
$PYTHON - "$T/down.json" <<'EOF' || it_fail "dead hop JSON: $(head -c 600 "$T/down.json")"
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 40, len(a)
for r in a:
    assert r["status"] == "failed" and r["released"] == [], r
    assert "cannot connect" in r["error"], r
EOF
[ "$(echo "$t1 - $t0 < 5" | bc)" = 1 ] || it_fail "40 releases to a dead hop took $(echo "$t1 - $t0" | bc) s"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt WHERE status = 'released'")" = 0 ] ||
    it_fail "marked released although the next hop was down"
it_log "dead next hop: 40 failed at once, nothing marked"
sl_finish
