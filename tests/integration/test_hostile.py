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
           dlopened, run and dlclosed in a loop while clients ask for the
           thread dump, as JSON and as symbolized text: no query fails or
           hangs, every frame's function is a name or unknown (null), and
           afterwards only the main thread is left.
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


def check_frames(report):
    """Every frame of every stack names a function or says unknown (null)."""
    for sid, frames in (report.get("stacks") or {}).items():
        for f in frames if isinstance(frames, list) else frames.get("frames", []):
            if isinstance(f, dict):
                check(f.get("function") is None or isinstance(f["function"], str) and f["function"],
                      "stack %s: frame %r" % (sid, f))


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
        in_module = 0
        for args, rc, out, err, secs in results:
            check(rc == 0, "leakwatch %s: exit %r after %.1fs: %s %s" % (" ".join(args), rc, secs, out[-300:], err))
            if "--json" in args:
                rep = whole_json(out)
                check(rep is not None, "leakwatch %s printed no JSON: %r" % (" ".join(args), out[:300]))
                check_frames(rep)
                in_module += "module_" in out
            else:
                check("unknown" in out or "module_" in out or "hostile" in out, "text dump: %r" % out[:500])
        check(len(results) >= 4, "only %d queries during the loop" % len(results))
        r = p.threads()
        check(r["summary"]["threads"] == len(r["threads"]) == 1, "threads left: %r" % [(t["tid"], t["name"]) for t in r["threads"]])
        check(r["created"] == r["exited"] == 3 * int(done["rounds"]), "created %r exited %r" % (r["created"], r["exited"]))
        ping(p.socket_path())
        print("%d queries, %d saw a thread in the module" % (len(results), in_module))


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
