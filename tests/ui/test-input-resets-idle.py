#!/usr/bin/python3
"""test-input-resets-idle: real X input (xdotool) keeps keydesk's idle overlay away.

Usage: test-input-resets-idle.py KEYDESK_BINARY CONFIG ARTIFACT_DIR
Opens the status page, then gives one kind of input at a time, each 0.6 x idle-timeout after
the one before (a key press, a pointer move, a click), which covers 1.8 x idle-timeout. If
an input kind does not restart the idle timer, 'Still there?' shows before the next input
(or, for the last one, too early in the control that follows) and the test names the kind.
Leaves input.png and the app's stderr log in ARTIFACT_DIR.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kdharness as kh  # noqa: E402
from kdharness import check, find_showing, wait_showing  # noqa: E402

PAGE_TIMEOUT_S = 5
SLACK_S = 3
EARLY_S = 1.0
POLL_S = 0.25
PERIOD = 0.6  # of idle-timeout between inputs: short enough to hold the overlay off with
# margin, long enough that one ignored input lets it show before the next
INPUTS = ("key press", "pointer move", "click")


def keydesk_window(session):
    """X window id and geometry of keydesk's toplevel (no window manager: it sits at 0,0)."""
    def search():
        try:
            out = session.xdotool("search", "--onlyvisible", "--name", "^keydesk$")
        except kh.HarnessError:  # xdotool exits 1 while nothing matches yet
            return None
        return out.split()[0] if out else None

    wid = kh.wait_until(search, PAGE_TIMEOUT_S, "keydesk's X window")
    geometry = dict(line.split("=", 1) for line in
                    session.xdotool("getwindowgeometry", "--shell", wid).splitlines())
    return wid, int(geometry["X"]), int(geometry["Y"]), int(geometry["WIDTH"]), \
        int(geometry["HEIGHT"])


def park_pointer(session, window):
    # Away from where the test will move it, so the move is a real one (mousemove --sync
    # waits for the pointer to change position). Done before the status page opens.
    _, x, y, width, height = window
    session.xdotool("mousemove", "--sync", str(x + width - 3), str(y + height - 3))


def heading_center(app):
    # A plain label: hovering or clicking it does nothing but count as activity.
    node = find_showing(app, name="Kiosk status", role="label")
    check(node is not None, "status page heading is not shown")
    (x, y), (w, h) = node.position, node.size
    return x + w // 2, y + h // 2


def give_input(session, app, window, kind):
    wid = window[0]
    if kind == "key press":
        # Through XTEST (no --window, which would send a synthetic event GTK may ignore).
        # Shift alone types nothing and activates nothing.
        session.xdotool("windowfocus", "--sync", wid)
        session.xdotool("key", "shift")
    elif kind == "pointer move":
        x, y = heading_center(app)
        session.xdotool("mousemove", "--sync", str(x), str(y))
    else:  # the pointer is already on the heading: a click without motion
        session.xdotool("click", "1")


def watch_no_overlay(app, until, last):
    """Poll until @until; fail if the overlay shows, blaming the input given before it."""
    while time.monotonic() < until:
        if find_showing(app, name="Still there?", role="label") is not None:
            kind, at = last
            raise kh.HarnessError(
                f"idle overlay appeared {time.monotonic() - at:.1f} s after the {kind}: "
                f"a {kind} did not restart the idle timer")
        time.sleep(POLL_S)


def keep_busy(session, app, window, opened_at, period):
    """Give each kind of input in turn; return (kind, time) of the last one."""
    last = ("status page opening", opened_at)
    for i, kind in enumerate(INPUTS):
        watch_no_overlay(app, opened_at + (i + 1) * period, last)
        give_input(session, app, window, kind)
        last = (kind, time.monotonic())
        print(f"{last[1] - opened_at:5.1f} s after the status page opened: {kind}")
    return last


def main():
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} KEYDESK_BINARY CONFIG ARTIFACT_DIR")
    binary, config_path, artifacts = sys.argv[1:]
    config_path = os.path.abspath(config_path)
    cfg = kh.read_kiosk_config(config_path)
    timeout = cfg["idle_timeout"]
    period = PERIOD * timeout
    deadline = 60 + 4 * timeout

    def body():
        with kh.Session(artifacts) as session:
            proc = kh.start_keydesk(session, binary, "--config", config_path)
            app = session.find_app(kh.APP_NAME)
            window = keydesk_window(session)
            park_pointer(session, window)

            wait_showing(app, PAGE_TIMEOUT_S, name="Staff", role="push button")
            kh.click(app.child(name="Staff", roleName="push button"))
            wait_showing(app, PAGE_TIMEOUT_S, name="Kiosk status", role="label")
            opened_at = time.monotonic()

            kind, at = keep_busy(session, app, window, opened_at, period)
            watch_no_overlay(app, at + period, (kind, at))
            check(find_showing(app, name="Kiosk status", role="label") is not None,
                  "the status page went away while the visitor was active")
            session.screenshot(os.path.join(artifacts, "input.png"))

            # Without input the overlay must now come, one idle-timeout after the last input.
            wait_showing(app, timeout + SLACK_S, name="Still there?", role="label",
                         what="the idle overlay after input stopped")
            waited = time.monotonic() - at
            print(f"idle overlay {waited:.1f} s after the last input (idle-timeout {timeout} s)")
            check(waited >= timeout - EARLY_S,
                  f"idle overlay came {waited:.1f} s after the {kind}: a {kind} did not "
                  "restart the idle timer")

            proc.stop(kh.EXPECTED_EXIT_STATUS)

    kh.run_test("test-input-resets-idle", body, deadline)


if __name__ == "__main__":
    main()
