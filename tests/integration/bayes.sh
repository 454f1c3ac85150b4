#!/usr/bin/env bash
# bayes.sh - the `bayes` stage end to end: a database trained with
# sluice-bayes on part of the corpus, then held-out corpus messages through
# Postfix -> sluiced (smtp, receive, bayes, deliver) -> Postfix.  Every
# message is delivered once with an X-Sluice-Bayes header; held-out spam
# mostly lands in BAYES_80..99 and ham in BAYES_00/05 (loose bounds: this
# checks the wiring, bench/accuracy.sh measures accuracy); retraining
# while sluiced runs is picked up without a reload; with the database
# removed under it, mail still flows.
. "$(dirname "$0")/lib.sh"
it_init bayes
[ -x "${SLUICE_BAYES:-}" ] || it_fail "sluice-bayes not found (SLUICE_BAYES)"
read -r IN FILTER REINJ <<<"$(it_ports 3)"
DB=$T/bayes.db

# train on the first 1000 ham and 250 spam (name order)
it_log "training"
ls "$SLUICE_CORPUS/ham" | sort | sed -n 1,1000p | sed "s|^|$SLUICE_CORPUS/ham/|" >"$T/ham.list"
ls "$SLUICE_CORPUS/spam" | sort | sed -n 1,250p | sed "s|^|$SLUICE_CORPUS/spam/|" >"$T/spam.list"
xargs "$SLUICE_BAYES" -d "$DB" learn ham <"$T/ham.list" 2>>"$T/train.log" &&
    xargs "$SLUICE_BAYES" -d "$DB" learn spam <"$T/spam.list" 2>>"$T/train.log" ||
    it_fail "training failed: $(cat "$T/train.log")"

printf 'stage bayes\ndatabase %s\nrefresh 1s\n' "$DB" >"$T/bayes.conf"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/bayes.conf"
pf_start
sl_start "$T/conf"

it_log "sluiced up"
# held out: 40 spam from 400 on, 40 ham from 2000 on
$MAILTOOL plan --out "$T/manifest" --prefix s --offset 400 --limit 40 \
    "$SLUICE_CORPUS/spam" || it_fail "plan"
$MAILTOOL plan --out "$T/manifest" --prefix h --offset 2000 --limit 40 \
    "$SLUICE_CORPUS/ham" || it_fail "plan"
$MAILTOOL send --port "$IN" --conns 4 "$T/manifest" || it_fail "submission failed"
pf_wait_empty 120 || it_fail "Postfix queue not empty"
$MAILTOOL wait --maildir "$MAILDIR" --count 80 --timeout 60 || it_fail "not all delivered"

# bands CLASS BAND...: how many delivered messages of CLASS (the recipient
# prefix) carry one of the bands
bands() {
    local cls=$1 pat
    shift
    pat=$(printf '%s|' "$@")
    grep -l -r "^X-Original-To: m$cls" "$MAILDIR" |
        xargs -r grep -h '^X-Sluice-Bayes:' | grep -cE " (${pat%|}) " || true
}
n=$(grep -r -l '^X-Sluice-Bayes: [01]\.[0-9]* BAYES_' "$MAILDIR" | wc -l)
[ "$n" = 80 ] || it_fail "$n of 80 messages carry an X-Sluice-Bayes result"
spam_hi=$(bands s BAYES_80 BAYES_95 BAYES_99)
ham_lo=$(bands h BAYES_00 BAYES_05)
ham_hi=$(bands h BAYES_95 BAYES_99)
it_log "held-out spam in BAYES_80/95/99: $spam_hi/40; ham in BAYES_00/05: $ham_lo/40, in 95/99: $ham_hi"
[ "$spam_hi" -ge 28 ] || it_fail "only $spam_hi/40 spam in BAYES_80/95/99"
[ "$ham_lo" -ge 36 ] || it_fail "only $ham_lo/40 ham in BAYES_00/05"
[ "$ham_hi" -le 1 ] || it_fail "$ham_hi/40 ham in BAYES_95/99"
grep -q "Bayes database $DB loaded" "$T/sluiced.log" || it_fail "no load line in the log"

it_log "retraining"
# retrain while running: the same held-out ham, now learned as spam, must
# come out spammy without a reload
awk -F'\t' '$1 ~ /^h/ {print $2}' "$T/manifest" >"$T/relearn"
xargs "$SLUICE_BAYES" -d "$DB" learn spam <"$T/relearn" 2>>"$T/train.log" ||
    it_fail "retraining failed: $(cat "$T/train.log")"
sleep 1.5
rm -rf "$MAILDIR"/new/* "$MAILDIR"/cur/*
$MAILTOOL plan --out "$T/manifest2" --prefix r --offset 2000 --limit 10 \
    "$SLUICE_CORPUS/ham" || it_fail "plan"
$MAILTOOL send --port "$IN" --conns 2 "$T/manifest2" || it_fail "submission failed"
pf_wait_empty 120 || it_fail "Postfix queue not empty"
$MAILTOOL wait --maildir "$MAILDIR" --count 10 --timeout 60 || it_fail "not all delivered"
it_log "retrained mail delivered"
re_hi=$(bands r BAYES_80 BAYES_95 BAYES_99)
[ "$re_hi" -ge 8 ] || it_fail "retrained database not used: $re_hi/10 in BAYES_80+"

# database removed: mail still flows
rm -f "$DB"
sleep 1.5
rm -rf "$MAILDIR"/new/* "$MAILDIR"/cur/*
$MAILTOOL plan --out "$T/manifest3" --prefix g --offset 2100 --limit 5 \
    "$SLUICE_CORPUS/ham" || it_fail "plan"
$MAILTOOL send --port "$IN" --conns 1 "$T/manifest3" || it_fail "submission failed"
pf_wait_empty 120 || it_fail "Postfix queue not empty"
$MAILTOOL wait --maildir "$MAILDIR" --count 5 --timeout 60 || it_fail "not all delivered"
it_log "mail without a database delivered"
sl_finish
it_log "sluiced stopped"
echo "bayes: ok (spam $spam_hi/40 high, ham $ham_lo/40 low, retrained $re_hi/10)"
