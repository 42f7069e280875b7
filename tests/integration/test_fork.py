#!/usr/bin/env python3
"""fork (argv[1]: "main" forks from the main thread, "thread" from another
thread) gives the child its own registry, holding only the forking thread
(now the child's main thread) plus what the child creates, and its own
socket; parent and child each answer `leakwatch status PID` for themselves;
the parent keeps answering after the child exits, and the child's socket
file is removed when it exits normally."""
import os
import sys
from lwtest import Process, check, fixture, ping, run_test, until


def main():
    mode = sys.argv[1]
    with Process([fixture("forker"), mode], stdin=True) as p:
        parent = p.read_line("PARENT")
        child_line = p.read_line("CHILD ")
        child = int(parent["child"])
        check(int(child_line["pid"]) == child and int(child_line["tid"]) == child,
              "child says pid %s tid %s, parent says child %d" % (child_line["pid"], child_line["tid"], child))
        worker = int(child_line["worker"])
        parked = {int(t) for t in parent["parked"].split(",")}

        child_sock = p.wait_socket(child)
        check(child_sock != p.socket_path(), "the child reuses the parent's socket")
        c = until(lambda: p.threads(child), 5, "a report from the child")
        tids = sorted(t["tid"] for t in c["threads"])
        check(c["pid"] == child, "the child's socket answered for pid %r" % c["pid"])
        check(tids == sorted([child, worker]), "child threads %r, wanted only the forking thread %d and its worker %d%s"
              % ([(t["tid"], t["name"]) for t in c["threads"]], child, worker,
                 " (the parent's %r leaked into the child's registry)" % sorted(parked & set(tids)) if parked & set(tids) else ""))
        mains = [t for t in c["threads"] if t["main"]]
        check(len(mains) == 1 and mains[0]["tid"] == child, "child main thread: %r" % [(t["tid"], t["main"]) for t in c["threads"]])
        if mode == "thread":
            check(mains[0]["name"] == "forking", "the child's only inherited thread is named %r, wanted forking" % mains[0]["name"])
        w = [t for t in c["threads"] if t["tid"] == worker][0]
        check(w["wait"] and w["wait"]["kind"] == "sem" and w["state"] == "parked", "child worker: %r" % w["wait"])
        check(w["parent"] == child, "child worker's parent %r, wanted %d" % (w["parent"], child))
        check(c["created"] == 1, "child created %r, wanted 1 (only its own thread)" % c["created"])
        check(c["summary"]["threads"] == 2, "child summary %r" % c["summary"])
        cs = p.status(child)
        check(cs["pid"] == child and cs["summary"]["threads"] == 2, "leakwatch status %d: %r" % (child, cs))

        par = p.threads()
        ptids = {t["tid"] for t in par["threads"]}
        want = 4 if mode == "thread" else 3   # main (+ the forking thread, in waitpid) + two parked
        check(par["pid"] == p.pid and len(par["threads"]) == want and parked <= ptids,
              "parent threads %r" % [(t["tid"], t["name"]) for t in par["threads"]])
        check(child not in ptids and worker not in ptids, "the child's threads appear in the parent's report")
        ps = p.status()
        check(ps["pid"] == p.pid and ps["summary"]["threads"] == want, "leakwatch status %d: %r" % (p.pid, ps))

        p.send("exit\n")
        done = p.read_line("CHILD_EXITED", timeout=15)
        check(done["status"] == "0", "child exit status %s" % done["status"])
        until(lambda: not os.path.exists(child_sock), 2, "the child's socket %s to be removed" % child_sock)
        check(os.path.exists(p.socket_path()), "the parent's socket is gone")
        ping(p.socket_path())
        again = until(lambda: len(p.threads()["threads"]) == 3 and p.threads(), 3, "the parent to settle at 3 threads")
        check(again["pid"] == p.pid, "pid %r" % again["pid"])
        r = p.cli("status", str(child))
        check(r.returncode == 2, "leakwatch status of the exited child: exit %d, wanted 2: %s %s" % (r.returncode, r.stdout, r.stderr))


if __name__ == "__main__":
    run_test(main)
