#!/usr/bin/python3
"""test-welcome: welcome and status pages, Back, and the idle reset, driven through AT-SPI.

Usage: test-welcome.py KEYDESK_BINARY CONFIG ARTIFACT_DIR
Runs keydesk on a private Xvfb and D-Bus bus (tests/ui/kdharness.py), leaves welcome.png,
status.png, idle.png, reset.png and the app's stderr log in ARTIFACT_DIR.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kdharness as kh  # noqa: E402
from kdharness import check, find_showing, wait_gone, wait_showing  # noqa: E402

PAGE_TIMEOUT_S = 5  # a page change after a click; generous for ASan builds
SLACK_S = 3  # timers fire on the main loop, the test polls AT-SPI: allow this much late
EARLY_S = 1.0  # the test sees a page a little after it changed: allow this much early
COUNTDOWN_RE = re.compile(r"Going back to the start in (\d+) seconds?")
VERSION_RE = re.compile(r"\d+\.\d+\.\d+\S*")


def still_here(name):
    # "I'm" may be typeset with a typographic apostrophe; both mean the contract's button.
    return name.replace("\u2019", "'") == "I'm still here"


def fail_with_screen(app, message):
    raise kh.HarnessError(f"{message}\non screen: {kh.showing_names(app)}")


def expect_shown(app, what, **kw):
    if find_showing(app, **kw) is None:
        fail_with_screen(app, f"{what} is not shown")


def expect_hidden(app, what, **kw):
    if find_showing(app, **kw) is not None:
        fail_with_screen(app, f"{what} is shown but should not be")


def contains(text):
    return lambda name: text in name


def check_welcome(app, cfg):
    wait_showing(app, PAGE_TIMEOUT_S, name="Staff", role="push button",
                 what="the welcome page's Staff button")
    expect_shown(app, f"kiosk name {cfg['name']!r}", role="label", match=contains(cfg["name"]))
    expect_shown(app, f"site {cfg['site']!r}", role="label", match=contains(cfg["site"]))
    expect_hidden(app, "DEMO badge (not in demo mode)", name="DEMO")
    expect_hidden(app, "Back button on the welcome page", name="Back", role="push button")
    expect_hidden(app, "status page", name="Kiosk status")


def check_status(app, cfg, config_path):
    expect_hidden(app, "Staff button on the status page", name="Staff", role="push button")
    expect_shown(app, "Back button", name="Back", role="push button")
    for label in ("Version", "Configuration", "Tenant", "Graph", "Identity mode"):
        expect_shown(app, f"label {label!r}", name=label, role="label")
    expect_shown(app, "a version number", role="label", match=VERSION_RE.fullmatch)
    # The app may show the path as given or canonicalised; both name the same file.
    paths = {config_path, os.path.realpath(config_path)}
    expect_shown(app, f"configuration path {config_path}", role="label",
                 match=lambda name: name in paths)
    if cfg["tenant_id"]:
        expect_shown(app, f"tenant {cfg['tenant_id']}", role="label",
                     match=contains(cfg["tenant_id"]))


def open_status(app):
    kh.click(app.child(name="Staff", roleName="push button"))
    wait_showing(app, PAGE_TIMEOUT_S, name="Kiosk status", role="label",
                 what="the status page after clicking Staff")
    return time.monotonic()


def wait_idle_overlay(app, cfg, since, why):
    """Wait for 'Still there?' and check it came idle-timeout seconds after @since."""
    timeout = cfg["idle_timeout"]
    wait_showing(app, timeout + SLACK_S, name="Still there?", role="label",
                 what=f"the idle overlay {timeout} s after {why}")
    waited = time.monotonic() - since
    print(f"idle overlay after {waited:.1f} s ({why}; idle-timeout {timeout} s)")
    check(waited >= timeout - EARLY_S,
          f"idle overlay came {waited:.1f} s after {why}, before idle-timeout ({timeout} s)")
    return time.monotonic()


def countdown_value(app):
    # Any role: keydesk exposes the countdown as an ATK "alert" so screen readers announce it.
    node = find_showing(app, match=COUNTDOWN_RE.fullmatch)
    return int(COUNTDOWN_RE.fullmatch(node.name).group(1)) if node else None


def check_countdown(app, cfg):
    first = kh.wait_until(lambda: countdown_value(app), PAGE_TIMEOUT_S,
                          "the label 'Going back to the start in N seconds'")
    check(first <= cfg["idle_countdown"],
          f"countdown starts at {first}, more than idle-countdown ({cfg['idle_countdown']})")
    later = kh.wait_until(lambda: (v := countdown_value(app)) is not None and v < first and v,
                          2 + SLACK_S, f"the countdown to go below {first}")
    print(f"countdown went {first} -> {later}")
    expect_shown(app, "the I'm still here button", role="push button", match=still_here)


def dismiss_overlay(app):
    button = app.findChild(lambda n: n.roleName == "push button" and still_here(n.name)
                           and n.showing, retry=False)
    kh.click(button)
    wait_gone(app, PAGE_TIMEOUT_S, name="Still there?", role="label",
              what="the idle overlay to close after I'm still here")
    dismissed = time.monotonic()
    expect_shown(app, "status page after I'm still here", name="Kiosk status", role="label")
    return dismissed


def wait_reset_to_welcome(app, cfg, overlay_at):
    countdown = cfg["idle_countdown"]
    wait_showing(app, countdown + SLACK_S, name="Staff", role="push button",
                 what=f"the welcome page {countdown} s after the idle overlay appeared")
    waited = time.monotonic() - overlay_at
    print(f"back on welcome {waited:.1f} s after the overlay (idle-countdown {countdown} s)")
    check(waited >= countdown - EARLY_S,
          f"welcome came back {waited:.1f} s after the overlay, before the countdown ended")
    expect_hidden(app, "idle overlay after the reset", name="Still there?")
    expect_hidden(app, "status page after the reset", name="Kiosk status")


def main():
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} KEYDESK_BINARY CONFIG ARTIFACT_DIR")
    binary, config_path, artifacts = sys.argv[1:]
    config_path = os.path.abspath(config_path)
    cfg = kh.read_kiosk_config(config_path)
    deadline = 60 + 3 * (cfg["idle_timeout"] + cfg["idle_countdown"])

    def body():
        with kh.Session(artifacts) as session:
            proc = kh.start_keydesk(session, binary, "--config", config_path)
            app = session.find_app(kh.APP_NAME)

            check_welcome(app, cfg)
            session.screenshot(os.path.join(artifacts, "welcome.png"))

            open_status(app)
            check_status(app, cfg, config_path)
            session.screenshot(os.path.join(artifacts, "status.png"))

            kh.click(app.child(name="Back", roleName="push button"))
            check_welcome(app, cfg)

            # Idle reset. AT-SPI clicks are not user input, so from here on the app is idle.
            shown_at = open_status(app)
            overlay_at = wait_idle_overlay(app, cfg, shown_at, "the status page opened")
            check_countdown(app, cfg)
            session.screenshot(os.path.join(artifacts, "idle.png"))

            dismissed_at = dismiss_overlay(app)
            overlay_at = wait_idle_overlay(app, cfg, dismissed_at, "I'm still here")
            wait_reset_to_welcome(app, cfg, overlay_at)
            check_welcome(app, cfg)
            session.screenshot(os.path.join(artifacts, "reset.png"))

            proc.stop(kh.EXPECTED_EXIT_STATUS)

    kh.run_test("test-welcome", body, deadline)


if __name__ == "__main__":
    main()
