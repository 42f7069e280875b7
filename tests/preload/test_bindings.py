#!/usr/bin/env python3
"""The preload binds every hooked function to libc's right version.

Runs tests/preload/bindings under the preload, asks the socket for `hooks`
and checks each bound address against what libc's dlvsym/dlsym returned in
the fixture: pthread_cond_wait/timedwait must be the GLIBC_2.3.2 ones (not the
old 2.2.5 layout), every other name libc's default version.
"""
import json, os, socket, subprocess, sys, tempfile, time

def ask(path, request):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(request.encode() + b"\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)

def preload_value():
    prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
    return (prefix + ":" if prefix else "") + os.environ["LEAKWATCH_PRELOAD"]


def main():
    preload, fixture = os.environ["LEAKWATCH_PRELOAD"], sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        lwdir = os.path.join(tmp, "lw")
        env = dict(os.environ, LD_PRELOAD=preload_value(), LEAKWATCH_DIR=lwdir)
        proc = subprocess.Popen([fixture], stdout=subprocess.PIPE, env=env, text=True)
        try:
            want, old = {}, {}
            for line in proc.stdout:
                parts = line.split()
                if parts[0] == "READY":
                    break
                (want if parts[0] == "BIND" else old)[parts[1]] = int(parts[2], 16)
            sock = os.path.join(lwdir, "leakwatch.%d.sock" % proc.pid)
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.05)
            reply = ask(sock, "hooks")
            got = {h["name"]: int(h["address"], 16) for h in reply["hooks"] if h.get("address")}
            bad = []
            for name, addr in want.items():
                if got.get(name) != addr:
                    bad.append("%s: bound %s, libc has %s" % (name, hex(got.get(name, 0)), hex(addr)))
            for name, addr in old.items():
                if got.get(name) == addr:
                    bad.append("%s: bound to the old GLIBC_2.2.5 version" % name)
            missing = set(want) - set(got)
            if missing:
                bad.append("not bound: %s" % sorted(missing))
            if bad:
                print("FAIL\n  " + "\n  ".join(bad))
                return 1
            print("ok: %d bindings match libc (cond at GLIBC_2.3.2)" % len(want))
            return 0
        finally:
            proc.kill()
            proc.wait()

if __name__ == "__main__":
    sys.exit(main())
