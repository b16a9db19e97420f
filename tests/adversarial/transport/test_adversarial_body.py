"""Bodies that lie: short, cut-off compression, cut-off heads, 1xx answers, bombs.

Every fault is served over a real loopback socket by a raw server, so the
client sees exactly the bytes written here. None of them may pass as a
success, with ``stream=False`` or while streaming.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import requests

from connmgr.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    NetworkError,
    is_retryable,
    outcome_of,
)
from connmgr.timeouts import DEFAULT_MAX_BODY_BYTES, TimeoutConfig
from connmgr.transport import create_session

StartServer = Callable[..., Any]  # conftest's scripted_server factory

CONFIG = TimeoutConfig(connect=2, read=5, total=10)
SLACK = 0.15  # allowed deadline overrun in a test (the figure is measured apart)
PAYLOAD = b"the quick brown fox jumps over the lazy dog " * 200


def gzip_bytes(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def deflate_bytes(data: bytes) -> bytes:
    return zlib.compress(data)


def answer(head: bytes, body: bytes = b"", *, keep: bool = False) -> Callable[..., bool]:
    """A handler that writes ``head`` (status line and headers, CRLF-joined) and ``body``."""

    def handler(conn: socket.socket, request_head: bytes, request_body: bytes) -> bool:
        conn.sendall(head + body)
        return keep

    return handler


def read_all(response: requests.Response, stream: bool) -> bytes:
    if not stream:
        return response.content
    return b"".join(response.iter_content(4096))


def fetch(url: str, stream: bool, config: TimeoutConfig = CONFIG) -> bytes:
    with create_session(config) as session:
        response = session.get(url, stream=stream)
        with response:
            return read_all(response, stream)


def assert_incomplete(error: BaseException) -> None:
    assert isinstance(error, ConnectionFailedError), repr(error)
    assert error.kind == "incomplete", error.kind
    assert error.request_sent is True
    assert is_retryable(error)
    assert outcome_of(error) == "transient"


# --------------------------------------------------------------------------- cut off

CUT_OFF: dict[str, Callable[..., bool]] = {
    "body shorter than Content-Length": answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        b"only forty bytes of the promised hundred",
    ),
    "gzip stream cut in half": answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % (len(gzip_bytes(PAYLOAD)) // 2),
        gzip_bytes(PAYLOAD)[: len(gzip_bytes(PAYLOAD)) // 2],
    ),
    "gzip stream without its trailer": answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        % (len(gzip_bytes(PAYLOAD)) - 8),
        gzip_bytes(PAYLOAD)[:-8],
    ),
    "deflate stream cut in half": answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nConnection: close\r\n\r\n",
        deflate_bytes(PAYLOAD)[: len(deflate_bytes(PAYLOAD)) // 2],
    ),
    "gzip cut, chunked framing complete": answer(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"%x\r\n%s\r\n0\r\n\r\n" % (100, gzip_bytes(PAYLOAD)[:100]),
    ),
    "chunked body cut mid-chunk": answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"64\r\nonly a few bytes"
    ),
    "head cut mid-line": answer(b"HTTP/1.1 200 OK\r\nContent-Le"),
    "head cut at a line end": answer(b"HTTP/1.1 200 OK\r\nX-Request-Id: 7\r\n"),
    "head cut after the status line": answer(b"HTTP/1.1 200 OK\r\n"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["stream=False", "stream=True"])
@pytest.mark.parametrize("fault", list(CUT_OFF), ids=list(CUT_OFF))
def test_a_cut_off_response_is_never_a_success(
    scripted_server: StartServer, fault: str, stream: bool
) -> None:
    server = scripted_server(CUT_OFF[fault])
    with pytest.raises(NetworkError) as info:
        fetch(server.url + "/x", stream)
    assert_incomplete(info.value)


def test_a_cut_off_post_says_it_was_sent(scripted_server: StartServer) -> None:
    server = scripted_server(CUT_OFF["gzip stream cut in half"])
    with create_session(CONFIG) as session, pytest.raises(NetworkError) as info:
        session.post(server.url + "/order", data=b"one order")
    assert_incomplete(info.value)
    assert len(server.heads) == 1


COMPLETE: dict[str, tuple[Callable[..., bool], bytes]] = {
    "gzip": (
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            % len(gzip_bytes(PAYLOAD)),
            gzip_bytes(PAYLOAD),
            keep=True,
        ),
        PAYLOAD,
    ),
    "two gzip members": (
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            % (2 * len(gzip_bytes(PAYLOAD))),
            gzip_bytes(PAYLOAD) * 2,
            keep=True,
        ),
        PAYLOAD * 2,
    ),
    "deflate, close-delimited": (
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nConnection: close\r\n\r\n",
            deflate_bytes(PAYLOAD),
        ),
        PAYLOAD,
    ),
    "gzip, chunked": (
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzip_bytes(PAYLOAD)), gzip_bytes(PAYLOAD)),
            keep=True,
        ),
        PAYLOAD,
    ),
    "empty gzip body": (
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n", keep=True
        ),
        b"",
    ),
    "plain": (
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(PAYLOAD), PAYLOAD),
        PAYLOAD,
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["stream=False", "stream=True"])
@pytest.mark.parametrize("case", list(COMPLETE), ids=list(COMPLETE))
def test_complete_bodies_still_pass(scripted_server: StartServer, case: str, stream: bool) -> None:
    # The control: the integrity checks must not refuse what is whole.
    handler, expected = COMPLETE[case]
    server = scripted_server(handler)
    assert fetch(server.url + "/x", stream) == expected


def test_a_head_request_with_an_encoding_and_no_body_passes(scripted_server: StartServer) -> None:
    server = scripted_server(
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1234\r\n\r\n",
            keep=True,
        )
    )
    with create_session(CONFIG) as session:
        response = session.head(server.url + "/x")
    assert response.status_code == 200 and response.content == b""


# --------------------------------------------------------------------------- 1xx


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.js>\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n",
    ],
    ids=["103", "102+103", "100+103"],
)
def test_informational_answers_are_skipped_to_the_final_one(
    scripted_server: StartServer, interim: bytes
) -> None:
    final = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nhello"
    server = scripted_server(answer(interim + final, keep=True))
    with create_session(CONFIG) as session:
        first = session.get(server.url + "/x")
        second = session.get(server.url + "/y")  # the connection stays in step
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["X-Final"] == "yes" and "Link" not in response.headers
        assert response.content == b"hello"
    assert server.connections == 1


def test_101_switching_protocols_is_a_final_answer(scripted_server: StartServer) -> None:
    server = scripted_server(
        answer(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
    )
    with create_session(CONFIG) as session:
        response = session.get(server.url + "/ws", stream=True)
        assert response.status_code == 101
        response.close()


# --------------------------------------------------------------------------- size limits


def test_a_body_over_the_profile_limit_is_refused_and_not_retried(
    scripted_server: StartServer,
) -> None:
    body = b"x" * 1001
    server = scripted_server(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body, keep=True)
    )
    config = TimeoutConfig(connect=2, read=5, total=10, max_body_bytes=1000)
    for stream in (False, True):
        with pytest.raises(NetworkError) as info:
            fetch(server.url + "/big", stream, config)
        error = info.value
        assert error.kind == "too_large" and error.request_sent is True
        assert not is_retryable(error) and outcome_of(error) == "fatal"
        assert "1000" in str(error) and "1000" in error.details
    at_limit = TimeoutConfig(connect=2, read=5, total=10, max_body_bytes=1001)
    assert fetch(server.url + "/big", False, at_limit) == body
    assert fetch(server.url + "/big", False, TimeoutConfig.for_download()) == body


def test_the_limit_counts_the_decoded_size(scripted_server: StartServer) -> None:
    packed = gzip_bytes(b"0" * 50_000)  # about 100 bytes on the wire
    server = scripted_server(
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
            % len(packed),
            packed,
            keep=True,
        )
    )
    small = TimeoutConfig(connect=2, read=5, total=10, max_body_bytes=10_000)
    with pytest.raises(NetworkError) as info:
        fetch(server.url + "/x", False, small)
    assert info.value.kind == "too_large"
    assert fetch(server.url + "/x", False, CONFIG) == b"0" * 50_000
    # The refused connection was closed, not handed to the next request half-read.
    assert server.connections == 2


def test_default_profiles_have_the_documented_limit_and_download_has_none() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 64 * 1024 * 1024
    assert TimeoutConfig().max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert TimeoutConfig.for_search().max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert TimeoutConfig.for_quick_check().max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert TimeoutConfig.for_download().max_body_bytes is None


# --------------------------------------------------------------------------- bombs

MIB = 1024 * 1024


def bomb_handler(decoded_size: int, *, chunked: bool) -> Callable[..., bool]:
    """Streams ``decoded_size`` zeros through gzip, never holding more than a MiB of them."""

    def handler(conn: socket.socket, head: bytes, body: bytes) -> bool:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Connection: close"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" + framing + b"\r\n\r\n")
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(MIB)
        try:
            for _ in range(decoded_size // MIB):
                piece = compressor.compress(zeros)
                if piece:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            piece = compressor.flush()
            conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(piece), piece) if chunked else piece)
        except OSError:
            pass  # the client hung up: what it should do
        return False

    return handler


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_a_512_mib_gzip_bomb_is_refused_on_a_default_profile(
    scripted_server: StartServer, chunked: bool
) -> None:
    server = scripted_server(bomb_handler(512 * MIB, chunked=chunked))
    tracemalloc.start()
    try:
        with pytest.raises(NetworkError) as info:
            fetch(server.url + "/bomb", False, TimeoutConfig(connect=5, read=30, total=60))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "too_large"
    assert peak <= 200 * MIB, f"peak {peak / MIB:.0f} MiB"


@pytest.mark.slow
def test_decoding_a_bomb_ends_at_the_deadline(scripted_server: StartServer) -> None:
    # No size limit (a download profile): only the deadline stops the decoding.
    server = scripted_server(bomb_handler(512 * MIB, chunked=False))
    total = 0.5
    config = TimeoutConfig(connect=2, read=5, total=total, max_body_bytes=None)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        fetch(server.url + "/bomb", True, config)
    overrun = time.monotonic() - started - total
    # Measured alone: 3-13 ms. The bound leaves room for a loaded test machine;
    # without the per-piece checks, decoding the 512 MiB runs on for seconds.
    assert -0.01 <= overrun <= SLACK, overrun
