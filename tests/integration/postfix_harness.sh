#!/usr/bin/env bash
# postfix_harness.sh - proves the test harness itself, without sluiced: a
# private Postfix whose content_filter points straight at its own
# reinjection smtpd (Postfix -> Postfix), 200 corpus messages submitted,
# each checked byte for byte in the Maildir.  When this fails, the
# integration tests' failures are the harness's, not sluiced's.
. "$(dirname "$0")/lib.sh"
it_init postfix_harness
read -r IN REINJ <<<"$(it_ports 2)"
pf_setup "$IN" "$REINJ" "$REINJ" smtp
pf_start
it_plan "$T/manifest" --limit 200
$MAILTOOL send --port "$IN" --conns 4 "$T/manifest" || it_fail "submission failed"
pf_wait_empty 120 || it_fail "Postfix queue not empty"
PREFIX="Return-Path,X-Original-To,Delivered-To,Received,Received" \
    check_maildir "$T/manifest" || it_fail "Maildir check failed"
echo "postfix_harness: ok"
