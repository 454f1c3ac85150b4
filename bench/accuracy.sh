#!/usr/bin/env bash
# accuracy.sh - k-fold cross-validation of the Bayes classifier on a mail
# corpus laid out as ham/ and spam/ (hard ham apart when a directory or
# file name under ham/ says "hard"), or as easy_ham/, hard_ham/ and spam/.
# Figures printed, nothing asserted.
#
#   bench/accuracy.sh [bayes_accuracy options...]
#       -k FOLDS (5)  -t THRESHOLD (0.9)  -w OSB_WINDOW (1)  -r SEED (1)
#       -d DEDUP_MIN (4; 0: count equal-count clues every time)
#       -b folds of consecutive names   -v list the misclassified
#
# Each fold's table learns only the other folds' messages.  Without
# options it runs shuffled folds, then folds of consecutive names.  Prints spam
# recall and ham false positives at the default threshold, and the spam
# recall reachable at 0.1 % and 0.5 % of ham flagged.  The network checks
# and rules are not involved: this is Bayes alone.
#
# Then (without options, or with ACCURACY_COMBINED=1) the whole score:
# accuracy_combined.py, the shipped rules plus Bayes through `sluicectl
# scan --json --without dns,blocklist` per fold, each fold's Bayes
# database learned by `sluicectl learn` from the other folds; recall and
# ham flagged at conf.d's tag_score, recall at 0.1 % and 0.5 % of ham
# flagged, rules alone, and the Bayes band weights compared (--select:
# chosen on held-out folds), shuffled and in folds of consecutive names.
#
# Environment: SLUICE_CORPUS (default ../shared/corpus), BAYES_ACCURACY
# (the driver; default build/plugins/heuristic/bayes_accuracy, which
# ./build.sh bench builds), ACCURACY_SEEDS (e.g. "1 2 3": one run each).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
DRIVER=${BAYES_ACCURACY:-$REPO/build/plugins/heuristic/bayes_accuracy}
[ -x "$DRIVER" ] || { echo "accuracy.sh: no driver at $DRIVER (./build.sh first)"; exit 1; }
# ham/ (hard ham under it named *hard*), or easy_ham/ + hard_ham/
compgen -G "$SLUICE_CORPUS/*ham*/" >/dev/null && [ -d "$SLUICE_CORPUS/spam" ] ||
    { echo "accuracy.sh: $SLUICE_CORPUS has no ham/ and spam/"; exit 1; }

echo "== Bayes accuracy, $(date -u +%Y-%m-%d), $(nproc) cores"
rc=0
for seed in ${ACCURACY_SEEDS:-1}; do
    "$DRIVER" -r "$seed" "$@" "$SLUICE_CORPUS" || rc=$?
done
# without options, also folds of consecutive names: the less flattering,
# closer-to-held-out figure
if [ $# = 0 ]; then
    echo
    "$DRIVER" -b "$SLUICE_CORPUS" || rc=$?
fi
if [ $# = 0 ] || [ "${ACCURACY_COMBINED:-0}" = 1 ]; then
    BUILD=$(cd "$(dirname "$DRIVER")/../.." && pwd)
    for fold in "-r 1" "-b"; do
        echo
        echo "== rules + Bayes ($fold)"
        # shellcheck disable=SC2086
        python3 "$HERE/accuracy_combined.py" --select $fold \
            --sluicectl "$BUILD/tools/sluicectl" --plugins "$BUILD/plugins.d" \
            --conf "$REPO/conf.d" "$SLUICE_CORPUS" 2> >(grep -v 'database unreachable' >&2) ||
            rc=$?
    done
fi
exit "$rc"
