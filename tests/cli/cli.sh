#!/usr/bin/env bash
# cli.sh: keydesk's command line without a display: --version, --help, bad options, refusing to
# start on a broken configuration (exit 78) and refusing to run the kiosk as root (exit 77).
# Usage: cli.sh KEYDESK_BINARY DATA_DIR
set -uo pipefail
keydesk=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check NAME EXPECTED_STATUS PATTERN -- command...
  local name=$1 want=$2 pattern=$3
  shift 4
  "$@" >"$tmp/out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: exit $got, expected $want"; sed 's/^/    /' "$tmp/out"; fail=1; return
  fi
  if ! grep -qE -- "$pattern" "$tmp/out"; then
    echo "FAIL $name: output lacks /$pattern/"; sed 's/^/    /' "$tmp/out"; fail=1; return
  fi
  echo "ok   $name"
}
# No display anywhere here: these paths must never need one.
unset DISPLAY WAYLAND_DISPLAY

check version 0 '^keydesk [0-9]+\.[0-9]+\.[0-9]+$' -- "$keydesk" --version
check help 0 '--check-config' -- "$keydesk" --help
check help-hides-test-options 0 'windowed' -- "$keydesk" --help
if "$keydesk" --help | grep -q first-frame-marker; then
  echo "FAIL help shows the hidden --first-frame-marker"; fail=1
fi
check bad-option 64 'Unknown option --frobnicate' -- "$keydesk" --frobnicate
check missing-config-file 78 'not starting: fix the configuration' -- \
  "$keydesk" --config "$tmp/nope.conf"
check missing-config-names-file 78 "$tmp/nope.conf" -- "$keydesk" --config "$tmp/nope.conf"
printf '[kiosk]\nname=Front desk\nidle-timeout=abc\n' >"$tmp/bad.conf"
check broken-config 78 "idle-timeout" -- "$keydesk" --config "$tmp/bad.conf"
if [ "$(id -u)" = 0 ]; then
  check refuses-root 77 'refusing to run the kiosk as root' -- \
    "$keydesk" --config "$data/ui/ui.conf"
else
  echo "skip refuses-root (not running as root)"
fi
exit $fail
