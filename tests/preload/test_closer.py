#!/usr/bin/env python3
"""A program that closes all its descriptors and reuses the number of
leakwatch's listening socket for its own: every connection to the program's
socket reaches the program (leakwatch never accepts on an fd that is not
its own), and leakwatch listens again on a fresh socket."""
import json, os, socket, subprocess, sys, tempfile, time


def preload_value():
    prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
    return (prefix + ":" if prefix else "") + os.environ["LEAKWATCH_PRELOAD"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def talk(path, data=b""):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    if data:
        s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        app_sock = os.path.join(tmp, "app.sock")
        env = dict(os.environ, LD_PRELOAD=preload_value(), LEAKWATCH_DIR=lwdir)
        p = subprocess.Popen([sys.argv[1], app_sock], stdout=subprocess.PIPE, env=env, text=True)
        try:
            line = p.stdout.readline()
            if not line.startswith("LISTENING"):
                fail("no LISTENING line: %r" % line)
            for i in range(20):
                reply = talk(app_sock)
                if reply != b"mine\n":
                    fail("connection %d to the program's own socket got %r" % (i, reply))
            ours = os.path.join(lwdir, "leakwatch.%d.sock" % p.pid)
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    report = json.loads(talk(ours, b"ping\n"))
                    if report.get("ok"):
                        break
                except (OSError, ValueError):
                    pass
                time.sleep(0.1)
            else:
                fail("leakwatch does not answer again after its fd was closed")
            if talk(app_sock) != b"mine\n":
                fail("the program lost its socket afterwards")
            print("ok")
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
