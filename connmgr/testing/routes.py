"""The FaultServer's routes: one connection's keep-alive loop and every way it can fail.

See ``docs/testing.md`` for the routes and their parameters. The handler reads
what it needs of its server through :class:`Serving` (the listening socket's
stop event and connection registry, and the :class:`~connmgr.testing.FaultServer`
that counts and records requests).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl

from connmgr.testing.records import RecordedRequest, RequestHeaders

logger = logging.getLogger("connmgr.testing.server")

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


class Serving(Protocol):
    """What a :class:`Handler` uses of the listening server."""

    fault: Any  # the FaultServer: counts, records, aliases and the routes' state
    stop_event: threading.Event

    def forget(self, request: socket.socket) -> None:
        """Stop tracking a connection the handler hands over (a reset)."""
        ...


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


def path_of(path_or_url: str) -> str:
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


class TokenBucket:
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


class Handler(socketserver.StreamRequestHandler):
    """One connection: reads requests in a keep-alive loop and serves fault routes."""

    disable_nagle_algorithm = True
    wbufsize = 0
    server: Serving  # type: ignore[assignment]  # socketserver types it as BaseServer

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

    def _handle_one(self, fault: Any, stop: threading.Event) -> bool:
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
            path = path_of(path)
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
        fault: Any,
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
