#!/usr/bin/env python3
"""A single-threaded program stays single-threaded under the preload (no
server thread, no socket: its fd syscalls keep the kernel's fast path)
through its sleeps, until it parks on a semaphore; then the server thread
appears and answers, with that wait reported.

The proof is the process's own thread list, read from /proc by this driver
once the program has done everything but the park (a server started at
load, or by a sleep, would be a second task by then: pthread_create returns
with the thread made), then again after the park: two tasks, a socket, and
a report of one thread (ours is not listed) waiting on the semaphore.
Helpers: tests/integration/lwtest.py."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import Process, check, request, run_test, until  # noqa: E402


def tasks(pid):
    return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))


def main():
    with Process([sys.argv[1]], stdin=True) as p:
        p.read_line("IDLE")   # after its sleeps, waiting on stdin (stdio's read: no hook sees it)
        check(tasks(p.pid) == [p.pid], "before parking: tasks %r, wanted only the main thread" % tasks(p.pid))
        check(not os.path.exists(p.socket_path()), "a socket exists before the program parked")
        p.send("go\n")
        p.read_line("PARKING")
        path = p.wait_socket()
        report = json.loads(request(path, b"threads\n"))
        kinds = [t["wait"]["kind"] for t in report["threads"] if t["wait"]]
        check([t["tid"] for t in report["threads"]] == [p.pid] and kinds == ["sem"],
              "threads reported: %r" % [(t["tid"], t["wait"]) for t in report["threads"]])
        until(lambda: len(tasks(p.pid)) == 2, 5, "the server thread")


if __name__ == "__main__":
    run_test(main)
