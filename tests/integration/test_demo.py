#!/usr/bin/env python3
"""The demo (tests/demo/leaky_fetch, what scripts/demo and the README show)
says what the README says. While the service runs (stall threshold 2 s, as
scripts/demo sets it): the generator, blocked writing a pipe whose only
reader (the streaming request that made it) returned without closing it,
is `suspect`, never `leaked` (main lives and could read the pipe), with a
reason naming that thread and saying it is not a proof; the five fetch
workers, parked on condvars inside heap objects their callers dropped, are
leaked by rule 3 (reachability) once two scans agree, shown as one group
of five; `status` exits 1. Under the sanitizer pass the scan proves
nothing (ASan's shadow memory is too large to read, and its malloc is not
glibc's): there the workers stay `waiting`, the report's notes say why,
and `status` exits 0. Then the same service under `leakwatch run --check`,
exiting after a second idle: the generator is `leaked` at exit (nothing is
left that could read its pipe), and so are the workers; run exits 1."""
import os
from lwtest import FIXTURES, Process, always, check, run_check, run_test, sanitized, until

STALL_MS = 2000


def live_service(demo):
    with Process([demo, "5"], env={"LEAKWATCH_STALL_MS": str(STALL_MS)}) as p:
        p.read_line("leaky_fetch: idle", timeout=20)
        want = "waiting" if sanitized() else "leaked"

        def judged():
            r = p.threads()
            gen = [t for t in r["threads"] if t["name"] == "generator"]
            workers = [t for t in r["threads"] if t["name"] == "fetch-worker"]
            check(len(gen) == 1, "generator threads: %r" % [t["name"] for t in r["threads"]])
            always(check, gen[0]["verdict"] in ("waiting", "suspect"), "generator is %s while main lives: %s"
                   % (gen[0]["verdict"], gen[0]["reason"]))
            check(gen[0]["verdict"] == "suspect", "generator is %s: %s" % (gen[0]["verdict"], gen[0]["reason"]))
            # A conservative scan may keep one worker alive while a stale copy of
            # its pointer lingers in main's registers or stack: at least four.
            leaked = [t for t in workers if t["verdict"] == "leaked"]
            check(len(workers) == 5 and all(t["verdict"] in ("leaked", "waiting") for t in workers) and
                  (len(leaked) >= 4 if want == "leaked" else not leaked),
                  "fetch workers: %r" % [(t["verdict"], t["reason"]) for t in workers])
            if sanitized():   # past the settle time, the scan was asked and said why it could prove nothing
                check(any("reachability" in n and "no scan:" in n for n in r["notes"]), "notes %r" % r["notes"])
            return r, gen[0], workers

        r, gen, workers = until(judged, 10, "the generator suspect and the five fetch workers judged")
        check(gen["wait"]["kind"] == "fd-write" and gen["wait"]["channel"]["type"] == "pipe", "wait %r" % gen["wait"])
        check("its creator, tid " in gen["reason"] and "(stream), exited" in gen["reason"] and
              "no thread has read from it for " in gen["reason"] and
              "not a proof: a live thread holding fd " in gen["reason"], gen["reason"])
        check(all(t["wait"]["kind"] == "cond" for t in workers), "worker waits %r" % [t["wait"] for t in workers])
        if sanitized():
            check(any("reachability" in n and ("too large to scan" in n or "could not be walked" in n) for n in r["notes"]),
                  "notes %r" % r["notes"])
        else:
            for t in workers:
                if t["verdict"] == "waiting":
                    check(t["wait"]["reach"] == "reachable" and t["wait"].get("reach_path") is not None,
                          "a waiting worker, and what keeps it reachable: %r" % t["wait"])
                    continue
                check("no live thread can reach" in t["reason"] and "heap block" in t["reason"], t["reason"])
                check(t["counterpart"]["unreachable"] is True and t["counterpart"]["block_size"] >= 48,
                      "counterpart %r" % t["counterpart"])
        text = p.cli("threads", str(p.pid)).stdout
        check(("threads %s, cond" % want) in text and "1 thread suspect, fd-write" in text, "text dump:\n" + text)
        p.cli("status", str(p.pid), check_rc=0 if sanitized() else 1)


def at_exit(demo):
    rc, err = run_check([demo, "5", "1"])
    check(rc == 1 and "FAILED: 6 threads leaked or deadlocked at exit" in err, "run --check exited %d:\n%s"
          % (rc, err[-3000:]))
    group = "1 thread leaked, fd-write"
    check(group in err, "run --check: no group %r:\n%s" % (group, err[-3000:]))
    reason = err.split(group, 1)[1].splitlines()[1].strip()
    for want in ("no thread that could read from it can run again: all threads are asleep; its creator, tid ",
                 "(stream), exited", "so the write will never fail with EPIPE either"):
        check(want in reason, "run --check: the generator's reason %r lacks %r" % (reason, want))
    check("5 threads leaked, cond" in err, "run --check: the workers:\n%s" % err[-3000:])


def main():
    demo = os.path.join(os.path.dirname(FIXTURES.rstrip("/")), "demo", "leaky_fetch")
    check(os.access(demo, os.X_OK), "demo not built at %s" % demo)
    live_service(demo)
    at_exit(demo)


if __name__ == "__main__":
    run_test(main)
