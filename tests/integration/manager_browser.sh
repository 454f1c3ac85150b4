#!/usr/bin/env bash
# manager_browser.sh - sluice-manager's pages in a real headless Chromium
# (tests/browser/run.mjs, playwright-core) against the real thing: a private
# PostgreSQL (tools/sluice-pg), a real Postfix in front of and behind
# sluiced (smtp, receive, blocklist, verdict, heuristic, policy,
# quarantine, deliver; Postfix's virtual(8) delivery to a Maildir is the
# sink), sluice-blocklistd, and
# sluice-manager on a free loopback port with a generated self-signed
# certificate and accounts made by `sluicectl admin add`.
#
# The browser steps (see run.mjs): log in; every page screenshotted;
# disable the heuristic stage in the Chain page -> conf.d and the control
# socket say disabled and the next message through Postfix has no
# X-Sluice-Score; enable it -> the header is back; a message the default
# policy quarantines (the `verdict` test stage's `X-Sluice-Test: score=40`
# gives it a score above quarantine_score 12) is found, shown as text,
# released in the page and found in the Maildir; two more bulk-deleted;
# a list entry added and removed; a valid policy saved as a new version,
# then one with a syntax error refused with line and column, the versions
# unchanged; the dashboard shows the mail; an auditor sees read-only
# pages; logout.  The last line of run.mjs is "N passed, N failed".
#
# Screenshots: $SHOTS_DIR (from ctest: BUILD_DIR/Testing/manager_browser/).
# Needs: node, tests/browser/node_modules (build.sh test runs `npm ci`),
# /usr/bin/chromium.  Missing pieces are a failure, never a skip.
. "$(dirname "$0")/lib.sh"
it_init manager_browser
SRC=${SLUICE_SOURCE_DIR:-$(cd "$IT_DIR/../.." && pwd)}
PG=$SRC/tools/sluice-pg
BROWSER_DIR=$SRC/tests/browser
SHOTS_DIR=${SHOTS_DIR:-${SLUICE_BUILD_DIR:-$T}/Testing/manager_browser}
export SLUICE_PG_NOSYNC=1 SLUICECTL
MGR_PID=

mb_cleanup() {
    local rc=$?
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        wait "$MGR_PID" 2>/dev/null
    fi
    "$PG" -q stop "$T/state" >/dev/null 2>&1
    if [ "$rc" != 0 ] && [ -f "$T/manager.log" ]; then
        echo "===== sluice-manager log (last 80 lines) ====="
        tail -n 80 "$T/manager.log"
    fi
    (exit "$rc")
    it_cleanup
}
trap mb_cleanup EXIT

# ---------------------------------------------------------------- tools
[ -x "${SLUICE_MANAGER:-}" ] || it_fail "sluice-manager not found (SLUICE_MANAGER=${SLUICE_MANAGER:-unset})"
[ -x "${SLUICECTL:-}" ] || it_fail "sluicectl not found"
command -v node >/dev/null || it_fail "node missing (build.sh test installs nodejs)"
[ -x /usr/bin/chromium ] || it_fail "/usr/bin/chromium missing (build.sh test installs chromium)"
[ -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] ||
    it_fail "playwright-core missing: run 'npm ci' in $BROWSER_DIR (build.sh test does)"

# ---------------------------------------------------------------- PostgreSQL
mkdir -p "$T/state" && chown nobody: "$T/state"
"$PG" -q -u nobody start "$T/state" >"$T/pg.log" 2>&1 || { cat "$T/pg.log"; it_fail "sluice-pg start failed"; }
DSN=$("$PG" dsn "$T/state")

# ---------------------------------------------------------------- Postfix, sluiced
read -r IN FILTER REINJ MGR BL <<<"$(it_ports 5)"
# sluice-blocklistd (the Status page checks it) with a list that does not
# hold 127.0.0.1
mkdir -p "$T/lists"
printf '192.0.2.0/24\n' >"$T/lists/test.list"
chmod 755 "$T/lists" && chmod 644 "$T/lists/test.list"
bl_start "$BL" "$T/lists"
# A small rule file: the stage and its headers are the same, and each
# reload (every enable/disable) compiles in well under a second instead of
# rules/default.rules' 20 s under ASan.
cat >"$T/mini.rules" <<'EOF'
header SUBJ_PILLS   1.5 "Subject sells medication" Subject =~ /\bpills\b/i
body   BODY_BUY_NOW 0.5 "Buy now" /\bbuy now\b/i
EOF
cat >"$T/extra.conf" <<EOF
stage blocklist
server 127.0.0.1:$BL
stage verdict
stage heuristic
rules $T/mini.rules
add_headers yes
stage policy
list_refresh 1s
stage quarantine
query_timeout 5s
connect_timeout 2s
timeout 10s
EOF
pf_setup "$IN" "$FILTER" "$REINJ" lmtp
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
pf_start
sl_start "$T/conf"

# ---------------------------------------------------------------- sluice-manager
cat >"$T/conf/05-manager.conf" <<EOF
manager
listen 127.0.0.1:$MGR
control_socket $T/state/control.sock
www_dir $SRC/tools/manager/www
user root
EOF
ADMIN_PASS="adm-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
AUDIT_PASS="aud-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$ADMIN_PASS" | "$SLUICECTL" -d "$DSN" admin add browser-admin --role admin \
    >"$T/admin.log" 2>&1 || { cat "$T/admin.log"; it_fail "sluicectl admin add (admin) failed"; }
printf '%s\n' "$AUDIT_PASS" | "$SLUICECTL" -d "$DSN" admin add browser-auditor --role auditor \
    >>"$T/admin.log" 2>&1 || { cat "$T/admin.log"; it_fail "sluicectl admin add (auditor) failed"; }

mkdir -p "$T/mgrstate"
# the DSN on the command line (it holds quotes); release finds sluicectl
# through $SLUICECTL
SLUICECTL=$SLUICECTL "$SLUICE_MANAGER" -n -c "$T/conf" -S "$T/mgrstate" -d "$DSN" \
    >"$T/manager.log" 2>&1 &
MGR_PID=$!
it_wait_listen "$MGR" 30 "$MGR_PID" || it_fail "sluice-manager (pid $MGR_PID) not listening on $MGR"

# ---------------------------------------------------------------- the browser
rm -rf "$SHOTS_DIR"
mkdir -p "$SHOTS_DIR"
it_log "browser tests; screenshots in $SHOTS_DIR"
(
    cd "$BROWSER_DIR" &&
        MGR_URL="https://127.0.0.1:$MGR" MGR_USER=browser-admin MGR_PASS="$ADMIN_PASS" \
            AUDIT_USER=browser-auditor AUDIT_PASS="$AUDIT_PASS" \
            SMTP_PORT="$IN" MAILDIR="$MAILDIR" CONF_DIR="$T/conf" \
            SLUICECTL="$SLUICECTL" CONTROL_SOCKET="$T/state/control.sock" \
            STAGE=heuristic MARK=X-Sluice-Score SHOTS_DIR="$SHOTS_DIR" \
            timeout 360 node run.mjs
) 2>&1 | tee "$T/browser.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || it_fail "browser tests failed (exit $rc); screenshots in $SHOTS_DIR"
ls "$SHOTS_DIR"/*.png >/dev/null 2>&1 || it_fail "no screenshot in $SHOTS_DIR"

# the manager's own log: no sanitizer report
if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/manager.log"; then
    it_fail "sanitizer report in sluice-manager's log"
fi
sl_finish
it_log "PASS"
