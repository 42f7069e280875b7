#!/usr/bin/env python3
"""leakwatch.h's per-test check (leakwatch_mark / leakwatch_verify_none),
answered by the preload, as a user's test program uses it:

  c      docs/examples/verify_none.c, a plain C runner of three tests.
         Preloaded (and under `leakwatch run`): exactly forgets_its_worker
         fails, its report naming the worker ("leaky-worker"), its wait
         (cond) and stacks; the detached worker that ends 50 ms after its
         test is waited for; exit 1. Without the preload: every test passes,
         one line says the threads were not checked, exit 0.
  gtest  a GoogleTest program with leakwatch_gtest.h's listener: exactly
         Leaks.AWorker is reported FAILED, the failure naming the test and
         its worker ("gtest-leaker"), and the test after it passes.
         Without the preload: all pass, exit 0, the same one line.
The references to the preload are weak (nothing is linked for them): both
programs must import them as weak undefined symbols."""
import re
import shutil
import subprocess
import sys
from lwtest import check, fixture, private_dir, run_cli, run_program, run_test

NOT_CHECKED = "leakwatch: not preloaded"


def check_weak_imports(path):
    out = subprocess.run(["nm", "-D", path], capture_output=True, text=True, check=True).stdout
    for name in ("leakwatch_v1_mark", "leakwatch_v1_verify_none"):
        check(re.search(r"^\s+w %s$" % name, out, re.M), "%s does not import %s weakly:\n%s" % (path, name, out))


def test_c(lwdir):
    prog = fixture("verify_none_example")
    check_weak_imports(prog)
    rc, out, err = run_program([prog], True, lwdir)
    check(rc == 1, "preloaded: exit %d, wanted 1\n%s%s" % (rc, out, err))
    check(re.search(r"^ok   joins_its_worker$", out, re.M) and re.search(r"^ok   detached_worker_ends_soon$", out, re.M),
          "the healthy tests did not pass:\n%s" % out)
    failed = re.findall(r"^FAIL (\w+): ", out, re.M)
    check(failed == ["forgets_its_worker"], "failed tests %r, wanted only forgets_its_worker:\n%s" % (failed, out))
    report = out.split("FAIL forgets_its_worker: ", 1)[1].split("\nok ", 1)[0]
    check(re.search(r'^1 thread created since leakwatch_mark\(\) is still running after 500 ms:$', report, re.M),
          "report head: %s" % report)
    check(re.search(r'^  tid \d+ "leaky-worker": \w+, cond 0x[0-9a-f]+, parked', report, re.M), "report: %s" % report)
    check("wait stack:" in report and "created at:" in report and "verify_none_example+0x" in report,
          "stacks: %s" % report)
    check(NOT_CHECKED not in err, "preloaded, yet: %s" % err)

    rc, out, err = run_program([prog], False, lwdir)
    check(rc == 0 and out.count("\nok   ") + out.startswith("ok   ") == 3, "bare: exit %d\n%s" % (rc, out))
    check(err.count(NOT_CHECKED) == 1, "bare: stderr %r" % err)

    p = run_cli(["run", "--", prog], lwdir)
    check(p.returncode == 1 and re.findall(r"^FAIL (\w+): ", p.stdout, re.M) == ["forgets_its_worker"],
          "under leakwatch run: exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))


def test_gtest(lwdir):
    prog = fixture("gtest_verify")
    check_weak_imports(prog)
    rc, out, err = run_program([prog], True, lwdir)
    check(rc == 1, "preloaded: exit %d, wanted 1\n%s%s" % (rc, out, err))
    failed = re.findall(r"^\[  FAILED  \] (\S+) \(\d+ ms\)$", out, re.M)
    check(failed == ["Leaks.AWorker"], "failed tests %r, wanted Leaks.AWorker:\n%s" % (failed, out))
    for name in ("Joins.ItsWorker", "Detached.EndsSoon", "Later.Test"):
        check(re.search(r"^\[       OK \] %s \(" % re.escape(name), out, re.M), "%s did not pass:\n%s" % (name, out))
    block = out.split("[ RUN      ] Leaks.AWorker", 1)[1].split("[  FAILED  ] Leaks.AWorker", 1)[0]
    check("leakwatch: Leaks.AWorker leaked threads: 1 thread created since leakwatch_mark()" in block,
          "the failure does not name the test: %s" % block)
    check(re.search(r'tid \d+ "gtest-leaker": \w+, cond 0x', block), "the failure does not name the worker: %s" % block)

    rc, out, err = run_program([prog], False, lwdir)
    check(rc == 0 and "[  PASSED  ] 4 tests." in out, "bare: exit %d\n%s" % (rc, out))
    check(err.count(NOT_CHECKED) == 1, "bare: stderr %r" % err)


def in_private_dir(fn):
    def run():
        tmp, lwdir = private_dir()
        try:
            fn(lwdir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return run


if __name__ == "__main__":
    run_test(in_private_dir({"c": test_c, "gtest": test_gtest}[sys.argv[1]]))
