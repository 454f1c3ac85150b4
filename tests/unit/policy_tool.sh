#!/usr/bin/env bash
# policy_tool.sh - `sluicectl policy check|test|default` (exit codes,
# FILE:LINE:COL errors, --json) and conf.d/70-policy.conf under
# `sluiced -t`: the shipped configuration loads, a script with a syntax
# error is refused with its line and column.
# Usage: policy_tool.sh SLUICECTL SLUICED PLUGIN_DIR REPO
set -uo pipefail
CTL=$1 SLUICED=$2 PLUGINS=$3 REPO=$4
T=$(mktemp -d /tmp/sluice-policy-tool.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "policy_tool.sh: FAIL: $*" >&2; exit 1; }

# check
"$CTL" policy check "$REPO/plugins/policy/default.sieve" >"$T/out" || fail "default: $(cat "$T/out")"
grep -q "default.sieve: ok" "$T/out" || fail "$(cat "$T/out")"
printf 'require "sluice";\n\nif symbol "X" {\n    frobnicate;\n}\n' >"$T/bad.sieve"
"$CTL" policy check "$T/bad.sieve" 2>"$T/err"
[ $? = 1 ] || fail "bad script: exit not 1"
grep -q "bad.sieve:4:5: unknown command \"frobnicate\"" "$T/err" || fail "$(cat "$T/err")"
"$CTL" policy check "$T/missing.sieve" 2>/dev/null
[ $? = 1 ] || fail "missing file: exit not 1"
"$CTL" policy check 2>/dev/null
[ $? = 2 ] || fail "no file: exit not 2"
"$CTL" policy frob 2>/dev/null
[ $? = 2 ] || fail "unknown sub-command: exit not 2"
"$CTL" policy default | grep -q 'tagsubject "\[SPAM\]"' || fail "policy default"

# test
printf 'Return-Path: <a@example.net>\nFrom: a@example.net\nSubject: hi\n\tthere\n\nbody\n' >"$T/m.eml"
cat >"$T/p.sieve" <<'EOF2'
require ["sluice", "variables", "editheader", "envelope"];
if header :is "subject" "hi	there" { addheader "X-Folded" "yes"; }
if envelope :domain "from" "example.net" { addheader "X-Env" "${direction}"; }
if symbol "BAYES_99" { quarantine "bayes"; }
EOF2
"$CTL" policy test "$T/p.sieve" "$T/m.eml" --symbol BAYES_99=4 --client 10.0.0.1 \
    --internal 10.0.0.0/8 >"$T/out" || fail "test: $(cat "$T/out")"
grep -q "^action: quarantine: bayes" "$T/out" || fail "$(cat "$T/out")"
grep -q "insert X-Folded: yes" "$T/out" || fail "$(cat "$T/out")"
grep -q "insert X-Env: outbound" "$T/out" || fail "$(cat "$T/out")"
"$CTL" --json policy test @default "$T/m.eml" --list block >"$T/out" || fail "json test"
grep -q '"action": "reject"' "$T/out" || fail "$(cat "$T/out")"
"$CTL" policy test "$T/p.sieve" 2>/dev/null
[ $? = 2 ] || fail "test without MSG: exit not 2"

# redirect and notify (issue #6): what the policy would do, and JSON
cat >"$T/r.sieve" <<'EOF2'
require ["copy", "enotify"];
redirect :copy "archive@example.org";
notify :message "seen" "mailto:admin@example.org";
EOF2
"$CTL" policy test "$T/r.sieve" "$T/m.eml" >"$T/out" || fail "redirect test"
grep -q "^redirect: archive@example.org (copy)$" "$T/out" || fail "$(cat "$T/out")"
grep -q "^notify: mailto:admin@example.org message: seen$" "$T/out" || fail "$(cat "$T/out")"
grep -q "^action: keep$" "$T/out" || fail "$(cat "$T/out")"
"$CTL" --json policy test "$T/r.sieve" "$T/m.eml" >"$T/out" || fail "redirect json"
grep -q '"keep_cancelled": false' "$T/out" || fail "$(cat "$T/out")"

# sluiced -t with the shipped conf.d file, then with a broken script
cp "$REPO/conf.d/00-engine.conf" "$REPO/conf.d/70-policy.conf" "$T/"
sed -i 's/^lists yes/lists no/' "$T/70-policy.conf"
"$SLUICED" -t -c "$T" -P "$PLUGINS" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
grep -q "stages: policy$" "$T/out" || fail "$(cat "$T/out")"
echo "script $T/bad.sieve" >>"$T/70-policy.conf"
if "$SLUICED" -t -c "$T" -P "$PLUGINS" >"$T/out" 2>&1; then fail "bad script accepted"; fi
grep -q "bad.sieve:4:5: unknown command" "$T/out" || fail "$(cat "$T/out")"
echo "policy_tool.sh: ok"
