#!/usr/bin/env bash
# smtp_bad_input.sh - hostile clients on sluiced's ingress (bad_input.py):
# overlong lines, NUL bytes, commands out of order, 1 MB headers,
# truncated DATA, stalled clients (idle/data timeout 2s), binary junk;
# meanwhile a good client's mail keeps flowing.  sluiced delivers to a
# private Postfix's reinjection smtpd (Maildir) so deliveries can be
# counted; its workers must not die and its log must stay sanitizer-clean.
. "$(dirname "$0")/lib.sh"
it_init smtp_bad_input
read -r IN FILTER REINJ <<<"$(it_ports 3)"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
SL_IDLE_TIMEOUT=2s sl_conf "$T/conf" "$FILTER" "$REINJ"
sed -i 's/^data_timeout .*/data_timeout 2s/' "$T/conf/10-smtp.conf"
pf_start
sl_start "$T/conf"
workers_before=$(sl_workers)
$PYTHON "$IT_DIR/bad_input.py" "$FILTER" "$MAILDIR" 2 || it_fail "bad input cases failed"
workers_after=$(sl_workers)
[ "$workers_before" = "$workers_after" ] ||
    it_fail "workers changed during the bad input ($workers_before -> $workers_after): one died"
sl_finish
echo "smtp_bad_input: ok"
