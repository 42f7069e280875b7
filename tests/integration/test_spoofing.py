#!/usr/bin/env python3
"""Another user cannot answer in a root process's name (issue 15, item 3).
Any user can bind a listening socket named leakwatch.PID.sock in a
directory of its own, and /proc/net/unix shows it to everyone: the CLI once
connected to any such socket, for any pid, first come first served, and
never asked who answered. Another uid bound 300 for a root process under
the preload, and root's `leakwatch status PID` printed the impostor's
threads ("HIJACKED"); one more for a root process not under the preload
made root's `status PID` exit 1 on a fake leak.

Here, as root, a second user (created if missing: lwtest-other) binds 300
such sockets for a root process under the preload and one for a root
process that is not, each answering with a fake report. Root's CLI, given
an empty LEAKWATCH_DIR (so that it must look through /proc/net/unix and
the process's environment), must report the real process, never the
impostor's data, exit 2 for the process that is not under the preload,
and never even connect to the impostor's sockets: their files are owned by
neither the process's uid nor root.

The test runs in a network namespace of its own (/proc/net/unix is per
namespace): the impostor's sockets must not mislead, nor be asked by, the
CLIs of other test runs on the same machine."""
import ctypes
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from lwtest import CLI, SLOW, Process, check, fixture, run_test

USER = "lwtest-other"
SOCKETS = 300

IMPOSTOR = r"""
import json, os, selectors, socket, sys, tempfile
victim, bystander, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
root = tempfile.mkdtemp(prefix="lwspoof.")
os.chmod(root, 0o755)
listeners = []
for i, pid in enumerate([victim] * count + [bystander]):
    d = os.path.join(root, "d%d" % i)
    os.mkdir(d, 0o755)
    path = os.path.join(d, "leakwatch.%d.sock" % pid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o777)
    s.listen(8)
    s.setblocking(False)
    listeners.append((s, pid))
sel = selectors.DefaultSelector()
for s, pid in listeners:
    sel.register(s, selectors.EVENT_READ, pid)
sel.register(sys.stdin, selectors.EVENT_READ, None)
print("READY %s" % root, flush=True)
served = 0
while True:
    for key, _ in sel.select():
        if key.data is None:
            print("SERVED %d" % served, flush=True)
            sys.exit(0)
        conn, _ = key.fileobj.accept()
        served += 1
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        print("CLIENT %d" % int.from_bytes(creds[:4], "little"), flush=True)
        fake = {"version": 1, "pid": key.data, "command": "HIJACKED", "uptime": 1.0,
                "summary": {"threads": 1, "running": 0, "waiting": 0, "suspect": 0, "leaked": 1, "deadlocked": 0,
                            "parked": 1},
                "threads": [{"tid": key.data, "name": "HIJACKED", "verdict": "leaked", "state": "parked",
                             "wait": {"kind": "cond", "seconds": 9.0}, "reason": "HIJACKED"}],
                "modules": [], "stacks": {}, "notes": []}
        try:
            conn.settimeout(2)
            conn.recv(256)
            conn.sendall(json.dumps(fake).encode() + b"\n")
        except OSError:
            pass
        conn.close()
"""


def ensure_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       capture_output=True, text=True)
    check(r.returncode in (0, 9), "useradd %s: %s" % (USER, r.stderr))   # 9: made meanwhile by another test
    return pwd.getpwnam(USER)


CLI_PIDS = set()


def cli(args, lwdir):
    e = dict(os.environ, LEAKWATCH_DIR=lwdir)
    e.pop("LD_PRELOAD", None)
    p = subprocess.Popen([CLI] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=e)
    CLI_PIDS.add(p.pid)   # (the impostor says who connected)
    out, err = p.communicate(timeout=60 * SLOW)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


CLONE_NEWNET = 0x40000000


def own_network_namespace():
    libc = ctypes.CDLL(None, use_errno=True)
    check(libc.unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno()))


def main():
    check(os.geteuid() == 0 and shutil.which("setpriv"), "this test needs root and setpriv (util-linux)")
    own_network_namespace()
    user = ensure_user()
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    empty = tempfile.mkdtemp(prefix="lwempty.")
    bystander = subprocess.Popen(["sleep", "600"])
    impostor = None
    try:
        with Process([fixture("park"), "sem"]) as p:
            p.read_line("READY")
            p.wait_socket()
            impostor = subprocess.Popen(["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid,
                                         "--clear-groups", python, "-c", IMPOSTOR, str(p.pid), str(bystander.pid),
                                         str(SOCKETS)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/")
            ready = impostor.stdout.readline()
            check(ready.startswith("READY "), "the impostor did not start: %r" % ready)
            spoof_root = ready.split()[1]

            for args in (["status", p.pid], ["status", p.pid, "--json"], ["threads", p.pid, "--json"],
                         ["threads", p.pid]):
                r = cli(args, empty)
                check(r.returncode in (0, 1), "%s: exit %d: %s" % (args, r.returncode, r.stderr))
                check("HIJACKED" not in r.stdout + r.stderr, "%s printed the impostor's report:\n%s"
                      % (args, r.stdout[:1000]))
                check(fixture("park") in r.stdout, "%s does not report the real process:\n%s" % (args, r.stdout[:1000]))
            r = cli(["status", "--json"], empty)
            check("HIJACKED" not in r.stdout + r.stderr, "status printed the impostor's report")
            check(any(q["pid"] == p.pid for q in json.loads(r.stdout)["processes"]),
                  "status does not list the real process: %r" % r.stdout[:1000])

            r = cli(["status", bystander.pid], empty)
            check(r.returncode == 2 and "HIJACKED" not in r.stdout, "status of a root process not under the "
                  "preload, with another user's socket in its name: exit %d, %r %r" % (r.returncode, r.stdout, r.stderr))
            check("no leakwatch socket for pid %d" % bystander.pid in r.stderr, "message: %r" % r.stderr)

            impostor.stdin.close()
            said = impostor.stdout.read().splitlines()
            impostor.wait(timeout=30)
            clients = {int(line.split()[1]) for line in said if line.startswith("CLIENT ")}
            check(not clients & CLI_PIDS, "the CLI connected to the impostor's sockets: %r" % said)
            shutil.rmtree(spoof_root, ignore_errors=True)
    finally:
        if impostor and impostor.poll() is None:
            impostor.kill()
            impostor.wait()
        bystander.kill()
        bystander.wait()
        shutil.rmtree(empty, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
