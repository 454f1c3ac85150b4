#!/usr/bin/env bash
# milter_postfix.sh - a real Postfix with smtpd_milters pointing at
# sluiced's milter ingress (milter_protocol 6, milter_default_action
# tempfail):
#   - corpus messages are delivered once each, byte for byte, with
#     sluice's X-Sluice-Status header added by the milter;
#   - a message a stage rejects is refused at the end of DATA with the
#     stage's reply text;
#   - with sluiced killed, Postfix temp-fails: nothing is accepted unscanned.
. "$(dirname "$0")/lib.sh"
it_init milter_postfix
read -r IN FILTER REINJ MPORT <<<"$(it_ports 4)"
pf_setup "$IN" "$FILTER" "$REINJ"
pf_use_milter "$MPORT"
cat >"$T/extra.conf" <<EOF
stage milter
listen inet:$MPORT@127.0.0.1
stage verdict
EOF
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
sl_start "$T/conf"
it_wait_listen "$MPORT" 20 "$SL_PID" || it_fail "no milter socket on $MPORT"
pf_start

# 1. the corpus through the milter
it_plan "$T/manifest" --limit "${CORPUS_LIMIT:-300}"
total=$(wc -l <"$T/manifest")
start=$SECONDS
$MAILTOOL send --port "$IN" --conns 4 "$T/manifest" || it_fail "submission to Postfix failed"
pf_wait_empty 300 || it_fail "Postfix queue not empty"
secs=$((SECONDS - start))
# Postfix inserts the milter's header at the top, above its own Received:
PREFIX="Return-Path,X-Original-To,Delivered-To,X-Sluice-Status,Received" \
    check_maildir "$T/manifest" || it_fail "Maildir check failed"
it_log "$total corpus messages through Postfix + milter in ${secs}s"
grep -q "milter: verdict=continue mta_id=" "$T/sluiced.log" ||
    it_fail "no milter verdict lines in sluiced's log"

# 2. a refusal at the end of DATA carries the stage's text
before=$(maildir_count)
$PYTHON - "$IN" <<'EOF' || it_fail "the rejected message was not refused with sluice's text"
import smtplib, sys
msg = ("From: a@sender.test\r\nTo: r@test.example\r\nSubject: no\r\n"
       "X-Sluice-Test: reject\r\n\r\nrefuse me\r\n")
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
try:
    s.sendmail("a@sender.test", ["r@test.example"], msg)
except smtplib.SMTPDataError as e:
    print("refused:", e.smtp_code, e.smtp_error.decode())
    sys.exit(0 if e.smtp_code == 550 and
             b"sluice test: reject in eom" in e.smtp_error else 1)
sys.exit(1)
EOF

# 3. sluiced gone: Postfix temp-fails, nothing is accepted unscanned
kill -KILL $(sl_workers) "$SL_PID" 2>/dev/null
wait "$SL_PID" 2>/dev/null
SL_PID=
$PYTHON - "$IN" <<'EOF' || it_fail "Postfix accepted mail with the milter down"
import smtplib, sys
msg = "From: a@sender.test\r\nTo: r@test.example\r\nSubject: x\r\n\r\nbody\r\n"
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
try:
    refused = s.sendmail("a@sender.test", ["down@test.example"], msg)
except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
        smtplib.SMTPSenderRefused) as e:
    print("temp-failed:", e)
    codes = [c for c, _ in e.recipients.values()] if hasattr(
        e, "recipients") else [e.smtp_code]
    sys.exit(0 if all(400 <= c < 500 for c in codes) else 1)
sys.exit(1)
EOF
sleep 1
[ "$(maildir_count)" = "$before" ] || it_fail "a message was delivered while refused"
[ "$(pf_queue_count)" = 0 ] || it_fail "a message was queued with the milter down"
sl_check_sanitizers
echo "milter_postfix: ok ($total messages, ${secs}s)"
