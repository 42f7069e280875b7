#!/usr/bin/env python3
"""The proof rules on real processes (argv[1] is a mode of fixtures/verdicts):
deadlock cycles, owners that exited holding a lock, chains into them, a
whole process asleep; and healthy twins that must never be called leaked or
deadlocked. Asserted through the CLI's JSON: verdicts, reasons, counterparts."""
import sys
import time
from lwtest import Process, check, fixture, run_test, thread_by_tid, until


def verdicts(report, ids):
    return {name: (thread_by_tid(report, tid) or {}).get("verdict") for name, tid in ids.items()}


def settled(p, ids, want):
    def ok():
        r = p.threads()
        got = verdicts(r, ids)
        check(all(got[k] == v for k, v in want.items()), "verdicts %r, want %r" % (got, want))
        return r
    return until(ok, 8, "verdicts %r" % want)


def main():
    mode = sys.argv[1]
    with Process([fixture("verdicts"), mode]) as p:
        r = p.read_line("READY")
        ids = {k: int(v) for k, v in r.items() if int(v) > 0}
        if mode == "deadlock2":
            rep = settled(p, ids, {"a": "deadlocked", "b": "deadlocked", "main": "waiting"})
            a = thread_by_tid(rep, ids["a"])
            check(a["counterpart"]["cycle"] == [ids["a"], ids["b"]], "cycle %r" % a["counterpart"])
            check("deadlock of 2 threads" in a["reason"] and "mutex" in a["reason"], a["reason"])
            s = p.cli("status", check_rc=1)   # the health check fails when something is stuck
            check(str(p.pid) in s.stdout, "status lacks our pid")
        elif mode == "deadlock3":
            rep = settled(p, ids, {"a": "deadlocked", "b": "deadlocked", "c": "deadlocked"})
            b = thread_by_tid(rep, ids["b"])
            check(len(b["counterpart"]["cycle"]) == 3 and "rwlock" in b["reason"], b["reason"])
        elif mode == "join_chain":
            rep = settled(p, ids, {"a": "deadlocked", "b": "deadlocked", "x": "leaked", "main": "leaked"})
            x = thread_by_tid(rep, ids["x"])
            check("which is deadlocked" in x["reason"] and x["counterpart"]["owner"] == ids["a"], x["reason"])
            m = thread_by_tid(rep, ids["main"])
            check("join" in m["reason"] and "which is leaked" in m["reason"], m["reason"])
        elif mode == "owner_exited":
            rep = settled(p, ids, {"b": "leaked"})
            w = thread_by_tid(rep, ids["b"])
            check("exited" in w["reason"] and "without unlocking" in w["reason"] and "locker" in w["reason"], w["reason"])
            check(w["counterpart"]["owner"] == ids["a"] and w["counterpart"]["exited"] is True, w["counterpart"])
        elif mode == "rwlock_exited":
            rep = settled(p, ids, {"b": "leaked"})
            check("rwlock" in thread_by_tid(rep, ids["b"])["reason"], thread_by_tid(rep, ids["b"])["reason"])
        elif mode == "asleep":
            rep = settled(p, ids, {"main": "leaked", "a": "leaked"})
            check(any("all threads are asleep" in n for n in rep["notes"]), "notes %r" % rep["notes"])
            check("asleep" in thread_by_tid(rep, ids["a"])["reason"], thread_by_tid(rep, ids["a"])["reason"])
        else:   # healthy twins: watch for a while; nothing may ever be leaked or deadlocked
            end = time.time() + (4 if mode == "pipeline" else 2.5)
            samples = 0
            while time.time() < end:
                rep = p.threads()
                bad = [(t["tid"], t["name"], t["verdict"], t["reason"]) for t in rep["threads"]
                       if t["verdict"] in ("leaked", "deadlocked")]
                check(not bad, "healthy %s judged stuck: %r" % (mode, bad))
                samples += 1
                time.sleep(0.3)
            check(samples >= 3, "too few samples")
            if mode != "pipeline":
                check(rep["summary"]["waiting"] >= 2, "expected parked threads: %r" % rep["summary"])
            p.cli("status", str(p.pid), check_rc=0)


if __name__ == "__main__":
    run_test(main)
