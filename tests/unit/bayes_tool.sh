#!/usr/bin/env bash
# bayes_tool.sh - tools/sluice-bayes end to end on a slice of the corpus:
# learn, skip on relearn, classify, stats, export/import, expire, unlearn,
# and refusal of a damaged database.  Usage: bayes_tool.sh TOOL CORPUS
set -euo pipefail
TOOL=$1 CORPUS=$2
T=$(mktemp -d /tmp/sluice-bayes-tool.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "bayes_tool.sh: FAIL: $*" >&2; exit 1; }

mkdir "$T/ham" "$T/spam"
# one ln per directory: a process per file is slow on a loaded machine
ls "$CORPUS/ham" | sort | sed -n 1,120p | sed "s|^|$CORPUS/ham/|" | xargs ln -s -t "$T/ham"
ls "$CORPUS/spam" | sort | sed -n 1,80p | sed "s|^|$CORPUS/spam/|" | xargs ln -s -t "$T/spam"
test_spam=$CORPUS/spam/$(ls "$CORPUS/spam" | sort | tail -1)
test_ham=$CORPUS/ham/$(ls "$CORPUS/ham" | sort | tail -1)
DB=$T/bayes.db

"$TOOL" -d "$DB" learn ham "$T/ham" 2>"$T/err"
grep -q "learn: 120 messages, 0 skipped" "$T/err" || fail "learn ham: $(cat "$T/err")"
SLUICE_BAYES_DB=$DB "$TOOL" learn spam "$T/spam" 2>"$T/err"
grep -q "learn: 80 messages" "$T/err" || fail "learn spam: $(cat "$T/err")"
"$TOOL" -d "$DB" learn spam "$T/spam" 2>"$T/err"
grep -q "learn: 0 messages, 80 skipped" "$T/err" || fail "relearn: $(cat "$T/err")"

"$TOOL" -d "$DB" stats >"$T/stats"
grep -q "spam learned  80" "$T/stats" || fail "stats: $(cat "$T/stats")"
grep -q "ham learned   120" "$T/stats" || fail "stats: $(cat "$T/stats")"

p_spam=$("$TOOL" -d "$DB" classify "$test_spam" | awk '{print $2}')
p_ham=$("$TOOL" -d "$DB" classify "$test_ham" | awk '{print $2}')
awk -v s="$p_spam" -v h="$p_ham" 'BEGIN { exit !(s > h) }' ||
    fail "spam $p_spam not above ham $p_ham"
"$TOOL" -d "$DB" classify "$test_ham" | grep -q " BAYES_[0-9][0-9] " ||
    fail "no band"

# export, import elsewhere: same statistics, same verdict
"$TOOL" -d "$DB" export "$T/export.txt"
head -1 "$T/export.txt" | grep -q "^sluice-bayes-export 1 tokenizer" || fail "export header"
"$TOOL" -d "$T/copy.db" import "$T/export.txt"
"$TOOL" -d "$T/copy.db" stats | grep -v '^database' >"$T/stats2"
grep -v '^database' "$T/stats" >"$T/stats1"
cmp -s "$T/stats1" "$T/stats2" || fail "import: $(diff "$T/stats1" "$T/stats2")"
[ "$("$TOOL" -d "$T/copy.db" classify "$test_spam" | awk '{print $2}')" = "$p_spam" ] ||
    fail "imported database classifies differently"
head -n -1 "$T/export.txt" >"$T/cut.txt"
if "$TOOL" -d "$T/copy.db" import "$T/cut.txt" 2>"$T/err"; then fail "truncated import accepted"; fi
grep -q "truncated" "$T/err" || fail "truncated import: $(cat "$T/err")"
cmp -s "$T/stats1" <("$TOOL" -d "$T/copy.db" stats | grep -v '^database') ||
    fail "failed import changed the database"

# expire down to a size
"$TOOL" -d "$T/copy.db" expire --max-tokens 1000 2>"$T/err"
n=$("$TOOL" -d "$T/copy.db" stats | awk '/^tokens/ {print $2}')
m=$("$TOOL" -d "$T/copy.db" stats | awk '/^message ids/ {print $3}')
[ "$n" -le 1000 ] && [ "$n" -ge 900 ] || fail "expire left $n tokens"
[ "$m" = 200 ] || fail "expire dropped message records ($m left)"

# unlearn
"$TOOL" -d "$DB" unlearn "$T/spam" 2>"$T/err"
grep -q "unlearn: 80 messages" "$T/err" || fail "unlearn: $(cat "$T/err")"
"$TOOL" -d "$DB" stats | grep -q "spam learned  0" || fail "unlearn stats"

# damaged databases are refused, with a reason
head -c 100 "$DB" >"$T/short.db"
if "$TOOL" -d "$T/short.db" classify "$test_ham" 2>"$T/err"; then fail "truncated db accepted"; fi
grep -q "truncated" "$T/err" || fail "short db: $(cat "$T/err")"
printf 'NOTBAYES' | dd of="$DB" conv=notrunc status=none
if "$TOOL" -d "$DB" stats 2>"$T/err"; then fail "bad magic accepted"; fi
grep -q "magic" "$T/err" || fail "bad magic: $(cat "$T/err")"
echo "bayes_tool.sh: ok"
