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


def machine_factor():
    """How much slower than a quiet machine this one runs right now, measured:
    the wall time a fixed piece of CPU work takes over the CPU time it got
    (2 when another runnable thread shares our CPU), and the load average per
    CPU; the larger of the two, from 1 to 4. LEAKWATCH_TEST_SLOW overrides it
    (a number). Measured once per test program (about 60 ms)."""
    forced = os.environ.get("LEAKWATCH_TEST_SLOW")
    if forced:
        try:
            return max(1.0, float(forced))
        except ValueError:
            pass
    ratios = []
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.thread_time()
        n = 0
        while time.thread_time() - c0 < 0.02:
            n += 1
        w1, c1 = time.perf_counter(), time.thread_time()
        ratios.append((w1 - w0) / max(c1 - c0, 1e-6))
    ratios.sort()
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 0.0
    return min(4.0, max(1.0, ratios[1], load))


# Polling budgets and deadlines are scaled by the measured machine factor,
# and by 3 more under a sanitizer (everything runs slower there).
MACHINE = machine_factor()
SLOW = (3.0 if PRELOAD_PREFIX else 1.0) * MACHINE


class TestFailure(Exception):
    pass


class AlwaysFailure(TestFailure):
    """A check that must hold at every sample failed: until() does not retry it."""


def always(fn, *args):
    """Run a check that must hold at every sample (no false proof, ever):
    inside until()'s predicate, its failure ends the test instead of being
    retried until a later sample passes."""
    try:
        fn(*args)
    except AlwaysFailure:
        raise
    except TestFailure as e:
        raise AlwaysFailure(str(e)) from None


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


def run_check(argv, env=None, timeout=60):
    """`leakwatch run --check -- ARGV` (the preload found as the CLI's own
    run finds it: LEAKWATCH_PRELOAD, LEAKWATCH_PRELOAD_PREFIX), in a
    private socket directory; (exit status, stderr: the exit report)."""
    tmp, lwdir = private_dir()
    try:
        p = run_cli(["run", "--check", "--"] + list(argv), lwdir, env=env, timeout=timeout)
        return p.returncode, p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
            report = json.loads(p.stdout)
        except ValueError as e:
            raise TestFailure("leakwatch threads --json printed no JSON (%s): %r" % (e, p.stdout[:500]))
        always(check_one_instant, report)
        return report

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


AGE_SLACK = 0.002   # ages are printed to the millisecond


def check_one_instant(report):
    """Every age in a report is measured at one instant (the snapshot's), so
    they must agree: no thread or channel older than the process, and no
    wait on a channel older than the channel. (Rule 4 once compared a thread's
    age with its channel's: measured at two instants, on a loaded machine a
    channel made just after start looked older than the main thread.)"""
    uptime = report.get("uptime")
    if not isinstance(uptime, (int, float)):
        return
    for t in report.get("threads") or []:
        age = t.get("age")
        check(not isinstance(age, (int, float)) or age <= uptime + AGE_SLACK,
              "tid %s is %.3fs old, the process %.3fs" % (t.get("tid"), age or 0, uptime))
        w = t.get("wait") or {}
        ch = w.get("channel") or {}
        ch_age = ch.get("age")
        if isinstance(ch_age, (int, float)) and ch_age >= 0:
            check(ch_age <= uptime + AGE_SLACK, "tid %s's channel %r is %.3fs old, the process %.3fs"
                  % (t.get("tid"), ch.get("name"), ch_age, uptime))
            if w.get("source") == "hook" and isinstance(w.get("seconds"), (int, float)):
                check(w["seconds"] <= ch_age + AGE_SLACK, "tid %s has waited %.3fs on channel %r, %.3fs old"
                      % (t.get("tid"), w["seconds"], ch.get("name"), ch_age))


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
        except AlwaysFailure:
            raise
        except TestFailure as e:
            last = e
        if time.time() >= deadline:
            break
        time.sleep(0.1)
    raise TestFailure("timed out after %.1fs waiting for %s%s" % (timeout * SLOW, what, (": %s" % last) if last else ""))


# ---- how long a healthy twin is watched ----
# Not for a fixed time, but until the tool has had every chance to prove
# what it proves in the twin's leaky sibling: rules 1, 2 and 4 judge a wait
# once it has lasted the settle time; rule 3 needs two real reachability
# scans at least a second apart that found the wait settled (a report whose
# note says "(the scan of N ms ago)" reused an older scan: it does not
# count). Then one more ask, a margin later. Under a sanitizer no scan can
# prove anything (ASan's malloc is not glibc's), and the leak drivers watch
# the siblings there until their waits are settle + 2 s old: so does the twin.
CONFIRM = 1.0            # rule 3: two scans at least this far apart
SANITIZED_EXTRA = 2.0    # under a sanitizer the siblings' waits get settle + this old
MARGIN = 1.0             # the last ask comes at least this long after the tool's earliest last chance
_RESTART = 0.25          # a wait that began this much later than last seen is a new wait


def real_scan(report):
    """Whether this report's reachability scan really ran (was not reused)."""
    return any(n.startswith("reachability:") and "MiB scanned in" in n and "(the scan of " not in n
               for n in report.get("notes") or [])


class EveryChance:
    """Feed it every report of a healthy twin (see(report)); it says when the
    watch may end: the watched waits (those of `tids`, or every parked
    thread's) all settled in two reports at least CONFIRM apart on the
    process's own clock (`uptime`), both real scans if one of those waits is
    a rule-3 candidate (its `reach` set), then one more report, at least
    `margin` past the moment a leaky sibling would be proven at the
    earliest (its second scan, at the first chance + CONFIRM; under a
    sanitizer, its wait settle + SANITIZED_EXTRA old). The settle time is
    the report's own (settings.settle_ms). A watched wait that is gone,
    new or not yet settled starts the count again. `since` (an uptime):
    when the sibling's waits would have begun, if later than the twin's
    (a fixed twin's workers exit where the leaky ones park): the settle
    time and the rest count from there too. by_scan=False: the sibling is
    proven by rules 1, 2 or 4, at the settle time (sanitized or not), so
    two settled reports suffice, however close."""

    def __init__(self, tids=None, margin=MARGIN, since=None, by_scan=True):
        self.tids, self.margin, self.since = tids, margin, since
        self.settle = None                # seconds, from the first report
        self.confirm = CONFIRM if by_scan else 0.0
        self.by_scan = by_scan
        self.first = self.second = None   # uptimes of the two chances
        self.due = None                   # the uptime the watch lasts until, once second is known
        self.began = {}                   # tid -> uptime at which its watched wait began
        self.reports = 0

    def _waits(self, report):
        if self.tids is None:
            return [(t["tid"], t["wait"]) for t in report["threads"] if t.get("wait")]
        return [(tid, ((thread_by_tid(report, tid) or {}).get("wait"))) for tid in self.tids]

    def _chance(self, report):
        """None: start again; False: no chance in this report; else the
        age of the youngest watched wait."""
        if self.settle is None:
            self.settle = report["settings"]["settle_ms"] / 1000.0
        if self.since is not None and report["uptime"] < self.since + self.settle:
            return None
        youngest, candidates = None, False
        for tid, w in self._waits(report):
            if not w or not isinstance(w.get("seconds"), (int, float)):
                return None
            began = report["uptime"] - w["seconds"]
            if began - self.began.setdefault(tid, began) > _RESTART:
                self.began[tid] = began
                return None
            if w["seconds"] < self.settle:
                return None
            youngest = w["seconds"] if youngest is None else min(youngest, w["seconds"])
            candidates = candidates or w.get("reach") is not None
        if youngest is None or (candidates and self.by_scan and not sanitized() and not real_scan(report)):
            return False
        return youngest

    def see(self, report):
        """One more report; True once the watch may end."""
        self.reports += 1
        now, chance = report["uptime"], self._chance(report)
        if chance is None:
            self.first = self.second = None
        elif self.second is not None:
            # One more ask after the second chance, and a margin past the
            # moment a leaky sibling would be proven at the earliest.
            return now > self.second and now >= self.due
        elif chance is not False:
            if self.first is None:
                self.first = now
            elif now > self.first + self.confirm and (not self.by_scan or not sanitized() or
                                                      chance >= self.settle + SANITIZED_EXTRA):
                self.second = now
                proven = self.first + self.confirm
                if self.by_scan and sanitized():
                    aged = self.settle + SANITIZED_EXTRA
                    proven = max(proven, now - chance + aged, (self.since or 0) + aged)
                self.due = proven + self.margin
        return False

    def __str__(self):
        return "%d reports; settled chances at uptime %r and %r" % (self.reports, self.first, self.second)


def watch_every_chance(p, on_report, tids=None, timeout=20, min_reports=3, pause=0.2, **chance_args):
    """Ask for p's report again and again, on_report(report) on each (the
    assertions that must hold at every ask), until EveryChance(tids,
    **chance_args) says the tool has had every chance and at least
    min_reports were taken; the reports. timeout (scaled under sanitizers)
    bounds the watch."""
    chance = EveryChance(tids, **chance_args)
    reports = []
    deadline = time.time() + timeout * SLOW
    while True:
        r = p.threads()
        on_report(r)
        reports.append(r)
        if chance.see(r) and len(reports) >= min_reports:
            return reports
        check(time.time() < deadline, "the tool never had every chance to judge the waits watched (%s) in %.0fs"
              % (chance, timeout * SLOW))
        time.sleep(pause)


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


def brief(t):
    """A thread of a report, short enough for a failure message."""
    if t is None:
        return "<not reported>"
    w = t.get("wait") or {}
    return "tid %s %r: verdict %r, kind %r, object %s, class %r, timed %r, shared %r, parked %rs, reach %r, " \
        "reason %r, counterpart %r" % (t.get("tid"), t.get("name"), t.get("verdict"), w.get("kind"), w.get("object"),
                                       w.get("class"), w.get("timeout"), w.get("shared"), w.get("seconds"),
                                       w.get("reach"), t.get("reason"), t.get("counterpart"))


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
