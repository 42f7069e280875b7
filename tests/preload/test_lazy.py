#!/usr/bin/env python3
"""A single-threaded program stays single-threaded under the preload (no
server thread, no socket: its fd syscalls keep the kernel's fast path), even
after a sleep, until it parks on a semaphore; then it answers, with that
wait reported."""
import json, os, socket, subprocess, sys, tempfile, time


def preload_value():
    prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
    return (prefix + ":" if prefix else "") + os.environ["LEAKWATCH_PRELOAD"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        env = dict(os.environ, LD_PRELOAD=preload_value(), LEAKWATCH_DIR=lwdir)
        p = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        try:
            first = p.stdout.readline().split()
            if first != ["THREADS", "1"]:
                fail("before parking: %r (wanted THREADS 1)" % first)
            sock = os.path.join(lwdir, "leakwatch.%d.sock" % p.pid)
            time.sleep(0.3)
            if os.path.exists(sock):
                fail("a socket exists before the program parked")
            p.stdin.write("go\n")
            p.stdin.flush()
            if p.stdout.readline().strip() != "PARKING":
                fail("no PARKING line")
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            else:
                fail("no socket after the program parked on a semaphore")
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(sock)
            s.sendall(b"threads\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            report = json.loads(data)
            kinds = [t["wait"]["kind"] for t in report["threads"] if t["wait"]]
            if kinds != ["sem"]:
                fail("waits reported: %r" % kinds)
            print("ok")
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
