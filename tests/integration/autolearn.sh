#!/usr/bin/env bash
# autolearn.sh - auto-learning in the real engine: Postfix -> sluiced
# (smtp, receive, verdict test stage adding TEST_SCORE from a header,
# bayes with autolearn_spam 5 / autolearn_ham -1 and no database yet,
# deliver) -> Postfix.  A message scored 8 ends up learned as spam and one
# scored -3 as ham, one scored 2 is not learned; the workers queue them in
# the journal and a worker's timer applies it (no further mail needed);
# every message is delivered.  The database is read back with
# sluice-bayes stats.
. "$(dirname "$0")/lib.sh"
it_init autolearn
[ -x "${SLUICE_BAYES:-}" ] || it_fail "sluice-bayes not found (SLUICE_BAYES)"
read -r IN FILTER REINJ <<<"$(it_ports 3)"
DB=$T/state/bayes.db

printf '%s\n' "stage verdict" "stage bayes" "database bayes.db" \
    "autolearn_spam 5" "autolearn_ham -1" "autolearn_apply 1s" \
    "refresh 1s" >"$T/extra.conf"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
mkdir -p "$T/state"
chmod 777 "$T/state" # the workers (nobody) write the database there
pf_start
sl_start "$T/conf"
it_log "sluiced up"

one() { # PREFIX OFFSET SCORE
    $MAILTOOL plan --out "$T/manifest" --prefix "$1" --offset "$2" --limit 1 \
        --header "X-Sluice-Test: score=$3" "$SLUICE_CORPUS/ham" || it_fail "plan"
}
one s 10 8
one h 11 -3
one n 12 2
$MAILTOOL send --port "$IN" --conns 1 "$T/manifest" || it_fail "submission failed"
pf_wait_empty 120 || it_fail "Postfix queue not empty"
$MAILTOOL wait --maildir "$MAILDIR" --count 3 --timeout 60 || it_fail "not all delivered"
it_log "3 messages delivered"

# the timer applies the queue within autolearn_apply (+ the 1 s tick)
for _ in $(seq 1 40); do
    if [ -f "$DB" ] && "$SLUICE_BAYES" -d "$DB" stats >"$T/stats" 2>&1 &&
        grep -q "spam learned  1$" "$T/stats" &&
        grep -q "ham learned   1$" "$T/stats"; then
        break
    fi
    sleep 0.5
done
[ -f "$DB" ] || it_fail "no database written; log: $(grep -i 'auto-learn' "$T/sluiced.log")"
grep -q "spam learned  1$" "$T/stats" || it_fail "spam not learned: $(cat "$T/stats")"
grep -q "ham learned   1$" "$T/stats" ||
    it_fail "ham not learned (or the score-2 one was): $(cat "$T/stats")"
grep -q "auto-learn: queued as spam (score 8.0 without Bayes)" "$T/sluiced.log" ||
    it_fail "no queue line in the log"
grep -q "auto-learn: [12] messages learned into" "$T/sluiced.log" ||
    it_fail "no apply line in the log"
[ ! -s "$DB.journal" ] || it_fail "journal not consumed"
sl_finish
it_log "sluiced stopped"
echo "autolearn: ok"
