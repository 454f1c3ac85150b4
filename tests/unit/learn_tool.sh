#!/usr/bin/env bash
# learn_tool.sh - `sluicectl learn` end to end on a slice of the corpus:
# the database found from conf.d (relative to the state directory, or
# absolute) or -B; counts in text and --json; relearn skipped; --unlearn
# of the right and the wrong class; a message on stdin; exit codes 1
# (an unreadable file, the rest learned), 2 (usage) and 3 (no database to
# be found, unwritable directory).  The result is read back with
# sluice-bayes stats.  Usage: learn_tool.sh SLUICECTL SLUICE_BAYES CORPUS
set -euo pipefail
CTL=$1 SB=$2 CORPUS=$3
T=$(mktemp -d /tmp/sluice-learn-tool.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "learn_tool.sh: FAIL: $*" >&2; exit 1; }

mkdir "$T/ham" "$T/spam" "$T/conf" "$T/state"
ls "$CORPUS/ham" | sort | sed -n 1,40p | sed "s|^|$CORPUS/ham/|" | xargs ln -s -t "$T/ham"
ls "$CORPUS/spam" | sort | sed -n 1,30p | sed "s|^|$CORPUS/spam/|" | xargs ln -s -t "$T/spam"
one_spam=$CORPUS/spam/$(ls "$CORPUS/spam" | sort | sed -n 1p)
one_ham=$CORPUS/ham/$(ls "$CORPUS/ham" | sort | sed -n 1p)
cat >"$T/conf/00-engine.conf" <<EOF
engine
state_dir $T/elsewhere
EOF
cat >"$T/conf/50-bayes.conf" <<EOF
stage bayes
database my.db
min_spam 25
EOF

# relative database: under -S (not the engine's state_dir)
"$CTL" -S "$T/state" learn spam -c "$T/conf" "$T/spam" >"$T/out" 2>"$T/err" ||
    fail "learn spam: $(cat "$T/out" "$T/err")"
grep -q "^learned 30 spam messages (0 skipped" "$T/out" || fail "$(cat "$T/out")"
grep -q "$T/state/my.db: 30 spam, 0 ham learned" "$T/out" || fail "$(cat "$T/out")"
grep -q "abstains until 25 spam and 50 ham" "$T/out" || fail "no min note: $(cat "$T/out")"
[ -f "$T/state/my.db" ] || fail "no database under the state directory"

# --json, the engine's state_dir from conf.d this time
mkdir "$T/elsewhere"
"$CTL" --json learn ham -c "$T/conf" "$T/ham" >"$T/out" || fail "learn ham json"
python3 - "$T/out" "$T/elsewhere/my.db" <<'EOF' || fail "json: $(cat "$T/out")"
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["ok"] is True and o["class"] == "ham" and o["action"] == "learn", o
assert o["learned"] == 40 and o["skipped"] == 0 and o["failed"] == 0, o
assert o["ham_total"] == 40 and o["spam_total"] == 0, o
assert o["database"] == sys.argv[2], o
EOF

# relearn: skipped; the other class: moved
"$CTL" -S "$T/state" learn spam -c "$T/conf" "$T/spam" >"$T/out"
grep -q "^learned 0 spam messages (30 skipped" "$T/out" || fail "relearn: $(cat "$T/out")"
"$CTL" -S "$T/state" learn ham -c "$T/conf" "$one_spam" >"$T/out"
grep -q "29 spam, 1 ham learned" "$T/out" || fail "move: $(cat "$T/out")"

# --unlearn: only from the named class
"$CTL" -S "$T/state" learn spam --unlearn -c "$T/conf" "$one_spam" >"$T/out"
grep -q "^unlearned 0 spam messages (1 skipped" "$T/out" || fail "unlearn wrong class: $(cat "$T/out")"
"$CTL" -S "$T/state" learn ham --unlearn -c "$T/conf" "$one_spam" >"$T/out"
grep -q "^unlearned 1 ham message " "$T/out" || fail "unlearn: $(cat "$T/out")"
grep -q "29 spam, 0 ham learned" "$T/out" || fail "unlearn totals: $(cat "$T/out")"

# -B and stdin; an absolute database in conf.d
"$CTL" learn -B "$T/b.db" ham - <"$one_ham" >"$T/out" || fail "stdin"
grep -q "^learned 1 ham message " "$T/out" || fail "stdin: $(cat "$T/out")"
"$SB" -d "$T/b.db" stats | grep -q "ham learned   1" || fail "stats after stdin"
sed -i "s|^database .*|database $T/abs.db|" "$T/conf/50-bayes.conf"
"$CTL" -S "$T/state" learn spam -c "$T/conf" "$one_spam" >"$T/out"
grep -q "$T/abs.db: 1 spam" "$T/out" || fail "absolute: $(cat "$T/out")"

# exit codes
rc=0; "$CTL" learn -B "$T/b.db" spam "$one_spam" "$T/missing" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "unreadable file: exit $rc"
grep -q "missing: No such file" "$T/err" || fail "$(cat "$T/err")"
"$SB" -d "$T/b.db" stats | grep -q "spam learned  1" || fail "the readable one was not learned"
rc=0; "$CTL" learn -B "$T/b.db" eggs "$one_spam" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "bad class: exit $rc"
rc=0; "$CTL" learn -B "$T/b.db" spam 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "no files: exit $rc"
rc=0; SLUICE_STATE_DIR= "$CTL" learn -c "$T/nowhere" spam "$one_spam" 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "no configuration: exit $rc"
grep -q "name it with -B" "$T/err" || fail "$(cat "$T/err")"
# no configuration but a state directory: the stage's default database
# there, said on stderr
mkdir -p "$T/state2"
rc=0; SLUICE_STATE_DIR= "$CTL" -S "$T/state2" learn -c "$T/nowhere" spam "$one_spam" \
    >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "state directory without configuration: exit $rc"
[ -s "$T/state2/bayes.db" ] || fail "no database in the state directory"
grep -q "no configuration read; using $T/state2/bayes.db" "$T/err" ||
    fail "fallback database not said: $(cat "$T/err")"
rc=0; "$CTL" learn -B "$T/no/such/dir/x.db" spam "$one_spam" 2>/dev/null || rc=$?
[ "$rc" = 3 ] || fail "unwritable: exit $rc"
echo "learn_tool.sh: ok"
