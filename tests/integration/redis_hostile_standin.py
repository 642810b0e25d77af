#!/usr/bin/env python3
"""A stand-in "Redis server" for tests; it is not Redis.

It listens on 127.0.0.1 (a free port, printed on stdout as its first line)
and answers every command on every connection with one hostile reply, chosen
by the first argument:

  huge-bulk     a bulk length of 9999999999999999 bytes, and nothing after it
  huge-array    an array of 9999999999 elements, and nothing after them
  deep-nesting  a million nested one-element arrays
  endless-line  a status line of 10 MiB without CRLF, then the socket stays open

It stops by itself after the seconds given as the second argument (60 by
default), so a test that goes wrong cannot leave it behind.
"""

import socket
import sys
import threading
import time

REPLIES = {
    "huge-bulk": b"$9999999999999999\r\n",
    "huge-array": b"*9999999999\r\n",
    "deep-nesting": b"*1\r\n" * 1_000_000,
    "endless-line": b"+" + b"x" * (10 << 20),
}


def serve(conn, reply):
    try:
        with conn:
            # Whatever the command, once some of it arrived: the hostile reply.
            while conn.recv(65536):
                conn.sendall(reply)
                # Keep the socket open, without CRLF or anything else.
                while conn.recv(65536):
                    pass
                return
    except OSError:
        pass  # the client hung up mid-reply, as it should


def main():
    reply = REPLIES[sys.argv[1]]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.5)
    print(listener.getsockname()[1], flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, reply), daemon=True).start()


if __name__ == "__main__":
    main()
