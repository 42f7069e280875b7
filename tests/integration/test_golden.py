#!/usr/bin/env python3
"""Golden-output tests of every view of the CLI on a real C++ program
(fixtures/golden_cpp, built with -g): `leakwatch threads PID` (aggregated),
`threads PID --all`, `threads PID --json`, `status` and `status PID` are
compared, after normalization, with the files in tests/cli/golden/. They
show function names demangled, file:line, and functions inlined into a
frame (the fixture's always_inline helpers) as frames of their own.

Usage: test_golden.py [--update]
    --update   rewrite the golden files from this run (review the diff).

Normalization replaces what differs between two runs or two machines with
placeholders, and nothing else:
  - pids and tids: <pid>; <tid:NAME> for the fixture's threads (READY
    line), <tid> for any other;
  - addresses and module offsets: 0x<addr>;
  - durations (2.5s, 1m04s...) and seconds in JSON: <dur>, <secs>; a range
    "<dur> to <dur>" becomes "<dur>" (two threads may or may not round the
    same);
  - sizes and times in notes (1.3 MiB, 3.9 ms): <n> MiB, <n> ms;
  - inode numbers: [<inode>];
  - the thread-count history (its samples, sparkline and span): <samples>,
    and the growth alarm's reason (it depends on how many samples there
    are): <reason>; whether the alarm is on is kept;
  - the fixtures' build directory: <fixtures>; the path from the build tree
    to the sources (../): <src>/;
  - line numbers in files outside this repository (glibc, libstdc++
    headers): <line>. The fixture's own lines are kept: they are the point.
Under a sanitizer (LEAKWATCH_PRELOAD_PREFIX set) frames of the sanitizer
runtimes and of libleakwatch.so itself (its thread trampoline shows in an
unoptimized build) are dropped, and a start routine that is ASan's
asan_thread_start (its pthread_create interceptor passes its own) counts as
unnamed, before comparing; everything else must match the same files.
"""
import difflib
import json
import os
import re
import sys

from lwtest import Process, check, fixture, run_test, sanitized, thread_by_tid, until

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.normpath(os.path.join(HERE, "..", "cli", "golden"))
FIXTURE_SOURCE = os.path.normpath(os.path.join(HERE, "..", "fixtures", "golden_cpp.cc"))
UPDATE = "--update" in sys.argv[1:]

# Frames of these modules are the tools', not the program's.
TOOL_MODULES = re.compile(r"^(libasan\.so|libubsan\.so|libleakwatch\.so)")
# ASan's pthread_create hands the real one a start routine of its own.
SANITIZER_ROUTINE = re.compile(r"^asan_thread_start\b")
# "      name at file:line (module+0x12)", "... (inlined)" or "... (0x12)" (no module).
FRAME_LINE = re.compile(r"^(\s+)(.*?)(?: at (\S+):(\d+))? \((inlined|[^()]*\+0x[0-9a-f]+|0x[0-9a-f]+)\)$")
DURATION = re.compile(r"\b\d+(?:\.\d+s|m\d\ds|h\d\dm|d\d\dh)\b")
SECONDS_KEYS = ("uptime", "age", "seconds", "remaining", "exited_ago", "idle", "span")
TID_KEYS = ("tid", "parent", "owner", "target", "chain")
ADDRESS_KEYS = ("pc", "object", "aux", "offset")


class Context:
    """What a run's output is normalized against: the fixture's pid, its
    threads' names by tid, and the fixtures' directory."""

    def __init__(self, pid, names, fixtures_dir):
        self.pid = pid
        self.names = names              # tid -> name
        self.fixtures_dir = fixtures_dir.rstrip("/")

    def tid(self, value):
        value = int(value)
        return "<tid:%s>" % self.names[value] if value in self.names else "<tid>"


def project_file(path):
    return bool(re.search(r"(^|/)tests/fixtures/[^/]+$", path or ""))


def normalize_path(path, ctx):
    if path is None:
        return None
    path = path.replace(ctx.fixtures_dir, "<fixtures>")
    m = re.match(r"^(.*?/)?(tests/fixtures/[^/]+)$", path)
    if m and not path.startswith("<fixtures>"):
        return "<src>/" + m.group(2)
    return path


def normalize_words(text, ctx):
    """Placeholders for ids, addresses, durations, sizes and inodes in a line
    of text (a frame line's parts are handled by normalize_frame_line)."""
    text = text.replace(ctx.fixtures_dir, "<fixtures>")
    # What the reachability scan did depends on the allocator (ASan's: no scan)
    # and on timing (young waits: no candidates yet).
    text = re.sub(r"reachability: [^\"\n]*", "reachability: <scan>", text)
    text = re.sub(r"\b(tid|pid) (\d+)",
                  lambda m: "%s %s" % (m.group(1), ctx.tid(m.group(2)) if m.group(1) == "tid" else "<pid>"), text)
    text = re.sub(r'"(owner|target|chain)": (\d+)', lambda m: '"%s": %s' % (m.group(1), ctx.tid(m.group(2))), text)
    text = re.sub(r'"cycle": \[([\d, ]*)\]',
                  lambda m: '"cycle": [%s]' % ", ".join(ctx.tid(t) for t in re.findall(r"\d+", m.group(1))), text)
    text = re.sub(r'("(?:%s)": )-?[\d.]+(?:e[-+]?\d+)?' % "|".join(SECONDS_KEYS), r"\1<secs>", text)
    text = re.sub(r"0x[0-9a-f]+", "0x<addr>", text)
    text = DURATION.sub("<dur>", text)
    text = text.replace("<dur> to <dur>", "<dur>")
    text = re.sub(r"\b\d+(?:\.\d+)? ?(MiB|KiB|GiB|kB|ms|us|µs)\b", r"<n> \1", text)
    text = re.sub(r":\[\d+\]", ":[<inode>]", text)
    return text


def normalize_frame_line(m, ctx):
    indent, name, path, line, where = m.groups()
    out = indent + name
    if path is not None:
        out += " at %s:%s" % (normalize_path(path, ctx), line if project_file(path) else "<line>")
    if where != "inlined":
        where = re.sub(r"0x[0-9a-f]+", "0x<addr>", where)
    return out + " (%s)" % where


def tool_frame_line(m):
    where = m.group(5)
    return where != "inlined" and bool(TOOL_MODULES.match(where))


def normalize_text(text, ctx):
    out = []
    for line in text.splitlines():
        m = FRAME_LINE.match(line)
        if m and tool_frame_line(m):
            continue
        if SANITIZER_ROUTINE.match(line.replace("    start routine: ", "", 1)):
            continue
        if line.startswith("history: "):
            line = "history: <samples>"
        line = re.sub(r"^(growth alarm: \w+): .*", r"\1: <reason>", line)
        out.append(normalize_frame_line(m, ctx) if m else normalize_words(line, ctx))
    return "\n".join(out) + "\n"


# ---- JSON ----

def tool_frame(frame):
    return bool(TOOL_MODULES.match(os.path.basename(frame.get("module") or "")))


def normalize_frames(frames, ctx):
    out = []
    for f in frames:
        if not isinstance(f, dict) or tool_frame(f):
            continue
        g = normalize_json(f, ctx)
        if isinstance(f.get("line"), int) and not project_file(f.get("file")):
            g["line"] = "<line>"
        out.append(g)
    return out


def normalize_value(key, value, ctx):
    if key in ("wait_stack", "create_stack") and isinstance(value, list):
        return normalize_frames(value, ctx)
    if key == "pid" and isinstance(value, int):
        return "<pid>"
    if key in TID_KEYS and isinstance(value, int):
        return ctx.tid(value)
    if key == "cycle" and isinstance(value, list):
        return [ctx.tid(t) if isinstance(t, int) else t for t in value]
    if key in SECONDS_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "<secs>"
    if key in ADDRESS_KEYS and isinstance(value, str):
        return "0x<addr>"
    if key == "inode" and isinstance(value, int):
        return "<inode>"
    if key == "function":
        return value
    if key == "reach":   # whether the scan ran depends on the allocator (ASan's: no scan) and on timing
        return "<reach>"
    if key in ("command", "exe", "module", "file") and isinstance(value, str):
        return normalize_path(value, ctx)
    if key == "start_routine" and isinstance(value, dict) and SANITIZER_ROUTINE.match(value.get("function") or ""):
        return normalize_json(dict(value, function=None), ctx)
    if key == "history" and isinstance(value, dict):
        h = normalize_json(value, ctx)
        if "threads" in h:
            h["threads"] = "<samples>"
        return h
    if key == "growth" and isinstance(value, dict):
        g = normalize_json(value, ctx)
        if "reason" in g:
            g["reason"] = "<reason>"
        return g
    return normalize_json(value, ctx)


def normalize_json(value, ctx):
    if isinstance(value, dict):
        return {k: normalize_value(k, v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_json(v, ctx) for v in value]
    if isinstance(value, str):
        return normalize_words(value, ctx)
    return value


def normalize_json_text(text, ctx):
    return json.dumps(normalize_json(json.loads(text), ctx), indent=1, ensure_ascii=False) + "\n"


def status_rows(text, pid):
    """The status table's header and our process's row (other processes
    under leakwatch on this machine may be listed too); the pid column
    keeps its width."""
    lines = text.splitlines()
    check(lines and lines[0].startswith("PID"), "status has no header: %r" % text[:300])
    mine = [line for line in lines[1:] if line.split()[:1] == [str(pid)]]
    check(len(mine) == 1, "status lists pid %d %d times:\n%s" % (pid, len(mine), text))
    check(re.match(r"^\d{1,8} ", mine[0]), "status row: %r" % mine[0])
    return "\n".join([lines[0], "%-8s %s" % ("<pid>", mine[0][9:])]) + "\n"


# ---- comparing ----

def without_paths(name, text):
    """Under a sanitizer the reachability scan never runs (ASan's malloc is
    not glibc's: the note says so), so no wait has rule 3's path ("kept
    reachable from ..."): compare without them there, both sides alike."""
    if name.endswith(".json"):
        def strip(v):
            if isinstance(v, dict):
                return {k: (None if k == "reach_path" else strip(x)) for k, x in v.items()}
            if isinstance(v, list):
                return [strip(x) for x in v]
            return v
        return json.dumps(strip(json.loads(text)), indent=2, sort_keys=True) + "\n"
    out, skipping = [], False
    for line in text.splitlines(True):
        if line.startswith("    kept reachable from "):
            skipping = True
            continue
        if skipping and line.startswith("      -> "):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


def compare(name, got):
    """Compare with (or, with --update, write) tests/cli/golden/NAME; a
    difference is reported as a unified diff."""
    path = os.path.join(GOLDEN_DIR, name)
    if UPDATE:
        os.makedirs(GOLDEN_DIR, exist_ok=True)
        old = open(path).read() if os.path.exists(path) else None
        with open(path, "w") as f:
            f.write(got)
        print("%s %s" % ("unchanged" if old == got else "wrote", path))
        return
    check(os.path.exists(path), "no golden file %s (run test_golden.py --update)" % path)
    with open(path) as f:
        want = f.read()
    if sanitized():
        want, got = without_paths(name, want), without_paths(name, got)
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "golden/" + name, "this run"))
        check(False, "%s differs from the golden file%s:\n%s"
              % (name, " (under a sanitizer)" if sanitized() else "", diff))


# ---- what the golden files must say anyway ----

def marked_lines():
    """GOLDEN:<tag> markers of the fixture's source: tag -> line number."""
    lines = {}
    with open(FIXTURE_SOURCE) as f:
        for number, text in enumerate(f, 1):
            m = re.search(r"GOLDEN:(\w+)", text)
            if m:
                lines[m.group(1)] = number
    return lines


def own_frames(frames):
    """(function, line, inlined) of the frames in the fixture's source, and
    the pcs of those frames."""
    mine = [f for f in frames if (f.get("file") or "").endswith("tests/fixtures/golden_cpp.cc")]
    return [(f["function"], f["line"], f.get("inlined", False)) for f in mine], [f["pc"] for f in mine]


def check_stacks(report, ids):
    """Independently of the golden files: the always_inline helpers are
    frames of their own, innermost first, marked inlined, at the pc of the
    real frame they are inlined into, each at its own line (the call site
    for the outer one); names are demangled; the lambda is named."""
    L = marked_lines()
    locker = thread_by_tid(report, ids["locker"][0])
    got, pcs = own_frames(locker["wait_stack"])
    want = [("golden::detail::lock_slot(std::mutex&)", L["lock_slot"], True),
            ("golden::detail::acquire(std::mutex&)", L["acquire"], True),
            ("golden::Store::fetch(int)", L["fetch"], False),
            ("golden::locker_main(int)", L["locker_main"], False)]
    check(got == want, "locker wait stack %r, want %r" % (got, want))
    check(pcs[0] == pcs[1] == pcs[2] != pcs[3], "inlined frames do not share the real frame's pc: %r" % pcs)
    got, _ = own_frames(locker["create_stack"])
    want = [("golden::start_lockers()", L["start_lockers"], False), ("main", L["main_lockers"], False)]
    check(got == want, "locker create stack %r, want %r" % (got, want))
    inner = [f["function"] for f in locker["wait_stack"][:2]]
    check(inner == ["__gthread_mutex_lock(pthread_mutex_t*)", "std::mutex::lock()"] or sanitized(),
          "innermost frames %r" % inner)
    waiter = thread_by_tid(report, ids["waiter"][0])
    got, _ = own_frames(waiter["wait_stack"])
    check(got == [("main::{lambda()#2}::operator()() const", L["waiter"], False)], "waiter stack %r" % got)
    got, _ = own_frames(waiter["create_stack"])
    check(got == [("main", L["main_waiter"], False)], "waiter create stack %r" % got)
    main = thread_by_tid(report, ids["main"][0])
    got, _ = own_frames(main["wait_stack"])
    check(got == [("main", L["main_pause"], False)], "main's stack %r" % got)


def settled(p, ids):
    """The fixture's verdicts once the settle time has passed: both lockers
    leaked (their mutex's owner exited), the waiter and main waiting."""
    want = {"locker": "leaked", "waiter": "waiting", "main": "waiting"}

    def ok():
        r = p.threads()
        got = {}
        for name, tids in ids.items():
            for tid in tids:
                t = thread_by_tid(r, tid)
                got.setdefault(name, set()).add(t and t["verdict"])
        check(all(got.get(k) == {v} for k, v in want.items()), "verdicts %r, want %r" % (got, want))
        check(r["summary"]["threads"] == 4, "summary %r" % r["summary"])
        return r
    return until(ok, 15, "the golden fixture's verdicts")


def main():
    with Process([fixture("golden_cpp")]) as p:
        ready = p.read_line("READY")
        ids = {k: [int(t) for t in v.split(",")] for k, v in ready.items()}
        check(ids["main"] == [p.pid] and len(ids["locker"]) == 2, "READY %r" % ready)
        names = {tid: name for name, tids in ids.items() for tid in tids}
        ctx = Context(p.pid, names, os.path.dirname(fixture("golden_cpp")))
        check_stacks(settled(p, ids), ids)
        pid = str(p.pid)
        views = [("threads.txt", ["threads", pid], 0, normalize_text),
                 ("threads_all.txt", ["threads", pid, "--all"], 0, normalize_text),
                 ("threads.json", ["threads", pid, "--json"], 0, normalize_json_text),
                 ("status_pid.txt", ["status", pid], 1, normalize_text),
                 ("status.txt", ["status"], None, lambda t, c: normalize_text(status_rows(t, p.pid), c))]
        outputs = []
        for name, args, rc, normalize in views:
            r = p.cli(*args)
            check(r.returncode == rc if rc is not None else r.returncode in (0, 1, 2),
                  "leakwatch %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout[-2000:], r.stderr))
            outputs.append((name, normalize(r.stdout, ctx)))
        check(p.alive(), "the fixture died")
        for name, text in outputs:
            compare(name, text)


if __name__ == "__main__":
    run_test(main)
