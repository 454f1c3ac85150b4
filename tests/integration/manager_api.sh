#!/usr/bin/env bash
# manager_api.sh - sluice-manager's security over real HTTPS (curl,
# openssl s_client): a private PostgreSQL (tools/sluice-pg), sluiced and
# sluice-manager (as nobody) on free loopback ports, accounts made with
# `sluicectl admin`.
#
# Asserts: the engine accepts conf.d's manager section; configuration
# errors with file:line, a missing user refused; TLS only (plain
# HTTP gets no HTTP answer, TLS 1.1 refused, 1.2 accepted); the generated
# certificate (SAN, key mode and owner); privileges dropped; every /api
# route but login answers 401 without a session; security headers on
# every kind of response, no-store under /api; the session cookie's flags;
# CSRF refused when missing or wrong; auditors refused on state changes
# (403); API tokens work with no CSRF, bad ones are 401; logout and
# `admin remove` end sessions; lockout after 5 bad passwords (429 also for
# the right password, Retry-After), `admin unlock`; address rate limit;
# body, header and URL limits (413, 431, 414); keep-alive; static files
# with content types and no traversal (../, encoded, symlinks, dot files);
# a clean exit without sanitizer reports.
set -uo pipefail
. "${IT_DIR:-$(dirname "$0")}/lib.sh"

it_init manager_api
PG=$SLUICE_SOURCE_DIR/tools/sluice-pg
export SLUICE_PG_NOSYNC=1 SLUICECTL
[ -x "${SLUICECTL:-}" ] || it_fail "sluicectl not found"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -n 1)
m_cleanup() {
    local rc=$?
    mgr_stop
    "$PG" -q stop "$T/state" >/dev/null 2>&1
    (exit "$rc")
    it_cleanup
}
trap m_cleanup EXIT

read -r MPORT FPORT RPORT <<<"$(it_ports 3)"
CTL() { "$SLUICECTL" -S "$T/state" "$@"; }
pass() { it_log "ok: $*"; }
# code METHOD PATH [curl args]: the HTTP status only
code() {
    local m=$1 p=$2
    shift 2
    mgr_curl "$p" -o /dev/null -w '%{http_code}' -X "$m" "$@"
}
json_get() { $PYTHON -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$1"; }

it_log "private PostgreSQL (as nobody) and the schema"
mkdir -p "$T/state"
chown nobody: "$T/state"
"$PG" -q -u nobody start "$T/state" || it_fail "sluice-pg start failed"

it_log "accounts: alice (admin), bob (auditor), carol (admin)"
printf 'alice-password-1\n' | CTL admin add alice --role admin >/dev/null || it_fail "admin add alice"
printf 'bob-password-12\n' | CTL admin add bob --role auditor >/dev/null || it_fail "admin add bob"
printf 'carol-password-1\n' | CTL admin add carol --role admin >/dev/null || it_fail "admin add carol"
printf 'x-password-99\n' | CTL admin add alice --role admin >/dev/null 2>&1 &&
    it_fail "admin add accepted an existing user"
printf 'short\n' | CTL admin add dave --role admin >/dev/null 2>&1 &&
    it_fail "admin add accepted a 5-character password"
CTL admin add eve --role root </dev/null >/dev/null 2>&1
[ $? = 2 ] || it_fail "admin add --role root is not a usage error"
CTL admin list | grep -q '^bob  *auditor' || it_fail "admin list: $(CTL admin list)"
hash=$("$BIN/psql" -X -q -At -d "$("$PG" dsn "$T/state")" -c "SELECT pw_hash FROM admin_user WHERE name='alice'")
case $hash in
'$argon2id$v=19$m=65536,t=3,p=1$'*) pass "argon2id hash stored" ;;
*) it_fail "stored hash is not argon2id: '$hash'" ;;
esac
TOKEN=$(CTL admin token alice ci 2>/dev/null) || it_fail "admin token"
[[ $TOKEN =~ ^[0-9a-f]{64}$ ]] || it_fail "token format: $TOKEN"
BTOKEN=$(CTL admin token bob 2>/dev/null) || it_fail "admin token bob"
CTL --json admin list | grep -q '"tokens": 1' || it_fail "token not counted"

it_log "sluiced with the manager section in its conf.d"
sl_conf "$T/conf" "$FPORT" "$RPORT"
cat >"$T/conf/05-manager.conf" <<EOF
manager
listen 127.0.0.1:$MPORT
login_max_failures 5
login_lockout 60s
session_timeout 10m
EOF
sl_start "$T/conf"
pass "sluiced accepts the manager section"

it_log "configuration errors, a missing user"
mkdir -p "$T/badconf"
printf 'manager\nlisten 127.0.0.1:1\nlogin_max_failure 3\n' >"$T/badconf/05-manager.conf"
"$SLUICE_MANAGER" -t -c "$T/badconf" >"$T/bad.out" 2>&1 && it_fail "-t accepted an unknown key"
grep -q '05-manager.conf:3: .*login_max_failure' "$T/bad.out" || it_fail "no file:line: $(cat "$T/bad.out")"
"$SLUICE_MANAGER" -t -c "$T/conf" >/dev/null 2>&1 || it_fail "-t refused the test configuration"
"$SLUICE_MANAGER" -c "$T/conf" -S "$T/state" -l "127.0.0.1:$MPORT" -u no-such-user-7 \
    >"$T/nouser.out" 2>&1 && it_fail "started with a missing user"
grep -q "user 'no-such-user-7' does not exist" "$T/nouser.out" || it_fail "missing user: $(cat "$T/nouser.out")"
pass "unknown key named with file:line; missing user refused"

mkdir -p "$T/www/sub"
echo '<!doctype html><title>t</title>' >"$T/www/index.html"
echo 'console.log(1);' >"$T/www/app.js"
echo 'body{}' >"$T/www/sub/x.css"
echo 'TOPSECRET' >"$T/secret.txt"
echo 'DOTSECRET' >"$T/www/.hidden"
ln -s ../secret.txt "$T/www/link.txt"
mgr_start "$T/conf" "$MPORT" -w "$T/www"

it_log "privileges, certificate"
uid=$(awk '/^Uid:/{print $2}' "/proc/$MGR_PID/status")
[ "$uid" = "$(id -u nobody)" ] || it_fail "manager runs as uid $uid, not nobody"
[ "$(stat -c '%a %U' "$T/state/manager/manager.key")" = "600 nobody" ] ||
    it_fail "key: $(stat -c '%a %U' "$T/state/manager/manager.key")"
san=$(openssl x509 -in "$T/state/manager/manager.crt" -noout -ext subjectAltName)
for n in DNS:localhost 'IP Address:127.0.0.1'; do
    grep -q "$n" <<<"$san" || it_fail "certificate SAN lacks $n: $san"
done
pass "runs as nobody; certificate with SAN, key 0600"

it_log "TLS only"
reply=$(exec 3<>"/dev/tcp/127.0.0.1/$MPORT" &&
    printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3 && timeout 5 cat <&3 2>/dev/null | head -c 200 | tr -d '\0')
if grep -q 'HTTP/' <<<"$reply"; then it_fail "plain HTTP got an HTTP answer: $reply"; fi
curl -s --max-time 10 "http://127.0.0.1:$MPORT/" -o /dev/null && it_fail "curl over plain HTTP succeeded"
echo | openssl s_client -connect "127.0.0.1:$MPORT" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    >"$T/tls11.out" 2>&1 && it_fail "TLS 1.1 handshake accepted"
echo | openssl s_client -connect "127.0.0.1:$MPORT" -tls1_2 >"$T/tls12.out" 2>&1 ||
    it_fail "TLS 1.2 handshake refused: $(tail -5 "$T/tls12.out")"
echo | openssl s_client -connect "127.0.0.1:$MPORT" -tls1_3 >"$T/tls13.out" 2>&1 ||
    it_fail "TLS 1.3 handshake refused"
pass "plain HTTP unanswered, TLS 1.1 refused, 1.2 and 1.3 accepted"

it_log "no session: 401 everywhere but login"
ROUTES="GET:/api/session POST:/api/logout GET:/api/status GET:/api/stages
POST:/api/stages/receive/enable POST:/api/stages/receive/disable
POST:/api/stages/receive/move GET:/api/dashboard GET:/api/quarantine
GET:/api/quarantine/1 POST:/api/quarantine/1/release
POST:/api/quarantine/1/delete POST:/api/quarantine/1/allow-release
POST:/api/quarantine/bulk GET:/api/lists POST:/api/lists DELETE:/api/lists/1
GET:/api/policy GET:/api/policy/versions/1 POST:/api/policy GET:/api/nonexistent"
for r in $ROUTES; do
    c=$(code "${r%%:*}" "${r#*:}" -H 'Content-Type: application/json' -d '{}')
    [ "$c" = 401 ] || it_fail "${r%%:*} ${r#*:} without a session: $c, not 401"
    c=$(code "${r%%:*}" "${r#*:}" -b "sluice_session=$(printf '%064d' 7)")
    [ "$c" = 401 ] || it_fail "${r%%:*} ${r#*:} with a made-up session: $c"
done
c=$(code GET /api/session -H "Authorization: Bearer $(printf '%064d' 1)")
[ "$c" = 401 ] || it_fail "unknown bearer token: $c"
c=$(code GET /api/session -H "Authorization: Basic YWxpY2U6eA==")
[ "$c" = 401 ] || it_fail "basic auth: $c"
pass "every /api route refuses without a session"

it_log "security headers"
check_headers() {
    local what=$1 file=$2 h
    for h in 'Strict-Transport-Security: max-age=' \
        "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" \
        'X-Content-Type-Options: nosniff' 'Referrer-Policy: no-referrer' \
        'X-Frame-Options: DENY'; do
        grep -qiF "$h" "$file" || it_fail "$what: no '$h' in $(cat "$file")"
    done
}
mgr_curl / -D "$T/h1" -o /dev/null
check_headers "static file" "$T/h1"
grep -qi '^Content-Type: text/html' "$T/h1" || it_fail "index.html type"
mgr_curl /api/status -D "$T/h2" -o /dev/null
check_headers "401" "$T/h2"
grep -qi '^Cache-Control: no-store' "$T/h2" || it_fail "no Cache-Control: no-store on /api"
mgr_curl /nothing-here -D "$T/h3" -o /dev/null
check_headers "404" "$T/h3"
pass "headers on 200, 401, 404"

it_log "static files"
mgr_curl /app.js -D "$T/h4" -o "$T/b4"
grep -qi '^Content-Type: text/javascript' "$T/h4" || it_fail "app.js type: $(cat "$T/h4")"
mgr_curl /sub/x.css -D "$T/h5" -o /dev/null
grep -qi '^Content-Type: text/css' "$T/h5" || it_fail "css type"
c=$(code GET /sub/)
[ "$c" = 404 ] || it_fail "/sub/ without index.html: $c"
for p in /../secret.txt /%2e%2e/secret.txt /%2E%2E%2Fsecret.txt /..%2fsecret.txt \
    /sub/..%2f..%2fsecret.txt /sub/%2e%2e/%2e%2e/secret.txt /link.txt /.hidden \
    /%2ehidden '/sub/..\..\secret.txt' /sub/%00x /%ZZ; do
    body=$(mgr_curl "$p" --path-as-is -w ' %{http_code}')
    case $body in
    *SECRET*) it_fail "$p served a file outside www or a dot file: $body" ;;
    *' 200') it_fail "$p: 200" ;;
    esac
done
c=$(code POST /index.html -d x)
[ "$c" = 405 ] || it_fail "POST to a static file: $c"
pass "content types; traversal, encoded traversal, symlinks, dot files refused"

it_log "login, cookie flags, session"
c=$(code POST /api/login -d '{"user":"alice","password":"alice-password-1"}')
[ "$c" = 415 ] || it_fail "login without a JSON content type: $c"
login() { # login JAR USER PASSWORD -> body in $T/login.json, headers $T/login.h
    mgr_curl /api/login -c "$1" -D "$T/login.h" -o "$T/login.json" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d "{\"user\":\"$2\",\"password\":\"$3\"}"
}
c=$(login "$T/alice" alice alice-password-1)
[ "$c" = 200 ] || it_fail "alice login: $c $(cat "$T/login.json")"
ck=$(grep -i '^Set-Cookie:' "$T/login.h")
for f in 'sluice_session=' 'Secure' 'HttpOnly' 'SameSite=Strict' 'Path=/'; do
    grep -qi "$f" <<<"$ck" || it_fail "cookie lacks $f: $ck"
done
CSRF=$(json_get csrf <"$T/login.json")
[[ $CSRF =~ ^[0-9a-f]{64}$ ]] || it_fail "csrf: $CSRF"
[ "$(json_get role <"$T/login.json")" = admin ] || it_fail "role: $(cat "$T/login.json")"
mgr_curl /api/session -b "$T/alice" >"$T/s.json"
[ "$(json_get user <"$T/s.json")" = alice ] || it_fail "session: $(cat "$T/s.json")"
[ "$(json_get csrf <"$T/s.json")" = "$CSRF" ] || it_fail "session csrf differs"
pass "login 200, cookie Secure HttpOnly SameSite=Strict, session"

it_log "keep-alive: two requests, one connection"
n=$(curl -sk -b "$T/alice" -o /dev/null -o /dev/null -w '%{num_connects}\n' \
    "$MGR_URL/api/session" "$MGR_URL/api/session" | tr '\n' ' ')
[ "$n" = "1 0 " ] || it_fail "connections per request: $n"

it_log "CSRF"
c=$(code POST /api/stages/receive/disable -b "$T/alice")
[ "$c" = 403 ] || it_fail "state change without X-CSRF-Token: $c"
c=$(code POST /api/stages/receive/disable -b "$T/alice" -H "X-CSRF-Token: $(printf '%064d' 0)")
[ "$c" = 403 ] || it_fail "state change with a wrong X-CSRF-Token: $c"
c=$(code DELETE /api/lists/1 -b "$T/alice" -H "X-CSRF-Token: ${CSRF:0:63}")
[ "$c" = 403 ] || it_fail "DELETE with a truncated X-CSRF-Token: $c"
c=$(code POST /api/logout -b "$T/alice")
[ "$c" = 403 ] || it_fail "logout without X-CSRF-Token: $c"
c=$(code POST /api/nonexistent -b "$T/alice" -H "X-CSRF-Token: $CSRF")
[ "$c" = 404 ] || it_fail "unknown route with the right token: $c"
pass "state changes without the right X-CSRF-Token: 403"

it_log "auditor"
c=$(login "$T/bob" bob bob-password-12)
[ "$c" = 200 ] || it_fail "bob login: $c"
BCSRF=$(json_get csrf <"$T/login.json")
[ "$(json_get role <"$T/login.json")" = auditor ] || it_fail "bob's role"
for r in POST:/api/stages/receive/disable POST:/api/quarantine/1/release \
    DELETE:/api/lists/1 POST:/api/policy POST:/api/lists; do
    c=$(code "${r%%:*}" "${r#*:}" -b "$T/bob" -H "X-CSRF-Token: $BCSRF" \
        -H 'Content-Type: application/json' -d '{}')
    [ "$c" = 403 ] || it_fail "auditor ${r%%:*} ${r#*:}: $c, not 403"
done
c=$(code POST /api/stages/receive/disable -H "Authorization: Bearer $BTOKEN")
[ "$c" = 403 ] || it_fail "auditor's token on a state change: $c"
c=$(code GET /api/session -b "$T/bob")
[ "$c" = 200 ] || it_fail "auditor GET: $c"
pass "auditor refused on state changes (403), may read"

it_log "API token"
mgr_curl /api/session -H "Authorization: Bearer $TOKEN" >"$T/t.json"
[ "$(json_get user <"$T/t.json")" = alice ] || it_fail "token session: $(cat "$T/t.json")"
c=$(code POST /api/logout -H "Authorization: Bearer $TOKEN")
[ "$c" = 200 ] || it_fail "state change by token without CSRF: $c"
c=$(code GET /api/session -H "Authorization: Bearer ${TOKEN%?}0")
[ "$c" = 401 ] || [ "${TOKEN: -1}" = 0 ] || it_fail "altered token: $c"
pass "bearer token works without CSRF"

it_log "logout ends the session"
c=$(code POST /api/logout -b "$T/alice" -H "X-CSRF-Token: $CSRF")
[ "$c" = 200 ] || it_fail "logout: $c"
c=$(code GET /api/session -b "$T/alice")
[ "$c" = 401 ] || it_fail "session after logout: $c"
pass "logout"

it_log "lockout after 5 bad passwords"
for i in 1 2 3 4 5; do
    c=$(login "$T/carol" carol "wrong-password-$i")
    [ "$c" = 401 ] || it_fail "bad password $i: $c"
done
c=$(login "$T/carol" carol carol-password-1)
[ "$c" = 429 ] || it_fail "right password on a locked account: $c"
ra=$(json_get retry_after <"$T/login.json")
[ "$ra" -ge 1 ] && [ "$ra" -le 60 ] || it_fail "retry_after: $ra"
grep -qi '^Retry-After: ' "$T/login.h" || it_fail "no Retry-After header"
CTL --json admin list | $PYTHON -c '
import json,sys
u={x["name"]:x for x in json.load(sys.stdin)["users"]}
assert u["carol"]["locked"] and u["carol"]["failed"]==5, u["carol"]
assert not u["alice"]["locked"]' || it_fail "admin list does not show carol locked"
CTL admin unlock carol >/dev/null || it_fail "admin unlock"
c=$(login "$T/carol" carol carol-password-1)
[ "$c" = 200 ] || it_fail "carol after unlock: $c"
pass "5 failures lock (429 with the right password too); unlock works"

it_log "admin remove ends that account's sessions; passwd"
c=$(login "$T/alice" alice alice-password-1)
[ "$c" = 200 ] || it_fail "alice again: $c"
CTL admin remove alice >/dev/null || it_fail "admin remove"
c=$(code GET /api/session -b "$T/alice")
[ "$c" = 401 ] || it_fail "removed account's session: $c"
c=$(code GET /api/session -H "Authorization: Bearer $TOKEN")
[ "$c" = 401 ] || it_fail "removed account's token: $c"
printf 'bob-new-password\n' | CTL admin passwd bob >/dev/null || it_fail "admin passwd"
c=$(login "$T/bob2" bob bob-password-12)
[ "$c" = 401 ] || it_fail "old password after passwd: $c"
c=$(login "$T/bob2" bob bob-new-password)
[ "$c" = 200 ] || it_fail "new password: $c"
pass "remove, passwd"

it_log "limits"
head -c 1100000 /dev/zero | tr '\0' a >"$T/big"
c=$(code POST /api/login -H 'Content-Type: application/json' --data-binary @"$T/big")
[ "$c" = 413 ] || it_fail "1.1 MB body: $c"
c=$(code GET /api/session -H "X-Filler: $(head -c 20000 /dev/zero | tr '\0' b)")
[ "$c" = 431 ] || it_fail "20 kB header: $c"
c=$(code GET "/$(head -c 5000 /dev/zero | tr '\0' c)")
[ "$c" = 414 ] || [ "$c" = 431 ] || it_fail "5 kB URL: $c"
c=$(code GET /api/session -H "X-CSRF-Token: a" -H "X-CSRF-Token: b" -b "$T/carol")
[ "$c" = 400 ] || it_fail "two X-CSRF-Token headers: $c"
pass "413, 431, 414, duplicate security header 400"

it_log "address rate limit (4 x 5 failures)"
for i in $(seq 1 20); do login "$T/x" "nosuch$i" whatever-pw >/dev/null; done
c=$(login "$T/bob3" bob bob-new-password)
[ "$c" = 429 ] || it_fail "login from a rate-limited address: $c"
grep -q 'too many failed logins from this address' "$T/login.json" || it_fail "429 reason: $(cat "$T/login.json")"
pass "address limited after 20 failures"

grep -q 'audit: user=carol addr=127.0.0.1: login ok' "$T/manager.log" || it_fail "no audit line for carol's login"
grep -q "account 'carol' locked" "$T/manager.log" || it_fail "no audit line for the lockout"
grep -q 'alice-password-1' "$T/manager.log" && it_fail "a password in the log"

mgr_stop
[ "$MGR_RC" = 0 ] || it_fail "sluice-manager exited with $MGR_RC"
if grep -nE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/manager.log"; then
    it_fail "sanitizer report in the manager's log"
fi
sl_finish
it_log "PASS"
