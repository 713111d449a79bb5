"""A loopback TCP proxy the fault tests put in front of PostgreSQL, to cut and restore it (and,
with the HTTP-aware subclass in `tests/support/s3server.py`, in front of the test S3 server).

`cut()` closes every open connection (the server "goes away" mid-query) and answers new ones
by closing them at once (the server is unreachable); `restore()` lets connections through again.
Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            with self._lock:
                self._sockets.update((client, upstream))
            self._bridge(client, upstream)

    def _bridge(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways, one thread each (a subclass may read the requests instead)."""
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._sockets.discard(s)
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            live = list(self._sockets)
        self._drop(*live)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
