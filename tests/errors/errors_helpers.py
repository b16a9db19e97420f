"""Loopback helpers shared by the tests of connmgr.errors."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

import connmgr.errors as errors_module

#: The network error tree (ManagerClosedError, a programming error, stands outside it).
ERROR_CLASSES = [
    obj
    for name in errors_module.__all__
    if isinstance(obj := getattr(errors_module, name), type)
    and issubclass(obj, errors_module.NetworkError)
]


# --------------------------------------------------------------------------- loopback helpers


def closed_port() -> int:
    """A loopback port nobody listens on (bound, noted, closed)."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def raw_server(
    handler: Callable[[socket.socket, threading.Event], None],
    *,
    wrap: ssl.SSLContext | None = None,
) -> Iterator[int]:
    """Accept connections on loopback and hand each to ``handler`` in a thread.

    ``handler`` gets the socket and a stop event; leaving the block sets the
    event, closes the listener and joins the threads, so no test hangs.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        try:
            if wrap is not None:
                conn = wrap.wrap_socket(conn, server_side=True)
            handler(conn, stop)
        except OSError:
            pass  # the client gave up or the handshake failed: expected in these tests
        finally:
            conn.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            worker = threading.Thread(target=serve, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for worker in workers:
            worker.join(2)


def read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def reset_handler(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silent_handler(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    stop.wait(2)


def reply_handler(
    raw: bytes, *, hold: bool = False
) -> Callable[[socket.socket, threading.Event], None]:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(raw)
        if hold:
            stop.wait(2)

    return handler


def failure(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it returns)."""
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("expected the call to fail")


def response(
    status: int,
    headers: dict[str, str] | None = None,
    *,
    url: str = "https://api.example.com/v1/search?q=x",
    body: bytes = b"",
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = {
        200: "OK",
        404: "Not Found",
        429: "Too Many Requests",
        503: "Service Unavailable",
    }.get(status, "")
    r.headers = CaseInsensitiveDict(headers or {})
    r.url = url
    r._content = body
    return r
