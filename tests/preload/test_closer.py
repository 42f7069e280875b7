#!/usr/bin/env python3
"""A program that closes all its descriptors and reuses the number of
leakwatch's listening socket for its own: every connection to the program's
socket reaches the program (leakwatch never accepts on an fd that is not
its own), and leakwatch listens again on a fresh socket.
Helpers: tests/integration/lwtest.py."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lwtest import Process, check, private_dir, request, run_test, until  # noqa: E402


def main():
    tmp, _ = private_dir()
    app_sock = os.path.join(tmp, "app.sock")
    try:
        with Process([sys.argv[1], app_sock]) as p:
            p.read_line("LISTENING")
            for i in range(20):
                reply = request(app_sock, b"", timeout=5)
                check(reply == b"mine\n", "connection %d to the program's own socket got %r" % (i, reply))

            def answers():
                try:
                    return json.loads(request(p.socket_path(), b"ping\n", timeout=5)).get("ok")
                except (OSError, ValueError):
                    return False
            until(answers, 5, "leakwatch to answer again after its fd was closed")
            check(request(app_sock, b"", timeout=5) == b"mine\n", "the program lost its socket afterwards")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_test(main)
