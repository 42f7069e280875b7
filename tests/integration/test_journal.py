#!/usr/bin/env python3
"""LEAKWATCH_LOG=journal, against a journal socket of our own: the test
re-runs itself in private mount and network namespaces (unshare), mounts a
tmpfs on /run and binds a datagram socket at /run/systemd/journal/socket,
where libsystemd sends, and decodes journald's native protocol itself.

With the network namespace's net.unix.max_dgram_qlen set to 0 before the
socket is made, the journal takes one entry and is full from then on, as a
journald that has fallen behind: libsystemd's next send blocks. A
deadlocked fixture (fixtures/verdicts deadlock2) logs every second.
While the journal stays full, for 6 s (12 s under a sanitizer, where
everything is slower), the process must keep answering
`leakwatch status` within a second, every time (no thread of the program,
nor its socket's, waits for the journal). Then the journal is read: the
entries carry MESSAGE (the summary line), PRIORITY=4, SYSLOG_IDENTIFIER,
LEAKWATCH_PID, LEAKWATCH_LEAKED=1 once the two threads are deadlocked,
LEAKWATCH_DEADLOCKED=2 and the other counts, and one after the jam says how
many entries were replaced meanwhile (LEAKWATCH_DROPPED). The preload does
not link libsystemd, and a process logging elsewhere never loads it."""
import os
import re
import socket
import struct
import subprocess
import sys
import time
from lwtest import SLOW, Process, check, fixture, run_test

JOURNAL = "/run/systemd/journal/socket"
JAM = 6.0 * (2 if SLOW > 1 else 1)   # seconds the journal stays full: room for at least 4 summaries, loaded


def decode(datagram):
    """journald's native protocol: NAME=value lines, or NAME\\n, a 64-bit
    little-endian length, the value and \\n."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k, (n,) = line, struct.unpack("<Q", datagram[nl + 1:nl + 9])
            v = datagram[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode()
    return fields


def drain(sock, seconds):
    entries, end = [], time.time() + seconds
    while time.time() < end:
        sock.settimeout(max(0.05, end - time.time()))
        try:
            entries.append(decode(sock.recv(65536)))
        except socket.timeout:
            pass
    return entries


def maps_mention(pid, what):
    with open("/proc/%d/maps" % pid) as f:
        return what in f.read()


def inside():
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    os.makedirs(os.path.dirname(JOURNAL))
    with open("/proc/sys/net/unix/max_dgram_qlen", "w") as f:
        f.write("0")   # one datagram queued fills the journal
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(JOURNAL)
    env = {"LEAKWATCH_LOG": "journal", "LEAKWATCH_LOG_INTERVAL_MS": "1000"}
    with Process([fixture("verdicts"), "deadlock2"], env=env) as p, \
            Process([fixture("verdicts"), "deadlock2"], env={"LEAKWATCH_LOG": "stderr"}) as other:
        p.read_line("READY")
        other.read_line("READY")
        # The journal is full after its first entry: the process must answer all along.
        # A summary a second: one queued, the next blocked in the writer, the
        # third waits in the mailbox, the fourth and later replace it.
        jam_end = time.time() + JAM
        asks = 0
        while time.time() < jam_end:
            start = time.time()
            r = p.cli("status", str(p.pid), env={"LEAKWATCH_TIMEOUT_MS": str(int(1000 * SLOW))})
            check(r.returncode in (0, 1), "while the journal is full, status exit %d: %s" % (r.returncode, r.stderr))
            check(time.time() - start < 1.5 * SLOW, "status took %.2fs while the journal is full" % (time.time() - start))
            asks += 1
            time.sleep(0.2)
        check(asks >= 10, "only %d asks" % asks)
        check(maps_mention(p.pid, "libsystemd.so"), "LEAKWATCH_LOG=journal did not load libsystemd")
        check(not maps_mention(other.pid, "libsystemd.so"), "LEAKWATCH_LOG=stderr loaded libsystemd")
        entries = drain(journal, 3)
    check(len(entries) >= 2, "entries: %r" % entries)
    for e in entries:
        check(e.get("LEAKWATCH_PID") == str(p.pid) and e.get("SYSLOG_IDENTIFIER") == "leakwatch", "entry %r" % e)
        check(re.match(r"leakwatch: pid %d: \d+ threads: " % p.pid, e.get("MESSAGE", "")), "MESSAGE %r" % e)
        counts = [int(e["LEAKWATCH_" + k]) for k in ("RUNNING", "WAITING", "SUSPECT", "LEAKED_THREADS", "DEADLOCKED")]
        check(sum(counts) == int(e["LEAKWATCH_THREADS"]), "counts %r in %r" % (counts, e))
        stuck = counts[3] + counts[4] > 0
        check(e["LEAKWATCH_LEAKED"] == ("1" if stuck else "0") and e["PRIORITY"] == ("4" if stuck else "6"), e)
    check(any(e["LEAKWATCH_LEAKED"] == "1" and e["LEAKWATCH_DEADLOCKED"] == "2" for e in entries),
          "no entry with the two deadlocked threads: %r" % entries)
    check(any(int(e.get("LEAKWATCH_DROPPED", 0)) >= 1 for e in entries[1:]),
          "no entry after the jam says what was dropped: %r" % entries)


def main():
    needed = subprocess.run(["readelf", "-d", os.environ["LEAKWATCH_PRELOAD"]], capture_output=True, text=True).stdout
    check("libsystemd" not in needed, "the preload links libsystemd: %s" % needed)
    argv = ["unshare", "--mount", "--net", "--propagation", "private"]
    if os.geteuid() != 0:
        argv.insert(1, "--map-root-user")
    r = subprocess.run(argv + [sys.executable, os.path.abspath(__file__), "inside"], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, "in the namespaces (exit %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))


if __name__ == "__main__":
    run_test(inside if sys.argv[1:] == ["inside"] else main)
