#!/usr/bin/python3
"""test-demo-badge: `keydesk --demo` shows the DEMO badge on its welcome page.

Usage: test-demo-badge.py KEYDESK_BINARY ARTIFACT_DIR
Leaves demo.png and the app's stderr log in ARTIFACT_DIR. (test-welcome checks the
opposite: no badge with a real configuration.)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kdharness as kh  # noqa: E402
from kdharness import wait_showing  # noqa: E402

PAGE_TIMEOUT_S = 5
DEADLINE_S = 90


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} KEYDESK_BINARY ARTIFACT_DIR")
    binary, artifacts = sys.argv[1:]

    def body():
        with kh.Session(artifacts) as session:
            proc = kh.start_keydesk(session, binary, "--demo")
            app = session.find_app(kh.APP_NAME)
            wait_showing(app, PAGE_TIMEOUT_S, name="Staff", role="push button",
                         what="the welcome page's Staff button")
            try:
                wait_showing(app, PAGE_TIMEOUT_S, name="DEMO", role="label",
                             what="the DEMO badge")
            except kh.HarnessError as e:
                raise kh.HarnessError(f"{e}\non screen: {kh.showing_names(app)}") from None
            session.screenshot(os.path.join(artifacts, "demo.png"))
            proc.stop(kh.EXPECTED_EXIT_STATUS)

    kh.run_test("test-demo-badge", body, DEADLINE_S)


if __name__ == "__main__":
    main()
