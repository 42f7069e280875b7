#!/usr/bin/env python3
"""Hooked calls made by a library constructor, before or while leakwatch
initializes, behave exactly as without the preload: the same exit status,
output and (empty) stderr, where a preload that failed to load would have
ld.so's complaint. The fixture also says whether libleakwatch.so is loaded
(it must be, preloaded).
Helpers: tests/integration/lwtest.py."""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import check, private_dir, run_program, run_test  # noqa: E402


def main():
    exe = sys.argv[1]
    tmp, lwdir = private_dir()
    try:
        bare = run_program([exe], False, lwdir, timeout=30)
        pre = run_program([exe], True, lwdir, timeout=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check(bare[0] == 0 and "leakwatch loaded: no" in bare[1], "bare: %r" % (bare,))
    check("leakwatch loaded: yes" in pre[1], "the preload is not in the process: %r" % (pre,))
    check((pre[0], pre[1].replace("loaded: yes", "loaded: no"), pre[2]) == bare,
          "bare %r, preloaded %r" % (bare, pre))
    print(pre[1].strip().replace("\n", "; "))


if __name__ == "__main__":
    run_test(main)
