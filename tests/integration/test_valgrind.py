#!/usr/bin/env python3
"""The preload under valgrind's memcheck: zero errors (--error-exitcode),
and no suppressions at all.

  1. fixtures/waits in signal mode on a few rows (a pipe read, poll, a
     semaphore, a condvar, accept, a child wait): hooks record, calls are
     interrupted and restarted, records cleared; it runs to its end.
  2. fixtures/hostile "exit normal" with 20 parked threads, queried through
     its socket ROUNDS times (argv[1], default 3) by the real CLI (`threads
     --json`, `status --json`, the symbolized text dump) while under
     valgrind, so the server, the analysis and the report writer run there
     too; then it exits normally.

Skipped (exit 77) under a sanitizer pass (ASan and valgrind cannot share a
process). Without valgrind it fails, as the real-server tests do: scripts/
setup installs it, and the default test command must not skip what the
README claims (it once did, on every fresh machine)."""
import os
import shutil
import sys
from lwtest import SLOW, Process, check, fixture, run_test, sanitized, until

SKIP = 77


def valgrind(argv):
    return ["valgrind", "--tool=memcheck", "--error-exitcode=99",
            "--child-silent-after-fork=yes", "--track-origins=no", "-q"] + argv


def errors_of(stderr):
    return [l for l in stderr.splitlines() if l.startswith("==")]


def signalled_waits():
    with Process(valgrind([fixture("waits"), "signal", "read", "poll", "sem_wait", "cond_wait", "accept", "waitpid"])) as p:
        p.read_line("END", timeout=120)
        status = p.proc.wait(timeout=60 * SLOW)
        p.close()
        check(status == 0, "waits under valgrind: exit %r:\n%s" % (status, "\n".join(errors_of(p.stderr_text))[-6000:]))


def queried_process(rounds):
    with Process(valgrind([fixture("hostile"), "exit", "normal", "20"]), stdin=True) as p:
        p.read_line("READY", timeout=120)
        until(lambda: p.status()["summary"]["threads"] == 21, 60, "the 20 parked threads in the report")
        for _ in range(rounds):
            r = p.threads()
            check(len(r["threads"]) == 21, "threads: %d" % len(r["threads"]))
            p.status()
            p.cli("threads", str(p.pid), check_rc=0)
        p.send("exit\n")
        status = p.proc.wait(timeout=120 * SLOW)
        p.close()
        check(status == 0, "hostile under valgrind: exit %r:\n%s" % (status, "\n".join(errors_of(p.stderr_text))[-6000:]))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    signalled_waits()
    queried_process(rounds)


if __name__ == "__main__":
    if sanitized():
        print("skipped: a sanitizer pass")
        sys.exit(SKIP)
    if not shutil.which("valgrind"):
        print("FAIL: valgrind is not installed (scripts/setup installs it)")
        sys.exit(1)
    run_test(main)
