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
import logging
import os
import random
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from connmgr.testing.records import RecordedRequest, RequestHeaders
from connmgr.testing.routes import Handler, TokenBucket, path_of

__all__ = ["FaultServer", "RecordedRequest", "RequestHeaders"]

logger = logging.getLogger(__name__)

_SERVE_POLL = 0.02
_JOIN_TIMEOUT = 0.4


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
        super().__init__(address, Handler)

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
        self._buckets: dict[tuple[float, float], TokenBucket] = {}
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
            return self._hits[path_of(path)]

    def hits_for_route(self, route: str) -> int:
        """Requests served by ``route`` (e.g. ``"/random"``), asked directly or through an alias."""
        with self._lock:
            return self._route_hits[path_of(route)]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first (at most ``max_recorded``)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path (query ignored) is ``path``."""
        path = path_of(path)
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
                bucket = self._buckets[(rate, burst)] = TokenBucket(rate, burst, now)
            return bucket.take(now)
