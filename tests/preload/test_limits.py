#!/usr/bin/env python3
"""The fixed tables' limits are never silent: under a preload built small
(64 thread slots, 256 distinct stacks; LEAKWATCH_SMALL_PRELOAD), a program
with 100 parked threads and 512 different stacks gets a reply whose notes
say that threads were not recorded and stacks not kept, and the CLI prints
them; the threads past the table are still reported (through /proc).
Helpers: tests/integration/lwtest.py."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lwtest  # noqa: E402
from lwtest import Process, check, run_test, until  # noqa: E402


def main():
    lwtest.PRELOAD = os.environ["LEAKWATCH_SMALL_PRELOAD"]
    with Process([sys.argv[1]]) as p:
        p.read_line("READY", timeout=30)
        p.wait_socket()

        def settled():
            r = p.threads()
            return r if r["summary"]["threads"] >= 101 else None
        r = until(settled, 10, "the 101 threads reported")
        notes = r.get("notes") or []
        threads_note = [n for n in notes if n.startswith("threads not recorded: the thread table (64 threads")]
        stacks_note = [n for n in notes if n.startswith("stacks not kept: the stack table (256 distinct stacks)")]
        check(threads_note and stacks_note, "notes: %r" % notes)
        unrecorded = [t for t in r["threads"] if (t.get("wait") or {}).get("source") != "hook"]
        check(len(unrecorded) >= 100 - 63, "threads seen only through /proc: %d" % len(unrecorded))
        text = p.cli("threads", str(p.pid), check_rc=0).stdout
        check("threads not recorded" in text and "stacks not kept" in text, "the CLI's text lacks the notes: %r"
              % text[:2000])
        print("%s | %s" % (threads_note[0], stacks_note[0]))


if __name__ == "__main__":
    run_test(main)
