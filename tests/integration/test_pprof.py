#!/usr/bin/env python3
"""`leakwatch threads PID --pprof FILE` read back by Debian's `go tool pprof`,
on the classic leak (fixtures/classic fetch cond leak: three fetchers parked
on condvars their callers abandoned, proven leaked by rule 3; under the
sanitizer pass, where rule 3 proves nothing, still waiting).

`-raw` must show the sample type threads/count, one sample per parked thread,
the three fetchers labelled verdict, wait and thread with their tids, on one
stack (cond_send < deliver_result < fetch_worker) whose locations carry
classic.c:LINE, and mappings marked symbolized (pprof never looks for the
binaries); `-top` must count 3 threads in cond_send, and
`-tagfocus verdict=...` keep exactly them. `--pprof -` writes the same
gzip to standard output; a file that cannot be written is exit 2."""
import gzip
import os
import re
import subprocess
import tempfile
from lwtest import Process, check, fixture, run_test, sanitized, until


def go():
    for d in os.environ.get("PATH", "").split(":"):
        if os.access(os.path.join(d, "go"), os.X_OK):
            return os.path.join(d, "go")
    check(False, "go is not installed (Debian's golang-go: scripts/setup installs it)")


def pprof(*args):
    r = subprocess.run([go(), "tool", "pprof"] + list(args), capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PPROF_TMPDIR=tempfile.gettempdir()))
    check(r.returncode == 0, "go tool pprof %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout, r.stderr


def samples(raw):
    """[(location ids, {label: value})] of `pprof -raw`'s Samples section."""
    section = raw.split("Samples:", 1)[1].split("Locations", 1)[0]
    out, current = [], None
    for line in section.splitlines()[2:]:
        m = re.match(r"^\s+(\d+): ([\d ]+)$", line)
        if m:
            current = ([int(x) for x in m.group(2).split()], {})
            out.append(current)
        elif current and line.strip():
            for k, v in re.findall(r"(\w+):\[([^\]]*)\]", line):
                current[1][k] = v
    return out


def locations(raw):
    """{id: 'function file:line'} of `pprof -raw`'s Locations section."""
    section = raw.split("Locations", 1)[1].split("Mappings", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (.*?) s=0$", section, re.M)}


def main():
    verdict = "waiting" if sanitized() else "leaked"
    with Process([fixture("classic"), "fetch", "cond", "leak"]) as p:
        p.read_line("READY")

        def fetchers():
            r = p.threads()
            got = [t for t in r["threads"] if t["name"] == "fetcher" and t["verdict"] == verdict
                   and (t.get("wait") or {}).get("kind") == "cond"]   # parked where they deliver, not in their work
            check(len(got) == 3, "fetchers %r" % [(t["tid"], t["verdict"], (t.get("wait") or {}).get("kind"))
                                                  for t in r["threads"]])
            return sorted(t["tid"] for t in got)
        tids = until(fetchers, 20, "three fetchers %s" % verdict)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "threads.pb.gz")
            p.cli("threads", str(p.pid), "--pprof", path, check_rc=0)
            with open(path, "rb") as f:
                check(f.read(2) == b"\x1f\x8b", "not gzip")
            raw, err = pprof("-raw", path)
            check("threads/count" in raw and "PeriodType: threads count" in raw, "sample type: %s" % raw[:800])
            check("leakwatch threads %d:" % p.pid in raw, "the comment names the process: %s" % raw[:800])
            ss, locs = samples(raw), locations(raw)
            mine = [s for s in ss if s[1].get("thread") == "fetcher"]
            check(sorted(int(s[1].get("tid", 0)) for s in mine) == tids, "fetcher samples %r, tids %r" % (mine, tids))
            for ids, labels in mine:
                check(labels.get("verdict") == verdict and labels.get("wait") == "cond", "labels %r" % labels)
                stack = [locs.get(i, "?") for i in ids]
                names = [s.split()[0] for s in stack]
                check(names[:3] == ["cond_send", "deliver_result", "fetch_worker"], "stack %r" % stack)
                check(all(re.search(r"classic\.c:\d+$", s) for s in stack[:3]), "file:line in %r" % stack)
            check(len(ss) == len(p.threads()["threads"]), "one sample per parked thread: %d samples" % len(ss))
            check(re.search(r"^1: .*classic [0-9a-f]+ \[FN\]\[FL\]\[LN\]\[IN\]$", raw, re.M),
                  "the program's mapping, with its build-id, symbolized: %s" % raw.split("Mappings", 1)[-1])

            top, _ = pprof("-top", path)
            check(re.search(r"^\s+3\s+\S+%\s+\S+%\s+3\s+\S+%\s+cond_send$", top, re.M), "-top: %s" % top)
            focused, _ = pprof("-tagfocus", "verdict=" + verdict, "-top", path)
            wanted = sum(1 for s in ss if s[1].get("verdict") == verdict)
            check(re.search(r"accounting for %d, \S+%% of %d total" % (wanted, len(ss)), focused),
                  "-tagfocus, wanted %d of %d: %s" % (wanted, len(ss), focused))

            out = subprocess.run([os.environ["LEAKWATCH_CLI"], "threads", str(p.pid), "--pprof", "-"],
                                 capture_output=True, env=dict(os.environ, LEAKWATCH_DIR=p.dir), timeout=60)
            check(out.returncode == 0 and b"threads" in gzip.decompress(out.stdout), "--pprof -: %r" % out.stderr)
            bad = p.cli("threads", str(p.pid), "--pprof", os.path.join(tmp, "no", "such", "dir", "x.pb.gz"))
            check(bad.returncode == 2 and "cannot write" in bad.stderr, "unwritable: %d %r" % (bad.returncode, bad.stderr))


if __name__ == "__main__":
    run_test(main)
