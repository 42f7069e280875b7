#!/usr/bin/env python3
"""Bad clients on the socket, raw: an unknown verb, an empty line, a 10 kB
line, binary bytes, half a line then a hang-up, a client that connects and
sends nothing (dropped after ~2 s while others are still served soon after),
and a client that asks for a large report and never reads (the write is
bounded by a deadline). Each gets an error reply or a closed connection,
never data; afterwards the host still answers, its report is intact, and its
own stdout/stderr carry nothing of ours."""
import json
import socket
import time
from lwtest import SLOW, Process, check, fixture, ping, request, run_test, thread_by_tid

EXTRA = 800   # parked threads, so that a full report (~350 kB) overflows the socket buffer


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20 * SLOW)
    s.connect(path)
    return s


def refused(path, data, what):
    """The reply to data is an error object or nothing at all."""
    reply = request(path, data)
    if reply == b"":
        return None
    try:
        obj = json.loads(reply)
    except ValueError:
        obj = None
    check(isinstance(obj, dict), "%s: the reply is not a JSON object: %r" % (what, reply[:300]))
    check(obj.get("version") == 1 and isinstance(obj.get("error"), str) and obj["error"],
          "%s: the reply is not a versioned error: %r" % (what, reply[:300]))
    check(not ({"threads", "summary", "ok", "pid"} & set(obj)), "%s: got data: %r" % (what, reply[:300]))
    return obj["error"]


def timed_ping(path):
    start = time.time()
    ping(path)
    return time.time() - start


def main():
    with Process([fixture("park"), "sem", str(EXTRA)]) as p:
        ready = p.read_line("READY", timeout=30)
        tid = int(ready["tid"])
        path = p.wait_socket()
        ping(path)

        check(refused(path, b"frobnicate\n", "unknown verb") is not None, "an unknown verb got no error reply")
        check(refused(path, b"\n", "empty line") is not None, "an empty line got no error reply")
        refused(path, b"threads" + b"x" * 10240 + b"\n", "10 kB line")
        refused(path, b"thr\x00\xff\x01eads\n", "binary bytes")
        refused(path, b"PING\r\n\x7f", "control characters")
        # Half a line, then a hang-up; a connect and an immediate hang-up.
        s = connect(path)
        s.sendall(b"thre")
        s.close()
        connect(path).close()
        ping(path)

        # A client that sends nothing is dropped after ~2 s; another client
        # is served once it is (the server takes one connection at a time).
        silent = connect(path)
        start = time.time()
        waited = silent_wait = timed_ping(path)
        check(waited < 4.0 * SLOW, "a ping waited %.1fs behind a silent client (the read deadline is 2 s)" % waited)
        data = b""
        while True:
            chunk = silent.recv(65536)
            if not chunk:
                break
            data += chunk
        dropped_after = time.time() - start
        silent.close()
        check(dropped_after < 5.0 * SLOW, "the silent client was dropped after %.1fs" % dropped_after)
        check(data == b"" or "error" in json.loads(data), "the silent client got %r" % data[:300])

        # A client that asks for the full report and never reads: the server
        # must give up on it within its write deadline and serve others.
        lazy = connect(path)
        lazy.sendall(b"threads\n")
        time.sleep(0.3)
        waited = timed_ping(path)
        check(waited < 8.0 * SLOW, "a ping waited %.1fs behind a client that never reads" % waited)
        lazy.settimeout(10 * SLOW)
        got = b""
        while True:
            chunk = lazy.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        lazy.close()
        check(len(got) > 0, "the lazy client got nothing at all")
        print("ping behind a silent client: %.2fs; silent client dropped after %.2fs; ping behind a "
              "non-reading client: %.2fs (it got %d bytes)" % (silent_wait, dropped_after, waited, len(got)))

        # The host is intact: it answers, reports its parked thread, and
        # printed nothing of ours.
        ping(path)
        report = p.threads()
        t = thread_by_tid(report, tid)
        check(t is not None and t["state"] == "parked" and t["wait"]["kind"] == "sem",
              "the host's parked thread is no longer reported right: %r" % (t and t["wait"]))
        check(report["summary"]["threads"] >= EXTRA + 2, "only %d threads reported" % report["summary"]["threads"])
        extra_out = p.more_output(wait=0.2)
        check(not extra_out, "the host printed: %r" % extra_out)
        check(p.alive(), "the host died")
        err = p.stderr_so_far()
        check(err == "", "the host's stderr: %r" % err[-1000:])


if __name__ == "__main__":
    run_test(main)
