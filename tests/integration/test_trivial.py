#!/usr/bin/env python3
"""A program that exits at once (/bin/true, and a shell pipeline) runs
normally under the preload: exit 0, no output, no socket file left."""
import os
import subprocess
import tempfile
from lwtest import check, preload_value, run_test


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        env = dict(os.environ, LEAKWATCH_DIR=lwdir, LD_PRELOAD=preload_value())
        p = subprocess.run(["/bin/true"], capture_output=True, text=True, env=env, timeout=30)
        check((p.returncode, p.stdout, p.stderr) == (0, "", ""), "/bin/true: %r" % ((p.returncode, p.stdout, p.stderr),))
        p = subprocess.run(["/bin/sh", "-c", "echo hello | tr a-z A-Z; exit 7"], capture_output=True, text=True,
                           env=env, timeout=30)
        check((p.returncode, p.stdout, p.stderr) == (7, "HELLO\n", ""), "shell pipeline: %r" % ((p.returncode, p.stdout, p.stderr),))
        left = os.listdir(lwdir) if os.path.isdir(lwdir) else []
        check(not left, "files left in the socket directory: %r" % left)


if __name__ == "__main__":
    run_test(main)
