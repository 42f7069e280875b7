#!/usr/bin/env python3
"""One hooked primitive (argv[1]): a thread parked on it is reported with the
right wait kind, object, timeout flag, owner, verdict and state, its wait
stack names the fixture's park_on_<mode> function and its creation stack the
function that called pthread_create."""
import sys
from lwtest import Process, check, fixture, functions, run_test, thread_by_tid, until

# mode: (kind, timeout, has_owner, has_object)
EXPECT = {
    "mutex": ("mutex", False, True, True), "mutex_timed": ("mutex", True, True, True),
    "mutex_clock": ("mutex", True, True, True),
    "cond": ("cond", False, False, True), "cond_timed": ("cond", True, False, True),
    "cond_clock": ("cond", True, False, True),
    "rwlock_rd": ("rwlock-read", False, True, True), "rwlock_wr": ("rwlock-write", False, True, True),
    "rwlock_timedrd": ("rwlock-read", True, True, True), "rwlock_timedwr": ("rwlock-write", True, True, True),
    "rwlock_clockrd": ("rwlock-read", True, True, True), "rwlock_clockwr": ("rwlock-write", True, True, True),
    "sem": ("sem", False, False, True), "sem_timed": ("sem", True, False, True),
    "sem_clock": ("sem", True, False, True),
    "barrier": ("barrier", False, False, True),
    "join": ("join", False, True, True), "join_timed": ("join", True, True, True),
    "join_clock": ("join", True, True, True),
    "c11_mtx": ("mutex", False, True, True), "c11_mtx_timed": ("mutex", True, True, True),
    "c11_cnd": ("cond", False, False, True), "c11_cnd_timed": ("cond", True, False, True),
    "c11_thrd_join": ("join", False, True, True),
    "futex_wait": ("futex", False, False, True), "futex_bitset": ("futex", False, False, True),
    "futex_lock_pi": ("futex", False, True, True), "futex_requeue_pi": ("futex", False, False, True),
    "futex_waitv": ("futex", False, False, True),
    "nanosleep": ("sleep", True, False, False), "clock_nanosleep": ("sleep", True, False, False),
    "usleep": ("sleep", True, False, False), "sleep": ("sleep", True, False, False),
}


def main():
    mode = sys.argv[1]
    kind, timed, has_owner, has_object = EXPECT[mode]
    with Process([fixture("park"), mode]) as p:
        ready = p.read_line("READY")
        tid = int(ready["tid"])

        def parked():
            t = thread_by_tid(p.threads(), tid)
            check(t is not None, "thread %d not reported" % tid)
            check(t["wait"] is not None and t["wait"]["kind"] == kind,
                  "thread %d wait is %r, wanted kind %s" % (tid, t["wait"], kind))
            return t

        t = until(parked, 5, "thread %d parked on %s" % (tid, kind))
        report = p.threads()
        w = t["wait"]
        check(t["name"] == "parked", "name %r" % t["name"])
        check(t["verdict"] == "waiting" and t["state"] == "parked", "verdict %s state %s" % (t["verdict"], t["state"]))
        check(w["timeout"] is timed, "timeout %r, wanted %r" % (w["timeout"], timed))
        if has_object:
            check(w["object"] is not None and int(w["object"], 16) == int(ready["object"], 16),
                  "object %r, fixture says %s" % (w["object"], ready["object"]))
        else:
            check(w["object"] is None, "object %r, wanted none" % w["object"])
        if has_owner:
            check(w["owner"] == int(ready["owner"]), "owner %r, fixture says %s" % (w["owner"], ready["owner"]))
        check(w["source"] == "hook", "source %r" % w["source"])
        want = "park_on_" + mode
        check(want in functions(t["wait_stack"]), "wait stack %r lacks %s" % (functions(t["wait_stack"]), want))
        check("start_parked" in functions(t["create_stack"]),
              "create stack %r lacks start_parked" % functions(t["create_stack"]))
        check(t["origin"] == "pthread_create" and t["parent"] == p.pid, "origin %r parent %r" % (t["origin"], t["parent"]))
        mains = [x for x in report["threads"] if x["main"]]
        check(len(mains) == 1 and mains[0]["tid"] == p.pid, "main thread not reported once: %r" % mains)
        check(report["pid"] == p.pid and report["version"] == 1, "pid/version")
        check(report["summary"]["threads"] == len(report["threads"]), "summary count")
        # The text views name the fixture's function too.
        text = p.cli("threads", str(p.pid), "--all", check_rc=0).stdout
        check(want in text and kind in text, "text dump lacks %s / %s:\n%s" % (want, kind, text))


if __name__ == "__main__":
    run_test(main)
