#!/usr/bin/env python3
"""Attach (issue 17): processes started without the preload, judged from
outside by `leakwatch threads|status|watch PID` (ptrace, /proc, libdwfl and
the preload's own engine). argv[1] is a mode:

  classic-MECH   the classic leaks of fixtures/classic.c over one handoff
                 mechanism (cond, sem, futex, pipe, eventfd, socketpair),
                 every pattern and variant, run bare and attached to. What
                 attach can prove matches the preload's: the memory leaks'
                 workers are `leaked` by rule 3 (one scan with every
                 thread stopped), the heap block named the one the program
                 allocated, and the same processes run under the preload
                 give the same verdicts (name, verdict, kind); what it
                 cannot (the fd handoffs' history) is `waiting`, never
                 `leaked` or `suspect`; the fixed twins are never stuck.
  verdicts       fixtures/verdicts.c's situations, bare: deadlock cycles of
                 mutexes and rwlocks, a join chain into one, owners that
                 exited holding a lock, a whole process asleep; and the
                 healthy twins, never stuck.
  text           the text view's first line says it attached, `status`
                 exits 1 on a leak, `watch` refreshes by attaching again,
                 `--attach` is taken even when a socket exists.
  frames         stacks an unwinder finds hard, from outside: code without
                 unwind tables (its frame pointer alone leads back) and a
                 wait inside a signal handler (through the signal frame).
  glib           fixtures/glib_leak.c's abandoned GLib workers proven (GSlice's
                 slabs read from outside, each slice a block), its twins
                 kept by a global or a GList node (a slice) `waiting`.
  registers      fixtures/reachfix.c's register_ref and register_parked_ref
                 (the only pointer to a worker's condvar in another thread's
                 register) stay `waiting`: a frozen scan reads every register;
                 fetch_cond (no pointer left) is proven `leaked`.
  core-classic, core-verdicts
                 the same processes dumped with gdb's gcore and judged from
                 the core (`leakwatch threads --core FILE --since 5`): the
                 same verdicts, thread for thread, as the live attach gave.
  harm-*         the process takes no harm: SIGKILL of leakwatch mid-freeze
                 (the kernel lets go), SIGINT and SIGTERM mid-freeze (the
                 handler lets go), a process another tracer holds (exit 2,
                 a clear message), a stopped process (left stopped), threads
                 exiting mid-attach, waits that a ptrace stop cuts short with
                 EINTR (restarted: the program never sees it), another
                 user's process (exit 2, says why), a process whose main
                 thread has exited (judged through a live thread).

Under the sanitizer pass the fixtures' malloc is ASan's: rule 3 proves
nothing there (the note says why) and the memory leaks stay `waiting`."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from lwtest import (CLI, SLOW, Process, TestFailure, brief, check, fixture, run_cli, run_test, sanitized,
                    thread_by_tid, until)

PATTERNS = {"fetch": "fetcher", "wait_ready": "verifier", "generator": "generator"}
MEMORY = {"cond": "cond", "sem": "sem", "futex": "futex"}
FDS = ("pipe", "eventfd", "socketpair")
STUCK = ("leaked", "deadlocked", "suspect")


def attach(pid, *extra, rc=0, settle_ms=1000):
    """`leakwatch threads PID --json --all` on a process without a socket:
    judged from outside. The parsed report."""
    p = run_cli(["threads", str(pid), "--json", "--all", "--settle", str(settle_ms)] + list(extra), "/nonexistent")
    check(p.returncode == rc, "leakwatch threads %d: exit %d (wanted %d)\nstdout: %s\nstderr: %s"
          % (pid, p.returncode, rc, p.stdout[-2000:], p.stderr[-2000:]))
    if rc != 0:
        return p
    report = json.loads(p.stdout)
    check(report.get("source") == "attach", "not judged from outside: source %r" % report.get("source"))
    check(report["attach"]["threads_stopped"] >= 1, "attach facts %r" % report["attach"])
    return report


def stuck_threads(report):
    return [t for t in report["threads"] if t["verdict"] in STUCK]


def bare(argv):
    return Process(argv, preload=False)


def alive_and_beating(p, what):
    """The heartbeat fixture still runs: a new BEAT line within a second."""
    p.more_output()
    lines = p.more_output(wait=1.0 * SLOW)
    check(any(l.startswith("BEAT") for l in lines), "%s: no heartbeat since (%r)" % (what, lines[-5:]))
    check(not any(l.startswith(("EINTR", "ERROR")) for l in p.lines), "%s: a wait was cut short: %r"
          % (what, [l for l in p.lines if not l.startswith("BEAT")]))


def traced_by(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return -1


def state_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


# ---- the classic leaks ----

def start_classic(mech, variants):
    runs = {}
    for pattern in PATTERNS:
        for variant in variants:
            argv = [fixture("classic"), pattern, mech, variant]
            runs[(pattern, variant)] = bare(argv)
    for key, p in runs.items():
        p.read_line("READY", timeout=20)
        p.requests = [p.read_line("REQUEST") for _ in range(3)] if key[1] != "stall" else []
    return runs


def check_memory_leak(mech, pattern, p, report):
    workers = [int(r["worker"]) for r in p.requests]
    for tid in workers:
        t = thread_by_tid(report, tid)
        check(t is not None, "worker %d not reported" % tid)
        check(t["wait"]["kind"] == MEMORY[mech], "worker: %s" % brief(t))
        if sanitized():
            check(t["verdict"] == "waiting", "sanitized: %s" % brief(t))
            continue
        check(t["verdict"] == "leaked", "%s %s leak, worker: %s" % (pattern, mech, brief(t)))
        check("scanned with every thread stopped" in t["reason"], t["reason"])
        blocks = {int(r["obj"], 16) for r in p.requests}
        check(int(t["counterpart"]["block"], 16) in blocks, "block %s not one of %s" % (t["counterpart"], blocks))
        check(t["wait_stack"] and t["wait_stack"][0]["function"] not in (None, "??"), "stack %r" % t["wait_stack"])
    others = [t for t in report["threads"] if t["tid"] not in workers]
    check(not stuck_threads({"threads": others}), "others stuck: %s" % [brief(t) for t in stuck_threads({"threads": others})])


def signature(report):
    return sorted((t["name"], t["verdict"], (t.get("wait") or {}).get("kind")) for t in report["threads"])


def compare_with_preload(mech, pattern, attached):
    """The same program under the preload: once its report proves what it
    can, the same verdicts thread for thread (by name, verdict, kind)."""
    with Process([fixture("classic"), pattern, mech, "leak"]) as p:
        p.read_line("READY", timeout=20)

        def agreed():
            r = p.threads()
            check(len([t for t in r["threads"] if t["verdict"] == "leaked"]) == 3, "not yet proven")
            return r
        preloaded = until(agreed, 10, "the preload's proof")
        check(signature(preloaded) == signature(attached), "the preload says %r, attach %r"
              % (signature(preloaded), signature(attached)))


def mode_classic(mech):
    memory = mech in MEMORY
    variants = ["leak", "fixed"] + ([] if memory else ["stall"])
    runs = start_classic(mech, variants)
    try:
        time.sleep(0.5 * SLOW)   # the workers park (or exit) shortly after READY
        for (pattern, variant), p in runs.items():
            report = attach(p.pid)
            if variant == "leak" and memory:
                check_memory_leak(mech, pattern, p, report)
                if not sanitized():
                    compare_with_preload(mech, pattern, report)
            else:
                check(not stuck_threads(report), "%s %s %s: %s" % (pattern, mech, variant,
                                                                  [brief(t) for t in stuck_threads(report)]))
            if variant == "leak" and mech == "socketpair":
                for r in p.requests:
                    t = thread_by_tid(report, int(r["worker"]))
                    check(t["wait"]["channel"]["type"] == "socketpair", "channel %r" % t["wait"]["channel"])
        for (pattern, variant), p in runs.items():   # later, still never stuck where nothing is proven
            if variant != "leak" or not memory:
                report = attach(p.pid, settle_ms=500)
                check(not stuck_threads(report), "%s %s %s later: %s" % (pattern, mech, variant,
                                                                        [brief(t) for t in stuck_threads(report)]))
    finally:
        for p in runs.values():
            p.close()


# ---- the proof rules ----

VERDICTS = {
    "deadlock2": {"a": "deadlocked", "b": "deadlocked", "main": "waiting"},
    "deadlock3": {"a": "deadlocked", "b": "deadlocked", "c": "deadlocked"},
    "join_chain": {"a": "deadlocked", "b": "deadlocked", "x": "leaked", "main": "leaked"},
    "owner_exited": {"b": "leaked"},
    "rwlock_exited": {"b": "leaked"},
    "asleep": {"main": "leaked", "a": "leaked"},
}
HEALTHY = ("pool_idle", "timer", "pipeline")


def mode_verdicts():
    runs = {m: bare([fixture("verdicts"), m]) for m in list(VERDICTS) + list(HEALTHY)}
    try:
        ids = {}
        for m, p in runs.items():
            r = p.read_line("READY", timeout=20)
            ids[m] = {k: int(v) for k, v in r.items() if int(v) > 0}
        time.sleep(0.3)
        for m, want in VERDICTS.items():
            def proven():
                report = attach(runs[m].pid)
                got = {k: (thread_by_tid(report, tid) or {}).get("verdict") for k, tid in ids[m].items()}
                check(all(got[k] == v for k, v in want.items()), "%s: verdicts %r, want %r" % (m, got, want))
                return report
            report = until(proven, 10, m)
            if m == "deadlock2":
                a = thread_by_tid(report, ids[m]["a"])
                check(a["counterpart"]["cycle"] == [ids[m]["a"], ids[m]["b"]], "cycle %r" % a["counterpart"])
            if m == "owner_exited":
                b = thread_by_tid(report, ids[m]["b"])
                check("exited without unlocking it" in b["reason"] and b["counterpart"]["owner"] == ids[m]["a"],
                      b["reason"])
        for _ in range(3):
            for m in HEALTHY:
                report = attach(runs[m].pid, settle_ms=300)
                check(not stuck_threads(report), "%s: %s" % (m, [brief(t) for t in stuck_threads(report)]))
            time.sleep(0.5)
    finally:
        for p in runs.values():
            p.close()


# ---- GLib's slices ----

GLIB = {"queue-leak": "leaked", "gate-leak": "leaked", "gate-list": "waiting", "queue-global": "waiting"}


def mode_glib():
    """fixtures/glib_leak.c bare: GSlice's slabs read from outside (through
    process_vm_readv, not dereferenced), each slice a block of its own, so
    the abandoned GLib workers are proven in one frozen scan, the twins kept
    (by a global, by a GList whose node is a slice) are not."""
    runs = {m: bare([fixture("glib_leak")] + m.split("-")) for m in GLIB}
    try:
        ready = {m: p.read_line("READY", timeout=30) for m, p in runs.items()}
        for m, want in GLIB.items():
            victim = int(ready[m]["victims"].split(",")[0])
            obj, size = int(ready[m]["obj"], 16), int(ready[m]["size"])
            if sanitized():
                want = "waiting"   # (ASan's malloc: no scan)

            def judged():
                report = attach(runs[m].pid)
                t = thread_by_tid(report, victim)
                check(t is not None and t["verdict"] == want, "%s: the worker %s, want %s (notes %r)"
                      % (m, brief(t) if t else "missing", want, report.get("notes")))
                return report, t
            report, t = until(judged, 10, m)
            others = [o for o in stuck_threads(report) if o["tid"] != victim]
            check(not others, "%s: others stuck: %s" % (m, [brief(o) for o in others]))
            if want == "leaked":
                check("GLib slices" in " ".join(report.get("notes") or []), "%s: notes %r" % (m, report.get("notes")))
                block, bsize = int(t["counterpart"]["block"], 16), t["counterpart"]["block_size"]
                check(block <= obj and obj + size <= block + bsize, "%s: block %#x+%d does not hold the object %#x+%d"
                      % (m, block, bsize, obj, size))
    finally:
        for p in runs.values():
            p.close()


# ---- registers ----

REGISTERS = {"register_ref": "waiting", "register_parked_ref": "waiting", "fetch_cond": "leaked"}


def mode_registers():
    """fixtures/reachfix.c bare: the only pointer to a worker's condvar in a
    register of a running thread (register_ref) or of a parked one
    (register_parked_ref). From inside such a scan proves nothing; frozen,
    every register is read: the worker is `waiting` (reachable), on every
    attach, while the same fixture with no pointer left (fetch_cond) is
    proven `leaked` in one scan."""
    runs = {m: bare([fixture("reachfix"), m]) for m in REGISTERS}
    try:
        ready = {m: p.read_line("READY", timeout=30) for m, p in runs.items()}
        time.sleep(0.3)
        for _ in range(3):
            for m, want in REGISTERS.items():
                if sanitized():
                    want = "waiting"
                report = attach(runs[m].pid, settle_ms=300)
                t = thread_by_tid(report, int(ready[m]["worker"]))
                check(t is not None and t["verdict"] == want, "%s: the worker %s, want %s (notes %r)"
                      % (m, brief(t) if t else "missing", want, report.get("notes")))
                if m != "fetch_cond":
                    check(t["wait"].get("reach") in ("reachable", None), "%s: %r" % (m, t["wait"]))
                    check("proves nothing" not in " ".join(report.get("notes") or []), "%s: notes %r"
                          % (m, report.get("notes")))
    finally:
        for p in runs.values():
            p.close()


# ---- the verbs ----

def mode_text():
    with bare([fixture("classic"), "fetch", "cond", "leak"]) as p:
        p.read_line("READY", timeout=20)
        time.sleep(0.5)
        out = run_cli(["threads", str(p.pid)], "/nonexistent")
        check(out.returncode == 0, "threads: exit %d: %s" % (out.returncode, out.stderr))
        first = out.stdout.splitlines()[0]
        check(first.startswith("attached to pid %d from outside (no leakwatch socket)" % p.pid), first)
        check("3 threads leaked" in out.stdout or sanitized(), out.stdout)
        st = run_cli(["status", str(p.pid)], "/nonexistent")
        check(st.returncode == (0 if sanitized() else 1), "status: exit %d: %s" % (st.returncode, st.stdout))
        check(st.stdout.startswith("attached to pid"), st.stdout)
        w = run_cli(["watch", str(p.pid), "--count", "2", "--interval", "0.2"], "/nonexistent")
        check(w.returncode == 0 and w.stdout.count("attached to pid") == 2, "watch: %r %r" % (w.stdout, w.stderr))
    # --attach: judged from outside even with a socket
    with Process([fixture("classic"), "fetch", "cond", "leak"]) as p:
        p.read_line("READY", timeout=20)
        p.wait_socket()
        r = p.cli("threads", str(p.pid), "--json", "--attach", "--settle", "300", check_rc=0)
        report = json.loads(r.stdout)
        check(report["source"] == "attach" and report["attach"]["why"] == "--attach", "facts %r" % report.get("attach"))
        check(p.alive(), "the process died")


# ---- stacks an unwinder finds hard ----

def mode_frames():
    """Code without unwind tables (only its frame pointer leads back) and a
    wait inside a signal handler: both stacks whole, from outside."""
    with bare([fixture("attach_target"), "frames"]) as p:
        p.read_line("READY")
        report = attach(p.pid, settle_ms=200)
        stacks = {t["tid"]: [f.get("function") for f in t.get("wait_stack") or []] for t in report["threads"]}
        fp = [s for s in stacks.values() if "fp_inner" in s]
        check(fp and all(f in fp[0] for f in ("fp_inner", "fp_middle", "fp_outer", "in_frame_pointer_code")),
              "the frame-pointer stack: %r" % list(stacks.values()))
        sig = [s for s in stacks.values() if "on_signal" in s]
        check(sig and "signal_victim" in sig[0] and "in_signal_handler" in sig[0],
              "the signal handler's stack: %r" % list(stacks.values()))


# ---- no harm ----

def hold_and_kill(sig):
    """leakwatch killed by sig while it holds every thread stopped."""
    with bare([fixture("attach_target"), "heartbeat"]) as p:
        p.read_line("READY")
        env = dict(os.environ, LEAKWATCH_ATTACH_HOLD_MS="20000")
        cli = subprocess.Popen([CLI, "threads", str(p.pid), "--settle", "100"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, text=True)
        try:
            held = cli.stderr.readline()   # once every thread is stopped and its registers read
            check("holding the threads stopped" in held, "leakwatch said %r" % held)
            check(traced_by(p.pid) == cli.pid and state_of(p.pid) == "t", "not frozen: tracer %r, state %r"
                  % (traced_by(p.pid), state_of(p.pid)))
            cli.send_signal(sig)
            rc = cli.wait(timeout=10)
            check(rc == -sig, "leakwatch exited %r after signal %d" % (rc, sig))
        finally:
            if cli.poll() is None:
                cli.kill()
        until(lambda: traced_by(p.pid) == 0, 5, "the tracer gone")
        alive_and_beating(p, "after signal %d" % sig)
        check(state_of(p.pid) in ("S", "R"), "state %r" % state_of(p.pid))


def mode_harm_sigkill():
    hold_and_kill(signal.SIGKILL)


def mode_harm_signals():
    for sig in (signal.SIGINT, signal.SIGTERM):
        hold_and_kill(sig)


def mode_harm_traced():
    with bare([fixture("attach_target"), "heartbeat"]) as p:
        p.read_line("READY")
        with Process([fixture("tracer"), str(p.pid)], preload=False, stdin=True) as tracer:
            tracer.read_line("TRACING")
            out = run_cli(["threads", str(p.pid)], "/nonexistent")
            check(out.returncode == 2, "exit %d, wanted 2: %s" % (out.returncode, out.stderr))
            check("already traced by pid %d (tracer)" % tracer.pid in out.stderr, out.stderr)
            tracer.proc.stdin.close()
            tracer.proc.wait(timeout=10)
        alive_and_beating(p, "after the refused attach")
        attach(p.pid, settle_ms=100)   # and once the debugger left, it works


def mode_harm_stopped():
    with bare([fixture("attach_target"), "heartbeat"]) as p:
        p.read_line("READY")
        os.kill(p.pid, signal.SIGSTOP)
        until(lambda: state_of(p.pid) == "T", 5, "stopped")
        report = attach(p.pid, settle_ms=200)
        check(report["attach"]["was_stopped"] is True, "facts %r" % report["attach"])
        check(any("left stopped" in n for n in report["notes"]), "notes %r" % report["notes"])
        time.sleep(0.3)
        check(state_of(p.pid) == "T", "no longer stopped: %r" % state_of(p.pid))
        p.more_output()
        check(not p.more_output(wait=0.3), "a stopped process beat")
        os.kill(p.pid, signal.SIGCONT)
        lines = p.more_output(wait=1.0)
        check(any(l.startswith("BEAT") for l in lines), "no heartbeat after SIGCONT: %r" % lines)


def mode_harm_leaderless():
    """Its main thread gone (pthread_exit: a zombie leader, no memory, maps
    or fds of its own): judged through a live thread, and left running."""
    with bare([fixture("attach_target"), "leaderless"]) as p:
        p.read_line("READY")
        time.sleep(0.2)
        report = attach(p.pid, settle_ms=100)
        check(len(report["threads"]) >= 7 and all(t["tid"] != p.pid for t in report["threads"]),
              "threads %r" % [(t["tid"], t["name"]) for t in report["threads"]])
        check(report["command"].endswith("attach_target leaderless"), "command %r" % report["command"])
        check(not stuck_threads(report), "leaderless: %s" % [brief(t) for t in stuck_threads(report)])
        alive_and_beating(p, "a leaderless process after an attach")


def mode_harm_churn():
    with bare([fixture("attach_target"), "churn"]) as p:
        p.read_line("READY")
        for _ in range(20):
            report = attach(p.pid, settle_ms=50)
            check(not stuck_threads(report), "churn: %s" % [brief(t) for t in stuck_threads(report)])
        alive_and_beating(p, "after 20 attaches to a churning process")


def mode_harm_eintr():
    with bare([fixture("attach_target"), "heartbeat"]) as p:
        p.read_line("READY")
        for _ in range(10):
            report = attach(p.pid, settle_ms=50)
        check(report["attach"]["restarted_waits"] >= 3, "restarted %r" % report["attach"])
        alive_and_beating(p, "after 10 attaches")


def mode_harm_other_user():
    if os.geteuid() != 0:
        print("SKIP: needs root, to attach as another user")
        sys.exit(77)
    # The build tree may lie in a directory only root may enter (a fresh
    # clone under mktemp -d): nobody runs a copy of the CLI from one it may.
    cli_dir = tempfile.mkdtemp(prefix="lwother.")
    os.chmod(cli_dir, 0o755)
    cli = os.path.join(cli_dir, "leakwatch")
    shutil.copy(CLI, cli)
    os.chmod(cli, 0o755)
    try:
        with bare([fixture("attach_target"), "heartbeat"]) as p:
            p.read_line("READY")
            out = subprocess.run([cli, "threads", str(p.pid)], capture_output=True, text=True, timeout=30 * SLOW,
                                 cwd="/", preexec_fn=lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534)))
            check(out.returncode == 2, "exit %d: %s" % (out.returncode, out.stderr))
            check("not permitted" in out.stderr or "does not exist" in out.stderr or "ptrace_scope" in out.stderr,
                  out.stderr)
            alive_and_beating(p, "after another user's attempt")
    finally:
        shutil.rmtree(cli_dir, ignore_errors=True)


# ---- core files ----

def gcore(pid, tmp):
    """A core of pid, written by gdb's gcore (it attaches, dumps, detaches)."""
    prefix = os.path.join(tmp, "core")
    out = subprocess.run(["gcore", "-o", prefix, str(pid)], capture_output=True, text=True, timeout=120 * SLOW)
    path = "%s.%d" % (prefix, pid)
    check(out.returncode == 0 and os.path.exists(path), "gcore failed: %s%s" % (out.stdout[-1000:], out.stderr[-1000:]))
    return path


def judge_core(path):
    p = run_cli(["threads", "--core", path, "--since", "5", "--json", "--all"], "/nonexistent")
    check(p.returncode == 0, "threads --core: exit %d: %s" % (p.returncode, p.stderr))
    report = json.loads(p.stdout)
    check(report["source"] == "core", "source %r" % report.get("source"))
    return report


def by_tid(report):
    return {t["tid"]: (t["verdict"], (t.get("wait") or {}).get("kind")) for t in report["threads"]}


def same_as_live(p, what, tmp, live=None):
    live = live or attach(p.pid)
    path = gcore(p.pid, tmp)
    try:
        core = judge_core(path)
    finally:
        os.unlink(path)   # one core on disk at a time
    check(by_tid(core) == by_tid(live), "%s: the core says %r, the live attach %r" % (what, by_tid(core), by_tid(live)))
    return live


def skip_core_under_sanitizer():
    """An ASan process reserves terabytes of shadow memory: gcore would
    write it all (and fill the disk). Cores are judged in the plain pass."""
    if sanitized():
        print("SKIP: no gcore of a sanitized process (its shadow memory fills the disk)")
        sys.exit(77)


def mode_core_classic():
    skip_core_under_sanitizer()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="lwcore.")
    runs = {}
    try:
        for mech in list(MEMORY) + ["pipe"]:
            for pattern in PATTERNS:
                runs[(pattern, mech)] = bare([fixture("classic"), pattern, mech, "leak"])
        for p in runs.values():
            p.read_line("READY", timeout=20)
        time.sleep(0.5 * SLOW)
        for (pattern, mech), p in runs.items():
            live = same_as_live(p, "%s %s leak" % (pattern, mech), tmp)
            leaked = [t for t in live["threads"] if t["verdict"] == "leaked"]
            check(len(leaked) == (3 if mech in MEMORY and not sanitized() else 0), "%s %s: live %r"
                  % (pattern, mech, by_tid(live)))
    finally:
        for p in runs.values():
            p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def mode_core_verdicts():
    skip_core_under_sanitizer()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="lwcore.")
    runs = {m: bare([fixture("verdicts"), m]) for m in VERDICTS}
    try:
        for m, p in runs.items():
            r = p.read_line("READY", timeout=20)
            ids = {k: int(v) for k, v in r.items() if int(v) > 0}

            def proven():
                report = attach(p.pid)
                got = {k: (thread_by_tid(report, tid) or {}).get("verdict") for k, tid in ids.items()}
                check(all(got[k] == v for k, v in VERDICTS[m].items()), "%s: %r" % (m, got))
                return report
            same_as_live(p, m, tmp, until(proven, 10, m))
    finally:
        for p in runs.values():
            p.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    mode = sys.argv[1]
    if mode.startswith("classic-"):
        mode_classic(mode.split("-", 1)[1])
    else:
        globals()["mode_" + mode.replace("-", "_")]()


if __name__ == "__main__":
    run_test(main)
