#!/usr/bin/env python3
"""A program that closes every descriptor while a client of leakwatch is
connected and silent, and gives the numbers of leakwatch's sockets to
socketpairs of its own, each with a message waiting (fixtures: reuser.c):
leakwatch must never read the program's message as a request, write into
the program's socket, or close it (issue 15, item 1). The silent client
still gets its answer (the request deadline's error, or a close), and
leakwatch still answers afterwards.

With --shared-table LAUNCHER, the program runs where close_range(2) fails
(tests/preload/no_close_range.c), so that leakwatch's server cannot take a
descriptor table of its own and must check each of its descriptors before
every use instead; the same must hold.
Helpers: tests/integration/lwtest.py."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import SLOW, Process, check, ping, run_test, until  # noqa: E402

HOLD_S = 3   # past the server's 2 s request deadline


def main():
    argv = [sys.argv[1], str(HOLD_S)]
    if len(sys.argv) == 4 and sys.argv[2] == "--shared-table":
        argv = [sys.argv[3]] + argv
    with Process(argv, stdin=True) as p:
        p.read_line("READY")
        path = p.wait_socket()
        ping(path)
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.settimeout(20 * SLOW)
        silent.connect(path)
        time.sleep(0.3)   # accepted by now: it waits for a request line that never comes
        p.send("go\n")
        took = p.read_line("TOOK")
        p.read_line("RESULT", timeout=HOLD_S + 10)
        verdict = [line for line in p.lines if line.startswith("RESULT")]
        check(verdict == ["RESULT ok\n"], "the program's sockets (fds %s) were touched by leakwatch: %r"
              % (took.get("fds"), verdict))
        got = b""
        try:
            while True:
                chunk = silent.recv(65536)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        silent.close()
        check(got == b"" or "error" in json.loads(got), "the silent client got %r" % got[:300])
        until(lambda: ping(path), 5, "leakwatch to answer afterwards")
        check(p.alive(), "the program died")


if __name__ == "__main__":
    run_test(main)
