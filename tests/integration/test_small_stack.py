#!/usr/bin/env python3
"""A program whose default stack is 24 KiB (`ulimit -s 24`: its main stack
and every thread's default, fixtures/smallstack) survives leakwatch's
questions: the preload's own threads take a stack of their own size, not
the program's default (a server thread on 24 KiB crashed the process at
its first reachability scan). Asked three times, a scan each time (the
workers' semaphore is in a heap block a global keeps): the process is
alive, and the four workers are `waiting`, their object reachable.

Skipped under the sanitizers: AddressSanitizer's own runtime does not fit
a 24 KiB main stack, with or without leakwatch."""
import re
import time
from lwtest import Process, addr, check, fixture, run_test, sanitized

LIMIT_KIB = 24
SCANNED = re.compile(r"^reachability: \d+ candidate waits?, [0-9.]+ MiB scanned")


def main():
    if sanitized():
        print("skipped under the sanitizers: their runtime needs more than a %d KiB main stack" % LIMIT_KIB)
        return
    argv = ["/bin/sh", "-c", 'ulimit -s %d && exec "$0"' % LIMIT_KIB, fixture("smallstack")]
    with Process(argv) as p:
        ready = p.read_line("READY")
        block = addr(ready["block"])
        for ask in range(3):
            time.sleep(1.2)
            check(p.alive(), "the process died before ask %d (exit %r): %s"
                  % (ask + 1, p.proc.poll(), p.stderr_so_far()[-500:]))
            r = p.threads()
            notes = [n for n in r.get("notes") or [] if n.startswith("reachability:")]
            check(ask == 0 or any(SCANNED.match(n) or "the scan of" in n for n in notes),
                  "ask %d: no scan said what it read: %r" % (ask + 1, notes))
            workers = [t for t in r["threads"] if (t.get("wait") or {}).get("kind") == "sem"]
            check(len(workers) == 4, "ask %d: %d workers on the semaphore, 4 expected" % (ask + 1, len(workers)))
            for t in workers:
                w = t["wait"]
                check(t["verdict"] == "waiting" and block <= addr(w["object"]) < block + 64,
                      "ask %d: worker %r" % (ask + 1, {k: t.get(k) for k in ("tid", "verdict", "reason")}))
                check(w["seconds"] < 1.0 or w["reach"] == "reachable",
                      "ask %d: a settled worker's object is %r, not reachable" % (ask + 1, w["reach"]))
        time.sleep(0.5)
        check(p.alive(), "the process died after the questions (exit %r)" % p.proc.poll())
        print("alive after 3 asks with a %d KiB default stack" % LIMIT_KIB)


if __name__ == "__main__":
    run_test(main)
