#!/usr/bin/env python3
"""Bad clients on the socket, raw: an unknown verb, an empty line, a 10 kB
line, binary bytes, half a line then a hang-up, a client that connects and
sends nothing (dropped after ~2 s while others are still served soon after),
and a client that asks for a large report and never reads (the write is
bounded by a deadline). Each gets an error reply or a closed connection,
never data; afterwards the host still answers, its report is intact, and its
own stdout/stderr carry nothing of ours.

Meanwhile, on a second host (the two run at once: each phase waits for the
server's deadlines), slow and half-open clients, each of which must get its
complete reply or a clean close (never a partial or garbled reply followed
by more data), while the host keeps serving others within a bounded delay: a
client that reads its reply 1 byte per 100 ms; one that half-closes
(SHUT_WR) after its request and then reads; one that sends its request 1
byte per 100 ms (in time) and one that sends it 1 byte per 600 ms (past the
2 s read deadline); one that sends half a line and then holds the connection
open, never closing, while 50 others connect and are all served; and one
that resets (SO_LINGER 0) in the middle of a large reply."""
import json
import socket
import struct
import threading
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


def read_all(s, pace=0.0, size=65536):
    """Everything until the server closes (a reset counts as a close),
    reading size bytes every pace seconds."""
    out = b""
    while True:
        try:
            chunk = s.recv(size)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk
        if pace:
            time.sleep(pace)


def check_reply(data, what, verb=None):
    """data is one complete JSON reply (a data reply with `verb`'s key when
    verb is given, else an error), or nothing at all (a clean close)."""
    if data == b"":
        check(verb is None, "%s: closed without a reply" % what)
        return None
    check(data.endswith(b"\n") and data.count(b"\n") == 1, "%s: not one complete line: %r" % (what, data[-300:]))
    obj = json.loads(data)
    check(obj.get("version") == 1, "%s: not versioned: %r" % (what, data[:300]))
    if verb:
        check(verb in obj and "error" not in obj, "%s: not a %r reply: %r" % (what, verb, data[:300]))
    else:
        check(isinstance(obj.get("error"), str), "%s: not an error: %r" % (what, data[:300]))
    return obj


def in_background(fn, *args):
    """Run fn(*args) in a thread; join() returns its result or raises its error."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:   # noqa: BLE001 -- handed to the joining thread
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout):
        t.join(timeout * SLOW)
        check(not t.is_alive(), "a background client was still running after %.0fs" % (timeout * SLOW))
        if "error" in box:
            raise box["error"]
        return box.get("value")
    return join


def slow_reader(path):
    """Reads its ping reply 1 byte per 100 ms: gets all of it."""
    s = connect(path)
    s.sendall(b"ping\n")
    data = read_all(s, pace=0.1, size=1)
    s.close()
    return check_reply(data, "a client reading 1 byte per 100 ms", "ok")


def half_closer(path, request, verb):
    """Sends request, shuts its writing side down, then reads."""
    s = connect(path)
    s.sendall(request)
    s.shutdown(socket.SHUT_WR)
    data = read_all(s)
    s.close()
    return check_reply(data, "a half-closed client (%r)" % request, verb)


def slow_sender(path, request, pace, verb):
    """Sends request 1 byte per pace seconds, then reads."""
    s = connect(path)
    try:
        for b in request:
            s.sendall(bytes([b]))
            time.sleep(pace)
    except (BrokenPipeError, ConnectionResetError):
        pass   # dropped at the read deadline: its reply (an error) is still readable
    data = read_all(s)
    s.close()
    return check_reply(data, "a client sending 1 byte per %.1fs" % pace, verb)


def resetter(path):
    """Asks for the large report, reads a little, and resets the connection
    (SO_LINGER 0) while the server is still writing."""
    s = connect(path)
    s.sendall(b"threads\n")
    got = s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return len(got)


def slow_and_half_open_clients(path):
    # A slow reader, in the background: the server wrote its small reply
    # into the socket buffer at once, so others are served meanwhile.
    reading = in_background(slow_reader, path)
    waited = timed_ping(path)
    check(waited < 4.0 * SLOW, "a ping waited %.1fs behind a client reading slowly" % waited)
    half_closer(path, b"status\n", "summary")
    half_closer(path, b"ping", None)   # the line never ends: an error, not a hang
    reading(30)

    # Slow senders hold only their own connection (the server serves its
    # connections side by side, each bounded by the 2 s read deadline): a
    # ping meanwhile is answered within the same generous bound as ever.
    slow_sender(path, b"ping\n", 0.1, "ok")
    sending = in_background(slow_sender, path, b"status\n", 0.6, None)
    time.sleep(0.3)
    behind_slow_sender = timed_ping(path)
    check(behind_slow_sender < 4.0 * SLOW,
          "a ping waited %.1fs behind a client sending 1 byte per 600 ms" % behind_slow_sender)
    sending(30)

    # Half a line, then held open for ever (never closed by the client)
    # while 50 others connect: all 50 are served, the holder is dropped.
    holder = connect(path)
    holder.sendall(b"thr")
    start = time.time()
    pings = [in_background(timed_ping, path) for _ in range(50)]
    slowest = max(join(60) for join in pings)
    check(slowest < 10.0 * SLOW, "one of 50 pings behind a holding client waited %.1fs" % slowest)
    holder.settimeout(10 * SLOW)
    check_reply(read_all(holder), "a client holding half a line")
    held_for = time.time() - start
    holder.close()

    # A reset in the middle of a large reply: the server gives up on it at
    # once (no SIGPIPE, no wait for its write deadline) and serves the next.
    got = resetter(path)
    after_reset = timed_ping(path)
    check(after_reset < 4.0 * SLOW, "a ping waited %.1fs after a client reset mid-reply" % after_reset)
    print("slow sender held a ping %.2fs; 50 pings behind a holder: slowest %.2fs, holder dropped after %.2fs; "
          "ping after a reset (at %d bytes): %.2fs" % (behind_slow_sender, slowest, held_for, got, after_reset))


def host_intact(p, tid):
    """The host answers, reports its parked thread, and printed nothing of
    ours."""
    ping(p.socket_path())
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


def main():
    # Two hosts, each served by its own server:
    # the bad requests on one, the slow and half-open clients on the other,
    # at once (each phase's delays are the server's deadlines, seconds each).
    with Process([fixture("park"), "sem", str(EXTRA)]) as p, Process([fixture("park"), "sem", str(EXTRA)]) as q:
        ready = p.read_line("READY", timeout=30)
        tid = int(ready["tid"])
        path = p.wait_socket()
        ping(path)
        q_tid = int(q.read_line("READY", timeout=30)["tid"])
        q_path = q.wait_socket()
        ping(q_path)
        slow_clients = in_background(slow_and_half_open_clients, q_path)

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
        # is served meanwhile (the server serves connections side by side).
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

        slow_clients(120)

        # Both hosts are intact.
        host_intact(p, tid)
        host_intact(q, q_tid)


if __name__ == "__main__":
    run_test(main)
