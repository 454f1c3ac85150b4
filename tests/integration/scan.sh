#!/bin/bash
# scan.sh - `sluicectl scan` end to end: a conf dir with an ingress whose
# port is held by another process (the scan must not bind it), the test
# stages (verdict.c via X-Sluice-Test, fx for a symbol), and a deliver
# stage pointed at a listener that counts connections (a FINAL stage must
# never run).  Checks verdicts, replies, symbols, phases, JSON validity,
# --without, envelope options, 200 corpus messages with -j 2, a bad
# configuration (exit 3, file:line) and an unreadable file (exit 1, the
# others still scanned).
#
# Environment (scan.cmake): SLUICECTL, SLUICE_PLUGIN_DIR, FX_DIR,
# SLUICE_CORPUS.
set -uo pipefail

PYTHON=/usr/bin/python3
T=$(mktemp -d /tmp/sluice-scan.XXXXXX) || exit 1
LISTENER_PID=
cleanup() {
    [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# Two loopback ports held by a listener that logs every connection.
cat >"$T/listen.py" <<'EOF'
import socket, sys, select
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); socks.append(s)
with open(sys.argv[1], "w") as f:
    f.write(" ".join(str(s.getsockname()[1]) for s in socks) + "\n")
log = open(sys.argv[2], "a", buffering=1)
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        c, _ = s.accept(); log.write("connect %d\n" % s.getsockname()[1]); c.close()
EOF
$PYTHON "$T/listen.py" "$T/ports" "$T/connections" &
LISTENER_PID=$!
for _ in $(seq 50); do [ -s "$T/ports" ] && break; sleep 0.1; done
read -r P_IN P_OUT <"$T/ports" || { echo "FAIL: listener"; exit 1; }

mkdir -p "$T/conf" "$T/msgs"
cat >"$T/conf/00-engine.conf" <<EOF
engine
user nobody
state_dir $T
syslog no
stage_timeout 5s
EOF
cat >"$T/conf/10-chain.conf" <<EOF
stage smtp
listen 127.0.0.1:$P_IN
stage receive
stage tagger
plugin $FX_DIR/fx.so
symbol TEST_SYM
score 2.5
stage verdict
stage deliver
next_hop 127.0.0.1:$P_OUT
EOF

msg() { # NAME TRIGGER
    {
        printf 'Received: from helo.example (mx.example.org [192.0.2.7])\n'
        printf '\tby gw.example (Postfix) with ESMTP id 4XyZ\n'
        printf 'From: Alice <alice@example.org>\nTo: bob@example.net\n'
        printf 'Subject: test %s\n' "$1"
        [ -n "$2" ] && printf 'X-Sluice-Test: %s\n' "$2"
        printf '\nbody of %s\n' "$1"
    } >"$T/msgs/$1.eml"
}
msg clean ""
for v in accept reject tempfail discard quarantine whoami; do msg "$v" "$v"; done

SCAN=("$SLUICECTL" scan -c "$T/conf" -P "$SLUICE_PLUGIN_DIR")
"${SCAN[@]}" --json -j 2 "$T/msgs" >"$T/out.json" 2>"$T/err"
rc=$?
[ $rc = 0 ] || fail "scan exit $rc: $(cat "$T/err")"

# verdicts, replies, symbols, JSON validity, stages: one Python check
$PYTHON - "$T/out.json" <<'EOF' || fails=$((fails + 1))
import json, sys
rows = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    rows[o["file"].rsplit("/", 1)[1][:-4]] = o
want = {"clean": "continue", "accept": "accept", "reject": "reject",
        "tempfail": "tempfail", "discard": "discard",
        "quarantine": "quarantine", "whoami": "reject"}
bad = []
for name, v in want.items():
    o = rows.get(name)
    if o is None:
        bad.append("%s: no line" % name); continue
    if o["verdict"] != v:
        bad.append("%s: verdict %s, want %s" % (name, o["verdict"], v))
    if o["phase"] != "eom":
        bad.append("%s: phase %s" % (name, o["phase"]))
    if [s["name"] for s in o["symbols"]] != ["TEST_SYM"] or o["score"] != 2.5:
        bad.append("%s: symbols %s score %s" % (name, o["symbols"], o["score"]))
    if "deliver" in o["stages"] or "smtp" in o["stages"]:
        bad.append("%s: ingress/final stage ran: %s" % (name, o["stages"]))
    if "receive" not in o["stages"] or "tagger" not in o["stages"]:
        bad.append("%s: stages %s" % (name, o["stages"]))
    if o["probability"] is not None or not o["id"] or o["size"] <= 0:
        bad.append("%s: fields %s" % (name, o))
if rows["reject"]["reply"] != "550 5.7.1 sluice test: reject in eom":
    bad.append("reject reply %r" % rows["reject"]["reply"])
if rows["tempfail"]["reply"] != "451 4.7.1 sluice test: tempfail in eom":
    bad.append("tempfail reply %r" % rows["tempfail"]["reply"])
if rows["clean"]["reply"] is not None:
    bad.append("clean reply %r" % rows["clean"]["reply"])
w = rows["whoami"]["reply"]
for part in ("addr=192.0.2.7", "name=mx.example.org", "helo=helo.example",
             "from=alice@example.org", "rcpts=1"):
    if part not in w:
        bad.append("whoami: %s not in %r" % (part, w))
if len(rows) != 7:
    bad.append("%d lines" % len(rows))
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
EOF
ok "verdicts, replies, symbols, client facts from Received"

# FINAL stage never contacted; the ingress's port was not bound by us
# (the listener holds it: a bind would have failed the scan)
[ -s "$T/connections" ] && fail "deliver's next hop was contacted: $(cat "$T/connections")"
ok "no connection to deliver's next hop"

# --without removes a stage
"${SCAN[@]}" --json --without tagger,dns "$T/msgs/reject.eml" >"$T/w.json" 2>"$T/err"
rc=$?
# dns is not in this chain: a usage error
[ $rc = 2 ] || fail "--without with an unknown stage: exit $rc, want 2"
grep -q "no stage named 'dns'" "$T/err" || fail "--without message: $(cat "$T/err")"
"${SCAN[@]}" --json --without tagger "$T/msgs/reject.eml" >"$T/w.json" 2>"$T/err" ||
    fail "--without tagger: exit $?"
$PYTHON -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["symbols"] == [] and o["score"] == 0, o
assert "tagger" not in o["stages"] and o["verdict"] == "reject", o
' "$T/w.json" || fail "--without tagger output: $(cat "$T/w.json")"
ok "--without"

# envelope options; refusals at MAIL and RCPT
"${SCAN[@]}" --json --client-ip 198.51.100.9 --helo h.test --sender s@t.test \
    --rcpt r1@x.test --rcpt r2@x.test - <"$T/msgs/whoami.eml" >"$T/o.json" ||
    fail "options: exit $?"
grep -q 'addr=198.51.100.9 name= helo=h.test .*from=s@t.test rcpts=2' "$T/o.json" ||
    fail "options not applied: $(cat "$T/o.json")"
"${SCAN[@]}" --json --sender reject-mail@t.test "$T/msgs/clean.eml" >"$T/o.json"
grep -q '"verdict":"reject","phase":"mail","reply":"550 5.7.1 sluice test: reject in mail"' \
    "$T/o.json" || fail "reject at MAIL: $(cat "$T/o.json")"
"${SCAN[@]}" --json --rcpt reject-rcpt@x.test --rcpt ok@x.test \
    "$T/msgs/clean.eml" >"$T/o.json"
grep -q '"verdict":"continue","phase":"eom"' "$T/o.json" ||
    fail "one refused recipient: $(cat "$T/o.json")"
"${SCAN[@]}" --json --rcpt reject-rcpt@x.test "$T/msgs/clean.eml" >"$T/o.json"
grep -q '"verdict":"reject","phase":"rcpt"' "$T/o.json" ||
    fail "all recipients refused: $(cat "$T/o.json")"
ok "envelope options, MAIL and RCPT refusals"

# readable output
"${SCAN[@]}" "$T/msgs/reject.eml" >"$T/h.txt" || fail "readable: exit $?"
grep -q 'verdict: reject (decided at eom)' "$T/h.txt" &&
    grep -q 'reply: 550 5.7.1 sluice test: reject in eom' "$T/h.txt" &&
    grep -q 'TEST_SYM .* 2.50' "$T/h.txt" &&
    grep -q 'time: .* ms: receive' "$T/h.txt" || fail "readable: $(cat "$T/h.txt")"
ok "readable output"

# unreadable file: exit 1, the others scanned
"${SCAN[@]}" --json -j 2 "$T/msgs/clean.eml" "$T/nonexistent.eml" \
    "$T/msgs/reject.eml" >"$T/o.json" 2>"$T/err"
rc=$?
[ $rc = 1 ] || fail "unreadable file: exit $rc, want 1"
[ "$(grep -c '"verdict"' "$T/o.json")" = 2 ] || fail "others not scanned: $(cat "$T/o.json")"
grep -q '"file":"[^"]*nonexistent.eml","error":"No such file' "$T/o.json" ||
    fail "no error line: $(cat "$T/o.json")"
grep -q 'nonexistent.eml: No such file' "$T/err" || fail "stderr: $(cat "$T/err")"
ok "unreadable file"

# bad configuration: exit 3 with file:line
cp -r "$T/conf" "$T/badconf"
printf 'stage broken\nplugin receive\nno_such_option 1\n' >"$T/badconf/20-bad.conf"
"$SLUICECTL" scan -c "$T/badconf" -P "$SLUICE_PLUGIN_DIR" "$T/msgs/clean.eml" \
    >/dev/null 2>"$T/err"
rc=$?
[ $rc = 3 ] || fail "bad config: exit $rc, want 3"
grep -q "20-bad.conf:3: .*no_such_option" "$T/err" || fail "bad config: $(cat "$T/err")"
ok "bad configuration"
"$SLUICECTL" scan --bogus x >/dev/null 2>&1
[ $? = 2 ] || fail "unknown option: not exit 2"

# 200 corpus messages over two processes: 200 whole lines
mkdir "$T/corpus"
ls "$SLUICE_CORPUS/ham" | head -100 | while read -r f; do ln -s "$SLUICE_CORPUS/ham/$f" "$T/corpus/h-$f"; done
ls "$SLUICE_CORPUS/spam" | head -100 | while read -r f; do ln -s "$SLUICE_CORPUS/spam/$f" "$T/corpus/s-$f"; done
"${SCAN[@]}" --json -j 2 "$T/corpus" >"$T/c.json" 2>"$T/err"
rc=$?
[ $rc = 0 ] || fail "corpus: exit $rc: $(head -5 "$T/err")"
$PYTHON -c '
import json, sys
files = set()
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert "error" not in o and o["verdict"] == "continue", o
    files.add(o["file"])
assert len(files) == 200, len(files)
' "$T/c.json" || fail "corpus output ($(wc -l <"$T/c.json") lines)"
ok "200 corpus messages, -j 2"

# a stage that never answers: its timeout ends the message, not the scan;
# a stage that kills its process: exit 1, the other process goes on
mkdir -p "$T/conf2" "$T/faults"
cp "$T/conf/00-engine.conf" "$T/conf2/"
printf 'stage receive\nstage hang\ntimeout 1s\nstage crash\n' >"$T/conf2/10-chain.conf"
cp "$T/msgs/clean.eml" "$T/faults/a.eml"
cp "$T/msgs/clean.eml" "$T/faults/b.eml"
sed 's/^Subject:.*/&\nX-Sluice-Test: hang/' "$T/msgs/clean.eml" >"$T/faults/hang.eml"
"$SLUICECTL" scan --json -j 1 -c "$T/conf2" -P "$SLUICE_PLUGIN_DIR" "$T/faults" \
    >"$T/o.json" 2>"$T/err" || fail "hang: exit $?"
grep -q '"file":"[^"]*hang.eml".*"verdict":"tempfail".*"reply":"451 4.4.3 [^"]*stage hang timed out"' \
    "$T/o.json" || fail "hang: $(cat "$T/o.json")"
[ "$(grep -c '"verdict":"continue"' "$T/o.json")" = 2 ] || fail "hang: others: $(cat "$T/o.json")"
ok "a hanging stage times out"
sed 's/^Subject:.*/&\nX-Sluice-Test: crash/' "$T/msgs/clean.eml" >"$T/faults/crash.eml"
rm "$T/faults/hang.eml"
for i in $(seq 20); do cp "$T/msgs/clean.eml" "$T/faults/m$i.eml"; done
ASAN_OPTIONS=detect_leaks=0 "$SLUICECTL" scan --json -j 2 -c "$T/conf2" \
    -P "$SLUICE_PLUGIN_DIR" "$T/faults" >"$T/o.json" 2>"$T/crash.err"
rc=$?
[ $rc = 1 ] || fail "crash: exit $rc, want 1"
grep -q 'died (signal' "$T/crash.err" || fail "crash: $(cat "$T/crash.err")"
grep -q '"verdict":"continue"' "$T/o.json" || fail "crash: no message scanned"
$PYTHON -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/o.json" ||
    fail "crash: torn output"
ok "a crashing stage: exit 1, the rest scanned"

[ -s "$T/connections" ] && fail "deliver's next hop was contacted: $(cat "$T/connections")"
if grep -l 'Sanitizer\|runtime error' "$T"/err >/dev/null 2>&1; then
    fail "sanitizer report: $(cat "$T/err")"
fi
[ $fails = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "scan: all passed"
