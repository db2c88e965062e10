#!/usr/bin/env bash
# test-udev: udev/70-keydesk-fido.rules and the list it is generated from.
#
#   test-udev.sh generated PYTHON SRCDIR BUILT_RULES
#       the script's output is byte-identical to the committed copy and to what the build made,
#       and two runs give the same bytes
#   test-udev.sh lint PYTHON SRCDIR
#       every rule line parses (tests/hw/udev-lint.py: udev(7)'s keys, operators and quoting;
#       Debian 12's udevadm has no `verify`), the rules keep keydesk's access policy, the parser
#       rejects known-bad lines, and it accepts every rules file installed on this machine
#   test-udev.sh rejects PYTHON SRCDIR
#       scripts/gen-fido-ids refuses malformed lists with a clear message and exit status 1
#   test-udev.sh umockdev PYTHON SRCDIR
#       systemd's own udevadm runs the rules (with the real 60-fido-id.rules and fido_id) on
#       umockdev devices in a private mount namespace: GROUP/MODE/uaccess on a FIDO key's hidraw
#       and USB device nodes, and not on a keyboard's; exit 77 (skipped) without udevadm
#   test-udev.sh install BUILD_DIR PYTHON SRCDIR
#       `cmake --install` puts the rules and the sysusers.d snippet where udev and
#       systemd-sysusers read them, and systemd-sysusers creates the keydesk group from it
set -euo pipefail

mode=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

generate() { # PYTHON SRCDIR OUT [TSV]
    "$1" "$2/scripts/gen-fido-ids" --rules "$3" ${4:+"$4"}
}

case $mode in
generated)
    py=$1 src=$2 built=$3
    generate "$py" "$src" "$tmp/a.rules"
    generate "$py" "$src" "$tmp/b.rules"
    cmp "$tmp/a.rules" "$tmp/b.rules" || fail "two runs of scripts/gen-fido-ids differ"
    cmp "$tmp/a.rules" "$src/udev/70-keydesk-fido.rules" ||
        fail "udev/70-keydesk-fido.rules is not what scripts/gen-fido-ids writes from" \
            "hw/data/fido-usb-ids.tsv; run: scripts/gen-fido-ids --rules udev/70-keydesk-fido.rules"
    cmp "$tmp/a.rules" "$built" || fail "$built (made by the build) differs from the script's output"
    echo "generated: committed, built and regenerated rules are identical ($(wc -l <"$tmp/a.rules") lines)"
    ;;

lint)
    py=$1 src=$2
    "$py" "$src/tests/hw/udev-lint.py" --self-test
    "$py" "$src/tests/hw/udev-lint.py" --policy "$src/udev/70-keydesk-fido.rules"
    shopt -s nullglob
    # /lib is /usr/lib on a merged-/usr system: count each file once.
    mapfile -t system < <(readlink -f /lib/udev/rules.d/*.rules /usr/lib/udev/rules.d/*.rules \
        /etc/udev/rules.d/*.rules 2>/dev/null | sort -u)
    if [ ${#system[@]} -gt 0 ]; then
        "$py" "$src/tests/hw/udev-lint.py" "${system[@]}" ||
            fail "the parser rejects a rules file installed on this machine: it is wrong, not them"
    fi
    ;;

rejects)
    py=$1 src=$2
    good=$src/hw/data/fido-usb-ids.tsv
    generate "$py" "$src" "$tmp/ok.rules" "$good" || fail "the committed list is rejected"
    # Each case: a sed expression that breaks the list, and what the message must say.
    cases=(
        's/^1050\t0407\t/1050\t0406\t/|duplicate id 1050:0406'
        's/^1050\t0407\t/1050\t04g7\t/|bad product id '\''04g7'\'''
        's/^1050\t0407\t/1O50\t0407\t/|bad vendor id '\''1O50'\'''
        's/^1050\t0407\t/1050\t0407\t/; s/^\(1050\t0407\t[^\t]*\t[^\t]*\)\t.*/\1\t/|missing source'
        's/^\(1050\t0407\t[^\t]*\t[^\t]*\)\t.*/\1/|4 tab-separated fields, want 5'
        's/^\(1050\t0407\t[^\t]*\t[^\t]*\)\t.*/\1\tnosuchsource/|unknown source '\''nosuchsource'\'''
        's/^1050\t0407\t/1050\t0A07\t/|bad product id '\''0A07'\'''
        's/^1050\t0113\t/1050\t0500\t/|not sorted'
        's/^1209\t5070\t/1209\t*\t/|declared generic'
        's/^0483\ta2ac\tellipticSecure/0483\ta2ac\tellipticSecure"/|has a control character, a quote'
        '/^#@source usbids/d|unknown source '\''usbids'\'''
    )
    for c in "${cases[@]}"; do
        expr=${c%%|*} want=${c#*|}
        sed "$expr" "$good" >"$tmp/bad.tsv"
        if cmp -s "$good" "$tmp/bad.tsv"; then
            fail "case '$expr' did not change the list (the test itself is broken)"
        fi
        rm -f "$tmp/out.rules"
        status=0
        "$py" "$src/scripts/gen-fido-ids" --rules "$tmp/out.rules" --table "$tmp/out.inc" \
            "$tmp/bad.tsv" 2>"$tmp/err" || status=$?
        [ "$status" -ne 0 ] || fail "gen-fido-ids accepted a list broken by '$expr'"
        [ "$status" -eq 1 ] || fail "'$expr': exit status $status, want 1"
        grep -qF -- "$want" "$tmp/err" || fail "'$expr': message lacks '$want':$(printf '\n')$(cat "$tmp/err")"
        grep -qE '^[^:]+\.tsv:[0-9]+: ' "$tmp/err" || fail "'$expr': no FILE:LINE: in the message"
        if [ -e "$tmp/out.rules" ] || [ -e "$tmp/out.inc" ]; then
            fail "'$expr': wrote output anyway"
        fi
        echo "rejected ($want): $(head -n1 "$tmp/err")"
    done
    # A vendor with * and another row, and a file without a trailing newline.
    printf 'vendor\tproduct\tbrand\tname\tsource\n#@source s x\n2ccf\t*\tH\tK\ts\n2ccf\t0880\tH\tK\ts\n' \
        >"$tmp/wild.tsv"
    if "$py" "$src/scripts/gen-fido-ids" "$tmp/wild.tsv" 2>"$tmp/err"; then
        fail "accepted a vendor listed with * and with a product"
    fi
    grep -q "is listed with \* (line 3) and may have no other row" "$tmp/err" || fail "$(cat "$tmp/err")"
    printf 'vendor\tproduct\tbrand\tname\tsource\n#@source s x\n2ccf\t*\tH\tK\ts' >"$tmp/nl.tsv"
    if "$py" "$src/scripts/gen-fido-ids" "$tmp/nl.tsv" 2>"$tmp/err"; then
        fail "accepted a file without a final newline"
    fi
    echo "rejects: ${#cases[@]} + 2 malformed lists refused with FILE:LINE messages"
    ;;

umockdev)
    py=$1 src=$2
    udevadm=$(command -v udevadm || true)
    for d in /usr/bin /bin /sbin /usr/sbin; do
        [ -n "$udevadm" ] || { [ -x "$d/udevadm" ] && udevadm=$d/udevadm; } || true
    done
    libudev=/lib/udev
    if [ -z "$udevadm" ] || [ ! -x "$libudev/fido_id" ] || [ ! -f "$libudev/rules.d/60-fido-id.rules" ]; then
        echo "SKIP: udevadm, fido_id or 60-fido-id.rules missing (Debian package udev)"
        exit 77
    fi
    command -v umockdev-run >/dev/null || { echo "SKIP: umockdev-run missing"; exit 77; }
    ns=(unshare -m)
    [ "$(id -u)" -eq 0 ] || ns=(unshare -r -m)
    if ! "${ns[@]}" true 2>/dev/null; then
        echo "SKIP: no private mount namespace here ($(id -un)); the rules cannot be loaded"
        exit 77
    fi

    # What udevadm reads in the namespace: only the real 60-fido-id.rules and our rules, the
    # real fido_id (behind a wrapper, see below), and a group file that has the keydesk group.
    mkdir -p "$tmp/libudev/rules.d" "$tmp/sysroot/etc"
    cp "$libudev/rules.d/60-fido-id.rules" "$tmp/libudev/rules.d/"
    generate "$py" "$src" "$tmp/libudev/rules.d/70-keydesk-fido.rules"
    cp "$libudev/fido_id" "$tmp/libudev/fido_id.real"
    systemd-sysusers --root="$tmp/sysroot" "$src/udev/keydesk.sysusers.conf" >/dev/null 2>&1 ||
        fail "systemd-sysusers refused udev/keydesk.sysusers.conf"
    gid=$(awk -F: '$1 == "keydesk" { print $3 }' "$tmp/sysroot/etc/group")
    [ -n "$gid" ] || fail "udev/keydesk.sysusers.conf does not create the keydesk group"
    cat /etc/group "$tmp/sysroot/etc/group" >"$tmp/group"

    # The testbed. No MAJOR/MINOR: with a device number `udevadm test` would create
    # /dev/char/M:m symlinks in the real /dev, which umockdev does not redirect.
    fido_desc=06D0F10901A101092015002600FF7508954081020921150026FF00750895409102C0
    kbd_desc=05010906A101050719E029E71500250175019508810295017508810395057501050819012905910295017503910395067508150025650507190029658100C0
    usb=/devices/pci0000:00/0000:00:14.0/usb1
    {
        iface() { # PORT IFNUM VID PID HIDNUM DESC HIDRAW SUBCLASS PROTOCOL
            local port=$1 ifn=$2 vid=$3 pid=$4 n=$5 desc=$6 raw=$7 sub=$8 proto=$9
            local intf=$usb/1-$port/1-$port:1.$ifn hid
            hid=$intf/0003:${vid^^}:${pid^^}.000$n
            printf 'P: %s/hidraw/%s\nE: DEVNAME=/dev/%s\nE: SUBSYSTEM=hidraw\n\n' "$hid" "$raw" "$raw"
            printf 'P: %s\nE: DRIVER=hid-generic\nE: HID_ID=0003:0000%s:0000%s\nE: SUBSYSTEM=hid\nH: report_descriptor=%s\n\n' \
                "$hid" "${vid^^}" "${pid^^}" "$desc"
            printf 'P: %s\nE: DEVTYPE=usb_interface\nE: DRIVER=usbhid\nE: SUBSYSTEM=usb\nA: bInterfaceNumber=0%s\nA: bInterfaceClass=03\nA: bInterfaceSubClass=%s\nA: bInterfaceProtocol=%s\n\n' \
                "$intf" "$ifn" "$sub" "$proto"
        }
        usbdev() { # PORT VID PID
            printf 'P: %s/1-%s\nE: DEVNAME=/dev/bus/usb/001/00%s\nE: DEVTYPE=usb_device\nE: DRIVER=usb\nE: SUBSYSTEM=usb\nA: idVendor=%s\nA: idProduct=%s\nA: busnum=1\nA: devnum=%s\n\n' \
                "$usb" "$1" "$(($1 + 1))" "$2" "$3" "$(($1 + 1))"
        }
        # YubiKey 5 (listed): its FIDO interface, and its OTP keyboard interface.
        iface 1 0 1050 0407 1 "$fido_desc" hidraw0 00 00
        iface 1 1 1050 0407 6 "$kbd_desc" hidraw5 01 01
        usbdev 1 1050 0407
        # An unlisted product of a shared vendor id, with a FIDO report descriptor.
        iface 2 0 1209 0001 2 "$fido_desc" hidraw1 00 00
        usbdev 2 1209 0001
        # A keyboard.
        iface 3 0 046d c31c 3 "$kbd_desc" hidraw2 01 01
        usbdev 3 046d c31c
        # Hypersecu (listed with *) whose descriptor fido_id does not recognise.
        iface 4 0 2ccf 1234 4 "$kbd_desc" hidraw3 00 00
        usbdev 4 2ccf 1234
        # A YubiKey in OTP-only mode: a listed vendor, an unlisted product, no FIDO interface.
        iface 5 0 1050 0010 5 "$kbd_desc" hidraw4 01 01
        usbdev 5 1050 0010
        printf 'P: %s\nE: DEVTYPE=usb_device\nE: DRIVER=usb\nE: SUBSYSTEM=usb\nA: idVendor=1d6b\nA: idProduct=0002\n\n' "$usb"
        printf 'P: /devices/pci0000:00/0000:00:14.0\nE: DRIVER=xhci_hcd\nE: SUBSYSTEM=pci\n\n'
    } >"$tmp/testbed.umockdev"

    # udev runs programs with the event's properties as their whole environment, so fido_id
    # would lose umockdev's preload; the wrapper puts it back and names the device explicitly
    # (`udevadm test` events have no SEQNUM, which fido_id's environment path requires).
    cat >"$tmp/inner.sh" <<EOF
set -eu
printf '#!/bin/sh\nexec env LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=%s /lib/udev/fido_id.real "/sys\$DEVPATH"\n' \
    "\$UMOCKDEV_DIR" >/lib/udev/fido_id
chmod +x /lib/udev/fido_id
for d in \$(sed -n 's/^P: //p' "$tmp/testbed.umockdev"); do
    case \$d in */hidraw/*|*/usb1/1-[0-9]) ;; *) continue ;; esac
    echo "=== \$d"
    "$udevadm" test --action=add "/sys\$d" 2>&1
done
EOF
    cat >"$tmp/outer.sh" <<EOF
set -eu
mount --bind "$tmp/libudev" /lib/udev
mount -t tmpfs tmpfs /run
mount --bind "$tmp/group" /etc/group
exec umockdev-run -d "$tmp/testbed.umockdev" -- sh "$tmp/inner.sh"
EOF
    had_char=0
    [ -e /dev/char ] && had_char=1
    "${ns[@]}" sh "$tmp/outer.sh" >"$tmp/udevadm.log" 2>&1 || {
        cat "$tmp/udevadm.log"
        fail "udevadm test failed"
    }
    [ $had_char = 1 ] || [ ! -e /dev/char ] || fail "udevadm test wrote /dev/char in the real /dev"

    rules=$tmp/libudev/rules.d/70-keydesk-fido.rules
    line_of() { grep -n -F -- "$1" "$rules" | head -n1 | cut -d: -f1; }
    token_line=$(line_of 'ENV{ID_SECURITY_TOKEN}')
    yubi_hid=$(line_of 'ATTRS{idVendor}=="1050"')
    yubi_usb=$(line_of 'ATTR{idVendor}=="1050"')
    hyper_hid=$(line_of 'ATTRS{idVendor}=="2ccf"')
    hyper_usb=$(line_of 'ATTR{idVendor}=="2ccf"')
    for l in "$token_line" "$yubi_hid" "$yubi_usb" "$hyper_hid" "$hyper_usb"; do
        [ -n "$l" ] || fail "a rule this test expects is missing from the generated rules"
    done
    # The log of one device: from its === line to the next.
    section() { awk -v d="=== $1" '$0 == d { on = 1; next } /^=== / { on = 0 } on' "$tmp/udevadm.log"; }
    # expect DEVICE "LINE LINE…" (the rule lines that grant it access; empty: none may)
    expect() {
        local dev=$1 want=$2 log got
        log=$(section "$dev")
        [ -n "$log" ] || fail "no udevadm output for $dev"
        got=$(printf '%s\n' "$log" | sed -n 's/.*70-keydesk-fido\.rules:\([0-9]*\) GROUP \([0-9]*\)$/\1:\2/p' | tr '\n' ' ')
        local exp="" l
        for l in $want; do exp+="$l:$gid "; done
        [ "$got" = "$exp" ] || fail "$dev: GROUP set by rule lines '$got', want '$exp'"$'\n'"$log"
        local modes
        modes=$(printf '%s\n' "$log" | grep -c '70-keydesk-fido\.rules:[0-9]* MODE 0660$' || true)
        [ "$modes" -eq "$(echo "$want" | wc -w)" ] || fail "$dev: MODE 0660 set $modes times"$'\n'"$log"
        if [ -n "$want" ]; then
            printf '%s\n' "$log" | grep -q '^TAGS=.*:uaccess:' || fail "$dev: no uaccess tag"$'\n'"$log"
        else
            ! printf '%s\n' "$log" | grep -q '^TAGS=.*:uaccess:' || fail "$dev: tagged uaccess"$'\n'"$log"
        fi
        echo "ok $dev: ${want:-no access}"
    }
    ! grep -q "Unknown group 'keydesk'" "$tmp/udevadm.log" || fail "udev could not resolve the keydesk group"
    section "$usb/1-1/1-1:1.0/0003:1050:0407.0001/hidraw/hidraw0" | grep -q '^ID_SECURITY_TOKEN=1$' ||
        fail "fido_id did not recognise the FIDO report descriptor (the fixture is wrong)"
    expect "$usb/1-1/1-1:1.0/0003:1050:0407.0001/hidraw/hidraw0" "$token_line $yubi_hid"
    expect "$usb/1-1" "$yubi_usb"
    expect "$usb/1-2/1-2:1.0/0003:1209:0001.0002/hidraw/hidraw1" "$token_line"
    expect "$usb/1-2" ""
    expect "$usb/1-3/1-3:1.0/0003:046D:C31C.0003/hidraw/hidraw2" ""
    expect "$usb/1-3" ""
    expect "$usb/1-4/1-4:1.0/0003:2CCF:1234.0004/hidraw/hidraw3" "$hyper_hid"
    expect "$usb/1-4" "$hyper_usb"
    expect "$usb/1-5/1-5:1.0/0003:1050:0010.0005/hidraw/hidraw4" ""
    expect "$usb/1-5" ""
    expect "$usb/1-1/1-1:1.1/0003:1050:0407.0006/hidraw/hidraw5" ""
    echo "umockdev: udevadm $("$udevadm" --version) applied the rules as intended to 11 device nodes"
    ;;

install)
    build=$1 py=$2 src=$3
    DESTDIR=$tmp/root cmake --install "$build" --prefix /usr >"$tmp/install.log" 2>&1 || {
        cat "$tmp/install.log"
        fail "cmake --install failed"
    }
    rules=$tmp/root/usr/lib/udev/rules.d/70-keydesk-fido.rules
    sysusers=$tmp/root/usr/lib/sysusers.d/keydesk.conf
    [ -f "$rules" ] || fail "no rules at /usr/lib/udev/rules.d after install"$'\n'"$(cat "$tmp/install.log")"
    [ -f "$sysusers" ] || fail "no /usr/lib/sysusers.d/keydesk.conf after install"
    generate "$py" "$src" "$tmp/expected.rules"
    cmp "$rules" "$tmp/expected.rules" || fail "the installed rules are not the script's output"
    mkdir -p "$tmp/root/etc"
    systemd-sysusers --root="$tmp/root" >/dev/null 2>&1 || fail "systemd-sysusers refused the snippet"
    grep -q '^keydesk:x:[0-9]*:$' "$tmp/root/etc/group" || fail "systemd-sysusers did not create keydesk"
    echo "install: rules and sysusers.d snippet installed; systemd-sysusers created $(grep '^keydesk:' "$tmp/root/etc/group")"
    ;;

*)
    fail "unknown mode $mode"
    ;;
esac
