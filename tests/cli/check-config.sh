#!/usr/bin/env bash
# check-config.sh: keydesk --check-config on valid, broken and unsafe files: exit status, the
# stream used, and the exact problem lines an admin reads.
# Usage: check-config.sh KEYDESK_BINARY DATA_DIR   (DATA_DIR is tests/data/config)
set -uo pipefail
keydesk=$1
data=$(cd "$2" && pwd)
example=$(cd "$(dirname "$0")/../../kiosk" && pwd)/keydesk.conf.example
tmp=$(mktemp -d)
tmp=$(cd "$tmp" && pwd)
trap 'rm -rf "$tmp"' EXIT
fail=0
# GLib's own parser sentences are compared verbatim, so keep them untranslated.
export LC_ALL=C
# --check-config must never need a display.
unset DISPLAY WAYLAND_DISPLAY

show() {
  echo "    stdout:"; sed 's/^/      /' "$tmp/stdout"
  echo "    stderr:"; sed 's/^/      /' "$tmp/stderr"
}

# valid NAME CONFIG: exit 0, the one success line on stdout, nothing on stderr.
valid() {
  local name=$1 conf=$2
  "$keydesk" --check-config --config "$conf" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  if [ "$got" != 0 ] || [ "$(cat "$tmp/stdout")" != "$conf: configuration is valid" ] ||
    [ -s "$tmp/stderr" ]; then
    echo "FAIL $name: exit $got, expected 0 and '$conf: configuration is valid'"; show; fail=1
    return
  fi
  echo "ok   $name"
}

# invalid NAME CONFIG LINE...: exit 1, nothing on stdout, and stderr is exactly the given
# problem lines (in any order) followed by the count line.
invalid() {
  local name=$1 conf=$2
  shift 2
  local n=$# line last
  "$keydesk" --check-config --config "$conf" >"$tmp/stdout" 2>"$tmp/stderr"
  local got=$?
  if [ "$got" != 1 ] || [ -s "$tmp/stdout" ]; then
    echo "FAIL $name: exit $got, expected 1 with nothing on stdout"; show; fail=1; return
  fi
  for line in "$@"; do
    if ! grep -qxF -- "$line" "$tmp/stderr"; then
      echo "FAIL $name: stderr lacks the line: $line"; show; fail=1; return
    fi
  done
  if [ "$(wc -l <"$tmp/stderr")" != $((n + 1)) ]; then
    echo "FAIL $name: expected $n problem lines and a count line"; show; fail=1; return
  fi
  # main.c words the count with ngettext; either form is the contract.
  last=$(tail -n 1 "$tmp/stderr")
  case "$last" in
  "$conf: $n problem found" | "$conf: $n problems found" | "$conf: $n problem(s) found") ;;
  *) echo "FAIL $name: last line is not the count of $n: $last"; show; fail=1; return ;;
  esac
  echo "ok   $name"
}

valid good "$data/good.conf"
valid example "$example"

c=$data/bad-several.conf
invalid bad-several "$c" \
  "$c: [kiosk] name: required, but not set; allowed: a short name for this desk, shown on every page, such as 'Front desk'" \
  "$c: [kiosk] idle-timeout = '5': out of range; allowed: 10 to 3600 seconds" \
  "$c: [kiosk] touch-only = 'yes': not a boolean; allowed: true or false" \
  "$c: [tenant] client-id = 'not-a-guid': not a GUID; allowed: the app registration's Application (client) ID, a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal)" \
  "$c: [tenant] graph-host = 'http://graph.microsoft.com': scheme 'http' refused: keydesk only talks to Microsoft over HTTPS; allowed: https://host[:port] or host[:port]" \
  "$c: [enrolment] identity-mode = 'admin': unknown identity mode; allowed: operator or self" \
  "$c: [enrolment] flows = 'security-key;fax': unknown flow 'fax'; allowed: security-key, authenticator and/or lost-device, separated by ';'" \
  "$c: [tracking] group-id = '42': not a GUID; allowed: the group's Object ID, a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal)"

c=$data/typo.conf
invalid typo "$c" \
  "$c: [kiosk] idle-timout = '120': unknown key (did you mean 'idle-timeout'?); allowed: name, site, idle-timeout, idle-countdown, touch-only"

c=$tmp/nope.conf
invalid missing-file "$c" "$c: cannot open the configuration file: No such file or directory"

printf '[kiosk]\nname = Front desk\nidle-timeout 30\n' >"$tmp/syntax.conf"
c=$tmp/syntax.conf
# shellcheck disable=SC1111 # GLib's message really uses typographic quotes
invalid syntax "$c" \
  "$c: line 3: syntax error: Key file contains line “idle-timeout 30” which is not a key-value pair, group, or comment; allowed: '[group]' lines, 'key = value' lines and '# comment' lines" \
  "$c: [tenant] tenant-id: required, but not set; allowed: the tenant's GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal) or a domain name such as contoso.onmicrosoft.com" \
  "$c: [tenant] client-id: required, but not set; allowed: the app registration's Application (client) ID, a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal)"

# A private key that others can read is refused until it is chmod 600. The key is a dummy:
# --check-config looks only at the file's metadata, never at its contents.
c=$tmp/self.conf
cat >"$c" <<EOF
[kiosk]
name = Front desk
[tenant]
tenant-id = contoso.onmicrosoft.com
client-id = 3f2a6c1e-8d4b-4e57-9a0f-2b7c1d9e4f60
certificate-file = $data/kiosk.pem
private-key-file = kiosk.key
[enrolment]
identity-mode = self
EOF
echo "not a real key" >"$tmp/kiosk.key"
chmod 644 "$tmp/kiosk.key"
invalid exposed-credential "$c" \
  "$c: [tenant] private-key-file = 'kiosk.key': readable by group or others (mode 0644); keydesk refuses to start with an exposed credential. Fix: chmod 600 $tmp/kiosk.key"
chmod 600 "$tmp/kiosk.key"
valid credential-0600 "$c"

exit $fail
