#!/bin/bash
# pg_env.sh - runs a test against a private PostgreSQL of its own:
#   pg_env.sh SLUICE_PG SLUICECTL COMMAND [ARGS...]
# Creates a temporary state directory, starts PostgreSQL in it with
# tools/sluice-pg (initdb, unix socket only, scram-sha-256, as the
# unprivileged user `nobody` when run as root), migrates the schema with
# sluicectl, runs COMMAND with SLUICE_TEST_PG_STATE and SLUICE_PG set,
# and stops and removes everything afterwards (kept on failure).
set -u
PG=$1 CTL=$2
shift 2
T=$(mktemp -d /tmp/sluice-pgtest.XXXXXX)
U=
if [ "$(id -u)" = 0 ]; then
    U=nobody
    chown nobody: "$T"
fi
export SLUICE_PG_NOSYNC=1 # tests: no fsync, the data is throw-away
cleanup() {
    local rc=$?
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
    "$PG" -q stop "$T" >/dev/null 2>&1
    if [ "$rc" = 0 ]; then
        rm -rf "$T"
    else
        echo "pg_env.sh: failed ($rc); kept $T" >&2
        tail -n 30 "$T/pg/server.log" 2>/dev/null >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# Our own deadline, below ctest's TIMEOUT: killed by ctest, we could not
# stop the server (pg_ctl daemonizes it out of our process group).
(
    sleep "${PG_ENV_TIMEOUT:-100}" </dev/null >/dev/null 2>&1
    echo "pg_env.sh: deadline reached" >&2
    for c in $(pgrep -P $$); do
        [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2>/dev/null
    done
    kill -TERM $$
) &
WATCHDOG=$!
SLUICECTL=$CTL "$PG" -q ${U:+-u "$U"} start "$T" || exit 1
SLUICE_TEST_PG_STATE=$T SLUICE_PG=$PG "$@"
