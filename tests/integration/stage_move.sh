#!/usr/bin/env bash
# stage_move.sh - `sluicectl stage list|enable|disable|move` against a
# running sluiced (smtp, receive, three instances of the `verdict` test
# stage - two sharing one file -, deliver to a private Postfix):
#   - move by position renames a one-stage file (60-v3.conf -> 35-v3.conf),
#     `--before` reorders sections inside a shared file; `stages` and the
#     control reply's "order" show the new chain, the generation goes up;
#   - the reply of `move` is exactly {ok, changed, order, generation};
#     a move to where it is changes nothing and does not reload;
#   - ingress and final stages cannot be moved among the filters: refused,
#     conf.d untouched;
#   - a reload the engine refuses (a bad option in another file) puts
#     conf.d back byte for byte and keeps the running chain;
#   - the old `stages`, `enable`, `disable` still work beside
#     `stage enable|disable`;
#   - mail flows before and after, each message delivered once, intact.
. "$(dirname "$0")/lib.sh"
it_init stage_move
read -r IN FILTER REINJ <<<"$(it_ports 3)"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
pf_start
cat >"$T/extra.conf" <<'EOF'
stage v1
plugin verdict

# the second one
stage v2
plugin verdict
header X-Test-Two
EOF
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
printf '# third\nstage v3\nplugin verdict\n' >"$T/conf/60-v3.conf"
sl_start "$T/conf"

order() { sl_ctl --json stages | $PYTHON -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["stages"]))'; }
gen() { sl_ctl --json status | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
snap() { (cd "$T/conf" && ls && cat ./*.conf) | md5sum; }

[ "$(order)" = "smtp receive v1 v2 v3 deliver" ] || it_fail "initial order: $(order)"
it_plan "$T/m1" --limit 20
$MAILTOOL send --port "$IN" --conns 2 "$T/m1" || it_fail "submission 1 failed"
$MAILTOOL wait --maildir "$MAILDIR" --count 20 --timeout 60 || it_fail "mail 1 not delivered"

# ---------------------------------------------------------------- move by position
g0=$(gen)
sl_ctl stage move v3 3 >"$T/out" || it_fail "stage move v3 3 failed: $(cat "$T/out")"
grep -q "stage v3 moved to position 3" "$T/out" || it_fail "move output: $(cat "$T/out")"
[ "$(order)" = "smtp receive v3 v1 v2 deliver" ] || it_fail "order after move: $(order)"
[ -f "$T/conf/35-v3.conf" ] && [ ! -e "$T/conf/60-v3.conf" ] ||
    it_fail "60-v3.conf not renamed to 35-v3.conf: $(ls "$T/conf")"
[ "$(cat "$T/conf/35-v3.conf")" = "$(printf '# third\nstage v3\nplugin verdict')" ] ||
    it_fail "the moved file's text changed"
[ "$(gen)" -gt "$g0" ] || it_fail "no reload after the move"
it_log "move v3 3: file renamed, chain $(order)"

# ---------------------------------------------------------------- --before, shared file
sl_ctl stage move v2 --before v1 >"$T/out" || it_fail "move --before failed: $(cat "$T/out")"
[ "$(order)" = "smtp receive v3 v2 v1 deliver" ] || it_fail "order after --before: $(order)"
l1=$(grep -n '^stage v1' "$T/conf/50-extra.conf" | cut -d: -f1)
l2=$(grep -n '^stage v2' "$T/conf/50-extra.conf" | cut -d: -f1)
[ -n "$l1" ] && [ -n "$l2" ] && [ "$l2" -lt "$l1" ] || it_fail "50-extra.conf: $(cat "$T/conf/50-extra.conf")"
grep -B1 '^stage v2' "$T/conf/50-extra.conf" | grep -q '^# the second one' ||
    it_fail "v2's comment did not move with it: $(cat "$T/conf/50-extra.conf")"
it_log "move v2 --before v1: sections reordered inside 50-extra.conf"

# ---------------------------------------------------------------- the reply
sl_ctl --json stage move v1 5 >"$T/reply.json" || it_fail "no-op move failed"
g1=$(gen)
$PYTHON - "$T/reply.json" "$g1" <<'EOF' || it_fail "move reply: $(cat "$T/reply.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert sorted(r) == ["changed", "generation", "ok", "order"], r
assert r["ok"] is True and r["changed"] is False, r
assert r["order"] == ["smtp", "receive", "v3", "v2", "v1", "deliver"], r
assert r["generation"] == int(sys.argv[2]), r
EOF
sl_ctl --json stage move v1 --after v3 >"$T/reply.json" || it_fail "move --after failed"
$PYTHON - "$T/reply.json" "$g1" <<'EOF' || it_fail "move reply: $(cat "$T/reply.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert sorted(r) == ["changed", "generation", "ok", "order"], r
assert r["changed"] is True and r["generation"] > int(sys.argv[2]), r
assert r["order"] == ["smtp", "receive", "v3", "v1", "v2", "deliver"], r
EOF
it_log "reply shape ok; an unchanged move does not reload"

# ---------------------------------------------------------------- refusals
s0=$(snap)
g2=$(gen)
sl_ctl stage move deliver 3 2>"$T/err"; [ $? = 1 ] || it_fail "moving deliver among filters: want exit 1"
grep -q "final" "$T/err" || it_fail "refusal without a reason: $(cat "$T/err")"
sl_ctl stage move smtp 4 2>"$T/err"; [ $? = 1 ] || it_fail "moving smtp among filters: want exit 1"
grep -q "ingress" "$T/err" || it_fail "refusal without a reason: $(cat "$T/err")"
sl_ctl stage move v1 9 2>"$T/err"; [ $? = 1 ] || it_fail "position 9 of 6: want exit 1"
sl_ctl stage move nosuch 2 2>"$T/err"; [ $? = 1 ] || it_fail "unknown stage: want exit 1"
sl_ctl stage move v1 abc 2>"$T/err"; [ $? = 2 ] || it_fail "bad position: want exit 2"
[ "$(snap)" = "$s0" ] || it_fail "a refused move changed conf.d"
[ "$(gen)" = "$g2" ] || it_fail "a refused move reloaded"
it_log "ingress/final moves, bad positions and names refused; conf.d untouched"

# a reload the engine refuses: conf.d back as it was, chain unchanged
echo "no_such_option 1" >>"$T/conf/20-receive.conf"
s1=$(snap)
sl_ctl stage move v2 3 2>"$T/err"; [ $? = 1 ] || it_fail "move with a broken conf.d: want exit 1"
grep -q "20-receive.conf:2" "$T/err" || it_fail "the loader's error is not shown: $(cat "$T/err")"
[ "$(snap)" = "$s1" ] || it_fail "conf.d not restored after the refused reload: $(ls "$T/conf")"
[ "$(order)" = "smtp receive v3 v1 v2 deliver" ] || it_fail "running chain changed: $(order)"
[ "$(gen)" = "$g2" ] || it_fail "generation changed"
sed -i '/no_such_option/d' "$T/conf/20-receive.conf"
it_log "refused reload: conf.d restored byte for byte, chain kept"

# ---------------------------------------------------------------- aliases
sl_ctl stages | grep -q "v3" || it_fail "old 'stages' failed"
sl_ctl stage list | grep -q "v3" || it_fail "'stage list' failed"
sl_ctl disable v1 >/dev/null || it_fail "old 'disable' failed"
sl_ctl --json stages | $PYTHON -c 'import json,sys; s={x["name"]:x for x in json.load(sys.stdin)["stages"]}; assert not s["v1"]["enabled"]' ||
    it_fail "v1 not disabled"
sl_ctl stage enable v1 >/dev/null || it_fail "'stage enable' failed"
sl_ctl --json stages | $PYTHON -c 'import json,sys; s={x["name"]:x for x in json.load(sys.stdin)["stages"]}; assert s["v1"]["enabled"]' ||
    it_fail "v1 not enabled again"
"$SLUICED" -t -u nobody -c "$T/conf" -P "$SLUICE_PLUGIN_DIR" -S "$T/state" >"$T/check.out" 2>&1 ||
    it_fail "conf.d after the moves does not check: $(cat "$T/check.out")"
grep -q "6 stages: smtp receive v3 v1 v2 deliver" "$T/check.out" || it_fail "sluiced -t: $(cat "$T/check.out")"

# ---------------------------------------------------------------- mail still flows
$MAILTOOL plan --out "$T/m2" --prefix m2 --offset 20 --limit 20 "$SLUICE_CORPUS/ham" || it_fail "plan"
$MAILTOOL send --port "$IN" --conns 2 "$T/m2" || it_fail "submission 2 failed"
$MAILTOOL wait --maildir "$MAILDIR" --count 40 --timeout 60 || it_fail "mail 2 not delivered"
pf_wait_empty 60 || it_fail "Postfix queue not empty"
cat "$T/m1" "$T/m2" >"$T/all"
check_maildir "$T/all" || it_fail "mail not delivered intact or exactly once"
calls=$(sl_ctl --json stages | $PYTHON -c 'import json,sys; print(min(s["calls"] for s in json.load(sys.stdin)["stages"] if s["name"].startswith("v")))')
[ "$calls" -ge 1 ] || it_fail "a moved stage saw no mail"
it_log "40 messages delivered once and intact across the moves"
sl_finish
