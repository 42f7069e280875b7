#!/usr/bin/env python3
"""Nothing leakwatch writes by itself may block the program (issue 15, item
2: a LEAKWATCH_LOG naming a FIFO, or a pipe to a log collector that stalls
or fills, blocked the server thread inside the report lock, which the
program's fork() takes too: the next fork hung for good; the exit report
could hang the exit the same way).

Each case runs fixtures/logfork (a parked thread, a few ticks of the
preload, then fork() and a normal exit) and wants its FORKED line and a
clean exit well within its deadline:

  fifo-nobody   LEAKWATCH_LOG=PATH names a FIFO nobody reads: refused (one
                complaint on stderr: not a regular file)
  fifo-full     LEAKWATCH_LOG=PATH names a FIFO whose reader never reads and
                that is full: refused the same way
  fifo:-full    LEAKWATCH_LOG=fifo:PATH on that full FIFO: lines dropped
  fifo:-read    LEAKWATCH_LOG=fifo:PATH on a FIFO that is read: the lines
                arrive, whole
  stderr-full   LEAKWATCH_LOG=stderr, stderr a pipe nobody reads that is
                full, and LEAKWATCH_EXIT_REPORT naming a directory that does
                not exist (its complaint goes to that stderr at exit)
  syslog        LEAKWATCH_LOG=syslog, /dev/log (in a mount namespace of the
                program's own) a socket of this test's: the lines arrive
  syslog-full   the same socket never read, its queue full: lines dropped"""
import errno
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from lwtest import SLOW, TestFailure, check, fixture, preload_value, run_test

TICKS_S = 2.5        # the program's life before it forks: two or three ticks, each may log
                     # (times SLOW: a starved server thread ticks late)
EXIT_DEADLINE_S = 20
LINE = re.compile(r"leakwatch: pid (\d+): (\d+) threads: .* peak \d+$")


def fill(fd):
    """Write into a non-blocking fd until it takes no more."""
    chunk = b"x" * 4096
    while True:
        try:
            os.write(fd, chunk)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return
            raise


class Program:
    def __init__(self, name, tmp, env, stderr=None, wrap=None):
        self.name = name
        e = dict(os.environ, LEAKWATCH_DIR=os.path.join(tmp, "lw-" + name), LEAKWATCH_LOG_INTERVAL_MS="1000")
        e.pop("LD_PRELOAD", None)
        e.update(env)
        argv = [fixture("logfork"), "%.1f" % (TICKS_S * SLOW)]
        if wrap:
            argv = wrap(argv)
        else:
            e["LD_PRELOAD"] = preload_value()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=e)

    def finish(self):
        """Its output, once it has exited (killed if it has not within the deadline)."""
        try:
            out, err = self.proc.communicate(timeout=(TICKS_S * SLOW + EXIT_DEADLINE_S) * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise TestFailure("%s: the program hung (fork or exit blocked by leakwatch); stdout %r"
                              % (self.name, out))
        out, err = out.decode(errors="replace"), (err or b"").decode(errors="replace")
        check(self.proc.returncode == 0 and "FORKED" in out and "status=0" in out,
              "%s: exit %r, stdout %r, stderr %r" % (self.name, self.proc.returncode, out, err[-500:]))
        return out, err


def refused_once(name, err):
    complaints = [l for l in err.splitlines() if "LEAKWATCH_LOG=" in l]
    check(len(complaints) == 1 and "not a regular file" in complaints[0],
          "%s: wanted one complaint that it is not a regular file: %r" % (name, err[-1000:]))


def check_lines(name, lines, pid):
    check(lines, "%s: no log line arrived" % name)
    for line in lines:
        m = LINE.search(line)
        check(m is not None and int(m.group(1)) == pid, "%s: malformed log line %r" % (name, line))


def read_all_in_background(fd):
    box = {"data": b""}

    def run():
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            box["data"] += chunk
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return box


def in_own_dev(socket_path):
    """A wrapper running argv preloaded in a mount namespace of its own whose
    /dev (a fresh tmpfs) holds only log, a symlink to socket_path."""
    script = ('mount -t tmpfs tmpfs /dev && ln -s "$0" /dev/log && preload="$1" && shift && '
              'exec env LD_PRELOAD="$preload" "$@"')

    def wrap(argv):
        return ["unshare", "--mount", "sh", "-c", script, socket_path, preload_value()] + argv
    return wrap


def main():
    check(os.geteuid() == 0 and shutil.which("unshare"), "this test needs root and unshare(1) for /dev/log")
    tmp = tempfile.mkdtemp(prefix="lwlog.")
    keep = []
    try:
        nobody = os.path.join(tmp, "nobody.fifo")
        full = os.path.join(tmp, "full.fifo")
        read = os.path.join(tmp, "read.fifo")
        for path in (nobody, full, read):
            os.mkfifo(path, 0o600)
        # A reader that never reads, and the FIFO full.
        full_r = os.open(full, os.O_RDONLY | os.O_NONBLOCK)
        full_w = os.open(full, os.O_WRONLY | os.O_NONBLOCK)
        fill(full_w)
        keep += [full_r, full_w]
        # A FIFO that is read.
        read_r = os.open(read, os.O_RDONLY | os.O_NONBLOCK)
        keep.append(read_r)
        fcntl.fcntl(read_r, fcntl.F_SETFL, fcntl.fcntl(read_r, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        read_w = os.open(read, os.O_WRONLY)   # (ours, so the reader never sees end-of-file early)
        keep.append(read_w)
        fifo_lines = read_all_in_background(read_r)
        # A stderr pipe nobody reads, full, and blocking again for the program.
        err_r, err_w = os.pipe()
        keep += [err_r, err_w]
        os.set_blocking(err_w, False)
        fill(err_w)
        os.set_blocking(err_w, True)
        # /dev/log stand-ins: one read, one full.
        log_path, full_log_path = os.path.join(tmp, "log.sock"), os.path.join(tmp, "full-log.sock")
        log_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        log_sock.bind(log_path)
        full_log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        full_log.bind(full_log_path)
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        filler.setblocking(False)
        try:
            while True:
                filler.sendto(b"x" * 1024, full_log_path)
        except (BlockingIOError, OSError):
            pass

        programs = [
            Program("fifo-nobody", tmp, {"LEAKWATCH_LOG": nobody}),
            Program("fifo-full", tmp, {"LEAKWATCH_LOG": full}),
            Program("fifo:-full", tmp, {"LEAKWATCH_LOG": "fifo:" + full}),
            Program("fifo:-read", tmp, {"LEAKWATCH_LOG": "fifo:" + read}),
            Program("stderr-full", tmp, {"LEAKWATCH_LOG": "stderr",
                                         "LEAKWATCH_EXIT_REPORT": os.path.join(tmp, "no", "such", "dir")},
                    stderr=err_w),
            Program("syslog", tmp, {"LEAKWATCH_LOG": "syslog"}, wrap=in_own_dev(log_path)),
            Program("syslog-full", tmp, {"LEAKWATCH_LOG": "syslog"}, wrap=in_own_dev(full_log_path)),
        ]
        results = {p.name: p.finish() for p in programs}
        pids = {p.name: p.proc.pid for p in programs}

        refused_once("fifo-nobody", results["fifo-nobody"][1])
        refused_once("fifo-full", results["fifo-full"][1])
        check("LEAKWATCH_LOG" not in results["fifo:-full"][1], "fifo:-full: %r" % results["fifo:-full"][1])
        time.sleep(0.2)
        check_lines("fifo:-read", fifo_lines["data"].decode(errors="replace").splitlines(), pids["fifo:-read"])

        log_sock.setblocking(False)
        syslog_lines = []
        try:
            while True:
                syslog_lines.append(log_sock.recv(4096).decode(errors="replace"))
        except BlockingIOError:
            pass
        check_lines("syslog", syslog_lines, pids["syslog"])
        check(all(l.startswith("<30>logfork: leakwatch: pid ") for l in syslog_lines),
              "syslog: not as syslog(3) sends them (LOG_DAEMON|LOG_INFO, the program's name): %r" % syslog_lines)
        print("%d lines through fifo:, %d through syslog; every program forked and exited"
              % (len(fifo_lines["data"].splitlines()), len(syslog_lines)))
    finally:
        for fd in keep:
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
