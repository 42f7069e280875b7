#!/usr/bin/env python3
"""The CLI against replies and sockets made to hurt it (issue 15, items 3 to
6 and 8), with mock_server.py in place of the preload. The CLI trusts
nothing it reads; each mode once broke it:

  impostor      a socket named after a live process but served by another
                (its listener is not that process): the CLI asked it and
                printed its data; now it is not asked (exit 2, says why), and
                `status` does not list it
  escapes       control characters in the command, a thread name, a reason,
                a note, a counterpart's key, a module path, an error reply:
                printed raw by every text view, watch and the messages (an
                OSC 52 and a line erase reached the terminal); now escaped
                (JSON keeps them, as JSON escapes)
  fifo-module   a module path naming a FIFO: `threads` (text and --json) hung
                in open(); now it is skipped (module+offset)
  slow-symbols  2,000 modules, each a large debug file: symbolizing took
                over two minutes, far past LEAKWATCH_TIMEOUT_MS; now it stops
                by then (a note says so)
  hung-open     a module file whose open() never returns (a hung filesystem,
                simulated by hang_open.so preloaded into the CLI): the CLI
                hung for good; now its watchdog ends it at the deadline
  huge          a 4 MiB reply of {} items (1.09 GB to parse); a 23 MiB
                reply from a process of 1 thread (taken, up to 256 MiB):
                now refused, in little memory; the same from a process of
                200 threads is taken
  oom           a real reply too big for the memory the CLI is allowed
                (ulimit -v): it said "malformed reply: success"; now "out of
                memory"
  libc-ahead    the CLI reads its own libc while the process answers, for
                the reply's libc to take over: a reply naming that path with
                another build-id (a container's libc, a library replaced on
                disk) must not get its names (module+offset), and the same
                path with the right build-id, at any base, must
  output        output to /dev/full (exit 0, nothing said) and into a pipe
                closed early, as `| head` does (killed by SIGPIPE, 141): now
                exit 2 with a message, and a quiet end with the verb's own
                status

Usage: test_hostile.py MODE   (LEAKWATCH_CLI, CLI_TARGET, CLI_TARGET_SOURCE
                               as for test_cli.py; HANG_OPEN: hang_open.so)
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cli import CLI, check, expect_rc, process, realistic, run_modes, serve, target_info, thread  # noqa: E402

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
NASTY = "\x1b]52;c;cm9vdA==\x07\x1b[2K\x1b[1A\r\x9b31m"


def no_controls(text, what):
    bad = CONTROL.search(text)
    check(bad is None, "%s: a control character %r reached the output: %r"
          % (what, bad and bad.group(), text[max(0, bad.start() - 80):bad.start() + 80] if bad else ""))


# ---- impostor ----

def mode_impostor(env):
    victim = env.live_pid()
    impostor = env.mock({"*": process(victim, [thread(1, "leaked", "cond", 5.0)], command="HIJACKED")},
                        impostor_for=victim)
    for args in (["threads", victim], ["status", victim], ["threads", victim, "--json"]):
        p = env.cli(*args)
        expect_rc(p, 2, "%s of a process whose socket another process serves" % " ".join(map(str, args)))
        check("HIJACKED" not in p.stdout + p.stderr, "%s printed the impostor's data: %r" % (args, p.stdout))
        check("served by pid %d" % os.getpid() in p.stderr and "not by pid %d" % victim in p.stderr,
              "%s: the message does not say who served it: %r" % (args, p.stderr))
    check(not impostor.requests, "the impostor was sent a request: %r" % impostor.requests)
    p = env.cli("status", "--json")
    check(p.returncode in (0, 1, 2), "status: exit %d: %s" % (p.returncode, p.stderr))
    check(all(q["pid"] != victim for q in json.loads(p.stdout)["processes"]), "status lists the impostor's pid")
    real = serve(env, lambda pid: process(pid, [thread(1, "running")], command="the-real-one"))
    p = env.cli("status", real.pid, "--json")
    check(p.returncode == 0 and json.loads(p.stdout)["command"] == "the-real-one",
          "a process's own socket is still asked: %r %r" % (p.stdout, p.stderr))


# ---- escapes ----

def nasty_reply(pid, info):
    r = realistic(pid, info)
    r["command"] = "./app " + NASTY
    r["notes"] = ["a note " + NASTY]
    r["modules"].append({"path": "/opt/" + NASTY + "/libnasty.so", "base": "0x7e0000000000", "build_id": None})
    r["stacks"]["6"] = ["0x7e0000001234"]
    t = r["threads"][1]
    t["name"] = "w" + NASTY
    t["reason"] = "because " + NASTY
    t["counterpart"] = {NASTY: 1, "owner": 7}
    t["wait_stack"] = 6
    return r


def mode_escapes(env):
    info = target_info()
    m = serve(env, lambda pid: nasty_reply(pid, info))
    for args in (["threads", m.pid], ["threads", m.pid, "--all"], ["status", m.pid], ["status"],
                 ["watch", m.pid, "--count", "1"], ["metrics", m.pid], ["metrics"]):
        p = env.cli(*args)
        check(p.returncode in (0, 1), "%s: exit %d: %s" % (args, p.returncode, p.stderr))
        no_controls(p.stdout, " ".join(map(str, args)))
        no_controls(p.stderr, " ".join(map(str, args)) + " (stderr)")
    p = env.cli("threads", m.pid, "--all")
    check("\\x1b]52;c;" in p.stdout and "w\\x1b]52" in p.stdout, "the escaped name is not shown: %r" % p.stdout[:2000])
    p = env.cli("threads", m.pid, "--json")
    doc = json.loads(p.stdout)
    check(doc["command"] == "./app " + NASTY, "--json must keep the data as it is: %r" % doc["command"])
    bad = env.mock({"*": {"version": 1, "error": "nope " + NASTY}})
    p = env.cli("status", bad.pid)
    expect_rc(p, 2, "status with an error reply")
    no_controls(p.stderr, "an error reply's message")
    check("nope \\x1b]52" in p.stderr, "the error message: %r" % p.stderr)


# ---- module files ----

def mode_fifo_module(env):
    info = target_info()
    fifo = os.path.join(env.tmp, "libfifo.so")
    os.mkfifo(fifo)

    def reply(pid):
        r = realistic(pid, info)
        r["modules"].insert(0, {"path": fifo, "base": "0x7d0000000000", "build_id": None})
        r["stacks"]["1"] = ["0x7d0000001000"] + r["stacks"]["1"]
        return r
    m = serve(env, reply)
    for args in (["threads", m.pid], ["threads", m.pid, "--json"]):
        try:
            p = env.cli(*args, timeout=20)
        except subprocess.TimeoutExpired:
            check(False, "%s hung on a module path naming a FIFO" % args)
        expect_rc(p, 0, " ".join(map(str, args)))
        check("libfifo.so+0x1000" in p.stdout or '"offset":"0x1000"' in p.stdout,
              "%s: the FIFO's frame is not module+offset: %r" % (args, p.stdout[:1500]))


def libc_debug_file():
    out = subprocess.run(["readelf", "-n", "/lib/x86_64-linux-gnu/libc.so.6"], capture_output=True, text=True).stdout
    bid = re.search(r"Build ID: ([0-9a-f]+)", out).group(1)
    path = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
    check(os.path.exists(path), "%s is missing (libc6-dbg: scripts/setup installs it)" % path)
    return path


MODULES = 2000
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def mode_libc_ahead(env):
    debug = libc_debug_file()
    bid = os.path.basename(os.path.dirname(debug)) + os.path.basename(debug)[:-len(".debug")]
    nm = subprocess.run(["nm", debug], capture_output=True, text=True, check=True).stdout
    start = int(re.search(r"^([0-9a-f]+) t start_thread$", nm, re.M).group(1), 16)
    base = 0x7a0000000000

    def reply_with(build_id):
        def reply(pid):
            modules = [{"path": LIBC, "base": "0x%x" % base, "build_id": build_id}]
            stacks = {"1": ["0x%x" % (base + start + 0x10)]}
            return process(pid, [thread(100, "waiting", "sem", 3.0, 1, None)], stacks, modules)
        return reply
    # (the mock answers after 0.3 s, so the CLI reads its libc while it waits)
    for build_id, named in (("00" * 20, False), (bid, True)):
        m = serve(env, reply_with(build_id), delay=0.3)
        p = env.cli("threads", m.pid, "--json")
        expect_rc(p, 0, "threads, libc with build-id %s" % build_id)
        frame = json.loads(p.stdout)["threads"][0]["wait_stack"][0]
        if named:
            check(frame.get("function") == "start_thread" and frame.get("file"),
                  "libc of the right build-id at base 0x%x: %r" % (base, frame))
        else:
            check(frame.get("function") is None and frame.get("offset") == "0x%x" % (start + 0x10),
                  "a libc of another build-id was named from the CLI's own: %r" % frame)


def mode_slow_symbols(env):
    debug = libc_debug_file()

    def reply(pid):
        modules = [{"path": debug, "base": "0x%x" % ((i + 1) << 32), "build_id": None} for i in range(MODULES)]
        stacks = {str(i + 1): ["0x%x" % (((i + 1) << 32) + 0x27000 + i)] for i in range(MODULES)}
        threads = [thread(100 + i, "waiting", "sem", 3.0, i + 1, None) for i in range(MODULES)]
        return process(pid, threads, stacks, modules)
    m = serve(env, reply)
    start = time.monotonic()
    p = env.cli("threads", m.pid, "--json", env={"LEAKWATCH_TIMEOUT_MS": "4000"}, timeout=120)
    took = time.monotonic() - start
    expect_rc(p, 0, "threads with %d modules to symbolize" % MODULES)
    check(took < 4.0 + 2.0, "symbolizing took %.1fs with LEAKWATCH_TIMEOUT_MS=4000" % took)
    doc = json.loads(p.stdout)
    check(any("symbolization stopped" in n for n in doc["notes"]), "no note says so: %r" % doc["notes"])
    named = sum(1 for t in doc["threads"] if t["wait_stack"] and t["wait_stack"][0].get("function"))
    check(0 < named < MODULES, "%d of %d frames named: the cut should come in between" % (named, MODULES))
    print("%d of %d modules' frames named in %.2fs" % (named, MODULES, took))


def mode_hung_open(env):
    info = target_info()
    shim = os.environ.get("HANG_OPEN", "")
    check(os.path.exists(shim), "HANG_OPEN=%r is not built" % shim)

    def reply(pid):
        r = realistic(pid, info)
        r["modules"].insert(0, {"path": os.path.join(env.tmp, "HANG", "libhung.so"), "base": "0x7d0000000000",
                                "build_id": None})
        r["stacks"]["1"] = ["0x7d0000001000"] + r["stacks"]["1"]
        return r
    m = serve(env, reply)
    start = time.monotonic()
    try:
        prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX")   # the ASan runtime comes first in a sanitizer pass
        preload = prefix + ":" + shim if prefix else shim
        p = env.cli("threads", m.pid, env={"LEAKWATCH_TIMEOUT_MS": "1000", "LD_PRELOAD": preload}, timeout=30)
    except subprocess.TimeoutExpired:
        check(False, "the CLI hung on a module file whose open() never returns")
    took = time.monotonic() - start
    expect_rc(p, 2, "threads with a module file that never opens")
    check(p.stderr == "leakwatch: pid %d: timed out after 1000 ms (asking, reading or symbolizing)\n" % m.pid,
          "message: %r" % p.stderr)
    check(took < 1.0 + 0.5 + 1.5, "it took %.1fs to give up" % took)   # deadline, watchdog grace, start-up


# ---- reply size and memory ----

SANITIZED = bool(os.environ.get("LEAKWATCH_PRELOAD_PREFIX"))   # the CLI built with ASan: no ulimit -v


def run_limited(env, args, limit_kib):
    """The CLI run with its address space limited (ulimit -v, not under
    ASan, whose shadow memory needs terabytes of it)."""
    e = dict(os.environ, LEAKWATCH_DIR=env.dir)
    e.pop("LD_PRELOAD", None)
    argv = [CLI] + [str(a) for a in args]
    if not SANITIZED:
        argv = ["sh", "-c", 'ulimit -v %d && exec "$@"' % limit_kib, "sh"] + argv
    return subprocess.run(argv, capture_output=True, text=True, env=e, timeout=60)


def mode_huge(env):
    # 4 MiB of {} took 1.09 GB to parse: refused first, in 256 MiB of address space.
    empties = b'{"version":1,"pid":0,"threads":[' + b",".join([b"{}"] * (2 << 20)) + b"]}"
    m = env.mock({"*": empties})
    p = run_limited(env, ["threads", m.pid, "--json"], 256 << 10)
    check(p.returncode == 2 and "to parse" in p.stderr, "a 4 MiB reply of {}: exit %d, %r" % (p.returncode, p.stderr))

    padding = "x" * (23 << 20)
    for threads, wanted in ((0, 2), (200, 0)):
        m = serve_padded(env, padding, threads)
        p = env.cli("status", m.pid)
        check(p.returncode == wanted, "a 23 MiB reply from a process of %d threads: exit %d (wanted %d), %r"
              % (threads + 1, p.returncode, wanted, p.stderr))
        if wanted:
            check("larger than what a process of its thread count can send" in p.stderr, "message: %r" % p.stderr)
        m.close()
        env.mocks.remove(m)


def serve_padded(env, padding, threads):
    holder = {}

    def reply(_):
        return holder["reply"]
    m = env.mock({"*": reply}, threads=threads)
    r = process(m.pid, [thread(1, "running")])
    r["padding"] = padding
    holder["reply"] = json.dumps(r).encode()
    return m


def mode_oom(env):
    if SANITIZED:
        print("SKIP: ulimit -v and AddressSanitizer cannot share a process")
        sys.exit(77)

    def big(pid):
        return json.dumps(process(pid, [thread(1000 + i, "waiting", "sem", 1.0) for i in range(12000)])).encode()
    m = serve(env, big)
    for limit_mib in (40, 60, 80, 100):   # out of memory wherever it happens: parsing, explaining, rendering
        p = run_limited(env, ["threads", m.pid, "--json"], limit_mib << 10)
        check(p.returncode == 2 and p.stderr == "leakwatch: out of memory\n" or p.returncode == 0,
              "under ulimit -v %d MiB: exit %d, stderr %r" % (limit_mib, p.returncode, p.stderr[-500:]))
    p = run_limited(env, ["threads", m.pid, "--json"], 40 << 10)
    check(p.returncode == 2, "a 5 MiB reply parsed in 40 MiB of address space?")


# ---- output errors ----

def run_into(env, args, stdout):
    e = dict(os.environ, LEAKWATCH_DIR=env.dir)
    e.pop("LD_PRELOAD", None)
    return subprocess.run([CLI] + [str(a) for a in args], stdout=stdout, stderr=subprocess.PIPE, text=True, env=e,
                          timeout=60)


def read_one_line_and_close(env, args):
    """As `CLI ARGS | head -1`: (exit status, stderr)."""
    e = dict(os.environ, LEAKWATCH_DIR=env.dir)
    e.pop("LD_PRELOAD", None)
    p = subprocess.Popen([CLI] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode(errors="replace")
    return p.wait(timeout=60), err


def mode_output(env):
    info = target_info()

    def many(pid):
        r = realistic(pid, info)
        r["threads"] += [thread(1000 + i, "waiting", "sem", 1.0, 1, 2) for i in range(3000)]
        return r
    m = serve(env, many)
    with open("/dev/full", "w") as full:
        for args in (["threads", m.pid, "--json"], ["threads", m.pid, "--all"], ["status", m.pid],
                     ["status", m.pid, "--json"], ["status"], ["metrics", m.pid], ["help"], ["threads", "--help"],
                     ["watch", m.pid, "--count", "2", "--interval", "0.1"]):
            p = run_into(env, args, full)
            # (`status` also asks other tests' processes, which may fail on their own: the last line is ours)
            check(p.returncode == 2 and p.stderr.splitlines()[-1:] and
                  re.match(r"leakwatch( watch)?: cannot write the output: ", p.stderr.splitlines()[-1]),
                  "%s > /dev/full: exit %d, stderr %r" % (args, p.returncode, p.stderr))
    for args, rc in ((["threads", m.pid, "--all"], 0), (["threads", m.pid, "--json"], 0), (["status", m.pid], 1),
                     (["metrics", m.pid], 0), (["watch", m.pid, "--interval", "0.1"], 0)):
        got, err = read_one_line_and_close(env, args)
        check(got == rc and err == "", "%s | head -1: exit %d (wanted %d), stderr %r" % (args, got, rc, err))


MODES = {"impostor": mode_impostor, "escapes": mode_escapes, "fifo-module": mode_fifo_module,
         "slow-symbols": mode_slow_symbols, "hung-open": mode_hung_open, "huge": mode_huge, "oom": mode_oom,
         "output": mode_output, "libc-ahead": mode_libc_ahead}

if __name__ == "__main__":
    sys.exit(run_modes(MODES, "test_hostile.py"))
