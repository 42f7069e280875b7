#!/usr/bin/env python3
"""Threads cancelled inside cond_wait, sem_wait, pthread_join, nanosleep and
read (a pipe) leave no stale record: afterwards none of them is reported as a
thread, nothing is reported as waiting on their objects, they are counted as
exited, and the process keeps answering."""
import json
from lwtest import Process, addr, check, fixture, ping, run_test, thread_by_tid, until


def main():
    with Process([fixture("cancel")], stdin=True) as p:
        ready = p.read_line("READY")
        tids = [int(t) for t in ready["tids"].split(",")]
        objects = {addr(ready[k]): k for k in ("cond", "sem", "join")}
        fd = int(ready["fd"])

        def all_parked():
            r = p.threads()
            ts = [thread_by_tid(r, t) for t in tids]
            check(all(t and t["state"] == "parked" and t["wait"] for t in ts), "not all parked: %r" %
                  [(tid, t and t["state"], t and t["wait"]) for tid, t in zip(tids, ts)])
            return r
        before = until(all_parked, 5, "the five threads to park")
        waits = [thread_by_tid(before, t)["wait"] for t in tids]
        kinds = [w["kind"] for w in waits]
        check(kinds[:4] == ["cond", "sem", "join", "sleep"], "kinds %r, wanted cond, sem, join, sleep, ..." % kinds)
        for w, name in zip(waits[:3], ("cond", "sem", "join")):
            check(addr(w["object"]) == addr(ready[name]), "%s wait on %r, the fixture says %s" % (name, w["object"], ready[name]))
        created_before = before["created"]

        p.send("go\n")
        p.read_line("DONE")
        check(not any(line.startswith("NOT_CANCELLED") for line in p.lines), "not cancelled: %r" % p.lines)

        def gone():
            r = p.threads()
            left = [(t, thread_by_tid(r, t)["wait"]) for t in tids if thread_by_tid(r, t)]
            check(not left, "cancelled threads still reported: %r" % left)
            return r
        after = until(gone, 2, "the cancelled threads to disappear")
        stale = [(t["tid"], t["name"], t["wait"]) for t in after["threads"] if t["wait"] and
                 (addr(t["wait"]["object"]) in objects or addr(t["wait"].get("aux")) == addr(ready["mutex"]) or
                  t["wait"].get("fd") == fd)]
        check(not stale, "still reported as waiting on the cancelled threads' objects: %r" % stale)
        exited = {x["tid"] for x in after["exited_threads"]}
        check(set(tids) <= exited, "not in exited_threads: %r" % sorted(set(tids) - exited))
        check(after["exited"] >= 5 and after["created"] == created_before,
              "created %r (was %r) exited %r" % (after["created"], created_before, after["exited"]))
        check(after["summary"]["threads"] == len(after["threads"]) == 2,
              "threads left %r, wanted main and the forever thread" % [(t["tid"], t["name"]) for t in after["threads"]])
        check(after["summary"]["parked"] == sum(t["state"] == "parked" for t in after["threads"]), "summary %r" % after["summary"])
        ping(p.socket_path())
        s = p.status()
        check(s["summary"]["threads"] == 2, "status after the cancellations: %s" % json.dumps(s["summary"]))
        check(p.alive(), "the process died")


if __name__ == "__main__":
    run_test(main)
