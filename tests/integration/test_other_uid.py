#!/usr/bin/env python3
"""Another uid is refused by the socket itself (SO_PEERCRED), even when the
file permissions would let it connect; root still gets data."""
import json
import os
import shutil
import subprocess
from lwtest import CLI, Process, check, fixture, run_test


def main():
    setpriv = shutil.which("setpriv")
    check(setpriv, "setpriv (util-linux) is required")
    check(os.geteuid() == 0, "this test needs root to switch to nobody")
    with Process([fixture("park"), "sem"]) as p:
        p.read_line("READY")
        p.wait_socket()
        os.chmod(p.tmp, 0o711)
        os.chmod(p.dir, 0o711)
        os.chmod(p.socket_path(), 0o666)
        probe = "\n".join([
            "import socket, sys",
            "s = socket.socket(socket.AF_UNIX)",
            "s.connect(sys.argv[1])",
            "try:",
            "    s.sendall(b'threads\\n')",
            "except OSError:",
            "    pass   # the server may answer and close before reading",
            "data = b''",
            "while True:",
            "    chunk = s.recv(65536)",
            "    if not chunk:",
            "        break",
            "    data += chunk",
            "sys.stdout.write(data.decode())",
        ])
        r = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", probe,
                            p.socket_path()], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "nobody could not even connect: %s" % r.stderr)
        reply = json.loads(r.stdout)
        check("permission denied" in reply.get("error", ""), "nobody got: %r" % r.stdout[:300])
        check("threads" not in reply, "nobody got thread data")
        r = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", CLI, "threads",
                            str(p.pid)], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, LEAKWATCH_DIR=p.dir))
        check(r.returncode == 2 and "permission denied" in r.stderr, "CLI as nobody: rc %d %r" % (r.returncode, r.stderr))
        os.chmod(p.dir, 0o700)
        report = p.threads()
        check(report["pid"] == p.pid and report["threads"], "root lost access")


if __name__ == "__main__":
    run_test(main)
