#!/usr/bin/env bash
# manager_handlers.sh - sluice-manager's JSON API handlers over real HTTPS
# (curl) against the real thing: a private PostgreSQL (tools/sluice-pg),
# sluice-blocklistd, a real Postfix in front of and behind sluiced (smtp,
# receive, blocklist, verdict, heuristic, policy, quarantine, deliver;
# Postfix's virtual(8) Maildir is the sink) and sluice-manager:
#   - status: engine, database schema version, blocklistd, manager;
#   - stages: disable/enable change control `stages` and conf.d, the
#     generation grows; a second disable changes nothing; move reorders;
#     an unknown stage is 404; an auditor may read but not change;
#   - quarantine: each search filter selects what it should; show has the
#     decoded headers and the text with no HTML; release reaches the Maildir
#     and marks the row; a second release is 409; delete; allow-release
#     adds the sender to the site allow list and delivers; bulk;
#   - lists: add/remove visible in `sluicectl list show`, bad values 400,
#     duplicates 409;
#   - policy: a syntax error is 400 with line and column and saves no
#     version; a good script is version 1, applied by the engine (the
#     generation grows, the next message carries its header);
#   - dashboard: the series count the messages, and survive a restart of
#     the Manager (stats_minute).
. "$(dirname "$0")/lib.sh"
it_init manager_handlers
SRC=${SLUICE_SOURCE_DIR:-$(cd "$IT_DIR/../.." && pwd)}
command -v jq >/dev/null || it_fail "jq missing"
command -v curl >/dev/null || it_fail "curl missing"

pg_start
read -r IN FILTER REINJ MGR BL <<<"$(it_ports 5)"
mkdir -p "$T/lists"
printf '192.0.2.0/24\n' >"$T/lists/test.list"
chmod -R a+rX "$T/lists"
bl_start "$BL" "$T/lists"
cat >"$T/extra.conf" <<EOF
stage blocklist
server 127.0.0.1:$BL
stage verdict
stage heuristic
rules $T/test.rules
stage policy
list_refresh 1s
stage quarantine
query_timeout 5s
connect_timeout 2s
timeout 10s
EOF
# one rule: a reload compiles it in no time (the default set takes seconds)
printf '%s\n' 'header SUBJ_PILLS 1.5 "Subject sells pills" Subject =~ /\bpills\b/i' >"$T/test.rules"
pf_setup "$IN" "$FILTER" "$REINJ" lmtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
# Sanitizer builds: after this many reloads LeakSanitizer, at the master's
# exit, reads a stale dynamic-TLS block of a plugin a reload unloaded and
# crashes itself ("Tracer caught signal 11", "DTLS ... at 0x...3487").
# Leaks are still looked for, without scanning thread-local storage.
export LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}use_tls=0
pf_start
sl_start "$T/conf"
# root: the engine's control socket is root's (0600) in this test
export MGR_USER=root
mgr_start "$T/conf" "$MGR"
ADMIN_PASS=$(mgr_admin api-admin admin)
AUDIT_PASS=$(mgr_admin api-auditor auditor)

# ---------------------------------------------------------------- helpers
sql() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }
# api [-a] METHOD PATH [JSON]: the answer in $T/resp, its status in CODE
# (-a: as the auditor)
api() {
    local jar=$T/admin.jar csrf=${CSRF:-}
    if [ "$1" = -a ]; then
        jar=$T/auditor.jar csrf=${ACSRF:-}
        shift
    fi
    local args=(-sk -o "$T/resp" -w '%{http_code}' -X "$1" -b "$jar" -c "$jar"
        -H "X-CSRF-Token: $csrf")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    CODE=$(curl "${args[@]}" "$MGR_URL$2")
}
want() { # want CODE WHAT
    [ "$CODE" = "$1" ] || it_fail "$2: HTTP $CODE, want $1: $(head -c 600 "$T/resp")"
}
j() { jq -r "$1" "$T/resp"; }
login() { # login [-a] USER PASS
    local a=
    [ "$1" = -a ] && { a=-a; shift; }
    api $a POST /api/login "$(jq -nc --arg u "$1" --arg p "$2" '{user:$u,password:$p}')"
    want 200 "login $1"
    if [ -n "$a" ]; then ACSRF=$(j .csrf); else CSRF=$(j .csrf); fi
}
# send FROM TO SUBJECT TEST_HEADER [html]: one message through Postfix
send() {
    $PYTHON - "$IN" "$@" <<'EOF' || it_fail "send failed"
import smtplib, sys
port, frm, to, subj, test = sys.argv[1:6]
html = len(sys.argv) > 6
hdr = f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subj}\r\nMessage-ID: <{subj.replace(' ', '.')}@t>\r\n"
if test:
    hdr += f"X-Sluice-Test: {test}\r\n"
if html:
    hdr += "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    body = ("<html><head><script>alert('pwned')</script></head><body>"
            "<p>Cheap <b>pills</b> &amp; more</p><a href=\"http://evil.example/\">"
            "click here</a><img src=\"http://tracker.example/p.gif\"></body></html>\r\n")
else:
    body = f"Hello, this is {subj}.\r\n"
with smtplib.SMTP("127.0.0.1", int(port)) as s:
    s.sendmail(frm, [to], (hdr + "\r\n" + body).encode())
EOF
}
ctl() { # ctl COMMAND: the control socket's JSON reply
    $PYTHON - "$T/state/control.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
print(b"".join(iter(lambda: s.recv(65536), b"")).decode())
EOF
}
wait_sql() { # wait_sql SQL WANT: poll until SQL prints WANT (20 s)
    local i
    for ((i = 0; i < 80; i++)); do
        [ "$(sql "$1")" = "$2" ] && return 0
        sleep 0.25
    done
    it_fail "waited for '$1' = $2, have $(sql "$1")"
}
delivered() { grep -rl "^Subject: $1" "$MAILDIR/new" 2>/dev/null | head -n 1; }
wait_delivered() {
    local i
    for ((i = 0; i < 80; i++)); do
        [ -n "$(delivered "$1")" ] && return 0
        pf_flush
        sleep 0.25
    done
    it_fail "'$1' not delivered"
}

login api-admin "$ADMIN_PASS"
login -a api-auditor "$AUDIT_PASS"

# ---------------------------------------------------------------- status
api GET /api/status
want 200 status
[ "$(j .engine.ok)" = true ] || it_fail "status: engine $(j .engine)"
[ "$(j .engine.generation)" -ge 1 ] || it_fail "status: no generation"
want_schema=$(ls "$SRC"/db/migrations/[0-9][0-9][0-9][0-9]_*.sql | sed 's|.*/0*||; s|_.*||' | sort -n | tail -n 1)
[ "$(j .database.ok)" = true ] && [ "$(j .database.schema_version)" = "$want_schema" ] ||
    it_fail "status: database $(j .database), want schema $want_schema"
[ "$(j .blocklistd.ok)" = true ] && [ "$(j .blocklistd.address)" = "127.0.0.1:$BL" ] ||
    it_fail "status: blocklistd $(j .blocklistd)"
[ "$(j .manager.pid)" = "$MGR_PID" ] || it_fail "status: manager pid $(j .manager.pid), want $MGR_PID"
bl_stop
api GET /api/status
[ "$(j .blocklistd.ok)" = false ] && [ -n "$(j .blocklistd.error)" ] ||
    it_fail "status with blocklistd down: $(j .blocklistd)"
it_log "status ok"

# ---------------------------------------------------------------- stages
api -a GET /api/stages
want 200 "stages (auditor)"
[ "$(j '[.stages[].name] | join(",")')" = "smtp,receive,blocklist,verdict,heuristic,policy,quarantine,deliver" ] ||
    it_fail "stages: $(j '[.stages[].name]')"
api GET /api/status
gen0=$(j .engine.generation)
api -a POST /api/stages/blocklist/disable
want 403 "auditor disabling a stage"
api POST /api/stages/blocklist/disable
want 200 "disable blocklist"
[ "$(j .changed)" = true ] && [ "$(j .generation)" -gt "$gen0" ] || it_fail "disable: $(cat "$T/resp")"
gen1=$(j .generation)
[ "$(ctl stages | jq -r '.stages[] | select(.name=="blocklist") | .enabled')" = false ] ||
    it_fail "control stages: blocklist still enabled"
grep -q '^enabled no' "$T/conf/50-extra.conf" || it_fail "conf.d not changed: $(cat "$T/conf/50-extra.conf")"
api POST /api/stages/blocklist/disable
want 200 "disable again"
[ "$(j .changed)" = false ] && [ "$(j .generation)" = "$gen1" ] || it_fail "second disable: $(cat "$T/resp")"
api POST /api/stages/blocklist/enable
want 200 "enable blocklist"
[ "$(j .changed)" = true ] && [ "$(j .generation)" -gt "$gen1" ] || it_fail "enable: $(cat "$T/resp")"
grep -q '^enabled yes' "$T/conf/50-extra.conf" || it_fail "conf.d not changed back"
api GET /api/stages
[ "$(j '.stages[] | select(.name=="blocklist") | .enabled')" = true ] || it_fail "blocklist not enabled"
api POST /api/stages/nosuch/enable
want 404 "unknown stage"
api POST '/api/stages/bad%20name/enable'
[ "$CODE" = 400 ] || [ "$CODE" = 404 ] || it_fail "bad stage name: HTTP $CODE"
api POST /api/stages/verdict/move '{"position":3}'
want 200 "move verdict to 3"
[ "$(j '.order | join(",")')" = "smtp,receive,verdict,blocklist,heuristic,policy,quarantine,deliver" ] ||
    it_fail "move: $(cat "$T/resp")"
api POST /api/stages/verdict/move '{"position":4}'
want 200 "move verdict back"
api POST /api/stages/verdict/move '{"position":"x"}'
want 400 "move with a bad position"
it_log "stages ok"

# ---------------------------------------------------------------- quarantine
send spammer@bad.example alice@test.example "Cheap pills" "score=40" html
send billing@other.example bob@test.example "Invoice 42" quarantine
send friend@friend.example carol@test.example "Hello friend" quarantine
send x@bulk.example dave@test.example "Bulk one" quarantine
send x@bulk.example dave@test.example "Bulk two" quarantine
send x@bulk.example dave@test.example "Bulk three" quarantine
send x@bulk.example dave@test.example "Bulk four" quarantine
send ok@fine.example erin@test.example "Clean one" ""
wait_sql "SELECT count(*) FROM quarantine_message" 7
wait_delivered "Clean one"
grep -q '^X-Sluice-Policy: clean' "$(delivered "Clean one")" || it_fail "clean mail without the default policy's header"

api -a GET /api/quarantine
want 200 "search (auditor)"
[ "$(j .total)" = 7 ] && [ "$(j '.items | length')" = 7 ] || it_fail "search all: $(j '.total')"
q() { api GET "/api/quarantine?$1"; want 200 "search $1"; j '[.items[].subject] | sort | join(",")'; }
[ "$(q 'recipient=ALICE@test')" = "Cheap pills" ] || it_fail "recipient filter: $(q 'recipient=ALICE@test')"
[ "$(q 'sender=other.example')" = "Invoice 42" ] || it_fail "sender filter"
[ "$(q 'subject=invoice')" = "Invoice 42" ] || it_fail "subject filter"
[ "$(q 'min_score=20')" = "Cheap pills" ] || it_fail "min_score filter: $(q 'min_score=20')"
[ "$(q 'max_score=20&subject=bulk%20o')" = "Bulk one" ] || it_fail "max_score filter"
[ "$(q "from=$(date -u -d tomorrow +%F)")" = "" ] || it_fail "from filter"
[ "$(q "to=$(date -u -d yesterday +%F)")" = "" ] || it_fail "to filter"
[ "$(q "from=$(date -u +%F)&to=$(date -u +%F)&limit=2" | tr ',' '\n' | wc -l)" = 2 ] || it_fail "limit"
api GET "/api/quarantine?limit=2&offset=6"
[ "$(j .total)" = 7 ] && [ "$(j '.items | length')" = 1 ] || it_fail "offset: $(cat "$T/resp")"
[ "$(q 'status=released')" = "" ] || it_fail "status filter"
api GET "/api/quarantine?min_score=abc"
want 400 "bad min_score"
api GET "/api/quarantine?status=x'%20OR%201=1--"
want 400 "bad status"

id_pills=$(sql "SELECT id FROM quarantine_message WHERE subject = 'Cheap pills'")
api -a GET "/api/quarantine/$id_pills"
want 200 "show"
[ "$(j .sender)" = spammer@bad.example ] && [ "$(j '.recipients | join(",")')" = alice@test.example ] ||
    it_fail "show: $(head -c 400 "$T/resp")"
[ "$(j '.headers[] | select(.[0]=="Subject") | .[1]')" = "Cheap pills" ] || it_fail "show: headers"
j .text | grep -q 'Cheap pills & more' || it_fail "show: text $(j .text)"
j .text | grep -qE '<|alert|tracker\.example' && it_fail "show: HTML or script in the text: $(j .text)"
[ "$(j '.symbols | map(.name) | index("TEST_SCORE") != null')" = true ] || it_fail "show: symbols $(j .symbols)"
api GET /api/quarantine/999999
want 404 "show of a missing message"

api -a POST "/api/quarantine/$id_pills/release"
want 403 "auditor release"
api POST "/api/quarantine/$id_pills/release"
want 200 "release"
[ "$(j '.released | join(",")')" = alice@test.example ] || it_fail "release: $(cat "$T/resp")"
wait_delivered "Cheap pills"
[ "$(sql "SELECT status || ' ' || status_by FROM quarantine_rcpt WHERE message_id = $id_pills")" = \
    "released manager:api-admin" ] || it_fail "release not recorded"
api POST "/api/quarantine/$id_pills/release"
want 409 "second release"
api POST "/api/quarantine/$id_pills/release" '{"recipients":["x y@z"]}'
want 400 "release to a bad address"

id_inv=$(sql "SELECT id FROM quarantine_message WHERE subject = 'Invoice 42'")
api POST "/api/quarantine/$id_inv/delete"
want 200 "delete"
[ "$(j .deleted)" = 1 ] || it_fail "delete: $(cat "$T/resp")"
[ "$(q 'status=deleted')" = "Invoice 42" ] || it_fail "deleted not found by status"
[ -z "$(delivered "Invoice 42")" ] || it_fail "deleted message delivered"

id_friend=$(sql "SELECT id FROM quarantine_message WHERE subject = 'Hello friend'")
api POST "/api/quarantine/$id_friend/allow-release"
want 200 "allow-release"
[ "$(sql "SELECT count(*) FROM list_entry WHERE kind = 'allow' AND scope = 'site' AND sender_addr = 'friend@friend.example'")" = 1 ] ||
    it_fail "allow-release: no allow entry"
wait_delivered "Hello friend"

ids=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM quarantine_message WHERE subject IN ('Bulk one', 'Bulk two')")
api POST /api/quarantine/bulk "{\"action\":\"delete\",\"ids\":[$ids,999999]}"
want 200 "bulk delete"
[ "$(j '[.results[].ok] | map(tostring) | join(",")')" = "true,true,false" ] || it_fail "bulk: $(cat "$T/resp")"
[ "$(sql "SELECT count(*) FROM quarantine_rcpt r JOIN quarantine_message m ON m.id = r.message_id WHERE m.subject LIKE 'Bulk%' AND r.status = 'deleted'")" = 2 ] ||
    it_fail "bulk delete not recorded"
ids=$(sql "SELECT string_agg(id::text, ',' ORDER BY id) FROM quarantine_message WHERE subject IN ('Bulk three', 'Bulk four')")
api POST /api/quarantine/bulk "{\"action\":\"release\",\"ids\":[$ids]}"
want 200 "bulk release"
[ "$(j '[.results[].ok] | map(tostring) | join(",")')" = "true,true" ] || it_fail "bulk release: $(cat "$T/resp")"
wait_delivered "Bulk three"
wait_delivered "Bulk four"
api POST /api/quarantine/bulk '{"action":"explode","ids":[1]}'
want 400 "bulk with a bad action"
it_log "quarantine ok"

# ---------------------------------------------------------------- lists
api POST /api/lists '{"kind":"block","level":"site","value":"*.Spam.example","comment":"api test"}'
want 201 "list add"
lid=$(j .id)
[ "$(j .value)" = "*.spam.example" ] || it_fail "list add: $(cat "$T/resp")"
"$SLUICECTL" -d "$DSN" --json list show >"$T/show.json" || it_fail "sluicectl list show"
jq -e '.entries[] | select(.entry == "*.spam.example" and .kind == "block")' "$T/show.json" >/dev/null ||
    it_fail "added entry not in sluicectl list show: $(cat "$T/show.json")"
api POST /api/lists '{"kind":"block","level":"site","value":"*.spam.example"}'
want 409 "duplicate list entry"
api POST /api/lists '{"kind":"block","level":"site","value":"not a sender"}'
want 400 "bad list value"
api POST /api/lists '{"kind":"allow","level":"domain","value":"x@y.example"}'
want 400 "domain level without owner"
api POST /api/lists '{"kind":"allow","level":"user","owner":"Erin@Test.example","value":"192.0.2.0/24"}'
want 201 "user level entry"
uid=$(j .id)
[ "$(j .owner)" = erin@test.example ] || it_fail "owner not lower-cased"
api -a GET "/api/lists?kind=block"
want 200 "lists (auditor)"
[ "$(j '[.items[].value] | join(",")')" = "*.spam.example" ] || it_fail "list filter: $(cat "$T/resp")"
api -a DELETE "/api/lists/$lid"
want 403 "auditor list delete"
api DELETE "/api/lists/$lid"
want 200 "list delete"
api DELETE "/api/lists/$uid"
want 200 "list delete (user)"
api DELETE "/api/lists/$lid"
want 404 "list delete again"
"$SLUICECTL" -d "$DSN" --json list show >"$T/show.json" || it_fail "sluicectl list show"
jq -e '.entries[] | select(.entry == "*.spam.example")' "$T/show.json" >/dev/null &&
    it_fail "removed entry still in sluicectl list show"
it_log "lists ok"

# ---------------------------------------------------------------- policy
api -a GET /api/policy
want 200 "policy (auditor)"
[ "$(j .default)" = true ] && [ "$(j .version)" = null ] && [ "$(j '.versions | length')" = 0 ] ||
    it_fail "policy: $(head -c 300 "$T/resp")"
j .script | grep -q 'require' || it_fail "policy: no script text"
bad=$'require ["sluice"];\n# two\nif score :value "ge" "5" {\n    keep;\n    frobnicate;\n}\n'
api POST /api/policy "$(jq -nc --arg s "$bad" '{script:$s}')"
want 400 "bad policy"
[ "$(j .line)" = 5 ] && [ "$(j .column)" -ge 1 ] && [ -n "$(j .error)" ] || it_fail "bad policy: $(cat "$T/resp")"
[ "$(sql "SELECT count(*) FROM policy_version")" = 0 ] || it_fail "a bad policy was saved"
api -a POST /api/policy "$(jq -nc --arg s "$bad" '{script:$s}')"
want 403 "auditor policy"
api GET /api/status
gen_before=$(j .engine.generation)
# the engine itself refuses an install with nothing pending, changing nothing
ctl policy-install >"$T/pi.json"
[ "$(jq -r .ok "$T/pi.json")" = false ] && grep -q policy.pending "$T/pi.json" ||
    it_fail "policy-install without a pending file: $(cat "$T/pi.json")"
[ "$(ctl status | jq -r .generation)" = "$gen_before" ] || it_fail "a refused policy-install reloaded"
good=$(sed 's/"X-Sluice-Policy" "clean; score=${score}"/"X-Sluice-Policy" "manager-v1; score=${score}"/' \
    "$SRC/plugins/policy/default.sieve")
grep -q manager-v1 <<<"$good" || it_fail "test policy not made"
api POST /api/policy "$(jq -nc --arg s "$good" '{script:$s}')"
want 200 "good policy"
[ "$(j .version)" = 1 ] && [ "$(j .generation)" -gt "$gen_before" ] || it_fail "good policy: $(cat "$T/resp")"
grep -q "^script $T/conf/policy.sieve" "$T/conf/50-extra.conf" || it_fail "policy stage has no script line"
cmp -s <(printf '%s' "$good") "$T/conf/policy.sieve" || it_fail "installed policy differs"
api GET /api/policy
[ "$(j .version)" = 1 ] && [ "$(j .default)" = false ] && [ "$(j '.versions[0].saved_by')" = api-admin ] ||
    it_fail "policy after save: $(head -c 300 "$T/resp")"
api GET /api/policy/versions/1
want 200 "policy version 1"
[ "$(j .script)" = "$good" ] || it_fail "version 1 text differs"
sleep 1
send ok@fine.example erin@test.example "Clean two" ""
wait_delivered "Clean two"
grep -q '^X-Sluice-Policy: manager-v1' "$(delivered "Clean two")" ||
    it_fail "the new policy is not applied: $(grep X-Sluice "$(delivered "Clean two")")"
it_log "policy ok"

# ---------------------------------------------------------------- dashboard
# the sampler's first tick (its base) is long past: this one is counted
send ok@fine.example erin@test.example "Clean three" ""
wait_delivered "Clean three"
sleep 11 # one sampler tick after the last message
api -a GET /api/dashboard
want 200 "dashboard"
[ "$(j '.per_minute | length')" = 60 ] && [ "$(j '.per_hour | length')" = 24 ] || it_fail "dashboard: series lengths"
m1=$(j '[.per_minute[].messages] | add')
[ "$m1" -ge 1 ] || it_fail "dashboard counted no message: $(head -c 600 "$T/resp")"
[ "$(j '[.per_hour[].messages] | add')" = "$m1" ] || it_fail "hours and minutes disagree"
[ "$(j '.stage_latency | map(.name) | index("policy") != null')" = true ] || it_fail "no stage latency"
[ "$(j '.top_symbols | length')" -ge 1 ] || it_fail "no top symbols: $(j .top_symbols)"
[ "$(j '.verdicts | keys | sort | join(",")')" = "accept,discard,quarantine,reject,tempfail" ] || it_fail "verdicts"
[ "$(sql "SELECT coalesce(sum(messages), 0) FROM stats_minute")" = "$m1" ] || it_fail "stats_minute differs"
mgr_stop
mgr_start "$T/conf" "$MGR"
login api-admin "$ADMIN_PASS"
api GET /api/dashboard
[ "$(j '[.per_minute[].messages] | add')" = "$m1" ] || it_fail "dashboard history lost by a restart"
it_log "dashboard ok ($m1 messages)"

if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/manager.log"; then
    it_fail "sanitizer report in sluice-manager's log"
fi
mgr_stop
sl_finish
it_log "PASS"
