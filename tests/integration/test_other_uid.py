#!/usr/bin/env python3
"""Another uid is refused by the socket itself (SO_PEERCRED), even when the
file permissions let it connect: as root, open up the test's socket
directory (0711) and socket (0666), connect as nobody (setpriv), raw and
through the CLI: the reply is the permission error and no data. Then
restore the permissions and show root still gets data."""
import json
import os
import shutil
import subprocess
import sys
from lwtest import CLI, SLOW, Process, check, fixture, run_test

PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b'threads\n')
except OSError:
    pass   # the server may answer and close before reading
data = b''
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode('ascii', 'replace'))
"""


def main():
    setpriv = shutil.which("setpriv")
    check(setpriv, "setpriv (util-linux) is required")
    check(os.geteuid() == 0, "this test needs root to switch to nobody")
    as_nobody = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    with Process([fixture("park"), "sem"]) as p:
        p.read_line("READY")
        path = p.wait_socket()
        os.chmod(p.tmp, 0o711)
        os.chmod(p.dir, 0o711)
        os.chmod(path, 0o666)
        r = subprocess.run(as_nobody + [python, "-c", PROBE, path], capture_output=True, text=True, timeout=30 * SLOW)
        check(r.returncode == 0, "nobody could not even connect (the test's set-up is wrong): %s" % r.stderr)
        try:
            reply = json.loads(r.stdout)
        except ValueError:
            reply = None
        check(isinstance(reply, dict), "nobody got a reply that is not JSON: %r" % r.stdout[:300])
        check(reply.get("version") == 1 and "permission denied" in reply.get("error", ""), "nobody got: %r" % r.stdout[:300])
        check(not ({"threads", "summary", "pid", "command", "ok"} & set(reply)), "nobody got data: %r" % r.stdout[:300])

        r = subprocess.run(as_nobody + [CLI, "threads", str(p.pid), "--json", "--all"], capture_output=True, text=True,
                           timeout=30 * SLOW, env=dict(os.environ, LEAKWATCH_DIR=p.dir))
        check(r.returncode == 2 and "permission denied" in r.stderr, "the CLI as nobody: exit %d, stderr %r" % (r.returncode, r.stderr))
        check(str(p.pid) not in r.stdout and "parked" not in r.stdout, "the CLI as nobody printed data: %r" % r.stdout[:300])

        os.chmod(path, 0o600)
        os.chmod(p.dir, 0o700)
        os.chmod(p.tmp, 0o700)
        report = p.threads()
        check(report["pid"] == p.pid and any(t["name"] == "parked-sem" for t in report["threads"]),
              "root lost access: %r" % [(t["tid"], t["name"]) for t in report["threads"]])


if __name__ == "__main__":
    run_test(main)
