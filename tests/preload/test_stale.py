#!/usr/bin/env python3
"""Stale sockets of dead processes (killed, so nothing unlinked them) are
removed by the CLI, and by the next process that starts listening; a live
process's socket is never removed."""
import os, socket, subprocess, sys, tempfile, time


def preload_value():
    prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
    return (prefix + ":" if prefix else "") + os.environ["LEAKWATCH_PRELOAD"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def dead_pid():
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    return p.pid


def leave_stale_socket(lwdir):
    pid = dead_pid()
    path = os.path.join(lwdir, "leakwatch.%d.sock" % pid)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()            # the file stays, as after a SIGKILL
    return path


def main():
    cli, fixture = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        os.mkdir(lwdir, 0o700)
        stale = leave_stale_socket(lwdir)
        env = dict(os.environ, LEAKWATCH_DIR=lwdir)
        env.pop("LD_PRELOAD", None)
        out = subprocess.run([cli, "status"], capture_output=True, text=True, env=env, timeout=30)
        if os.path.exists(stale):
            fail("the CLI left a stale socket: %s (%s)" % (stale, out.stderr))
        dead = os.path.basename(stale).split(".")[1]
        if any(line.split()[:1] == [dead] for line in out.stdout.splitlines()):
            fail("status listed the dead process %s: %r" % (dead, out.stdout))

        stale = leave_stale_socket(lwdir)
        p = subprocess.Popen([fixture], stdout=subprocess.PIPE, text=True,
                             env=dict(env, LD_PRELOAD=preload_value()))
        try:
            for line in p.stdout:       # a process with a thread: it listens
                if line.startswith("READY"):
                    break
            mine = os.path.join(lwdir, "leakwatch.%d.sock" % p.pid)
            for _ in range(100):
                if os.path.exists(mine):
                    break
                time.sleep(0.05)
            else:
                fail("the fixture never listened")
            if os.path.exists(stale):
                fail("a starting process left a stale socket: %s" % stale)
            subprocess.run([cli, "status"], capture_output=True, text=True, env=env, timeout=30)
            if not os.path.exists(mine):
                fail("the CLI removed a live process's socket")
            print("ok")
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
