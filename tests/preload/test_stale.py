#!/usr/bin/env python3
"""Stale sockets of dead processes (killed, so nothing unlinked them) are
removed by the CLI, and by the next process that starts listening; a live
process's socket is never removed.
Helpers: tests/integration/lwtest.py."""
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import Process, check, private_dir, run_cli, run_test, until  # noqa: E402


def dead_pid():
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    return p.pid


def leave_stale_socket(lwdir):
    path = os.path.join(lwdir, "leakwatch.%d.sock" % dead_pid())
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()            # the file stays, as after a SIGKILL
    return path


def main():
    fixture = sys.argv[1]
    tmp, lwdir = private_dir()
    os.mkdir(lwdir, 0o700)
    try:
        stale = leave_stale_socket(lwdir)
        out = run_cli(["status"], lwdir, timeout=30)
        check(not os.path.exists(stale), "the CLI left a stale socket: %s (%s)" % (stale, out.stderr))
        dead = os.path.basename(stale).split(".")[1]
        check(not any(line.split()[:1] == [dead] for line in out.stdout.splitlines()),
              "status listed the dead process %s: %r" % (dead, out.stdout))

        stale = leave_stale_socket(lwdir)
        with Process([fixture], env={"LEAKWATCH_DIR": lwdir}) as p:   # it has a thread: it listens
            p.read_line("READY")
            mine = os.path.join(lwdir, "leakwatch.%d.sock" % p.pid)
            until(lambda: os.path.exists(mine), 5, "the fixture to listen")
            check(not os.path.exists(stale), "a starting process left a stale socket: %s" % stale)
            run_cli(["status"], lwdir, timeout=30)
            check(os.path.exists(mine), "the CLI removed a live process's socket")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
