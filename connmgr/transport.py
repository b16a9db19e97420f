"""A requests transport adapter that enforces connect, read *and total* deadlines.

requests only knows per-socket-operation timeouts: a server that sends one
byte every 0.5 s, or stalls forever after the headers, never trips a 30 s read
timeout. :class:`TimeoutHTTPAdapter` adds the wall-clock deadline:

* every attempt is sent with ``(min(connect, remaining), min(read, remaining))``;
* the socket of the attempt is registered with the one :mod:`~connmgr.watchdog`
  thread; when the deadline passes, it shuts the socket down
  (``shutdown(SHUT_RDWR)`` wakes a ``recv`` blocked in another thread), so a
  drip, a stall before or in the middle of the body and a header drip all
  end at the deadline with :class:`~connmgr.errors.DeadlineExceededError`;
* with ``stream=False`` the adapter reads the body itself, under the watchdog
  (requests would otherwise read it after the adapter returned); with
  ``stream=True`` the watchdog stays armed until the response is closed or
  read to the end;
* a :class:`~connmgr.clock.CancelToken` shuts the socket down from the
  cancelling thread: the request ends within milliseconds with
  :class:`~connmgr.errors.RequestCancelledError`.

A socket the watchdog shut down never serves another request: its
connection is closed before it goes back to the pool.

The deadline and the token reach the adapter as requests' ``timeout=``
argument (an :class:`~connmgr.timeouts.AttemptContext`, which requests
hands through untouched, redirects included). With ``timeout=None`` the
adapter starts its own deadline from its config; a number or a
``(connect, read)`` pair sets those two and the config's total still holds.

Failures leave the adapter as the connmgr error tree, ``from`` the original:
the deadline and cancellation as their own errors, anything requests or
urllib3 raised through :func:`connmgr.errors.classify_error`, so a plain
``create_session()`` user gets a :class:`~connmgr.RequestTimeoutError` for a
read timeout, never requests' ``ConnectionError("Read timed out")``. The
connection notes when it starts writing the request: from then on every
failure has ``request_sent=True`` (the server may have it), whatever its type.

Example::

    session = create_session(TimeoutConfig(connect=1, read=2, total=3))
    session.get("http://127.0.0.1:8000/drip")        # DeadlineExceededError after 3 s

    token = CancelToken()
    ctx = AttemptContext.start(TimeoutConfig.for_search(), cancel=token)
    session.get(url, timeout=ctx)                   # token.cancel() ends it at once

Limits: a TCP connect (and TLS handshake) is bounded by its connect timeout,
itself capped by the time left, but cannot be interrupted by a cancel; with a
SOCKS proxy the socket is not registered, so only the per-read timeout holds
there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Generator
from typing import Any, Final, cast

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.models import REDIRECT_STATI
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse
from urllib3.util.timeout import Timeout as Urllib3Timeout

from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.errors import (
    DeadlineExceededError,
    NetworkError,
    RequestCancelledError,
    classify_error,
)
from connmgr.timeouts import (
    MIN_ATTEMPT_TIMEOUT,
    AttemptContext,
    Deadline,
    NetworkConfig,
    TimeoutConfig,
    TimeoutPair,
    timeout_pair,
)
from connmgr.watchdog import WATCHDOG, Scheduled

__all__ = [
    "AttemptContext",
    "DeadlineSession",
    "TimeoutHTTPAdapter",
    "create_session",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- one attempt

_DEADLINE, _CANCEL = "deadline", "cancel"
# (total, started_at, clock): a deadline the adapter started, not built yet
# (most requests succeed and never look at it).
_LazyDeadline = tuple[float | None, float, Clock]


class _Process:
    """The transport's process-wide state, renewed in a forked child."""

    #: Guards the attempts' state against a kill (see _Attempt); one for all
    #: attempts, held for a few stores, so none is allocated per request.
    attempt_lock = threading.Lock()

    @classmethod
    def after_fork_in_child(cls) -> None:
        # Another thread may have held it at the fork: it would stay held forever.
        cls.attempt_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Process.after_fork_in_child)


def _shutdown(sock: object) -> None:
    """Shut ``sock`` down at the OS level; wakes a blocked ``recv`` in any thread."""
    if sock is None:
        return
    if not isinstance(sock, socket.socket):
        sock = getattr(sock, "socket", None)  # urllib3's SSLTransport (TLS in TLS)
        if not isinstance(sock, socket.socket):
            return
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter also drops the
    # SSL object under the reader's feet; we only want the fd woken. OSError:
    # already closed or never connected, nothing left to wake.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Attempt(Scheduled):
    """One attempt: its connection and socket, and the watchdog and cancel
    hooks that shut them down.

    Registration (by the pool as it hands out a connection, and
    :meth:`watch` for each new socket) is lock-free: two stores, then a look
    at :attr:`reason`; :meth:`_kill` sets :attr:`reason` before it reads the
    connection, so whichever runs second does the shutdown. Everything that
    must not interleave with a kill (the pool taking the connection back,
    finishing) takes ``_Process.attempt_lock``: one process-wide lock, held for a few
    attribute stores (a kill also for a ``shutdown()`` call), so sharing it
    costs less than creating one per attempt.

    :attr:`request_sent` turns true when the connection starts writing the
    request (its headers), and stays true: from then on the server may have
    it, whatever fails.
    """

    __slots__ = (
        "_armed",
        "_deadline",
        "_unhook",
        "cancel",
        "conn",
        "done",
        "finish_on_release",
        "reason",
        "request",
        "request_sent",
        "sock",
    )

    def __init__(
        self,
        deadline: Deadline | _LazyDeadline,
        remaining: float | None,
        cancel: CancelToken | None,
        request: requests.PreparedRequest,
    ) -> None:
        super().__init__()
        self._deadline = deadline
        self.cancel = cancel
        self.request = request
        self.reason: str | None = None
        self.conn: _WatchedHTTPConnection | None = None
        self.sock: object = None
        self.done = False
        self.request_sent = False
        #: Set once the adapter holds the final response: the pool taking its
        #: connection back (body read out, or response closed) ends the attempt.
        self.finish_on_release = False
        self._armed = remaining is not None
        if remaining is not None:
            WATCHDOG.schedule(remaining, self)
        self._unhook = cancel.add_callback(self._on_cancel) if cancel is not None else None

    @property
    def deadline(self) -> Deadline:
        """The attempt's deadline (built on first use when the adapter started it)."""
        deadline = self._deadline
        if isinstance(deadline, Deadline):
            return deadline
        total, started_at, clock = deadline
        built = self._deadline = Deadline(total, clock=clock, started_at=started_at)
        return built

    def watch(self, conn: _WatchedHTTPConnection, sock: object = None) -> None:
        """``conn`` (with ``sock``, or its current socket) now serves this attempt."""
        conn._connmgr_attempt = self
        self.conn = conn
        if sock is None:
            sock = conn.sock
        if sock is not None:
            # Kept apart from conn.sock: http.client drops that on "Connection:
            # close" while the body is still being read from the socket.
            self.sock = sock
        if self.reason is not None and not self.done:
            _kill_connection(conn, self.sock)  # killed while connecting

    def finish(self) -> None:
        """The attempt is over: disarm the watchdog and the cancel hook (idempotent)."""
        # Usually the pool taking the connection back finished it already.
        if not self.done and self._mark_done():
            self._disarm()

    def _mark_done(self) -> bool:
        """Set :attr:`done` under the lock; ``True`` if this call set it."""
        with _Process.attempt_lock:
            if self.done:
                return False
            self.done = True
            self.conn = None
            self.sock = None
            return True

    def _disarm(self) -> None:
        if self._armed:
            WATCHDOG.cancel(self)
        # Also breaks the attempt <-> cancel-hook reference cycle, so the
        # attempt is freed by refcounting rather than by the cyclic GC.
        unhook, self._unhook = self._unhook, None
        if unhook is not None:
            unhook()

    def fire(self) -> None:
        """The deadline passed (called by the watchdog thread)."""
        self._kill(_DEADLINE)

    def _on_cancel(self) -> None:
        self._kill(_CANCEL)

    def _kill(self, reason: str) -> None:
        with _Process.attempt_lock:
            if self.done or self.reason is not None:
                return
            self.reason = reason
            conn, sock = self.conn, self.sock
            if conn is not None:
                _kill_connection(conn, sock)
            else:
                _shutdown(sock)
        logger.debug(
            "%s after %.3f s: connection %s",
            "deadline reached" if reason == _DEADLINE else "cancelled",
            self.deadline.elapsed(),
            "shut down" if conn is not None or sock is not None else "not open yet",
        )

    def error_for(self, exc: BaseException | None, phase: str) -> NetworkError | None:
        """The error to raise instead of ``exc``, or ``None`` to let ``exc`` through."""
        return _make_error(
            self.reason,
            self.deadline,
            self.cancel,
            self.request,
            exc,
            phase=phase,
            sent=self.request_sent,
        )

    def classified(self, exc: BaseException) -> NetworkError:
        """``exc`` (from requests or urllib3) as the connmgr error.

        The one place where the transport maps such failures into the tree.
        :attr:`request_sent` is what the connection saw: once it started
        writing the request, the server may have it, whatever the exception's
        type suggests (a malformed answer to a POST is not "never sent").
        """
        error = classify_error(exc, url=self.request.url)
        if self.request_sent:
            error.request_sent = True
        return error


def _make_error(
    reason: str | None,
    deadline: Deadline,
    cancel: CancelToken | None,
    request: requests.PreparedRequest,
    exc: BaseException | None,
    *,
    phase: str,
    sent: bool,
) -> NetworkError | None:
    """The deadline or cancel error for an attempt, or ``None`` if neither applies.

    A cancel wins over the deadline; an attempt that ends with an error after
    the deadline passed counts as a deadline error even if the watchdog had
    not fired yet (the read timeout is capped to the same instant).
    """
    if reason == _CANCEL or (reason is None and cancel is not None and cancel.cancelled):
        why = cancel.reason if cancel is not None and cancel.reason else "cancelled"
        return RequestCancelledError(
            f"request cancelled {phase}",
            request=request,
            details=f"{why} ({phase})" + _describe(exc),
            request_sent=sent,
        )
    if reason == _DEADLINE or deadline.expired:
        total = deadline.total if deadline.total is not None else 0.0
        return DeadlineExceededError(
            f"the request did not finish within its {total:g} s deadline "
            f"({phase}, {deadline.elapsed():.3f} s elapsed)",
            request=request,
            timeout=deadline.total,
            details=f"total deadline {total:g} s exceeded {phase}" + _describe(exc),
            request_sent=sent,
        )
    return None


def _describe(exc: BaseException | None) -> str:
    """``"; last error: ReadTimeout <- timeout"``: the exception types only.

    Messages from urllib3 and requests can carry the URL, query string and
    all, so they stay out of ``details`` (the original is ``__cause__``).
    """
    if exc is None:
        return ""
    chain = [type(exc).__name__]
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen and len(chain) < 4:
        seen.add(id(cause))
        chain.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return "; last error: " + " <- ".join(chain)


def _kill_connection(conn: _WatchedHTTPConnection, sock: object) -> None:
    conn._connmgr_killed = True
    current = conn.sock
    _shutdown(current)
    if sock is not current:
        _shutdown(sock)


class _Current(threading.local):
    """The attempt being sent by this thread (read by the pool and connection classes)."""

    attempt: _Attempt | None = None


_current: Final = _Current()


# --------------------------------------------------------------------------- urllib3 classes


class _WatchedResponse(HTTPResponse):
    """The final response of a ``stream=True`` attempt: a read the watchdog
    (or a cancel) interrupted raises the deadline (or cancel) error, and
    ``close()`` ends the attempt. The adapter gives the response this class by
    ``__class__`` swap (same layout, nothing copied)."""

    _connmgr_attempt: _Attempt | None = None

    def _connmgr_fail(self, exc: BaseException | None) -> None:
        """Raise the deadline/cancel error if the attempt was killed (or ``exc``
        came after the deadline); return to let the caller go on or re-raise."""
        attempt = self._connmgr_attempt
        if attempt is None or (exc is None and attempt.reason is None):
            return
        error = attempt.error_for(exc, "while reading the response body")
        if error is not None:
            raise error from exc

    # After a kill, a read may also *succeed*: a body without Content-Length
    # then looks complete at the EOF the shutdown caused. So every read checks.

    def read(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,
        cache_content: bool = False,
    ) -> bytes:
        try:
            data = super().read(amt, decode_content, cache_content)
        except (DeadlineExceededError, RequestCancelledError):
            raise
        except Exception as exc:
            self._connmgr_fail(exc)
            raise
        self._connmgr_fail(None)
        return data

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        try:
            data = super().read1(amt, decode_content)
        except (DeadlineExceededError, RequestCancelledError):
            raise
        except Exception as exc:
            self._connmgr_fail(exc)
            raise
        self._connmgr_fail(None)
        return data

    def read_chunked(
        self, amt: int | None = None, decode_content: bool | None = None
    ) -> Generator[bytes]:
        try:
            for chunk in super().read_chunked(amt, decode_content):
                self._connmgr_fail(None)
                yield chunk
        except (DeadlineExceededError, RequestCancelledError):
            raise
        except Exception as exc:
            self._connmgr_fail(exc)
            raise
        self._connmgr_fail(None)

    def close(self) -> None:
        super().close()
        attempt = self._connmgr_attempt
        if attempt is not None:
            attempt.finish()


class _WatchedHTTPConnection(HTTPConnection):
    """Registers each new socket with the current attempt (the pool registers
    the connection itself when it hands it out, new or reused)."""

    _connmgr_killed = False
    _connmgr_attempt: _Attempt | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        attempt = _current.attempt
        if attempt is not None:
            attempt.watch(self, sock)
        return sock

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        """Note that the request is being written, then write it (the first bytes)."""
        if self.sock is None:
            # http.client would connect inside its first send(); connecting
            # here instead writes nothing of the request, so a failure to
            # connect still proves that the request never left.
            self.connect()
        attempt = self._connmgr_attempt
        if attempt is not None:
            attempt.request_sent = True
        super().endheaders(message_body, encode_chunked=encode_chunked)

    def close(self) -> None:
        self._connmgr_killed = False  # the object may be reused with a fresh socket
        super().close()


class _WatchedHTTPSConnection(HTTPSConnection, _WatchedHTTPConnection):
    """The TLS variant (same hooks; MRO puts HTTPSConnection's connect first)."""


class _PoolHooks:
    """Pool mixin: hand connections to the current attempt and take them back.

    ``_get_conn`` registers the connection (new or reused) with the attempt
    this thread is sending: lock-free, see :class:`_Attempt`. ``_put_conn``
    detaches it first, under the lock a kill takes, so a watchdog kill either
    happened before (the connection is then closed here: the pool never holds
    a shut-down socket) or cannot reach it any more; when the attempt's final
    response is done with it, that ends the attempt.
    """

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        attempt = _current.attempt
        if attempt is not None:
            conn._connmgr_attempt = attempt
            attempt.conn = conn
            sock = conn.sock
            if sock is not None:
                attempt.sock = sock
            if attempt.reason is not None and not attempt.done:
                _kill_connection(conn, attempt.sock)  # killed while waiting for the pool
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            attempt = conn._connmgr_attempt
            if attempt is not None:
                conn._connmgr_attempt = None
                ended = False
                with _Process.attempt_lock:
                    if attempt.conn is conn:
                        attempt.conn = None
                        attempt.sock = None
                    if attempt.finish_on_release and not attempt.done:
                        attempt.done = ended = True
                if ended:
                    attempt._disarm()
            if conn._connmgr_killed:
                conn.close()
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPConnectionPool(_PoolHooks, HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(_PoolHooks, HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOL_CLASSES: Final = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


# --------------------------------------------------------------------------- public API


class TimeoutHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that holds connect, read and total deadlines.

    ``timeout_config`` (default: ``NetworkConfig.get_timeout()``) gives the
    connect and read timeouts and the total deadline of a request sent with
    ``timeout=None``. Per call, ``timeout=`` may be an :class:`AttemptContext`
    (a deadline shared by several attempts, and a cancel token), a number or
    a ``(connect, read)`` pair (the config's total still holds), or a urllib3
    ``Timeout``. Other arguments go to ``HTTPAdapter`` (``max_retries``,
    ``pool_maxsize``, ...); leave retries to connmgr's retry engine, since
    urllib3's own retries cannot see the deadline between tries.

    Mounted on any ``requests.Session``, each redirect hop gets a fresh
    deadline when ``timeout=None``; sessions from :func:`create_session` start
    one deadline for the whole chain.

    Example::

        session = requests.Session()
        adapter = TimeoutHTTPAdapter(TimeoutConfig(connect=2, read=10, total=15))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.get(url)                       # at most ~15 s, however the server behaves
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "timeout_config", "clock"]

    def __init__(
        self,
        timeout_config: TimeoutConfig | None = None,
        *args: Any,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        if timeout_config is None:
            timeout_config = NetworkConfig.get_timeout()
        elif not isinstance(timeout_config, TimeoutConfig):
            raise ValueError(f"timeout_config must be a TimeoutConfig, got {timeout_config!r}")
        self.timeout_config = timeout_config
        self.clock = clock
        super().__init__(*args, **kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Set up urllib3's pool manager with connection classes the watchdog can reach."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """As ``HTTPAdapter``'s, with the watched connection classes (not for SOCKS)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager

    def send(  # noqa: PLR0917  (HTTPAdapter.send's signature)
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | TimeoutPair | Urllib3Timeout | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send one attempt under the deadline; see the class docstring.

        Failures leave as the connmgr error tree (:func:`~connmgr.classify_error`),
        which still subclasses requests' exceptions: a read timeout is a
        :class:`~connmgr.RequestTimeoutError` (a ``requests.Timeout``) even where
        requests itself would raise ``ConnectionError("Read timed out")``.
        """
        attempt, pair = self._begin(request, timeout)
        try:
            return self._send(attempt, request, stream, pair, verify, cert, proxies)
        except NetworkError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The one boundary where requests/urllib3 failures become connmgr errors.
            raise attempt.classified(exc) from exc

    def _begin(
        self,
        request: requests.PreparedRequest,
        timeout: float | TimeoutPair | Urllib3Timeout | None,
    ) -> tuple[_Attempt, TimeoutPair]:
        """The attempt (armed on the watchdog) and its ``(connect, read)``.

        Raises the deadline or cancel error, with nothing sent, when the
        context given is already spent.
        """
        cancel: CancelToken | None = None
        connect: float | None
        read: float | None
        deadline: Deadline | _LazyDeadline
        if isinstance(timeout, AttemptContext):
            deadline, cancel = timeout.deadline, timeout.cancel
            connect, read = timeout
            remaining = deadline.remaining()
            if (cancel is not None and cancel.cancelled) or (
                remaining is not None and remaining <= 0
            ):
                error = _make_error(
                    None, deadline, cancel, request, None, phase="before it was sent", sent=False
                )
                if error is not None:
                    raise error
        else:
            config = self.timeout_config
            remaining = config.total
            # Started now; the Deadline object is only built if needed.
            clock = self.clock if self.clock is not None else SYSTEM_CLOCK
            deadline = (remaining, clock.now(), clock)
            if timeout is None:
                connect, read = config.connect, config.read
            elif isinstance(timeout, Urllib3Timeout):
                connect, read = _from_urllib3(timeout, config)
            else:
                connect, read = timeout_pair(timeout)
        if remaining is not None:
            # Cap both by the time left (floored: urllib3 treats 0 as "fail now").
            cap = remaining if remaining > MIN_ATTEMPT_TIMEOUT else MIN_ATTEMPT_TIMEOUT
            if connect is None or connect > cap:
                connect = cap
            if read is None or read > cap:
                read = cap
        return _Attempt(deadline, remaining, cancel, request), (connect, read)

    def _send(  # noqa: PLR0917
        self,
        attempt: _Attempt,
        request: requests.PreparedRequest,
        stream: bool,
        pair: TimeoutPair,
        verify: bool | str,
        cert: Any,
        proxies: Any,
    ) -> requests.Response:
        previous, _current.attempt = _current.attempt, attempt
        try:
            response = super().send(
                request,
                stream=stream,
                timeout=cast(Any, pair),  # Any: the stubs' timeout type is narrower
                verify=verify,
                cert=cert,
                proxies=proxies,
            )
        except Exception as exc:
            attempt.finish()
            error = attempt.error_for(exc, "before the response headers arrived")
            if error is not None:
                raise error from exc
            raise
        except BaseException:
            attempt.finish()
            raise
        finally:
            _current.attempt = previous
        if attempt.reason is not None:
            # Killed while the headers arrived: a shutdown mid-headers can even
            # parse as a complete (truncated) response. Never hand that out.
            response.close()
            attempt.finish()
            error = attempt.error_for(None, "before the response headers arrived")
            if error is not None:
                raise error

        response._connmgr_attempt = attempt  # type: ignore[attr-defined]  # for redirects
        raw = response.raw
        if not stream:
            # Read the body now, under the watchdog (requests would read it
            # after we return); the pool taking the connection back at its
            # end finishes the attempt. requests' own .content is then cached.
            attempt.finish_on_release = True
            try:
                response.content  # noqa: B018
            except Exception as exc:
                error = attempt.error_for(exc, "while reading the response body")
                if error is not None:
                    raise error from exc
                raise
            finally:
                attempt.finish()
            if attempt.reason is not None:  # killed, yet the read "succeeded": truncated
                error = attempt.error_for(None, "while reading the response body")
                if error is not None:
                    raise error
        elif attempt.conn is not None and type(raw) is HTTPResponse:
            # Armed until the body is read out or the response closed.
            raw.__class__ = _WatchedResponse
            cast(_WatchedResponse, raw)._connmgr_attempt = attempt
            attempt.finish_on_release = True
        else:
            attempt.finish()  # nothing of ours to watch (e.g. a mocked response)
        return response


def _from_urllib3(timeout: Urllib3Timeout, config: TimeoutConfig) -> TimeoutPair:
    connect = timeout.connect_timeout
    read = timeout.read_timeout
    return (
        config.connect if not isinstance(connect, int | float) and connect is not None else connect,
        config.read if not isinstance(read, int | float) and read is not None else read,
    )


class DeadlineSession(requests.Session):
    """A ``requests.Session`` whose requests each run under one deadline.

    Created by :func:`create_session`: a :class:`TimeoutHTTPAdapter` mounted
    for http and https, and redirects followed under the deadline the first
    hop started (``timeout_config.total`` for the whole chain, not per hop).
    A call's own number or ``(connect, read)`` sets the per-attempt timeouts.

    Example::

        with DeadlineSession(TimeoutConfig.for_quick_check()) as s:
            s.get(url)                     # <= 20 s in all
            s.get(url, timeout=(1, 5))     # 1 s connect, 5 s reads, still <= 20 s in all
    """

    def __init__(
        self, timeout_config: TimeoutConfig | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        adapter = TimeoutHTTPAdapter(timeout_config, clock=clock)
        self.timeout_config = adapter.timeout_config
        self.clock = clock
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def resolve_redirects(
        self, resp: requests.Response, req: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> Generator[requests.Response]:
        """Follow redirects under the deadline the first response was sent with."""
        # The usual case, no redirect: requests' generator will yield nothing.
        if resp.status_code not in REDIRECT_STATI or not resp.is_redirect:
            return super().resolve_redirects(resp, req, *args, **kwargs)  # type: ignore[no-any-return]
        attempt = getattr(resp, "_connmgr_attempt", None)
        timeout = kwargs.get("timeout")
        if attempt is not None and not isinstance(timeout, (AttemptContext, Urllib3Timeout)):
            deadline = attempt.deadline
            adapter = resp.connection
            config = (
                adapter.timeout_config
                if isinstance(adapter, TimeoutHTTPAdapter)
                else self.timeout_config
            )
            kwargs["timeout"] = AttemptContext(config, deadline, timeout=timeout)
        redirects: Generator[requests.Response] = super().resolve_redirects(
            resp, req, *args, **kwargs
        )
        return redirects


def create_session(
    timeout_config: TimeoutConfig | None = None, *, clock: Clock | None = None
) -> requests.Session:
    """A session whose every request holds connect, read and total deadlines.

    ``timeout_config`` defaults to ``NetworkConfig.get_timeout()`` (5/30/60).
    The original plan's function; the session is a :class:`DeadlineSession`.

    Example::

        session = create_session(TimeoutConfig.for_search())
        session.get("https://api.example.com/search", params={"q": "techno"})
    """
    return DeadlineSession(timeout_config, clock=clock)
