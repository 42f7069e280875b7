"""A stand-in for the preload's socket server (docs/protocol.md), for testing
the CLI alone: binds <dir>/.leakwatch.<pid>.tmp, listens, chmods it 0600 and
renames it to <dir>/leakwatch.<pid>.sock, as the preload does, then answers
each connection's one request line with a canned reply and closes.

`replies` maps a request verb ("status", "threads", ...) to bytes, a str, a
JSON-able object, or a callable(request) returning one of those; "*" is the
default. A float `delay` makes the server sleep before answering (a slow
server). Python 3 standard library only.
"""
import json
import os
import socket
import threading
import time


def encode(reply):
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    return json.dumps(reply).encode()


class MockServer:
    def __init__(self, directory, pid, replies, delay=0.0):
        self.directory, self.pid, self.replies, self.delay = directory, pid, replies, delay
        self.requests = []
        self.path = os.path.join(directory, "leakwatch.%d.sock" % pid)
        tmp = os.path.join(directory, ".leakwatch.%d.tmp" % pid)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(tmp)
        os.chmod(tmp, 0o600)
        self.sock.listen(16)
        os.rename(tmp, self.path)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_line(self, conn):
        conn.settimeout(2.0)
        data = b""
        try:
            while b"\n" not in data and len(data) < 4096:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return data.split(b"\n")[0].decode(errors="replace")

    def _answer(self, request):
        reply = self.replies.get(request.split(" ")[0], self.replies.get("*"))
        if callable(reply):
            reply = reply(request)
        if reply is None:
            reply = {"version": 1, "error": "unknown request %r" % request}
        return encode(reply)

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = self._read_line(conn)
                if self.stopping:
                    return
                if not request:
                    continue        # a client that connected and left
                self.requests.append(request)
                if self.delay:
                    time.sleep(self.delay)
                try:
                    conn.settimeout(30.0)
                    conn.sendall(self._answer(request))
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        try:
            os.unlink(self.path)
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
