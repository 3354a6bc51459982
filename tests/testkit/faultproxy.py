"""A TCP proxy in front of a real database server that loses the connection at COMMIT.

A real network failure at the worst moment, with nothing mocked: the driver, the
server and the transaction are real. The proxy relays every byte both ways until a
connection sends ``COMMIT`` after an ``UPDATE`` of ``ml2_port_bindings`` (a repair's
batch); then it lets the server run the COMMIT, swallows the server's answer and
closes both sides. The server has committed; the client only sees its connection
drop, so the outcome is unknown to it until it re-reads.

``skip``: write batches let through before the one that is cut.
``refuse_after``: once the cut is made, every new connection is closed at once,
so the client cannot re-read either (the outcome stays unknown to it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import sqlalchemy as sa

_WRITE = b"UPDATE ml2_port_bindings"
_COMMIT = b"COMMIT"


class CommitCutter:
    def __init__(self, host: str, port: int, *, skip: int = 0, refuse_after: bool = False):
        self.target = (host, port)
        self.skip = skip
        self.refuse_after = refuse_after
        self.cuts = 0  # connections cut at COMMIT
        self.refused = 0  # connections refused after the cut
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []  # closed on exit: no relay outlives the test

    def url(self, url: str) -> str:
        """``url`` (on the proxied server) pointed at the proxy instead, in clear text
        (the proxy must see the COMMIT: no TLS, even where the server offers it)."""
        u = sa.engine.make_url(url).set(host="127.0.0.1", port=self.port)
        if u.get_backend_name() == "postgresql":
            u = u.update_query_dict({"sslmode": "disable"})
        return u.render_as_string(hide_password=False)

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> CommitCutter:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            _close(*self._sockets)
        for t in self._threads:
            t.join(timeout=5)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    # -- relaying ------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self.refuse_after and self.cuts > 0
                if refuse:
                    self.refused += 1
            if refuse:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            state = {"wrote": False, "commit_sent": False}
            self._spawn(self._client_to_server, client, server, state)
            self._spawn(self._server_to_client, server, client, state)

    def _client_to_server(self, client: socket.socket, server: socket.socket, state) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if _WRITE in data:
                    state["wrote"] = True
                elif _COMMIT in data and state["wrote"]:
                    state["wrote"] = False
                    with self._lock:
                        cut = self.skip <= 0
                        self.skip -= 1
                    if cut:
                        state["commit_sent"] = True  # the answer to this COMMIT is dropped
                server.sendall(data)
        _close(client, server)

    def _server_to_client(self, server: socket.socket, client: socket.socket, state) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if state["commit_sent"]:  # the server ran the COMMIT: its answer is lost
                    with self._lock:
                        self.cuts += 1
                    break
                client.sendall(data)
        _close(client, server)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()


@contextlib.contextmanager
def commit_cutter(url: str, **kw) -> Iterator[CommitCutter]:
    u = sa.engine.make_url(url)
    assert u.host and u.port, url
    with CommitCutter(u.host, u.port, **kw) as proxy:
        yield proxy
