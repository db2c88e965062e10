#!/usr/bin/env python3
# udev-lint: a strict parser for udev rules files, as udev(7) of systemd 252 defines them (keys,
# attributes, operators, quoting, line continuation, GOTO/LABEL), because Debian 12's udevadm has
# no `udevadm verify` (systemd 253). With --policy it also checks what keydesk's rules promise:
# every rule that grants access grants exactly TAG+="uaccess", GROUP="keydesk", MODE="0660", and
# only to hidraw nodes or USB device nodes that a vendor id or ID_SECURITY_TOKEN singles out.
#
# Usage: udev-lint.py [--policy] FILE...   -> exit 0, or FILE:LINE: message lines and exit 1
#        udev-lint.py --self-test          -> the parser rejects known-bad lines, accepts good ones
import re
import sys

MATCH = {"==", "!="}
# key -> (allowed operators, attribute: None = forbidden, "req" = required, "opt" = optional)
KEYS = {
    "ACTION": (MATCH, None),
    "DEVPATH": (MATCH, None),
    "KERNEL": (MATCH, None),
    "KERNELS": (MATCH, None),
    "SUBSYSTEM": (MATCH, None),
    "SUBSYSTEMS": (MATCH, None),
    "DRIVER": (MATCH, None),
    "DRIVERS": (MATCH, None),
    "ATTRS": (MATCH, "req"),
    "TAGS": (MATCH, None),
    "CONST": (MATCH, "req"),
    "TEST": (MATCH, "opt"),
    # PROGRAM and IMPORT are matches; udev accepts '=' for them, as shipped rules write them.
    "PROGRAM": (MATCH | {"="}, None),
    "RESULT": (MATCH, None),
    "NAME": (MATCH | {"=", ":="}, None),
    "SYMLINK": (MATCH | {"=", "+=", "-=", ":="}, None),
    "ENV": (MATCH | {"=", "+="}, "req"),
    "TAG": (MATCH | {"=", "+=", "-="}, None),
    "ATTR": (MATCH | {"="}, "req"),
    "SYSCTL": (MATCH | {"="}, "req"),
    "IMPORT": (MATCH | {"="}, "req"),
    "OWNER": ({"=", ":="}, None),
    "GROUP": ({"=", ":="}, None),
    "MODE": ({"=", ":="}, None),
    "SECLABEL": ({"=", "+=", ":="}, "req"),
    "RUN": ({"=", "+=", ":="}, "opt"),
    "OPTIONS": ({"=", "+=", ":="}, None),
    "LABEL": ({"="}, None),
    "GOTO": ({"="}, None),
}
ATTR_VALUES = {
    "IMPORT": {"program", "builtin", "file", "db", "cmdline", "parent"},
    "RUN": {"program", "builtin"},
    "CONST": {"arch", "virt"},
}
OPTIONS = re.compile(r"^(string_escape=(none|replace)|db_persist|watch|nowatch|"
                     r"static_node=\S+|link_priority=-?\d+|log_level=\S+)$")
PAIR = re.compile(r'\s*([A-Z_]+)(\{([^{}"]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*(e?)"')
HEX4S = re.compile(r"^[0-9a-f]{4}(\|[0-9a-f]{4})*$")


def read_value(line, pos, escaped):
    """The quoted value starting at line[pos] (just after the opening quote) and the position
    after the closing quote; None if it is not terminated."""
    out = []
    i = pos
    while i < len(line):
        c = line[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= len(line):
                return None
            nxt = line[i + 1]
            if escaped:
                if nxt not in 'abfnrtv\\"x0123456789':
                    return None
            elif nxt not in '"\\':
                # udev keeps other backslashes literally; flag them, they are almost always a
                # mistake in a value meant for fnmatch or for a program's argv.
                return None
            out.append(c + nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return None


def parse_rule(text):
    """A rule (continuations already joined) -> list of (key, attr, op, value), or a message."""
    pairs = []
    pos = 0
    while True:
        m = PAIR.match(text, pos)
        if not m:
            rest = text[pos:].strip()
            return "cannot parse '%s': want KEY[{attr}]OP\"value\"" % rest[:40]
        key, attr, op, escaped = m.group(1), m.group(3), m.group(4), m.group(5) == "e"
        got = read_value(text, m.end(), escaped)
        if got is None:
            return "%s: unterminated value or stray backslash" % key
        value, pos = got
        if key not in KEYS:
            return "unknown key %s" % key
        ops, attr_rule = KEYS[key]
        if op not in ops:
            return "%s does not take the operator %s (only %s)" % (key, op, " ".join(sorted(ops)))
        if attr_rule is None and m.group(2):
            return "%s takes no {attribute}" % key
        if attr_rule == "req" and not attr:
            return "%s needs an {attribute}" % key
        if attr and key in ATTR_VALUES and attr not in ATTR_VALUES[key]:
            return "%s{%s}: want one of %s" % (key, attr, ", ".join(sorted(ATTR_VALUES[key])))
        if key == "TEST" and attr and not re.match(r"^[0-7]{1,4}$", attr):
            return "TEST{%s}: the attribute is an octal mode" % attr
        if key == "MODE" and "$" not in value and not re.match(r"^[0-7]{3,4}$", value):
            return "MODE \"%s\" is not an octal mode" % value
        if key == "OPTIONS" and op != "==" and not all(
                OPTIONS.match(o.strip()) for o in value.split(",")):
            return "OPTIONS \"%s\": unknown option" % value
        if key in ("LABEL", "GOTO") and not re.match(r"^[A-Za-z0-9_.-]+$", value):
            return "%s \"%s\": want a plain name" % (key, value)
        pairs.append((key, attr, op, value))
        rest = text[pos:]
        if rest.strip() == "":
            return pairs
        m2 = re.match(r"\s*,\s*", rest)
        if not m2:
            return "a comma is missing after %s" % key
        pos += m2.end()
        if text[pos:].strip() == "":
            return "trailing comma"


def logical_lines(path):
    """(first line number, text) per rule, with backslash continuations joined."""
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    out = []
    buf, start = None, 0
    for n, line in enumerate(raw, 1):
        if buf is None:
            if line.strip() == "" or line.lstrip().startswith("#"):
                continue
            buf, start = "", n
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        out.append((start, buf + line))
        buf = None
    if buf is not None:
        out.append((start, buf))
    return out


def policy(pairs):
    d = {}
    for key, attr, op, value in pairs:
        d.setdefault((key, attr, op), []).append(value)
    for key, attr, op, value in pairs:
        if key in ("ATTR", "ATTRS") and attr in ("idVendor", "idProduct") and \
                not HEX4S.match(value):
            return "%s{%s}==\"%s\": want lowercase 4-digit hex ids separated by |, as sysfs " \
                   "prints them (udev compares strings)" % (key, attr, value)
    grants = [p for p in pairs if p[0] in ("GROUP", "MODE", "OWNER") or
              (p[0] == "TAG" and p[2] in ("+=", "="))]
    if not grants:
        return None
    if d.get(("GROUP", None, "=")) != ["keydesk"] or d.get(("MODE", None, "=")) != ["0660"] or \
            d.get(("TAG", None, "+=")) != ["uaccess"] or ("OWNER", None, "=") in d:
        return 'a rule that grants access grants exactly TAG+="uaccess", GROUP="keydesk", ' \
               'MODE="0660"'
    hidraw = d.get(("SUBSYSTEM", None, "==")) == ["hidraw"] and \
        d.get(("KERNEL", None, "==")) == ["hidraw*"]
    usb = d.get(("SUBSYSTEM", None, "==")) == ["usb"] and \
        d.get(("ENV", "DEVTYPE", "==")) == ["usb_device"]
    if not (hidraw or usb):
        return 'access is granted only to hidraw nodes (KERNEL=="hidraw*", SUBSYSTEM=="hidraw") ' \
               'or USB device nodes (SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device")'
    vendor = ("ATTRS" if hidraw else "ATTR", "idVendor", "==")
    token = hidraw and d.get(("ENV", "ID_SECURITY_TOKEN", "==")) == ["1"]
    if not token and vendor not in d:
        return "access to every %s node: match a vendor id%s" % (
            "hidraw" if hidraw else "USB device", " or ENV{ID_SECURITY_TOKEN}" if hidraw else "")
    if hidraw and not token and d.get(("ENV", "KEYDESK_HID_BOOT", "!=")) != ["1"]:
        return 'a vendor-matched hidraw rule must skip boot keyboards and mice ' \
               '(ENV{KEYDESK_HID_BOOT}!="1")'
    return None


def lint(path, with_policy):
    errors = []
    try:
        rules = logical_lines(path)
    except (OSError, UnicodeDecodeError) as e:
        return ["%s: %s" % (path, e)]
    labels = {}
    gotos = []
    for n, text in rules:
        pairs = parse_rule(text)
        if isinstance(pairs, str):
            errors.append("%s:%d: %s" % (path, n, pairs))
            continue
        for key, attr, op, value in pairs:
            if key == "LABEL":
                if value in labels:
                    errors.append("%s:%d: LABEL \"%s\" defined twice" % (path, n, value))
                labels[value] = n
            elif key == "GOTO":
                gotos.append((n, value))
        if with_policy:
            msg = policy(pairs)
            if msg:
                errors.append("%s:%d: %s" % (path, n, msg))
    for n, target in gotos:
        # udev jumps forward only, within one file.
        if labels.get(target, 0) <= n:
            errors.append("%s:%d: GOTO \"%s\" has no LABEL after it in this file" % (path, n, target))
    return errors


BAD = [
    ('KERNEL="hidraw*", GROUP="keydesk"', "KERNEL does not take the operator ="),
    ('SUBSYSTEM=="usb" GROUP="keydesk"', "a comma is missing"),
    ('SUBSYSTEM=="usb", GROUP="keydesk', "unterminated"),
    ('SUBSYSTEM=="usb", MODE="0966"', "not an octal mode"),
    ('SUBSYSTEM=="usb", FOO="bar"', "unknown key FOO"),
    ('ATTRS=="1050"', "needs an {attribute}"),
    ('SUBSYSTEM{x}=="usb"', "takes no {attribute}"),
    ('GROUP=="keydesk"', "GROUP does not take the operator =="),
    ('ATTRS{idVendor}=="1O50"', "lowercase 4-digit hex"),
    ('ATTR{idVendor}=="1050", ATTR{idProduct}=="0407|04O7"', "lowercase 4-digit hex"),
    ('IMPORT{programme}="fido_id"', "want one of"),
    ('SUBSYSTEM=="usb",', "trailing comma"),
    ('SUBSYSTEM=="usb", OPTIONS+="nosuchoption"', "unknown option"),
    ('GOTO="nowhere"', "has no LABEL after it"),
    ('SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", TAG+="uaccess", GROUP="keydesk", MODE="0660"',
     "match a vendor id"),
    ('SUBSYSTEM=="hidraw", KERNEL=="hidraw*", TAG+="uaccess", GROUP="keydesk", MODE="0660"',
     "match a vendor id or ENV{ID_SECURITY_TOKEN}"),
    ('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ENV{KEYDESK_HID_BOOT}!="1", ATTRS{idVendor}=="1050", '
     'GROUP="keydesk", MODE="0666", TAG+="uaccess"', "grants exactly"),
    ('SUBSYSTEM=="input", ATTRS{idVendor}=="1050", TAG+="uaccess", GROUP="keydesk", MODE="0660"',
     "access is granted only to hidraw nodes"),
    ('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ATTRS{idVendor}=="1050", TAG+="uaccess", '
     'GROUP="keydesk", MODE="0660"', "must skip boot keyboards"),
]
# (rule, checked with --policy too)
GOOD = [
    ('ACTION=="remove", GOTO="x"\nLABEL="x"', True),
    ('KERNEL=="hidraw*", SUBSYSTEM=="hidraw", ENV{ID_SECURITY_TOKEN}=="1", TAG+="uaccess", '
     'GROUP="keydesk", MODE="0660"', True),
    ('SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", \\\n  ATTR{idVendor}=="2ccf", TAG+="uaccess", '
     'GROUP="keydesk", MODE="0660"', True),
    ('SUBSYSTEM=="hidraw", IMPORT{program}="fido_id"', True),
    ('SUBSYSTEM=="sound", TAG+="uaccess", OPTIONS+="static_node=snd/timer"', False),
    ('ENV{ID_X}=="?*", PROGRAM="/bin/echo \\"a\\"", RUN{builtin}+="uaccess", SYMLINK += "a"', False),
]


def self_test():
    import os
    import tempfile
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for i, (text, want, pol) in enumerate([(b, w, True) for b, w in BAD] +
                                              [(g, None, pol) for g, pol in GOOD]):
            p = os.path.join(d, "t%d.rules" % i)
            with open(p, "w") as f:
                f.write(text + "\n")
            errs = lint(p, pol)
            if want is None and errs:
                print("self-test: rejected a good rule %r: %s" % (text, errs))
                failures += 1
            elif want is not None and not any(want in e for e in errs):
                print("self-test: %r should fail with '%s', got %s" % (text, want, errs or "no error"))
                failures += 1
    print("self-test: %d bad rules rejected, %d good rules accepted, %d failures"
          % (len(BAD), len(GOOD), failures))
    return 1 if failures else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    with_policy = bool(argv) and argv[0] == "--policy"
    files = argv[1:] if with_policy else argv
    if not files:
        print(__doc__ or "usage: udev-lint.py [--policy] FILE... | --self-test", file=sys.stderr)
        return 2
    errors = []
    count = 0
    for path in files:
        errors += lint(path, with_policy)
        try:
            count += len(logical_lines(path))
        except (OSError, UnicodeDecodeError):
            pass
    for e in errors:
        print(e, file=sys.stderr)
    print("udev-lint: %d file(s), %d rule(s), %d problem(s)" % (len(files), count, len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
