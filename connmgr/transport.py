"""A requests transport adapter that enforces connect, read *and total* deadlines.

requests only knows per-socket-operation timeouts: a server that sends one
byte every 0.5 s, or stalls forever after the headers, never trips a 30 s read
timeout. :class:`TimeoutHTTPAdapter` adds the wall-clock deadline:

* every attempt is sent with ``(min(connect, remaining), min(read, remaining))``;
* the socket of the attempt is registered with one shared **watchdog** thread;
  when the deadline passes, the watchdog shuts the socket down
  (``shutdown(SHUT_RDWR)`` wakes a ``recv`` blocked in another thread), so a
  drip, a stall before the headers, a stall in the middle of the body and a
  header drip all end at the deadline with
  :class:`~connmgr.errors.DeadlineExceededError` (a ``requests.Timeout``);
* with ``stream=False`` the adapter reads the body itself, under the watchdog
  (requests would otherwise read it after the adapter returned); with
  ``stream=True`` the watchdog stays armed until the response is closed or
  read to the end;
* a :class:`~connmgr.clock.CancelToken` shuts the socket down from the
  cancelling thread: the request ends within milliseconds with
  :class:`~connmgr.errors.RequestCancelledError`.

A socket the watchdog shut down never serves another request: its
connection is closed before it goes back to the pool.

How the deadline reaches the adapter: requests hands the ``timeout=``
argument through ``Session.request`` -> ``Session.send`` -> ``adapter.send``
untouched (redirects included), so the caller passes an
:class:`AttemptContext` there. An ``AttemptContext`` *is* a ``(connect, read)``
tuple, so it type-checks as requests' ``timeout`` and a plain ``HTTPAdapter``
still gets sensible timeouts from it. With ``timeout=None`` the adapter starts
its own :class:`~connmgr.timeouts.Deadline` from its config; a number or a
``(connect, read)`` tuple sets those two for the attempt and the config's
total still holds.

Failures leave the adapter as the connmgr error tree: the deadline and
cancellation as :class:`~connmgr.errors.DeadlineExceededError` and
:class:`~connmgr.errors.RequestCancelledError`, anything requests or urllib3
raised through :func:`connmgr.errors.classify_error` (``from`` the original),
so a plain ``create_session()`` user gets a :class:`~connmgr.RequestTimeoutError`
for a read timeout, never requests' ``ConnectionError("Read timed out")``. Every
connmgr error still subclasses the matching requests exception.

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

import collections
import contextlib
import heapq
import itertools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Final, cast

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.models import REDIRECT_STATI
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse
from urllib3.util.timeout import Timeout as Urllib3Timeout

from connmgr.clock import CancelToken, Clock
from connmgr.errors import (
    DeadlineExceededError,
    NetworkError,
    RequestCancelledError,
    classify_error,
)
from connmgr.timeouts import MIN_ATTEMPT_TIMEOUT, Deadline, NetworkConfig, TimeoutConfig

__all__ = [
    "AttemptContext",
    "DeadlineSession",
    "TimeoutHTTPAdapter",
    "create_session",
]

logger = logging.getLogger(__name__)

_Pair = tuple[float | None, float | None]

# --------------------------------------------------------------------------- the watchdog

_PENDING, _CANCELLED, _FIRED = 0, 1, 2
# The inbox is drained by the watchdog thread when it wakes anyway, or when
# it holds this many entries (one wake-up per this many requests).
_INBOX_LIMIT: Final = 256
# The heap is compacted (cancelled entries dropped) when it has doubled since
# the last compaction and holds at least this many entries.
_COMPACT_FLOOR: Final = 64


class _Scheduled:
    """Something the watchdog can fire: an attempt (or a :class:`_Timer`).

    The watchdog holds these directly, so arming a deadline allocates nothing
    but the heap entry (made by the watchdog thread).
    """

    __slots__ = ("_wd_state", "_wd_when")

    def __init__(self) -> None:
        self._wd_state = _PENDING
        self._wd_when = math.inf

    def _wd_fire(self) -> None:
        raise NotImplementedError


class _Timer(_Scheduled):
    """A plain callback on the watchdog."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__()
        self.callback = callback

    def _wd_fire(self) -> None:
        self.callback()


class _Watchdog:
    """One daemon thread and a heap of deadlines for every request in the process.

    Arming is lock-free and O(1): the item goes into an inbox (a deque) and
    the thread is woken (under the lock) only when the new deadline is due
    before the thread's next planned look, or when the inbox has grown past
    ``_INBOX_LIMIT``. The thread moves the inbox into its heap (O(log n) per
    entry, skipping entries already cancelled, which most are: requests
    usually finish long before their deadline), fires what is due outside the
    lock, and sleeps until the earliest deadline. Cancelling is a store, and
    takes the entry back out of the inbox when the thread has not drained it
    yet (the usual case); cancelled entries in the heap leave it when they
    reach its top, or at a compaction (when the heap has doubled), so memory
    stays bounded by the inbox limit plus about twice the live deadlines.

    Times are ``time.monotonic``: the watchdog guards real sockets, whatever
    clock the deadline runs on.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        #: Guards the attempts' state against a kill (see _Attempt); one for
        #: all attempts, held for a few stores, so none is allocated per request.
        self.attempt_lock = threading.Lock()
        self._inbox: collections.deque[_Scheduled] = collections.deque()
        self._heap: list[tuple[float, int, _Scheduled]] = []
        self._seq = itertools.count()
        self._compacted_at = _COMPACT_FLOOR
        self._thread: threading.Thread | None = None
        #: When the thread will next look (inf: not before it is woken).
        self._wake_at = math.inf
        #: A wake-up is on its way: arming need not send another.
        self._waking = False

    def schedule(self, delay: float, item: _Scheduled) -> None:
        """Fire ``item`` in the watchdog thread after ``delay`` seconds."""
        when = time.monotonic() + delay
        item._wd_when = when
        inbox = self._inbox
        inbox.append(item)
        # Handshake with _run, without the lock: the thread publishes
        # _wake_at and then looks at the inbox; we append and then look at
        # _wake_at (the GIL orders these), so an entry due earlier than the
        # thread's plan is either seen by the thread or wakes it.
        if (when < self._wake_at or len(inbox) > _INBOX_LIMIT) and not self._waking:
            self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="connmgr-watchdog", daemon=True
                )
                self._thread.start()
            self._waking = True
            self._cond.notify()

    def cancel(self, item: _Scheduled) -> None:
        """Forget ``item`` unless it already fired (no lock).

        An item cancelled just as it fires is fired anyway; its owner must
        tolerate that (an attempt checks whether it is done, under a lock).
        """
        if item._wd_state == _PENDING:
            item._wd_state = _CANCELLED
            # Most attempts end before the thread ever drains them: take the item back
            # out of the inbox (about one entry per request in flight, so the C-level
            # scan is short), so finished attempts do not pile up there. Held until
            # the next drain, they outlived their request and cost the app a cyclic-GC
            # pass every few hundred requests, which plain requests never triggers.
            # try/except, not suppress(): that would cost a context manager per request.
            try:  # noqa: SIM105
                self._inbox.remove(item)
            except ValueError:
                pass  # already drained into the heap

    def stats(self) -> tuple[int, int]:
        """``(entries held, of which cancelled)``, for tests and benchmarks."""
        with self._lock:
            items = [e[2] for e in self._heap] + list(self._inbox)
        return len(items), sum(1 for item in items if item._wd_state != _PENDING)

    def _drain(self) -> None:
        """Move the inbox into the heap (thread, under the lock)."""
        heap, inbox = self._heap, self._inbox
        while inbox:
            item = inbox.popleft()
            if item._wd_state == _PENDING:
                heapq.heappush(heap, (item._wd_when, next(self._seq), item))
        if len(heap) > 2 * self._compacted_at:
            heap[:] = [e for e in heap if e[2]._wd_state == _PENDING]
            heapq.heapify(heap)
            self._compacted_at = max(len(heap), _COMPACT_FLOOR)

    def _run(self) -> None:
        cond, heap = self._cond, self._heap
        with cond:
            while True:
                self._waking = False
                self._drain()
                while heap and heap[0][2]._wd_state != _PENDING:
                    heapq.heappop(heap)
                delay: float | None = None
                if heap:
                    due = heap[0][0]
                    delay = due - time.monotonic()
                    if delay <= 0:
                        item = heapq.heappop(heap)[2]
                        item._wd_state = _FIRED
                        cond.release()
                        try:
                            item._wd_fire()
                        except Exception:
                            logger.exception("connmgr watchdog callback failed")
                        finally:
                            del item  # do not keep the last attempt alive while idle
                            cond.acquire()
                        continue
                    self._wake_at = due
                else:
                    self._wake_at = math.inf
                if self._inbox:  # armed after the drain, before _wake_at was published
                    continue
                cond.wait(delay)


_WATCHDOG: Final = _Watchdog()
if hasattr(os, "register_at_fork"):
    # The thread does not survive a fork, and a lock held by another thread
    # at the fork would stay held forever in the child: start afresh.
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


# --------------------------------------------------------------------------- one attempt

_DEADLINE, _CANCEL = "deadline", "cancel"
# (total, started_at, clock): a deadline the adapter started, not built yet.
_LazyDeadline = tuple[float | None, float, Clock | None]


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


class _Attempt(_Scheduled):
    """One attempt: its connection and socket, and the watchdog and cancel
    hooks that shut them down.

    Registration (by the pool as it hands out a connection, and
    :meth:`watch` for each new socket) is lock-free: two stores, then a look
    at :attr:`reason`; :meth:`_kill` sets :attr:`reason` before it reads the
    connection, so whichever runs second does the shutdown. Everything that
    must not interleave with a kill (the pool taking the connection back,
    finishing) takes ``_WATCHDOG.attempt_lock``: one process-wide lock, held for a few
    attribute stores (a kill also for a ``shutdown()`` call), so sharing it
    costs less than creating one per attempt.
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
        "sock",
    )

    def __init__(
        self,
        deadline: Deadline | _LazyDeadline,
        remaining: float | None,
        cancel: CancelToken | None,
        request: requests.PreparedRequest,
    ) -> None:
        self._wd_state = _PENDING
        self._wd_when = math.inf
        self._deadline = deadline
        self.cancel = cancel
        self.request = request
        self.reason: str | None = None
        self.conn: _WatchedHTTPConnection | None = None
        self.sock: object = None
        self.done = False
        #: Set once the adapter holds the final response: the pool taking its
        #: connection back (body read out, or response closed) ends the attempt.
        self.finish_on_release = False
        self._armed = remaining is not None
        if remaining is not None:
            _WATCHDOG.schedule(remaining, self)
        self._unhook = cancel.add_callback(self._on_cancel) if cancel is not None else None

    @property
    def deadline(self) -> Deadline:
        """The attempt's deadline (built on first use when the adapter started it)."""
        deadline = self._deadline
        if isinstance(deadline, Deadline):
            return deadline
        built = self._deadline = Deadline._from_start(*deadline)
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
        with _WATCHDOG.attempt_lock:
            if self.done:
                return False
            self.done = True
            self.conn = None
            self.sock = None
            return True

    def _disarm(self) -> None:
        if self._armed:
            _WATCHDOG.cancel(self)
        # Also breaks the attempt <-> cancel-hook reference cycle, so the
        # attempt is freed by refcounting rather than by the cyclic GC.
        unhook, self._unhook = self._unhook, None
        if unhook is not None:
            unhook()

    def _wd_fire(self) -> None:
        self._kill(_DEADLINE)

    def _on_cancel(self) -> None:
        self._kill(_CANCEL)

    def _kill(self, reason: str) -> None:
        with _WATCHDOG.attempt_lock:
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
        return _make_error(self.reason, self.deadline, self.cancel, self.request, exc, phase=phase)


def _make_error(
    reason: str | None,
    deadline: Deadline,
    cancel: CancelToken | None,
    request: requests.PreparedRequest,
    exc: BaseException | None,
    *,
    phase: str,
    sent: bool = True,
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
                with _WATCHDOG.attempt_lock:
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


class AttemptContext(tuple[float | None, float | None]):
    """The per-request deadline and cancel token, passed as requests' ``timeout=``.

    requests hands ``timeout`` to the adapter untouched (through redirects
    too), so this is how a caller gives :class:`TimeoutHTTPAdapter` a deadline
    that spans several attempts, and a cancel token. It *is* the tuple
    ``(connect, read)`` (from ``timeout`` if given, else from ``config``), so it
    type-checks as requests' ``timeout`` and a plain ``HTTPAdapter`` uses those
    two values. Immutable; compares by identity.

    Example::

        ctx = AttemptContext(TimeoutConfig.for_search(), Deadline(90.0), cancel=token)
        session.get(url, timeout=ctx)          # one attempt; retries reuse ctx
        ctx = AttemptContext.start(TimeoutConfig(), timeout=(1, 2))   # deadline from config.total
    """

    config: TimeoutConfig
    deadline: Deadline
    cancel: CancelToken | None

    def __new__(
        cls,
        config: TimeoutConfig,
        deadline: Deadline,
        cancel: CancelToken | None = None,
        *,
        timeout: float | _Pair | None = None,
    ) -> AttemptContext:
        if not isinstance(config, TimeoutConfig):
            raise ValueError(f"AttemptContext config must be a TimeoutConfig, got {config!r}")
        if not isinstance(deadline, Deadline):
            raise ValueError(f"AttemptContext deadline must be a Deadline, got {deadline!r}")
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise ValueError(f"AttemptContext cancel must be a CancelToken, got {cancel!r}")
        pair = config.as_tuple() if timeout is None else _split_timeout(timeout)
        return cls._make(config, deadline, cancel, pair)

    @classmethod
    def _make(
        cls,
        config: TimeoutConfig,
        deadline: Deadline,
        cancel: CancelToken | None,
        pair: _Pair,
    ) -> AttemptContext:
        """Build without validation (for callers that hold validated values)."""
        self = super().__new__(cls, pair)
        attrs = self.__dict__  # (__setattr__ refuses: immutable)
        attrs["config"] = config
        attrs["deadline"] = deadline
        attrs["cancel"] = cancel
        return self

    @classmethod
    def start(
        cls,
        config: TimeoutConfig | None = None,
        *,
        cancel: CancelToken | None = None,
        clock: Clock | None = None,
        timeout: float | _Pair | None = None,
    ) -> AttemptContext:
        """Start a :class:`Deadline` of ``config.total`` now and wrap it.

        ``config`` defaults to ``NetworkConfig.get_timeout()``.
        """
        config = config if config is not None else NetworkConfig.get_timeout()
        return cls(config, Deadline(config.total, clock=clock), cancel, timeout=timeout)

    @property
    def connect(self) -> float | None:
        """The connect timeout of each attempt (before the deadline's cap)."""
        return self[0]

    @property
    def read(self) -> float | None:
        """The read timeout of each attempt (before the deadline's cap)."""
        return self[1]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("AttemptContext is immutable")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __repr__(self) -> str:
        return (
            f"AttemptContext(connect={self[0]!r}, read={self[1]!r}, "
            f"deadline={self.deadline!r}, cancel={self.cancel!r})"
        )


def _split_timeout(timeout: object) -> _Pair:
    """A requests-style timeout (number or ``(connect, read)``) as a pair."""
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be a number or a (connect, read) pair, got {timeout!r}")
        connect, read = timeout
        return (_number_or_none("connect", connect), _number_or_none("read", read))
    value = _number_or_none("timeout", timeout)
    return (value, value)


def _number_or_none(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} timeout must be a positive number or None, got {value!r}")
    return float(value)


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
        timeout: float | _Pair | Urllib3Timeout | None = None,
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
        try:
            return self._send(request, stream, timeout, verify, cert, proxies)
        except NetworkError:
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The one boundary where requests/urllib3 failures become connmgr errors.
            raise classify_error(exc, url=request.url) from exc

    def _send(  # noqa: PLR0917
        self,
        request: requests.PreparedRequest,
        stream: bool,
        timeout: float | _Pair | Urllib3Timeout | None,
        verify: bool | str,
        cert: Any,
        proxies: Any,
    ) -> requests.Response:
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
            clock = self.clock
            deadline = (remaining, time.monotonic() if clock is None else clock.now(), clock)
            if timeout is None:
                connect, read = config.connect, config.read
            elif isinstance(timeout, Urllib3Timeout):
                connect, read = _from_urllib3(timeout, config)
            else:
                connect, read = _split_timeout(timeout)

        if remaining is None and cancel is None:
            # Nothing to watch: exactly what HTTPAdapter does.
            return super().send(
                request,
                stream=stream,
                timeout=cast(Any, (connect, read)),
                verify=verify,
                cert=cert,
                proxies=proxies,
            )

        attempt = _Attempt(deadline, remaining, cancel, request)

        if remaining is not None:
            # Cap both by the time left (floored: urllib3 treats 0 as "fail now").
            cap = remaining if remaining > MIN_ATTEMPT_TIMEOUT else MIN_ATTEMPT_TIMEOUT
            if connect is None or connect > cap:
                connect = cap
            if read is None or read > cap:
                read = cap
        pair: Any = (connect, read)  # Any: the stubs' timeout type is narrower than requests'
        previous, _current.attempt = _current.attempt, attempt
        try:
            response = super().send(
                request,
                stream=stream,
                timeout=pair,
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


def _from_urllib3(timeout: Urllib3Timeout, config: TimeoutConfig) -> _Pair:
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
