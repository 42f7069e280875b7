#!/usr/bin/env python3
"""`leakwatch exporter`, scraped over HTTP as Prometheus scrapes it.

  scrape  a deadlocked fixture (fixtures/verdicts deadlock2) and a hung
          process (a socket named as leakwatch's that accepts a question and
          never answers) side by side. A real scrape passes Debian's
          `promtool check metrics`; it shows the fixture up with its two
          deadlocked threads and the hung process as leakwatch_up 0 with the
          whole budget as its ask time, and it ends within the budget: the
          hung process costs one timed-out sample. Prometheus's own timeout
          header shortens the budget of that scrape (the asks' socket
          deadline stays --budget, so only the scrape's own deadline can end
          it that soon). Eight scrapers at once, three scrapes each: every
          one answered in full, in time. /other is 404, POST 405,
          SIGTERM stops it with status 0, and a port in use is exit 2.
  alerts  docs/leakwatch-alerts.yml passes `promtool check rules`, and
          `promtool test rules tests/exporter/alerts_test.yml`: each alert
          fires after its `for`, for the process that earned it only.

`scrape` runs in a network namespace of its own (the test re-runs itself
under `unshare --net`, loopback up): /proc/net/unix, where leakwatch finds
sockets, then lists only this test's processes, so its many scrapes never
ask the processes of other tests running beside it."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from lwtest import CLI, SLOW, Process, TestFailure, check, fixture, run_test, until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUDGET = 2.0
SLACK = 1.0 * SLOW       # a scrape may take this much longer than its budget (rendering, a loaded machine)

HUNG = r"""
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.path.join(sys.argv[1], "leakwatch.%d.sock" % os.getpid()))
s.listen(16)
print("READY", flush=True)
held = []
while True:
    c, _ = s.accept()   # take the question, never answer it
    held.append(c)
"""


def promtool():
    for d in os.environ.get("PATH", "").split(":"):
        if os.access(os.path.join(d, "promtool"), os.X_OK):
            return os.path.join(d, "promtool")
    check(False, "promtool is not installed (Debian's prometheus package: scripts/setup installs it)")


def scrape(url, headers=None):
    """(text, seconds) of one GET."""
    start = time.time()
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as r:
        check(r.status == 200, "status %d" % r.status)
        ctype = r.headers.get("Content-Type", "")
        check(ctype.startswith("text/plain; version=0.0.4"), "Content-Type %r" % ctype)
        return r.read().decode(), time.time() - start


def value(text, name, pid, extra=""):
    """The sample of NAME for PID (with the extra label text), or None."""
    m = re.search(r'^%s\{pid="%d",command="(?:[^"\\]|\\.)*"%s\} (\S+)$' % (re.escape(name), pid, re.escape(extra)), text, re.M)
    return float(m.group(1)) if m else None


def check_complete(text, fixture_pid, hung_pid, seconds, budget):
    check(value(text, "leakwatch_up", fixture_pid) == 1, "the fixture is not up: %s" % text[:3000])
    check(value(text, "leakwatch_up", hung_pid) == 0, "the hung process is not down: %s" % text[:3000])
    asked = value(text, "leakwatch_ask_duration_seconds", hung_pid)
    # The exporter stops waiting at the budget and writes the time it waited:
    # the budget itself, give or take the scheduling of a loaded machine.
    check(asked is not None and budget - 0.01 < asked < budget + SLACK,
          "the hung process's ask time %r, wanted the budget %r" % (asked, budget))
    check(seconds < budget + SLACK, "the scrape took %.2fs, the budget is %.1fs" % (seconds, budget))
    m = re.search(r"^leakwatch_scrape_duration_seconds (\S+)$", text, re.M)
    check(m and budget - 0.05 <= float(m.group(1)) < budget + SLACK, "scrape duration %r" % (m and m.group(1)))


def start_exporter(lwdir, *args):
    env = dict(os.environ, LEAKWATCH_DIR=lwdir)
    env.pop("LD_PRELOAD", None)
    p = subprocess.Popen([CLI, "exporter", "--listen", "127.0.0.1:0"] + list(args), stderr=subprocess.PIPE,
                         text=True, env=env)
    line = p.stderr.readline()
    m = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", line)
    check(m, "the exporter did not say where it serves: %r (exit %r)" % (line, p.poll()))
    p.said = []   # the rest of its stderr, shown when a check fails (a sanitizer's report, a crash)

    def keep():
        for rest in p.stderr:
            p.said.append(rest)
    threading.Thread(target=keep, daemon=True).start()
    return p, m.group(1)


def exporter_state(p):
    """How the exporter is doing, for a failure's message."""
    time.sleep(0.2)
    return "exporter %s; its stderr: %r" % ("running" if p.poll() is None else "exited %r" % p.returncode,
                                            "".join(p.said)[-3000:])


def concurrent_scrapes(url, fixture_pid, hung_pid):
    results, errors = [], []

    def scraper():
        try:
            for _ in range(3):
                text, seconds = scrape(url)
                check_complete(text, fixture_pid, hung_pid, seconds, BUDGET)
                results.append(seconds)
        except Exception as e:   # noqa: BLE001 -- reported below
            errors.append(e)
    threads = [threading.Thread(target=scraper) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, "concurrent scrapes failed: %s" % errors[:3])
    check(len(results) == 24, "%d of 24 concurrent scrapes done" % len(results))


def check_errors(base):
    for path, method, status in (("/other", "GET", 404), ("/metrics", "POST", 405)):
        try:
            urllib.request.urlopen(urllib.request.Request(base + path, method=method, data=b"" if method == "POST"
                                                          else None), timeout=10)
            check(False, "%s %s answered 200" % (method, path))
        except urllib.error.HTTPError as e:
            check(e.code == status, "%s %s: %d, wanted %d" % (method, path, e.code, status))


def check_busy_port():
    """An address it cannot listen on is exit 2, said in one line."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        r = subprocess.run([CLI, "exporter", "--listen", "127.0.0.1:%d" % taken.getsockname()[1]], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 2 and r.stderr.startswith("leakwatch exporter: cannot listen on 127.0.0.1:")
              and r.stderr.count("\n") == 1, "a busy port: exit %d, %r" % (r.returncode, r.stderr))
    finally:
        taken.close()


def test_scrape():
    check_busy_port()
    with Process([fixture("verdicts"), "deadlock2"]) as p:
        p.read_line("READY")
        hung = subprocess.Popen([sys.executable, "-c", HUNG, p.dir], stdout=subprocess.PIPE, text=True)
        exporter = None
        try:
            check(hung.stdout.readline().startswith("READY"), "the hung process did not start")
            exporter, base = start_exporter(p.dir, "--budget", str(BUDGET))
            url = base + "/metrics"

            def deadlocked():
                text, seconds = scrape(url)
                check(value(text, "leakwatch_threads", p.pid, ',verdict="deadlocked"') == 2,
                      "not 2 deadlocked threads yet: %s" % text[:2000])
                return text, seconds
            text, seconds = until(deadlocked, 10, "the fixture's deadlock in a scrape")
            check_complete(text, p.pid, hung.pid, seconds, BUDGET)
            listed = sorted(int(x) for x in re.findall(r'^leakwatch_up\{pid="(\d+)"', text, re.M))
            check(listed == sorted([p.pid, hung.pid]), "processes of other tests are scraped too: %r" % listed)
            checked = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
            check(checked.returncode == 0, "promtool check metrics: %s%s\n%s" % (checked.stdout, checked.stderr,
                                                                               text[:3000]))

            # Prometheus says it gives up after 1.2 s: this scrape's budget is 0.7 s.
            text, seconds = scrape(url, {"X-Prometheus-Scrape-Timeout-Seconds": "1.2"})
            check_complete(text, p.pid, hung.pid, seconds, 0.7)

            try:
                concurrent_scrapes(url, p.pid, hung.pid)
            except TestFailure as e:
                raise TestFailure("%s\n  %s" % (e, exporter_state(exporter)))
            check_errors(base)
            exporter.send_signal(signal.SIGTERM)
            check(exporter.wait(timeout=10) == 0, "the exporter exited %r on SIGTERM" % exporter.returncode)
        finally:
            hung.kill()
            hung.wait()
            if exporter and exporter.poll() is None:
                exporter.kill()
                exporter.wait()


def test_alerts():
    rules = os.path.join(ROOT, "docs", "leakwatch-alerts.yml")
    r = subprocess.run([promtool(), "check", "rules", rules], capture_output=True, text=True)
    check(r.returncode == 0, "promtool check rules: %s%s" % (r.stdout, r.stderr))
    r = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], capture_output=True, text=True,
                       cwd=os.path.join(ROOT, "tests", "exporter"))
    check(r.returncode == 0 and "SUCCESS" in r.stdout, "promtool test rules: %s%s" % (r.stdout, r.stderr))


def in_own_network(fn):
    """Run fn in a new network namespace, loopback up (re-running this file)."""
    def run():
        if sys.argv[2:] == ["inside"]:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            return fn()
        argv = ["unshare", "--net"]
        if os.geteuid() != 0:
            argv.insert(1, "--map-root-user")
        r = subprocess.run(argv + [sys.executable, os.path.abspath(__file__), sys.argv[1], "inside"],
                           capture_output=True, text=True, timeout=240)
        check(r.returncode == 0, "in its network namespace (exit %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    return run


if __name__ == "__main__":
    run_test({"scrape": in_own_network(test_scrape), "alerts": test_alerts}[sys.argv[1]])
