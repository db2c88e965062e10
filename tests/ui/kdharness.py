#!/usr/bin/python3
"""kdharness: run keydesk (or any GTK 3 program) on a private Xvfb and D-Bus session bus.

Used by the UI tests in tests/ui/ and by bench/startup. Standard library only, plus dogtail
for the tests that drive the window through the accessibility tree (imported lazily, because
dogtail connects to AT-SPI at import time and must find our private bus, not the user's).

Every process it starts gets its own process group and dies with the harness: a hung Xvfb or
app fails the test through a timeout, never hangs it (see reference/testinfra.md sections 4, 6).
Debian's dogtail/pyatspi import only under /usr/bin/python3.
"""

import atexit
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

FIRST_FRAME = "FIRST_FRAME"
SCREEN = "1280x800x24"

XVFB_TIMEOUT_S = 15
DBUS_TIMEOUT_S = 15
FIRST_FRAME_TIMEOUT_S = 30  # generous: ASan builds on a loaded 2-core CI box start slowly
STOP_TIMEOUT_S = 30  # LeakSanitizer's report at exit can take a few seconds
SCREENSHOT_TIMEOUT_S = 20
STDERR_TAIL_LINES = 40

# The environment as the caller gave it (ASAN_OPTIONS, LSAN_OPTIONS, ...), captured before
# this module changes os.environ for dogtail: the programs under test must not see dogtail's
# GTK_MODULES (testinfra section 4) nor the user's display and buses.
_CALLER_ENV = dict(os.environ)
_HOST_ONLY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS",
                   "XAUTHORITY", "GTK_MODULES", "XDG_SESSION_TYPE", "XDG_CURRENT_DESKTOP")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


class HarnessError(Exception):
    """A test failure with a message meant for the person reading the CI log."""


def _die_with_parent():
    # Runs in the child between fork and exec. If CTest's timeout SIGKILLs the test, no
    # finally block runs; the kernel then still kills everything we started.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(argv, env, **kwargs):
    try:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent, **kwargs)
    except OSError as e:
        raise HarnessError(f"cannot start {argv[0]}: {e}") from e


def _kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _reap(proc, grace=3):
    """End @proc's whole process group: SIGTERM first, so Xvfb removes its socket and lock
    in /tmp, then SIGKILL for whatever is left or hangs."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(proc)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass


def _read_line_from_fd(fd, timeout, what, proc, log_path):
    """Read one line that a starting daemon writes to @fd (Xvfb -displayfd, dbus --print-*)."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(f"{what} did not start within {timeout} s\n{_tail(log_path)}")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise HarnessError(f"{what} exited during start-up (status {proc.poll()})\n"
                               f"{_tail(log_path)}")
        data += chunk
    return data.decode().strip()


def _tail(path, lines=STDERR_TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return f"(no log at {path})"
    if not text:
        return f"({os.path.basename(path)} is empty)"
    head = f"--- last {min(lines, len(text))} lines of {path} ---\n"
    return head + "\n".join(text[-lines:])


def wait_until(fn, timeout, what, interval=0.2):
    """Poll @fn until it returns something true; return that, or fail naming @what."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


class App:
    """One program under test: its stdout is read line by line to catch FIRST_FRAME."""

    def __init__(self, argv, env, log_dir, name):
        self.argv = argv
        self.name = name
        self.stderr_path = os.path.join(log_dir, f"{name}.stderr.log")
        self.stdout_lines = []
        self.first_frame_count = 0
        self.first_frame_at = None
        self._first_frame = threading.Event()
        self._stderr = open(self.stderr_path, "wb")
        self.spawned_at = time.monotonic()
        self.proc = _spawn(argv, env, stdout=subprocess.PIPE, stderr=self._stderr)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self):
        # Draining stdout also keeps a chatty app from blocking on a full pipe.
        for raw in self.proc.stdout:
            now = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            if line == FIRST_FRAME:
                self.first_frame_count += 1
                if self.first_frame_at is None:
                    self.first_frame_at = now
                    self._first_frame.set()

    def stderr_tail(self):
        return _tail(self.stderr_path)

    def wait_first_frame(self, timeout=FIRST_FRAME_TIMEOUT_S):
        """Block until the app printed FIRST_FRAME; return seconds since spawn."""
        deadline = time.monotonic() + timeout
        while not self._first_frame.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(1)
                if self._first_frame.is_set():
                    break
                raise HarnessError(f"{self.name} exited with status {self.proc.returncode} "
                                   f"before its first frame\n{self.stderr_tail()}")
            if time.monotonic() >= deadline:
                raise HarnessError(f"{self.name} printed no {FIRST_FRAME} within {timeout} s "
                                   f"({' '.join(self.argv)})\n{self.stderr_tail()}")
        return self.first_frame_at - self.spawned_at

    def stop(self, expected_status=0, timeout=STOP_TIMEOUT_S):
        """SIGTERM the app, wait for it, and fail unless it exits with @expected_status.

        The exit status is where ASan/LSan/UBSan report (testinfra section 6), so a test
        that skips this check passes on a leaking or crashing build.
        """
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError(f"{self.name} did not exit within {timeout} s of SIGTERM\n"
                               f"{self.stderr_tail()}") from None
        finally:
            _kill_group(self.proc)  # anything it left behind in its group
        self._reader.join(2)
        self._stderr.close()
        if status != expected_status:
            raise HarnessError(f"{self.name} exited with status {status}, expected "
                               f"{expected_status}\n{self.stderr_tail()}")
        if self.first_frame_count > 1:
            raise HarnessError(f"{self.name} printed {FIRST_FRAME} {self.first_frame_count} "
                               "times; the contract is exactly once")
        return status

    def kill(self):
        _reap(self.proc)
        if not self._stderr.closed:
            self._stderr.close()


class Session:
    """A private X server and D-Bus session bus, torn down on every path.

    Use as a context manager. @artifact_dir (optional) receives the programs' stderr logs so
    a CI job can keep them; the rest lives in a temporary directory removed at the end.
    """

    def __init__(self, artifact_dir=None, screen=SCREEN):
        self.screen = screen
        self.artifact_dir = artifact_dir
        self.tmp = tempfile.mkdtemp(prefix="keydesk-ui-")
        self.log_dir = artifact_dir or self.tmp
        self.display = None
        self.bus_address = None
        self.env = None
        self.apps = []
        self._xvfb = None
        self._dbus = None
        self._dogtail = None
        self._closed = False
        if artifact_dir:
            os.makedirs(artifact_dir, exist_ok=True)
        atexit.register(self.close)

    def __enter__(self):
        try:
            self._start_xvfb()
            self._start_dbus()
        except BaseException:
            self.close()
            raise
        self.env = self._child_env()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _start_xvfb(self):
        log = os.path.join(self.log_dir, "Xvfb.log")
        r, w = os.pipe()
        try:
            with open(log, "wb") as out:
                # -displayfd: Xvfb picks a free display itself and writes its number once it
                # accepts connections, so parallel tests never race for ":99".
                self._xvfb = _spawn(["Xvfb", "-displayfd", str(w), "-screen", "0", self.screen,
                                     "-nolisten", "tcp", "-noreset"],
                                    os.environ.copy(), stdout=out, stderr=out, pass_fds=(w,))
            os.close(w)
            w = -1
            number = _read_line_from_fd(r, XVFB_TIMEOUT_S, "Xvfb", self._xvfb, log)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        self.display = f":{number}"

    def _start_dbus(self):
        log = os.path.join(self.log_dir, "dbus-daemon.log")
        r, w = os.pipe()
        # The socket lives in our temp dir; --nofork keeps the daemon our child so its process
        # group can be killed. Services it activates (the AT-SPI bus) exit when it goes away.
        argv = ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--nosyslog",
                f"--address=unix:path={self.tmp}/bus", f"--print-address={w}"]
        try:
            with open(log, "wb") as out:
                self._dbus = _spawn(argv, self._base_env(), stdout=out, stderr=out,
                                    pass_fds=(w,))
            os.close(w)
            w = -1
            self.bus_address = _read_line_from_fd(r, DBUS_TIMEOUT_S, "dbus-daemon", self._dbus,
                                                  log)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def _base_env(self):
        env = {k: v for k, v in _CALLER_ENV.items() if k not in _HOST_ONLY_VARS}
        # Keep GTK, dconf and AT-SPI from writing state outside the temp dir (CI runs as root
        # in a fresh clone; a developer's own settings must not change what a test sees).
        for var, sub in (("XDG_RUNTIME_DIR", "run"), ("XDG_CONFIG_HOME", "config"),
                         ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                         ("XDG_STATE_HOME", "state")):
            path = os.path.join(self.tmp, sub)
            os.makedirs(path, mode=0o700, exist_ok=True)
            env[var] = path
        env["GSETTINGS_BACKEND"] = "memory"
        env["GDK_BACKEND"] = "x11"
        env.pop("NO_AT_BRIDGE", None)  # the tests read the app through its AT-SPI bridge
        return env

    def _child_env(self):
        env = self._base_env()
        env["DISPLAY"] = self.display
        env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        return env

    def launch(self, argv, name=None, extra_env=None):
        """Start @argv on this display and bus; returns an App (not yet waited for)."""
        name = name or os.path.basename(argv[0])
        env = dict(self.env)
        env.update(extra_env or {})
        app = App(list(argv), env, self.log_dir, name)
        self.apps.append(app)
        return app

    def screenshot(self, path):
        """Save the whole screen as PNG (the window is all there is: no window manager)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            res = subprocess.run(["import", "-window", "root", path], env=self.env,
                                 stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=SCREENSHOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"import -window root took over {SCREENSHOT_TIMEOUT_S} s") from None
        if res.returncode != 0 or not os.path.exists(path):
            raise HarnessError(f"screenshot {path} failed: {res.stderr.decode(errors='replace')}")
        return path

    def xdotool(self, *args, timeout=10):
        """Real X input through XTEST: unlike AT-SPI actions, GTK sees it as user input."""
        try:
            res = subprocess.run(["xdotool", *args], env=self.env, stdin=subprocess.DEVNULL,
                                 capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"xdotool {' '.join(args)} hung for {timeout} s") from None
        if res.returncode != 0:
            raise HarnessError(f"xdotool {' '.join(args)} failed: "
                               f"{res.stderr.decode(errors='replace').strip()}")
        return res.stdout.decode().strip()

    def dogtail(self):
        """Import dogtail against this session and return its tree module."""
        if self._dogtail is None:
            self._dogtail = _import_dogtail(self)
        return self._dogtail

    def find_app(self, name, timeout=20):
        """The AT-SPI application node called @name (keydesk's g_set_prgname)."""
        tree = self.dogtail()

        def lookup():
            try:
                for child in tree.root.children:
                    if child is not None and child.name == name:
                        return child
            except Exception:  # the registry is still starting; try again
                return None
            return None

        return wait_until(lookup, timeout, f"AT-SPI application '{name}'")

    def close(self):
        if self._closed:
            return
        self._closed = True
        for app in self.apps:
            app.kill()
        for proc in (self._dbus, self._xvfb):
            if proc is not None:
                _reap(proc)
        if os.environ.get("KD_KEEP_TMP"):
            print(f"kdharness: keeping {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _import_dogtail(session):
    # dogtail reads all of this at import time: the display, the bus AT-SPI lives on, and
    # GTK_MODULES, the one setting its accessibility check accepts without writing dconf
    # state (testinfra section 4). This process only; App children get session.env.
    os.environ.update(session._base_env())
    os.environ["DISPLAY"] = session.display
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = session.bus_address
    os.environ["GTK_MODULES"] = "gail:atk-bridge"
    os.environ.pop("AT_SPI_BUS_ADDRESS", None)

    # dogtail makes /tmp/dogtail-$LOGNAME/ on import, even with file logging off. It passes
    # the path through os.path.abspath first, so a LOGNAME of "x/../.." + our dir lands the
    # directory inside our temp dir and nothing is created under /tmp itself.
    scratch = os.path.join(session.tmp, "dogtail")
    saved_logname = os.environ.get("LOGNAME")
    os.environ["LOGNAME"] = "x/../.." + scratch
    try:
        from dogtail.config import config
    finally:
        if saved_logname is None:
            os.environ.pop("LOGNAME", None)
        else:
            os.environ["LOGNAME"] = saved_logname
    # Clean paths first: setting logDebugToFile imports dogtail.logging, which checks logDir.
    config.scratchDir = scratch
    config.dataDir = os.path.join(scratch, "data")
    config.logDir = os.path.join(scratch, "logs")
    config.logDebugToFile = False
    config.actionDelay = 0.3  # the default 1 s per click only makes tests slow
    config.searchBackoffDuration = 0.25
    config.searchCutoffCount = 20

    from dogtail import tree

    # tree.py takes /tmp/sniff_refresh.lock to pause a running `sniff`; there is none in CI,
    # and a test killed by a timeout would leave the directory behind.
    lock = getattr(tree, "sniff_lock", None)
    if lock is not None and lock.locked():
        lock.unlock()
    return tree


# --- accessibility-tree helpers for tests ---------------------------------------------------

def _safe(fn, default=None):
    # Nodes vanish while a page changes; AT-SPI then raises. For polling that means "not yet".
    try:
        return fn()
    except Exception:
        return default


def find_showing(node, name=None, role=None, match=None):
    """First descendant that is on screen (AT-SPI SHOWING) and matches; None if there is none.

    @name is compared exactly, @match is a callable on the name (e.g. a regex's .fullmatch).
    A page hidden in a GtkStack keeps its widgets in the tree, so 'showing' is what tells
    which page a visitor actually sees.
    """
    def pred(n):
        if role is not None and n.roleName != role:
            return False
        if name is not None and n.name != name:
            return False
        if match is not None and not match(n.name or ""):
            return False
        return n.showing

    return _safe(lambda: node.findChild(pred, retry=False, requireResult=False))


def wait_showing(node, timeout, name=None, role=None, match=None, what=None):
    what = what or f"{role or 'node'} '{name or match}' to be shown"
    return wait_until(lambda: find_showing(node, name, role, match), timeout, what)


def wait_gone(node, timeout, name=None, role=None, match=None, what=None):
    what = what or f"{role or 'node'} '{name or match}' to disappear"
    wait_until(lambda: find_showing(node, name, role, match) is None, timeout, what)


def showing_names(node, role=None):
    """Names of everything on screen: printed when an assertion fails, to show what was there."""
    def pred(n):
        return (role is None or n.roleName == role) and n.showing and bool(n.name)

    return _safe(lambda: [f"{n.roleName}:{n.name!r}" for n in node.findChildren(pred)], [])


def click(node):
    """Activate a control the way a screen reader would (not user input for the idle timer)."""
    node.doActionNamed("click")


# --- test driver -----------------------------------------------------------------------------

def _raise_on_signal(signum, frame):
    # Turn SIGTERM/SIGINT/SIGALRM into an exception so every finally block and close() runs.
    raise HarnessError(f"interrupted by signal {signal.Signals(signum).name}")


def run_test(name, body, deadline_s):
    """Run @body(); print PASS/FAIL; exit 0 or 1. @deadline_s bounds the whole test."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, _raise_on_signal)
    signal.alarm(int(deadline_s))
    started = time.monotonic()
    try:
        body()
    except (HarnessError, AssertionError) as e:
        print(f"FAIL {name} ({time.monotonic() - started:.1f} s): {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # dogtail's SearchError, AT-SPI errors: show where it happened
        traceback.print_exc()
        print(f"FAIL {name} ({time.monotonic() - started:.1f} s): {e!r}", file=sys.stderr)
        sys.exit(1)
    finally:
        signal.alarm(0)
    print(f"PASS {name} ({time.monotonic() - started:.1f} s)")
    sys.exit(0)


def check(condition, message):
    """Like assert, but survives python -O and reads as a test step."""
    if not condition:
        raise HarnessError(message)


# --- keydesk specifics -----------------------------------------------------------------------

APP_NAME = "keydesk"  # AT-SPI application name: keydesk calls g_set_prgname("keydesk")
# keydesk handles SIGTERM (systemd's stop) by quitting its main loop and exiting 0; under
# ASan/LSan a leak or error turns this into a non-zero status.
EXPECTED_EXIT_STATUS = 0


def read_kiosk_config(path):
    """The [kiosk] and [tenant] values a test compares the screen against."""
    import configparser

    # GKeyFile and configparser agree on the simple key=value files the tests use.
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise HarnessError(f"cannot read config {path}")
    kiosk = parser["kiosk"]
    return {
        "name": kiosk.get("name"),
        "site": kiosk.get("site"),
        "idle_timeout": int(kiosk.get("idle-timeout", "90")),
        "idle_countdown": int(kiosk.get("idle-countdown", "10")),
        "tenant_id": parser.get("tenant", "tenant-id", fallback=None),
    }


def start_keydesk(session, binary, *args):
    """Launch keydesk windowed with the first-frame marker and wait for its first frame."""
    app = session.launch([binary, "--windowed", "--first-frame-marker", *args], name=APP_NAME)
    took = app.wait_first_frame()
    print(f"keydesk first frame after {took * 1000:.0f} ms")
    return app


def _main(argv):
    """Command line for people without a desktop (scripts/demo --screenshot):

        kdharness.py screenshot OUT.png -- PROGRAM [ARGS...]

    runs PROGRAM (which must understand --first-frame-marker) on a private Xvfb, waits for its
    first frame and a moment more for transitions, saves the screen to OUT.png, and stops it.
    """
    if len(argv) < 4 or argv[0] != "screenshot" or argv[2] != "--":
        print(_main.__doc__, file=sys.stderr)
        return 2
    out, program = argv[1], argv[3:]
    try:
        with Session() as session:
            app = session.launch([*program, "--first-frame-marker"], name="app")
            app.wait_first_frame()
            time.sleep(0.5)
            session.screenshot(out)
            app.stop(EXPECTED_EXIT_STATUS)
    except HarnessError as e:
        print(f"kdharness: {e}", file=sys.stderr)
        return 1
    print(f"kdharness: saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
