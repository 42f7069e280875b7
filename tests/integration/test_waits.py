#!/usr/bin/env python3
"""Every hooked wait that is a cancellation point, from one table
(fixtures/waits.c), under hostile conditions. argv[1]:

  rows    the table covers every hook that preload/interpose/hooks.def and
          preload/interpose/fdhooks.def mark as a cancellation point (plus the poll
          family and sendmsg, written out in fdhooks.c), except the calls no
          descriptor can make block on Linux, each named below with why.
  cancel  one thread parked in each call at once (each reported parked, with
          the row's wait kind, by a hook), all cancelled mid-wait while a
          client asks for the thread dump (always answered): every one
          unwinds as cancelled with its cleanup handler run, none is reported
          as a thread any more, all are counted as exited, nothing else was
          created, only the main thread is left, and the process still answers.
  signal  a thread parked in each call gets a signal whose handler sets a
          flag, without and with SA_RESTART: the outcome of every call (return
          value, errno, interrupted or restarted) is the same line for line
          bare and under the preload, and every handler ran.
Further arguments name the rows to use (all by default), to narrow a failure
down by hand."""
import os
import re
import shutil
import subprocess
import sys
import threading
from lwtest import (Process, check, fixture, parse_words, ping, private_dir, run_program, run_test, thread_by_tid,
                    until)

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "preload", "interpose")

# Hooked cancellation points that are not rows: every descriptor that can
# block (pipe, socket, FIFO, eventfd, tty) refuses a positioned read or
# write with ESPIPE, so these never park.
NEVER_BLOCK = {"pread", "pread64", "pwrite", "pwrite64", "preadv", "pwritev", "preadv64", "pwritev64", "__pread_chk",
               "__pread64_chk"}
# Written out in fdhooks.c instead of the tables, all cancellation points.
WRITTEN_OUT = {"poll", "__poll_chk", "ppoll", "__ppoll_chk", "select", "pselect", "epoll_wait", "epoll_pwait",
               "epoll_pwait2", "sendmsg"}
# A hook's name -> the fixture's row name, where they differ.
ROW_NAME = {"pthread_cond_wait": "cond_wait", "pthread_cond_timedwait": "cond_timedwait",
            "pthread_cond_clockwait": "cond_clockwait", "pthread_join": "join",
            "pthread_timedjoin_np": "timedjoin", "pthread_clockjoin_np": "clockjoin"}


def cancellation_point_hooks():
    """The names of the table rows whose last field (cancel) is 1."""
    names = set()
    for table in ("hooks.def", "fdhooks.def"):
        text = open(os.path.join(SOURCE, table)).read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for m in re.finditer(r"\b(?:WAIT|FDWAIT|XWAIT)\(\s*[\w ]+?,\s*(\w+),(.*?)\)\s*(?=\n\s*(?:WAIT|FDWAIT|XWAIT)\(|\Z)",
                             text, flags=re.S):
            if m.group(2).rstrip().rstrip(")").rstrip().endswith("1"):
                names.add(m.group(1))
    check(len(names) > 40, "parsed only %d cancellable rows from the tables: the parser is out of date" % len(names))
    return names | WRITTEN_OUT


def rows():
    return set(subprocess.run([fixture("waits"), "list"], capture_output=True, text=True, check=True).stdout.split())


def check_rows():
    listed = rows()
    hooks = cancellation_point_hooks()
    wanted = {ROW_NAME.get(h, h.lstrip("_")) for h in hooks - NEVER_BLOCK}
    check(not wanted - listed, "cancellable hooks without a row in fixtures/waits.c: %s" % sorted(wanted - listed))
    check(not listed - wanted, "rows of fixtures/waits.c that are not hooked cancellation points: %s"
          % sorted(listed - wanted))
    print("%d rows, %d hooks never parkable" % (len(listed), len(NEVER_BLOCK & hooks)))


def cancel_all(only=()):
    queues = []   # System V queues the fixture made: removed here whatever happens
    try:
        cancel_and_check(only, queues)
    finally:
        for q in queues:
            subprocess.run(["ipcrm", "-q", str(q)], capture_output=True)


def cancel_and_check(only, queues):
    with Process([fixture("waits"), "cancel"] + list(only), stdin=True) as p:
        parked_line = p.read_line("PARKED", timeout=30)
        ready = [parse_words(l) for l in p.more_output() if l.startswith("READY")]
        want = len(only) or len(rows())
        check(len(ready) == int(parked_line["n"]) == want,
              "%d READY lines, the fixture parked %s, of %d rows" % (len(ready), parked_line["n"], want))
        tids = {int(r["tid"]): r for r in ready}
        queues.extend(int(r["msqid"]) for r in ready if int(r["msqid"]) >= 0)

        def all_parked():
            rep = p.threads()
            wrong = []
            for tid, r in tids.items():
                t = thread_by_tid(rep, tid)
                w = t and t["wait"]
                if not (t and t["state"] == "parked" and w and w["kind"] == r["kind"] and w["source"] == "hook"):
                    wrong.append((r["name"], t and t["state"], w and (w["kind"], w["source"]), "want " + r["kind"]))
            check(not wrong, "not parked in a hooked wait of the row's kind: %r" % wrong)
            return rep
        before = until(all_parked, 10, "every row's thread to be reported parked")

        asked = []   # questions asked while the cancellations run: all answered whole
        stop = threading.Event()

        def ask():
            while not stop.is_set():
                asked.append(p.cli("threads", str(p.pid), "--json"))
        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        p.send("go\n")
        p.read_line("DONE", timeout=30)
        stop.set()
        asker.join(timeout=60)
        for r in asked:
            check(r.returncode == 0 and r.stdout.rstrip().endswith("}"),
                  "threads during the cancellations: exit %d %s %s" % (r.returncode, r.stdout[-200:], r.stderr))
        done = [l for l in p.lines if l.startswith("CANCELLED")]
        bad = [l.strip() for l in done if "canceled=1 cleanup=1" not in l]
        check(len(done) == len(tids) and not bad, "%d of %d cancelled; not cancelled or no cleanup: %r"
              % (len(done), len(tids), bad))
        unexpected = [l for l in p.lines if l.startswith("UNEXPECTED")]
        check(not unexpected, "calls returned instead of parking: %r" % unexpected)

        def gone():
            rep = p.threads()
            left = [(tids[t["tid"]]["name"], t["wait"]) for t in rep["threads"] if t["tid"] in tids]
            check(not left, "cancelled threads still reported: %r" % left)
            return rep
        after = until(gone, 5, "the cancelled threads to disappear")
        exited = {x["tid"] for x in after["exited_threads"]}
        check(set(tids) <= exited, "cancelled but not in exited_threads: %r"
              % sorted(tids[t]["name"] for t in set(tids) - exited))
        targets = sum(r["kind"] == "join" for r in ready)   # joined by main after the cancellations
        check(after["created"] == before["created"], "created %r, was %r" % (after["created"], before["created"]))
        check(after["exited"] - before["exited"] == len(tids) + targets,
              "exited %r -> %r, wanted +%d (%d cancelled, %d join targets)"
              % (before["exited"], after["exited"], len(tids) + targets, len(tids), targets))
        check(after["summary"]["threads"] == len(after["threads"]) == 1,
              "threads left %r, wanted only main" % [(t["tid"], t["name"], t["wait"]) for t in after["threads"]])
        check(after["summary"]["parked"] == sum(t["state"] == "parked" for t in after["threads"]),
              "summary %r" % after["summary"])
        ping(p.socket_path())
        s = p.status()
        check(s["summary"]["threads"] == 1 and s["summary"].get("leaked", 0) == 0, "status after: %r" % s["summary"])
        check(p.alive(), "the process died")
        print("%d waits cancelled" % len(tids))


def signal_all(only=()):
    tmp, lwdir = private_dir()
    try:
        bare = run_program([fixture("waits"), "signal"] + list(only), False, lwdir, timeout=60)
        pre = run_program([fixture("waits"), "signal"] + list(only), True, lwdir, timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check(bare[0] == 0 and bare[1].endswith("END\n"), "the bare run failed (exit %d): %s%s" % (bare[0], bare[1], bare[2]))
    lines = bare[1].splitlines()[:-1]
    check(len(lines) == 2 * (len(only) or len(rows())) and all(l.endswith("handled=1") for l in lines),
          "bare run: a handler did not run, or rows are missing:\n%s" % bare[1])
    if pre[:2] != bare[:2]:
        diff = ["bare:      %s\npreloaded: %s" % (b, q) for b, q in zip(bare[1].splitlines(), pre[1].splitlines()) if b != q]
        check(False, "signals mid-wait end differently under the preload (exit %d vs %d bare):\n%s\n--- preloaded:\n%s%s"
              % (pre[0], bare[0], "\n".join(diff), pre[1], pre[2][-3000:]))
    print("%d outcomes identical" % len(lines))


if __name__ == "__main__":
    test = {"rows": check_rows, "cancel": cancel_all, "signal": signal_all}[sys.argv[1]]
    run_test(lambda: test(*([sys.argv[2:]] if len(sys.argv) > 2 else [])))
