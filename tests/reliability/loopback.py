"""A loopback listener that counts the connections made to it, for tests that must see (or not see) a client
connect: a reader fetching an external entity, or a sender retrying a factor that is down."""

from __future__ import annotations

import socket
import struct
import threading


class CountingListener:
    """Accepts on 127.0.0.1:``port`` (0: any free port, then read ``.port``) in a thread and counts connections.

    Each accepted connection is closed at once: with ``reset`` by an RST (SO_LINGER 0, as a dead backend behind
    a load balancer answers), otherwise by a plain FIN."""

    def __init__(self, port: int = 0, *, reset: bool = False) -> None:
        self.reset = reset
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port a stopped server just left
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            if self.reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
