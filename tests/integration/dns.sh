#!/usr/bin/env bash
# dns.sh - the dns stage against a real rbldnsd, a DNS server that never
# answers and one that answers SERVFAIL.  Mail goes straight to sluiced's
# ingress (dns_tool.py send, with XFORWARD) and on to a smtp-sink; the
# findings are read from sluiced's per-message log line (symbols=).
#
#  1. rbldnsd serves bl.test (IPv4 + IPv6), rhs.test, uri.test, sxl.test:
#     a listed client IP, relay IP in Received, IPv6 relay, envelope
#     sender, From: and HELO domains, URL domain, URL hash, attachment
#     hash each give their symbol; a trusted (10/8) relay, a listing with a
#     return code no zone counts, and clean mail give none.
#  2. dns_servers -> a black hole, one worker, deadline 3s: the message
#     still completes (250) at the deadline with *_UNAVAILABLE (score 0),
#     while a second message with no DNS work, sent meanwhile on another
#     connection to the same worker, completes at once.
#  3. dns_servers -> a SERVFAIL server: *_UNAVAILABLE at once, delivered.
. "$(dirname "$0")/lib.sh"
IT_TIMEOUT=${IT_TIMEOUT:-150}
it_init dns
DNS_TOOL="$PYTHON $IT_DIR/dns_tool.py"
BG_PIDS=()
dns_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    it_cleanup
}
trap dns_cleanup EXIT

command -v rbldnsd >/dev/null || it_fail "rbldnsd missing (Debian package rbldnsd)"
command -v smtp-sink >/dev/null || it_fail "smtp-sink missing (Debian package postfix)"
read -r FILTER SINK <<<"$(it_ports 2)"
# UDP ports for the three DNS servers (it_ports checks TCP; good enough
# on loopback, and each server fails loudly if its port is taken).
read -r DNS_OK DNS_HOLE DNS_FAIL <<<"$(it_ports 3)"

# ------------------------------------------------------------ the zones
Z=$T/zones
mkdir -p "$Z"
cat >"$T/attach.txt" <<'EOF'
EVIL-ATTACHMENT-PAYLOAD
EOF
URL_HASH=$($DNS_TOOL hash --alg sha1 --text "http://hashed.example/promo")
FILE_HASH=$($DNS_TOOL hash --alg sha256 --file "$T/attach.txt")
cat >"$Z/bl4" <<'EOF'
:127.0.0.2:Listed
192.0.2.99
198.51.100.77 :127.0.0.4:relay
10.1.2.3 :127.0.0.6:trusted relay
192.0.2.98 :127.0.0.9:a code no zone counts
EOF
cat >"$Z/bl6" <<'EOF'
2001:db8::99/128 :127.0.0.5:v6
EOF
cat >"$Z/rhs" <<'EOF'
:127.0.0.2:RHS listed
spammer.example
fromspam.example
helo-spam.example
EOF
cat >"$Z/uri" <<'EOF'
:127.0.0.2:URI listed
badsite.example
EOF
cat >"$Z/sxl" <<EOF
:127.0.0.2:hash listed
$URL_HASH
$FILE_HASH
EOF
chmod 755 "$Z"
chmod 644 "$Z"/*
rbldnsd -n -u nobody -b "127.0.0.1/$DNS_OK" -w "$Z" -t 300 \
    bl.test:ip4set:bl4 bl.test:ip6trie:bl6 rhs.test:dnset:rhs \
    uri.test:dnset:uri sxl.test:dnset:sxl >"$T/rbldnsd.log" 2>&1 &
BG_PIDS+=($!)
$DNS_TOOL blackhole --port "$DNS_HOLE" >"$T/blackhole.log" 2>&1 &
BG_PIDS+=($!)
$DNS_TOOL servfail --port "$DNS_FAIL" >"$T/servfail.log" 2>&1 &
BG_PIDS+=($!)
smtp-sink -u nobody 127.0.0.1:"$SINK" 100 >/dev/null 2>&1 &
SINK_PID=$!
it_wait_listen "$SINK" 10 "$SINK_PID" || it_fail "smtp-sink not listening"
sleep 0.3
for p in "${BG_PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || { cat "$T/rbldnsd.log"; it_fail "a DNS server did not start"; }
done

# ------------------------------------------------------------ the stage
cat >"$T/dns.conf" <<'EOF'
stage dns
timeout 30s
on_timeout continue
deadline 3s
zone TEST_BL dnsbl bl.test 127.0.0.2 RBL_TEST 3
zone TEST_BL_RELAY dnsbl bl.test 127.0.0.4 RBL_TEST_RELAY 2
zone TEST_BL_V6 dnsbl bl.test 127.0.0.5 RBL_TEST_V6 2
zone TEST_BL_TRUSTED dnsbl bl.test 127.0.0.6 RBL_TEST_TRUSTED 9
zone TEST_RHS rhsbl rhs.test any RHS_TEST 2.5
zone TEST_URI uribl uri.test 127.0.0.2-127.0.0.3 URIBL_TEST 4
zone TEST_SXL_URL sxl-url:sha1 sxl.test any SXL_URL_TEST 1.5
zone TEST_SXL_FILE sxl-file:sha256 sxl.test any SXL_FILE_TEST 5
EOF

# The summary line of the message sent to RCPT.
summary() { grep -F "to=<$1>" "$T/sluiced.log" | grep -F 'symbols=' | tail -n 1; }
has_sym() { summary "$1" | grep -qE "symbols=(.*,)?$2\("; }
want() { has_sym "$1" "$2" || it_fail "$1: symbol $2 missing: $(summary "$1")"; }
want_not() { ! has_sym "$1" "$2" || it_fail "$1: unexpected symbol $2: $(summary "$1")"; }
send() { $DNS_TOOL send --port "$FILTER" "$@"; }

cat >"$T/listed.eml" <<EOF
Received: from relay.example (relay.example [198.51.100.77])
	by mx.test (Postfix) with ESMTP id 1; Tue, 1 Dec 2026 08:00:00 +0000
Received: from v6relay.example ([IPv6:2001:db8::99]) by relay.example
Received: from inside.example (inside.example [10.1.2.3]) by v6relay.example
From: "Spam" <a@www.fromspam.example>
To: user@test.example
Subject: listed
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/html; charset=utf-8

<p>Buy <a href="http://www.badsite.example/buy?x=1">now</a>
and http://hashed.example/promo.</p>
--b1
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="payload.bin"
Content-Transfer-Encoding: base64

$(base64 <"$T/attach.txt")
--b1--
EOF
cat >"$T/clean.eml" <<'EOF'
Received: from good.example (good.example [192.0.2.1]) by mx.test
From: friend@good.example
To: user@test.example
Subject: clean

Have a look at https://www.good.example/page and www.fine.example.
EOF
cat >"$T/nodns.eml" <<'EOF'
To: user@test.example
Subject: no DNS work

Nothing to look up here.
EOF

{
    printf 'From: many@good.example\nTo: user@test.example\nSubject: many URLs\n\n'
    for i in $(seq 1 300); do printf 'http://www.site%d.example/p%d\n' "$i" "$i"; done
} >"$T/many.eml"

# ------------------------------------------------------------ 1. rbldnsd
SL_WORKERS=2 sl_conf "$T/c1" "$FILTER" "$SINK" "$T/dns.conf" \
    "dns_servers 127.0.0.1:$DNS_OK
dns_timeout 1s
dns_tries 2"
sl_start "$T/c1"
send --addr 192.0.2.99 --helo mx.spammer.example --sender bounce@spammer.example \
    --rcpt listed@test.example "$T/listed.eml" || it_fail "listed message not delivered"
send --addr 192.0.2.98 --helo mail.good.example --sender friend@good.example \
    --rcpt clean@test.example "$T/clean.eml" || it_fail "clean message not delivered"
send --addr 192.0.2.1 --helo helo-spam.example --sender "" \
    --rcpt helo@test.example "$T/nodns.eml" || it_fail "HELO message not delivered"
send --addr 192.0.2.1 --helo mail.good.example --sender "x@www.spammer.example" \
    --rcpt sender@test.example "$T/nodns.eml" || it_fail "sender message not delivered"
# the same message again: answers from the worker's cache, same findings
send --addr 192.0.2.99 --helo mx.spammer.example --sender bounce@spammer.example \
    --rcpt again@test.example "$T/listed.eml" || it_fail "second listed message not delivered"
# 300 URLs: max_urls (50 domains, 50 URLs) and max_queries (100) bound it
send --addr 192.0.2.1 --helo mail.good.example --sender many@good.example \
    --rcpt many@test.example "$T/many.eml" || it_fail "many-URL message not delivered"
sleep 0.3
id=$(summary many@test.example | sed -n 's/.*id=\([0-9A-Z]*\) .*/\1/p')
grep -q "id=$id dns: [0-9]* DNS names over max_queries (100) not looked up" "$T/sluiced.log" ||
    it_fail "max_queries not applied to a message with 300 URLs"
for s in RBL_TEST RBL_TEST_RELAY RBL_TEST_V6 RHS_TEST URIBL_TEST SXL_URL_TEST SXL_FILE_TEST; do
    want listed@test.example "$s"
    want again@test.example "$s"
done
want_not listed@test.example RBL_TEST_TRUSTED
summary listed@test.example | grep -q "_UNAVAILABLE(" && it_fail "listed: unexpected unavailable: $(summary listed@test.example)"
summary listed@test.example | grep -q 'RBL_TEST(3.00)' || it_fail "RBL_TEST weight: $(summary listed@test.example)"
summary clean@test.example | grep -q 'symbols=-' ||
    it_fail "clean message has symbols: $(summary clean@test.example)"
want helo@test.example RHS_TEST
want_not helo@test.example RBL_TEST
want sender@test.example RHS_TEST
grep -q 'listed in bl.test (127.0.0.2)' "$T/sluiced.log" || it_fail "no hit line in the log"
it_log "rbldnsd: listed subjects found, clean mail and trusted relays left alone"
sl_finish

# ------------------------------------------------------------ 2. black hole
SL_WORKERS=1 sl_conf "$T/c2" "$FILTER" "$SINK" "$T/dns.conf" \
    "dns_servers 127.0.0.1:$DNS_HOLE
dns_timeout 10s
dns_tries 1"
sl_start "$T/c2"
send --addr 192.0.2.99 --helo mx.spammer.example --sender bounce@spammer.example \
    --rcpt slow@test.example "$T/listed.eml" >"$T/slow.out" 2>&1 &
slow_pid=$!
sleep 0.5
send --addr 127.0.0.1 --helo localhost --sender "" --rcpt fast@test.example \
    "$T/nodns.eml" >"$T/fast.out" 2>&1 || { cat "$T/fast.out"; it_fail "message without DNS work failed"; }
kill -0 "$slow_pid" 2>/dev/null || it_fail "the slow message was not pending while the other one went through"
wait "$slow_pid" || { cat "$T/slow.out"; it_fail "the slow message was not delivered"; }
fast=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' "$T/fast.out")
slow=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' "$T/slow.out")
it_log "black hole: slow message ${slow}s (deadline 3s), concurrent message ${fast}s"
$PYTHON -c "import sys; sys.exit(0 if float('$fast') < 1.5 else 1)" ||
    it_fail "the loop was blocked: a message without DNS work took ${fast}s"
$PYTHON -c "import sys; sys.exit(0 if 2.8 <= float('$slow') < 5.5 else 1)" ||
    it_fail "the slow message took ${slow}s, not the 3s deadline"
want slow@test.example TEST_BL_UNAVAILABLE
want slow@test.example TEST_URI_UNAVAILABLE
want_not slow@test.example RBL_TEST
summary slow@test.example | grep -q 'score=0.00' || it_fail "unavailable symbols must score 0: $(summary slow@test.example)"
summary slow@test.example | grep -q 'verdict=continue' || it_fail "slow DNS changed the verdict: $(summary slow@test.example)"
grep -q 'DNS deadline (3.0s)' "$T/sluiced.log" || it_fail "no deadline line in the log"
summary fast@test.example | grep -q "_UNAVAILABLE(" && it_fail "fast: unexpected unavailable"
# a client that goes away while its message waits for DNS: the worker
# lives on and serves the next message (the message itself runs to its
# deadline; txn_free's cancellation is covered by test_dns)
workers=$(sl_workers)
send --addr 192.0.2.99 --sender gone@spammer.example --rcpt gone@test.example \
    --abandon "$T/listed.eml" >/dev/null || it_fail "abandoning client failed"
sleep 0.5
send --addr 127.0.0.1 --helo localhost --sender "" --rcpt after@test.example \
    "$T/nodns.eml" >/dev/null || it_fail "message after an abandoned one failed"
[ "$(sl_workers)" = "$workers" ] || it_fail "the worker died after a client went away mid-DNS"
# the abandoned lookups (dns_timeout 10s) must not hold the stopping worker
t0=$SECONDS
sl_finish
((SECONDS - t0 <= 4)) || it_fail "sluiced took $((SECONDS - t0))s to stop: abandoned DNS lookups held the loop"


# ---------------------------------------- 2b. stage timeout below deadline
# The engine's per-stage timeout (1s) ends the stage first: on_abort and
# the engine cancel its queries; on_timeout continue delivers the mail.
sed 's/^timeout 30s/timeout 1s/' "$T/dns.conf" >"$T/dns-short.conf"
SL_WORKERS=1 sl_conf "$T/c2b" "$FILTER" "$SINK" "$T/dns-short.conf" \
    "dns_servers 127.0.0.1:$DNS_HOLE
dns_timeout 10s
dns_tries 1"
sl_start "$T/c2b"
send --addr 192.0.2.99 --sender t@spammer.example --rcpt stagetimeout@test.example \
    "$T/listed.eml" >"$T/st.out" 2>&1 || { cat "$T/st.out"; it_fail "stage-timeout message not delivered"; }
st=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' "$T/st.out")
$PYTHON -c "import sys; sys.exit(0 if 0.9 <= float('$st') < 2.5 else 1)" ||
    it_fail "stage timeout: message took ${st}s, not ~1s"
grep -q 'stage dns timed out after 1.0s; continue' "$T/sluiced.log" || it_fail "no stage timeout line"
summary stagetimeout@test.example | grep -q 'verdict=continue' || it_fail "stage timeout: $(summary stagetimeout@test.example)"
t0=$SECONDS
sl_finish
((SECONDS - t0 <= 4)) || it_fail "sluiced took $((SECONDS - t0))s to stop after a stage timeout"
it_log "stage timeout (1s) below the deadline: delivered in ${st}s, lookups cancelled"

# ------------------------------------------------------------ 3. SERVFAIL
SL_WORKERS=1 sl_conf "$T/c3" "$FILTER" "$SINK" "$T/dns.conf" \
    "dns_servers 127.0.0.1:$DNS_FAIL
dns_timeout 2s
dns_tries 1"
sl_start "$T/c3"
send --addr 192.0.2.99 --helo mx.spammer.example --sender bounce@spammer.example \
    --rcpt servfail@test.example "$T/listed.eml" >"$T/sf.out" 2>&1 || { cat "$T/sf.out"; it_fail "servfail message not delivered"; }
sf=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' "$T/sf.out")
$PYTHON -c "import sys; sys.exit(0 if float('$sf') < 2.0 else 1)" ||
    it_fail "SERVFAIL answers took ${sf}s"
want servfail@test.example TEST_BL_UNAVAILABLE
want servfail@test.example TEST_RHS_UNAVAILABLE
want_not servfail@test.example RBL_TEST
summary servfail@test.example | grep -q 'score=0.00' || it_fail "servfail symbols must score 0"
it_log "SERVFAIL: unavailable in ${sf}s, delivered"
sl_finish

# ------------------------------------------------------------ 4. conf errors
sl_conf "$T/c4" "$FILTER" "$SINK" "$T/dns.conf" "dns_servers 127.0.0.1:53 resolver.example"
line=$(grep -n '^dns_servers' "$T/c4/00-engine.conf" | cut -d: -f1)
if "$SLUICED" -t -u nobody -c "$T/c4" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" >"$T/c4.out" 2>&1; then
    it_fail "sluiced -t accepted dns_servers resolver.example"
fi
grep -q "00-engine.conf:$line: engine: dns_servers: 'resolver.example'" "$T/c4.out" ||
    { cat "$T/c4.out"; it_fail "bad dns_servers not reported with file:line"; }
sl_conf "$T/c5" "$FILTER" "$SINK" "$T/dns.conf"
echo "zone BAD dnsbl bad.test 127.0.0.2,127.0.0.3 BAD 1" >>"$T/c5/50-extra.conf"
if "$SLUICED" -t -u nobody -c "$T/c5" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" >"$T/c5.out" 2>&1; then
    it_fail "sluiced -t accepted a zone with commas"
fi
grep -q "not ','" "$T/c5.out" && grep -q "50-extra.conf:1: stage 'dns'" "$T/c5.out" ||
    { cat "$T/c5.out"; it_fail "bad zone line not reported"; }
it_log "configuration errors reported with file:line"
echo "dns: ok"
