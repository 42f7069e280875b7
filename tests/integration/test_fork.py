#!/usr/bin/env python3
"""fork gives the child its own registry (only the forking thread, plus what
the child creates) and its own socket; the parent's keeps working; the
child's socket file goes away when the child exits normally."""
import os
from lwtest import Process, check, fixture, run_test, until


def main():
    with Process([fixture("forker"), "4"]) as p:
        lines = {}
        for _ in range(2):
            words = p.read_line("")
            lines.update(words)
        child = int(lines["child"]) if "child" in lines else None
        check(child, "no child pid in %r" % p.lines)
        child_sock = os.path.join(p.dir, "leakwatch.%d.sock" % child)
        until(lambda: os.path.exists(child_sock), 5, "the child's socket")

        def child_report():
            r = p.cli("threads", str(child), "--json", "--all", check_rc=0)
            import json
            return json.loads(r.stdout)
        c = until(child_report, 5, "child report")
        check(c["pid"] == child, "child pid %r" % c["pid"])
        check(len(c["threads"]) == 2, "child threads: %r" % [(t["tid"], t["name"]) for t in c["threads"]])
        check(c["created"] == 1, "child created %r, wanted 1 (only its own thread)" % c["created"])
        mains = [t for t in c["threads"] if t["main"]]
        check(len(mains) == 1 and mains[0]["tid"] == child, "child main thread: %r" % mains)

        parent = p.threads()
        check(parent["pid"] == p.pid and len(parent["threads"]) == 3, "parent threads: %r" % len(parent["threads"]))
        p.read_line("CHILD_EXITED", timeout=15)
        check(not os.path.exists(child_sock), "child socket %s left after a normal exit" % child_sock)
        check(os.path.exists(p.socket_path()), "parent socket gone")
        again = p.threads()
        check(len(again["threads"]) == 3, "parent after the child exited: %d threads" % len(again["threads"]))


if __name__ == "__main__":
    run_test(main)
