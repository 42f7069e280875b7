#!/usr/bin/env python3
"""LEAKWATCH_LOG: the preload logs one summary line per interval without
the program's help (the Go habit of logging the goroutine count on a timer),
to a file (appended, created 0600) or to stderr; the server starts at load
when asked to log, so even a program that never parks logs; a bad interval
falls back to the default (60 s) instead of logging in a loop: that program
logs its first line at the first tick, and no other for at least 2.5 s
after it (two more ticks, which a flood would have filled)."""
import os
import re
import stat
import tempfile
import time
from lwtest import Process, check, fixture, run_test, until

LINE = re.compile(r"^leakwatch: pid (\d+): (\d+) threads: (\d+) running, (\d+) waiting, (\d+) suspect, "
                  r"(\d+) leaked, (\d+) deadlocked; created (\d+), exited (\d+), peak (\d+)$")


def check_lines(lines, pid, what):
    check(lines, "%s: no log line" % what)
    for line in lines:
        m = LINE.match(line)
        check(m is not None, "%s: malformed log line %r" % (what, line))
        check(int(m.group(1)) == pid, "%s: pid %s in %r, wanted %d" % (what, m.group(1), line, pid))
        counts = [int(m.group(k)) for k in range(3, 8)]
        check(sum(counts) == int(m.group(2)), "%s: verdict counts %r do not add up to %s" % (what, counts, m.group(2)))


def log_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def main():
    # The three programs run at once; each is judged on its own.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lw.log")
        path2 = os.path.join(tmp, "lw2.log")
        to_file = Process([fixture("park"), "sem", "3"], env={"LEAKWATCH_LOG": path, "LEAKWATCH_LOG_INTERVAL_MS": "1000"})
        # stderr, and a program that never parks or makes a thread: the
        # server starts at load when asked to log.
        to_stderr = Process(["sleep", "3"], env={"LEAKWATCH_LOG": "stderr", "LEAKWATCH_LOG_INTERVAL_MS": "1000"})
        # An interval below the one-second tick falls back to the default (60 s): no flood.
        too_short = Process(["sleep", "30"], env={"LEAKWATCH_LOG": path2, "LEAKWATCH_LOG_INTERVAL_MS": "5"})
        with to_file as p, to_stderr, too_short:
            p.read_line("READY")
            lines = until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(log_lines(path)), 8,
                          "two log lines in %s" % path)
            check_lines(lines, p.pid, "file")
            check(any(re.search(r": 5 threads: ", l) for l in lines), "the 5 threads (main, 3 extra, parked) in %r" % lines)
            check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "log file mode %o" % stat.S_IMODE(os.stat(path).st_mode))

            lines = until(lambda: [l for l in to_stderr.stderr_so_far().splitlines() if l.startswith("leakwatch: pid")],
                          5, "a log line on the stderr of a program that never parks")
            check_lines(lines, to_stderr.pid, "stderr")

            # The flood check: the first line, then a window of 2.5 s of the
            # program's life after it (measured from when we saw it, so
            # at least that long) with no other.
            first = until(lambda: log_lines(path2), 8, "the first log line of the program with a 5 ms interval")
            check_lines(first, too_short.pid, "interval 5 ms")
            seen = time.time()
            time.sleep(2.5)
            check(too_short.alive(), "the program with a 5 ms interval ended early: %r" % too_short.stderr_so_far())
            lines = log_lines(path2)
            check(len(lines) == 1, "interval 5 ms: %d lines, wanted 1 (the first tick's) for 2.5 s after it (%.1fs): %r"
                  % (len(lines), time.time() - seen, lines))


if __name__ == "__main__":
    run_test(main)
