#!/usr/bin/env python3
"""The preload loads with no side effects into programs that exit at once:
/bin/true exits 0 with no output, a shell pipeline keeps its output and exit
status, and neither leaves a socket (or any file) in LEAKWATCH_DIR."""
import os
import shutil
from lwtest import check, private_dir, run_program, run_test


def main():
    tmp, lwdir = private_dir()
    try:
        r = run_program(["/bin/true"], True, lwdir, timeout=30)
        check(r == (0, "", ""), "/bin/true under the preload: %r" % (r,))
        r = run_program(["/bin/false"], True, lwdir, timeout=30)
        check(r == (1, "", ""), "/bin/false under the preload: %r" % (r,))
        r = run_program(["/bin/sh", "-c", "echo hello | tr a-z A-Z; exit 7"], True, lwdir, timeout=30)
        check(r == (7, "HELLO\n", ""), "a shell pipeline under the preload: %r" % (r,))
        left = sorted(os.listdir(lwdir)) if os.path.isdir(lwdir) else []
        check(not left, "files left in the socket directory: %r" % left)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
