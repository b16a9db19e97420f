"""One attempt on the wire: its socket, the kill that ends it, the urllib3 classes that carry it.

:class:`Attempt` is one try of one request through
:class:`~connmgr.transport.TimeoutHTTPAdapter`. It is armed on the
:mod:`~connmgr.watchdog` (its total deadline) and on the caller's
:class:`~connmgr.clock.CancelToken`; either one *kills* it: the socket is
shut down (``shutdown(SHUT_RDWR)`` wakes a ``recv`` blocked in any thread)
and the read that was waiting raises the deadline or cancel error.

The attempt reaches urllib3 through the thread that sends it
(:data:`CURRENT`): the pool classes here register the connection they hand
out, new or reused, and the connection class registers each new socket and
notes when it starts writing the request (:attr:`Attempt.request_sent`).
A connection whose socket was shut down is closed before it goes back to
the pool, so it never serves another request.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import socket
import threading
from collections.abc import Generator
from typing import Any, Final, cast

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import DeflateDecoder, GzipDecoder, GzipDecoderState, HTTPResponse
from urllib3.util.response import is_fp_closed

from connmgr.clock import CancelToken, Clock
from connmgr.errors import (
    ConnectionFailedError,
    DeadlineExceededError,
    NetworkError,
    RequestCancelledError,
    classify_error,
)
from connmgr.timeouts import Deadline
from connmgr.watchdog import WATCHDOG, Scheduled

__all__ = [
    "CURRENT",
    "POOL_CLASSES",
    "Attempt",
    "LazyDeadline",
    "WatchedHTTPConnection",
    "WatchedHTTPConnectionPool",
    "WatchedHTTPSConnection",
    "WatchedHTTPSConnectionPool",
    "WatchedResponse",
    "error_before_sending",
]

logger = logging.getLogger(__name__)

_DEADLINE, _CANCEL, _NETWORK_CHANGED = "deadline", "cancel", "network_changed"
# (total, started_at, clock): a deadline the adapter started, not built yet
# (most requests succeed and never look at it).
LazyDeadline = tuple[float | None, float, Clock]


class _Process:
    """The transport's process-wide state, renewed in a forked child."""

    #: Guards the attempts' state against a kill (see Attempt); one for all
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


class Attempt(Scheduled):
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
    it, whatever fails. :attr:`tracked` says one of connmgr's connections
    served the attempt, so that a false :attr:`request_sent` proves nothing
    was written (see :attr:`known_sent`). :attr:`body_bytes` counts the body
    read so far (decoded), against :attr:`max_body` (``None``: no limit).
    """

    __slots__ = (
        "__weakref__",  # the adapter tracks live attempts weakly (a network change ends them)
        "_armed",
        "_deadline",
        "_unhook",
        "body_bytes",
        "cancel",
        "conn",
        "done",
        "finish_on_release",
        "max_body",
        "reason",
        "request",
        "request_sent",
        "sock",
        "tracked",
    )

    def __init__(
        self,
        deadline: Deadline | LazyDeadline,
        remaining: float | None,
        cancel: CancelToken | None,
        request: requests.PreparedRequest,
        max_body: int | None = None,
    ) -> None:
        super().__init__()
        self._deadline = deadline
        self.cancel = cancel
        self.request = request
        self.max_body = max_body
        self.body_bytes = 0
        self.reason: str | None = None
        self.conn: WatchedHTTPConnection | None = None
        self.sock: object = None
        self.done = False
        self.request_sent = False
        self.tracked = False
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

    @property
    def known_sent(self) -> bool | None:
        """Whether the request was written: ``True``, ``False`` (proven), or ``None``.

        ``None`` when no connection of connmgr's served the attempt (a SOCKS
        proxy's, a mocked adapter): then nothing here knows.
        """
        if self.request_sent:
            return True
        return False if self.tracked else None

    def watch(self, conn: WatchedHTTPConnection, sock: object = None) -> None:
        """``conn`` (with ``sock``, or its current socket) now serves this attempt."""
        conn._connmgr_attempt = self
        self.conn = conn
        self.tracked = True
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

    def abandon_old_network(self) -> None:
        """The network changed under this attempt: end it now, as a broken connection.

        Its socket belongs to the old network, where it may wait for an answer
        that can never come until its read timeout. The attempt fails with a
        transient ``ConnectionFailedError`` (kind ``"network_changed"``), which
        the caller retries when resending is safe.
        """
        self._kill(_NETWORK_CHANGED)

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
            {_DEADLINE: "deadline reached", _CANCEL: "cancelled"}.get(reason, reason),
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
            sent=self.known_sent,
        )

    def classified(self, exc: BaseException) -> NetworkError:
        """``exc`` (from requests or urllib3) as the connmgr error.

        The one place where the transport maps such failures into the tree.
        ``request_sent`` is what the connection saw (:attr:`known_sent`): once
        it started writing the request, the server may have it, whatever the
        exception's type suggests (a malformed answer to a POST is not "never
        sent"); before that, nothing left. Unknown: the classification's own.
        """
        return classify_error(exc, url=self.request.url, request_sent=self.known_sent)

    def too_large(self) -> NetworkError:
        """The error for a body over :attr:`max_body` (never retried: it would be as large)."""
        return NetworkError(
            f"the response body is larger than the {self.max_body} bytes this operation accepts",
            request=self.request,
            kind="too_large",
            user_message="The server sent far more data than expected, so it was not read.",
            suggestion="Try again later, and report it if it keeps happening.",
            details=(
                f"decoded body over max_body_bytes={self.max_body} of the operation's "
                "TimeoutConfig (None for no limit)"
            ),
            request_sent=True,
        )


def error_before_sending(
    deadline: Deadline, cancel: CancelToken | None, request: requests.PreparedRequest
) -> NetworkError | None:
    """The cancel or deadline error for a context already spent, or ``None``.

    For the adapter, before anything is sent: the error says so
    (``request_sent=False``).
    """
    return _make_error(
        None, deadline, cancel, request, None, phase="before it was sent", sent=False
    )


def _make_error(
    reason: str | None,
    deadline: Deadline,
    cancel: CancelToken | None,
    request: requests.PreparedRequest,
    exc: BaseException | None,
    *,
    phase: str,
    sent: bool | None,
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
    if reason == _NETWORK_CHANGED:
        return ConnectionFailedError(
            f"the network changed {phase}: the old connection was dropped",
            request=request,
            kind="network_changed",
            details=f"network changed {phase}" + _describe(exc),
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


def _kill_connection(conn: WatchedHTTPConnection, sock: object) -> None:
    conn._connmgr_killed = True
    current = conn.sock
    _shutdown(current)
    if sock is not current:
        _shutdown(sock)


class _Current(threading.local):
    """The attempt being sent by this thread (read by the pool and connection classes)."""

    attempt: Attempt | None = None


CURRENT: Final = _Current()


# --------------------------------------------------------------------------- urllib3 classes


class IncompleteResponse(http.client.IncompleteRead):
    """The response ended before it was complete, in a way http.client and urllib3 let pass.

    Classified like any cut-off body (``"incomplete"``): the headers ended by
    the connection closing, or a gzip/deflate stream that stops before its
    end while the HTTP framing looked complete.
    """

    def __init__(self, what: str) -> None:
        super().__init__(b"")
        self.what = what

    def __str__(self) -> str:
        return self.what

    def __repr__(self) -> str:
        return f"IncompleteResponse({self.what!r})"


class _LastLine:
    """A file's ``readline``, remembering the last line it returned (``b""`` at EOF)."""

    __slots__ = ("_fp", "last")

    def __init__(self, fp: Any) -> None:
        self._fp = fp
        self.last: bytes | None = None

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._fp.readline(limit)
        self.last = line
        return line

    def close(self) -> None:
        """Close the file (http.client does on a bad status line)."""
        self._fp.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class CheckedHTTPLibResponse(http.client.HTTPResponse):
    """http.client's response, strict about the head.

    * 1xx informational answers (``103 Early Hints``, ...) are skipped to the
      final response, as http.client already does for ``100 Continue``
      (``101 Switching Protocols`` is final);
    * headers ended by the connection closing, rather than by their blank
      line, raise :class:`IncompleteResponse` (http.client takes EOF as the
      end of the headers: a cut-off head became a 200 with an empty body).
    """

    def begin(self) -> None:
        real = self.fp
        probe = _LastLine(real)
        self.fp = cast(Any, probe)  # only readline() is used while the head is parsed
        try:
            while True:
                super().begin()
                if not 100 <= self.status < 200 or self.status == 101:
                    break
                self.headers = self.msg = cast(Any, None)  # the final response follows
        finally:
            if cast(object, self.fp) is probe:
                self.fp = real
        if probe.last == b"":
            raise IncompleteResponse("the connection closed before the response headers ended")


#: Decoded bytes one piece of a ``read()`` without a size returns: decoding
#: is bounded per piece, so the deadline and the size limit are checked as it goes.
_PIECE: Final = 64 * 1024


def _decoder_finished(decoder: object) -> bool:
    """Whether urllib3's gzip/deflate decoder has seen its stream's end.

    zlib takes a cut-off stream without complaint: only its ``eof`` tells.
    Data after a complete gzip member that does not decode is accepted
    (urllib3 does so, like other clients). Other encodings: ``True``.
    """
    parts = getattr(decoder, "_decoders", None)  # MultiDecoder ("gzip, deflate")
    if isinstance(parts, list):
        return all(_decoder_finished(part) for part in parts)
    if isinstance(decoder, GzipDecoder) and decoder._state == GzipDecoderState.SWALLOW_DATA:
        return True
    if isinstance(decoder, GzipDecoder | DeflateDecoder):
        return bool(decoder._obj.eof)
    return True


class WatchedResponse(HTTPResponse):
    """The final response of an attempt, read under its watch.

    The adapter gives urllib3's response this class by ``__class__`` swap
    (same layout, nothing copied). Every read:

    * raises the deadline or cancel error once the attempt was killed (a read
      may also *succeed* after a kill: a body without Content-Length then
      looks complete at the EOF the shutdown caused);
    * maps any other failure into the error tree (``request_sent=True``);
    * counts the body against the attempt's ``max_body`` (the decoded size);
    * at the end of the body, checks that a gzip/deflate stream was complete.

    A read without a size is done in pieces of :data:`_PIECE` decoded bytes,
    so a compression bomb is stopped at the limit or the deadline, never
    decoded whole. ``close()`` ends the attempt.
    """

    _connmgr_attempt: Attempt | None = None
    _connmgr_checked_end = False

    def read(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,
        cache_content: bool = False,
    ) -> bytes:
        if amt is None or amt < 0:
            data = b"".join(iter(functools.partial(self.read, _PIECE, decode_content), b""))
            if cache_content:
                self._body = data
            return data
        try:
            data = super().read(amt, decode_content, cache_content)
        except NetworkError:
            raise
        except Exception as exc:
            raise self._connmgr_failure(exc) from exc
        return self._connmgr_check(data, decode_content)

    def read1(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        try:
            data = super().read1(amt, decode_content)
        except NetworkError:
            raise
        except Exception as exc:
            raise self._connmgr_failure(exc) from exc
        return self._connmgr_check(data, decode_content)

    def read_chunked(
        self, amt: int | None = None, decode_content: bool | None = None
    ) -> Generator[bytes]:
        try:
            for chunk in super().read_chunked(amt, decode_content):
                yield self._connmgr_check(chunk, decode_content)
        except NetworkError:
            raise
        except Exception as exc:
            raise self._connmgr_failure(exc) from exc
        self._connmgr_check(b"", decode_content)

    def close(self) -> None:
        super().close()
        attempt = self._connmgr_attempt
        if attempt is not None:
            attempt.finish()

    def _connmgr_failure(self, exc: BaseException) -> NetworkError:
        """The error to raise for ``exc`` from a read: deadline, cancel, or classified."""
        attempt = self._connmgr_attempt
        if attempt is None:
            return classify_error(exc)
        error = attempt.error_for(exc, "while reading the response body")
        return error if error is not None else attempt.classified(exc)

    def _connmgr_check(self, data: bytes, decode_content: bool | None) -> bytes:
        attempt = self._connmgr_attempt
        if attempt is None:
            return data
        if attempt.reason is not None:
            killed = attempt.error_for(None, "while reading the response body")
            if killed is not None:
                raise self._connmgr_abort(killed)
        if data:
            attempt.body_bytes += len(data)
            limit = attempt.max_body
            if limit is not None and attempt.body_bytes > limit:
                raise self._connmgr_abort(attempt.too_large())
        if not self._connmgr_checked_end and self._connmgr_body_done():
            self._connmgr_checked_end = True
            decoded = self.decode_content if decode_content is None else decode_content
            if decoded and self._has_decoded_content and not _decoder_finished(self._decoder):
                cut = IncompleteResponse(
                    f"the {self.headers.get('Content-Encoding', '')} stream of the body "
                    "ended before its end"
                )
                raise self._connmgr_abort(attempt.classified(cut))
        return data

    def _connmgr_body_done(self) -> bool:
        """Whether the body has been read to its end (nothing left to return).

        urllib3 exposes no "finished" flag: this reads the state its own
        ``stream()`` loop tests (the file, the decoded buffer, the decoder's
        tail); the integrity tests pin it against the installed urllib3.
        """
        fp = self._fp
        if fp is not None and not is_fp_closed(fp):
            return False
        decoder = self._decoder
        return len(self._decoded_buffer) == 0 and not (
            decoder is not None and decoder.has_unconsumed_tail
        )

    def _connmgr_abort(self, error: NetworkError) -> NetworkError:
        """Close the connection (its body is not read out) and give it back to the pool."""
        with contextlib.suppress(Exception):
            self.close()
            self.release_conn()
        return error


class WatchedHTTPConnection(HTTPConnection):
    """Registers each new socket with the current attempt (the pool registers
    the connection itself when it hands it out, new or reused), notes when
    the request starts being written, and parses the head strictly
    (:class:`CheckedHTTPLibResponse`)."""

    response_class = CheckedHTTPLibResponse
    _connmgr_killed = False
    _connmgr_attempt: Attempt | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        attempt = CURRENT.attempt
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


class WatchedHTTPSConnection(HTTPSConnection, WatchedHTTPConnection):
    """The TLS variant (same hooks; MRO puts HTTPSConnection's connect first)."""


class _PoolHooks:
    """Pool mixin: hand connections to the current attempt and take them back.

    ``_get_conn`` registers the connection (new or reused) with the attempt
    this thread is sending: lock-free, see :class:`Attempt`. ``_put_conn``
    detaches it first, under the lock a kill takes, so a watchdog kill either
    happened before (the connection is then closed here: the pool never holds
    a shut-down socket) or cannot reach it any more; when the attempt's final
    response is done with it, that ends the attempt.
    """

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        attempt = CURRENT.attempt
        if attempt is not None:
            conn._connmgr_attempt = attempt
            attempt.conn = conn
            attempt.tracked = True
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


class WatchedHTTPConnectionPool(_PoolHooks, HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(_PoolHooks, HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


POOL_CLASSES: Final = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}
