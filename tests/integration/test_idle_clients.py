#!/usr/bin/env python3
"""Idle same-uid clients must not keep real questions out (issue 15, item
7: the server once took one connection at a time, each allowed 2 s to say
its line, so 6 silent clients made every real query time out, and 1,000
idle connections did too).

  1. 6 silent clients connected and held: a real `status` request is
     answered, whole, within 1 s; so is `leakwatch status PID` through the
     CLI.
  2. 1,000 idle connections held open by a keeper thread, which connects
     again whenever the server drops one (it sheds the oldest silent
     connection when its table is full, and drops silent ones after 2 s):
     10 real requests, a few tenths of a second apart, each answered whole
     within 1 s, and the CLI's too.
Afterwards the host is alive, answers, and printed nothing of ours.

With --shared-table LAUNCHER the host runs where close_range(2) fails
(tests/preload/no_close_range.c): leakwatch's server then holds its
connections in the program's descriptor table and keeps only a few (each
takes a number the program may need), so the 1,000 idle connections are
mostly shed as new ones come, the oldest silent first; the same bounds
hold."""
import json
import resource
import selectors
import socket
import struct
import sys
import threading
import time
from lwtest import SLOW, Process, TestFailure, check, fixture, ping, run_test

IDLE = 1000
SILENT = 6
ANSWER_S = 1.0


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    check(resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "cannot hold %d sockets here" % need)


def timed_request(path, data):
    """(seconds from connect to the whole reply, the reply parsed)."""
    start = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # As cli/client.c does: a blocking connect bounded by SO_SNDTIMEO waits
    # for room in the listener's queue (a timeout in Python would make the
    # socket non-blocking, and connect would fail at once on a full queue).
    tv = struct.pack("ll", 10 * int(SLOW), 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    out = b""
    try:
        s.connect(path)
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError as e:
        raise TestFailure("a %s request: %s after %.2fs (%d bytes)" % (data.strip().decode(), e,
                                                                     time.monotonic() - start, len(out)))
    finally:
        s.close()
    took = time.monotonic() - start
    check(out.endswith(b"\n"), "a reply that is not one whole line after %.2fs: %r" % (took, out[-200:]))
    return took, json.loads(out)


def answered_in_time(p, what):
    took, reply = timed_request(p.socket_path(), b"status\n")
    check("summary" in reply and "error" not in reply, "%s: not a status reply: %r" % (what, reply))
    check(took < ANSWER_S * SLOW, "%s: a status request took %.2fs" % (what, took))
    start = time.monotonic()
    cli = p.cli("status", str(p.pid), "--json", env={"LEAKWATCH_TIMEOUT_MS": "5000"})
    cli_took = time.monotonic() - start
    check(cli.returncode in (0, 1), "%s: leakwatch status: exit %d: %s" % (what, cli.returncode, cli.stderr))
    return took, cli_took


class Keeper:
    """Holds `count` idle connections to path, connecting again whenever the
    server closes one (at most PACE a round of 50 ms: idle clients, not a
    flood), until stopped."""

    PACE = 100

    def __init__(self, path, count):
        self.path, self.count, self.stopping = path, count, False
        self.reconnects = 0
        self.held = 0     # the most connections open at once
        self.opened = 0   # connections made in all
        self.selector = selectors.DefaultSelector()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.05)
        try:
            s.connect(self.path)
        except OSError:
            s.close()   # the listener's queue is full: try again later
            return
        s.setblocking(False)
        self.selector.register(s, selectors.EVENT_READ)
        self.opened += 1

    def _run(self):
        while not self.stopping:
            round_ends = time.monotonic() + 0.05
            for _ in range(self.PACE):
                if len(self.selector.get_map()) >= self.count or self.stopping:
                    break
                self._connect()
            self.held = max(self.held, len(self.selector.get_map()))
            for key, _ in self.selector.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:   # dropped by the server (or its error, then the close)
                    self.selector.unregister(s)
                    s.close()
                    self.reconnects += 1
            time.sleep(max(0.0, round_ends - time.monotonic()))

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=30)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def main():
    raise_fd_limit(IDLE + 200)
    argv = [fixture("park"), "sem", "4"]
    shared = len(sys.argv) == 3 and sys.argv[1] == "--shared-table"
    if shared:
        argv = [sys.argv[2]] + argv
    with Process(argv) as p:
        p.read_line("READY")
        path = p.wait_socket()
        ping(path)

        silent = []
        for _ in range(SILENT):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            silent.append(s)
        time.sleep(0.2)
        took, cli_took = answered_in_time(p, "behind %d silent clients" % SILENT)
        print("behind %d silent clients: status in %.3fs, the CLI in %.2fs" % (SILENT, took, cli_took))
        for s in silent:
            s.close()

        keeper = Keeper(path, IDLE)
        try:
            # Held at once; or, where the server sheds them, made (and kept
            # as long as the server lets them stay).
            def enough():
                return (keeper.opened if shared else keeper.held) >= IDLE
            deadline = time.monotonic() + 30 * SLOW
            while not enough() and time.monotonic() < deadline:
                time.sleep(0.1)
            check(enough(), "could only open %d idle connections (%d at once)" % (keeper.opened, keeper.held))
            worst = 0.0
            for i in range(10):
                took, cli_took = answered_in_time(p, "request %d beside %d idle connections" % (i, IDLE))
                worst = max(worst, took)
                time.sleep(0.3)
        finally:
            keeper.stop()
        print("beside %d idle connections (%d at once, %d dropped and made again): slowest status %.3fs, "
              "last CLI %.2fs" % (IDLE, keeper.held, keeper.reconnects, worst, cli_took))

        ping_once_drained(path)
        check(p.alive(), "the host died")
        err = p.stderr_so_far()
        check(err == "", "the host's stderr: %r" % err[-1000:])


def ping_once_drained(path):
    """A ping right after the keeper let go: connections it was still
    making may fill the listen backlog until the server has accepted and
    dropped them, and a UNIX socket refuses a connect then (EAGAIN) rather
    than wait. A client connects again, as the CLI does; within 5 s."""
    deadline = time.monotonic() + 5 * SLOW
    while True:
        try:
            return ping(path)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    run_test(main)
