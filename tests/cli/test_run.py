#!/usr/bin/env python3
"""`leakwatch run` and the growth alarm on real programs under the real
preload: --check failing on a leaky test program (fixtures/leaky_test.c) and
passing on its fixed twin (fixtures/fixed_test.c), suppressions, the
reports that cannot exist (a signal, _exit), a hang caught by --timeout,
static and set-ID programs refused, PATH and LD_PRELOAD handling, signals
passed on, and `status PID`'s growth alarm on fixtures/thread_creep.c.

Usage: test_run.py MODE   (environment as for tests/integration: LEAKWATCH_CLI,
                           LEAKWATCH_PRELOAD, FIXTURES, LEAKWATCH_PRELOAD_PREFIX)
Exit 0 ok, 1 failure, 77 skipped (meson's convention)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lwtest  # noqa: E402
from lwtest import check, fixture  # noqa: E402

SKIP = 77


class Run:
    """One `leakwatch run ...` in a private TMPDIR and LEAKWATCH_DIR."""

    def __init__(self, args, env=None, timeout=120):
        self.tmp = tempfile.mkdtemp(prefix="lwrun.")
        self.tmpdir = os.path.join(self.tmp, "t")
        os.mkdir(self.tmpdir)
        e = dict(os.environ, TMPDIR=self.tmpdir, LEAKWATCH_DIR=os.path.join(self.tmp, "lw"))
        e.pop("LD_PRELOAD", None)
        e.pop("LEAKWATCH_SUPPRESSIONS", None)
        e.pop("NO_COLOR", None)
        e.update(env or {})
        start = time.monotonic()
        try:
            p = subprocess.run([lwtest.CLI, "run"] + [str(a) for a in args], capture_output=True, text=True, env=e,
                               timeout=timeout * lwtest.SLOW)
            self.leftovers = os.listdir(self.tmpdir)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.elapsed = time.monotonic() - start
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr

    def expect(self, rc, what):
        check(self.rc == rc, "%s: exit %d (wanted %d)\nstdout: %s\nstderr: %s"
              % (what, self.rc, rc, self.out[-3000:], self.err[-5000:]))
        check(self.leftovers == [], "%s: temporary files left in TMPDIR: %r" % (what, self.leftovers))

    def lines(self):
        return self.err.splitlines()


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


# ---- --check ----

def mode_check_leaky():
    leaky = fixture("leaky_test")
    r = Run(["--check", "--", leaky])
    r.expect(1, "run --check on the leaky test program")
    check(r.out == "PASS\n", "the program's stdout must stay its own: %r" % r.out)
    lines = r.lines()
    check(any(re.match(r"pid \d+ \(%s\): 1 thread: 1 leaked$" % re.escape(leaky), line) for line in lines),
          "no header for the leaky process:\n" + r.err)
    heads = [line for line in lines if re.match(r"\d+ threads? ", line)]
    check(len(heads) == 1 and re.match(r'1 thread leaked, fd-read, parked \d+\.\ds  \(tid \d+ "reader"\)$',
                                       heads[0]), "groups: %r\n%s" % (heads, r.err))
    frames = [line.strip() for line in lines if line.startswith("      ")]
    own = [f for f in frames if "(leaky_test+" in f]   # (a sanitizer's interceptor may come first)
    check(own and own[0].startswith("reader_worker at ") and "leaky_test.c:" in own[0],
          "the wait stack must start in reader_worker, with its line:\n" + r.err)
    check(any(f.startswith("start_reader at ") for f in frames), "creation stack lacks start_reader:\n" + r.err)
    want = ("leakwatch run: FAILED: 1 thread leaked or deadlocked at exit in 1 of 1 process "
            "(%s exited with status 0)" % leaky)
    check(last_line(r.err) == want, "last line %r, wanted %r" % (last_line(r.err), want))

    # every process of the run: the shell's children report too
    r = Run(["--check", "--", "sh", "-c", "%s; %s" % (leaky, fixture("fixed_test"))])
    r.expect(1, "run --check on a shell running the leaky and the fixed program")
    check(r.out == "PASS\nPASS\n", "stdout: %r" % r.out)
    check(re.match(r"leakwatch run: FAILED: 1 thread leaked or deadlocked at exit in 1 of [23] processes \(sh exited "
                   r"with status 0\)$", last_line(r.err)), "last line: %r" % r.err)

    r = Run(["--check", leaky, "exit=3"])   # no "--": CMD starts at the first non-option
    r.expect(1, "run --check on the leaky program exiting 3")
    check(last_line(r.err).endswith("(%s exited with status 3)" % leaky), "status in the last line: " + r.err)


def mode_check_fixed():
    fixed = fixture("fixed_test")
    for status in (0, 3):
        r = Run(["--check", "--", fixed, "exit=%d" % status])
        r.expect(status, "run --check on the fixed twin exiting %d" % status)
        check(r.out == "PASS\n", "stdout: %r" % r.out)
        check(r.err == "leakwatch run: ok: no thread leaked or deadlocked at exit (1 process checked)\n",
              "stderr of a passing check: %r" % r.err)
    r = Run(["--", fixed, "exit=4"])
    r.expect(4, "run without --check")
    check(r.err == "" and r.out == "PASS\n", "plain run printed %r / %r" % (r.out, r.err))
    r = Run(["--", fixture("leaky_test"), "exit=5"])
    r.expect(5, "run without --check on the leaky program: only its status")
    check(r.err == "", "plain run of the leaky program printed a report: %r" % r.err)


def mode_check_suppress():
    leaky = fixture("leaky_test")
    r = Run(["--check", "--ignore", "libfoo_*", "--", leaky, "timer"])
    r.expect(1, "run --check --ignore libfoo_*")
    check("libfoo" not in r.err.replace("(libfoo_*)", ""), "a suppressed thread was reported:\n" + r.err)
    check("reader_worker at " in r.err, "the unsuppressed leak is missing:\n" + r.err)
    check(r.lines().count("1 thread suppressed (libfoo_*)") == 1, "no per-process suppression line:\n" + r.err)
    check(last_line(r.err) == "leakwatch run: 1 thread suppressed (libfoo_*)", "last line: %r" % last_line(r.err))

    r = Run(["--check", "--ignore", "libfoo_*", "--ignore=reader_worker", "--", leaky, "timer", "exit=6"])
    r.expect(6, "run --check with both leaks suppressed: CMD's status")
    check(r.err == "leakwatch run: ok: no thread leaked or deadlocked at exit (1 process checked)\n"
          "leakwatch run: 2 threads suppressed (libfoo_*: 1, reader_worker: 1)\n", "stderr: %r" % r.err)

    tmp = tempfile.mkdtemp(prefix="lwsupp.")
    try:
        path = os.path.join(tmp, "supp")
        with open(path, "w") as f:
            f.write("# a library's forever-thread\n\n   libfoo_timer_thread   # by name\nleaky_test.c:*\n")
        r = Run(["--check", "--suppressions", path, "--", leaky, "timer"])
        r.expect(0, "run --check --suppressions FILE")
        check(last_line(r.err) == "leakwatch run: 2 threads suppressed (libfoo_timer_thread: 1, leaky_test.c:*: 1)",
              "file patterns: %r" % r.err)
        r = Run(["--check", "--", leaky, "timer"], env={"LEAKWATCH_SUPPRESSIONS": path})
        r.expect(0, "run --check with LEAKWATCH_SUPPRESSIONS")
        r = Run(["--check", "--suppressions", os.path.join(tmp, "missing"), "--", leaky])
        r.expect(2, "a missing suppressions file")
        check(r.out == "" and "cannot read suppressions file" in r.err, "missing file: %r %r" % (r.out, r.err))
    finally:
        shutil.rmtree(tmp)


def mode_check_no_report():
    leaky = fixture("leaky_test")
    r = Run(["--check", "--", leaky, "_exit=4"])
    r.expect(4, "run --check on a program ending with _exit")
    want = ("leakwatch run: %s (pid %%d) exited with status 4 without an exit report (it called _exit, or exec'd a "
            "program the preload does not reach): its threads were not checked" % leaky)
    m = re.search(r"\(pid (\d+)\)", r.err)
    check(m and r.err == want % int(m.group(1)) + "\n", "stderr: %r" % r.err)
    r = Run(["--check", "--", leaky, "raise=%d" % signal.SIGABRT])
    r.expect(128 + signal.SIGABRT, "run --check on a program killed by SIGABRT: 128+6")
    m = re.search(r"\(pid (\d+)\)", r.err)
    check(m and r.err.endswith("leakwatch run: %s (pid %s) was killed by signal 6 (Aborted): no exit report, its "
                               "threads were not checked\n" % (leaky, m.group(1))), "stderr: %r" % r.err)


# ---- --timeout ----

def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def mode_timeout():
    leaky = fixture("leaky_test")
    r = Run(["--check", "--timeout", "2", "--", leaky, "hang"], timeout=60)
    r.expect(1, "run --timeout on a hanging program")
    check(r.out == "PASS\nHANGING\n", "stdout: %r" % r.out)
    m = re.search(r"^leakwatch run: %s \(pid (\d+)\) still running after 2s: it hung$" % re.escape(leaky), r.err,
                  re.M)
    check(m, "no hang line:\n" + r.err)
    pid = int(m.group(1))
    check(not pid_alive(pid), "the hung program %d is still alive" % pid)
    check(r.lines()[1:3] == ["", "pid %d (%s hang): 2 threads: 2 leaked" % (pid, leaky)], "header: %r" % r.lines()[:4])
    heads = sorted(line for line in r.lines() if re.match(r"\d+ threads? ", line))
    check(len(heads) == 2 and re.match(r'1 thread leaked, fd-read, parked \d+\.\ds  \(tid \d+ "reader"\)$', heads[0])
          and re.match(r'1 thread leaked, join, parked \d+\.\ds  \(tid %d "leaky_test"\)$' % pid, heads[1]),
          "groups: %r" % heads)
    check("reader_worker at " in r.err, "reader_worker not named:\n" + r.err)
    check(r.lines()[-2:] == ["leakwatch run: 2 threads leaked or deadlocked in 1 process asked",
                             "leakwatch run: killing %s (pid %d) and its process group: SIGTERM, then SIGKILL "
                             "after 2s" % (leaky, pid)], "last lines: %r" % r.lines()[-2:])
    check(r.elapsed < 15 * lwtest.SLOW, "run --timeout 2 took %.1fs" % r.elapsed)


def mode_timeout_group():
    """A program that cannot be asked (single-threaded, never parks where
    the server starts), and the rest of its process group: killed too."""
    r = Run(["--timeout", "1", "--", "sleep", "300"], timeout=60)
    r.expect(1, "run --timeout on sleep")
    check("leakwatch run: no process of the run could be asked (a program that never creates a thread nor waits "
          "where leakwatch looks has no socket)\n" in r.err, "stderr: %r" % r.err)
    r = Run(["--timeout", "1", "--", "sh", "-c", "sleep 300 & echo $!; trap '' TERM; sleep 300"], timeout=60)
    r.expect(1, "run --timeout on a shell that ignores SIGTERM")
    bg = int(r.out.split()[0])
    check(not pid_alive(bg), "the background sleep %d of the hung command survived" % bg)
    check(r.lines()[-1].endswith("and its process group: SIGTERM, then SIGKILL after 2s"), "stderr: %r" % r.err)
    check(2 <= r.elapsed < 10 * lwtest.SLOW, "took %.1fs (SIGKILL comes 2s after SIGTERM)" % r.elapsed)


def mode_signals():
    """SIGTERM sent to run reaches CMD (in its own process group)."""
    leaky = fixture("leaky_test")
    tmp = tempfile.mkdtemp(prefix="lwsig.")
    e = dict(os.environ, TMPDIR=tmp)
    e.pop("LD_PRELOAD", None)
    p = subprocess.Popen([lwtest.CLI, "run", "--check", "--", leaky, "hang"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    try:
        line = ""
        while line != "HANGING\n":
            line = p.stdout.readline()
            if not line:
                check(False, "no HANGING line; stderr: %r" % p.stderr.read())
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30 * lwtest.SLOW)
        left = os.listdir(tmp)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    check(p.returncode == 128 + signal.SIGTERM, "exit %d, wanted 143; stderr %r" % (p.returncode, err))
    check("was killed by signal 15 (Terminated)" in err, "stderr: %r" % err)
    check(left == [], "temporary files left: %r" % left)


def run_on_terminal(args, keys_after=None, keys=b""):
    """`leakwatch run ARGS` as the session leader of a new pseudo-terminal
    (so it is the terminal's foreground job, as under an interactive shell);
    once `keys_after` shows, type `keys`. (exit status, what the terminal
    showed)."""
    import pty
    import select
    import termios
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)

    def become_controlling():
        import fcntl
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([lwtest.CLI, "run"] + args, stdin=slave, stdout=slave, stderr=slave, env=e,
                         start_new_session=True, preexec_fn=become_controlling)
    os.close(slave)
    out, typed, deadline = b"", keys_after is None, time.monotonic() + 30 * lwtest.SLOW
    if typed and keys:
        os.write(master, keys)
    while time.monotonic() < deadline:
        if not typed and keys_after.encode() in out:
            os.write(master, keys)
            typed = True
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    if p.poll() is None:
        p.kill()
    rc = p.wait()
    os.close(master)
    return rc, out.decode(errors="replace")


def mode_terminal():
    """CMD gets the terminal: it can read it (a background job would be
    stopped by SIGTTIN), and Ctrl-C reaches it."""
    rc, out = run_on_terminal(["--", "sh", "-c", "echo ready; read x; echo got:$x"], "ready", b"hello\n")
    check(rc == 0 and "got:hello" in out, "CMD could not read the terminal: exit %d, %r" % (rc, out))
    rc, out = run_on_terminal(["--check", "--", fixture("leaky_test"), "hang"], "HANGING", b"\x03")
    check(rc == 128 + signal.SIGINT, "Ctrl-C: exit %d, wanted 130: %r" % (rc, out))
    check("was killed by signal 2 (Interrupt)" in out, "Ctrl-C: %r" % out)


# ---- refusals, PATH, LD_PRELOAD ----

def mode_static():
    path = os.path.join(lwtest.FIXTURES, "static_hello")
    if not os.path.exists(path):
        print("SKIP: no static fixture (libc.a missing, or a sanitizer build, which cannot link -static)")
        sys.exit(SKIP)
    r = Run(["--check", "--", path])
    r.expect(2, "run on a static program")
    check(r.out == "", "the static program ran: %r" % r.out)
    check(r.err == "leakwatch run: refusing to run %s: it is statically linked (no program interpreter): the "
          "dynamic loader never runs, so LD_PRELOAD cannot load leakwatch into it\n" % path, "stderr: %r" % r.err)
    tmp = tempfile.mkdtemp(prefix="lwstatic.")
    try:
        script = os.path.join(tmp, "script")
        with open(script, "w") as f:
            f.write("#!%s\n" % path)
        os.chmod(script, 0o755)
        r = Run(["--", script])
        r.expect(2, "run on a script whose interpreter is static")
        check("refusing to run %s: it is statically linked" % path in r.err, "stderr: %r" % r.err)
    finally:
        shutil.rmtree(tmp)


def mode_setuid():
    tmp = tempfile.mkdtemp(prefix="lwsetuid.")
    try:
        for mode, word in ((0o4755, "set-user-ID"), (0o2755, "set-group-ID")):
            path = os.path.join(tmp, "fixed_%o" % mode)
            shutil.copy(fixture("fixed_test"), path)
            os.chmod(path, mode)
            check(os.stat(path).st_mode & 0o7777 == mode, "chmod %o did not stick" % mode)
            r = Run(["--check", "--", path])
            r.expect(2, "run on a %s program" % word)
            check(r.out == "", "the %s program ran: %r" % (word, r.out))
            check(r.err == "leakwatch run: refusing to run %s: it is %s, and the dynamic loader ignores LD_PRELOAD "
                  "for such programs (secure-execution mode): leakwatch would not be loaded into it\n" % (path, word),
                  "stderr: %r" % r.err)
    finally:
        shutil.rmtree(tmp)


def mode_path():
    fixed = fixture("fixed_test")
    path = os.path.dirname(fixed) + ":" + os.environ.get("PATH", "/usr/bin:/bin")
    r = Run(["--check", "--", "fixed_test", "exit=7"], env={"PATH": path})
    r.expect(7, "run of a command found through PATH")
    check(r.out == "PASS\n", "stdout: %r" % r.out)
    r = Run(["--", "no-such-command-for-leakwatch"])
    r.expect(127, "a command that is not there")
    check(r.err == "leakwatch run: no-such-command-for-leakwatch: command not found\n", "stderr: %r" % r.err)
    r = Run(["--", "/etc/hostname"])
    r.expect(126, "a file that is not executable")
    for args, what in (([], "no command"), (["--settle", "x", "--", "true"], "bad --settle"),
                       (["--timeout", "0", "--", "true"], "bad --timeout"), (["--bogus", "--", "true"], "bad option")):
        r = Run(args)
        r.expect(2, "run with " + what)
        check(r.err.startswith("leakwatch run: ") and r.out == "", "%s: %r" % (what, r.err))


def mode_preload_env():
    ours = os.path.realpath(lwtest.PRELOAD)
    prefix = lwtest.PRELOAD_PREFIX
    show = ["--", "sh", "-c", 'printf "%s|%s|%s\\n" "$LD_PRELOAD" "$LEAKWATCH_SETTLE_MS" "${LEAKWATCH_EXIT_REPORT:+set}"']
    # (under a sanitizer its runtime must stay first for the CLI itself too)
    users = (prefix + ":" if prefix else "") + "libm.so.6"
    r = Run(show, env={"LD_PRELOAD": users})
    r.expect(0, "run keeps the user's LD_PRELOAD")
    want = (prefix + ":" if prefix else "") + users + ":" + ours
    check(r.out == want + "||\n", "CMD's environment %r, wanted %r" % (r.out, want + "||"))
    r = Run(["--check"] + show)
    r.expect(0, "run --check environment")
    check(r.out == (prefix + ":" if prefix else "") + ours + "|100|set\n", "--check environment: %r" % r.out)
    r = Run(["--check", "--settle", "250"] + show)
    check(r.out.endswith("|250|set\n"), "--settle 250: %r" % r.out)
    # Without LEAKWATCH_PRELOAD: the library next to the binary (build tree: ../preload/).
    e = dict(os.environ)
    e.pop("LEAKWATCH_PRELOAD", None)
    e.pop("LD_PRELOAD", None)
    p = subprocess.run([lwtest.CLI, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'], capture_output=True, text=True,
                       env=e, timeout=60)
    built = (prefix + ":" if prefix else "") + os.path.realpath(os.path.join(os.path.dirname(lwtest.CLI), "..",
                                                                             "preload", "libleakwatch.so"))
    check(p.returncode == 0 and p.stdout == built + "\n", "found %r (wanted %r): %r" % (p.stdout, built, p.stderr))
    # An installed layout: PREFIX/bin/leakwatch finds PREFIX/lib/libleakwatch.so.
    tmp = tempfile.mkdtemp(prefix="lwinst.")
    try:
        os.makedirs(os.path.join(tmp, "bin"))
        os.makedirs(os.path.join(tmp, "lib"))
        shutil.copy(lwtest.CLI, os.path.join(tmp, "bin", "leakwatch"))
        shutil.copy(lwtest.PRELOAD, os.path.join(tmp, "lib", "libleakwatch.so"))
        p = subprocess.run([os.path.join(tmp, "bin", "leakwatch"), "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
                           capture_output=True, text=True, env=e, timeout=60)
        want = (prefix + ":" if prefix else "") + os.path.realpath(os.path.join(tmp, "lib", "libleakwatch.so"))
        check(p.returncode == 0 and p.stdout == want + "\n", "installed: %r (wanted %r): %r" % (p.stdout, want, p.stderr))
        os.unlink(os.path.join(tmp, "lib", "libleakwatch.so"))
        p = subprocess.run([os.path.join(tmp, "bin", "leakwatch"), "run", "--", "true"], capture_output=True,
                           text=True, env=e, timeout=60)
        check(p.returncode == 2 and "cannot find libleakwatch.so next to this leakwatch" in p.stderr,
              "no library anywhere: exit %d, %r" % (p.returncode, p.stderr))
    finally:
        shutil.rmtree(tmp)
    r = Run(show, env={"LEAKWATCH_PRELOAD": "/nonexistent/libleakwatch.so"})
    r.expect(2, "a LEAKWATCH_PRELOAD that is not there")
    check(r.out == "" and "LEAKWATCH_PRELOAD=/nonexistent/libleakwatch.so: not a readable file" in r.err,
          "stderr: %r" % r.err)


# ---- the growth alarm on a real creeping program ----

def mode_growth():
    # Both programs at once (each needs 9 one-second history samples): one
    # that keeps creeping, one that stopped growing after 3 threads.
    creeping = lwtest.Process([fixture("thread_creep"), "300"], env={"LEAKWATCH_HISTORY_MS": "1000"})
    stopped = lwtest.Process([fixture("thread_creep"), "100", "3"], env={"LEAKWATCH_HISTORY_MS": "1000"})
    with creeping as p, stopped:
        p.read_line("READY")
        stopped.read_line("READY")

        def enough():
            doc = p.status()
            return doc if len(doc["history"]["threads"]) >= 9 else None

        doc = lwtest.until(enough, 30, "9 history samples")
        samples = doc["history"]["threads"]
        check(samples == sorted(samples) and samples[-1] > samples[0], "history not climbing: %r" % samples)
        check(doc["history"]["interval_ms"] == 1000, "interval: %r" % doc["history"])
        check(doc["growth"]["alarm"] is True, "no growth alarm on %r: %r" % (samples, doc["growth"]))
        check(doc["growth"]["reason"].startswith("the thread count kept climbing and never came back down: the "
                                                 "lowest count in each quarter of the last "), doc["growth"])
        out = p.cli("status", str(p.pid), env={"LC_ALL": "C"}).stdout
        lines = out.splitlines()
        hist = [line for line in lines if line.startswith("history: ")]
        check(len(hist) == 1 and re.match(r"history: [.:=+*#@-]+ \d+ to \d+ threads over \d+s \(a mark per 1s\)$",
                                          hist[0]), "history line: %r" % out)
        check(any(line.startswith("growth alarm: ON: the thread count kept climbing") for line in lines),
              "no growth alarm line:\n" + out)
        doc = lwtest.until(lambda: (lambda d: d if len(d["history"]["threads"]) >= 9 else None)(stopped.status()), 30,
                           "9 history samples of a program that stopped growing")
        check(doc["growth"]["alarm"] is False, "growth alarm on a flat count: %r" % doc)


MODES = {"check-leaky": mode_check_leaky, "check-fixed": mode_check_fixed, "check-suppress": mode_check_suppress,
         "check-no-report": mode_check_no_report, "timeout": mode_timeout, "timeout-group": mode_timeout_group,
         "signals": mode_signals, "terminal": mode_terminal, "static": mode_static, "setuid": mode_setuid, "path": mode_path,
         "preload-env": mode_preload_env, "growth": mode_growth}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        print("usage: test_run.py {%s}" % ",".join(MODES))
        sys.exit(2)
    lwtest.run_test(MODES[sys.argv[1]])
