"""``request_sent`` tells the truth: once the request was being written, it is True.

Malformed answers to a POST are the dangerous case: the server received the
request, so an app that trusts ``request_sent=False`` would send it twice.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from connmgr.errors import ConnectionFailedError, NetworkError
from connmgr.timeouts import TimeoutConfig
from connmgr.transport import create_session

StartServer = Callable[..., Any]  # conftest's scripted_server factory

MALFORMED: dict[str, bytes] = {
    "two different Content-Length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nok"
    ),
    "garbage status line": b"HTTP/1.1 abc\r\n\r\n",
    "not HTTP at all": b"SSH-2.0-OpenSSH_9.6\r\n",
    "closed without an answer": b"",
}


@pytest.mark.parametrize("total", [5.0, None], ids=["with-total", "no-total"])
@pytest.mark.parametrize("answer", list(MALFORMED), ids=list(MALFORMED))
def test_a_post_answered_badly_was_sent_once_and_says_so(
    scripted_server: StartServer, answer: str, total: float | None
) -> None:
    def handler(conn: socket.socket, head: bytes, body: bytes) -> bool:
        conn.sendall(MALFORMED[answer])
        return False

    server = scripted_server(handler)
    session = create_session(TimeoutConfig(connect=2, read=2, total=total))
    with pytest.raises(NetworkError) as info:
        session.post(server.url + "/order", data=b"one order")
    assert info.value.request_sent is True, info.value
    assert len(server.heads) == 1
    assert server.heads[0].startswith(b"POST /order ")


def test_a_refused_connection_proves_nothing_was_sent() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there any more
    session = create_session(TimeoutConfig(connect=2, read=2, total=5))
    with pytest.raises(ConnectionFailedError) as info:
        session.post(f"http://127.0.0.1:{port}/order", data=b"one order")
    assert info.value.kind == "refused"
    assert info.value.request_sent is False


def test_a_stale_keep_alive_connection_counts_as_sent(scripted_server: StartServer) -> None:
    # The first answer keeps the connection open; the server then drops it
    # without a word when the second request arrives on it.
    def handler(conn: socket.socket, head: bytes, body: bytes) -> bool:
        if b"/first" in head:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return True
        return False

    server = scripted_server(handler)
    session = create_session(TimeoutConfig(connect=2, read=2, total=5))
    assert session.get(server.url + "/first").content == b"ok"
    with pytest.raises(ConnectionFailedError) as info:
        session.post(server.url + "/second", data=b"x")
    assert info.value.request_sent is True
    assert server.connections == 1


def test_a_tls_handshake_that_fails_proves_nothing_was_sent() -> None:
    # The server answers the TLS ClientHello in plain HTTP: the handshake fails
    # on a connection connmgr was tracking, before any byte of the request.
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_plain_http() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer_in_plain_http, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/order"
        session = create_session(TimeoutConfig(connect=2, read=2, total=5))
        with pytest.raises(NetworkError) as info:
            session.post(url, data=b"one order", verify=False)
        assert info.value.request_sent is False, info.value
    finally:
        thread.join(5.0)
        listener.close()


def test_a_deadline_during_the_tls_handshake_says_not_sent() -> None:
    # A listener that accepts (the kernel does) and never speaks TLS.
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/order"
        session = create_session(TimeoutConfig(connect=2, read=2, total=0.2))
        with pytest.raises(NetworkError) as info:
            session.post(url, data=b"one order", verify=False)
        assert info.value.request_sent is False, info.value
    finally:
        listener.close()
