"""A sustained slowloris flood on loopback, for the hostile suite and bench/slow_clients.py."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class SlowlorisFlood:
    """``size`` slowloris clients held open at all times: each sends a request head one byte at a
    time and never finishes it; one the server closes is replaced at once."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.connections = 0  # made over the flood's life
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowlorisFlood:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def _connect(self) -> socket.socket | None:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            return None
        self.connections += 1
        s.setblocking(False)
        return s

    def _run(self) -> None:
        held: dict[int, socket.socket] = {}
        poller = select.poll()  # not select(): a flood holds more than 1,024 descriptors
        dripped = time.monotonic()
        try:
            while not self.stop.is_set():
                while len(held) < self.size and not self.stop.is_set():
                    s = self._connect()
                    if s is None:
                        break
                    held[s.fileno()] = s
                    poller.register(s, select.POLLIN)
                for fd, _ in poller.poll(200):  # closed (or answered) by the server: replaced next turn
                    poller.unregister(fd)
                    held.pop(fd).close()
                if time.monotonic() - dripped >= 1.0:  # one more byte a second on each
                    dripped = time.monotonic()
                    for s in held.values():
                        with contextlib.suppress(OSError):
                            s.send(b"X")
        finally:
            for s in held.values():
                s.close()
