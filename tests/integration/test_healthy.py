#!/usr/bin/env python3
"""A correct multithreaded program (fixtures/healthy: mutexes, condvars,
semaphores, rwlock, barrier, sleeps, timed waits, raw futexes, C11 threads,
detached threads) prints the same and exits the same with and without the
preload: exit 0, exit 3, and exit 5 called from a thread while others are
parked. No socket file is left behind after the normal exits."""
import os
import shutil
from lwtest import check, fixture, private_dir, run_program, run_test

WANT = ["pipeline items 20000 total", "futex rounds 2000 pongs 2000", "c11 total 10 results 100",
        "sem_timedwait -1 Connection timed out", "cond_timedwait Connection timed out", "detached 8"]


def main():
    tmp, lwdir = private_dir()
    try:
        for args, code in ((["0"], 0), (["3"], 3), (["5", "thread-exit"], 5)):
            argv = [fixture("healthy")] + args
            bare = run_program(argv, False, lwdir)
            pre = run_program(argv, True, lwdir)
            check(bare[0] == code and all(w in bare[1] for w in WANT), "the bare run itself is wrong: %r" % (bare,))
            check(pre == bare, "%s: bare %r\n  != preloaded %r" % (" ".join(args), bare, pre))
        left = sorted(os.listdir(lwdir)) if os.path.isdir(lwdir) else []
        check(not left, "files left in the socket directory after the programs exited: %r" % left)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
