#!/usr/bin/env python3
"""Tests of the leakwatch CLI alone, against mock_server.py instead of the
preload: discovery, status, threads (JSON contract, symbolization into the
real target binary, aggregation), errors, malformed replies, colour.

Usage: test_cli.py MODE      (LEAKWATCH_CLI: the CLI; CLI_TARGET: the target
                              binary; CLI_TARGET_SOURCE: its source file)
Each mode prints "ok" or a diagnostic and exits non-zero. A mock server names
its socket after a live process it does not run (a `sleep` child), since the
CLI checks that the pid exists. Other processes under leakwatch on this
machine may show up in `status`, so only our own pids are asserted on; the
exit code of `status` is 1 with our leaking process listed, or 2 when some
other process could not be asked (the CLI says which on stderr, never ours).
"""
import ctypes.util
import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_server import MockServer  # noqa: E402

CLI = os.environ.get("LEAKWATCH_CLI", "")
TARGET = os.environ.get("CLI_TARGET", "")
TARGET_SOURCE = os.environ.get("CLI_TARGET_SOURCE", "")
BASE = 0x555555554000
GONE_BASE = 0x7f0000000000
MISMATCH_BASE = 0x600000000000


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


class Env:
    """A private socket directory, helper processes, and the CLI runner."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="lwcli-")
        self.dir = os.path.join(self.tmp, "lw")
        os.mkdir(self.dir, 0o700)
        self.children, self.mocks = [], []

    def live_pid(self, env=None):
        p = subprocess.Popen(["sleep", "600"], env=env)
        self.children.append(p)
        return p.pid

    def mock(self, replies, delay=0.0, directory=None, env=None, threads=0, impostor_for=None):
        """A mock server whose socket is named after its own listener
        process (whose pid is m.pid), or, with impostor_for, a socket in that
        pid's name served by this process."""
        m = MockServer(directory or self.dir, replies, delay, env=env, threads=threads, impostor_for=impostor_for)
        self.mocks.append(m)
        return m

    def cli(self, *args, env=None, timeout=60):
        e = dict(os.environ, LEAKWATCH_DIR=self.dir)
        e.pop("NO_COLOR", None)
        e.pop("LD_PRELOAD", None)
        e.update(env or {})
        start = time.monotonic()
        p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True, env=e,
                           timeout=timeout, errors="replace")
        p.elapsed = time.monotonic() - start
        check(p.returncode >= 0, "leakwatch %s was killed by signal %d\nstderr: %s"
              % (" ".join(map(str, args)), -p.returncode, p.stderr))
        return p

    def close(self):
        for m in self.mocks:
            m.close()
        for p in self.children:
            p.kill()
            p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def expect_rc(p, rc, what):
    check(p.returncode == rc, "%s: exit %d (wanted %d)\nstdout: %s\nstderr: %s"
          % (what, p.returncode, rc, p.stdout[-3000:], p.stderr[-3000:]))


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ---- canned replies ----

def target_info():
    out = subprocess.run([TARGET], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def marked_lines():
    lines = {}
    with open(TARGET_SOURCE) as f:
        for number, text in enumerate(f, 1):
            m = re.search(r"LINE:([\w-]+)", text)
            if m:
                lines[m.group(1)] = number
    return lines


def pcs(base, offsets):
    return ["0x%x" % (base + int(o, 16)) for o in offsets]


def summary(**counts):
    s = {"threads": 0, "running": 0, "waiting": 0, "suspect": 0, "leaked": 0, "deadlocked": 0, "parked": 0}
    s.update(counts)
    return s


def thread(tid, verdict, kind=None, seconds=0.0, wait_stack=None, create_stack=None, name="worker", **extra):
    wait = None
    if kind:
        wait = {"kind": kind, "object": "0x5555deadb000" if not kind.startswith("fd") else None,
                "fd": 7 if kind.startswith("fd") else None, "timeout": False, "remaining": None,
                "seconds": seconds, "owner": extra.pop("owner", None), "aux": None, "source": "hook",
                "syscall": None}
    t = {"tid": tid, "name": name, "main": False, "origin": "pthread_create", "parent": 100,
         "start_routine": extra.pop("start_routine", None), "age": seconds + 1, "verdict": verdict,
         "state": "parked" if kind else "running", "wait": wait,
         "reason": extra.pop("reason", "%s on %s" % (verdict, kind or "nothing")),
         "counterpart": extra.pop("counterpart", None), "wait_stack": wait_stack, "create_stack": create_stack}
    t.update(extra)
    return t


def process(pid, threads, stacks=None, modules=None, command="./app --serve", **extra):
    counts = {}
    for t in threads:
        counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
    parked = sum(1 for t in threads if t["wait"])
    p = {"version": 1, "pid": pid, "command": command, "exe": "/usr/bin/app", "uptime": 75.5,
         "settings": {"settle_ms": 1000, "stall_ms": 30000},
         "summary": summary(threads=len(threads), parked=parked, **counts),
         "created": 12, "exited": 3, "peak": 11, "modules": modules or [], "stacks": stacks or {},
         "threads": threads, "exited_threads": [], "notes": []}
    p.update(extra)
    return p


def status_of(reply):
    return {k: v for k, v in reply.items() if k not in ("threads", "stacks", "modules", "exited_threads")}


def realistic(pid, info):
    """Every verdict; stacks into the target binary, a missing library and a
    replaced file (build-id mismatch)."""
    modules = [{"path": info["path"], "base": "0x%x" % BASE, "build_id": info["build_id"]},
               {"path": "/nonexistent/libgone.so.1", "base": "0x%x" % GONE_BASE, "build_id": None},
               {"path": info["path"], "base": "0x%x" % MISMATCH_BASE, "build_id": "00" * 20}]
    stacks = {"1": pcs(BASE, info["wait"]), "2": pcs(BASE, info["create"]),
              "3": ["0x%x" % (GONE_BASE + 0x1234)] + pcs(BASE, info["wait"][1:]),
              "4": pcs(BASE, info["mangled"]), "5": ["0x%x" % (MISMATCH_BASE + 0x1200)]}
    routine = "0x%x" % (BASE + int(info["routine"], 16))
    threads = [thread(100, "running", name="app", main=True, origin="main", parent=None)]
    threads += [thread(101 + i, "leaked", "cond", 10.0 + i, 1, 2, start_routine=routine,
                       reason="waits on condition variable 0x5555deadb000 that no live thread can reach")
                for i in range(5)]
    threads += [thread(110, "waiting", "sem", 3.0, 4, 2, name="pump")]
    threads += [thread(120, "suspect", "fd-read", 95.0, 3, None, name="reader")]
    threads += [thread(130, "deadlocked", "mutex", 40.0, 5, 2, name="lock-a", owner=131,
                       counterpart={"cycle": [130, 131]}),
                thread(131, "deadlocked", "mutex", 41.0, 5, 2, name="lock-b", owner=130,
                       counterpart={"cycle": [130, 131]})]
    p = process(pid, threads, stacks, modules)
    p["exited_threads"] = [{"tid": 140, "name": "gone", "exited_ago": 3.2, "start_routine": routine,
                            "create_stack": 2}]
    return p


def serve(env, reply, delay=0.0, directory=None):
    """A mock whose status and threads replies come from reply(pid)."""
    holder, ready = {}, threading.Event()

    # The socket is visible before the reply is built (20,000 threads take a
    # while), and `status` in a concurrent test may ask now: it waits.
    def threads(_):
        ready.wait()
        return holder["reply"]

    def status(_):
        ready.wait()
        r = holder["reply"]
        return status_of(r) if isinstance(r, dict) and "error" not in r else r

    m = env.mock({"threads": threads, "status": status, "ping": {"version": 1, "ok": True}}, delay, directory)
    holder["reply"] = reply(m.pid) if callable(reply) else reply
    ready.set()
    return m


# ---- modes ----

def mode_usage(env):
    p = env.cli("help")
    expect_rc(p, 0, "help")
    for verb in ("status", "threads"):
        check(verb in p.stdout, "help does not mention %s: %r" % (verb, p.stdout))
        q = env.cli(verb, "--help")
        expect_rc(q, 0, verb + " --help")
        check("usage: leakwatch " + verb in q.stdout and "--json" in q.stdout,
              "%s --help: %r" % (verb, q.stdout))
    check("--all" in env.cli("threads", "--help").stdout, "threads --help lacks --all")
    p = env.cli("--version")
    expect_rc(p, 0, "--version")
    check(re.match(r"leakwatch \d+\.\d+", p.stdout), "--version printed %r" % p.stdout)
    for args in (["frobnicate"], ["threads"], ["threads", "abc"], ["threads", "12", "--bogus"],
                 ["status", "-5"], []):
        p = env.cli(*args)
        expect_rc(p, 2, "leakwatch " + " ".join(args))
        check(p.stderr.strip(), "leakwatch %s: no message on stderr" % " ".join(args))


def expect_status_rc(p, *ours):
    """`status` of every process, ours leaking among them: exit 1, or 2 when
    some other process (of this machine's other tests) could not be asked,
    which the CLI names on stderr; ours always answer."""
    failed = [line for line in p.stderr.splitlines() if line.startswith("leakwatch: pid ")]
    check(not [line for line in failed if int(line.split()[2].rstrip(":")) in [m.pid for m in ours]],
          "status: our processes did not answer: %r" % failed)
    expect_rc(p, 2 if failed else 1, "status with a leaking process (others not asked: %r)" % failed)


def mode_status(env):
    info = target_info()
    leaky = serve(env, lambda pid: realistic(pid, info))
    healthy = serve(env, lambda pid: process(pid, [thread(7, "running")], command="healthy-app"))
    p = env.cli("status")
    expect_status_rc(p, leaky, healthy)
    rows = {int(line.split()[0]): line for line in p.stdout.splitlines()[1:] if line.split()[:1] != []
            and line.split()[0].isdigit()}
    check(p.stdout.startswith("PID"), "status has no header: %r" % p.stdout)
    check(leaky.pid in rows and healthy.pid in rows, "status lacks our pids %d, %d: %r"
          % (leaky.pid, healthy.pid, p.stdout))
    fields = rows[leaky.pid].split()
    # PID THREADS PARKED RUNNING WAITING SUSPECT LEAKED DEADLOCKED COMMAND
    check(fields[1:8] == ["10", "9", "1", "1", "1", "5", "2"] and rows[leaky.pid].endswith("./app --serve"),
          "status row: %r" % rows[leaky.pid])
    check("\x1b" not in p.stdout, "escape codes in piped output")

    p = env.cli("status", "--json")
    expect_status_rc(p, leaky, healthy)
    doc = json.loads(p.stdout)
    check(doc.get("version") == 1 and isinstance(doc.get("processes"), list), "status --json: %r" % doc)
    mine = {q["pid"]: q for q in doc["processes"] if q["pid"] in (leaky.pid, healthy.pid)}
    check(len(mine) == 2, "status --json lacks our processes: %r" % doc)
    check(set(mine[leaky.pid]) == {"pid", "command", "summary", "growth", "suppressed"},
          "status --json keys: %r" % mine[leaky.pid])
    check(mine[leaky.pid]["suppressed"] == {} and mine[leaky.pid]["summary"]["suppressed"] == 0
          and mine[leaky.pid]["growth"] == {"alarm": False, "reason": "not enough history yet: 0 samples, 8 needed"},
          "status --json without suppressions or history: %r" % mine[leaky.pid])
    check(mine[leaky.pid]["summary"]["leaked"] == 5 and mine[healthy.pid]["command"] == "healthy-app",
          "status --json values: %r" % mine)

    p = env.cli("status", leaky.pid)
    expect_rc(p, 1, "status PID of a leaking process")
    for want in ("pid %d: ./app --serve" % leaky.pid, "uptime 1m15s", "peak 11", "12 created, 3 exited",
                 "5 leaked", "2 deadlocked", "(9 parked)"):
        check(want in p.stdout, "status PID lacks %r: %r" % (want, p.stdout))
    p = env.cli("status", healthy.pid, "--json")
    expect_rc(p, 0, "status PID --json of a healthy process")
    check(json.loads(p.stdout)["summary"]["running"] == 1, "status PID --json: %r" % p.stdout)
    check(leaky.requests and set(leaky.requests) <= {"status"}, "requests sent: %r" % leaky.requests)


def frame_functions(frames):
    return [f["function"] for f in frames]


def mode_threads_json(env):
    info = target_info()
    lines = marked_lines()
    m = serve(env, lambda pid: realistic(pid, info))
    p = env.cli("threads", m.pid, "--json")
    expect_rc(p, 0, "threads --json")
    doc = json.loads(p.stdout)
    for key in ("version", "pid", "command", "summary", "threads", "uptime", "created", "exited", "peak"):
        check(key in doc, "threads --json lacks %r" % key)
    check("modules" not in doc and "stacks" not in doc, "modules/stacks not dropped: %r" % list(doc))
    check(doc["pid"] == m.pid and len(doc["threads"]) == 10, "every thread, not groups: %d"
          % len(doc["threads"]))
    by_tid = {t["tid"]: t for t in doc["threads"]}
    for t in doc["threads"]:
        for key in ("tid", "name", "verdict", "state", "wait", "reason", "counterpart", "wait_stack",
                    "create_stack", "start_routine"):
            check(key in t, "thread %s lacks %r" % (t.get("tid"), key))
        check(isinstance(t["wait_stack"], list) and isinstance(t["create_stack"], list),
              "stacks are not arrays: %r" % t)
        for f in t["wait_stack"] + t["create_stack"]:
            check(set(f) == {"pc", "module", "offset", "function", "file", "line"}, "frame keys: %r" % f)

    w = by_tid[101]
    check(frame_functions(w["wait_stack"]) == ["cli_wait_for_result", "cli_worker", "main"],
          "wait stack functions: %r" % w["wait_stack"])
    check(frame_functions(w["create_stack"]) == ["cli_spawn", "main"], "create stack: %r" % w["create_stack"])
    f0 = w["wait_stack"][0]
    check(f0["module"] == info["path"] and f0["offset"] == info["wait"][0]
          and f0["pc"] == "0x%x" % (BASE + int(info["wait"][0], 16)), "frame 0: %r" % f0)
    want_lines = [lines["wait"], lines["worker"], lines["main-worker"]]
    got = [(f["file"], f["line"]) for f in w["wait_stack"]]
    check(all(f and f.endswith("target.c") for f, _ in got), "files: %r" % got)
    check([line for _, line in got] == want_lines, "lines %r, wanted %r" % (got, want_lines))
    check([f["line"] for f in w["create_stack"]] == [lines["spawn"], lines["main-spawn"]],
          "create lines: %r" % w["create_stack"])
    check(w["start_routine"] == {"pc": "0x%x" % (BASE + int(info["routine"], 16)), "function": "cli_worker"},
          "start_routine: %r" % w["start_routine"])
    check(w["wait"]["kind"] == "cond" and w["verdict"] == "leaked", "thread 101: %r" % w)

    gone = by_tid[120]["wait_stack"]
    check(gone[0]["module"] == "/nonexistent/libgone.so.1" and gone[0]["offset"] == "0x1234"
          and gone[0]["function"] is None and gone[0]["line"] is None, "missing module frame: %r" % gone[0])
    check(gone[1]["function"] == "cli_worker", "frame after a missing module: %r" % gone[1])
    mismatch = by_tid[130]["wait_stack"][0]
    check(mismatch["module"] == info["path"] and mismatch["offset"] == "0x1200" and mismatch["function"] is None,
          "a file with another build-id must not name functions: %r" % mismatch)
    pump = by_tid[110]["wait_stack"][0]["function"]
    demangled = ctypes.util.find_library("stdc++") is not None
    check(pump == ("lw::detail::pump()" if demangled else "_ZN2lw6detail4pumpEv"), "mangled name: %r" % pump)
    check(by_tid[100]["wait_stack"] == [] and by_tid[100]["start_routine"] is None, "running thread: %r"
          % by_tid[100])
    ex = doc.get("exited_threads") or []
    check(len(ex) == 1 and frame_functions(ex[0]["create_stack"]) == ["cli_spawn", "main"]
          and ex[0]["start_routine"]["function"] == "cli_worker", "exited_threads: %r" % ex)

    p = env.cli("threads", m.pid, "--json", "--all")
    expect_rc(p, 0, "threads --json --all")
    check(json.loads(p.stdout) == doc, "--all changes the JSON")


def mode_aggregate(env):
    info = target_info()
    m = serve(env, lambda pid: realistic(pid, info))
    p = env.cli("threads", m.pid)
    expect_rc(p, 0, "threads")
    out = p.stdout
    check("\x1b" not in out, "escape codes in piped output")
    heads = [line for line in out.splitlines() if re.match(r"\d+ threads? ", line)]
    verdicts = [h.split()[2].rstrip(",") for h in heads]
    check(verdicts == ["deadlocked", "leaked", "suspect", "waiting", "running"],
          "groups out of order: %r" % heads)
    check(heads[0].startswith("2 threads deadlocked, mutex"), "deadlocked group: %r" % heads[0])
    check(heads[1].startswith("5 threads leaked, cond, parked 10.0s to 14.0s"), "leaked group: %r" % heads[1])
    check(out.count("cli_wait_for_result") == 1, "the group's stack is not shown once:\n" + out)
    check(len(re.findall(r"tid 10[1-5]\b", out)) == 1, "grouped threads listed one by one:\n" + out)
    check(out.startswith("pid %d (./app --serve): 10 threads: " % m.pid), "header: %r" % out[:200])
    check("lw::detail::pump()" in out or "_ZN2lw6detail4pumpEv" in out, "mangled frame missing:\n" + out)
    check("libgone.so.1+0x1234" in out, "module+offset of a missing library:\n" + out)

    p = env.cli("threads", m.pid, "--all")
    expect_rc(p, 0, "threads --all")
    for tid in (100, 101, 102, 103, 104, 105, 110, 120, 130, 131):
        check(re.search(r"^tid %d " % tid, p.stdout, re.M), "--all lacks tid %d:\n%s" % (tid, p.stdout))
    for want in ("waits on: fd-read fd 7", "owner tid 131", "start routine: cli_worker", "reason: "):
        check(want in p.stdout, "--all lacks %r:\n%s" % (want, p.stdout))
    check(p.stdout.index("tid 130 ") < p.stdout.index("tid 101 ") < p.stdout.index("tid 100 "),
          "--all is not ordered stuck first")

    empty = serve(env, lambda pid: process(pid, []))
    p = env.cli("threads", empty.pid)
    expect_rc(p, 0, "threads of a process with 0 threads")
    check("no threads reported" in p.stdout, "0 threads: %r" % p.stdout)
    p = env.cli("threads", empty.pid, "--json")
    check(json.loads(p.stdout)["threads"] == [], "0 threads --json: %r" % p.stdout)


def mode_errors(env):
    gone = dead_pid()
    p = env.cli("threads", gone)
    expect_rc(p, 2, "threads of a dead pid")
    check("no such process" in p.stderr, "dead pid message: %r" % p.stderr)
    # Without a socket a process is judged from outside (attach, issue 17).
    plain = env.live_pid()
    p = env.cli("threads", plain, "--settle", "50")
    expect_rc(p, 0, "threads of a process without the preload")
    check(p.stdout.startswith("attached to pid %d from outside (no leakwatch socket)" % plain),
          "no-socket: %r" % p.stdout[:200])
    p = env.cli("status", plain, "--settle", "50")
    expect_rc(p, 0, "status of a process without the preload")

    m = env.mock({"*": {"version": 1, "error": "permission denied: uid 5 may not query process 7"}})
    for verb in ("threads", "status"):
        p = env.cli(verb, m.pid)
        expect_rc(p, 2, verb + " with an error reply")
        check(p.stderr.strip() == "leakwatch: pid %d: permission denied: uid 5 may not query process 7" % m.pid,
              "error reply message: %r" % p.stderr)

    # A slow server: answers after 3 s; the CLI gives up after 0.5 s. It is
    # closed at once, so that `status` elsewhere does not wait on it.
    slow = serve(env, lambda pid: process(pid, []), delay=3.0)
    p = env.cli("threads", slow.pid, env={"LEAKWATCH_TIMEOUT_MS": "500"})
    expect_rc(p, 2, "threads of a slow server")
    check(p.stderr.startswith("leakwatch: pid %d: timed out" % slow.pid) and p.elapsed < 2.5,
          "slow server: %.1fs, %r" % (p.elapsed, p.stderr))
    # status of every process: the slow one costs its own line on stderr,
    # never the list of the others (the watchdog must not end the command
    # while a socket wait can still time out by itself).
    healthy = serve(env, lambda pid: process(pid, [thread(1, "running")]))
    p = env.cli("status", "--json", env={"LEAKWATCH_TIMEOUT_MS": "500"})
    slow.close()
    env.mocks.remove(slow)
    expect_rc(p, 2, "status with a slow server among others")
    check("leakwatch: pid %d: timed out" % slow.pid in p.stderr, "status, slow server: %r" % p.stderr)
    try:
        listed = [q["pid"] for q in json.loads(p.stdout)["processes"]]
    except (ValueError, KeyError, TypeError):
        listed = None
    check(listed is not None and healthy.pid in listed and slow.pid not in listed,
          "status with a slow server does not list the others: %r / %r" % (p.stdout[:300], p.stderr))

    # Stale sockets: a dead pid's file, and a live pid's file nobody listens on.
    dead_path = os.path.join(env.dir, "leakwatch.%d.sock" % dead_pid())
    refused_pid = env.live_pid()
    refused_path = os.path.join(env.dir, "leakwatch.%d.sock" % refused_pid)
    for path in (dead_path, refused_path):
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
    p = env.cli("threads", refused_pid, "--settle", "50")
    expect_rc(p, 0, "threads of a pid whose socket refuses (judged from outside)")
    check(p.stdout.startswith("attached to pid %d" % refused_pid), "refused socket: %r" % p.stdout[:200])
    check(not os.path.exists(refused_path), "stale socket (ECONNREFUSED) left in place")
    env.cli("status")
    check(not os.path.exists(dead_path), "stale socket of a dead pid left in place")
    live = serve(env, lambda pid: process(pid, []))
    env.cli("status")
    check(os.path.exists(live.path), "status removed a live socket")


MALFORMED = [
    (b"", "empty"),
    (b"{not json", "garbage"),
    (b'{"version":1,"pid":1,"threads":[', "truncated"),
    (b"[1,2,3]", "an array"),
    (b'{"version":2,"pid":1}', "another version"),
    (b'{"pid":1}', "no version"),
    (b'{"version":1} {"version":1}', "two objects"),
    (b'{"version":1,"command":"a\x00b"}', "a NUL byte"),
    (b"\xff\xfe\xfd" * 100, "binary"),
    (b"[" * 200000, "deep nesting"),
    (b'{"version":1,"error":42}', "an error that is not a string"),
    (b"null\n", "null"),
]

ODD_BUT_VALID = [
    {"version": 1},
    {"version": 1, "pid": "x", "summary": [], "threads": "nope", "stacks": [], "modules": {}},
    {"version": 1, "threads": [1, None, "x", {"tid": "7", "wait": 3, "wait_stack": "1", "create_stack": -1,
                                              "verdict": 5, "start_routine": 12}], "stacks": {"1": 5}},
    {"version": 1, "history": {"interval_ms": "x", "threads": "y"}, "suppressed": 5},
    {"version": 1, "history": {"interval_ms": 0, "threads": [1, "a", None, 3.5, -4, 9, 9, 9, 9, 9]}},
    {"version": 1, "threads": [{"tid": 1, "verdict": "leaked", "wait": {"kind": None, "seconds": "x"},
                                "wait_stack": 1, "create_stack": 2}],
     "stacks": {"1": [1, None, "zz", "0x", "0xffffffffffffffffffff", "0x10"], "2": None},
     "modules": [{"path": "/etc/passwd", "base": "0x0"}, {"path": "/dev/null", "base": "0x1000"},
                 {"path": "/", "base": "0x2000"}, {"path": "rel/ative", "base": "0x3000"},
                 {"path": None, "base": 7}, {"path": "/proc/self/exe", "base": "zz"}, 5]},
]


def mode_malformed(env):
    for body, what in MALFORMED:
        m = env.mock({"*": body})
        for args in (["threads", m.pid], ["threads", m.pid, "--json"], ["status", m.pid]):
            p = env.cli(*args)
            expect_rc(p, 2, "%s with a reply that is %s" % (" ".join(map(str, args)), what))
            check(p.stderr.startswith("leakwatch: pid %d: " % m.pid) and "\n" == p.stderr[-1]
                  and p.stderr.count("\n") == 1, "%s: message %r" % (what, p.stderr))
            check(what not in ("an array", "null") or "not a JSON object" in p.stderr, "%s: %r" % (what, p.stderr))
    for body in ODD_BUT_VALID:
        m = env.mock({"*": body})
        for args in (["threads", m.pid], ["threads", m.pid, "--all"], ["threads", m.pid, "--json"],
                     ["status", m.pid], ["status", m.pid, "--json"], ["metrics", m.pid],
                     ["watch", m.pid, "--count", "2", "--interval", "0.1"], ["threads", m.pid, "--ignore", "*"],
                     ["status", m.pid, "--ignore", "x*", "--json"], ["metrics", m.pid, "--ignore", "*"]):
            p = env.cli(*args)
            check(p.returncode in (0, 1), "%s on %r: exit %d, %r" % (args, body, p.returncode, p.stderr))
        json.loads(env.cli("threads", m.pid, "--json").stdout)


def run_on_pty(env, args, extra_env):
    master, slave = pty.openpty()
    e = dict(os.environ, LEAKWATCH_DIR=env.dir)
    e.pop("NO_COLOR", None)
    e.update(extra_env)
    p = subprocess.Popen([CLI] + [str(a) for a in args], stdout=slave, stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(timeout=30)
    p.stderr.close()
    return p.returncode, out.decode(errors="replace")


def mode_color(env):
    info = target_info()
    m = serve(env, lambda pid: realistic(pid, info))
    for args in (["threads", m.pid], ["threads", m.pid, "--all"], ["status", m.pid]):
        rc, out = run_on_pty(env, args, {})
        check(rc in (0, 1) and "\x1b[" in out, "%s on a terminal: no colour: %r" % (args, out[:300]))
        rc, out = run_on_pty(env, args, {"NO_COLOR": "1"})
        check(rc in (0, 1) and "\x1b" not in out and "leaked" in out, "%s with NO_COLOR: %r" % (args, out[:300]))
        p = env.cli(*args)
        check("\x1b" not in p.stdout, "%s piped: escape codes" % args)
    rc, out = run_on_pty(env, ["threads", m.pid, "--json"], {})
    check("\x1b" not in out, "--json on a terminal has escape codes")


def mode_discovery(env):
    """A process whose socket is in a directory the CLI would not choose is
    found through /proc/net/unix (its bind-time .tmp name mapped)."""
    other = os.path.join(env.tmp, "elsewhere")
    os.mkdir(other, 0o700)
    m = serve(env, lambda pid: process(pid, [thread(1, "running")], command="elsewhere-app"), directory=other)
    p = env.cli("threads", m.pid, "--json")
    expect_rc(p, 0, "threads of a process with a socket elsewhere")
    check(json.loads(p.stdout)["command"] == "elsewhere-app", "wrong reply: %r" % p.stdout[:200])
    p = env.cli("status", "--json")
    check(any(q["pid"] == m.pid for q in json.loads(p.stdout)["processes"]),
          "status does not list a socket elsewhere: %r" % p.stdout)
    empty = os.path.join(env.tmp, "empty")
    os.mkdir(empty, 0o700)
    p = env.cli("status", env={"LEAKWATCH_DIR": empty})
    check(p.stdout.startswith("no processes under leakwatch") or p.stdout.startswith("PID"),
          "status: %r" % p.stdout)
    if p.stdout.startswith("no processes"):
        expect_rc(p, 0, "status with no processes")


def mode_large(env):
    info = target_info()

    def big(pid):
        r = realistic(pid, info)
        r["threads"] += [thread(1000 + i, "leaked", "cond", 5.0 + (i % 100) / 10, 1, 2) for i in range(20000)]
        r["summary"]["threads"] += 20000
        r["summary"]["leaked"] += 20000
        return r

    m = serve(env, big)
    p = env.cli("threads", m.pid)
    expect_rc(p, 0, "threads with 20010 threads")
    check("20005 threads leaked, cond, parked 5.0s to 14.9s" in p.stdout, "big group:\n" + p.stdout[:2000])
    check(p.elapsed < 20, "threads took %.1fs" % p.elapsed)
    p = env.cli("threads", m.pid, "--json")
    doc = json.loads(p.stdout)
    check(len(doc["threads"]) == 20010 and frame_functions(doc["threads"][-1]["wait_stack"])[0] ==
          "cli_wait_for_result", "big --json")


MODES = {"usage": mode_usage, "status": mode_status, "threads-json": mode_threads_json,
         "aggregate": mode_aggregate, "errors": mode_errors, "malformed": mode_malformed,
         "color": mode_color, "discovery": mode_discovery, "large": mode_large}


def run_modes(modes, script):
    """Run the mode named by argv[1] (one of modes) against a fresh Env; the
    exit status: 0 ok, 1 failed, 2 usage. Shared by this file and test_views.py."""
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print("usage: %s {%s}" % (script, ",".join(modes)))
        return 2
    if not CLI or not os.access(CLI, os.X_OK):
        print("FAIL: LEAKWATCH_CLI is not an executable: %r" % CLI)
        return 1
    env = Env()
    try:
        modes[sys.argv[1]](env)
    except Failure as e:
        print("FAIL (%s): %s" % (sys.argv[1], e))
        return 1
    except subprocess.TimeoutExpired as e:
        print("FAIL (%s): the CLI hung: %s" % (sys.argv[1], e))
        return 1
    finally:
        env.close()
    print("ok")
    return 0


def main():
    return run_modes(MODES, "test_cli.py")


if __name__ == "__main__":
    sys.exit(main())
