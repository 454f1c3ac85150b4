# lib.sh - shared harness of the integration tests (bash; sourced).
#
# Interface
#   it_init NAME         temp dir $T, trap that stops everything on exit
#   it_ports N           N free loopback TCP ports on stdout
#   pf_setup IN FILTER REINJ [smtp|lmtp]
#                        a private Postfix in $T/pf: smtpd on 127.0.0.1:IN
#                        with content_filter to [127.0.0.1]:FILTER over
#                        the given protocol (FILTER_README "advanced"
#                        filter), the reinjection smtpd on 127.0.0.1:REINJ,
#                        virtual(8) delivery of *@test.example to the
#                        Maildir $MAILDIR, short queue timers.
#   pf_start, pf_stop, pf_flush, pf_queue_count, pf_wait_empty SECS
#   sl_conf DIR FILTER REINJ [EXTRA_STAGES_FILE]
#                        a sluiced conf dir: engine, smtp on FILTER,
#                        receive, (extra stages), deliver to REINJ.
#   sl_start CONFDIR, sl_stop, sl_reload, sl_workers, sl_wait_listen PORT
#   it_fail MSG          print MSG and every log, exit 1
#   bl_start PORT SOURCE..., bl_stop
#   mgr_start CONFDIR PORT [ARGS...], mgr_stop
#                        sluice-manager ($SLUICE_MANAGER) on 127.0.0.1:PORT,
#                        state $T/state, as $MGR_USER (default nobody),
#                        log $T/manager.log; mgr_curl PATH [curl args] is
#                        curl -k on it
#                        sluice-blocklistd ($SLUICE_BLOCKLISTD) on
#                        127.0.0.1:PORT as nobody, log $T/blocklistd.log
#
#   pg_start, pg_stop    the private PostgreSQL (tools/sluice-pg) in
#                        $T/state, as nobody; sets DSN and PG_BIN
#   mgr_admin NAME ROLE  a Manager account (sluicectl admin add); prints
#                        its random password
#
# Environment (from ctest, see integration.cmake): SLUICED, SLUICECTL,
# SLUICE_PLUGIN_DIR, SLUICE_CORPUS, IT_DIR (this directory).
#
# Diagnostics: a component that cannot be started is a test failure, never
# a skip; on failure every log (Postfix maillog, sluiced stderr) is printed.
#
# SECURITY: runs as root (Postfix needs it); everything lives in a fresh
# mktemp directory, services bind 127.0.0.1 only, and the exit trap stops
# every daemon this harness started.

set -uo pipefail

IT_DIR=${IT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# Debian's interpreter, which build.sh installs: not whatever shim PATH
# finds first (a pyenv shim costs 100 ms per start).
PYTHON=/usr/bin/python3
MAILTOOL="$PYTHON $IT_DIR/mailtool.py"
SLUICE_CORPUS=${SLUICE_CORPUS:-$IT_DIR/../../../shared/corpus}
SLUICE_PLUGIN_DIR=${SLUICE_PLUGIN_DIR:-}
SL_PID=
PF_UP=
SINK_PID=
BL_PID=
MGR_PID=

it_log() { printf '%s [%s] %s\n' "$(date +%T)" "${IT_NAME:-it}" "$*"; }

it_init() {
    IT_NAME=$1
    [ "$(id -u)" = 0 ] || { echo "$IT_NAME: must run as root (Postfix)"; exit 1; }
    T=$(mktemp -d "/tmp/sluice-$IT_NAME.XXXXXX") || exit 1
    chmod 755 "$T"
    MAILDIR=$T/mail/box
    trap it_cleanup EXIT
    trap 'it_log "interrupted"; it_show_logs; exit 130' INT TERM
    # Our own deadline, below ctest's TIMEOUT: a killed script could not
    # stop the Postfix it started (postfix daemonizes out of our group).
    (
        # The sleep must not hold our stdout: ctest waits for the pipe
        # to close, and a killed watchdog leaves its sleep behind.
        sleep "${IT_TIMEOUT:-840}" </dev/null >/dev/null 2>&1
        echo "$IT_NAME: deadline of ${IT_TIMEOUT:-840}s reached"
        kill -TERM $$
        # bash runs its trap only once the foreground child is gone.
        for c in $(pgrep -P $$); do
            [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2>/dev/null
        done
    ) &
    IT_WATCHDOG=$!
}

it_cleanup() {
    local rc=$?
    [ -n "${IT_WATCHDOG:-}" ] && kill "$IT_WATCHDOG" 2>/dev/null
    sl_stop >/dev/null 2>&1
    bl_stop >/dev/null 2>&1
    mgr_stop >/dev/null 2>&1
    [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
    pf_stop >/dev/null 2>&1
    pg_stop >/dev/null 2>&1
    if [ "$rc" != 0 ] || [ -n "${IT_KEEP:-}" ]; then
        it_log "exit $rc; files kept in $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}

it_show_logs() {
    if [ -f "$T/sluiced.log" ]; then
        echo "===== sluiced log (last 150 lines of $T/sluiced.log) ====="
        tail -n 150 "$T/sluiced.log"
    fi
    if [ -f "$T/manager.log" ]; then
        echo "===== sluice-manager log (last 60 lines) ====="
        tail -n 60 "$T/manager.log"
    fi
    if [ -f "$T/blocklistd.log" ]; then
        echo "===== blocklistd log (last 40 lines) ====="
        tail -n 40 "$T/blocklistd.log"
    fi
    if [ -f "$T/pf/maillog" ]; then
        echo "===== postfix maillog (warnings, errors and last 60 lines) ====="
        grep -E 'warning|error|fatal|panic|status=(deferred|bounced)' \
            "$T/pf/maillog" | tail -n 60
        echo "----- tail -----"
        tail -n 60 "$T/pf/maillog"
    fi
}

it_fail() {
    echo "FAIL: $*"
    it_show_logs
    exit 1
}

# N distinct free ports, below the kernel's ephemeral range so outgoing
# connections (Postfix's smtp client...) cannot take them meanwhile.
it_ports() {
    $PYTHON - "$1" <<'EOF'
import os, random, socket, sys
lo = 32768
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    pass
want, got = int(sys.argv[1]), []
rnd = random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))
while len(got) < want:
    p = rnd.randrange(max(1024, lo - 12000), lo)
    if p in got:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, got)))
EOF
}

# Wait until something listens on 127.0.0.1:PORT.
it_wait_listen() {
    # it_wait_listen PORT [SECS [PID]]: 0 once PORT accepts; 1 on timeout
    # or as soon as PID (the daemon expected to listen) has exited.
    local port=$1 secs=${2:-20} pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# ------------------------------------------------------------------ Postfix

pf_setup() {
    local in=$1 filter=$2 reinj=$3 proto=${4:-lmtp}
    PF=$T/pf
    mkdir -p "$PF/queue" "$PF/data" "$T/mail"
    chown postfix:postfix "$PF/data"
    chown 65534:65534 "$T/mail"
    printf '@test.example box/\n' >"$PF/vmailbox"
    cat >"$PF/main.cf" <<EOF
# Private Postfix for sluice integration tests (generated by lib.sh).
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $T
myhostname = postfix.sluice.test
mydomain = sluice.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
virtual_mailbox_domains = test.example
virtual_mailbox_base = $T/mail
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
virtual_mailbox_limit = 0
message_size_limit = 104857600
# Leave the content alone: no header rewriting, no added headers, no MIME
# conversion, long lines passed as they are.
local_header_rewrite_clients =
always_add_missing_headers = no
disable_mime_output_conversion = yes
header_size_limit = 4194304
message_drop_headers =
smtp_line_length_limit = 0
lmtp_line_length_limit = 0
smtputf8_enable = no
append_dot_mydomain = no
# Test time: retry quickly, never warn, never wait for flow control.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maximal_queue_lifetime = 1d
bounce_queue_lifetime = 1d
delay_warning_time = 0h
in_flow_delay = 0
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
biff = no
EOF
    local filter_nexthop="[127.0.0.1]:$filter"
    cat >"$PF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$in inet n - n - - smtpd
  -o content_filter=sluice-filter:$filter_nexthop
  -o syslog_name=postfix/inbound
127.0.0.1:$reinj inet n - n - - smtpd
  -o syslog_name=postfix/reinject
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
sluice-filter unix - - n - 10 $proto
  -o syslog_name=postfix/sluice-filter
  -o ${proto}_send_xforward_command=yes
  -o ${proto}_line_length_limit=0
  -o disable_mime_output_conversion=yes
  -o ${proto}_generic_maps=
  -o max_use=20
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    PF_IN=$in PF_FILTER=$filter PF_REINJ=$reinj
}

# pf_use_milter MILTER_PORT: after pf_setup, the inbound smtpd hands mail
# to sluiced's milter ingress (smtpd_milters, protocol 6, tempfail when the
# filter is unavailable) instead of the content_filter; delivery is direct.
pf_use_milter() {
    local m=$1
    sed -i "s|^  -o content_filter=sluice-filter:.*|  -o content_filter=\\
  -o smtpd_milters=inet:127.0.0.1:$m\\
  -o milter_protocol=6\\
  -o milter_default_action=tempfail|" \
        "$PF/master.cf"
    grep -q "smtpd_milters=inet:127.0.0.1:$m" "$PF/master.cf" ||
        it_fail "pf_use_milter: master.cf not rewritten"
}

pf_start() {
    local out
    # postfix(1) reports to stderr only when it is a terminal: give it one.
    if ! out=$(script -qec "postfix -c '$PF' start" /dev/null 2>&1); then
        echo "$out"
        it_fail "postfix -c $PF start failed"
    fi
    PF_UP=1
    it_wait_listen "$PF_IN" 20 || it_fail "Postfix inbound smtpd not listening on $PF_IN"
    it_wait_listen "$PF_REINJ" 20 || it_fail "Postfix reinjection smtpd not listening on $PF_REINJ"
}

pf_stop() {
    [ -n "$PF_UP" ] || return 0
    postfix -c "$PF" stop >/dev/null 2>&1
    PF_UP=
}

pf_flush() { postqueue -c "$PF" -f >/dev/null 2>&1 || true; }

# Messages still in Postfix's queue (incoming, active, deferred, hold...).
pf_queue_count() {
    find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" \
        "$PF/queue/hold" "$PF/queue/maildrop" -type f 2>/dev/null | wc -l
}

# Wait until the queue is empty; flush now and then.  1 on timeout.
pf_wait_empty() {
    local secs=$1 start=$SECONDS n
    while :; do
        n=$(pf_queue_count)
        [ "$n" = 0 ] && return 0
        if ((SECONDS - start >= secs)); then
            it_log "queue still holds $n messages after ${secs}s"
            postqueue -c "$PF" -p 2>&1 | tail -n 20
            return 1
        fi
        if (((SECONDS - start) % 5 == 4)); then pf_flush; fi
        sleep 0.5
    done
}

maildir_count() {
    local n=0 d
    for d in "$MAILDIR/new" "$MAILDIR/cur"; do
        [ -d "$d" ] && n=$((n + $(find "$d" -type f | wc -l)))
    done
    echo "$n"
}

# ------------------------------------------------------------------ sluiced

# sl_conf DIR FILTERPORT REINJPORT [EXTRA_STAGES_FILE] [ENGINE_EXTRA]
sl_conf() {
    local dir=$1 filter=$2 reinj=$3 extra=${4:-} engine_extra=${5:-}
    mkdir -p "$dir" "$T/state"
    cat >"$dir/00-engine.conf" <<EOF
engine
workers ${SL_WORKERS:-2}
max_message_size 50M
log_level info
syslog no
shutdown_timeout 10s
$engine_extra
EOF
    cat >"$dir/10-smtp.conf" <<EOF
stage smtp
listen 127.0.0.1:$filter
idle_timeout ${SL_IDLE_TIMEOUT:-60s}
data_timeout 60s
EOF
    cat >"$dir/20-receive.conf" <<EOF
stage receive
EOF
    if [ -n "$extra" ]; then cp "$extra" "$dir/50-extra.conf"; fi
    cat >"$dir/90-deliver.conf" <<EOF
stage deliver
next_hop 127.0.0.1:$reinj
EOF
}

sl_start() {
    SL_CONF=$1
    [ -x "${SLUICED:-}" ] || it_fail "sluiced not found (SLUICED=${SLUICED:-unset})"
    "$SLUICED" -c "$SL_CONF" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" -u nobody \
        >>"$T/sluiced.log" 2>&1 &
    SL_PID=$!
    local port
    port=$(awk '$1=="listen"{split($2,a,":"); print a[2]; exit}' "$SL_CONF/10-smtp.conf")
    if ! it_wait_listen "$port" 30 "$SL_PID"; then
        it_fail "sluiced (pid $SL_PID) not listening on $port"
    fi
    kill -0 "$SL_PID" 2>/dev/null || it_fail "sluiced exited at start"
    # Listening is the master's doing; wait for every worker too, so a
    # test that counts workers does not count a start-up in progress.
    local want i
    want=$(awk '$1=="workers"{n=$2} END{print n+0}' "$SL_CONF"/*.conf)
    [ "$want" -gt 0 ] || want=$(nproc)
    for ((i = 0; i < 100; i++)); do
        [ "$(pgrep -P "$SL_PID" | wc -l)" -ge "$want" ] && return 0
        sleep 0.1
    done
    it_fail "sluiced started $(pgrep -P "$SL_PID" | wc -l) of $want workers"
}

# Stop sluiced and wait for it (and its workers) to be gone.
sl_stop() {
    [ -n "$SL_PID" ] || return 0
    local kids i
    kids=$(pgrep -P "$SL_PID" 2>/dev/null)
    kill -TERM "$SL_PID" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        kill -0 "$SL_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SL_PID" 2>/dev/null; then
        it_log "sluiced did not stop in 15s; SIGKILL"
        kill -KILL "$SL_PID" $kids 2>/dev/null
    fi
    wait "$SL_PID" 2>/dev/null
    SL_RC=$?
    for i in $kids; do kill -KILL "$i" 2>/dev/null; done
    SL_PID=
}

sl_reload() { kill -HUP "$SL_PID"; }

sl_workers() { pgrep -P "$SL_PID" 2>/dev/null | tr '\n' ' '; }

sl_ctl() {
    [ -x "${SLUICECTL:-}" ] || it_fail "sluicectl not found (SLUICECTL=${SLUICECTL:-unset})"
    "$SLUICECTL" -s "$T/state/control.sock" "$@"
}

# ------------------------------------------------------------------ checks

# check_maildir MANIFEST [mailtool check options...]: the added fields on
# the path Postfix -> sluiced -> Postfix -> virtual(8).
SL_PREFIX="Return-Path,X-Original-To,Delivered-To,Received,Received,X-Sluice-Status"
# Mail handed straight to sluiced (no inbound Postfix): one Received less.
SL_DIRECT_PREFIX="Return-Path,X-Original-To,Delivered-To,Received,X-Sluice-Status"
check_maildir() {
    local manifest=$1
    shift
    $MAILTOOL check --maildir "$MAILDIR" --prefix "${PREFIX:-$SL_PREFIX}" "$@" "$manifest"
}

# Fail on sanitizer reports in sluiced's log (ASan, LSan, UBSan).
sl_check_sanitizers() {
    if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|UndefinedBehaviorSanitizer' \
        "$T/sluiced.log" >/dev/null 2>&1; then
        grep -nE -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|UndefinedBehaviorSanitizer' \
            "$T/sluiced.log" | head -n 80
        it_fail "sanitizer report in sluiced's log"
    fi
}

# Stop sluiced, check it exited 0 and its log is clean.
sl_finish() {
    sl_stop
    [ "${SL_RC:-0}" = 0 ] || it_fail "sluiced exited with status $SL_RC"
    sl_check_sanitizers
}

# The corpus as a manifest: it_plan OUT [mailtool plan options...]
it_plan() {
    local out=$1
    shift
    [ -d "$SLUICE_CORPUS/ham" ] || it_fail "no corpus at $SLUICE_CORPUS (ham/, spam/)"
    $MAILTOOL plan --out "$out" "$@" "$SLUICE_CORPUS/ham" "$SLUICE_CORPUS/spam" ||
        it_fail "cannot plan from $SLUICE_CORPUS"
}

# ------------------------------------------------------------------ blocklistd

# bl_start PORT SOURCE...: sluice-blocklistd on 127.0.0.1:PORT (as nobody:
# the sources must be readable by it), waits until it listens.
bl_start() {
    local port=$1
    shift
    [ -x "${SLUICE_BLOCKLISTD:-}" ] ||
        it_fail "sluice-blocklistd not found (SLUICE_BLOCKLISTD=${SLUICE_BLOCKLISTD:-unset})"
    "$SLUICE_BLOCKLISTD" -n -u nobody -l "127.0.0.1:$port" "$@" \
        >>"$T/blocklistd.log" 2>&1 &
    BL_PID=$!
    it_wait_listen "$port" 20 "$BL_PID" ||
        it_fail "sluice-blocklistd (pid $BL_PID) not listening on $port"
}

# Stop it; BL_RC is its exit status.
bl_stop() {
    [ -n "$BL_PID" ] || return 0
    kill -CONT "$BL_PID" 2>/dev/null
    kill -TERM "$BL_PID" 2>/dev/null
    wait "$BL_PID" 2>/dev/null
    BL_RC=$?
    BL_PID=
}

# ------------------------------------------------------------------ PostgreSQL

PG_UP=
# pg_start: the private instance sluiced and the tools use by default
# (tools/sluice-pg in $T/state, run as nobody, schema migrated).
pg_start() {
    local src=${SLUICE_SOURCE_DIR:-$(cd "$IT_DIR/../.." && pwd)}
    PG_CTL=$src/tools/sluice-pg
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
    export SLUICE_PG_NOSYNC=1 SLUICECTL
    mkdir -p "$T/state" && chown nobody: "$T/state"
    "$PG_CTL" -q -u nobody start "$T/state" >"$T/pg.log" 2>&1 ||
        { cat "$T/pg.log"; it_fail "sluice-pg start failed"; }
    PG_UP=1
    DSN=$("$PG_CTL" dsn "$T/state")
}

pg_stop() {
    [ -n "$PG_UP" ] || return 0
    "$PG_CTL" -q stop "$T/state" >/dev/null 2>&1
    PG_UP=
}

# ------------------------------------------------------------------ manager accounts

# mgr_admin NAME admin|auditor: the account's random password on stdout.
mgr_admin() {
    local pass
    pass="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$pass" | "$SLUICECTL" -d "$DSN" admin add "$1" --role "$2" \
        >>"$T/admin.log" 2>&1 ||
        { cat "$T/admin.log"; it_fail "sluicectl admin add $1 failed"; }
    echo "$pass"
}

# ------------------------------------------------------------------ manager

# mgr_start CONFDIR PORT [ARGS...]: sluice-manager on 127.0.0.1:PORT with
# the state directory $T/state (its private PostgreSQL and the engine's
# control socket), as $MGR_USER (default nobody; root keeps root, for a
# test that needs the root-only control socket); waits until it listens.
mgr_start() {
    local conf=$1 port=$2
    shift 2
    [ -x "${SLUICE_MANAGER:-}" ] ||
        it_fail "sluice-manager not found (SLUICE_MANAGER=${SLUICE_MANAGER:-unset})"
    MGR_PORT=$port
    MGR_URL=https://127.0.0.1:$port
    "$SLUICE_MANAGER" -n -c "$conf" -S "$T/state" -l "127.0.0.1:$port" \
        -u "${MGR_USER:-nobody}" "$@" >>"$T/manager.log" 2>&1 &
    MGR_PID=$!
    it_wait_listen "$port" 60 "$MGR_PID" ||
        it_fail "sluice-manager (pid $MGR_PID) not listening on $port"
}

# Stop it; MGR_RC is its exit status (0 after SIGTERM).
mgr_stop() {
    [ -n "$MGR_PID" ] || return 0
    kill -TERM "$MGR_PID" 2>/dev/null
    wait "$MGR_PID" 2>/dev/null
    MGR_RC=$?
    MGR_PID=
}

# mgr_curl PATH [curl args...]: HTTPS to the manager (self-signed: -k).
mgr_curl() {
    local path=$1
    shift
    curl -sk --max-time 30 "$@" "$MGR_URL$path"
}
