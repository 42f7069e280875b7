#!/usr/bin/env python3
"""Threads cancelled inside cond_wait, sem_wait, pthread_join, nanosleep and
read leave no stale record: afterwards none of them is reported, they are
in the exited list, and the process keeps answering."""
from lwtest import Process, check, fixture, run_test, thread_by_tid, until


def main():
    with Process([fixture("cancel")], stdin=True) as p:
        tids = [int(t) for t in p.read_line("READY")["tids"].split(",")]

        def all_parked():
            r = p.threads()
            waits = [thread_by_tid(r, t) for t in tids]
            check(all(w and w["state"] == "parked" for w in waits), "not all parked: %r" %
                  [(t, w and w["wait"]) for t, w in zip(tids, waits)])
            return r
        before = until(all_parked, 5, "the five threads to park")
        kinds = [thread_by_tid(before, t)["wait"]["kind"] for t in tids]
        check(kinds[:4] == ["cond", "sem", "join", "sleep"], "kinds %r" % kinds)
        p.send("go\n")
        p.read_line("DONE")
        after = p.threads()
        left = [t for t in tids if thread_by_tid(after, t)]
        check(not left, "cancelled threads still reported: %r" % left)
        exited = {x["tid"] for x in after["exited_threads"]}
        check(set(tids) <= exited, "not in exited_threads: %r" % (set(tids) - exited))
        check(after["summary"]["threads"] == len(after["threads"]), "summary")


if __name__ == "__main__":
    run_test(main)
