#!/usr/bin/env bash
# build.sh - set up, build, run, test and benchmark sluice.
#
#   ./build.sh               install missing Debian packages, build (build/)
#   ./build.sh run           ... then run sluiced in the foreground with
#                            conf.d/ (state in .state/), with PostgreSQL,
#                            blocklistd and sluice-manager (HTTPS on
#                            127.0.0.1:18080); Ctrl-C stops them all
#   ./build.sh test          test packages too, ASan+UBSan build with clang
#                            (build-test/), every test through ctest
#   ./build.sh bench         release build, then bench/*.sh (figures only)
#   ./build.sh install [PREFIX]  cmake --install (default /usr/local)
#
# Packages are installed only when missing (dpkg-query), without prompts
# (works with no stdin and CI=true).  Exit status: that of the build, of
# ctest, or of sluiced.
#
# SECURITY: installs packages and creates the system user `sluice`, so it
# runs as root (or with sudo when it is not root and must install).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$REPO"

# ---------------------------------------------------------------- packages
# One list, split by purpose.  Later issues append here.
BUILD_PKGS=(build-essential cmake pkg-config libev-dev libltdl-dev libssl-dev
            libc-ares-dev libmilter-dev libpq-dev libjansson-dev)
# the heuristic stage's rules: PCRE2 (JIT) everywhere, Hyperscan on amd64
BUILD_PKGS+=(libpcre2-dev)
# sluice-manager: HTTP parsing and password hashing (argon2id)
BUILD_PKGS+=(libhttp-parser-dev libargon2-dev)
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
    BUILD_PKGS+=(libhyperscan-dev)
fi
RUN_PKGS=(procps iproute2 publicsuffix)  # publicsuffix: the dns stage's PSL
RUN_PKGS+=(postgresql)  # the private database instance (tools/sluice-pg)
TEST_PKGS=(clang libclang-rt-14-dev libcmocka-dev postfix swaks python3
           netcat-openbsd bsdutils rbldnsd miltertest)
TEST_PKGS+=(spamassassin)  # its rule files: the heuristic SA-loader test
TEST_PKGS+=(curl jq)  # the Manager's API tests over HTTPS (manager_handlers)
# the Manager's browser tests: Debian's Chromium driven by playwright-core
# (tests/browser, `npm ci` from the npm registry); Node.js from Debian when
# the machine has no `node` of its own
TEST_PKGS+=(chromium)
if ! command -v node >/dev/null 2>&1; then TEST_PKGS+=(nodejs npm); fi

NPROC=$(nproc 2>/dev/null || echo 2)
SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

log() { printf 'build.sh: %s\n' "$*" >&2; }

pkgs_missing() {
    local p
    for p in "$@"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            printf '%s\n' "$p"
        fi
    done
}

pkgs_ensure() {
    local missing
    mapfile -t missing < <(pkgs_missing "$@")
    [ "${#missing[@]}" = 0 ] && return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix installs without a system configuration and without prompts:
    # the tests run private instances of their own.
    if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
        echo "postfix postfix/main_mailer_type select No configuration" |
            $SUDO debconf-set-selections
    fi
    $SUDO apt-get update -qq </dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------- builds
build_release() {
    pkgs_ensure "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}"
    CC=${CC:-gcc} cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSLUICE_TESTS=OFF
    cmake --build "$REPO/build" -j"$NPROC"
}

build_test() {
    pkgs_ensure "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
    CC=clang cmake -S "$REPO" -B "$REPO/build-test" -DCMAKE_BUILD_TYPE=Debug \
        -DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=ON
    cmake --build "$REPO/build-test" -j"$NPROC"
}

# ---------------------------------------------------------------- daemons
# Every daemon `run` starts is recorded here and stopped on exit.
DAEMON_PIDS=()
PG_STATE=  # the private PostgreSQL's state dir, when `run` started one

daemons_stop() {
    local pid i
    for pid in "${DAEMON_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${DAEMON_PIDS[@]}"; do
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    DAEMON_PIDS=()
    if [ -n "$PG_STATE" ]; then
        "$REPO/tools/sluice-pg" stop "$PG_STATE" || true
        PG_STATE=
    fi
}

cmd_run() {
    build_release
    if ! getent passwd sluice >/dev/null; then
        log "creating system user sluice"
        $SUDO useradd --system --no-create-home --shell /usr/sbin/nologin sluice
    fi
    # sluice-manager runs as its own user in the group sluiceadm: the
    # group the engine's control socket is opened to (root:sluiceadm 0660)
    if ! getent group sluiceadm >/dev/null; then
        log "creating system group sluiceadm"
        $SUDO groupadd --system sluiceadm
    fi
    if ! getent passwd sluice-manager >/dev/null; then
        log "creating system user sluice-manager (group sluiceadm)"
        $SUDO useradd --system --no-create-home --shell /usr/sbin/nologin \
            -g sluiceadm sluice-manager
    fi
    mkdir -p "$REPO/.state"
    chown sluice: "$REPO/.state" 2>/dev/null || $SUDO chown sluice: "$REPO/.state"
    # sluice-manager walks through it to the control socket and the
    # database (0755: nothing secret sits directly in it)
    chmod 0755 "$REPO/.state" 2>/dev/null || $SUDO chmod 0755 "$REPO/.state"
    trap daemons_stop EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Unless SLUICE_DB names a server (a libpq DSN): the private
    # PostgreSQL under .state/pg (unix socket only, scram-sha-256), schema
    # migrated, stopped on exit.
    if [ -z "${SLUICE_DB:-}" ]; then
        log "starting the private PostgreSQL in .state/pg"
        PG_STATE=$REPO/.state
        SLUICECTL=$REPO/build/tools/sluicectl "$REPO/tools/sluice-pg" \
            -m sluice-manager start "$PG_STATE"
    fi
    # The blocklist stage is on in conf.d: its daemon, with the lists in
    # lists/ (edit them, then kill -HUP; see README).
    log "starting sluice-blocklistd on 127.0.0.1:4466 (lists/)"
    "$REPO/build/tools/blocklistd/sluice-blocklistd" -l 127.0.0.1:4466 \
        "$REPO/lists" &
    DAEMON_PIDS+=($!)
    log "starting sluiced (conf.d/, plugins build/plugins.d, state .state/)"
    # With SLUICE_DB: every PostgreSQL stage uses it (-D, the engine's
    # `database`), unless its own section names another.
    "$REPO/build/engine/sluiced" -c "$REPO/conf.d" -P "$REPO/build/plugins.d" \
        -S "$REPO/.state" ${SLUICE_DB:+-D "$SLUICE_DB"} &
    local sl_pid=$! rc=0
    DAEMON_PIDS+=("$sl_pid")
    # The Manager (conf.d/05-manager.conf; front end from the source tree)
    log "starting sluice-manager on https://127.0.0.1:18080/ (first account:" \
        "build/tools/sluicectl -S .state admin add NAME --role admin)"
    "$REPO/build/tools/manager/sluice-manager" -n -c "$REPO/conf.d" \
        -S "$REPO/.state" -w "$REPO/tools/manager/www" \
        ${SLUICE_DB:+-d "$SLUICE_DB"} &
    DAEMON_PIDS+=($!)
    wait "$sl_pid" || rc=$?
    return "$rc"
}

# tests/browser's node_modules (playwright-core, no browser download): `npm
# ci` when it is missing or package-lock.json changed since the last one.
browser_deps() {
    local dir=$REPO/tests/browser stamp sum
    stamp=$dir/node_modules/.sluice-lock.sha256
    sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        return 0
    fi
    log "npm ci in tests/browser (playwright-core)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund \
        --loglevel=error </dev/null)
    echo "$sum" >"$stamp"
}

cmd_test() {
    build_test
    browser_deps
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    local rc=0
    ctest --test-dir "$REPO/build-test" --output-on-failure --timeout 600 \
        -j"$NPROC" || rc=$?
    return "$rc"
}

cmd_bench() {
    build_release
    pkgs_ensure postfix python3 bsdutils
    # bench/spamd.sh: SpamAssassin's daemon and client, the rate to beat
    pkgs_ensure spamassassin spamd spamc
    local b rc=0
    export SLUICED=$REPO/build/engine/sluiced
    export SLUICE_PLUGIN_DIR=$REPO/build/plugins.d
    export SLUICE_CORPUS=${SLUICE_CORPUS:-$REPO/../shared/corpus}
    for b in "$REPO"/bench/*.sh; do
        [ -f "$b" ] || continue
        log "bench: $b"
        bash "$b" || { rc=$?; log "$b failed ($rc)"; }
    done
    return "$rc"
}

cmd_install() {
    build_release
    if [ $# -gt 0 ]; then
        cmake --install "$REPO/build" --prefix "$1"
    else
        cmake --install "$REPO/build"
    fi
}

case "${1:-build}" in
build) build_release ;;
run) cmd_run ;;
test) cmd_test ;;
bench) cmd_bench ;;
install) shift; cmd_install "$@" ;;
-h|--help|help) sed -n '2,17p' "$0" ;;
*) log "unknown command: $1 (build, run, test, bench, install)"; exit 2 ;;
esac
