"""Shared helpers of the integration tests: start a fixture under the preload
with a private socket directory, read its READY lines, run the real CLI,
poll until a condition holds, and always clean up."""
import json
import os
import queue
import threading
import shutil
import subprocess
import sys
import tempfile
import time

PRELOAD = os.environ.get("LEAKWATCH_PRELOAD", "")
CLI = os.environ.get("LEAKWATCH_CLI", "")
FIXTURES = os.environ.get("FIXTURES", "")
# A sanitizer build may need its runtime loaded first (scripts/test sets it).
PRELOAD_PREFIX = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def fixture(name):
    return os.path.join(FIXTURES, name)


def preload_value():
    return (PRELOAD_PREFIX + ":" if PRELOAD_PREFIX else "") + PRELOAD


class Process:
    """A fixture running under the preload with its own LEAKWATCH_DIR."""

    def __init__(self, argv, preload=True, env=None, stdin=False):
        self.tmp = tempfile.mkdtemp(prefix="lwtest.")
        self.dir = os.path.join(self.tmp, "lw")
        self.env = dict(os.environ, LEAKWATCH_DIR=self.dir)
        if preload:
            self.env["LD_PRELOAD"] = preload_value()
        self.env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     env=self.env, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines = []
        # A reader thread: select() on a buffered pipe would miss lines
        # already read into Python's buffer.
        self.queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.queue.put(line)
        self.queue.put(None)

    def read_line(self, prefix, timeout=10.0):
        """The next stdout line starting with prefix, as a dict of its key=value words."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.queue.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if line.startswith(prefix):
                words = line.split()
                return dict(w.split("=", 1) for w in words[1:] if "=" in w)
        raise TestFailure("no %r line from %s within %.0fs; output so far: %r; stderr: %r"
                          % (prefix, self.pid, timeout, self.lines, self.stderr_now()))

    def stderr_now(self):
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def socket_path(self):
        return os.path.join(self.dir, "leakwatch.%d.sock" % self.pid)

    def cli(self, *args, env=None, check_rc=None):
        e = dict(os.environ, LEAKWATCH_DIR=self.dir)
        e.pop("LD_PRELOAD", None)
        e.update(env or {})
        p = subprocess.run([CLI] + list(args), capture_output=True, text=True, env=e, timeout=60)
        if check_rc is not None and p.returncode != check_rc:
            raise TestFailure("leakwatch %s: exit %d (wanted %d)\nstdout: %s\nstderr: %s"
                              % (" ".join(args), p.returncode, check_rc, p.stdout, p.stderr))
        return p

    def threads(self):
        p = self.cli("threads", str(self.pid), "--json", "--all", check_rc=0)
        return json.loads(p.stdout)

    def status(self):
        p = self.cli("status", str(self.pid), "--json")
        if p.returncode not in (0, 1):
            raise TestFailure("status failed: %s" % p.stderr)
        return json.loads(p.stdout)

    def wait_socket(self, timeout=10.0):
        until(lambda: os.path.exists(self.socket_path()), timeout, "socket %s" % self.socket_path())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if f:
                f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def until(predicate, timeout, what):
    """Poll predicate (which may raise TestFailure while not yet true)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except TestFailure as e:
            last = e
        time.sleep(0.1)
    raise TestFailure("timed out waiting for %s%s" % (what, (": %s" % last) if last else ""))


def thread_by_tid(report, tid):
    for t in report["threads"]:
        if t["tid"] == int(tid):
            return t
    return None


def functions(frames):
    return [f.get("function") for f in frames or []]


def run_test(fn):
    """Run a test function, print its result, exit 0/1."""
    try:
        fn()
    except TestFailure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("ok")
    sys.exit(0)
