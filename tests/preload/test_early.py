#!/usr/bin/env python3
"""Hooked calls made by a library constructor, before or while leakwatch
initializes, behave exactly as without the preload (same output, status)."""
import os, subprocess, sys, tempfile

def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout

def preload_value():
    prefix = os.environ.get("LEAKWATCH_PRELOAD_PREFIX", "")
    return (prefix + ":" if prefix else "") + os.environ["LEAKWATCH_PRELOAD"]


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        bare = run([exe], dict(os.environ))
        pre = run([exe], dict(os.environ, LD_PRELOAD=preload_value(),
                              LEAKWATCH_DIR=os.path.join(tmp, "lw")))
    if bare != pre or bare[0] != 0:
        print("FAIL: bare %r, preloaded %r" % (bare, pre))
        return 1
    print("ok:", pre[1].strip())
    return 0

if __name__ == "__main__":
    sys.exit(main())
