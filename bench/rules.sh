#!/usr/bin/env bash
# rules.sh - benchmark of the rule engine (heuristic stage): messages/s
# scanning every corpus message in-process (MIME parse + rule view + scan,
# one core) with sluice's default rules, then with the SpamAssassin rule
# files of the installed Debian package; rule counts, compile time and
# peak RSS.  Figures printed, nothing asserted.
#
# Environment: RULES_BENCH (the driver, default build/plugins/heuristic/
# rules_bench), SLUICE_CORPUS (default ../shared/corpus), BENCH_PASSES
# (default 3).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DRIVER=${RULES_BENCH:-$REPO/build/plugins/heuristic/rules_bench}
CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
PASSES=${BENCH_PASSES:-3}
[ -x "$DRIVER" ] || { echo "rules.sh: no driver at $DRIVER (./build.sh first)"; exit 1; }
[ -d "$CORPUS" ] || { echo "rules.sh: no corpus at $CORPUS"; exit 1; }

echo "== default rules ($REPO/rules/*.rules)"
args=()
for f in "$REPO"/rules/*.rules; do args+=(-r "$f"); done
"$DRIVER" "${args[@]}" -n "$PASSES" "$CORPUS"

if ls /usr/share/spamassassin/*.cf >/dev/null 2>&1; then
    echo "== SpamAssassin rules (/usr/share/spamassassin/*.cf)"
    args=()
    for f in /usr/share/spamassassin/*.cf; do args+=(-s "$f"); done
    "$DRIVER" "${args[@]}" -n 1 "$CORPUS"
    if [ -n "${RULES_BENCH_PREFILTER:-}" ]; then  # minutes of compile
        echo "== SpamAssassin rules, Hyperscan prefiltering the PCRE2-only regexes"
        "$DRIVER" -F "${args[@]}" -n 1 "$CORPUS"
    fi
    echo "== SpamAssassin rules, PCRE2 only (no Hyperscan)"
    "$DRIVER" -P "${args[@]}" -n 1 "$CORPUS"
else
    echo "rules.sh: no /usr/share/spamassassin (Debian package spamassassin): SA figures skipped"
fi
