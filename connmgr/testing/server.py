"""FaultServer: a loopback HTTP/1.1 server that misbehaves on request.

Tests of connmgr, and of applications built on it, point real clients at a
:class:`FaultServer` and ask it, through the URL, to fail in a precise way:
answer with any status, fail the first N times, drip the body one byte at a
time, stall before the headers or in the middle of the body, reset the TCP
connection, or rate-limit with a hidden token bucket. Every request is counted
and recorded, so a test can assert what actually reached the server.

Example::

    import requests
    from connmgr.testing import FaultServer

    with FaultServer() as server:
        r = requests.get(server.url_for("/flaky/search?fail=2&status=503"))
        assert r.status_code == 503
        server.alias("/api/search", "/status/429?retry_after=1")
        assert requests.get(server.url_for("/api/search")).status_code == 429
        assert server.hits("/flaky/search") == 1

Every server-side wait (``delay``, drips, stalls) waits on an event that
:meth:`FaultServer.stop` sets, so stopping never waits for a stalled handler,
and stop also closes open keep-alive connections so a client cannot get a
stale answer from a stopped server. See ``docs/testing.md`` for every route.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from connmgr.frozen import explain_frozen

__all__ = ["FaultServer", "RecordedRequest", "RequestHeaders"]

logger = logging.getLogger(__name__)

_MAX_LINE = 65536
_MAX_HEADERS = 200
# Longest a handler waits for a route's default stall; stop() ends it sooner.
_DEFAULT_STALL = 30.0
_SERVE_POLL = 0.02
_JOIN_TIMEOUT = 0.4

_PORTAL_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Wi-Fi Login</title></head>\n"
    b"<body><h1>Welcome to Guest Wi-Fi</h1>\n"
    b'<form method="post" action="/portal/login">\n'
    b'<label>Room number <input name="room"></label>\n'
    b'<label>Last name <input name="name"></label>\n'
    b'<button type="submit">Connect</button>\n</form></body></html>\n'
)


class RequestHeaders(Mapping[str, str]):
    """Request headers as received: a read-only, case-insensitive mapping.

    Iteration yields the names as the client spelled them; a header sent more
    than once maps to its values joined by ``", "`` (all of them are in
    :attr:`raw`).

    Example::

        rec = server.requests[-1]
        assert rec.headers["idempotency-key"] == rec.headers["Idempotency-Key"]
    """

    __slots__ = ("_by_lower", "raw")

    def __init__(self, raw: Sequence[tuple[str, str]] = ()) -> None:
        #: ``(name, value)`` pairs in the order received.
        self.raw: tuple[tuple[str, str], ...] = tuple(raw)
        by_lower: dict[str, tuple[str, str]] = {}
        for name, value in self.raw:
            key = name.lower()
            if key in by_lower:
                first, old = by_lower[key]
                by_lower[key] = (first, f"{old}, {value}")
            else:
                by_lower[key] = (name, value)
        self._by_lower = by_lower

    def __getitem__(self, name: str) -> str:
        return self._by_lower[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_lower

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._by_lower.values())

    def __len__(self) -> int:
        return len(self._by_lower)

    def __repr__(self) -> str:
        return f"RequestHeaders({dict(self.items())!r})"


@explain_frozen
@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it (see :attr:`FaultServer.requests`).

    ``path`` is the path the client asked for, without the query (for an
    aliased path, the alias, not its target); ``query`` is the raw query
    string; ``at`` is ``time.monotonic()`` when the request was read.
    """

    method: str
    path: str
    query: str
    headers: RequestHeaders
    body: bytes
    at: float
    #: The route that served it (differs from ``path`` when aliased).
    route: str = ""
    #: The ``(host, port)`` of the client's socket (one per connection).
    client: tuple[str, int] = field(default=("", 0))

    @property
    def params(self) -> dict[str, str]:
        """The query parameters (the last value of a repeated name)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


class _StoppedError(Exception):
    """The server stopped while the handler waited: drop the connection."""


class _Params:
    """Query parameters with typed, validated accessors (400 on bad values)."""

    __slots__ = ("pairs",)

    def __init__(self, query: str) -> None:
        self.pairs = parse_qsl(query, keep_blank_values=True) if query else []

    def get(self, name: str) -> str | None:
        value = None
        for key, val in self.pairs:
            if key == name:
                value = val
        return value

    def get_all(self, name: str) -> list[str]:
        return [val for key, val in self.pairs if key == name]

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise _BadParamError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(value) or value < minimum:
            raise _BadParamError(f"{name}={raw!r} must be a finite number >= {minimum}")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _BadParamError(f"{name}={raw!r} is not an integer") from None
        if value < minimum:
            raise _BadParamError(f"{name}={raw!r} must be >= {minimum}")
        return value

    def merged_over(self, other: _Params) -> _Params:
        """These parameters, plus those of ``other`` whose names are not set here."""
        mine = {key for key, _ in self.pairs}
        merged = _Params("")
        merged.pairs = self.pairs + [(k, v) for k, v in other.pairs if k not in mine]
        return merged


class _BadParamError(ValueError):
    """A query parameter the route cannot use: answered with 400."""


def _path_of(path_or_url: str) -> str:
    """The path of a path or URL, without query: what the hit counters are keyed by."""
    path = path_or_url.partition("?")[0]
    if path.startswith(("http://", "https://")):
        parts = path.split("/", 3)
        return "/" + parts[3] if len(parts) > 3 else "/"
    return path


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(
    status: int, headers: Iterable[tuple[str, str]], length: int | None, close: bool
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}\r\nServer: FaultServer\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


# The hot path (keep-alive GET /ok) writes one precomputed buffer.
_OK_KEEP = _head(200, [("Content-Type", "text/plain")], 2, False) + b"ok"
_OK_CLOSE = _head(200, [("Content-Type", "text/plain")], 2, True) + b"ok"
_OK_HEAD_KEEP = _head(200, [("Content-Type", "text/plain")], 2, False)
_OK_HEAD_CLOSE = _head(200, [("Content-Type", "text/plain")], 2, True)


class _TokenBucket:
    """The hidden limit behind ``/limited``: ``rate`` tokens a second, ``burst`` at most."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> tuple[bool, float, float]:
        """Take a token if there is one: ``(allowed, tokens left, seconds to the next token)``."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        wait = 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate
        return allowed, self.tokens, wait


class _Handler(socketserver.StreamRequestHandler):
    """One connection: reads requests in a keep-alive loop and serves fault routes."""

    disable_nagle_algorithm = True
    wbufsize = 0
    server: _TCPServer

    def setup(self) -> None:
        sock = self.request
        if isinstance(sock, ssl.SSLSocket):
            # Handshake here, in the connection's thread, so a slow or failing
            # client never blocks the accept loop.
            sock.settimeout(5.0)
            sock.do_handshake()
            sock.settimeout(None)
        super().setup()

    def handle(self) -> None:
        fault = self.server.fault
        stop = self.server.stop_event
        try:
            while not stop.is_set() and self._handle_one(fault, stop):
                pass
        except _StoppedError:
            logger.debug("FaultServer stopped while %s waited", self.client_address)
        except OSError as exc:
            # The client went away or the test asked for a broken connection.
            logger.debug("FaultServer connection %s ended: %r", self.client_address, exc)

    def _handle_one(self, fault: FaultServer, stop: threading.Event) -> bool:
        """Serve one request; False when the connection must end."""
        rfile = self.rfile
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            return False
        if line in (b"\r\n", b"\n"):  # tolerated between requests (RFC 9112 §2.2)
            line = rfile.readline(_MAX_LINE + 1)
            if not line:
                return False
        parts = line.split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            self.wfile.write(_head(400, [], 0, True))
            return False
        method = parts[0].decode("latin-1")
        target = parts[1].decode("latin-1")
        version = parts[2]

        raw_headers: list[tuple[str, str]] = []
        length: int | None = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        expect_continue = False
        while True:
            hline = rfile.readline(_MAX_LINE + 1)
            if hline in (b"\r\n", b"\n", b""):
                break
            if len(raw_headers) >= _MAX_HEADERS or len(hline) > _MAX_LINE:
                self.wfile.write(_head(431, [], 0, True))
                return False
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep:
                self.wfile.write(_head(400, [], 0, True))
                return False
            name = name.strip()
            value = value.strip()
            raw_headers.append((name, value))
            lower = name.lower()
            if lower == "content-length":
                length = int(value) if value.isdigit() else -1
                if length < 0:
                    self.wfile.write(_head(400, [], 0, True))
                    return False
            elif lower == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif lower == "connection":
                tokens = value.lower()
                if "close" in tokens:
                    keep_alive = False
                elif "keep-alive" in tokens and version == b"HTTP/1.0":
                    # HTTP/1.0 keep-alive is not worth supporting in a test server.
                    keep_alive = False
            elif lower == "expect":
                expect_continue = value.lower() == "100-continue"

        if expect_continue:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            body = self._read_chunked()
        elif length:
            body = rfile.read(length)
        else:
            body = b""

        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute-form (a proxy request)
            path = _path_of(path)
        route_target = fault._resolve(path)
        params = _Params(query)
        route = path
        if route_target is not None:
            route, _, alias_query = route_target.partition("?")
            params = _Params(alias_query).merged_over(params)
        rec = RecordedRequest(
            method=method,
            path=path,
            query=query,
            headers=RequestHeaders(raw_headers),
            body=body,
            at=time.monotonic(),
            route=route,
            client=self.client_address,
        )
        fault._record(rec)
        close = not keep_alive
        head_only = method == "HEAD"

        if route == "/ok" and not params.pairs:
            # Hot path: the precomputed answer.
            if head_only:
                self.wfile.write(_OK_HEAD_CLOSE if close else _OK_HEAD_KEEP)
            else:
                self.wfile.write(_OK_CLOSE if close else _OK_KEEP)
            return not close

        try:
            delay = params.number("delay", 0.0)
            if delay and stop.wait(delay):
                raise _StoppedError
            return self._route(fault, stop, rec, params, close=close, head_only=head_only)
        except _BadParamError as exc:
            self._send(400, str(exc).encode() + b"\n", close=close, head_only=head_only)
            return not close

    def _read_chunked(self) -> bytes:
        rfile = self.rfile
        chunks: list[bytes] = []
        while True:
            size_line = rfile.readline(_MAX_LINE + 1)
            if not size_line:
                raise ConnectionResetError("client closed inside a chunked body")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(rfile.read(size))
            rfile.readline(_MAX_LINE + 1)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        close: bool,
        head_only: bool,
        content_type: str | None = "text/plain",
    ) -> None:
        extra = list(headers)
        if content_type and body:
            extra.insert(0, ("Content-Type", content_type))
        no_body = status in (204, 304) or 100 <= status < 200
        head = _head(status, extra, None if no_body else len(body), close)
        if head_only or no_body:
            self.wfile.write(head)
        else:
            self.wfile.write(head + body)

    def _reset(self) -> bool:
        """Abort the connection with a TCP RST (SO_LINGER 0) and no response."""
        sock: socket.socket = self.request
        self.server.forget(sock)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered files hold references to the socket: close them first,
        # else close() defers and the kernel never sends the RST.
        with contextlib.suppress(OSError, ValueError):
            self.rfile.close()
        with contextlib.suppress(OSError, ValueError):
            self.wfile.close()
        if isinstance(sock, ssl.SSLSocket):
            # Skip the TLS close_notify: the point is an abrupt reset.
            with contextlib.suppress(OSError, ValueError):
                fd = sock.detach()
                socket.socket(fileno=fd).close()
        else:
            sock.close()
        return False

    def _route(
        self,
        fault: FaultServer,
        stop: threading.Event,
        rec: RecordedRequest,
        params: _Params,
        *,
        close: bool,
        head_only: bool,
    ) -> bool:
        route = rec.route
        send = self._send
        first, _, rest = route[1:].partition("/")

        if route == "/ok":
            size = params.get("size")
            payload = b"x" * params.integer("size", 0) if size not in (None, "") else b"ok"
            send(200, payload, close=close, head_only=head_only)
            return not close

        if first == "status":
            code_text = rest or params.get("code") or "200"
            try:
                status = int(code_text)
            except ValueError:
                raise _BadParamError(f"status {code_text!r} is not an integer") from None
            if not 200 <= status <= 999:
                # A 1xx is an interim answer: the client would wait for another.
                raise _BadParamError(f"status {status} is not in 200..999")
            headers: list[tuple[str, str]] = []
            retry_after = params.get("retry_after")
            if retry_after is not None:
                headers.append(("Retry-After", retry_after))
            for item in params.get_all("header"):
                name, sep, value = item.partition(":")
                if not sep or not name.strip():
                    raise _BadParamError(f"header={item!r} is not Name:Value")
                headers.append((name.strip(), value.strip()))
            payload = f"{status} {_reason(status)}\n".encode()
            send(status, payload, headers, close=close, head_only=head_only)
            return not close

        if first == "flaky":
            fail = params.integer("fail", 1)
            count = fault._count_key(f"flaky:{rest}")
            if count <= fail:
                return self._fail(params.get("status") or "503", close, head_only)
            send(200, b"ok", close=close, head_only=head_only)
            return not close

        if route == "/random":
            rate = params.number("rate", 0.5)
            if rate > 1.0:
                raise _BadParamError(f"rate={rate!r} must be between 0 and 1")
            if fault._random(params.get("seed")) < rate:
                return self._fail(params.get("status") or "503", close, head_only)
            send(200, b"ok", close=close, head_only=head_only)
            return not close

        if route == "/drip":
            count = params.integer("bytes", 10)
            interval = params.number("interval", 0.5)
            self.wfile.write(
                _head(200, [("Content-Type", "application/octet-stream")], count, close)
            )
            if head_only:
                return not close
            for _ in range(count):
                if stop.wait(interval):
                    raise _StoppedError
                self.wfile.write(b"x")
            return not close

        if route == "/stall-headers":
            if stop.wait(params.number("seconds", _DEFAULT_STALL)):
                raise _StoppedError
            send(200, b"ok", close=close, head_only=head_only)
            return not close

        if route == "/stall-body":
            seconds = params.number("seconds", _DEFAULT_STALL)
            count = params.integer("bytes", 100)
            half = count // 2
            self.wfile.write(
                _head(200, [("Content-Type", "application/octet-stream")], count, close)
                + (b"" if head_only else b"x" * half)
            )
            if head_only:
                return not close
            if stop.wait(seconds):
                raise _StoppedError
            self.wfile.write(b"x" * (count - half))
            return not close

        if route == "/reset":
            return self._reset()

        if route == "/close":
            return False

        if route == "/limited":
            rate = params.number("rate", 10.0)
            if rate <= 0:
                raise _BadParamError(f"rate={rate!r} must be > 0")
            burst = params.number("burst", rate, minimum=1.0)
            allowed, left, wait = fault._take_token(rate, burst)
            headers = []
            if params.get("headers") in ("1", "true", "yes"):
                headers = [
                    ("X-RateLimit-Limit", f"{burst:g}"),
                    ("X-RateLimit-Remaining", str(math.floor(left))),
                    ("X-RateLimit-Reset", f"{wait:.3f}".rstrip("0").rstrip(".") or "0"),
                ]
                if not allowed:
                    headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
            if allowed:
                send(200, b"ok", headers, close=close, head_only=head_only)
            else:
                send(429, b"429 Too Many Requests\n", headers, close=close, head_only=head_only)
            return not close

        if route == "/generate_204":
            send(204, close=close, head_only=head_only)
            return not close

        if first == "portal":
            send(
                200,
                _PORTAL_PAGE,
                close=close,
                head_only=head_only,
                content_type="text/html; charset=utf-8",
            )
            return not close

        if route == "/redirect":
            location = params.get("to") or "/ok"
            status = params.integer("status", 302, minimum=300)
            send(status, b"", [("Location", location)], close=close, head_only=head_only)
            return not close

        if route == "/echo":
            args: dict[str, Any] = {}
            for key, value in parse_qsl(rec.query, keep_blank_values=True):
                if key in args:
                    prior = args[key]
                    args[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
                else:
                    args[key] = value
            doc = {
                "method": rec.method,
                "path": rec.path,
                "query": rec.query,
                "args": args,
                "headers": dict(rec.headers.items()),
                "body": rec.body.decode("utf-8", "replace"),
            }
            payload = json.dumps(doc).encode()
            send(200, payload, close=close, head_only=head_only, content_type="application/json")
            return not close

        send(404, b"404 Not Found\n", close=close, head_only=head_only)
        return not close

    def _fail(self, status_text: str, close: bool, head_only: bool) -> bool:
        """Fail as asked: ``reset`` / ``close`` drop the connection, else answer that status."""
        if status_text == "reset":
            return self._reset()
        if status_text == "close":
            return False
        try:
            status = int(status_text)
        except ValueError:
            raise _BadParamError(f"status={status_text!r} is not an integer or 'reset'") from None
        self._send(
            status, f"{status} {_reason(status)}\n".encode(), close=close, head_only=head_only
        )
        return not close


class _TCPServer(socketserver.TCPServer):
    """The listening socket, one daemon thread a connection, and the connection registry."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        fault: FaultServer,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.fault = fault
        self.stop_event = threading.Event()
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = self.socket.accept()
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        with self._lock:
            self._connections.add(conn)
        return conn, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"FaultServer-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def forget(self, request: socket.socket) -> None:
        with self._lock:
            self._connections.discard(request)

    def shutdown_request(self, request: Any) -> None:
        self.forget(request)
        with contextlib.suppress(OSError, ValueError):
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A test server must stay quiet: broken connections are the point.
        logger.debug("FaultServer error on %s", client_address, exc_info=True)

    def drop_all(self) -> None:
        """Cut every open connection so blocked reads end and clients see them closed."""
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError, ValueError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            thread.join(remaining)


class _TLSMaterial:
    """A trustme CA and a server certificate, with the CA written to a PEM file."""

    def __init__(self, hosts: Sequence[str]) -> None:
        import trustme  # lazily: only TLS tests pay for it

        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert(*hosts)
        self.directory = tempfile.mkdtemp(prefix="faultserver-")
        self.ca_bundle = os.path.join(self.directory, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_bundle)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.num_tickets = 0
        self.cert.configure_cert(context)
        return context

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class FaultServer:
    """A loopback HTTP/1.1 server whose routes fail on request; see the module docstring.

    Args:
        host: the address to listen on (loopback by default; keep it so).
        port: 0 picks a free port; :meth:`stop` then :meth:`start` keep the port.
        tls: serve HTTPS with a fresh `trustme` CA; :attr:`ca_bundle` is its PEM file.
        cert_hosts: the names the TLS certificate is issued for (default
            ``127.0.0.1`` and ``localhost``); pass e.g. ``["wrong.example"]`` to
            make hostname verification fail.
        seed: seeds ``/random`` when the request gives no ``seed=``.
        max_recorded: how many requests :attr:`requests` keeps (oldest dropped).

    The server is started by :meth:`start` or by entering ``with``; :meth:`close`
    (or leaving ``with``) stops it and removes the TLS files.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        cert_hosts: Sequence[str] | None = None,
        seed: int | None = None,
        max_recorded: int = 10_000,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        if isinstance(max_recorded, bool) or max_recorded < 0:
            raise ValueError(f"max_recorded must be an integer >= 0, got {max_recorded!r}")
        if cert_hosts is not None and not tls:
            raise ValueError("cert_hosts is only meaningful with tls=True")
        self.host = host
        self._port = port
        self.tls = tls
        self.cert_hosts: tuple[str, ...] = tuple(cert_hosts or ("127.0.0.1", "localhost"))
        self.max_recorded = max_recorded
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._route_hits: Counter[str] = Counter()
        self._total = 0
        self._requests: list[RecordedRequest] = []
        self._aliases: dict[str, str] = {}
        self._keys: Counter[str] = Counter()
        self._buckets: dict[tuple[float, float], _TokenBucket] = {}
        self._seed = seed
        self._rng = random.Random(seed)
        self._seeded: dict[str, random.Random] = {}
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls: _TLSMaterial | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._lifecycle = threading.Lock()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FaultServer:
        """Start listening (again, on the same port after :meth:`stop`); returns ``self``."""
        with self._lifecycle:
            if self._server is not None:
                return self
            if self.tls and self._ssl_context is None:
                self._tls = _TLSMaterial(self.cert_hosts)
                self._ssl_context = self._tls.server_context()
            server = _TCPServer((self.host, self._port), self, self._ssl_context)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _SERVE_POLL},
                name=f"FaultServer:{self._port}",
                daemon=True,
            )
            self._server = server
            self._thread = thread
            thread.start()
            logger.debug("FaultServer listening on %s", self.url)
            return self

    def stop(self) -> None:
        """Stop listening and drop open connections; waits in handlers end at once.

        Afterwards connections to :attr:`url` are refused until :meth:`start`.
        Counters, the request log and aliases are kept.
        """
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            server.stop_event.set()
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(_JOIN_TIMEOUT)
            server.drop_all()
            server.join_handlers(_JOIN_TIMEOUT)
            logger.debug("FaultServer on port %d stopped", self._port)

    def close(self) -> None:
        """Stop and remove the TLS files (a later :meth:`start` makes a new CA)."""
        self.stop()
        with self._lifecycle:
            if self._tls is not None:
                self._tls.cleanup()
                self._tls = None
                self._ssl_context = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FaultServer {self.url} {state}>"

    # -- addresses ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The TCP port (0 until first started with ``port=0``)."""
        return self._port

    @property
    def scheme(self) -> str:
        """``"https"`` with ``tls=True``, else ``"http"``."""
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """The origin, e.g. ``"http://127.0.0.1:41234"`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self._port}"

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` (with its query), e.g. ``url_for("/ok?size=10")``."""
        if not path.startswith("/"):
            path = "/" + path
        return self.url + path

    @property
    def ca_bundle(self) -> str:
        """Path of the PEM file of the CA that signed the certificate (``verify=`` it).

        Raises:
            RuntimeError: the server is not a started TLS server.
        """
        if self._tls is None:
            raise RuntimeError("ca_bundle exists only for FaultServer(tls=True) once started")
        return self._tls.ca_bundle

    @property
    def ca(self) -> Any:
        """The ``trustme.CA`` behind :attr:`ca_bundle` (e.g. ``ca.configure_trust(ctx)``)."""
        if self._tls is None:
            raise RuntimeError("ca exists only for FaultServer(tls=True) once started")
        return self._tls.ca

    # -- observation -------------------------------------------------------

    def hits(self, path: str | None = None) -> int:
        """Requests received on ``path`` (query ignored, any method), or on all paths.

        ``path`` may also be a full URL such as ``server.url_for("/ok?size=1")``.

        An aliased path counts under the alias, i.e. the path the client asked for.
        """
        with self._lock:
            if path is None:
                return self._total
            return self._hits[_path_of(path)]

    def hits_for_route(self, route: str) -> int:
        """Requests served by ``route`` (e.g. ``"/random"``), asked directly or through an alias."""
        with self._lock:
            return self._route_hits[_path_of(route)]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first (at most ``max_recorded``)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path (query ignored) is ``path``."""
        path = _path_of(path)
        with self._lock:
            return [r for r in self._requests if r.path == path]

    def reset(self) -> None:
        """Clear counters, the request log and per-key state (flaky counts, limiters, seeded RNGs).

        Aliases stay.
        """
        with self._lock:
            self._hits.clear()
            self._route_hits.clear()
            self._total = 0
            self._requests.clear()
            self._keys.clear()
            self._buckets.clear()
            self._seeded.clear()
            self._rng = random.Random(self._seed)

    # -- behaviour ---------------------------------------------------------

    def alias(self, path: str, target: str | None) -> None:
        """Make ``path`` behave like the route ``target`` (with its query); ``None`` removes it.

        The client's own query parameters fill in what ``target`` leaves out.
        Change it at any time, e.g. to make a healthy endpoint start failing::

            server.alias("/api/search", "/random?rate=0.3&status=503")
            server.alias("/api/search", "/status/429?retry_after=2")
            server.alias("/api/search", "/ok")
            server.alias("/api/search", None)     # back to 404
        """
        path = path.partition("?")[0]
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        if target is not None and not target.startswith("/"):
            raise ValueError(f"target must start with '/', got {target!r}")
        with self._lock:
            if target is None:
                self._aliases.pop(path, None)
            else:
                self._aliases[path] = target

    @property
    def aliases(self) -> dict[str, str]:
        """A copy of the current aliases (path → target)."""
        with self._lock:
            return dict(self._aliases)

    # -- used by the handler (private) -------------------------------------

    def _resolve(self, path: str) -> str | None:
        aliases = self._aliases
        return aliases.get(path) if aliases else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._total += 1
            self._hits[request.path] += 1
            self._route_hits[request.route] += 1
            if self.max_recorded:
                self._requests.append(request)
                if len(self._requests) > self.max_recorded:
                    del self._requests[: len(self._requests) - self.max_recorded]

    def _count_key(self, key: str) -> int:
        with self._lock:
            self._keys[key] += 1
            return self._keys[key]

    def _random(self, seed: str | None) -> float:
        with self._lock:
            if seed is None:
                return self._rng.random()
            rng = self._seeded.get(seed)
            if rng is None:
                rng = self._seeded[seed] = random.Random(seed)
            return rng.random()

    def _take_token(self, rate: float, burst: float) -> tuple[bool, float, float]:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get((rate, burst))
            if bucket is None:
                bucket = self._buckets[(rate, burst)] = _TokenBucket(rate, burst, now)
            return bucket.take(now)
