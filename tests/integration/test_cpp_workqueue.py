#!/usr/bin/env python3
"""An ordinary C++ work queue (fixtures/cpp_workqueue.cc: std::thread,
std::mutex, std::condition_variable, std::packaged_task and std::future)
under the preload; argv[1] is its mode.

  forgotten_pool   the two workers of a queue forgotten on the heap are
                   leaked by rule 3 on a single ask (askonce.ASK_AFTER after
                   READY, as a person asks), with a reason naming the unreachable
                   heap block; their stacks read in C++ (demangled):
                   wq::WorkQueue::worker_loop() under
                   std::condition_variable::wait<...>, created from the
                   constructor WorkQueue(int, char const*); `status` fails.
                   Under the sanitizer pass the scan proves nothing (ASan's
                   malloc is not glibc's): `waiting`, and the notes say why.
  orphaned_future  a client in std::future<int>::get() whose promise is in a
                   forgotten queue: libstdc++ waits with a futex op without
                   FUTEX_PRIVATE_FLAG, which the preload counts as possibly
                   process-shared by its flag, but it lies in private memory,
                   where only this process can wake it: not shared, and
                   `leaked` by rule 3 on a single ask (`waiting` under the
                   sanitizer pass). Not deadlocked or suspect.
  idle_pool        idle workers of a queue owned by a global and a client
                   waiting on a future a live worker will fulfil: watched
                   past two reachability scans, never leaked, deadlocked or
                   suspect; the idle workers are reachable; `status` passes.
  shutdown         a queue used and shut down properly: only main is left,
                   all three workers counted as exited; `leakwatch run
                   --check` on the same program (exiting) passes.
"""
import sys
import time

from askonce import ASK_AFTER, ask_once_after
from lwtest import (brief, Process, check, fixture, functions, run_cli, run_test, sanitized, thread_by_tid, until,
                    private_dir)

STALL_MS = 2000   # so that "never suspect" is checked past the stall threshold
WORKER_LOOP = "wq::WorkQueue::worker_loop()"
CONSTRUCTOR = "wq::WorkQueue::WorkQueue(int, char const*)"
CV_WAIT = "void std::condition_variable::wait<wq::WorkQueue::worker_loop()::{lambda()#1}>("
FUTURE_GET = "std::future<int>::get()"
NO_PROOF_NOTES = ("too large to scan", "could not be walked")


def start(mode):
    p = Process([fixture("cpp_workqueue"), mode], env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    ready = p.read_line("READY", timeout=30)
    p.ready_at = time.time()
    roles = {k: [int(x) for x in v.split(",") if int(x) > 0] for k, v in ready.items()}
    return p, roles


def has_function(frames, name):
    return any(f and f.startswith(name) for f in functions(frames))


def forgotten_pool():
    p, roles = start("forgotten_pool")
    with p:
        workers = roles["workers"]
        check(len(workers) == 2, "workers %r" % workers)
        want = "waiting" if sanitized() else "leaked"
        # Asked once, as a person asks, settle + confirmation + a margin
        # after READY (the workers parked, the pool forgotten).
        r = ask_once_after(p, p.ready_at)
        ts = [thread_by_tid(r, tid) for tid in workers]
        check(all(t is not None for t in ts), "workers missing from %r" % [t["tid"] for t in r["threads"]])
        check(all(t["verdict"] == want for t in ts), "workers on the single ask (%.1fs after READY): %r"
              % (time.time() - p.ready_at, [brief(t) for t in ts]))
        if sanitized():
            check(any("reachability" in n and any(w in n for w in NO_PROOF_NOTES) for n in r["notes"]),
                  "notes %r" % r["notes"])
        for t in ts:
            check(t["wait"]["kind"] == "cond", "wait %r" % t["wait"])
            check(has_function(t["wait_stack"], CV_WAIT) and has_function(t["wait_stack"], WORKER_LOOP),
                  "wait stack not in C++: %r" % functions(t["wait_stack"]))
            check(any(CONSTRUCTOR in (f or "") for f in functions(t["create_stack"])),
                  "creation stack lacks the constructor: %r" % functions(t["create_stack"]))
            if not sanitized():
                check("no live thread can reach" in t["reason"] and "heap block" in t["reason"], t["reason"])
                check(t["counterpart"]["unreachable"] is True, "counterpart %r" % t["counterpart"])
        main = thread_by_tid(r, roles["main"][0])
        check(main["verdict"] == "waiting" and main["wait"]["kind"] == "sleep", brief(main))
        text = p.cli("threads", str(p.pid), check_rc=0).stdout
        check(WORKER_LOOP in text and "std::condition_variable::wait" in text, "text dump:\n" + text)
        p.cli("status", str(p.pid), check_rc=1 if want == "leaked" else 0)


def orphaned_future():
    p, roles = start("orphaned_future")
    with p:
        client = roles["client"][0]
        # Asked once, past the settle time, the tool's two scans and the
        # stall threshold (STALL_MS).
        check(ASK_AFTER > STALL_MS / 1000.0, "ASK_AFTER %.1f s is not past the stall threshold" % ASK_AFTER)
        r = ask_once_after(p, p.ready_at)
        bad = [brief(t) for t in r["threads"] if t["verdict"] in ("deadlocked", "suspect")]
        check(not bad, "orphaned_future: %r" % bad)
        seen = thread_by_tid(r, client)
        check(seen is not None, "client %d not reported" % client)
        check(seen["wait"]["kind"] == "futex", "wait %r" % seen["wait"])
        check(has_function(seen["wait_stack"], FUTURE_GET) and
              has_function(seen["wait_stack"], "std::__future_base::_State_baseV2::wait()"),
              "wait stack not in C++: %r" % functions(seen["wait_stack"]))
        # libstdc++ waits without FUTEX_PRIVATE_FLAG, but on the heap: only
        # this process can wake it, so it is not shared, and rule 3 proves it.
        check(seen["wait"]["shared"] is False, "a futex word in private memory reported shared: %s" % brief(seen))
        if sanitized():
            check(seen["verdict"] == "waiting", "under a sanitizer rule 3 proves nothing: %s" % brief(seen))
        else:
            check(seen["verdict"] == "leaked" and "no live thread can reach" in seen["reason"],
                  "on the single ask (%.1fs after READY): %s" % (time.time() - p.ready_at, brief(seen)))


def idle_pool():
    p, roles = start("idle_pool")
    with p:
        idle, slow = roles["workers"][:2], roles["workers"][2]
        end = time.time() + 4.0
        samples = 0
        while time.time() < end:
            r = p.threads()
            bad = [brief(t) for t in r["threads"] if t["verdict"] in ("leaked", "deadlocked", "suspect")]
            check(not bad, "healthy idle_pool judged stuck: %r" % bad)
            samples += 1
            time.sleep(0.3)
        check(samples >= 3, "too few samples")
        for tid in idle:
            t = thread_by_tid(r, tid)
            check(t["verdict"] == "waiting" and t["wait"]["kind"] == "cond", brief(t))
            check(sanitized() or t["wait"]["reach"] == "reachable", "idle worker wait %r" % t["wait"])
            check(has_function(t["wait_stack"], WORKER_LOOP), "wait stack %r" % functions(t["wait_stack"]))
        s = thread_by_tid(r, slow)
        check(s["verdict"] == "waiting" and s["wait"]["kind"] == "sleep", brief(s))
        c = thread_by_tid(r, roles["client"][0])
        check(c["verdict"] == "waiting" and has_function(c["wait_stack"], FUTURE_GET), brief(c))
        p.cli("status", str(p.pid), check_rc=0)


def shutdown():
    p, roles = start("shutdown")
    with p:
        st = until(lambda: p.status(), 10, "status")
        check(st["summary"]["threads"] == 1 and st["summary"]["leaked"] == 0, "summary %r" % st["summary"])
        check(st["created"] >= 3 and st["exited"] == st["created"], "created %r exited %r" % (st["created"], st["exited"]))
        p.cli("status", str(p.pid), check_rc=0)
    tmp, lwdir = private_dir()
    r = run_cli(["run", "--check", "--", fixture("cpp_workqueue"), "shutdown", "exit"], lwdir)
    check(r.returncode == 0 and r.stdout.startswith("READY "),
          "run --check on a queue shut down properly: exit %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr))


MODES = {"forgotten_pool": forgotten_pool, "orphaned_future": orphaned_future, "idle_pool": idle_pool,
         "shutdown": shutdown}

if __name__ == "__main__":
    run_test(MODES[sys.argv[1]])
