#!/usr/bin/env bash
# postfix_corpus.sh - every corpus message through a real Postfix
# (content_filter over LMTP to sluiced, reinjection on a second smtpd,
# virtual(8) into a Maildir); each must arrive exactly once, byte for byte
# the original apart from the header fields the path adds on top
# (Return-Path, X-Original-To, Delivered-To, two Received, X-Sluice-Status).
# Prints messages, seconds and messages per second.
. "$(dirname "$0")/lib.sh"
it_init postfix_corpus
read -r IN FILTER REINJ <<<"$(it_ports 3)"
pf_setup "$IN" "$FILTER" "$REINJ" "${FILTER_PROTO:-lmtp}"
sl_conf "$T/conf" "$FILTER" "$REINJ"
sl_start "$T/conf"
pf_start
it_plan "$T/manifest" ${CORPUS_LIMIT:+--limit "$CORPUS_LIMIT"}
total=$(wc -l <"$T/manifest")
start=$SECONDS
$MAILTOOL send --port "$IN" --conns 4 "$T/manifest" || it_fail "submission to Postfix failed"
pf_wait_empty 900 || it_fail "Postfix queue not empty"
secs=$((SECONDS - start))
check_maildir "$T/manifest" || it_fail "Maildir check failed"
sl_finish
echo "postfix_corpus: $total messages through Postfix -> sluiced -> Postfix in ${secs}s ($($PYTHON -c "print('%.1f' % ($total / max($secs, 1)))") msg/s)"
