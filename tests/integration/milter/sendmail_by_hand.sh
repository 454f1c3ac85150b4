#!/usr/bin/env bash
# sendmail_by_hand.sh - a manual check of the milter ingress behind a real
# sendmail.  Not part of ctest: on Debian the sendmail package replaces
# Postfix (both provide mail-transport-agent), which the rest of the suite
# needs.  Run it on a disposable Debian 12 machine or container, as root,
# from a built tree (./build.sh):
#
#   tests/integration/milter/sendmail_by_hand.sh [BUILD_DIR]
#
# It installs sendmail, adds INPUT_MAIL_FILTER(`sluice', ... F=T ...) to
# sendmail.mc, starts sluiced (milter on 127.0.0.1:3366 with the test
# `verdict` stage), sends three messages with swaks and prints what
# happened: the first is accepted and carries X-Sluice-Status in the local
# mailbox, the second (X-Sluice-Test: reject) is refused with "550 5.7.1
# sluice test: reject in eom", and with sluiced stopped the third is
# temp-failed (F=T).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-$REPO/build}
T=$(mktemp -d /tmp/sluice-sendmail.XXXXXX)
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q sendmail swaks
MC=/etc/mail/sendmail.mc
grep -q "INPUT_MAIL_FILTER(\`sluice'" "$MC" ||
    sed -i "/^MAILER_DEFINITIONS/i INPUT_MAIL_FILTER(\`sluice', \`S=inet:3366@127.0.0.1, F=T, T=C:30s;S:300s;R:300s;E:10m')dnl\\
define(\`confMILTER_MACROS_ENVFROM', \`i, {auth_authen}, {mail_addr}')dnl" "$MC"
make -C /etc/mail >/dev/null
systemctl restart sendmail 2>/dev/null || /etc/init.d/sendmail restart

mkdir -p "$T/conf"
cp "$REPO"/conf.d/00-engine.conf "$REPO"/conf.d/10-smtp.conf \
    "$REPO"/conf.d/15-milter.conf "$REPO"/conf.d/20-receive.conf "$T/conf/"
printf 'stage verdict\n' >"$T/conf/50-verdict.conf"
sed -i 's/^syslog .*/syslog no/; s/^user .*/user nobody/' "$T/conf/00-engine.conf"
"$BUILD/engine/sluiced" -c "$T/conf" -P "$BUILD/plugins.d" -S "$T" \
    >"$T/sluiced.log" 2>&1 &
SL=$!
trap 'kill $SL 2>/dev/null || true' EXIT
sleep 2

echo "== 1: accepted and tagged"
swaks -s 127.0.0.1 -t root@localhost -f a@example.org --h-Subject one || true
echo "== 2: rejected by a stage (expect 550 5.7.1 sluice test: reject in eom)"
swaks -s 127.0.0.1 -t root@localhost -f a@example.org \
    --add-header "X-Sluice-Test: reject" || true
kill "$SL"; wait "$SL" || true
echo "== 3: sluiced down (expect a 4xx: F=T)"
swaks -s 127.0.0.1 -t root@localhost -f a@example.org --h-Subject three || true
sleep 2
echo "== root's mailbox (expect X-Sluice-Status on message one):"
grep -E "^(Subject|X-Sluice-Status):" /var/mail/root | tail -n 4 || true
echo "== sluiced log: $T/sluiced.log"
grep -E "milter: verdict=" "$T/sluiced.log" || true
