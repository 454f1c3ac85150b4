#!/usr/bin/env bash
# bayes_storage.sh - Bayes storage: the memory-mapped file against
# PostgreSQL, figures printed, nothing asserted (README, "Bayes": why the
# file, and export/import for several gateways).  A private PostgreSQL
# (tools/sluice-pg, durable, as in production) in a temporary directory;
# bayes_storage (C) learns the whole corpus, then measures classification
# from the mapping and one query per message fetching all its tokens.
#
# Environment: SLUICED (./build.sh bench sets it; the driver comes from the
# same build tree), SLUICE_CORPUS.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
BUILD=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$SLUICED")/.." && pwd)}
DRIVER=$BUILD/plugins/heuristic/bayes_storage
CTL=$BUILD/tools/sluicectl
CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
[ -x "$DRIVER" ] && [ -x "$CTL" ] || { echo "bayes_storage.sh: no $DRIVER or $CTL (./build.sh first)"; exit 1; }

T=$(mktemp -d /tmp/sluice-bayes-storage.XXXXXX)
U=
if [ "$(id -u)" = 0 ]; then
    U=nobody
    getent passwd sluice >/dev/null && U=sluice
    chown "$U": "$T"
fi
cleanup() { "$REPO/tools/sluice-pg" -q stop "$T"; rm -rf "$T"; }
trap cleanup EXIT
SLUICECTL=$CTL "$REPO/tools/sluice-pg" -q ${U:+-u "$U"} start "$T" >/dev/null || exit 1
DSN=$("$REPO/tools/sluice-pg" dsn "$T")
echo "== Bayes storage, $(date -u +%Y-%m-%d), $(nproc) cores"
"$DRIVER" "$CORPUS" "$DSN"
