#!/usr/bin/env python3
"""A correct multithreaded program prints the same and exits the same with
and without the preload (exit codes 0 and 3), and leaves no socket behind."""
import os
import subprocess
import tempfile
from lwtest import check, fixture, preload_value, run_test


def run(args, preload, lwdir):
    env = dict(os.environ, LEAKWATCH_DIR=lwdir)
    if preload:
        env["LD_PRELOAD"] = preload_value()
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        for code in ("0", "3"):
            bare = run([fixture("healthy"), code], False, lwdir)
            pre = run([fixture("healthy"), code], True, lwdir)
            check(bare == pre, "exit %s: bare %r != preloaded %r" % (code, bare, pre))
            check(bare[0] == int(code) and "items 20000" in bare[1], "unexpected bare run %r" % (bare,))
        left = [f for f in os.listdir(lwdir) if f.endswith(".sock")] if os.path.isdir(lwdir) else []
        check(not left, "sockets left behind after normal exits: %r" % left)


if __name__ == "__main__":
    run_test(main)
