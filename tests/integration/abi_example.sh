#!/usr/bin/env bash
# abi_example.sh - the out-of-tree example stage (abi/examples/hello) built
# against the INSTALLED headers and pkg-config file only, loaded by the
# installed sluiced from the installed plugin directory, and mail run
# through it: every message must carry the example's header.
. "$(dirname "$0")/lib.sh"
it_init abi_example
: "${SLUICE_BUILD_DIR:?}" "${SLUICE_SOURCE_DIR:?}"
P=$T/prefix
cmake --install "$SLUICE_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; it_fail "cmake --install failed"; }
pc=$(find "$P" -name sluice.pc | head -n 1)
[ -n "$pc" ] || it_fail "no sluice.pc installed under $P"
[ -f "$P/include/sluice/stage.h" ] || it_fail "no include/sluice/stage.h installed under $P"
cp -r "$SLUICE_SOURCE_DIR/abi/examples/hello" "$T/hello"
# --define-prefix: the .pc file names the configured prefix; relocate it
# to where it was installed (pkgconf derives it from the file's place).
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG="pkg-config --define-prefix"
cflags=$($PKG_CONFIG --cflags sluice) || it_fail "pkg-config --cflags sluice failed"
echo "$cflags" | grep -q -- "-I$P/include" || it_fail "pkg-config cflags do not point at $P/include: $cflags"
# Any include of the source tree would defeat the point: build with an
# environment that knows only the prefix.
env -u CPATH -u C_INCLUDE_PATH make -C "$T/hello" CC=cc PKG_CONFIG="$PKG_CONFIG" >"$T/make.log" 2>&1 ||
    { cat "$T/make.log"; it_fail "the example does not build against the installed headers"; }
cat "$T/make.log"
so=$(find "$T/hello" -name '*.so' | head -n 1)
[ -n "$so" ] || it_fail "the example build produced no .so"
plugdir=$($PKG_CONFIG --variable=plugindir sluice)
[ -d "$plugdir" ] || it_fail "installed plugin dir $plugdir missing"
cp "$so" "$plugdir/"
sluiced=$(find "$P" -type f -name sluiced | head -n 1)
[ -x "$sluiced" ] || it_fail "no sluiced installed under $P"

read -r IN FILTER REINJ <<<"$(it_ports 3)"
pf_setup "$IN" "$FILTER" "$REINJ" smtp
pf_start
name=$(basename "$so" .so)
printf 'stage %s\nheader X-Hello-Test\n' "$name" >"$T/extra.conf"
sl_conf "$T/conf" "$FILTER" "$REINJ" "$T/extra.conf"
SLUICED=$sluiced SLUICE_PLUGIN_DIR=$plugdir sl_start "$T/conf"
it_plan "$T/m" --limit 5
$MAILTOOL send --port "$FILTER" --conns 1 --strict "$T/m" || it_fail "mail through the example stage failed"
$MAILTOOL wait --maildir "$MAILDIR" --count 5 --timeout 30 || it_fail "not delivered"
n=$(grep -l '^X-Hello-Test:' "$MAILDIR"/new/* | wc -l)
[ "$n" = 5 ] || { head -n 20 "$MAILDIR"/new/* | head -n 60; it_fail "$n of 5 delivered messages carry X-Hello-Test"; }
grep -h '^X-Hello-Test:' "$MAILDIR"/new/* | head -n 1
sl_finish
echo "abi_example: ok ($name.so built against $P only)"
