#!/usr/bin/env bash
# doctor.sh: `keydesk doctor` on the command line, without a tenant: help, usage errors (64), an
# invalid configuration (78) and a Graph that cannot be reached (69), each said on the output.
# The checks against a tenant are tests/graph/test-doctor.c. Usage: doctor.sh KEYDESK_BINARY
set -uo pipefail
keydesk=$1
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
unset DISPLAY WAYLAND_DISPLAY https_proxy HTTPS_PROXY all_proxy ALL_PROXY

check main-help-lists-doctor 0 'keydesk doctor \[--config FILE\]' -- "$keydesk" --help
check doctor-help 0 '69 when Microsoft Graph cannot be reached' -- "$keydesk" doctor --help
check doctor-bad-option 64 'Unknown option --frobnicate' -- "$keydesk" doctor --frobnicate
check doctor-extra-argument 64 'unexpected argument: extra' -- \
  "$keydesk" doctor --config "$tmp/x.conf" extra
check doctor-missing-config 78 "FAIL  Configuration: $tmp/nope.conf has" -- \
  "$keydesk" doctor --config "$tmp/nope.conf"
# Operator mode, nothing listening on loopback port 9: connection refused, exit 69.
cat >"$tmp/unreachable.conf" <<CONF
[kiosk]
name = Doctor CLI desk
[tenant]
tenant-id = contoso.onmicrosoft.com
client-id = 3f2a6c1e-8d4b-4e57-9a0f-2b7c1d9e4f60
graph-host = https://127.0.0.1:9
login-host = https://127.0.0.1:9
[enrolment]
identity-mode = operator
[tracking]
state-dir = $tmp
CONF
check doctor-unreachable 69 '^FAIL  Connection: cannot reach https://127.0.0.1:9 ' -- \
  "$keydesk" doctor --config "$tmp/unreachable.conf"
check doctor-unreachable-says-so 69 'cannot be reached from this desk, so nothing else was checked' \
  -- "$keydesk" doctor -c "$tmp/unreachable.conf"
exit $fail
