"""Shared helpers of the integration tests: start a fixture under the preload
with a private socket directory, read its READY lines, run the real CLI, talk
to the socket raw, poll until a condition holds, and always clean up (the
fixture is killed whatever happens).

Environment (set by tests/meson.build): LEAKWATCH_PRELOAD (libleakwatch.so),
LEAKWATCH_CLI (the leakwatch binary), FIXTURES (the built fixture programs).
LEAKWATCH_PRELOAD_PREFIX, when set, is put first in LD_PRELOAD (scripts/test
sets it to the ASan runtime for the sanitizer pass)."""
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PRELOAD = os.environ.get("LEAKWATCH_PRELOAD", "")
CLI = os.environ.get("LEAKWATCH_CLI", "")
FIXTURES = os.environ.get("FIXTURES", "")
PRELOAD_PREFIX = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
# Polling budgets are scaled under a sanitizer (everything runs slower there).
SLOW = 3.0 if PRELOAD_PREFIX else 1.0


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def fixture(name):
    path = os.path.join(FIXTURES, name)
    check(os.access(path, os.X_OK), "fixture %s is not built (FIXTURES=%r)" % (name, FIXTURES))
    return path


def sanitized():
    return bool(PRELOAD_PREFIX)


def preload_value():
    check(PRELOAD and os.path.exists(PRELOAD), "LEAKWATCH_PRELOAD=%r does not exist" % PRELOAD)
    return (PRELOAD_PREFIX + ":" if PRELOAD_PREFIX else "") + PRELOAD


def addr(text):
    """A printed or reported address as an int; None for null, (nil) or 0."""
    if text is None or text in ("(nil)", "null"):
        return None
    value = int(text, 16) if isinstance(text, str) else int(text)
    return value or None


def parse_words(line):
    """'WORD k=v k=v' -> {k: v}."""
    return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)


def private_dir():
    """A fresh temporary directory and the LEAKWATCH_DIR inside it (the
    preload creates that one itself, 0700)."""
    tmp = tempfile.mkdtemp(prefix="lwtest.")
    return tmp, os.path.join(tmp, "lw")


def run_program(argv, preload, lwdir, timeout=120, env=None):
    """Run to completion, bare or preloaded; (exit status, stdout, stderr)."""
    e = dict(os.environ, LEAKWATCH_DIR=lwdir)
    e.pop("LD_PRELOAD", None)
    if preload:
        e["LD_PRELOAD"] = preload_value()
    e.update(env or {})
    p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=timeout * SLOW)
    return p.returncode, p.stdout, p.stderr


def run_cli(args, lwdir, env=None, timeout=60):
    e = dict(os.environ, LEAKWATCH_DIR=lwdir)
    e.pop("LD_PRELOAD", None)
    e.update(env or {})
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, env=e, timeout=timeout * SLOW)


def request(path, data, timeout=10.0):
    """Send raw bytes on a fresh connection to a socket; everything it answers
    until it closes (b"" when it closes without a word)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    try:
        s.connect(path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server may answer and close before reading it all
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def ping(path):
    reply = json.loads(request(path, b"ping\n"))
    check(reply.get("ok") is True and reply.get("version") == 1, "ping answered %r" % reply)
    return reply


_processes = []   # every Process started, for the failure report


class Process:
    """A fixture running (by default under the preload) with its own
    LEAKWATCH_DIR, its stdout read line by line by a thread of ours."""

    def __init__(self, argv, preload=True, env=None, stdin=False):
        self.tmp, self.dir = private_dir()
        self.env = dict(os.environ, LEAKWATCH_DIR=self.dir)
        self.env.pop("LD_PRELOAD", None)
        if preload:
            self.env["LD_PRELOAD"] = preload_value()
        self.env.update(env or {})
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     env=self.env, text=True, bufsize=1)
        self.pid = self.proc.pid
        _processes.append(self)
        self.lines = []     # every stdout line read so far
        self.backlog = []   # lines read but not returned by read_line
        self.stderr_text = None
        # Reader threads: select() on a buffered pipe would miss lines
        # already read into Python's buffer; stderr is drained so that a
        # chatty fixture cannot block on a full pipe.
        self.queue = queue.Queue()
        self._err = []
        threading.Thread(target=self._pump, daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self._err_thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def _pump_err(self):
        for line in self.proc.stderr:
            self._err.append(line)

    def read_line(self, prefix, timeout=10.0):
        """The first stdout line starting with prefix not returned before, as
        a dict of its key=value words. Lines skipped on the way are kept, so
        the order in which two processes print does not matter."""
        for i, line in enumerate(self.backlog):
            if line.startswith(prefix):
                del self.backlog[i]
                return parse_words(line)
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            try:
                line = self.queue.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                self.queue.put(None)   # stays at end of file for later calls
                break
            self.lines.append(line)
            if line.startswith(prefix):
                return parse_words(line)
            self.backlog.append(line)
        raise TestFailure("no %r line from %s (pid %d) within %.0fs; output so far: %r; exit %r; stderr: %r"
                          % (prefix, os.path.basename(self.argv[0]), self.pid, timeout * SLOW, self.lines,
                             self.proc.poll(), "".join(self._err)[-2000:]))

    def more_output(self, wait=0.0):
        """Lines not returned by read_line so far (waiting up to `wait` s
        for more), and forget them."""
        out, self.backlog = self.backlog, []
        deadline = time.time() + wait
        while True:
            try:
                line = self.queue.get(timeout=max(0.001, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                self.queue.put(None)
                break
            self.lines.append(line)
            out.append(line)
        return out

    def stderr_so_far(self):
        return "".join(self._err)

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def socket_path(self, pid=None):
        return os.path.join(self.dir, "leakwatch.%d.sock" % (pid or self.pid))

    def cli(self, *args, env=None, check_rc=None):
        p = run_cli(args, self.dir, env=env)
        if check_rc is not None and p.returncode != check_rc:
            raise TestFailure("leakwatch %s: exit %d (wanted %d)\nstdout: %s\nstderr: %s"
                              % (" ".join(args), p.returncode, check_rc, p.stdout[-3000:], p.stderr[-3000:]))
        return p

    def threads(self, pid=None):
        """`leakwatch threads PID --json --all`, parsed."""
        p = self.cli("threads", str(pid or self.pid), "--json", "--all", check_rc=0)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure("leakwatch threads --json printed no JSON (%s): %r" % (e, p.stdout[:500]))

    def status(self, pid=None):
        """`leakwatch status PID --json`, parsed (exit 1 only means leaks)."""
        p = self.cli("status", str(pid or self.pid), "--json")
        if p.returncode not in (0, 1):
            raise TestFailure("leakwatch status %d --json: exit %d: %s" % (pid or self.pid, p.returncode, p.stderr))
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure("leakwatch status --json printed no JSON (%s): %r" % (e, p.stdout[:500]))

    def wait_socket(self, pid=None, timeout=10.0):
        path = self.socket_path(pid)
        until(lambda: os.path.exists(path), timeout, "socket %s" % path)
        return path

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._err_thread.join(timeout=5)
        self.stderr_text = "".join(self._err)
        for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def until(predicate, timeout, what):
    """Poll predicate (which may raise TestFailure while not yet true) until
    it returns something true; its value. timeout is scaled under sanitizers."""
    deadline = time.time() + timeout * SLOW
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except TestFailure as e:
            last = e
        if time.time() >= deadline:
            break
        time.sleep(0.1)
    raise TestFailure("timed out after %.1fs waiting for %s%s" % (timeout * SLOW, what, (": %s" % last) if last else ""))


def check_modes_agree(driver_modes, fixture_modes, meson_modes, meson_name):
    """A table-driven test's three lists of modes (the driver's, what the
    fixture's `list` prints, and tests/meson.build's) name the same modes,
    meson's each once."""
    check(sorted(fixture_modes) == sorted(driver_modes), "the fixture's modes and the driver's differ in %r"
          % sorted(set(fixture_modes) ^ set(driver_modes)))
    check(sorted(meson_modes) == sorted(driver_modes), "tests/meson.build's %s and the driver's differ in %r "
          "(a duplicate in meson: %r)" % (meson_name, sorted(set(meson_modes) ^ set(driver_modes)),
                                         sorted({m for m in meson_modes if meson_modes.count(m) > 1})))


def fixture_modes(name):
    """What `FIXTURE list` prints, one mode a line (words joined by '-')."""
    out = subprocess.run([fixture(name), "list"], capture_output=True, text=True, check=True).stdout
    return ["-".join(line.split()) for line in out.splitlines() if line.strip()]


def thread_by_tid(report, tid):
    for t in report["threads"]:
        if t["tid"] == int(tid):
            return t
    return None


def functions(frames):
    return [f.get("function") for f in frames or []]


def _terminated(signum, frame):
    raise TestFailure("killed by signal %d (meson's timeout?)" % signum)


def run_test(fn):
    """Run a test function, print its result, exit 0/1. On failure, also
    what each fixture printed (its exit status and stderr say why it died).
    SIGTERM (meson's timeout) fails the test the same way, and every fixture
    still running is killed whatever happens."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        fn()
    except Exception as e:   # noqa: BLE001 -- any error fails the test, with the fixtures' side of the story
        if isinstance(e, TestFailure):
            print("FAIL: %s" % e)
        else:
            import traceback
            print("FAIL: the driver raised:\n%s" % traceback.format_exc())
        for p in _processes:
            p.proc.poll()
            print("  fixture %s (pid %d): exit %r, stdout %r\n  stderr: %s"
                  % (" ".join(os.path.basename(a) for a in p.argv), p.pid, p.proc.returncode, p.lines[-20:],
                     (p.stderr_text if p.stderr_text is not None else p.stderr_so_far())[-3000:] or "(empty)"))
        sys.exit(1)
    finally:
        for p in _processes:
            if p.proc.poll() is None:
                p.proc.kill()
    print("ok")
    sys.exit(0)
