#!/usr/bin/env python3
"""The socket directory is checked before the preload listens in it: a real
directory, owned by us, mode 0700, never reached through a symlink. Issue
15, item 9: LEAKWATCH_DIR=/path/link/ (a trailing slash) made lstat follow
the symlink that /path/link is refused for. Each case runs a program that
parks a thread (so the server starts) and looks at where it listens:

  link        LEAKWATCH_DIR names a symlink to a private directory: refused
  link/       the same with a trailing slash (and with two): refused
  link/.      a last component "." or "..": refused
  real/       a real private directory with a trailing slash: listens there,
              and the CLI finds it with the same LEAKWATCH_DIR
  mode 0755   a real directory others may enter: refused
Helpers: tests/integration/lwtest.py."""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import SLOW, Process, check, run_cli, run_test, until  # noqa: E402


def sockets_in(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".sock"))


def refused(program, lwdir, real, what):
    with Process([program, "sem"], env={"LEAKWATCH_DIR": lwdir}) as p:
        until(lambda: "not listening" in p.stderr_so_far(), 10, "%s: the complaint on stderr" % what)
        time.sleep(0.2 * SLOW)
        check(sockets_in(real) == [], "%s: the preload listens in %s: %r" % (what, real, sockets_in(real)))
        err = p.stderr_so_far()
    return err


def main():
    program = sys.argv[1]   # fixtures/park, run as `park sem`
    tmp = tempfile.mkdtemp(prefix="lwdir.")
    try:
        real = os.path.join(tmp, "real")
        os.mkdir(real, 0o700)
        link = os.path.join(tmp, "link")
        os.symlink(real, link)
        err = refused(program, link, real, "a symlink")
        check("symlink" in err, "a symlink: %r" % err)
        for lwdir in (link + "/", link + "//"):
            err = refused(program, lwdir, real, "%r (a symlink, a trailing slash)" % lwdir)
            check("symlink" in err, "%r: %r" % (lwdir, err))
        for lwdir in (link + "/.", real + "/..", real + "/./"):
            err = refused(program, lwdir, real, repr(lwdir))
            check('must not end in "." or ".."' in err, "%r: %r" % (lwdir, err))

        with Process([program, "sem"], env={"LEAKWATCH_DIR": real + "/"}) as p:
            path = os.path.join(real, "leakwatch.%d.sock" % p.pid)
            until(lambda: os.path.exists(path), 10, "the socket in %s/" % real)
            r = run_cli(["status", str(p.pid), "--json"], real + "/")
            check(r.returncode in (0, 1) and json.loads(r.stdout)["pid"] == p.pid,
                  "the CLI with LEAKWATCH_DIR=%s/: exit %d, %r" % (real, r.returncode, r.stderr))
            check(p.stderr_so_far() == "", "a real directory with a trailing slash: %r" % p.stderr_so_far())

        open_dir = os.path.join(tmp, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o755)
        err = refused(program, open_dir, open_dir, "mode 0755")
        check("accessible to other users" in err, "mode 0755: %r" % err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
