#!/usr/bin/env python3
"""A parked thread's name in the dump (fixtures/rename): the preload reads a
name once per wait and keeps it while the wait lasts, so a thread that
renames itself between two waits must show its new name in the very first
dump that sees its second wait, and its old one in every dump of the first.
Each stage is asked about three times once the wait shows (the first ask
reads the name, the others reuse it), through JSON and the text dump."""
from lwtest import Process, addr, check, fixture, run_test, thread_by_tid, until


def parked_on(p, tid, sem):
    """The dump's entry for tid once it waits on sem (None until then)."""
    t = thread_by_tid(p.threads(), tid)
    w = (t or {}).get("wait") or {}
    return t if w.get("kind") == "sem" and addr(w.get("object")) == sem else None


def check_name(p, tid, sem, name, stage):
    first = until(lambda: parked_on(p, tid, sem), 10, "stage %d: tid %d parked on its semaphore" % (stage, tid))
    check(first["name"] == name, "stage %d: the first dump of the wait names tid %d %r, not %r"
          % (stage, tid, first["name"], name))
    for ask in range(2):
        t = parked_on(p, tid, sem)
        check(t is not None, "stage %d: tid %d left its wait" % (stage, tid))
        check(t["name"] == name, "stage %d, ask %d: tid %d is named %r, not %r (a name kept from another wait?)"
              % (stage, ask + 2, tid, t["name"], name))
    text = p.cli("threads", str(p.pid), "--all", check_rc=None).stdout
    check(('tid %d "%s"' % (tid, name)) in text, "stage %d: the text dump does not name tid %d %r:\n%s"
          % (stage, tid, name, text))


def main():
    with Process([fixture("rename")], stdin=True) as p:
        one = p.read_line("PARKED stage=1")
        tid = int(one["tid"])
        check_name(p, tid, addr(one["sem"]), "before", 1)
        p.send("next\n")
        two = p.read_line("PARKED stage=2")
        check(int(two["tid"]) == tid, "stage 2 names tid %s, stage 1 tid %d" % (two["tid"], tid))
        check_name(p, tid, addr(two["sem"]), "after", 2)


if __name__ == "__main__":
    run_test(main)
