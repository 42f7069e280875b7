#!/usr/bin/env python3
"""One blocking fd-style call (argv[1], a mode of fixtures/fdpark; the *_chk
modes run fixtures/fdpark_fortified): a thread parked in it is reported
through the real socket and CLI with the right wait kind, direction, class
(in-process, external or timed), fd, timeout, and channel: its type, /proc
link name, inode, whether leakwatch saw it made (tracked), its creator (the
main thread, alive), the other end's fds in this process and in other
processes, and the threads that used the other end; for poll-style waits the
set of fds, each with its direction and channel. Hooked waits have verdict
"waiting" (main lives and could use any fd, and made every channel: nothing
is leaked),
state "parked", source "hook", and a wait stack naming park_on_<mode>. fgets
(stdio reads through glibc's internal read, which no hook sees) must still be
reported, from /proc; nonblocking (a spinning EAGAIN/poll(0) loop) must never
be reported parked on its fd.

Every difference from the expected report is listed in the failure message,
not only the first one. The fixture's FIFO/socket directory (under a private
TMPDIR), POSIX queue (/lw-fdpark-<pid>), System V queue and child process are
removed whatever happens.

`test_fdpark.py --modes MODE...` instead checks that the modes meson runs, the
modes this script knows and the modes the two fixture builds implement are
the same, and (with nm) that the fortified build imports the __*_chk symbols
its modes are about and none of the plain ones."""
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from lwtest import SLOW, Process, TestFailure, check, fixture, functions, run_test, thread_by_tid, until

HOUR = 3600.0
ANY = "<not checked>"   # an expectation that is not asserted

# mode: (kind, direction, channel type, class, timed)
#   direction: "read" | "write" | None (must be null) | ANY
#   channel type: the wait's channel.type; None: the channel must be null
#   (poll-style waits: the top-level channel is not checked, the set in
#   "fds" is); ANY: not checked
EXPECT = {
    "read": ("fd-read", "read", "pipe", "in-process", False),
    "readv": ("fd-read", "read", "pipe", "in-process", False),
    "write": ("fd-write", "write", "pipe", "in-process", False),
    "writev": ("fd-write", "write", "pipe", "in-process", False),
    "recv": ("fd-read", "read", "socketpair", "in-process", False),
    "recvfrom": ("fd-read", "read", "socketpair", "in-process", False),
    "recvmsg": ("fd-read", "read", "socketpair", "in-process", False),
    "send": ("fd-write", "write", "socketpair", "in-process", False),
    "sendto": ("fd-write", "write", "socketpair", "in-process", False),
    "sendmsg": ("fd-write", "write", "socketpair", "in-process", False),
    "eventfd_read": ("fd-read", "read", "eventfd", "in-process", False),
    "eventfd_write": ("fd-write", "write", "eventfd", "in-process", False),
    "fifo_read": ("fd-read", "read", "fifo", "external", False),
    "mq_receive": ("mq-receive", "read", "mq", "external", False),
    "mq_timedreceive": ("mq-receive", "read", "mq", "timed", True),
    "mq_send": ("mq-send", "write", "mq", "external", False),
    "mq_timedsend": ("mq-send", "write", "mq", "timed", True),
    "msgrcv": ("mq-receive", "read", None, "external", False),
    "msgsnd": ("mq-send", "write", None, "external", False),
    "poll": ("poll", None, None, "in-process", False),
    "poll_timed": ("poll", None, None, "timed", True),
    "ppoll": ("poll", None, None, "in-process", False),
    "select": ("poll", None, None, "in-process", False),
    "pselect": ("poll", None, None, "in-process", False),
    "epoll_wait": ("poll", None, ANY, "in-process", False),
    "epoll_pwait": ("poll", None, ANY, "in-process", False),
    "epoll_pwait2": ("poll", None, ANY, "in-process", False),
    "accept": ("socket", ANY, "socket", "external", False),
    "accept4": ("socket", ANY, "socket", "external", False),
    "connect": ("socket", ANY, "socket", "external", False),
    "sigwait": ("signal", None, None, "external", False),
    "sigwaitinfo": ("signal", None, None, "external", False),
    "sigtimedwait": ("signal", None, None, "timed", True),
    "pause": ("signal", None, None, "external", False),
    "sigsuspend": ("signal", None, None, "external", False),
    "wait": ("child", None, None, "external", False),
    "waitpid": ("child", None, None, "external", False),
    "waitid": ("child", None, None, "external", False),
    "wait3": ("child", None, None, "external", False),
    "wait4": ("child", None, None, "external", False),
    "fork_shared": ("fd-read", "read", "pipe", "external", False),
    # the bookkeeping: a write end moved by dup2 (other end: fd 40 only), a
    # child that keeps the pipe across exec, and one that loses it (O_CLOEXEC)
    "dup_moved": ("fd-read", "read", "pipe", "in-process", False),
    "exec_inherits": ("fd-read", "read", "pipe", "external", False),
    "cloexec_exec": ("fd-read", "read", "pipe", "in-process", False),
    # seen only through /proc: kind syscall, source proc (checked apart)
    "fgets": ("syscall", "read", "pipe", ANY, False),
    # never parked (checked apart)
    "nonblocking": (None, None, None, None, False),
    # fdpark_fortified: like their plain twins
    "read_chk": ("fd-read", "read", "pipe", "in-process", False),
    "recv_chk": ("fd-read", "read", "socketpair", "in-process", False),
    "recvfrom_chk": ("fd-read", "read", "socketpair", "in-process", False),
    "poll_chk": ("poll", None, None, "in-process", False),
    "ppoll_chk": ("poll", None, None, "in-process", False),
}
UNHOOKED = ("fgets", "nonblocking")
# Channels leakwatch sees being made (pipe, socketpair, eventfd, mq_open, mkfifo), always by main here.
TRACKED = ("pipe", "socketpair", "eventfd", "mq", "fifo")
# Channels whose "other end" is the object itself (other_end.fds then holds the waited fd).
SELF_OTHER_END = ("eventfd", "mq")
# The __*_chk symbol each fortified mode is about, and the plain functions the fortified build must not import.
CHK_SYMBOLS = {"read_chk": "__read_chk", "recv_chk": "__recv_chk", "recvfrom_chk": "__recvfrom_chk",
               "poll_chk": "__poll_chk", "ppoll_chk": "__ppoll_chk"}
PLAIN_SYMBOLS = ("read", "recv", "recvfrom", "poll", "ppoll")


def fixture_of(mode):
    return "fdpark_fortified" if mode.endswith("_chk") else "fdpark"


def listed(name):
    return subprocess.run([fixture(name), "list"], capture_output=True, text=True, check=True).stdout.split()


def imports(name):
    """The undefined dynamic symbols of a fixture, without versions."""
    nm = shutil.which("nm")
    check(nm is not None, "nm (binutils) is needed to check the fortified fixture's imports")
    out = subprocess.run([nm, "-D", "--undefined-only", fixture(name)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.split()}


def check_modes(meson_modes):
    plain, fortified = listed("fdpark"), listed("fdpark_fortified")
    check(not [m for m in plain if m.endswith("_chk")], "fdpark lists fortified modes: %r" % plain)
    check(all(m.endswith("_chk") for m in fortified), "fdpark_fortified lists plain modes: %r" % fortified)
    both = plain + fortified
    check(sorted(both) == sorted(EXPECT), "the fixtures' modes and test_fdpark.py's differ in %r (only in the fixtures: %r)"
          % (sorted(set(both) ^ set(EXPECT)), sorted(set(both) - set(EXPECT))))
    check(sorted(meson_modes) == sorted(EXPECT), "tests/meson.build's fd_modes and test_fdpark.py's differ in %r "
          "(only in meson: %r; a duplicate in meson: %r)" % (sorted(set(meson_modes) ^ set(EXPECT)),
          sorted(set(meson_modes) - set(EXPECT)), sorted({m for m in meson_modes if meson_modes.count(m) > 1})))
    check(sorted(CHK_SYMBOLS) == sorted(fortified), "CHK_SYMBOLS %r != fortified modes %r" % (sorted(CHK_SYMBOLS), fortified))
    # The fortified build must really call glibc's checking entry points
    # (the headers call the plain function when the length is a constant
    # they can prove safe), and the plain build must not.
    fimp, pimp = imports("fdpark_fortified"), imports("fdpark")
    missing = sorted(s for s in CHK_SYMBOLS.values() if s not in fimp)
    check(not missing, "fdpark_fortified does not import %r (it imports %r)" % (missing, sorted(fimp)))
    plain_in_fortified = sorted(s for s in PLAIN_SYMBOLS if s in fimp)
    check(not plain_in_fortified, "fdpark_fortified imports the plain %r: some call is not fortified" % plain_in_fortified)
    chk_in_plain = sorted(s for s in CHK_SYMBOLS.values() if s in pimp)
    check(not chk_in_plain, "the plain fdpark imports %r" % chk_in_plain)


class _Missing:
    def __repr__(self):
        return "<missing>"


MISSING = _Missing()


def get(obj, key):
    return obj.get(key, MISSING) if isinstance(obj, dict) else MISSING


class Diffs:
    """Every difference found, for one failure message."""

    def __init__(self):
        self.items = []

    def want(self, cond, message):
        if not cond:
            self.items.append(message)
        return cond

    def eq(self, what, got, wanted):
        return self.want(got == wanted and type(got) is type(wanted), "%s %r, wanted %r" % (what, got, wanted))


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def intlist(text):
    return [] if text in (None, "-") else [int(x) for x in text.split(",")]


def ready_fd(ready, key="fd"):
    fd = int(ready[key])
    return None if fd < 0 else fd


def check_channel(d, what, ch, ctype, ready, pid, fd, inode, link, other):
    """One channel object against what the fixture says about it."""
    if not d.want(isinstance(ch, dict), "%s %r, wanted a %s channel" % (what, ch, ctype)):
        return
    d.eq(what + ".type", get(ch, "type"), ctype)
    if inode:
        d.eq(what + ".inode", get(ch, "inode"), inode)
    if link not in (None, "-"):
        d.eq(what + ".name", get(ch, "name"), link)
    if ctype in TRACKED:
        d.eq(what + ".tracked", get(ch, "tracked"), True)
        creator = get(ch, "creator")
        if d.want(isinstance(creator, dict), "%s.creator %r, wanted the main thread %d (alive)" % (what, creator, pid)):
            d.eq(what + ".creator.tid", get(creator, "tid"), pid)
            d.eq(what + ".creator.exited", get(creator, "exited"), False)
    other_end = get(ch, "other_end")
    if not d.want(isinstance(other_end, dict), "%s.other_end %r, wanted an object" % (what, other_end)):
        return
    fds, procs = get(other_end, "fds"), get(other_end, "processes")
    d.want(isinstance(fds, list), "%s.other_end.fds %r, wanted a list" % (what, fds))
    d.want(isinstance(procs, list), "%s.other_end.processes %r, wanted a list" % (what, procs))
    if isinstance(fds, list):
        if other is not None:
            d.want(other in fds, "%s.other_end.fds %r lacks fd %d, the other end" % (what, fds, other))
        if ctype in SELF_OTHER_END and fd is not None:
            d.want(fd in fds, "%s.other_end.fds %r lacks fd %d (the %s itself)" % (what, fds, fd, ctype))
    if isinstance(fds, list) and ready.get("mode") == "dup_moved":
        d.want(fds == [other], "%s.other_end.fds %r, wanted exactly [%d] (the write end moved by dup2)" % (what, fds, other))
    if isinstance(procs, list) and ready.get("mode") == "cloexec_exec":
        child = int(ready["child"])
        d.want(all(not isinstance(x, dict) or x.get("pid") != child for x in procs),
               "%s.other_end.processes %r lists the child %d, which lost the close-on-exec pipe at exec" % (what, procs, child))
    elif isinstance(procs, list) and int(ready["child"]) and ctype == "pipe":
        child = int(ready["child"])
        d.want(any(isinstance(x, dict) and x.get("pid") == child for x in procs),
               "%s.other_end.processes %r lacks the child %d that holds the write end" % (what, procs, child))
    if "helper" in ready:
        helper = int(ready["helper"])
        peers = get(ch, "peers")
        if d.want(isinstance(peers, list), "%s.peers %r, wanted a list" % (what, peers)):
            mine = [x for x in peers if isinstance(x, dict) and x.get("tid") == helper]
            if d.want(mine, "%s.peers %r lacks the writer thread %d (exited)" % (what, peers, helper)):
                d.eq("%s.peers[tid %d].exited" % (what, helper), get(mine[0], "exited"), True)
                d.want(number(get(mine[0], "idle")) and get(mine[0], "idle") >= 0,
                       "%s.peers[tid %d].idle %r, wanted seconds" % (what, helper, get(mine[0], "idle")))


def check_poll_set(d, w, ready, pid):
    """The set a poll-style wait watches: one entry per fd, in fd order."""
    want_fds, want_inodes = intlist(ready["fds"]), intlist(ready["inodes"])
    entries = get(w, "fds")
    if not d.want(isinstance(entries, list), "wait.fds %r, wanted a list of %r" % (entries, want_fds)):
        return
    got = sorted((e for e in entries if isinstance(e, dict)), key=lambda e: e.get("fd") if isinstance(e.get("fd"), int) else -1)
    got_fds = [e.get("fd") for e in got]
    if not d.want(got_fds == want_fds and len(got) == len(entries),
                  "wait.fds lists fds %r, wanted %r (entries %r)" % ([get(e, "fd") for e in entries], want_fds, entries)):
        return
    other = ready_fd(ready, "other")
    for e, fd, inode in zip(got, want_fds, want_inodes):
        d.eq("wait.fds[fd %d].direction" % fd, get(e, "direction"), ready["direction"])
        check_channel(d, "wait.fds[fd %d].channel" % fd, get(e, "channel"), "pipe", ready, pid, fd, inode, None,
                      other if len(want_fds) == 1 else None)


def check_thread(mode, ready, t, pid):
    """Every difference between the report of the parked thread and the
    expectation, as a list of sentences."""
    kind, direction, ctype, klass, timed = EXPECT[mode]
    d = Diffs()
    if not d.want(t is not None, "thread not reported"):
        return d.items
    d.eq("name", t.get("name"), ready["name"])
    d.eq("state", t.get("state"), "parked")
    w = t.get("wait")
    if not d.want(isinstance(w, dict), "wait %r, wanted a %s wait" % (w, kind)):
        return d.items
    fd, other = ready_fd(ready), ready_fd(ready, "other")
    inode, link = int(ready["inode"]), ready["link"]
    d.eq("kind", get(w, "kind"), kind)
    d.eq("fd", get(w, "fd"), fd)
    if direction is not ANY:
        d.eq("direction", get(w, "direction"), direction)
    d.eq("timeout", get(w, "timeout"), timed)
    if timed:
        rem = get(w, "remaining")
        d.want(number(rem) and HOUR - 120 < rem <= HOUR + 1, "remaining %r, wanted about %.0f" % (rem, HOUR))
    else:
        d.eq("remaining", get(w, "remaining"), None)
    sec = get(w, "seconds")
    d.want(number(sec) and 0 <= sec < 600, "seconds parked %r" % (sec,))
    if mode == "fgets":
        # No hook sees stdio's internal read: /proc must.
        d.eq("source", get(w, "source"), "proc")
        d.eq("syscall", get(w, "syscall"), "read")
        d.want(t.get("verdict") not in ("leaked", "deadlocked"), "verdict %r: nothing is leaked here (reason %r)"
               % (t.get("verdict"), t.get("reason")))
        ch = get(w, "channel")
        if d.want(isinstance(ch, dict), "channel %r, wanted the pipe, from /proc" % (ch,)):
            d.eq("channel.type", get(ch, "type"), "pipe")
            d.eq("channel.inode", get(ch, "inode"), inode)
            d.eq("channel.name", get(ch, "name"), link)
        return d.items
    d.eq("verdict", t.get("verdict"), "waiting")
    if t.get("verdict") != "waiting":
        d.items[-1] += " (reason %r)" % t.get("reason")
    d.eq("source", get(w, "source"), "hook")
    d.eq("class", get(w, "class"), klass)
    ch = get(w, "channel")
    if kind == "poll":
        check_poll_set(d, w, ready, pid)
        if fd is None:
            d.eq("channel", ch, None)
        elif isinstance(ch, dict) and inode:   # epoll: the set's own fd
            d.eq("channel.inode", get(ch, "inode"), inode)
    else:
        d.eq("fds", get(w, "fds"), None)
        if ctype is None:
            d.eq("channel", ch, None)
        elif ctype is not ANY:
            check_channel(d, "channel", ch, ctype, ready, pid, fd, inode, link, other)
    if mode == "fifo_read" and isinstance(ch, dict):
        path = os.path.realpath(ready["path"])
        d.want(get(ch, "name") == path, "channel.name %r, wanted the FIFO's path %r" % (get(ch, "name"), path))
    want = "park_on_" + mode
    d.want(want in functions(t.get("wait_stack")), "wait stack %r lacks %s" % (functions(t.get("wait_stack")), want))
    return d.items


def watch_nonblocking(p, tid):
    """Over ~2 s of queries the spinning thread must never be parked on its fd."""
    end = time.time() + 2 * SLOW
    samples = 0
    while time.time() < end or samples < 3:
        t = thread_by_tid(p.threads(), tid)
        check(t is not None, "nonblocking: thread %d not reported" % tid)
        w = t.get("wait")
        check(t.get("state") != "parked" or not isinstance(w, dict) or w.get("kind") not in ("fd-read", "poll"),
              "nonblocking (tid %d): a thread spinning over EAGAIN reads and zero-timeout polls reported parked: "
              "state %r, wait %r, verdict %r" % (tid, t.get("state"), w, t.get("verdict")))
        samples += 1
        time.sleep(0.1)


def mq_unlink(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mq_unlink(name.encode()) != 0 and ctypes.get_errno() != errno.ENOENT:
        print("warning: mq_unlink(%s): %s" % (name, os.strerror(ctypes.get_errno())), file=sys.stderr)
    dev = "/dev/mqueue/" + name.lstrip("/")
    if os.path.exists(dev):
        os.unlink(dev)


def msg_remove(msqid):
    IPC_RMID = 0
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.msgctl(ctypes.c_int(msqid), IPC_RMID, None) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.EIDRM):
        print("warning: msgctl(%d, IPC_RMID): %s" % (msqid, os.strerror(ctypes.get_errno())), file=sys.stderr)


def kill_child(pid, deadline=2.0):
    """The child dies with the fixture (PR_SET_PDEATHSIG); make sure."""
    end = time.time() + deadline * SLOW
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except OSError:
            return
        time.sleep(0.05)
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
            if b"fdpark" in cmdline or cmdline == b"sleep\x003600\x00":   # exec_inherits/cloexec_exec exec sleep
                os.kill(pid, signal.SIGKILL)
                print("warning: the fixture's child %d outlived it; killed" % pid, file=sys.stderr)
    except OSError:
        pass


def main():
    mode = sys.argv[1]
    check(mode in EXPECT, "unknown mode %r" % mode)
    kind = EXPECT[mode][0]
    tmp = tempfile.mkdtemp(prefix="lwtest-fdpark.")   # the fixture's FIFO and socket directories
    ready, pid = None, None
    try:
        with Process([fixture(fixture_of(mode)), mode], env={"TMPDIR": tmp}) as p:
            pid = p.pid
            ready = p.read_line("READY")
            ready["mode"] = mode
            tid = int(ready["tid"])
            if mode == "nonblocking":
                watch_nonblocking(p, tid)
                return
            last = {}

            def parked():
                r = p.threads()
                last["report"] = r
                t = thread_by_tid(r, tid)
                check(t is not None, "thread %d not reported: %r" % (tid, [(x["tid"], x["name"]) for x in r["threads"]]))
                w = t.get("wait") or {}
                return r if t.get("state") == "parked" and w.get("kind") == kind else None

            where = "%s (tid %d)" % (mode, tid)
            try:
                # A hooked wait is recorded on entry: it must show within ~3 s.
                report = until(parked, 3, "thread %d parked on %s" % (tid, kind))
            except TestFailure as e:
                if "report" not in last:
                    raise
                diffs = check_thread(mode, ready, thread_by_tid(last["report"], tid), pid)
                raise TestFailure("%s\n  %s, the last report differs:\n    %s\n  reported wait: %r"
                                % (e, where, "\n    ".join(diffs) or "(in nothing else)",
                                   (thread_by_tid(last["report"], tid) or {}).get("wait")))
            diffs = check_thread(mode, ready, thread_by_tid(report, tid), pid)
            check(not diffs, where + " differs:\n    " + "\n    ".join(diffs) + "\n  reported wait: %r"
                  % thread_by_tid(report, tid)["wait"])
            # The text dump names the wait kind (and for hooked waits the fixture's function) too.
            text = p.cli("threads", str(p.pid), "--all", check_rc=0).stdout
            words = [kind] + ([] if mode in UNHOOKED else ["park_on_" + mode])
            check(all(x in text for x in words), "text dump lacks %s:\n%s" % (" / ".join(words), text))
    finally:
        if pid is not None and EXPECT[mode][0] in ("mq-receive", "mq-send") and not mode.startswith("msg"):
            mq_unlink((ready or {}).get("mq") or "/lw-fdpark-%d" % pid)
        if ready and "id" in ready:
            msg_remove(int(ready["id"]))
        if ready and int(ready.get("child", 0)):
            kill_child(int(ready["child"]))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
