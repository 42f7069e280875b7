#!/usr/bin/env python3
"""Hostile processes queried while they misbehave (fixtures/hostile.c).
argv[1]:

  storm    4 threads fork 90 children each, of 3 kinds (exec /bin/true; hooked calls
           then exit(3); hooked calls then _exit(4)) while clients keep asking
           the parent (`threads PID --json`, `status PID --json`; not `status`
           of every process: that also asks other tests' processes, found
           through /proc/net/unix): every child exits as
           expected, no query fails or hangs, every answer is whole JSON, no
           socket of a dead child is left in the directory, and afterwards the
           parent answers with only its main thread left, each forking thread
           counted created and exited.
  dlopen   a shared object whose threads park in its own functions is
           dlopened, run and dlclosed in a loop, at two places in turn (the
           fixture reserves its old place every other round), while clients
           ask for the thread dump, as JSON and as symbolized text: no query
           fails or hangs; a frame naming one of the module's functions is
           in the module, and a frame in the module names one of its
           functions or none; the module's live threads unwind through their
           module frames to libc's thread start (workers) or dlopen_loop
           (the caller); the creation frames of threads made by an earlier load
           name the module's function or are unknown (their place now holds
           no object), never anything else; both were seen; afterwards only
           the main thread is left.
  exit-normal, exit-thread, exit-_exit
           a process with 300 parked threads ends (main returns; exit() from
           another thread; _exit() from another thread) while queries are in
           flight: each CLI query ends well within its timeout with either a
           whole reply (exit 0) or exit 2 and a message (the process could
           not be asked), each raw request gets a whole JSON reply or nothing,
           the process's exit status is its own, and its socket is removed.
  signals  a process with a SIGUSR1 handler without SA_RESTART is sent
           SIGUSR1 (process-directed: any thread, the preload's server too,
           may take it) every millisecond while clients ask it questions:
           every query is answered whole, the handler ran, and the process
           still answers afterwards."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from lwtest import SLOW, Process, check, fixture, ping, request, run_test, until

QUERY_TIMEOUT_MS = 5000


class Hammer:
    """Clients asking in a loop, in threads of ours, until stopped; every
    result kept as (argv, exit status, stdout, stderr, seconds)."""

    def __init__(self, proc, commands, clients=2):
        self.proc, self.commands, self.results, self.stopping = proc, commands, [], False
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(clients)]
        for t in self.threads:
            t.start()

    def _loop(self, i):
        n = i
        while not self.stopping:
            args = self.commands[n % len(self.commands)]
            n += 1
            start = time.time()
            try:
                r = self.proc.cli(*args, env={"LEAKWATCH_TIMEOUT_MS": str(QUERY_TIMEOUT_MS)})
                self.results.append((args, r.returncode, r.stdout, r.stderr, time.time() - start))
            except subprocess.TimeoutExpired:
                self.results.append((args, "hung", "", "", time.time() - start))

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(timeout=120 * SLOW)
        check(not any(t.is_alive() for t in self.threads), "a client is still running")
        return self.results


def whole_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


MODULE = "libhostile_mod.so"
MODULE_FUNCTIONS = {"module_reads", "module_waits_on_condvar", "module_worker", "hostile_mod_run"}


def module_of(frame):
    return os.path.basename(frame.get("module") or "") or None


def stacks_of(report):
    """(what, frames) for every stack of a CLI report (the CLI expands them
    in place)."""
    for t in report.get("threads") or []:
        for key in ("wait_stack", "create_stack"):
            yield "tid %s %s" % (t.get("tid"), key), t.get(key) or []
        channel = (t.get("wait") or {}).get("channel") or {}
        yield "tid %s channel" % t.get("tid"), channel.get("create_stack") or []
    for x in report.get("exited_threads") or []:
        yield "exited tid %s create_stack" % x.get("tid"), x.get("create_stack") or []


def check_module_frames(report, seen):
    """Frames of the dlopened module are attributed to it or unknown, never
    to anything else; counts what was seen in `seen`."""
    for what, frames in stacks_of(report):
        names = [(f.get("function"), module_of(f)) for f in frames]
        for fn, mod in names:
            check(fn not in MODULE_FUNCTIONS or mod == MODULE, "%s: %s attributed to %s: %r" % (what, fn, mod, names))
            check(mod != MODULE or fn is None or fn in MODULE_FUNCTIONS, "%s: %s in the module: %r" % (what, fn, names))
            check(mod is not None or fn is None, "%s: %s named outside every module: %r" % (what, fn, names))
        inside = [i for i, (fn, mod) in enumerate(names) if mod == MODULE]
        if not inside:
            continue
        if "exited" in what:
            continue
        # A live stack through the module: its module frames, then the caller.
        last = inside[-1]
        check(inside == list(range(inside[0], last + 1)) and last + 1 < len(names),
              "%s: the module's frames are not followed by their caller: %r" % (what, names))
        fn = names[last][0]
        after = names[last + 1]
        if fn == "module_worker":   # started by libc's start_thread (through the preload's trampoline)
            check(after[1] in ("libc.so.6", "libleakwatch.so") and names[-1][1] == "libc.so.6",
                  "%s: module_worker called from %r: %r" % (what, after, names))
            seen["worker"] += "wait_stack" in what
        elif fn == "hostile_mod_run":
            check(after == ("dlopen_loop", "hostile"), "%s: hostile_mod_run called from %r: %r" % (what, after, names))
        else:
            check(False, "%s: the module's last frame is %r: %r" % (what, fn, names))
    for x in report.get("exited_threads") or []:
        frames = x.get("create_stack") or []
        names = [(f.get("function"), module_of(f)) for f in frames]
        if ("dlopen_loop", "hostile") not in names[1:]:
            continue
        # made by hostile_mod_run of some load (under a sanitizer, through
        # its pthread_create interceptor)
        made = names[names.index(("dlopen_loop", "hostile")) - 1]
        check(made in (("hostile_mod_run", MODULE), (None, None)),
              "exited tid %s was made at %r: %r" % (x.get("tid"), made, names))
        seen["made_here" if made[1] else "made_elsewhere"] += 1


TEXT_FRAME = re.compile(r"^ {6}(\S+)(?: at \S+)?(?: \((?:([^()+]+)\+0x[0-9a-f]+|(0x[0-9a-f]+))\))?$")


def check_module_text(text):
    for line in text.splitlines():
        m = TEXT_FRAME.match(line)
        if not m:
            continue
        fn, mod, pc = m.groups()
        check(fn not in MODULE_FUNCTIONS or mod == MODULE, "text: %s attributed to %s: %r" % (fn, mod, line))
        check(mod != MODULE or fn in MODULE_FUNCTIONS or fn == "??", "text: %s in the module: %r" % (fn, line))
        check(not pc or fn == "??", "text: %s named outside every module: %r" % (fn, line))


def storm():
    with Process([fixture("hostile"), "storm", "4", "90"]) as p:
        p.read_line("STARTED")
        p.wait_socket()   # the server starts with the first thread: asking sooner is "not listening"
        pid = str(p.pid)
        h = Hammer(p, [("threads", pid, "--json"), ("status", pid, "--json")])
        done = p.read_line("STORM", timeout=120)
        results = h.stop()
        check(done["wrong"] == "0" and done["children"] == "360", "children: %r (stderr %r)" % (done, p.stderr_so_far()))
        for args, rc, out, err, secs in results:
            check(rc == 0 and whole_json(out), "leakwatch %s: exit %r after %.1fs: %s %s" % (" ".join(args), rc, secs, out[:300], err))
        check(len(results) >= 4, "only %d queries during the storm" % len(results))

        def only_parent_socket():
            left = sorted(os.listdir(p.dir))
            check(left == ["leakwatch.%d.sock" % p.pid], "left in the directory: %r" % left)
            return True
        until(only_parent_socket, 5, "the dead children's sockets to be gone")
        ping(p.socket_path())
        r = p.threads()
        check(r["summary"]["threads"] == len(r["threads"]) == 1, "threads left: %r" % [(t["tid"], t["name"]) for t in r["threads"]])
        check(r["created"] == 4 and r["exited"] == 4, "created %r exited %r, wanted the 4 forking threads" % (r["created"], r["exited"]))
        print("%d children, %d queries during the storm" % (int(done["children"]), len(results)))


def dlopen():
    with Process([fixture("hostile"), "dlopen", "300", fixture("libhostile_mod.so")]) as p:
        p.read_line("STARTED")
        p.wait_socket()   # the server starts with the first thread
        pid = str(p.pid)
        h = Hammer(p, [("threads", pid, "--json"), ("threads", pid, "--all"), ("threads", pid)])
        done = p.read_line("DLOPEN", timeout=120)
        results = h.stop()
        check(done["joined"] == str(3 * int(done["rounds"])), "module threads joined: %r" % done)
        check(int(done["places"]) >= 2, "the module was always loaded at one place: %r" % done)
        seen = {"worker": 0, "made_here": 0, "made_elsewhere": 0}
        for args, rc, out, err, secs in results:
            check(rc == 0, "leakwatch %s: exit %r after %.1fs: %s %s" % (" ".join(args), rc, secs, out[-300:], err))
            if "--json" in args:
                rep = whole_json(out)
                check(rep is not None, "leakwatch %s printed no JSON: %r" % (" ".join(args), out[:300]))
                check_module_frames(rep, seen)
            else:
                check_module_text(out)
        check(len(results) >= 4, "only %d queries during the loop" % len(results))
        check(seen["worker"] and seen["made_here"] and seen["made_elsewhere"],
              "never seen: a module worker's wait stack, or threads made by the module at its place and at the "
              "other: %r" % seen)
        r = p.threads()
        check_module_frames(r, seen)
        check(r["summary"]["threads"] == len(r["threads"]) == 1, "threads left: %r" % [(t["tid"], t["name"]) for t in r["threads"]])
        check(r["created"] == r["exited"] == 3 * int(done["rounds"]), "created %r exited %r" % (r["created"], r["exited"]))
        ping(p.socket_path())
        print("%d queries; module workers' stacks seen %d times; threads made at the module's place %d, "
              "elsewhere %d" % (len(results), seen["worker"], seen["made_here"], seen["made_elsewhere"]))


def raw_requests(path, stop, out):
    """Raw `threads` requests until stop is set: each a whole JSON reply,
    nothing (closed or refused), or a timeout (recorded as "hung")."""
    while not stop.is_set():
        start = time.time()
        try:
            data = request(path, b"threads\n", timeout=QUERY_TIMEOUT_MS / 1000.0)
            out.append(("whole" if whole_json(data) else ("empty" if not data else "partial:%d" % len(data)), time.time() - start))
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
            out.append(("refused", time.time() - start))
        except socket.timeout:
            out.append(("hung", time.time() - start))


def exit_mid_query(how):
    want_status = {"normal": 0, "thread": 5, "_exit": 6}[how]
    with Process([fixture("hostile"), "exit", how, "300"], stdin=True) as p:
        p.read_line("READY")
        path = p.wait_socket()
        pid = str(p.pid)
        until(lambda: p.status()["summary"]["threads"] == 301, 10, "the 300 parked threads")
        h = Hammer(p, [("threads", pid, "--json"), ("status", pid, "--json"), ("threads", pid)], clients=3)
        stop, raw = threading.Event(), []
        rt = threading.Thread(target=raw_requests, args=(path, stop, raw), daemon=True)
        rt.start()
        until(lambda: len(h.results) >= 3 and len(raw) >= 1, 30, "queries answered before the exit")
        answered_before = len(h.results)
        p.send("go\n")
        status = p.proc.wait(timeout=30 * SLOW)
        time.sleep(0.5)   # let the clients meet the dead process too (not an assertion)
        stop.set()
        results = h.stop()
        rt.join(timeout=30 * SLOW)
        check(status == want_status, "exit status %r, wanted %d" % (status, want_status))
        limit = QUERY_TIMEOUT_MS / 1000.0 + 5
        for args, rc, out, err, secs in results:
            check(rc != "hung" and secs < limit, "leakwatch %s took %.1fs (timeout %d ms)" % (" ".join(args), secs, QUERY_TIMEOUT_MS))
            if rc == 0:
                check("--json" not in args or whole_json(out), "leakwatch %s: exit 0 with a cut reply: %r" % (" ".join(args), out[-200:]))
            else:
                check(rc == 2 and err.strip(), "leakwatch %s: exit %r (wanted 0, or 2 with a message): %r %r" % (" ".join(args), rc, out[-200:], err))
        failed_after = sum(rc == 2 for _, rc, _, _, _ in results[answered_before:])
        check(failed_after >= 1, "no query met the dead process")
        for kind, secs in raw:
            check(kind in ("whole", "empty", "refused") and secs < limit, "raw request: %s after %.1fs" % (kind, secs))
        until(lambda: not os.path.exists(path), 5, "the socket to be removed")
        print("%d CLI queries (%d failed cleanly), %d raw: %s" % (len(results), sum(r[1] == 2 for r in results), len(raw),
              {k: sum(1 for x in raw if x[0] == k) for k in set(x[0] for x in raw)}))


def signals():
    with Process([fixture("hostile"), "signals", "50"], stdin=True) as p:
        p.read_line("READY")
        p.wait_socket()
        until(lambda: p.status()["summary"]["threads"] == 51, 10, "the 50 parked threads")
        stop = threading.Event()

        def signal_loop():
            while not stop.is_set():
                os.kill(p.pid, signal.SIGUSR1)
                time.sleep(0.001)
        sender = threading.Thread(target=signal_loop, daemon=True)
        sender.start()
        h = Hammer(p, [("threads", str(p.pid), "--json"), ("status", str(p.pid), "--json"), ("threads", str(p.pid))])
        until(lambda: len(h.results) >= 30, 60, "30 queries under signals")
        results = h.stop()
        stop.set()
        sender.join()
        for args, rc, out, err, secs in results:
            check(rc == 0 and ("--json" not in args or whole_json(out)),
                  "leakwatch %s under signals: exit %r after %.1fs: %s %s" % (" ".join(args), rc, secs, out[-300:], err))
        p.send("count\n")
        n = int(p.read_line("HANDLED")["n"])
        check(n > 0, "the handler never ran")
        ping(p.socket_path())
        check(p.alive(), "the process died")
        print("%d queries answered, %d signals handled" % (len(results), n))


if __name__ == "__main__":
    mode = sys.argv[1]
    tests = {"storm": storm, "dlopen": dlopen, "signals": signals}
    run_test(tests[mode] if mode in tests else lambda: exit_mid_query(mode[len("exit-"):]))
