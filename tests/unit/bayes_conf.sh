#!/usr/bin/env bash
# bayes_conf.sh - conf.d/50-bayes.conf, enabled, passes `sluiced -t` with
# the bayes stage built here; a bad score line and a misspelt option are
# refused with file:line.  Usage: bayes_conf.sh SLUICED PLUGIN_DIR REPO
set -euo pipefail
SLUICED=$1 PLUGINS=$2 REPO=$3
T=$(mktemp -d /tmp/sluice-bayes-conf.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "bayes_conf.sh: FAIL: $*" >&2; exit 1; }

cp "$REPO/conf.d/00-engine.conf" "$REPO/conf.d/50-bayes.conf" "$T/"
sed -i 's/^enabled no/enabled yes/' "$T/50-bayes.conf"
"$SLUICED" -t -c "$T" -P "$PLUGINS" >"$T/out" 2>&1 || fail "$(cat "$T/out")"
grep -q "stages: bayes$" "$T/out" || fail "$(cat "$T/out")"
cp "$T/50-bayes.conf" "$T/good"
echo "score BAYES_42 1" >>"$T/50-bayes.conf"
if "$SLUICED" -t -c "$T" -P "$PLUGINS" >"$T/out" 2>&1; then fail "bad band accepted"; fi
grep -q "BAYES_42" "$T/out" || fail "$(cat "$T/out")"
cp "$T/good" "$T/50-bayes.conf"
echo "databse /tmp/x" >>"$T/50-bayes.conf"
if "$SLUICED" -t -c "$T" -P "$PLUGINS" >"$T/out" 2>&1; then fail "typo accepted"; fi
grep -q "50-bayes.conf:[0-9]*: .*unknown option 'databse'" "$T/out" || fail "$(cat "$T/out")"
echo "bayes_conf.sh: ok"
