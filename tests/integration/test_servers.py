#!/usr/bin/env python3
"""Debian's memcached and redis-server, unmodified, under the preload and
under real traffic; argv[1] is the server.

Each server is run twice with its own private UNIX socket and options (no
daemonizing, no persistence): bare and under the preload (memcached's two at
once, redis's one after the other), and the same workload is run against
both:
  memcached  -t 4 (four worker threads); a Python client of ours with eight
             connections in parallel threads: sets of values of many sizes,
             single and multi-key gets, incr on a key of each connection and
             on one key they all share, deletes and gets of deleted keys
  redis      --io-threads N --io-threads-do-reads yes, N = the CPUs, 2 to 4
             (its I/O threads spin: more than CPUs makes it crawl, bare as
             well); redis-benchmark with 16 clients, pipelining 16 (for the
             same reason): SET, GET, INCR, LPUSH
The test asserts, under the preload:
  - after start-up has settled, and again when the traffic is over, and in
    every sample taken while it runs: `leakwatch threads --json` and
    `status PID --json` count zero leaked, zero deadlocked and zero suspect
    threads (the stall threshold is lowered to 2 s so that suspect could
    show), and the server's known threads are there, `waiting` (memcached's
    four mc-worker threads in epoll; redis's I/O threads on a mutex its
    main thread holds: rule 1 sees a live owner);
  - the server's own results: every get returns what was set (and a miss
    for what was deleted), the shared counter counts every incr, redis-
    benchmark exits 0 with no error, the keys it leaves hold what it wrote,
    redis counts no error reply, and its I/O threads did serve requests;
    and these results are the same as the bare run's;
  - SIGTERM ends the server with exit status 0, as it does bare.
A server that is not installed fails the test: scripts/setup installs both.

With "-attach" (memcached-attach, redis-attach) no server runs under the
preload: a bare one is judged from outside (`leakwatch threads PID`,
ptrace: issue 17) ATTACHES times in a row while the workload runs again and
again, and every run of the workload must give the answers of a bare
server nobody attached to (no lost request, no wrong answer); every report
judges nothing stuck, with the same threads; SIGTERM still ends it with 0.
"""
import concurrent.futures
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from lwtest import CLI, SLOW, Process, TestFailure, check, run_cli, run_test, until

STALL_MS = 2000
SETTLE_S = 1.0          # the preload's default settle time
BAD_VERDICTS = ("leaked", "deadlocked", "suspect")


def require(path):
    check(os.access(path, os.X_OK), "%s is not installed: run scripts/setup (it installs memcached, redis-server "
          "and redis-tools)" % path)
    return path


def connect(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    s.connect(path)
    return s


def wait_listening(p, path):
    def ready():
        check(p.alive(), "the server exited: %r" % p.stderr_so_far()[-2000:])
        try:
            connect(path, 1.0).close()
            return True
        except OSError:
            return False
    until(ready, 15, "the server listening on %s" % path)


def stop(p):
    """SIGTERM, and the exit status."""
    p.proc.send_signal(signal.SIGTERM)
    try:
        return p.proc.wait(timeout=15 * SLOW)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server did not exit within %ds of SIGTERM" % (15 * SLOW))


# ---- verdicts ----

def bad_threads(report):
    return ["%s %s %s: %s" % (t["tid"], t["name"], t["verdict"], t["reason"]) for t in report["threads"]
            if t["verdict"] in BAD_VERDICTS]


def check_healthy(p, when):
    """One look through `threads --json` and `status PID --json`: nothing stuck."""
    r = p.threads()
    bad = bad_threads(r)
    check(not bad, "%s: %s judged stuck: %r" % (when, os.path.basename(p.argv[0]), bad))
    s = p.status()["summary"]
    check(all(s[v] == 0 for v in BAD_VERDICTS), "%s: status summary %r" % (when, s))
    return r


def settled_and_healthy(p, when, named):
    """Until every thread of the given names is parked past the settle time
    (so a verdict could be given), checking that nothing is stuck meanwhile;
    the report."""
    def settled():
        r = check_healthy(p, when)
        for name, count in named.items():
            ts = [t for t in r["threads"] if t["name"] == name]
            check(len(ts) == count, "%s: %d %s threads, wanted %d" % (when, len(ts), name, count))
            check(all(t["verdict"] == "waiting" and t["wait"]["seconds"] >= SETTLE_S for t in ts),
                  "%s: %r" % (when, [(t["name"], t["verdict"], t["wait"]) for t in ts]))
        return r
    r = until(settled, 20, "%s: the server's threads parked past the settle time" % when)
    return check_healthy(p, when + " (once more)")   # and still so after one more scan


class Sampler:
    """Looks at the verdicts again and again while the traffic runs."""

    def __init__(self, p):
        self.p, self.samples, self.failure = p, 0, None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                check_healthy(self.p, "under traffic")
                self.samples += 1
            except Exception as e:   # noqa: BLE001 -- reported by finish()
                self.failure = e
                return
            time.sleep(0.2)

    def finish(self):
        self.stopping.set()
        self.thread.join(timeout=60 * SLOW)
        if self.failure:
            raise self.failure
        check(self.samples >= 1, "no verdict sample was taken while the traffic ran")


# ---- memcached ----

MC_CONNECTIONS = 8
MC_KEYS = 300
MC_ROUNDS = 3   # the whole sequence again on fresh keys: a few seconds of traffic


def mc_value(conn, i):
    """A value of its own for each key, 1 byte to ~20 KiB (all of them fit
    in the server's memory: no eviction)."""
    size = 1 + (i * 7919 + conn * 104729) % 20000
    seed = hashlib.sha256(b"%d:%d" % (conn, i)).digest()
    return (seed * (size // len(seed) + 1))[:size]


class Memcached:
    """The text protocol over one connection."""

    def __init__(self, path):
        self.sock = connect(path)
        self.file = self.sock.makefile("rb")

    def call(self, line, data=None):
        self.sock.sendall(line + b"\r\n" + (data + b"\r\n" if data is not None else b""))
        return self.file.readline().rstrip(b"\r\n")

    def get(self, *keys):
        self.sock.sendall(b"get " + b" ".join(keys) + b"\r\n")
        found = {}
        while True:
            line = self.file.readline().rstrip(b"\r\n")
            if line == b"END":
                return found
            words = line.split()
            check(len(words) == 4 and words[0] == b"VALUE", "get %r: %r" % (keys, line[:200]))
            data = self.file.read(int(words[3]) + 2)
            found[words[1]] = data[:-2]

    def close(self):
        self.file.close()
        self.sock.close()


def mc_connection_work(path, conn, out):
    """One connection's share of the workload; its results in out[conn]:
    a digest of every reply (in order, all deterministic) and the problems."""
    mc = Memcached(path)
    digest, problems = hashlib.sha256(), []

    def note(what, reply):
        digest.update(what + b"=" + repr(reply).encode() + b"\n")
        return reply

    for r in range(MC_ROUNDS):
        mc_round(mc, conn, r, note, problems)
    mine = b"lw:counter:%d" % conn
    note(b"set", mc.call(b"set %s 0 0 1" % mine, b"0"))
    for _ in range(100):
        note(b"incr", mc.call(b"incr %s 1" % mine))
        mc.call(b"incr lw:shared 1")   # the order between connections varies: not in the digest
    final = note(b"get", mc.get(mine)).get(mine)
    if final != b"100":
        problems.append("counter %r is %r after 100 incr" % (mine, final))
    mc.close()
    out[conn] = (digest.hexdigest(), problems)


def mc_round(mc, conn, r, note, problems):
    """Set MC_KEYS keys, get each, get them 25 at a time, delete every tenth
    and check it is gone."""
    keys = [b"lw:%d:%d:%d" % (conn, r, i) for i in range(MC_KEYS)]
    for i, k in enumerate(keys):
        v = mc_value(conn, r * MC_KEYS + i)
        if note(b"set", mc.call(b"set %s %d 0 %d" % (k, i, len(v)), v)) != b"STORED":
            problems.append("set %r failed" % k)
    for i, k in enumerate(keys):
        got = note(b"get", mc.get(k))
        if got.get(k) != mc_value(conn, r * MC_KEYS + i):
            problems.append("get %r returned %r bytes, not what was set" % (k, len(got.get(k) or b"")))
    for start in range(0, MC_KEYS, 25):
        group = keys[start:start + 25]
        got = note(b"multiget", mc.get(*group))
        wrong = [k for j, k in enumerate(group) if got.get(k) != mc_value(conn, r * MC_KEYS + start + j)]
        if wrong:
            problems.append("multi-get: %d of %d keys wrong" % (len(wrong), len(group)))
    for i in range(0, MC_KEYS, 10):
        if note(b"delete", mc.call(b"delete %s" % keys[i])) != b"DELETED":
            problems.append("delete %r failed" % keys[i])
        if note(b"get", mc.get(keys[i])):
            problems.append("a deleted key %r is still there" % keys[i])


def memcached_workload(path):
    mc = Memcached(path)
    check(mc.call(b"set lw:shared 0 0 1", b"0") == b"STORED", "set lw:shared")
    out = {}
    workers = [threading.Thread(target=mc_connection_work, args=(path, c, out)) for c in range(MC_CONNECTIONS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120 * SLOW)
    check(len(out) == MC_CONNECTIONS, "only %d of %d connections finished" % (len(out), MC_CONNECTIONS))
    shared = mc.get(b"lw:shared").get(b"lw:shared")
    mc.close()
    problems = [x for c in sorted(out) for x in out[c][1]]
    check(not problems, "memcached answered wrong: %r" % problems[:20])
    check(shared == b"%d" % (100 * MC_CONNECTIONS), "the shared counter is %r, wanted %d" % (shared, 100 * MC_CONNECTIONS))
    return {"replies": [out[c][0] for c in sorted(out)], "shared": shared.decode()}


def memcached_client(path):
    """The workload in a process of its own (this script with --client):
    the client's threads would otherwise hold this interpreter's lock while
    the sampler wants to look at the verdicts."""
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--client", path], capture_output=True,
                       text=True, timeout=180 * SLOW)
    check(p.returncode == 0, "the memcached client failed (exit %d): %s%s" % (p.returncode, p.stdout[-3000:],
                                                                             p.stderr[-3000:]))
    return json.loads(p.stdout)


def start_memcached(tmp, preload):
    path = os.path.join(tmp, "memcached.sock")
    argv = [require("/usr/bin/memcached"), "-s", path, "-a", "0700", "-t", "4", "-m", "256", "-c", "256",
            "-u", pwd.getpwuid(os.geteuid()).pw_name]
    p = Process(argv, preload=preload, env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    wait_listening(p, path)
    return p, path


def memcached_run(preload):
    """One server, bare or preloaded, through the workload; its answers."""
    tmp = private_tmp()
    p, path = start_memcached(tmp, preload)
    with p:
        if preload:
            p.wait_socket()
            settled_and_healthy(p, "memcached idle after start-up", {"mc-worker": 4})
            sampler = Sampler(p)
        answers = memcached_client(path)
        if preload:
            sampler.finish()
            settled_and_healthy(p, "memcached idle after the traffic", {"mc-worker": 4})
        rc = stop(p)
        check(rc == 0, "memcached %s exited %r after SIGTERM" % ("under the preload" if preload else "bare", rc))
    return answers


def memcached():
    # The bare server and the preloaded one at once (each has its own
    # socket and client process); the preloaded one is judged throughout.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = {preload: pool.submit(memcached_run, preload) for preload in (False, True)}
        runs = {preload: run.result() for preload, run in runs.items()}
    check(runs[True] == runs[False], "memcached's answers differ under the preload:\n bare %r\n preloaded %r"
          % (runs[False], runs[True]))


# ---- redis ----

REDIS_REQUESTS = 16 * 480   # a multiple of the pipeline: redis-benchmark sends whole batches
REDIS_TESTS = ("SET", "GET", "INCR", "LPUSH")
# redis's I/O threads (main counts as one) spin while they have work: more
# of them than CPUs only slows it down (bare as much), badly on a loaded
# 2-CPU machine; 4 where there are 4 CPUs, never fewer than 2.
REDIS_IO_THREADS = max(2, min(4, os.cpu_count() or 2))
IO_THREAD_NAMES = {"io_thd_%d" % i: 1 for i in range(1, REDIS_IO_THREADS)}


def resp(sock_file, sock, *args):
    """One command in RESP, its reply (bytes, int, list or an error string)."""
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return resp_reply(sock_file)


def resp_reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest
    if kind == b"-":
        return "error: " + rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        return [resp_reply(f) for _ in range(int(rest))]
    raise AssertionError("bad RESP reply %r" % line)


def redis_info(f, s):
    text = resp(f, s, b"INFO", b"all").decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def redis_workload(path):
    bench = subprocess.run([require("/usr/bin/redis-benchmark"), "-s", path, "-c", "16", "-P", "16",
                            "-n", str(REDIS_REQUESTS), "-t", ",".join(t.lower() for t in REDIS_TESTS), "--csv"],
                           capture_output=True, text=True, timeout=120 * SLOW)
    out = bench.stdout + bench.stderr
    check(bench.returncode == 0, "redis-benchmark exited %d: %s" % (bench.returncode, out[-2000:]))
    check("error" not in out.lower(), "redis-benchmark reported errors: %s" % out[-2000:])
    done = [line.split(",")[0].strip('"') for line in bench.stdout.splitlines()[1:] if line]
    check(tuple(done) == REDIS_TESTS, "redis-benchmark ran %r, wanted %r:\n%s" % (done, REDIS_TESTS, out[-2000:]))
    s = connect(path)
    f = s.makefile("rb")
    try:
        results = {
            "value_size": len(resp(f, s, b"GET", b"key:__rand_int__") or b""),   # random bytes, 3 of them
            "counter": resp(f, s, b"GET", b"counter:__rand_int__"),
            "llen": resp(f, s, b"LLEN", b"mylist"),
            "dbsize": resp(f, s, b"DBSIZE"),
        }
        info = redis_info(f, s)
    finally:
        f.close()
        s.close()
    check(results == {"value_size": 3, "counter": b"%d" % REDIS_REQUESTS, "llen": REDIS_REQUESTS, "dbsize": 3},
          "the keys redis-benchmark wrote hold %r" % results)
    results["error_replies"] = info.get("total_error_replies")
    check(results["error_replies"] == "0", "redis counted error replies: %r" % results["error_replies"])
    check(int(info.get("io_threaded_reads_processed", 0)) > 0 and int(info.get("io_threaded_writes_processed", 0)) > 0,
          "redis's I/O threads served nothing: %r" % {k: v for k, v in info.items() if "io_thread" in k})
    return results


def redis_fresh_workload(path):
    """The workload on an empty database (FLUSHALL first): the same answers
    however often it runs on one server."""
    s = connect(path)
    f = s.makefile("rb")
    try:
        check(resp(f, s, b"FLUSHALL") == b"OK", "FLUSHALL")
    finally:
        f.close()
        s.close()
    return redis_workload(path)


def start_redis(tmp, preload):
    path = os.path.join(tmp, "redis.sock")
    argv = [require("/usr/bin/redis-server"), "--port", "0", "--unixsocket", path, "--unixsocketperm", "700",
            "--daemonize", "no", "--save", "", "--appendonly", "no", "--dir", tmp, "--logfile", "",
            "--io-threads", str(REDIS_IO_THREADS), "--io-threads-do-reads", "yes"]
    p = Process(argv, preload=preload, env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    wait_listening(p, path)
    return p, path


def check_io_threads(report, pid):
    """Idle, redis's I/O threads wait for a mutex that main holds."""
    io = [t for t in report["threads"] if t["name"].startswith("io_thd_")]
    check(len(io) == REDIS_IO_THREADS - 1, "I/O threads: %r" % [t["name"] for t in report["threads"]])
    for t in io:
        check(t["wait"]["kind"] == "mutex" and t["wait"]["owner"] == pid,
              "%s waits on %r, reason %s" % (t["name"], t["wait"], t["reason"]))


def redis():
    runs = {}
    for preload in (False, True):
        tmp = private_tmp()
        p, path = start_redis(tmp, preload)
        with p:
            if preload:
                p.wait_socket()
                r = settled_and_healthy(p, "redis idle after start-up", IO_THREAD_NAMES)
                check_io_threads(r, p.pid)
                sampler = Sampler(p)
            runs[preload] = redis_workload(path)
            if preload:
                sampler.finish()
                r = settled_and_healthy(p, "redis idle after the traffic", IO_THREAD_NAMES)
                check_io_threads(r, p.pid)
            rc = stop(p)
            check(rc == 0, "redis-server %s exited %r after SIGTERM" % ("under the preload" if preload else "bare", rc))
    check(runs[True] == runs[False], "redis's results differ under the preload:\n bare %r\n preloaded %r"
          % (runs[False], runs[True]))


# ---- judged from outside, under load ----

ATTACHES = int(os.environ.get("LEAKWATCH_TEST_ATTACHES", "50"))   # scripts/soak attach: 500


class Attacher:
    """Attaches to a bare server ATTACHES times in a row (each a freeze of
    every thread), checking each report."""

    def __init__(self, pid):
        self.pid, self.reports, self.failure, self.threads = pid, 0, None, set()
        self.freezes = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for _ in range(ATTACHES):
                p = run_cli(["threads", str(self.pid), "--json", "--all", "--settle", "100"], "/nonexistent")
                check(p.returncode == 0, "attach %d: exit %d: %s" % (self.reports + 1, p.returncode, p.stderr))
                r = json.loads(p.stdout)
                check(r["source"] == "attach", "not from outside: %r" % r.get("source"))
                bad = bad_threads(r)
                check(not bad, "attach %d judged stuck: %r" % (self.reports + 1, bad))
                self.threads.add(tuple(sorted(t["name"] for t in r["threads"])))
                self.freezes.append(r["attach"]["stopped_ms"])
                self.reports += 1
        except Exception as e:   # noqa: BLE001 -- reported by finish()
            self.failure = e

    def running(self):
        return self.thread.is_alive()

    def finish(self):
        self.thread.join(timeout=(300 + 3 * ATTACHES) * SLOW)
        if self.failure:
            raise self.failure
        check(self.reports == ATTACHES, "%d attaches of %d" % (self.reports, ATTACHES))
        check(len(self.threads) == 1, "the threads seen changed: %r" % self.threads)
        print("%d attaches, threads stopped for %.1f ms at most (median %.1f ms)"
              % (self.reports, max(self.freezes), sorted(self.freezes)[len(self.freezes) // 2]))


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return tuple(sorted(names))


def threads_settled(pid, main_name):
    """Once a server listens, its helper threads may still be starting and
    naming themselves (redis's bio threads are born "redis-server"): wait
    until only main bears main's name and the names hold still for a
    second, so that every attach can expect the same threads."""
    last = {"names": None, "since": 0.0}

    def settled():
        names = thread_names(pid)
        if names != last["names"]:
            last["names"], last["since"] = names, time.time()
        return names.count(main_name) == 1 and time.time() - last["since"] >= 1.0

    until(settled, 30, "the threads of pid %d to be named (%r)" % (pid, last["names"]))


def attached_under_load(start, workload, main_name):
    """A bare server without attaches, for the answers to expect; then
    another through the workload again and again while it is attached to
    ATTACHES times: every run answers the same."""
    p, path = start(private_tmp(), False)
    with p:
        expected = workload(path)
        check(stop(p) == 0, "the bare server did not exit 0 after SIGTERM")
    p, path = start(private_tmp(), False)
    with p:
        threads_settled(p.pid, main_name)
        attacher = Attacher(p.pid)
        runs = 0
        while attacher.running() or runs == 0:
            got = workload(path)
            runs += 1
            check(got == expected, "run %d of the workload under attaches answered %r, not %r" % (runs, got, expected))
        attacher.finish()
        print("%d runs of the workload under attaches, every one as without" % runs)
        rc = stop(p)
        check(rc == 0, "the server exited %r after SIGTERM, having been attached to" % rc)


_tmps = []


def private_tmp():
    """A short private directory for a server's socket (sun_path is short)."""
    d = tempfile.mkdtemp(prefix="lwsrv.")
    _tmps.append(d)
    return d


def main():
    try:
        {"memcached": memcached, "redis": redis,
         "memcached-attach": lambda: attached_under_load(start_memcached, memcached_client, "memcached"),
         "redis-attach": lambda: attached_under_load(start_redis, redis_fresh_workload, "redis-server")}[sys.argv[1]]()
    finally:
        for d in _tmps:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--client":   # memcached_client's child
        try:
            print(json.dumps(memcached_workload(sys.argv[2])))
        except TestFailure as e:
            print("FAIL: %s" % e)
            sys.exit(1)
        sys.exit(0)
    run_test(main)
