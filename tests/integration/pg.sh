#!/bin/bash
# pg.sh - the private PostgreSQL instance (tools/sluice-pg) and the schema
# tool (sluicectl db), against a real server in a temporary directory:
#   - init/start as an unprivileged user (nobody), idempotent: a second
#     init or start reuses the cluster (same password, same postmaster);
#   - secure by default: pg_hba.conf allows only local scram-sha-256 (no
#     trust, no host lines), listen_addresses = '', no TCP socket, 0700
#     directories, 0600 passfile; without the password, or with a wrong
#     one, the server refuses;
#   - migrations: sluice-pg start migrated to head; in a second, empty
#     database: status (exit 4, JSON), 0001 only, then to head, nothing
#     to do, init refused on an initialized database, --to out of range,
#     a database newer than the tool (exit 5), an edited migration shown;
#   - stop: status 3, sluicectl db exit 3; start again reuses it.
# Environment: SLUICECTL, SLUICE_SOURCE_DIR (from tests/integration/pg.cmake).
set -uo pipefail

PG=$SLUICE_SOURCE_DIR/tools/sluice-pg
CTL=$SLUICECTL
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
PSQL=$BIN/psql
T=$(mktemp -d /tmp/sluice-pg.XXXXXX) || exit 1
U=nobody
chown "$U": "$T"
export SLUICE_PG_NOSYNC=1 SLUICECTL=$CTL
FAILED=

log() { printf '%s [pg] %s\n' "$(date +%T)" "$*"; }
fail() {
    log "FAIL: $*"
    FAILED=1
    exit 1
}
cleanup() {
    local rc=$?
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
    "$PG" -q stop "$T" >/dev/null 2>&1
    if [ "$rc" = 0 ] && [ -z "$FAILED" ]; then
        rm -rf "$T"
    else
        echo "===== server log ($T/pg/server.log) ====="
        tail -n 40 "$T/pg/server.log" 2>/dev/null
        echo "kept $T"
    fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# Our own deadline, below ctest's TIMEOUT: killed by ctest, we could not
# stop the server (pg_ctl daemonizes it out of our process group).
(
    sleep "${PG_IT_TIMEOUT:-100}" </dev/null >/dev/null 2>&1
    echo "pg.sh: deadline reached"
    for c in $(pgrep -P $$); do
        [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2>/dev/null
    done
    kill -TERM $$
) &
WATCHDOG=$!

# expect RC CMD...: runs CMD, fails the test unless it exits RC.
expect() {
    local want=$1 rc=0
    shift
    "$@" >"$T/out" 2>"$T/err" || rc=$?
    if [ "$rc" != "$want" ]; then
        cat "$T/out" "$T/err"
        fail "'$*' exited $rc, expected $want"
    fi
}

psql_pw() { PGPASSFILE=$T/pg/pgpass "$PSQL" -h "$T/pg/run" -U sluice -w -qAt "$@"; }

log "sluice-pg start (init + start + migrate) as $U"
expect 0 "$PG" -u "$U" start "$T"
grep -q "applied 0002_reports" "$T/out" || { cat "$T/out" "$T/err"; fail "start did not migrate"; }
pid1=$(head -n 1 "$T/pg/data/postmaster.pid")
[ "$(stat -c %U "$T/pg/data")" = "$U" ] || fail "cluster not owned by $U"
ps -o user= -p "$pid1" | grep -qx "$U" || fail "postmaster $pid1 not running as $U"

log "permissions and configuration"
[ "$(stat -c %a "$T/pg/pgpass")" = 600 ] || fail "pgpass mode $(stat -c %a "$T/pg/pgpass")"
[ "$(stat -c %a "$T/pg/data")" = 700 ] || fail "data dir mode"
[ "$(stat -c %a "$T/pg/run")" = 700 ] || fail "socket dir mode"
[ ! -e "$T/pg/.initpw" ] || fail "initdb's password file left behind"
hba=$(grep -vE '^\s*(#|$)' "$T/pg/data/pg_hba.conf")
[ "$hba" = "local   all       all   scram-sha-256" ] || { echo "$hba"; fail "pg_hba.conf: unexpected rules"; }
grep -qiE '^\s*[^#]*\btrust\b' "$T/pg/data/pg_hba.conf" && fail "trust in pg_hba.conf"
[ "$(psql_pw -d sluice -c 'SHOW listen_addresses')" = "" ] || fail "listen_addresses is not empty"
[ "$(psql_pw -d sluice -c 'SHOW password_encryption')" = scram-sha-256 ] || fail "password_encryption"
[ "$(psql_pw -d sluice -c "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = 'sluice'")" = t ] ||
    fail "the role's password is not a SCRAM verifier"
if ss -Hltnp 2>/dev/null | grep -q "pid=$pid1,"; then
    ss -ltnp
    fail "postmaster listens on TCP"
fi

log "no password, wrong password: refused"
expect 2 env PGPASSFILE=/dev/null "$PSQL" -h "$T/pg/run" -U sluice -d sluice -w -c 'SELECT 1'
grep -q "password" "$T/err" || { cat "$T/err"; fail "no-password refusal does not mention the password"; }
expect 2 env PGPASSWORD=wrong PGPASSFILE=/dev/null "$PSQL" -h "$T/pg/run" -U sluice -d sluice -w -c 'SELECT 1'
grep -q "password authentication failed" "$T/err" || { cat "$T/err"; fail "wrong password not refused"; }
expect 3 "$CTL" -d "host=$T/pg/run dbname=sluice user=sluice passfile=/dev/null" db status

log "idempotent: second init and start reuse the cluster"
sum1=$(md5sum <"$T/pg/pgpass")
expect 0 "$PG" init "$T"
expect 0 "$PG" start "$T"
grep -q "already running" "$T/err" || { cat "$T/err"; fail "second start did not see the running server"; }
[ "$(head -n 1 "$T/pg/data/postmaster.pid")" = "$pid1" ] || fail "second start restarted the server"
[ "$(md5sum <"$T/pg/pgpass")" = "$sum1" ] || fail "second init changed the password"
expect 0 "$PG" status "$T"

log "sluicectl db status on the private instance (-S)"
# head: the newest file in db/migrations (later issues add files)
MIGS=$(cd "$SLUICE_SOURCE_DIR/db/migrations" && ls [0-9][0-9][0-9][0-9]_*.sql | sed 's/\.sql$//' | tr '\n' ' ')
HEAD=$(echo $MIGS | wc -w)
export MIGS HEAD
expect 0 "$CTL" -S "$T" db status
grep -q "^schema version: $HEAD" "$T/out" || { cat "$T/out"; fail "status text"; }
expect 0 "$CTL" -S "$T" --json db status
python3 - "$T/out" <<'EOF' || fail "status --json"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["ok"] and s["initialized"] and s["up_to_date"], s
import os
assert s["version"] == s["head"] == int(os.environ["HEAD"]), s
assert [a["name"] for a in s["applied"]] == os.environ["MIGS"].split(), s
assert s["pending"] == [], s
EOF
expect 3 "$CTL" -S "$T/nowhere" db status
grep -q "no private instance" "$T/err" || fail "missing instance not explained"

log "migrations in an empty database: 0001, then to head"
psql_pw -d sluice -c 'CREATE DATABASE mig' || fail "createdb mig"
DSN="host=$T/pg/run dbname=mig user=sluice passfile=$T/pg/pgpass"
expect 4 "$CTL" -d "$DSN" --json db status
python3 - "$T/out" <<'EOF' || fail "empty status --json"
import json, sys
s = json.load(open(sys.argv[1]))
assert not s["initialized"] and s["version"] == 0 and not s["up_to_date"], s
import os
assert [p["version"] for p in s["pending"]] == list(range(1, int(os.environ["HEAD"]) + 1)), s
EOF
expect 0 "$CTL" -d "$DSN" db migrate --to 1
expect 4 "$CTL" -d "$DSN" db status
grep -q "pending  0002 0002_reports" "$T/out" || { cat "$T/out"; fail "0002 not pending"; }
[ "$(psql_pw -d mig -c "SELECT to_regclass('report_counter') IS NULL")" = t ] || fail "0002 applied too early"
psql_pw -d mig -c "INSERT INTO list_entry (kind, scope, client_net) VALUES ('block', 'site', '192.0.2.0/24')" ||
    fail "insert at version 1"
expect 1 "$CTL" -d "$DSN" db init
grep -q "already initialized" "$T/err" || fail "init on an initialized database"
expect 0 "$CTL" -d "$DSN" db migrate
grep -q "applied 0002_reports" "$T/out" || { cat "$T/out"; fail "migrate to head"; }
expect 0 "$CTL" -d "$DSN" db migrate
grep -q "nothing to do" "$T/out" || fail "second migrate did something"
expect 0 "$CTL" -d "$DSN" db status
[ "$(psql_pw -d mig -c "SELECT count(*) FROM list_entry WHERE client_net >>= '192.0.2.7'")" = 1 ] ||
    fail "data lost across the migration, or inet containment broken"
psql_pw -d mig -c "INSERT INTO list_entry (kind, scope, sender_domain) VALUES ('allow', 'site', 'example.org')"
[ "$(psql_pw -d mig -c "SELECT generation FROM list_generation")" = 1 ] || fail "list generation not bumped"
expect 2 "$CTL" -d "$DSN" db migrate --to 99
expect 2 "$CTL" -d "$DSN" db frobnicate

log "db init in a fresh database; newer database; edited migration"
psql_pw -d sluice -c 'CREATE DATABASE fresh' || fail "createdb fresh"
expect 0 "$CTL" -d "host=$T/pg/run dbname=fresh user=sluice passfile=$T/pg/pgpass" db init
psql_pw -d mig -c "UPDATE schema_version SET checksum = 'x' WHERE version = 1"
expect 0 "$CTL" -d "$DSN" db status
grep -q "0001_initial.*file changed since" "$T/out" || { cat "$T/out"; fail "edited migration not shown"; }
psql_pw -d mig -c "INSERT INTO schema_version (version, name) VALUES (99, '0099_future')"
expect 5 "$CTL" -d "$DSN" db status
expect 5 "$CTL" -d "$DSN" db migrate

log "a failing migration leaves the schema where it was"
psql_pw -d sluice -c 'CREATE DATABASE broken' || fail "createdb broken"
psql_pw -d broken -c "CREATE TABLE report_counter (x int)" # 0002 will collide
BDSN="host=$T/pg/run dbname=broken user=sluice passfile=$T/pg/pgpass"
expect 1 "$CTL" -d "$BDSN" db migrate
grep -q "0002_reports" "$T/err" || { cat "$T/err"; fail "failed migration not named"; }
expect 4 "$CTL" -d "$BDSN" --json db status
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['version']==1, s" "$T/out" ||
    fail "schema not left at version 1"

log "stop: status 3, sluicectl cannot connect (3); start reuses"
expect 0 "$PG" stop "$T"
expect 3 "$PG" status "$T"
expect 3 "$CTL" -S "$T" db status
expect 0 "$PG" stop "$T"
expect 0 "$PG" start "$T"
grep -q "nothing to do" "$T/out" || { cat "$T/out" "$T/err"; fail "restart: migrate"; }
expect 0 "$CTL" -S "$T" db status
mkdir "$T/empty"
expect 4 "$PG" status "$T/empty"

log "ok"
