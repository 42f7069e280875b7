#!/usr/bin/env python3
"""One hooked primitive (argv[1], a mode of fixtures/park): a thread parked on
it is reported through the real socket and CLI with the right wait kind,
object, timeout flag and remaining time, owner (lock holder or join target),
aux (a condvar's mutex), verdict "waiting" and state "parked"; its wait stack
names the fixture's park_on_<mode>, its creation stack start_parked (the
caller of pthread_create) and its start routine parked_thread; the main
thread is reported once.

`test_park.py --modes MODE...` instead checks that the modes meson runs, the
modes this script knows and the modes the fixture implements are the same."""
import subprocess
import sys
from lwtest import Process, addr, check, fixture, functions, run_test, sanitized, thread_by_tid, until

HOUR = 3600.0
# mode: (kind, timed, has_owner, has_object, has_aux, remaining seconds or None)
EXPECT = {
    "mutex": ("mutex", False, True, True, False, None),
    "mutex_timed": ("mutex", True, True, True, False, HOUR),
    "mutex_clock": ("mutex", True, True, True, False, HOUR),
    "cond": ("cond", False, False, True, True, None),
    "cond_timed": ("cond", True, False, True, True, HOUR),
    "cond_clock": ("cond", True, False, True, True, HOUR),
    "rwlock_rd": ("rwlock-read", False, True, True, False, None),
    "rwlock_wr": ("rwlock-write", False, True, True, False, None),
    "rwlock_timedrd": ("rwlock-read", True, True, True, False, HOUR),
    "rwlock_timedwr": ("rwlock-write", True, True, True, False, HOUR),
    "rwlock_clockrd": ("rwlock-read", True, True, True, False, HOUR),
    "rwlock_clockwr": ("rwlock-write", True, True, True, False, HOUR),
    "sem": ("sem", False, False, True, False, None),
    "sem_timed": ("sem", True, False, True, False, HOUR),
    "sem_clock": ("sem", True, False, True, False, HOUR),
    "barrier": ("barrier", False, False, True, False, None),
    "join": ("join", False, True, True, False, None),
    "join_timed": ("join", True, True, True, False, HOUR),
    "join_clock": ("join", True, True, True, False, HOUR),
    "c11_mtx": ("mutex", False, True, True, False, None),
    "c11_mtx_timed": ("mutex", True, True, True, False, HOUR),
    "c11_cnd": ("cond", False, False, True, True, None),
    "c11_cnd_timed": ("cond", True, False, True, True, HOUR),
    "c11_thrd_join": ("join", False, True, True, False, None),
    "futex_wait": ("futex", False, False, True, False, None),
    "futex_bitset": ("futex", False, False, True, False, None),
    "futex_lock_pi": ("futex", False, True, True, False, None),
    "futex_requeue_pi": ("futex", False, False, True, False, None),
    "futex_waitv": ("futex", False, False, True, False, None),
    "nanosleep": ("sleep", True, False, False, False, HOUR),
    "clock_nanosleep": ("sleep", True, False, False, False, HOUR),
    "usleep": ("sleep", True, False, False, False, 3000.0),
    "sleep": ("sleep", True, False, False, False, HOUR),
}


def check_modes(meson_modes):
    listed = subprocess.run([fixture("park"), "list"], capture_output=True, text=True, check=True).stdout.split()
    check(sorted(listed) == sorted(EXPECT), "fixture modes %r != test_park.py modes %r"
          % (sorted(set(listed) ^ set(EXPECT)), sorted(EXPECT)))
    check(sorted(meson_modes) == sorted(EXPECT), "meson runs %r, fixture has %r"
          % (sorted(set(meson_modes) ^ set(EXPECT)), sorted(EXPECT)))


def check_thread(mode, ready, t):
    kind, timed, has_owner, has_object, has_aux, remaining = EXPECT[mode]
    tid = int(ready["tid"])
    w = t["wait"]
    where = "%s (tid %d): " % (mode, tid)
    check(t["name"] == ready["name"], where + "name %r, the fixture set %r" % (t["name"], ready["name"]))
    check(t["verdict"] == "waiting", where + "verdict %r, wanted waiting (reason %r)" % (t["verdict"], t.get("reason")))
    check(t["state"] == "parked", where + "state %r, wanted parked" % t["state"])
    check(t["main"] is False, where + "a pthread_create thread reported as main")
    check(w["kind"] == kind, where + "kind %r, wanted %r" % (w["kind"], kind))
    check(w["source"] == "hook", where + "source %r, wanted hook" % w["source"])
    # Every object of the fixture is process-private (a shared one is never proven stuck).
    check(w["shared"] is False, where + "shared %r for a process-private object" % w["shared"])
    check(w["timeout"] is timed, where + "timeout %r, wanted %r" % (w["timeout"], timed))
    if remaining is None:
        check(w["remaining"] is None, where + "remaining %r on a wait without a deadline" % w["remaining"])
    else:
        # The deadline was set an hour (usleep: 3000 s) from the READY line:
        # a clock mix-up (monotonic read as realtime) is off by decades.
        check(isinstance(w["remaining"], (int, float)) and remaining - 120 < w["remaining"] <= remaining + 1,
              where + "remaining %r, wanted about %.0f" % (w["remaining"], remaining))
    check(isinstance(w["seconds"], (int, float)) and 0 <= w["seconds"] < 600,
          where + "seconds parked %r" % w["seconds"])
    if has_object:
        check(addr(w["object"]) is not None and addr(w["object"]) == addr(ready["object"]),
              where + "object %r, the fixture says %s" % (w["object"], ready["object"]))
    else:
        check(w["object"] is None, where + "object %r, wanted null" % w["object"])
    if has_owner:
        check(w["owner"] == int(ready["owner"]), where + "owner %r, the fixture says %s" % (w["owner"], ready["owner"]))
    if has_aux:
        check(addr(w["aux"]) == addr(ready["aux"]), where + "aux %r, the condvar's mutex is %s" % (w["aux"], ready["aux"]))
    want = "park_on_" + mode
    check(want in functions(t["wait_stack"]),
          where + "wait stack %r lacks %s" % (functions(t["wait_stack"]), want))
    check("start_parked" in functions(t["create_stack"]),
          where + "create stack %r lacks start_parked" % functions(t["create_stack"]))
    check(t["origin"] == "pthread_create", where + "origin %r" % t["origin"])
    # Under ASan its pthread_create interceptor comes first and hands ours its
    # own trampoline (asan_thread_start) as the start routine.
    routines = (("parked_thread", "_ZL17asan_thread_startPv", "asan_thread_start(void*)") if sanitized()
                else ("parked_thread",))
    check((t["start_routine"] or {}).get("function") in routines,
          where + "start routine %r, wanted parked_thread" % t["start_routine"])


def main():
    mode = sys.argv[1]
    kind = EXPECT[mode][0]
    with Process([fixture("park"), mode]) as p:
        ready = p.read_line("READY")
        tid = int(ready["tid"])

        def parked():
            r = p.threads()
            t = thread_by_tid(r, tid)
            check(t is not None, "thread %d not reported: %r" % (tid, [(x["tid"], x["name"]) for x in r["threads"]]))
            check(t["wait"] is not None and t["wait"]["kind"] == kind and t["state"] == "parked",
                  "thread %d state %r wait %r, wanted parked on %s" % (tid, t["state"], t["wait"], kind))
            return r

        # The wait is recorded on entry to the hook: it must show within ~3 s.
        report = until(parked, 3, "thread %d parked on %s" % (tid, kind))
        check_thread(mode, ready, thread_by_tid(report, tid))
        check(report["version"] == 1 and report["pid"] == p.pid, "version %r pid %r" % (report["version"], report["pid"]))
        mains = [x for x in report["threads"] if x["main"]]
        check(len(mains) == 1 and mains[0]["tid"] == p.pid and mains[0]["origin"] == "main",
              "main thread not reported once as tid %d: %r" % (p.pid, [(x["tid"], x["origin"]) for x in mains]))
        check(thread_by_tid(report, tid)["parent"] == p.pid, "parent %r, wanted the main thread %d"
              % (thread_by_tid(report, tid)["parent"], p.pid))
        check(report["summary"]["threads"] == len(report["threads"]),
              "summary says %r threads, %d listed" % (report["summary"]["threads"], len(report["threads"])))
        if EXPECT[mode][2]:
            check(thread_by_tid(report, int(ready["owner"])) is not None, "the owner thread %s is not reported" % ready["owner"])
        # The text dump names the fixture's function and the wait kind too.
        text = p.cli("threads", str(p.pid), "--all", check_rc=0).stdout
        check("park_on_" + mode in text and kind in text, "text dump lacks park_on_%s / %s:\n%s" % (mode, kind, text))


if __name__ == "__main__":
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
