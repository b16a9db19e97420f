"""request_sent tells the truth: a failure after the first byte was written never says "not sent".

The malformed answers come from raw loopback sockets that read the whole
request (so it provably arrived) and then answer with bytes no HTTP library
accepts; the transport's own knowledge (``request_sent=``) overrides the guess.
"""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from errors_helpers import failure, raw_server, read_request, reply_handler, silent_handler

from connmgr.errors import (
    ConnectionFailedError,
    InvalidRequestError,
    NetworkError,
    RequestTimeoutError,
    classify_error,
    is_retryable,
    judge,
)
from connmgr.errors.verdict import Outcome

TWO_LENGTHS = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"


class Recorder:
    """A raw server handler that answers ``raw`` and counts the requests it read in full."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, stop: threading.Event) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        with self.lock:
            self.bodies.append(body)
        conn.sendall(self.raw)


def test_a_post_answered_with_two_content_lengths_was_sent() -> None:
    recorder = Recorder(TWO_LENGTHS)
    with raw_server(recorder) as port:
        exc = failure(
            lambda: requests.post(f"http://127.0.0.1:{port}/order", data=b"item=1", timeout=2)
        )
    assert recorder.bodies == [b"item=1"]  # the server got the POST, once
    err = classify_error(exc)
    assert not isinstance(err, InvalidRequestError)
    assert type(err) is NetworkError and err.kind == "invalid_response"
    assert err.request_sent is True
    assert "could not be sent" not in err.user_message
    assert err.user_message == "The server sent a reply that could not be read."
    assert not is_retryable(err)
    verdict = judge(exc)
    assert verdict.request_sent is True and verdict.outcome is Outcome.FATAL
    assert verdict.error is not None and verdict.error.request_sent is True


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"garbage\r\n\r\n", "reset"),  # no status line: http.client's BadStatusLine
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "incomplete"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "incomplete"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!",
            "decoding",
        ),
    ],
)
def test_every_malformed_answer_to_a_post_says_sent(raw: bytes, kind: str) -> None:
    recorder = Recorder(raw)
    with raw_server(recorder) as port:
        exc = failure(
            lambda: requests.post(f"http://127.0.0.1:{port}/", data=b"x=1", timeout=2).content
        )
    assert recorder.bodies == [b"x=1"]
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == kind
    assert err.request_sent is True and judge(exc).request_sent is True


def test_a_read_timeout_after_a_post_says_sent() -> None:
    with raw_server(silent_handler) as port:
        exc = failure(
            lambda: requests.post(f"http://127.0.0.1:{port}/", data=b"x", timeout=(1, 0.1))
        )
    err = classify_error(exc)
    assert type(err) is RequestTimeoutError and err.kind == "read_timeout"
    assert err.request_sent is True


def test_the_transports_knowledge_overrides_the_guess() -> None:
    with raw_server(reply_handler(TWO_LENGTHS)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2))
    # The transport knows better in both directions; the kind-based guess yields.
    assert classify_error(exc, request_sent=False).request_sent is False
    assert classify_error(exc, request_sent=True).request_sent is True
    refused = ConnectionFailedError(kind="refused")
    assert refused.request_sent is False
    overridden = classify_error(refused, request_sent=True)
    assert overridden.request_sent is True and refused.request_sent is False  # pure
    assert judge(refused, request_sent=True).request_sent is True


def test_a_request_header_requests_refuses_is_still_never_sent() -> None:
    # requests' own header check runs before anything is written.
    with raw_server(read_request_then_close) as port:
        exc = failure(
            lambda: requests.get(
                f"http://127.0.0.1:{port}/", headers={"X-Bad": " leading space"}, timeout=2
            )
        )
    err = classify_error(exc)
    assert type(err) is InvalidRequestError and err.kind == "invalid_header"
    assert err.request_sent is False


def read_request_then_close(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
