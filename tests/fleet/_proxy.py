"""A TCP proxy in front of PostgreSQL that a test can cut and restore: a real network fault.

While cut, every open connection is closed and new ones are accepted and closed at once
(what a client sees when the server restarts or a failover happens); restored, it
forwards again. The PostgreSQL server itself is never touched.
"""

from __future__ import annotations

import selectors
import socket
import threading
from contextlib import suppress
from types import TracebackType


class CuttableProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream`` in one thread of its own.

    Args:
        upstream: ``(host, port)`` of the real server.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, "wakeup")
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-proxy")
        self._thread.start()

    def __enter__(self) -> CuttableProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connections(self) -> int:
        """Client connections currently forwarded."""
        with self._lock:
            return len(self._peers) // 2

    def cut(self) -> None:
        """Close every forwarded connection and refuse (accept, then close) new ones."""
        with self._lock:
            self._cut = True
        self._poke()

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop the proxy and close everything."""
        with self._lock:
            self._closed = True
        self._poke()
        self._thread.join(5)

    def _poke(self) -> None:
        with suppress(OSError):
            self._wakeup_w.send(b"x")

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    closed, cut = self._closed, self._cut
                if closed:
                    return
                if cut:
                    self._drop_all()
                for key, _ in self._selector.select(timeout=None):
                    if key.data == "wakeup":
                        with suppress(OSError):
                            self._wakeup_r.recv(4096)
                    elif key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._pump(key.fileobj)  # type: ignore[arg-type]
        finally:
            self._drop_all()
            self._selector.close()
            self._listener.close()
            self._wakeup_r.close()
            self._wakeup_w.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            cut = self._cut
        if cut:
            client.close()
            return
        try:
            server = socket.create_connection(self._upstream, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, "peer")
        with self._lock:
            self._peers[client] = server
            self._peers[server] = client

    def _pump(self, sock: socket.socket) -> None:
        with self._lock:
            other = self._peers.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(65536)
            if data:
                other.setblocking(True)
                other.sendall(data)
                other.setblocking(False)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            other = self._peers.pop(sock, None)
            if other is not None:
                self._peers.pop(other, None)
        for s in (sock, other):
            if s is not None:
                with suppress(KeyError, ValueError):
                    self._selector.unregister(s)
                s.close()

    def _drop_all(self) -> None:
        with self._lock:
            socks = list(self._peers)
        for sock in socks:
            self._drop(sock)
