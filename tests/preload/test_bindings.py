#!/usr/bin/env python3
"""The preload binds every hooked function to libc's right version.

Runs tests/preload/bindings under the preload, asks the socket for `hooks`
and checks each bound address against what libc's dlvsym/dlsym returned in
the fixture: pthread_cond_wait/timedwait must be the GLIBC_2.3.2 ones (not the
old 2.2.5 layout), every other name libc's default version.
Helpers: tests/integration/lwtest.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import Process, check, request, run_test  # noqa: E402


def main():
    with Process([sys.argv[1]]) as p:
        p.read_line("READY")
        want, old = {}, {}
        for line in p.lines:
            parts = line.split()
            if parts and parts[0] in ("BIND", "OLD"):
                (want if parts[0] == "BIND" else old)[parts[1]] = int(parts[2], 16)
        check(want, "the fixture printed no BIND lines: %r" % p.lines)
        reply = json.loads(request(p.wait_socket(), b"hooks\n"))
        got = {h["name"]: int(h["address"], 16) for h in reply["hooks"] if h.get("address")}
        bad = ["%s: bound %s, libc has %s" % (name, hex(got.get(name, 0)), hex(addr))
               for name, addr in want.items() if got.get(name) != addr]
        bad += ["%s: bound to the old GLIBC_2.2.5 version" % name for name, addr in old.items() if got.get(name) == addr]
        missing = set(want) - set(got)
        if missing:
            bad.append("not bound: %s" % sorted(missing))
        check(not bad, "\n  " + "\n  ".join(bad))
        print("%d bindings match libc (cond at GLIBC_2.3.2)" % len(want))


if __name__ == "__main__":
    run_test(main)
