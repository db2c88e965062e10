#!/usr/bin/python3
"""test-virtual-key: in demo mode the staff status page plugs in the software security key.

Usage: test-virtual-key.py KEYDESK_BINARY ARTIFACT_DIR
`keydesk --demo` → Staff → the "Security keys" row says no key is plugged in; "Insert a virtual
key" → the key arrives through the USB watch's virtual path and its getInfo, read by libfido2's
CTAP code from the soft key, is shown (CTAP 2.1, no PIN yet, minimum PIN length 4); "Remove
the virtual key" → gone again. Screenshots before/with/after in ARTIFACT_DIR.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kdharness as kh  # noqa: E402
from kdharness import click, wait_showing  # noqa: E402

PAGE_TIMEOUT_S = 10
DEADLINE_S = 90

NO_KEY = "No security key is plugged in."
WITH_KEY = re.compile(r"keydesk Virtual security key \(demo\): .*CTAP 2\.1, no PIN set yet, "
                      r"minimum PIN length 4.*", re.S)


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} KEYDESK_BINARY ARTIFACT_DIR")
    binary, artifacts = sys.argv[1:]

    def body():
        with kh.Session(artifacts) as session:
            proc = kh.start_keydesk(session, binary, "--demo")
            app = session.find_app(kh.APP_NAME)
            click(wait_showing(app, PAGE_TIMEOUT_S, name="Staff", role="push button"))
            try:
                wait_showing(app, PAGE_TIMEOUT_S, match=lambda n: n.startswith(NO_KEY),
                             role="label", what="the status page saying no key is plugged in")
            except kh.HarnessError as e:
                raise kh.HarnessError(f"{e}\non screen: {kh.showing_names(app)}") from None
            session.screenshot(os.path.join(artifacts, "no-key.png"))

            click(wait_showing(app, PAGE_TIMEOUT_S, name="Insert a virtual key",
                               role="push button"))
            try:
                wait_showing(app, PAGE_TIMEOUT_S, match=WITH_KEY.fullmatch, role="label",
                             what="the virtual key's information")
            except kh.HarnessError as e:
                raise kh.HarnessError(f"{e}\non screen: {kh.showing_names(app)}") from None
            session.screenshot(os.path.join(artifacts, "virtual-key.png"))

            click(wait_showing(app, PAGE_TIMEOUT_S, name="Remove the virtual key",
                               role="push button"))
            wait_showing(app, PAGE_TIMEOUT_S, match=lambda n: n.startswith(NO_KEY), role="label",
                         what="the key gone again")
            wait_showing(app, PAGE_TIMEOUT_S, name="Insert a virtual key", role="push button")
            session.screenshot(os.path.join(artifacts, "removed.png"))
            proc.stop(kh.EXPECTED_EXIT_STATUS)

    kh.run_test("test-virtual-key", body, DEADLINE_S)


if __name__ == "__main__":
    main()
