#!/usr/bin/env python3
"""Return values and errno of hooked calls (errno kept on success; timeouts,
EINVAL, EINTR only without SA_RESTART, EDEADLK, EOWNERDEAD, EFAULT, try
paths, raw futex errors, C11 codes) are identical with and without the
preload, and all as glibc gives them bare (fixtures/errno_check)."""
import concurrent.futures
import os
from lwtest import check, fixture, private_dir, run_program, run_test, sanitized
import shutil


def main():
    # Bare and preloaded at once (each run is mostly its own timeouts and
    # sleeps, seconds in all).
    tmp, lwdir = private_dir()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_program, [fixture("errno_check")], preload, lwdir, timeout=60)
                    for preload in (False, True)]
            bare, pre = [r.result() for r in runs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check(bare[0] == 0 and bare[1].endswith("ALL OK\n"), "the bare run itself is wrong (exit %d):\n%s" % (bare[0], bare[1]))
    check("libleakwatch" not in bare[2], "bare run: %r" % bare[2])
    check("loaded " in pre[2] and "libleakwatch" in pre[2], "the preload was not loaded: %r" % pre[2])
    if not sanitized():   # else the sanitizer's interceptor comes first, then ours
        check("pthread_mutex_lock from " in pre[2] and "libleakwatch" in pre[2].split("pthread_mutex_lock from ")[1].split("\n")[0],
              "the preload was not in the path of pthread_mutex_lock: %r" % pre[2])
    if pre[:2] != bare[:2]:
        diff = [("bare:      " + b, "preloaded: " + p) for b, p in zip(bare[1].splitlines(), pre[1].splitlines()) if b != p]
        check(False, "the preloaded run differs (exit %d vs %d bare):\n%s\n--- full preloaded output:\n%s%s"
              % (pre[0], bare[0], "\n".join("%s\n%s" % d for d in diff), pre[1], pre[2]))


if __name__ == "__main__":
    run_test(main)
