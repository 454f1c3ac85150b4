#!/usr/bin/env bash
# redirect.sh MODE - the policy's redirect and notify (ABI 1.2 recipient
# changes and stage-sent messages) through a real Postfix, MODE `filter`
# (Postfix content_filter over SMTP -> sluiced smtp ingress -> deliver ->
# Postfix's reinjection smtpd) or `milter` (smtpd_milters -> sluiced
# milter ingress, changes replayed with smfi_addrcpt/smfi_delrcpt).  Each
# recipient has a Maildir of its own (virtual(8)); the policy script
# routes on the Subject:
#   1. redirect-me to bob: arrives at alice only;
#   2. copy-me (redirect :copy) to bob: at alice and at bob;
#   3. notify-me to bob: delivered to bob, and a notification (From the
#      stage's notify_from, Auto-Submitted: auto-notified, envelope <>)
#      arrives at admin;
#   4. redirect-me to bob and carol: alice gets exactly one copy;
#   sluicectl scan shows the change (-<bob> +<alice>, and in --json);
#   6. (milter) miltertest (milter/rcpts.lua): SMFIF_ADDRCPT/DELRCPT asked
#      for, ADDRCPT/DELRCPT sent; an MTA granting neither gets 451;
#   5. (filter) hold-me: redirect + quarantine: stored (real PostgreSQL,
#      tools/sluice-pg) with alice as its only recipient, delivered to
#      nobody; `sluicectl quarantine release` delivers it to alice;
# and throughout: Postfix's queue drains, nothing bounces, nothing is
# delivered twice, sluiced exits cleanly with no sanitizer report.
. "$(dirname "$0")/lib.sh"
MODE=${1:-filter}
IT_TIMEOUT=${IT_TIMEOUT:-200}
it_init "redirect_$MODE"
read -r IN FILTER REINJ MPORT <<<"$(it_ports 4)"
PG=$SLUICE_SOURCE_DIR/tools/sluice-pg
if [ "$MODE" = filter ]; then
    export SLUICE_PG_NOSYNC=1 SLUICECTL
    mkdir -p "$T/state" && chown nobody: "$T/state"
    rd_cleanup() {
        local rc=$?
        "$PG" -q stop "$T/state" >/dev/null 2>&1
        (exit "$rc")
        it_cleanup
    }
    trap rd_cleanup EXIT
    "$PG" -q -u nobody start "$T/state" >"$T/pg.log" 2>&1 ||
        { cat "$T/pg.log"; it_fail "sluice-pg start failed"; }
    "$SLUICECTL" -S "$T/state" db status >/dev/null ||
        "$SLUICECTL" -S "$T/state" db migrate >/dev/null || it_fail "db migrate"
fi
pf_setup "$IN" "$FILTER" "$REINJ" smtp
cat >"$PF/vmailbox" <<'EOF'
bob@test.example bob/
carol@test.example carol/
alice@test.example alice/
admin@test.example admin/
@test.example box/
EOF
cat >"$T/policy.sieve" <<'EOF'
require ["copy", "enotify", "variables", "sluice"];
if header :contains "subject" "redirect-me" {
    redirect "alice@test.example";
} elsif header :contains "subject" "copy-me" {
    redirect :copy "alice@test.example";
} elsif header :contains "subject" "hold-me" {
    redirect "alice@test.example";
    quarantine "held for review";
} elsif header :contains "subject" "notify-me" {
    notify :importance "1" :message "policy notice: score ${score}"
        "mailto:admin@test.example";
}
EOF
chmod 644 "$T/policy.sieve"
{
    if [ "$MODE" = milter ]; then
        pf_use_milter "$MPORT"
        printf 'stage milter\nlisten inet:%s@127.0.0.1\n\n' "$MPORT"
    fi
    printf 'stage policy\nscript %s\nlists no\nnotify_from gateway@test.example\n' \
        "$T/policy.sieve"
    if [ "$MODE" = filter ]; then
        printf '\nstage quarantine\ntimeout 10s\n'
    fi
} >"$T/extra.conf"
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
sl_start "$T/conf"
if [ "$MODE" = milter ]; then
    it_wait_listen "$MPORT" 20 "$SL_PID" || it_fail "no milter socket on $MPORT"
fi
pf_start

box() { # box NAME: messages delivered to that Maildir
    find "$T/mail/$1/new" "$T/mail/$1/cur" -type f 2>/dev/null | wc -l
}
boxgrep() { # boxgrep NAME PATTERN: the Maildir holds a message matching
    grep -rlE "$2" "$T/mail/$1/new" "$T/mail/$1/cur" 2>/dev/null | head -n 1
}
send() { # send SUBJECT RCPT...
    local subj=$1
    shift
    $PYTHON - "$IN" "$subj" "$@" <<'EOF'
import smtplib, sys
port, subj, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
msg = ("From: sender@test.example\r\nTo: %s\r\nSubject: %s\r\n"
       "Message-ID: <%s@sender.test>\r\n\r\nbody of %s\r\n"
       % (", ".join(rcpts), subj, subj, subj))
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
refused = s.sendmail("sender@test.example", rcpts, msg)
s.quit()
sys.exit(1 if refused else 0)
EOF
}
settle() { pf_wait_empty 60 || it_fail "Postfix queue not empty"; }
want() { # want NAME COUNT WHAT
    local n
    n=$(box "$1")
    [ "$n" = "$2" ] || it_fail "$3: $1 has $n messages, expected $2"
}

# 1. redirect
send "redirect-me one" bob@test.example || it_fail "redirect-me refused"
settle
want alice 1 "redirect"
want bob 0 "redirect"
[ -n "$(boxgrep alice '^Subject: redirect-me one')" ] || it_fail "redirect: not the message"
[ -n "$(boxgrep alice '^Delivered-To: alice@test.example')" ] ||
    it_fail "redirect: alice is not the envelope recipient"
it_log "redirect: at alice only"

# 2. redirect :copy
send "copy-me two" bob@test.example || it_fail "copy-me refused"
settle
want alice 2 "copy"
want bob 1 "copy"
[ -n "$(boxgrep bob '^Subject: copy-me two')" ] || it_fail "copy: bob lacks it"
it_log "redirect :copy: at alice and bob"

# 3. notify
send "notify-me three" bob@test.example || it_fail "notify-me refused"
settle
for ((i = 0; i < 50 && $(box admin) < 1; i++)); do sleep 0.2; done
settle
want bob 2 "notify"
want admin 1 "notify"
f=$(boxgrep admin '^Auto-Submitted: auto-notified')
[ -n "$f" ] || it_fail "notify: no Auto-Submitted: auto-notified"
grep -q '^From: gateway@test.example' "$f" || it_fail "notify: From: $(cat "$f")"
grep -q '^Return-Path: <>' "$f" || it_fail "notify: envelope sender not <>: $(head -5 "$f")"
grep -q '^Importance: high' "$f" || it_fail "notify: :importance lost"
grep -q 'policy notice: score' "$f" || it_fail "notify: :message missing"
grep -q 'Subject:   notify-me three' "$f" || it_fail "notify: no summary of the message"
[ -n "$(boxgrep bob '^Subject: notify-me three')" ] || it_fail "notify: original lost"
grep -q "goes out as" "$T/sluiced.log" || it_fail "notify: not logged"
it_log "notify: original at bob, notification at admin"

# 4. two original recipients redirected: one copy at alice
send "redirect-me four" bob@test.example carol@test.example ||
    it_fail "redirect of two refused"
settle
want alice 3 "two recipients"
want bob 2 "two recipients"
want carol 0 "two recipients"
n=$(grep -lr '^Subject: redirect-me four' "$T/mail/alice" | wc -l)
[ "$n" = 1 ] || it_fail "two recipients: alice got $n copies"
it_log "redirect of two recipients: one copy at alice"

# sluicectl scan shows what the policy would do to the envelope
printf 'From: a@test.example\nSubject: redirect-me scan\n\nhi\n' >"$T/scan.eml"
"$SLUICECTL" scan -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" --rcpt bob@test.example \
    "$T/scan.eml" >"$T/scan.out" 2>"$T/scan.err" || it_fail "scan: $(cat "$T/scan.err")"
grep -q "^  recipients: -<bob@test.example> +<alice@test.example>$" "$T/scan.out" ||
    it_fail "scan: $(cat "$T/scan.out")"
"$SLUICECTL" scan --json -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" \
    --rcpt bob@test.example "$T/scan.eml" >"$T/scan.out" 2>"$T/scan.err" ||
    it_fail "scan --json: $(cat "$T/scan.err")"
grep -q '"rcpt_changes":\[{"op":"del","addr":"bob@test.example"},{"op":"add","addr":"alice@test.example"}\]' \
    "$T/scan.out" || it_fail "scan --json: $(cat "$T/scan.out")"
it_log "sluicectl scan shows the envelope change"

# 5. redirect + quarantine: the stored recipients are the final ones
if [ "$MODE" = filter ]; then
    DSN=$("$PG" dsn "$T/state")
    BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
    sql() { "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }
    send "hold-me five" bob@test.example carol@test.example ||
        it_fail "hold-me refused"
    settle
    want alice 3 "quarantine"
    want bob 2 "quarantine"
    want carol 0 "quarantine"
    r=$(sql "SELECT string_agg(r.rcpt || ':' || r.status, ',')
             FROM quarantine_rcpt r JOIN quarantine_message m
             ON m.id = r.message_id WHERE m.subject = 'hold-me five'")
    [ "$r" = "alice@test.example:quarantined" ] ||
        it_fail "quarantine: stored recipients '$r', want alice only"
    id=$(sql "SELECT id FROM quarantine_message WHERE subject = 'hold-me five'")
    "$SLUICECTL" -S "$T/state" quarantine release "$id" \
        --next-hop "127.0.0.1:$REINJ" >/dev/null || it_fail "release failed"
    settle
    for ((i = 0; i < 50 && $(box alice) < 4; i++)); do sleep 0.2; done
    want alice 4 "release"
    want bob 2 "release"
    [ -n "$(boxgrep alice '^Subject: hold-me five')" ] || it_fail "release: not at alice"
    it_log "redirect + quarantine: stored for alice only; released to alice"
fi

# 6. (milter) the protocol: ADDRCPT/DELRCPT asked for and sent; an MTA
#    that does not grant them gets 451 (milter/rcpts.lua, miltertest)
if [ "$MODE" = milter ]; then
    command -v miltertest >/dev/null || it_fail "miltertest not installed"
    out=$(MT_DIR=$IT_DIR/milter MILTER_SOCK="inet:$MPORT@127.0.0.1" \
        timeout 60 miltertest -s "$IT_DIR/milter/rcpts.lua" 2>&1)
    grep -q "^rcpts: ok" <<<"$out" || it_fail "miltertest rcpts.lua: $out"
    grep -qE "does not allow (adding|removing); tempfail" "$T/sluiced.log" ||
        it_fail "no log line for the refused recipient change"
    it_log "milter protocol: ADDRCPT/DELRCPT negotiated and sent, else 451"
fi

want box 0 "bounces"
if [ "$MODE" = milter ]; then
    grep -q "rcpt_changes=3" "$T/sluiced.log" ||
        it_fail "milter: no rcpt_changes=3 verdict line"
else
    grep -q "envelope=-<bob@test.example>,+<alice@test.example>:done" \
        "$T/sluiced.log" || it_fail "no envelope= in the summary line"
fi
sl_finish
it_log "ok ($MODE)"
