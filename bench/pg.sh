#!/usr/bin/env bash
# pg.sh - PostgreSQL benchmark through the stages' pool (pgpool), figures
# printed, nothing asserted.  A private instance (tools/sluice-pg, durable:
# fsync on, as in production) in a temporary directory, schema migrated;
# then pg_bench (C, one libev loop like one worker):
#   - "SELECT 1" round trips/s, 1 and 4 connections;
#   - quarantine stores/s: one transaction per message (message + its
#     recipient), corpus messages as binary parameters, 1 and 4
#     connections, 16 in flight; table size after (lz4 TOAST).
#
# Environment: SLUICED (./build.sh bench sets it; pg_bench and sluicectl
# come from the same build tree), SLUICE_CORPUS, PG_COUNT (stores per run,
# default 3000).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SLUICED=${SLUICED:-$REPO/build/engine/sluiced}
BUILD=${SLUICE_BUILD_DIR:-$(cd "$(dirname "$SLUICED")/.." && pwd)}
BENCH=$BUILD/plugins/common/pg_bench
CTL=$BUILD/tools/sluicectl
CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
COUNT=${PG_COUNT:-3000}
[ -x "$BENCH" ] && [ -x "$CTL" ] || { echo "pg.sh: no $BENCH or $CTL (./build.sh first)"; exit 1; }

T=$(mktemp -d /tmp/sluice-pgbench.XXXXXX)
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

mapfile -t FILES < <(ls "$CORPUS"/ham/* "$CORPUS"/spam/* 2>/dev/null | head -n 3000)
[ "${#FILES[@]}" -gt 0 ] || { echo "pg.sh: no corpus in $CORPUS"; exit 1; }
bytes=$(cat "${FILES[@]}" | wc -c)
echo "pg.sh: PostgreSQL $("$CTL" -S "$T" --json db status | sed 's/.*"server_version":\([0-9]*\).*/\1/'), ${#FILES[@]} corpus messages ($((bytes / 1024)) KB), $(nproc) cores"
for c in 1 4; do
    "$BENCH" "$DSN" select 20000 16 "$c"
done
for c in 1 4; do
    "$BENCH" "$DSN" store "$COUNT" 16 "$c" "${FILES[@]}"
done
PGPASSFILE=$T/pg/pgpass /usr/lib/postgresql/*/bin/psql -h "$T/pg/run" -U sluice -d sluice -w -qAt -c \
    "SELECT 'stored ' || count(*) || ' messages, ' || pg_size_pretty(sum(size)) || ' raw, table ' || pg_size_pretty(pg_total_relation_size('quarantine_message')) FROM quarantine_message"
