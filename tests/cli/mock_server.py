"""A stand-in for the preload's socket server (docs/protocol.md), for testing
the CLI alone: a listening socket named after a process, answering each
connection's one request line with a canned reply and closing.

The CLI believes only a socket whose peer (SO_PEERCRED) is the process it
names, and the kernel gives a connection the credentials of the process
that called listen(). So the mock's socket is made here, but bound, chmod'ed
0600, listened on and renamed into <dir>/leakwatch.<pid>.sock (as the
preload does) by a helper process of its own, <pid>, which then only waits
(until the mock closes its stdin); this process accepts on the same socket.
An impostor (impostor_for=PID) binds and listens here instead, in PID's
name: its connections carry this process's credentials, not PID's.

`replies` maps a request verb ("status", "threads", ...) to bytes, a str, a
JSON-able object, or a callable(request) returning one of those; "*" is the
default. A float `delay` makes the server sleep before answering (a slow
server). `env` is the helper's environment (a process's own LEAKWATCH_DIR,
read from /proc/PID/environ), `threads` how many threads it runs besides its
main one (the CLI bounds a reply by the thread count). Python 3 standard
library only.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

LISTENER = r"""
import os, socket, sys, threading
fd, directory, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
threading.stack_size(65536)
gate = threading.Event()
for _ in range(threads):
    threading.Thread(target=gate.wait, daemon=True).start()
s = socket.socket(fileno=fd)
tmp = os.path.join(directory, ".leakwatch.%d.tmp" % os.getpid())
s.bind(tmp)
os.chmod(tmp, 0o600)
s.listen(64)
os.rename(tmp, os.path.join(directory, "leakwatch.%d.sock" % os.getpid()))
s.detach()
sys.stdout.write("%d\n" % os.getpid())
sys.stdout.flush()
sys.stdin.read()
"""


def encode(reply):
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    return json.dumps(reply).encode()


class MockServer:
    def __init__(self, directory, replies, delay=0.0, env=None, threads=0, impostor_for=None):
        self.directory, self.replies, self.delay = directory, replies, delay
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.helper = None
        if impostor_for:
            self.pid = impostor_for
            tmp = os.path.join(directory, ".leakwatch.%d.tmp" % self.pid)
            self.sock.bind(tmp)
            os.chmod(tmp, 0o600)
            self.sock.listen(16)
            os.rename(tmp, os.path.join(directory, "leakwatch.%d.sock" % self.pid))
        else:
            fd = self.sock.fileno()
            self.helper = subprocess.Popen([sys.executable, "-c", LISTENER, str(fd), directory, str(threads)],
                                           pass_fds=(fd,), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           env=env if env is not None else os.environ)
            line = self.helper.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError("the mock's listener did not start: %r" % line)
            self.pid = int(line)
        self.path = os.path.join(directory, "leakwatch.%d.sock" % self.pid)
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
                    answer = self._answer(request)
                except Exception as e:   # a broken reply function must not end the server
                    answer = encode({"version": 1, "error": "mock: %s: %r" % (type(e).__name__, e)})
                try:
                    conn.settimeout(30.0)
                    conn.sendall(answer)
                except OSError:
                    pass

    def kill_process(self):
        """The process the socket is named after ends (the socket stays)."""
        if self.helper and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()

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
        if self.helper:
            self.helper.stdin.close()
            self.kill_process()
            self.helper.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
