"""scripts/benchlib.py: what scripts/bench and scripts/bench-compare share.

Building a bench tree (the release tree, or a copy with a sanitizer), the
machine's description and load, running one workload once (bare, preloaded
or under a wrapper such as valgrind) and reading its ns/op, the preload's
socket, and the reachability-scan section (reach_heap under the preload,
in windows queried once a second and windows left alone). Not a program of its own: the two scripts import
it. Python 3 standard library only.
"""
import json
import os
import queue
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = "bench"   # the prefix of log lines: set by the importing script

# The reachability scan, under the preload (reach_section): name, MiB of
# live heap, whether only with --big, seconds per window (and with --quick),
# pairs of windows per process (and with --quick), processes (one with
# --quick; --runs overrides).
REACH = [
    ("reach_heap", 100, False, 3, 3, 10, 1, 2),
    ("reach_heap", 1024, True, 4, 3, 8, 1, 2),
]
REACH_MIBS_PER_S = 1024.0   # target scan throughput
REACH_MAX_DROP = 5.0        # target: the program's work rate drops by less than this, in percent
RUN_TIMEOUT = 300  # seconds; a hang under the preload is a failure, not a wait


class Failure(Exception):
    pass


def log(msg):
    print("%s: %s" % (PROGRAM, msg), file=sys.stderr, flush=True)


def run_quiet(cmd, what, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        sys.stderr.write(r.stdout)
        raise Failure("%s failed (exit %d): %s" % (what, r.returncode, " ".join(cmd)))
    return r.stdout


def build(builddir, buildtype, targets, options=()):
    """Configure builddir (once) with the buildtype and the meson options
    ("-Dname=value"), reconfigure it if they changed, and build only the
    ninja targets given."""
    wanted = dict(o[2:].split("=", 1) for o in options)
    wanted["buildtype"] = buildtype
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        if not shutil.which("meson") or not shutil.which("ninja"):
            log("meson/ninja missing: running scripts/setup")
            run_quiet(["bash", os.path.join(ROOT, "scripts", "setup")], "scripts/setup")
        log("configuring %s (%s)" % (os.path.relpath(builddir, ROOT),
                                     ", ".join("%s=%s" % kv for kv in sorted(wanted.items()))))
        run_quiet(["meson", "setup", builddir] + ["-D%s=%s" % kv for kv in sorted(wanted.items())],
                  "meson setup", cwd=ROOT)
    else:
        current = configured_options(builddir)
        changed = {k: v for k, v in wanted.items() if str(current.get(k)) != v}
        if changed:
            log("reconfiguring %s: %s" % (os.path.relpath(builddir, ROOT), ", ".join(
                "%s %s -> %s" % (k, current.get(k), v) for k, v in sorted(changed.items()))))
            run_quiet(["meson", "configure", builddir] + ["-D%s=%s" % kv for kv in sorted(changed.items())],
                      "meson configure", cwd=ROOT)
    run_quiet(["ninja", "-C", builddir] + list(targets), "build")


def configured_options(builddir):
    """{option name: value} of a configured meson tree ({} if unreadable)."""
    try:
        with open(os.path.join(builddir, "meson-info", "intro-buildoptions.json")) as f:
            return {opt.get("name"): opt.get("value") for opt in json.load(f)}
    except (OSError, ValueError):
        return {}


def compiler(builddir, target):
    """How a meson tree compiles one of its targets: "cc (Debian 12.2.0-14)
    12.2.0, -fsanitize=thread -O3" (the compiler's version line and the flags
    that matter for speed), or "unknown compiler"."""
    try:
        with open(os.path.join(builddir, "meson-info", "intro-targets.json")) as f:
            t = next(t for t in json.load(f) if t.get("name") == target)
        source = t["target_sources"][0]
    except (OSError, ValueError, KeyError, IndexError, StopIteration):
        return "unknown compiler"
    flags = [a for a in source.get("parameters", []) if re.match(r"-(O|f(sanitize|no-omit)|g$|march)", a)]
    return "%s, %s" % (first_line(source["compiler"] + ["--version"]) or source["compiler"][0], " ".join(flags))


def first_line(cmd):
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        return out.splitlines()[0].strip() if out else ""
    except OSError:
        return ""


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = " ".join(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown libc"
    except (ValueError, OSError):
        glibc = "unknown libc"
    return "%s CPUs (nproc), %s, kernel %s, %s" % (
        first_line(["nproc"]) or os.cpu_count(), model, os.uname().release, glibc)


def tree_revision():
    rev = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    if not rev:
        return "unknown revision"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return rev + (" + local changes" if dirty else "")


def cpu_times():
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


class LoadMeter:
    """What the rest of the machine did while we measured: busy CPU time not
    spent in our children, and time the hypervisor gave our vCPUs to someone
    else, both in percent of the machine's capacity over the interval."""

    def __init__(self):
        self.load_before = loadavg()
        self.cpu, self.ours, self.t = cpu_times(), children_cpu(), time.monotonic()

    def line(self):
        """The sentence for a report, or None if /proc/stat was unreadable."""
        cpu, ours, t = cpu_times(), children_cpu(), time.monotonic()
        if not (self.cpu and cpu and t > self.t):
            return None
        capacity = (t - self.t) * (os.cpu_count() or 1)
        others = max(0.0, 100.0 * (cpu[0] - self.cpu[0] - (ours - self.ours)) / capacity)
        steal = 100.0 * (cpu[1] - self.cpu[1]) / capacity
        return ("during the runs, other processes used %.0f%% of the CPUs and the hypervisor stole %.0f%%%s" %
                (others, steal, " (busy machine: expect noisy results, above all for two-thread workloads)"
                 if others + steal > 5 else ""))


def echo_stderr(label, text):
    """The default treatment of a workload's stderr: shown, each line labelled."""
    sys.stderr.write("".join("  [%s] %s\n" % (label, l) for l in text.splitlines()))


def run_once(prog, iters, env, label, wrapper=(), on_stderr=echo_stderr):
    """One run of one workload, `wrapper... prog iters` (a wrapper such as
    valgrind may come first): its ns/op, or Failure. Its stderr, if any, goes
    to on_stderr(label, text)."""
    try:
        r = subprocess.run(list(wrapper) + [prog, str(iters)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure("%s timed out after %d s" % (label, RUN_TIMEOUT))
    if r.stderr:
        on_stderr(label, r.stderr)
        if "cannot be preloaded" in r.stderr:
            raise Failure("%s: the preload was not loaded" % label)
    if r.returncode != 0:
        if on_stderr is not echo_stderr:
            echo_stderr(label, r.stderr[-2000:])
        raise Failure("%s exited with status %d" % (label, r.returncode))
    try:
        value = float(r.stdout.strip())
    except ValueError:
        raise Failure("%s printed %r, not a number" % (label, r.stdout))
    if not value > 0:
        raise Failure("%s printed %r" % (label, r.stdout))
    return value


def pin_wrapper():
    """The wrapper that runs a program with every thread on one CPU: the
    last one this process may use (taskset -c N)."""
    if not shutil.which("taskset"):
        raise Failure("taskset (util-linux) is needed for the pinned runs")
    return ("taskset", "-c", str(max(os.sched_getaffinity(0))))


def check_preload_loads(lib, env):
    """Prove LD_PRELOAD takes effect: a child must have the library mapped."""
    r = subprocess.run(["cat", "/proc/self/maps"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 or lib not in r.stdout:
        sys.stderr.write(r.stderr)
        raise Failure("%s is not mapped into a preloaded process" % lib)


def fmt_ns(v):
    return "%.2f" % v if v < 10 else "%.1f" % v if v < 1000 else "%.0f" % v


def spread(samples):
    """(max - min) / median, in percent: how noisy this side was."""
    return "%.0f%%" % (100 * (max(samples) - min(samples)) / statistics.median(samples))


class Program:
    """A long-running bench program (reach_heap, park_many), its stdout and
    stderr read by threads of ours."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append), daemon=True).start()

    @staticmethod
    def _pump(f, put):
        for line in f:
            put((time.monotonic(), line))
        put((time.monotonic(), None))

    def line(self, deadline):
        """The next stdout line as (arrival time, text), (t, None) at end of
        file, None at the deadline."""
        try:
            return self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def drain(self):
        """Every (arrival time, line) read so far."""
        out = []
        while not self.lines.empty():
            item = self.lines.get_nowait()
            if item[1] is not None:
                out.append(item)
        return out

    def ready(self, deadline, label):
        """Wait for its READY line: (arrival time, the line), or Failure."""
        while True:
            item = self.line(deadline)
            if item is None or item[1] is None:
                raise Failure("%s: no READY line (exit %r): %s"
                              % (label, self.proc.poll(), "".join(l for _, l in self.err if l)[-500:]))
            if item[1].startswith("READY"):
                return item

    def socket(self, lwdir, deadline, label):
        """Wait for the preload's socket in lwdir: its path, or Failure."""
        path = os.path.join(lwdir, "leakwatch.%d.sock" % self.proc.pid)
        while not os.path.exists(path):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Failure("%s: no socket %s (exit %r)" % (label, path, self.proc.poll()))
            time.sleep(0.05)
        return path

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def ask(path, request, timeout=60.0):
    """One request on the preload's socket; the parsed JSON reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    return json.loads(out)


def status_kb(pid, field):
    """A kB figure of /proc/PID/status: field "VmRSS", "VmHWM"..."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Failure("no %s for pid %d" % (field, pid))


def vm_hwm_kb(pid):
    return status_kb(pid, "VmHWM")


def window_rate(lines, start, end):
    """The median work rate of the whole seconds inside [start, end]: TICK
    lines (one a second) that arrived past its first second; None if none."""
    ticks = [int(line.split("ops=")[1]) for t, line in lines if line.startswith("TICK") and start + 1.0 < t <= end + 0.05]
    return statistics.median(ticks) if ticks else None


def query_each_second(path, seconds, label, scans, notes):
    """A `threads` query a second for `seconds` seconds (unless one takes
    longer); each real scan's (MiB, ms, ms of CPU) goes to scans."""
    start = time.monotonic()
    for k in range(seconds):
        time.sleep(max(0.0, start + k - time.monotonic()))
        reply = ask(path, b"threads\n")
        if "error" in reply:
            raise Failure("%s: the socket answered %r" % (label, reply))
        note = [n for n in reply.get("notes", []) if n.startswith("reachability:")]
        notes.append(note[0] if note else "(no reachability note)")
        m = re.search(r"([0-9.]+) MiB scanned in ([0-9.]+) ms \(([0-9.]+) ms of CPU\)", notes[-1])
        if m:
            scans.append((float(m.group(1)), float(m.group(2)), float(m.group(3))))
    time.sleep(max(0.0, start + seconds - time.monotonic()))


def reach_run(prog, mib, env, lwdir, seconds, pairs, label, raw):
    """One process of reach_heap: wait until its heap is built and its
    candidate has settled, then `pairs` pairs of windows of `seconds`: one
    with a query each second, one without any (few scans run then: main
    computes all the while, so no scan can prove the candidate, and the
    background prover backs off while nothing changes), in alternating order. The same process,
    heap and page layout on both sides: separate processes differ by tens of
    percent in this memory-bound work. Returns ([(work/s with scans, work/s
    without)] per pair, [(MiB, ms, ms of CPU)] of the real scans, the notes,
    VmHWM before and after, in kB)."""
    p = Program([prog, str(mib)], env)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        p.ready(deadline, label)
        path = p.socket(lwdir, deadline, label)
        time.sleep(1.5)   # the candidate's wait passes the settle time (1 s)
        hwm_before = vm_hwm_kb(p.proc.pid)
        lines = p.drain()
        scans, notes, windows = [], [], []
        for i in range(pairs):
            for side in (("scan", "calm") if i % 2 == 0 else ("calm", "scan")):
                start = time.monotonic()
                if side == "scan":
                    query_each_second(path, seconds, label, scans, notes)
                else:
                    time.sleep(seconds)
                windows.append((i, side, start, time.monotonic()))
        hwm_after = vm_hwm_kb(p.proc.pid)
        time.sleep(0.1)
        lines += p.drain()
        rates = {}
        for i, side, start, end in windows:
            rates[(i, side)] = window_rate(lines, start, end)
        result = [(rates[(i, "scan")], rates[(i, "calm")]) for i in range(pairs)]
        if raw:
            log("  %s: work/s (scans, none) per pair %r; %s" % (label, result, notes[-1] if notes else ""))
        if any(s is None or c is None for s, c in result):
            raise Failure("%s: a window without TICK lines" % label)
        return result, scans, notes, hwm_before, hwm_after
    finally:
        p.stop()
        try:
            os.unlink(os.path.join(lwdir, "leakwatch.%d.sock" % p.proc.pid))   # killed: it could not
        except OSError:
            pass


def reach_section(builddir, pre_env, lwdir, args, rows, failed):
    """The reach section: for each heap size, processes of reach_heap with
    paired windows (reach_run). Appends (mib, result dict or None) to rows
    and the names of what failed to failed. Reads args.runs, args.runs_given
    (whether runs overrides REACH's process counts), args.quick, args.big
    and args.raw."""
    prog = os.path.join(builddir, "tests", "bench", "reach_heap")
    for name, mib, big, secs, quick_secs, pairs, quick_pairs, processes in REACH:
        if big and (not args.big or args.quick):
            continue
        n_runs = args.runs if args.runs_given else 1 if args.quick else processes
        n_pairs = quick_pairs if args.quick else pairs
        seconds = quick_secs if args.quick else secs
        log("%s: %d MiB heap, %d process(es) x %d pairs of %d s windows (with scans / without)"
            % (name, mib, n_runs, n_pairs, seconds))
        env = dict(pre_env, LEAKWATCH_SETTLE_MS="1000")
        pair_rates, mibs, ms, cpu_ms, growth, notes = [], [], [], [], [], []
        try:
            for i in range(n_runs):
                label = "%s %d MiB process %d" % (name, mib, i + 1)
                result, scans, run_notes, before, after = reach_run(prog, mib, env, lwdir, seconds, n_pairs, label,
                                                                    args.raw)
                if not scans:
                    raise Failure("%s: no scan ran: %r" % (label, run_notes))
                pair_rates += result
                mibs += [x for x, _, _ in scans]
                ms += [y for _, y, _ in scans]
                cpu_ms += [z for _, _, z in scans]
                growth.append((after - before) / 1024.0)
                notes = run_notes
        except (Failure, OSError, ValueError) as e:
            log("FAILED: " + str(e))
            failed.append("%s (%d MiB)" % (name, mib))
            rows.append((mib, None))
            continue
        throughputs = [x / (y / 1000.0) for x, y in zip(mibs, ms) if y > 0]
        cpu_throughputs = [x / (z / 1000.0) for x, z in zip(mibs, cpu_ms) if z > 0]
        drops = [100.0 * (1.0 - s / c) for s, c in pair_rates]
        rows.append((mib, dict(
            scans=len(ms), mib=statistics.median(mibs), ms=statistics.median(ms),
            ms_spread=(min(ms), max(ms)), throughput=statistics.median(throughputs),
            cpu_ms=statistics.median(cpu_ms), cpu_throughput=statistics.median(cpu_throughputs),
            growth=statistics.median(growth), growth_max=max(growth),
            calm=statistics.median([c for _, c in pair_rates]), scan=statistics.median([s for s, _ in pair_rates]),
            drop=statistics.median(drops), drops=drops, runs=n_runs, pairs=n_pairs, seconds=seconds,
            note=notes[-1])))


def reach_lines(rows):
    """The reach section's two tables (and the last note of each heap), as lines."""
    out = ["", "Reachability scan (tests/bench/reach_heap: a heap of 64-byte blocks, all live, and one parked"
               " candidate; windows with a query per second and windows without, paired in one process; %s):"
           % ", ".join("%d MiB: %d process(es) x %d pairs of %d s" % (mib, r["runs"], r["pairs"], r["seconds"])
                       for mib, r in rows if r),
           "",
           "| heap | scans | MiB scanned | ms per scan (median, min–max) | MiB/s | target | result |"
           " CPU ms per scan | MiB/s of CPU | peak RSS growth (median, max) |",
           "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for mib, r in rows:
        if r is None:
            out.append("| %d MiB | — | — | — | — | ≥ %.0f | FAILED | — | — | — |" % (mib, REACH_MIBS_PER_S))
            continue
        result = "ok" if r["throughput"] >= REACH_MIBS_PER_S else "under"
        out.append("| %d MiB | %d | %.1f | %.1f (%.1f–%.1f) | %.0f | ≥ %.0f | %s | %.1f | %.0f | %.1f MiB (%.1f) |" %
                   (mib, r["scans"], r["mib"], r["ms"], r["ms_spread"][0], r["ms_spread"][1], r["throughput"],
                    REACH_MIBS_PER_S, result, r["cpu_ms"], r["cpu_throughput"], r["growth"], r["growth_max"]))
    out += ["",
            "| heap | pairs | work/s, no queries | work/s, a query a second | drop (median of the pairs) | target |"
            " result | drops, min–max |",
            "|---:|---:|---:|---:|---:|---:|---|---:|"]
    for mib, r in rows:
        if r is None:
            out.append("| %d MiB | — | — | — | — | < %.0f%% | FAILED | — |" % (mib, REACH_MAX_DROP))
            continue
        result = "ok" if r["drop"] < REACH_MAX_DROP else "over"
        out.append("| %d MiB | %d | %.0f | %.0f | %.1f%% | < %.0f%% | %s | %.1f%% to %.1f%% |" %
                   (mib, len(r["drops"]), r["calm"], r["scan"], r["drop"], REACH_MAX_DROP, result,
                    min(r["drops"]), max(r["drops"])))
    for mib, r in rows:
        if r is not None:
            out += ["", "Last note (%d MiB): %s" % (mib, r["note"])]
    return out


# ---- the background prover (scripts/bench, section "prover") ----
#
# tests/bench/idle_pool: a 100 MiB heap of live 64-byte blocks and 64
# workers parked for good on their pool's condvar (the pool held by a
# global): an idle pool, every wait a reachable candidate, nothing to prove.
# 1. Cost: the process's own CPU time (utime + stime, /proc/PID/stat) over
#    an idle window, preloaded and bare side by side; nothing asks it.
# 2. Latency: `threads` asked at random moments, end to end (the request on
#    the socket), of the idle process and of processes in which a worker is
#    abandoned at a random moment (a leak appears: a query may then wait for
#    the scan that confirms it); each ask made once the leak is settle +
#    PROVER_PROOF_S old must find it proven.
PROVER_MIB, PROVER_WORKERS = 100, 64
PROVER_IDLE_S, PROVER_IDLE_QUICK_S = 600, 15
PROVER_MAX_CPU = 0.5          # target: percent of one CPU, preloaded less bare
PROVER_MAX_LATENCY = 1.5      # target: seconds, the slowest answer
PROVER_PROOF_S = 2.5          # a leak this much older than the settle time (1 s) is proven on one ask


def process_cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_ask(path, request=b"threads\n"):
    t0 = time.monotonic()
    reply = ask(path, request)
    return time.monotonic() - t0, reply


def prover_idle(prog, bare_env, pre_env, lwdir, seconds, asks, rng, label):
    """The idle pool bare and preloaded at once, `seconds` left alone; then
    `asks` random asks of the preloaded one. (CPU % preloaded, CPU % bare,
    [latencies])."""
    bare = Program([prog, str(PROVER_MIB), str(PROVER_WORKERS)], bare_env)
    pre = Program([prog, str(PROVER_MIB), str(PROVER_WORKERS)], pre_env)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        bare.ready(deadline, label + " bare")
        pre.ready(deadline, label + " preloaded")
        path = pre.socket(lwdir, deadline, label)
        time.sleep(3.0)   # settled, and the prover's first scans made
        c0 = (process_cpu_s(pre.proc.pid), process_cpu_s(bare.proc.pid))
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        c1 = (process_cpu_s(pre.proc.pid), process_cpu_s(bare.proc.pid))
        latencies = []
        for _ in range(asks):
            time.sleep(rng.uniform(0.1, 3.0))
            latency, reply = timed_ask(path)
            if "error" in reply:
                raise Failure("%s: the socket answered %r" % (label, reply))
            latencies.append(latency)
        return 100.0 * (c1[0] - c0[0]) / elapsed, 100.0 * (c1[1] - c0[1]) / elapsed, latencies
    finally:
        for p in (pre, bare):
            p.stop()
        try:
            os.unlink(os.path.join(lwdir, "leakwatch.%d.sock" % pre.proc.pid))
        except OSError:
            pass


def prover_leak(prog, pre_env, lwdir, rng, label):
    """One process in which a worker is abandoned 1 to 4 s after READY, asked
    at random moments from the leak to 5 s after it. ([latencies], asks
    that should have found the proof, asks that did)."""
    p = Program([prog, str(PROVER_MIB), str(PROVER_WORKERS), str(rng.randint(1000, 4000))], pre_env)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        p.ready(deadline, label)
        path = p.socket(lwdir, deadline, label)
        while True:
            item = p.line(deadline)
            if item is None or item[1] is None:
                raise Failure("%s: no LEAK line" % label)
            if item[1].startswith("LEAK"):
                leak_at, tid = item[0], int(item[1].split("tid=")[1])
                break
        latencies, due, proven = [], 0, 0
        for at in sorted(rng.uniform(0.0, 5.0) for _ in range(4)):
            time.sleep(max(0.0, leak_at + at - time.monotonic()))
            asked = time.monotonic() - leak_at
            latency, reply = timed_ask(path)
            latencies.append(latency)
            worker = [t for t in reply.get("threads", []) if t.get("tid") == tid]
            if asked >= 1.0 + PROVER_PROOF_S:
                due += 1
                proven += bool(worker and worker[0].get("verdict") == "leaked")
        return latencies, due, proven
    finally:
        p.stop()
        try:
            os.unlink(os.path.join(lwdir, "leakwatch.%d.sock" % p.proc.pid))
        except OSError:
            pass


def prover_section(builddir, bare_env, pre_env, lwdir, args, rows, failed):
    """Appends one result dict (or None) to rows."""
    import random
    seed = int(time.time())
    rng = random.Random(seed)
    prog = os.path.join(builddir, "tests", "bench", "idle_pool")
    seconds = PROVER_IDLE_QUICK_S if args.quick else PROVER_IDLE_S
    leaks = 2 if args.quick else 8
    log("prover: idle pool (%d MiB heap, %d parked workers) left alone %d s, then asked; %d processes with a"
        " leak appearing at a random moment (seed %d)" % (PROVER_MIB, PROVER_WORKERS, seconds, leaks, seed))
    env = dict(pre_env, LEAKWATCH_SETTLE_MS="1000")
    try:
        cpu_pre, cpu_bare, idle_lat = prover_idle(prog, bare_env, env, lwdir, seconds, 5 if args.quick else 20, rng,
                                                  "idle_pool")
        leak_lat, due, proven = [], 0, 0
        for i in range(leaks):
            lat, d, p = prover_leak(prog, env, lwdir, rng, "idle_pool leak %d" % (i + 1))
            leak_lat += lat
            due += d
            proven += p
    except (Failure, OSError, ValueError) as e:
        log("FAILED: " + str(e))
        failed.append("idle_pool")
        rows.append(None)
        return
    rows.append(dict(seconds=seconds, cpu_pre=cpu_pre, cpu_bare=cpu_bare, idle_lat=idle_lat, leak_lat=leak_lat,
                     due=due, proven=proven, leaks=leaks, seed=seed))


def prover_lines(rows):
    out = ["", "Background prover (tests/bench/idle_pool: %d MiB of live blocks, %d workers parked on their pool's"
               " condvar, the pool held by a global):" % (PROVER_MIB, PROVER_WORKERS), ""]
    r = rows[0] if rows else None
    if r is None:
        return out + ["FAILED"]
    cost = r["cpu_pre"] - r["cpu_bare"]
    worst = max(r["idle_lat"] + r["leak_lat"])
    out += ["| measurement | value | target | result |", "|---|---:|---:|---|",
            "| CPU of the idle process over %d s, preloaded − bare | %.3f%% (%.3f%% − %.3f%%) | ≤ %.1f%% | %s |"
            % (r["seconds"], cost, r["cpu_pre"], r["cpu_bare"], PROVER_MAX_CPU,
               "ok" if cost <= PROVER_MAX_CPU else "over"),
            "| `threads` latency, idle pool, %d random asks (median, max) | %.0f ms, %.0f ms | — | info |"
            % (len(r["idle_lat"]), 1e3 * statistics.median(r["idle_lat"]), 1e3 * max(r["idle_lat"])),
            "| `threads` latency, a leak appearing (%d processes, %d asks; median, max) | %.0f ms, %.0f ms | < %.1f s | %s |"
            % (r["leaks"], len(r["leak_lat"]), 1e3 * statistics.median(r["leak_lat"]), 1e3 * max(r["leak_lat"]),
               PROVER_MAX_LATENCY, "ok" if worst < PROVER_MAX_LATENCY else "over"),
            "| asks %.1f s or more after the leak that found it proven | %d of %d | all | %s |"
            % (1.0 + PROVER_PROOF_S, r["proven"], r["due"], "ok" if r["proven"] == r["due"] else "missed"),
            "", "(random moments from seed %d)" % r["seed"]]
    return out
