#!/usr/bin/env python3
"""Return values and errno of hooked calls (success, timeouts, EINVAL, EINTR
without SA_RESTART, EDEADLK, EFAULT, try paths) are identical with and
without the preload, and all as POSIX says."""
import os
import subprocess
import tempfile
from lwtest import check, fixture, preload_value, run_test


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bare = subprocess.run([fixture("errno_check")], capture_output=True, text=True, timeout=60)
        env = dict(os.environ, LEAKWATCH_DIR=os.path.join(tmp, "lw"), LD_PRELOAD=preload_value())
        pre = subprocess.run([fixture("errno_check")], capture_output=True, text=True, timeout=60, env=env)
    check(bare.returncode == 0 and bare.stdout.endswith("ALL OK\n"), "bare run is wrong:\n" + bare.stdout)
    check(pre.stdout == bare.stdout and pre.returncode == bare.returncode,
          "preloaded run differs:\n--- bare\n%s--- preloaded\n%s" % (bare.stdout, pre.stdout))


if __name__ == "__main__":
    run_test(main)
