#!/usr/bin/env python3
"""The CLI's views for people and scrapers, against mock_server.py (exact
replies, so exact output): every verb's manual, suppressions (threads,
status, metrics; text and JSON; flags, files, LEAKWATCH_SUPPRESSIONS), the
metrics checked by a strict parser of the Prometheus text format 0.0.4, the
history sparkline and growth alarm of `status PID`, and `watch` (plain
output, and in a pseudo-terminal: drawn in place, q and Ctrl-C quit and
restore the terminal, a process that goes away ends it with status 2).

Usage: test_views.py MODE    (LEAKWATCH_CLI, CLI_TARGET, CLI_TARGET_SOURCE as
                              for test_cli.py, whose helpers it shares)
"""
import fcntl
import json
import math
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402
from test_cli import CLI, Env, Failure, check, expect_rc, process, realistic, serve, target_info, thread  # noqa: E402

# ---- the manuals ----

VERBS = {
    "status": ["--json", "--attach", "--core FILE", "--exe PATH", "--since SECONDS", "--settle MS", "--ignore PATTERN",
               "--suppressions FILE", "--help"],
    "threads": ["--all", "--json", "--pprof FILE", "--attach", "--core FILE", "--exe PATH", "--since SECONDS",
                "--settle MS", "--ignore PATTERN", "--suppressions FILE", "--help"],
    "watch": ["--interval SECONDS", "--count N", "--attach", "--settle MS", "--ignore PATTERN", "--suppressions FILE",
              "--help"],
    "metrics": ["--ignore PATTERN", "--suppressions FILE", "--help"],
    "exporter": ["--listen HOST:PORT", "--budget SECONDS", "--ignore PATTERN", "--suppressions FILE", "--help"],
    "run": ["--check", "--settle MS", "--timeout SECONDS", "--ignore PATTERN", "--suppressions FILE", "--help"],
    "help": ["--man", "--bash-completion", "--help"],
    "version": ["--help"],
}
SECTIONS = ["usage: leakwatch ", "options:", "exit status:", "environment:", "examples:"]


def mode_help(env):
    overview = env.cli("help")
    expect_rc(overview, 0, "help")
    for verb, options in VERBS.items():
        check(re.search(r"^  %s +\S" % verb, overview.stdout, re.M), "help does not list %s:\n%s"
              % (verb, overview.stdout))
        p = env.cli(verb, "--help")
        expect_rc(p, 0, verb + " --help")
        text = p.stdout
        check(text.startswith("leakwatch %s - " % verb), "%s --help title: %r" % (verb, text[:80]))
        at = [text.find(s) for s in SECTIONS]
        check(all(i >= 0 for i in at) and at == sorted(at), "%s --help sections %r:\n%s" % (verb, at, text))
        opts = text[text.index("options:"):text.index("exit status:")]
        listed = re.findall(r"^  (--\S+(?: [A-Z:]+)?)", opts, re.M)
        check(listed == options, "%s options %r, wanted %r" % (verb, listed, options))
        codes = text[text.index("exit status:"):text.index("environment:")]
        check(re.search(r"^  %s " % ("N" if verb == "run" else "0"), codes, re.M)
              and (verb == "version" or re.search(r"^  2 ", codes, re.M)), "%s exit status section: %r" % (verb, codes))
        check("NO_COLOR" in text and "LEAKWATCH_SUPPRESSIONS" in text, "%s environment section" % verb)
        examples = text[text.index("examples:"):]
        check(("leakwatch %s" % verb) in examples, "%s examples: %r" % (verb, examples))
        check(env.cli("help", verb).stdout == text and env.cli(verb, "-h").stdout == text,
              "help %s / %s -h differ from %s --help" % (verb, verb, verb))
        bad = env.cli(verb, "--bogus")
        expect_rc(bad, 2, verb + " --bogus")
        check(bad.stderr.startswith("leakwatch %s: unknown option '--bogus'\nusage: leakwatch %s" % (verb, verb)),
              "%s --bogus: %r" % (verb, bad.stderr))
    run = env.cli("run", "--help").stdout
    for word in ("statically linked", "set-user-ID", "100 ms", "LEAKWATCH_PRELOAD_PREFIX", "127", "126",
                 "SIGTERM, then SIGKILL 2 s later"):
        check(word in run, "run --help lacks %r" % word)
    for args in (["watch", "1", "--interval", "0"], ["watch", "1", "--count", "0"], ["status", "1", "--json=x"],
                 ["metrics", "--ignore"], ["threads", "1", "--ignore", ""], ["status", "--all"], ["metrics", "--json"],
                 ["threads", "1", "2"], ["help", "frob"]):
        p = env.cli(*args)
        expect_rc(p, 2, "leakwatch " + " ".join(args))
        check(p.stderr.startswith("leakwatch"), "%s: %r" % (args, p.stderr))


# ---- suppressions ----

def suppression_reply(pid, info):
    """realistic() plus a thread whose start routine alone names cli_worker."""
    r = realistic(pid, info)
    r["threads"].append(thread(150, "leaked", "sem", 20.0, None, None, name="timer",
                               start_routine=r["threads"][1]["start_routine"]))
    r["summary"]["threads"] += 1
    r["summary"]["leaked"] += 1
    r["summary"]["parked"] += 1
    return r


def tids(doc):
    return sorted(t["tid"] for t in doc["threads"])


def mode_suppress(env):
    info = target_info()
    lines = test_cli.marked_lines()
    m = serve(env, lambda pid: suppression_reply(pid, info))

    def threads_json(*args, **kw):
        p = env.cli("threads", m.pid, "--json", *args, **kw)
        expect_rc(p, 0, "threads --json " + " ".join(args))
        return json.loads(p.stdout)

    doc = threads_json()
    check(doc["suppressed"] == {} and doc["summary"]["suppressed"] == 0 and len(doc["threads"]) == 11,
          "no suppressions: %r" % doc["summary"])
    doc = threads_json("--ignore", "cli_wait_for_result")
    check(tids(doc) == [100, 110, 120, 130, 131, 150], "wait-stack function: %r" % tids(doc))
    check(doc["suppressed"] == {"cli_wait_for_result": 5}, "counts: %r" % doc["suppressed"])
    check(doc["summary"] == {"threads": 11, "running": 1, "waiting": 1, "suspect": 1, "leaked": 1, "deadlocked": 2,
                             "parked": 5, "suppressed": 5}, "summary: %r" % doc["summary"])
    doc = threads_json("--ignore", "cli_worker", "--ignore", "cli_wait_for_result")
    check(doc["suppressed"] == {"cli_worker": 7, "cli_wait_for_result": 0},
          "first pattern wins; start routines match: %r" % doc["suppressed"])
    doc = threads_json("--ignore", "target.c:%d" % lines["spawn"])
    check(tids(doc) == [100, 120, 150], "FILE:LINE of the creation site: %r" % tids(doc))
    doc = threads_json("--ignore", "*/cli_target")   # no module path matches: base names only
    check(doc["suppressed"] == {"*/cli_target": 0}, "module paths: %r" % doc["suppressed"])
    doc = threads_json("--ignore", "libgone.so.?")
    check(tids(doc) == [100, 101, 102, 103, 104, 105, 110, 130, 131, 150], "module name: %r" % tids(doc))
    doc = threads_json("--ignore", "lw::detail::*", "--ignore", "_ZN2lw*")
    check(110 not in tids(doc), "demangled or mangled function names: %r" % doc["suppressed"])

    p = env.cli("threads", m.pid, "--ignore", "cli_wait_for_result", "--ignore", "libgone*")
    expect_rc(p, 0, "threads --ignore (text)")
    out = p.stdout.splitlines()
    check(out[0] == "pid %d (./app --serve): 11 threads: 1 running, 1 waiting, 1 leaked, 2 deadlocked" % m.pid
          and out[1] == "6 threads suppressed (cli_wait_for_result: 5, libgone*: 1)", "header: %r" % out[:3])
    check("cli_wait_for_result" not in "\n".join(out[2:]) and "tid 120" not in p.stdout, "suppressed shown:\n"
          + p.stdout)
    p = env.cli("threads", m.pid, "--ignore", "cli_wait_for_result")
    check(p.stdout.splitlines()[1] == "5 threads suppressed (cli_wait_for_result)", "one pattern: %r" % p.stdout)

    # status: counts and the exit code ignore suppressed threads
    p = env.cli("status", m.pid)
    expect_rc(p, 1, "status of a leaking process")
    check(m.requests[-1] == "status", "status without suppressions asked %r" % m.requests[-1])
    p = env.cli("status", m.pid, "--ignore", "cli_wait_for_result")
    expect_rc(p, 1, "status with deadlocked threads left")
    check(m.requests[-1] == "threads", "status with suppressions needs the stacks, asked %r" % m.requests[-1])
    check("\n5 threads suppressed (cli_wait_for_result)\n" in p.stdout, "status text: %r" % p.stdout)
    supp = os.path.join(env.tmp, "suppressions")
    with open(supp, "w") as f:
        f.write("# intentional forever-threads\ncli_wait_for_result\n\n   cli_spawn   # the rest\ncli_worker\n")
    everything = {"cli_wait_for_result": 5, "cli_spawn": 3, "cli_worker": 2}
    for args, extra in ((["--ignore", "cli_wait_for_result", "--ignore", "cli_spawn", "--ignore", "cli_worker"], {}),
                        (["--suppressions", supp], {}), ([], {"LEAKWATCH_SUPPRESSIONS": supp})):
        p = env.cli("status", m.pid, "--json", *args, env=extra)
        expect_rc(p, 0, "status with everything stuck suppressed (%r %r)" % (args, extra))
        doc = json.loads(p.stdout)
        check(doc["suppressed"] == everything and doc["summary"]["leaked"] == 0
              and doc["summary"]["deadlocked"] == 0 and doc["summary"]["suppressed"] == 10
              and "threads" not in doc and "stacks" not in doc, "status --json: %r" % doc)
    p = env.cli("status", "--suppressions", supp)
    rows = [line for line in p.stdout.splitlines() if line.startswith("pid %d: " % m.pid)]
    check(rows == ["pid %d: 10 threads suppressed (cli_wait_for_result: 5, cli_spawn: 3, cli_worker: 2)" % m.pid],
          "status table suppression line: %r" % p.stdout)
    p = env.cli("status", "--json", "--suppressions", supp)
    mine = [q for q in json.loads(p.stdout)["processes"] if q["pid"] == m.pid]
    check(mine and mine[0]["suppressed"] == everything, "status --json: %r" % mine)
    p = env.cli("status", m.pid, env={"LEAKWATCH_SUPPRESSIONS": os.path.join(env.tmp, "missing")})
    expect_rc(p, 2, "LEAKWATCH_SUPPRESSIONS naming a missing file")
    check("cannot read suppressions file" in p.stderr, "missing file: %r" % p.stderr)
    series = parse_exposition(env.cli("metrics", m.pid, "--suppressions", supp).stdout)
    labels = {"pid": str(m.pid), "command": "./app --serve"}
    check(value(series, "leakwatch_threads_suppressed", labels) == 10
          and value(series, "leakwatch_threads", dict(labels, verdict="leaked")) == 0
          and value(series, "leakwatch_waits", dict(labels, kind="cond")) == 0
          and value(series, "leakwatch_oldest_stuck_wait_seconds", labels) == 0, "metrics with suppressions")


# ---- metrics: a strict parser of the text exposition format 0.0.4 ----

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def unescape(text, allowed):
    out, i = "", 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            check(i + 1 < len(text) and text[i + 1] in allowed, "bad escape in %r" % text)
            out += {"\\": "\\", "n": "\n", '"': '"'}[text[i + 1]]
            i += 2
        else:
            out += c
            i += 1
    return out


def parse_labels(text, where):
    """'{a="x",b="y"}' at the start of text -> (dict, rest)."""
    labels, i = {}, 1
    while text[i] != "}":
        m = re.match(r"([^=]*)=\"", text[i:])
        check(m, "%s: bad label at %r" % (where, text[i:]))
        name = m.group(1)
        check(LABEL_NAME.match(name) and not name.startswith("__"), "%s: label name %r" % (where, name))
        check(name not in labels, "%s: label %r twice" % (where, name))
        i += m.end()
        j = i
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
            check(j < len(text), "%s: unterminated label value" % where)
        labels[name] = unescape(text[i:j], '\\"n')
        i = j + 1
        check(text[i] in ",}", "%s: after a label value: %r" % (where, text[i:]))
        if text[i] == ",":
            i += 1
    return labels, text[i + 1:]


def parse_value(text, where):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    check(re.match(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", text), "%s: value %r" % (where, text))
    return float(text)


def parse_exposition(text):
    """Every line a comment (# HELP / # TYPE, each once per family and before
    its samples) or a sample of a declared family, valid metric and label
    names, only the allowed escapes, each series once, a family's samples
    together, a line feed at the end. {(name, frozenset(labels)): value}."""
    check(text.endswith("\n"), "the exposition must end with a line feed")
    meta, series, finished, current = {}, {}, set(), None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line)
        check(line and line == line.strip(), "%s: empty or padded" % where)
        if line.startswith("#"):
            m = re.match(r"# (HELP|TYPE) (\S+) (.*)$", line)
            if not m:
                continue
            kind, name, rest = m.groups()
            check(METRIC_NAME.match(name), "%s: metric name" % where)
            fam = meta.setdefault(name, {})
            check(kind not in fam, "%s: a second %s" % (where, kind))
            check(name not in finished and name != current, "%s: %s after the family's samples" % (where, kind))
            if kind == "TYPE":
                check(rest in TYPES, "%s: type" % where)
            else:
                unescape(rest, "\\n")
            fam[kind] = rest
            continue
        m = re.match(r"([^{ ]+)", line)
        name = m.group(1)
        check(METRIC_NAME.match(name), "%s: metric name" % where)
        check(name in meta and "TYPE" in meta[name] and "HELP" in meta[name], "%s: no HELP/TYPE before" % where)
        check(meta[name]["TYPE"] != "counter" or name.endswith("_total"), "%s: a counter without _total" % where)
        rest = line[len(name):]
        labels = {}
        if rest.startswith("{"):
            labels, rest = parse_labels(rest, where)
        parts = rest.split(" ")
        check(len(parts) in (2, 3) and parts[0] == "", "%s: after the labels: %r" % (where, rest))
        val = parse_value(parts[1], where)
        if len(parts) == 3:
            check(re.match(r"-?\d+$", parts[2]), "%s: timestamp" % where)
        if name != current:
            check(name not in finished, "%s: the family %s's samples are not together" % (where, name))
            if current:
                finished.add(current)
            current = name
        key = (name, frozenset(labels.items()))
        check(key not in series, "%s: a series twice" % where)
        series[key] = val
    return series


def value(series, name, labels):
    key = (name, frozenset(labels.items()))
    check(key in series, "no series %s%r" % (name, labels))
    return series[key]


def mode_metrics(env):
    info = target_info()
    odd = 'a "quoted" \\path\nnext é'
    leaky = serve(env, lambda pid: realistic(pid, info))
    weird = serve(env, lambda pid: process(pid, [thread(1, "running")], command=odd, uptime=3.25,
                                           created=7, exited=2, peak=5))
    down = env.mock({"*": {"version": 1, "error": "permission denied: nope"}})
    p = env.cli("metrics")
    expect_rc(p, 0, "metrics with a process that cannot be asked")
    series = parse_exposition(p.stdout)
    a = {"pid": str(leaky.pid), "command": "./app --serve"}
    for verdict, n in (("running", 1), ("waiting", 1), ("suspect", 1), ("leaked", 5), ("deadlocked", 2)):
        check(value(series, "leakwatch_threads", dict(a, verdict=verdict)) == n, "threads{%s}" % verdict)
    for kind, n in (("cond", 5), ("sem", 1), ("fd-read", 1), ("mutex", 2), ("join", 0), ("syscall", 0),
                    ("other", 0)):
        check(value(series, "leakwatch_waits", dict(a, kind=kind)) == n, "waits{%s}" % kind)
    for name, v in (("leakwatch_up", 1), ("leakwatch_threads_created_total", 12),
                    ("leakwatch_threads_exited_total", 3), ("leakwatch_threads_peak", 11),
                    ("leakwatch_oldest_stuck_wait_seconds", 41.0), ("leakwatch_growth_alarm", 0),
                    ("leakwatch_uptime_seconds", 75.5), ("leakwatch_threads_suppressed", 0)):
        check(value(series, name, a) == v, "%s = %r, wanted %r" % (name, value(series, name, a), v))
    b = {"pid": str(weird.pid), "command": odd}
    check(value(series, "leakwatch_up", b) == 1 and value(series, "leakwatch_uptime_seconds", b) == 3.25
          and value(series, "leakwatch_oldest_stuck_wait_seconds", b) == 0, "the oddly named process")
    check('command="a \\"quoted\\" \\\\path\\nnext é"' in p.stdout, "label escaping:\n" + p.stdout)
    with open("/proc/%d/cmdline" % down.pid, "rb") as f:   # (the mock's listener process)
        down_command = f.read().replace(b"\0", b" ").decode().rstrip(" ")[:256]
    c = {"pid": str(down.pid), "command": down_command}
    check(value(series, "leakwatch_up", c) == 0, "a process that could not be asked is up 0")
    check(not any(k[0] != "leakwatch_up" and dict(k[1]).get("pid") == str(down.pid) for k in series),
          "a down process has only leakwatch_up")
    check("leakwatch: pid %d: permission denied: nope" % down.pid in p.stderr, "stderr: %r" % p.stderr)
    for family, kind in (("leakwatch_threads_created_total", "counter"), ("leakwatch_up", "gauge"),
                         ("leakwatch_waits", "gauge")):
        check("# TYPE %s %s\n" % (family, kind) in p.stdout, "TYPE of %s" % family)

    p = env.cli("metrics", leaky.pid)
    expect_rc(p, 0, "metrics PID")
    one = parse_exposition(p.stdout)
    check({dict(k[1])["pid"] for k in one} == {str(leaky.pid)}, "metrics PID shows others")
    check(len(one) == 1 + 5 + 19 + 7, "series of one process: %d" % len(one))
    p = env.cli("metrics", down.pid)
    expect_rc(p, 2, "metrics PID of a process that cannot be asked")
    p = env.cli("metrics", test_cli.dead_pid())
    expect_rc(p, 2, "metrics PID of a dead process")
    check(p.stdout == "", "output for a dead pid: %r" % p.stdout)

    # the parser is strict: it must reject what the format forbids
    bad = ['# TYPE a gauge\n# HELP a x\na{b="1"} 1\na{b="1"} 2\n',          # a series twice
           'a 1\n',                                                      # no TYPE
           '# HELP a x\n# TYPE a gauge\na{b="\\q"} 1\n',                 # a bad escape
           '# HELP a x\n# TYPE a gauge\na{1b="x"} 1\n',                 # a bad label name
           '# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\nb 1\na 2\n',   # samples apart
           '# HELP a x\n# TYPE a gauge\na 1\n# TYPE a gauge\n',           # TYPE after samples
           '# HELP a x\n# TYPE a counter\na 1\n',                         # a counter without _total
           '# HELP a x\n# TYPE a gauge\na one\n', '# HELP a x\n# TYPE a gauge\na 1']
    for text in bad:
        try:
            parse_exposition(text)
        except Failure:
            continue
        raise Failure("the exposition parser accepted %r" % text)
    check(math.isinf(parse_exposition('# HELP a x\n# TYPE a gauge\na +Inf\n')[("a", frozenset())]), "+Inf")


# ---- history and growth ----

BLOCKS = "▁▂▃▄▅▆▇█"


def spark(samples, marks=BLOCKS):
    lo, hi = min(samples), max(samples)
    return "".join(marks[(v - lo) * 7 // (hi - lo) if hi > lo else 0] for v in samples)


def mode_history(env):
    climbing = list(range(1, 33))
    flat = [4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    up = serve(env, lambda pid: process(pid, [thread(1, "running")],
                                        history={"interval_ms": 1000, "span": 32.4, "threads": climbing}))
    level = serve(env, lambda pid: process(pid, [thread(1, "running")],
                                           history={"interval_ms": 2000, "span": 24.0, "threads": flat}))
    p = env.cli("status", up.pid, env={"LC_ALL": "C.UTF-8"})
    expect_rc(p, 0, "status of a climbing process (the alarm is not a leak: exit 0)")
    alarm = ("the thread count kept climbing and never came back down: the lowest count in each quarter of the "
             "last 32s rose every time (1, 9, 17, 25), +24 threads, above the first quarter's peak of 8")
    lines = p.stdout.splitlines()
    check(lines[3] == "history: %s 1 to 32 threads over 32s (a mark per 1s)" % spark(climbing),
          "history line %r" % lines[3])
    check(lines[4] == "growth alarm: ON: " + alarm, "growth line %r" % lines[4])
    p = env.cli("status", up.pid, env={"LC_ALL": "C"})
    check(p.stdout.splitlines()[3] == "history: %s 1 to 32 threads over 32s (a mark per 1s)"
          % spark(climbing, ".:-=+*#@"), "ASCII sparkline: %r" % p.stdout)
    doc = json.loads(env.cli("status", up.pid, "--json").stdout)
    check(doc["growth"] == {"alarm": True, "reason": alarm} and doc["history"]["threads"] == climbing,
          "status --json growth: %r" % doc.get("growth"))
    doc = json.loads(env.cli("threads", up.pid, "--json").stdout)
    check(doc["growth"]["alarm"] is True, "threads --json growth: %r" % doc.get("growth"))
    rows = [q for q in json.loads(env.cli("status", "--json").stdout)["processes"] if q["pid"] == up.pid]
    check(rows and rows[0]["growth"]["alarm"] is True, "status --json (all) growth: %r" % rows)

    p = env.cli("status", level.pid, env={"LC_ALL": "C.UTF-8"})
    lines = p.stdout.splitlines()
    check(lines[3] == "history: %s 4 to 9 threads over 24s (a mark per 2s)" % spark(flat), "flat: %r" % lines[3])
    check(lines[4] == "growth alarm: off: the lowest count in each quarter of the last 24s was 4, 9, 9, 9: it did "
          "not rise every time", "flat growth line: %r" % lines[4])
    many = serve(env, lambda pid: process(pid, [], history={"interval_ms": 1000, "threads": list(range(130))}))
    line = env.cli("status", many.pid, env={"LC_ALL": "C"}).stdout.splitlines()[3]
    check(re.match(r"history: [.:=+*#@-]{44} 0 to 129 threads over 2m10s \(a mark per 3s\)$", line),
          "130 samples in 44 marks of 3 (at most 60): %r" % line)
    none = serve(env, lambda pid: process(pid, []))
    check(env.cli("status", none.pid).stdout.splitlines()[3] == "history: no samples yet", "no history")
    rc, out = test_cli.run_on_pty(env, ["status", up.pid], {})
    check("growth alarm: \x1b[1;31mON\x1b[0m: " in out, "the alarm is not red on a terminal: %r" % out)


# ---- watch ----

def watch_replies(pid, info):
    """realistic() first; from the second reply on, two more leaked workers
    (the group grows by 2) and a new leaked group on a semaphore."""
    calls = {"n": 0}

    def reply(_):
        calls["n"] += 1
        r = realistic(pid, info)
        if calls["n"] > 1:
            w = r["threads"][1]
            r["threads"] += [dict(w, tid=106), dict(w, tid=107),
                             thread(160, "leaked", "sem", 3.0, 4, None, name="pump2")]
            r["summary"]["leaked"] += 3
            r["summary"]["threads"] += 3
        return r
    return reply


def watch_mock(env):
    info = target_info()
    m = env.mock({})
    m.replies["threads"] = watch_replies(m.pid, info)
    # (as a real preload does: a `status` of every process, which another
    # test may run meanwhile, asks this one too)
    m.replies["status"] = lambda _: test_cli.status_of(realistic(m.pid, info))
    return m


def mode_watch_plain(env):
    m = watch_mock(env)
    p = env.cli("watch", m.pid, "--count", "2", "--interval", "0.2")
    expect_rc(p, 0, "watch --count 2")
    check("\x1b" not in p.stdout, "escape codes without a terminal")
    frames = re.split(r"\n\n(?=leakwatch watch \d)", p.stdout)
    check(len(frames) == 2, "two summaries separated by a blank line: %r" % p.stdout)
    pump = "lw::detail::pump()" if "lw::detail::pump()" in p.stdout else "_ZN2lw6detail4pumpEv"
    for i, frame in enumerate(frames):
        lines = frame.strip("\n").splitlines()
        check(re.match(r"leakwatch watch %d, every 0.2s, \d\d:\d\d:\d\d$" % m.pid, lines[0]), "title %r" % lines[0])
        check(lines[1] == "pid %d: ./app --serve" % m.pid, "summary %r" % lines[1])
        groups = lines[lines.index([x for x in lines if x.startswith("stuck groups: ")][0]):]
        groups = [re.sub(r"e\.g\. tid 10\d", "e.g. tid 101", x) for x in groups]   # any member of the group
        want = ['    2 deadlocked, mutex, parked 40.0s to 41.0s: made in cli_spawn  (e.g. tid 130 "lock-a")',
                '    5 leaked, cond, parked 10.0s to 14.0s: waits in cli_wait_for_result, made in cli_spawn  '
                '(e.g. tid 101 "worker")',
                '    1 suspect, fd-read, parked 1m35s: waits in cli_worker  (tid 120 "reader")']
        if i == 0:
            check(groups == ["stuck groups: 3"] + want, "first summary's groups:\n%s" % "\n".join(groups))
        else:
            want[1] = want[1].replace("    5 leaked, cond,", "    7 leaked (+2), cond,")
            new = 'new 1 leaked, sem, parked 3.0s: waits in %s  (tid 160 "pump2")' % pump
            check(groups == ["stuck groups: 4"] + want[:2] + [new] + want[2:],
                  "second summary's groups:\n%s" % "\n".join(groups))
    p = env.cli("watch", test_cli.dead_pid())
    expect_rc(p, 2, "watch of a dead pid")
    check("no such process" in p.stderr and p.stdout == "", "dead pid: %r" % p.stderr)


class Pty:
    """leakwatch watch on a pseudo-terminal (stdin and stdout), 100x40."""

    def __init__(self, env, args):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        e = dict(os.environ, LEAKWATCH_DIR=env.dir, LC_ALL="C.UTF-8")
        e.pop("NO_COLOR", None)
        self.p = subprocess.Popen([CLI] + [str(a) for a in args], stdin=self.slave, stdout=self.slave,
                                  stderr=subprocess.PIPE, env=e, text=True)
        self.out = b""

    def read_until(self, pattern, timeout=20):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.out):
            left = deadline - time.monotonic()
            check(left > 0, "no %r on the terminal within %ds: %r" % (pattern, timeout, self.out[-2000:]))
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break

    def finish(self, timeout=10):
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                self.out += os.read(self.master, 65536)
        check(self.p.poll() is not None, "watch did not quit")
        while select.select([self.master], [], [], 0.1)[0]:
            chunk = os.read(self.master, 65536)
            if not chunk:
                break
            self.out += chunk
        self.after = termios.tcgetattr(self.slave)
        self.err = self.p.stderr.read()
        return self.p.returncode

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stderr.close()
        os.close(self.master)
        os.close(self.slave)


def check_restored(t, what):
    text = t.out.decode(errors="replace")
    check(text.startswith("\x1b[?1049h\x1b[?25l"), "%s: the alternate screen was not entered: %r" % (what, text[:40]))
    check(text.endswith("\x1b[?25h\x1b[?1049l"), "%s: the screen and cursor were not restored: %r"
          % (what, text[-80:]))
    check(t.after == t.before, "%s: the terminal modes were not restored:\n%r\n%r" % (what, t.before, t.after))


def mode_watch_pty(env):
    for key, what in ((b"q", "q"), (b"\x03", "Ctrl-C")):
        m = watch_mock(env)
        t = Pty(env, ["watch", m.pid, "--interval", "0.3"])
        try:
            t.read_until(rb"stuck groups: 4(\r\n[^\r\n]*){4}\r\n")   # the second summary, to its end
            during = termios.tcgetattr(t.slave)
            check(during[3] & (termios.ICANON | termios.ECHO | termios.ISIG) == 0,
                  "not in raw mode while watching: lflag %#x" % during[3])
            text = t.out.decode(errors="replace")
            check(text.count("\x1b[H\x1b[2J") >= 2, "not redrawn in place: %r" % text[:300])
            check("\x1b[1;7mnew\x1b[0m 1 leaked, sem" in text, "the new group is not highlighted: %r" % text[-1500:])
            check("7 leaked (+2), cond" in text and "(q quits)" in text, "second summary: %r" % text[-1500:])
            check(re.search(r"leakwatch watch %d, every 0.3s, \d\d:\d\d:\d\d  \(q quits\)" % m.pid, text),
                  "title: %r" % text[:200])
            os.write(t.master, key)
            rc = t.finish()
            check(rc == 0, "watch ended with %d after %s; stderr %r" % (rc, what, t.err))
            check_restored(t, what)
        finally:
            t.close()


def mode_watch_gone(env):
    m = watch_mock(env)
    t = Pty(env, ["watch", m.pid, "--interval", "0.2"])
    try:
        t.read_until(rb"stuck groups: ")
        m.kill_process()
        m.close()
        env.mocks.remove(m)
        rc = t.finish()
        check(rc == 2, "watch of a process that went away ended with %d" % rc)
        check(t.err == "leakwatch watch: pid %d went away (no such process: %d)\n" % (m.pid, m.pid),
              "message: %r" % t.err)
        check_restored(t, "a process that went away")
    finally:
        t.close()


MODES = {"help": mode_help, "suppress": mode_suppress, "metrics": mode_metrics, "history": mode_history,
         "watch-plain": mode_watch_plain, "watch-pty": mode_watch_pty, "watch-gone": mode_watch_gone}


def main():
    return test_cli.run_modes(MODES, "test_views.py")


if __name__ == "__main__":
    sys.exit(main())
