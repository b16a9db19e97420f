"""Fixtures shared by the whole suite.

The connmgr pytest plugin (``connmgr.testing.plugin``) already provides
``fault_server``, ``tls_fault_server``, ``fake_clock`` and ``probe_target``;
this file adds what only connmgr's own tests need.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest


class RawServer:
    """A loopback server that answers every request with fixed bytes, then closes.

    For responses no well-behaved server sends (malformed headers, truncated
    bodies). ``requests`` counts the requests it read: a resent request shows.
    """

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data)
                    conn.sendall(self.response)
                except OSError:
                    pass

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=2)


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], RawServer]]:
    """A factory of :class:`RawServer`; every server made is closed after the test."""
    made: list[RawServer] = []

    def make(response: bytes) -> RawServer:
        server = RawServer(response)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()
