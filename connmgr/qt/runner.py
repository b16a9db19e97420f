"""Run a manager's requests on a thread pool and get the results back on the GUI thread.

:class:`RequestRunner` is the way to use connmgr from Qt: ``runner.get(url)``
returns a :class:`RequestHandle` at once, the request runs on one of the
runner's worker threads (where it may wait for a retry, a rate limit or a slow
server without freezing the window), and its end arrives as a Qt signal on the
GUI thread::

    runner = RequestRunner(mgr, parent=window)
    runner.finished.connect(lambda handle, response: show(response.json()))
    runner.failed.connect(lambda handle, error: status_bar.showMessage(error.user_message))
    handle = runner.get("/search", params={"q": "daft punk"}, operation="search")
    ...
    handle.cancel()            # this one; runner.cancel_all() for every one

The pool is a :class:`concurrent.futures.ThreadPoolExecutor` owned by the
runner (not Qt's global ``QThreadPool``): a request that has not started yet
can be taken off the queue, the runner can shut its own pool down without
touching anyone else's work, and the workers never touch a Qt object. Workers
put their results in an inbox (one lock) and post one event to the runner; the
GUI thread takes the whole inbox and emits the signals. When the runner is
destroyed (with its parent), the inbox closes first: every request is
cancelled and nothing is posted or emitted any more, so a window can close
while searches are in flight.

Each request gets a :class:`~connmgr.CancelToken` passed as ``cancel=`` to the
manager: cancelling ends any wait (gate, rate limit, retry delay, a stalled
read) within 50 ms with :class:`~connmgr.RequestCancelledError`, delivered
through ``failed`` like any other error.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal

from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.errors import RequestCancelledError, redact_url

__all__ = ["RequestHandle", "RequestRunner"]

logger = logging.getLogger(__name__)

_DELIVER_EVENT = QEvent.Type(QEvent.registerEventType())

#: Progress is posted at most this often per request (seconds), plus once at the end.
_PROGRESS_INTERVAL = 0.05
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class RequestHandle:
    """One request given to a :class:`RequestRunner`: cancel it, or read how it ended.

    ``state`` is ``"queued"``, ``"running"``, ``"finished"`` or ``"failed"``
    (set by the worker; the signal follows on the GUI thread). ``request_id``
    is the manager's id for the request once it has started (the one in
    connmgr's signals and in :class:`~connmgr.timeline.RequestTimeline`).

    Example::

        handle = runner.get("/search", params={"q": "x"})
        handle.cancel()
    """

    __slots__ = (
        "_done",
        "_lock",
        "_state",
        "error",
        "id",
        "method",
        "operation",
        "request_id",
        "response",
        "token",
        "url",
    )

    def __init__(self, handle_id: int, method: str, url: str, operation: str) -> None:
        #: The runner's number for this request (1, 2, ...).
        self.id = handle_id
        self.method = method
        self.url = url
        self.operation = operation
        #: The token given to the manager as ``cancel=``.
        self.token = CancelToken()
        #: The manager's request id, once the request has started.
        self.request_id: int | None = None
        #: The response, once finished.
        self.response: Any = None
        #: The exception, once failed.
        self.error: BaseException | None = None
        self._state = "queued"
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def state(self) -> str:
        """``"queued"``, ``"running"``, ``"finished"`` or ``"failed"``."""
        return self._state

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (the request may have ended anyway)."""
        return self.token.cancelled

    def done(self) -> bool:
        """Whether the worker is done with it (``finished`` or ``failed`` is on its way)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is done (never on the GUI thread); ``True`` if it is."""
        return self._done.wait(timeout)

    def cancel(self, reason: str = "cancelled by the app") -> None:
        """Cancel the request: its waits end at once, ``failed`` gets RequestCancelledError."""
        self.token.cancel(reason)

    def _start(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            return True

    def _abandon(self) -> RequestCancelledError | None:
        """End a request that never started (cancelled in the queue); its error, or None."""
        with self._lock:
            if self._state != "queued":
                return None
            error = RequestCancelledError(
                self.token.reason or "cancelled", url=redact_url(self.url)
            )
            self.error = error
            self._state = "failed"
        self._done.set()
        return error

    def _end(self, response: Any, error: BaseException | None) -> bool:
        with self._lock:
            if self._state in ("finished", "failed"):
                return False
            self.response = response
            self.error = error
            self._state = "failed" if error is not None else "finished"
        self._done.set()
        return True

    def __repr__(self) -> str:
        return f"<RequestHandle {self.id} {self.method} {redact_url(self.url)} {self._state}>"


@dataclass(slots=True)
class _Batch:
    progress: dict[int, tuple[RequestHandle, int, int]] = field(default_factory=dict)
    ends: list[tuple[RequestHandle, Any, BaseException | None]] = field(default_factory=list)


class _Inbox:
    """What the workers share with the GUI thread; never touches Qt after :meth:`close`."""

    def __init__(self, target: QObject) -> None:
        self._lock = threading.Lock()
        self._target: QObject | None = target
        self._batch = _Batch()
        self._posted = False
        self.active: dict[int, RequestHandle] = {}
        self.by_token: dict[int, RequestHandle] = {}

    def is_closed(self) -> bool:
        return self._target is None

    def add(self, handle: RequestHandle) -> None:
        with self._lock:
            if self._target is None:
                raise RuntimeError("the RequestRunner is closed")
            self.active[handle.id] = handle
            self.by_token[id(handle.token)] = handle

    def handles(self) -> list[RequestHandle]:
        with self._lock:
            return list(self.active.values())

    def started(self, token: object, request_id: int) -> None:
        with self._lock:
            handle = self.by_token.get(id(token))
        if handle is not None and handle.token is token:
            handle.request_id = request_id

    def put_progress(self, handle: RequestHandle, done: int, total: int) -> None:
        with self._lock:
            if self._target is None:
                return
            self._batch.progress[handle.id] = (handle, done, total)
            self._post_locked()

    def put_end(self, handle: RequestHandle, response: Any, error: BaseException | None) -> None:
        with self._lock:
            self.active.pop(handle.id, None)
            self.by_token.pop(id(handle.token), None)
            if self._target is None:
                return
            self._batch.ends.append((handle, response, error))
            self._post_locked()

    def _post_locked(self) -> None:
        if self._posted or self._target is None:
            return
        self._posted = True
        try:
            QCoreApplication.postEvent(self._target, QEvent(_DELIVER_EVENT))
        except RuntimeError:
            # The C++ object went away between the wrapper's destruction and our
            # close hook: nothing may be posted to it any more.
            self._target = None

    def take(self) -> _Batch:
        with self._lock:
            batch, self._batch = self._batch, _Batch()
            self._posted = False
            return batch

    def close(self, *_args: object) -> list[RequestHandle]:
        """Stop posting (any thread; idempotent); return the requests still under way."""
        with self._lock:
            self._target = None
            self._batch = _Batch()
            return list(self.active.values())


class _Lifetime:
    """Runs when the runner is destroyed: close the inbox, cancel, stop the pool.

    A plain object, not the runner: it must still be callable while the runner's
    C++ object is being destroyed.
    """

    def __init__(self, inbox: _Inbox, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self.inbox = inbox
        self.pool = pool
        self.receiver: Callable[..., None] | None = None
        self.manager: Any = None

    def close(self, *_args: object) -> None:
        for handle in self.inbox.close():
            handle.cancel("the window closed")
            handle._abandon()
        self.pool.shutdown(wait=False, cancel_futures=True)
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            signals.request_started.disconnect(receiver, sender=self.manager)


class RequestRunner(QObject):
    """Sends a manager's requests from a thread pool; the results come on the GUI thread.

    Args:
        manager: the manager (shared with the rest of the app).
        parent: the Qt parent; when it is destroyed the runner cancels its
            requests and emits nothing more.
        max_workers: worker threads (requests running at once; more wait in
            the queue, ``state == "queued"``).

    Signals (GUI thread): ``finished(handle, response)``,
    ``failed(handle, error)`` (a :class:`~connmgr.NetworkError`, or the
    ``TypeError``/``ValueError`` a bad argument raised) and
    ``progress(handle, done, total)`` for requests made with ``progress=True``
    (bytes of the body so far; ``total`` is -1 when the server sent no length;
    at most every 50 ms, the latest only while the GUI is busy, and always the
    last one before ``finished``).

    Create it, send and cancel on the GUI thread (the handles may be read and
    cancelled from any thread).

    Example::

        runner = RequestRunner(mgr, parent=window)
        runner.finished.connect(on_results)
        runner.get("/search", params={"q": text}, operation="search")
    """

    finished = Signal(object, object)
    failed = Signal(object, object)
    progress = Signal(object, int, int)

    def __init__(
        self, manager: Any, parent: QObject | None = None, *, max_workers: int = 4
    ) -> None:
        super().__init__(parent)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be an int, got {type(max_workers).__name__}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        if not callable(getattr(manager, "request", None)):
            raise TypeError(f"manager must have a request() method, got {type(manager).__name__}")
        self._manager = manager
        self._ids = itertools.count(1)
        self._inbox = _Inbox(self)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="connmgr-runner"
        )
        self._futures: dict[int, concurrent.futures.Future[None]] = {}
        self._lifetime = _Lifetime(self._inbox, self._pool)
        inbox = self._inbox

        def on_started(sender: object, **kw: Any) -> None:
            try:
                inbox.started(kw.get("cancel"), int(kw["request_id"]))
            except Exception:
                logger.exception("RequestRunner could not take request_started")

        self._lifetime.receiver = on_started
        self._lifetime.manager = manager
        signals.request_started.connect(on_started, sender=manager)
        self.destroyed.connect(self._lifetime.close)

    # -- reading -----------------------------------------------------------------------

    @property
    def manager(self) -> Any:
        """The manager the requests go through."""
        return self._manager

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran (or the runner was destroyed)."""
        return self._inbox.is_closed()

    def active(self) -> list[RequestHandle]:
        """The requests queued or running (their end not yet taken by the GUI)."""
        return self._inbox.handles()

    # -- sending -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        progress: bool = False,
        chunk_size: int = 64 * 1024,
        **kwargs: Any,
    ) -> RequestHandle:
        """Queue ``manager.request(method, url, cancel=handle.token, **kwargs)``; return its handle.

        ``progress=True`` streams the body in ``chunk_size`` pieces and emits
        ``progress`` as it arrives (a read that fails mid-body is reported
        through ``failed``, and not retried: the headers had arrived). Every
        other keyword goes to the manager (``operation``, ``params``, ``json``,
        ``headers``, ``wait_for_network`` ...). ``cancel`` is not accepted:
        use :meth:`RequestHandle.cancel`.
        """
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, got {type(method).__name__}")
        if method.upper() not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        if "cancel" in kwargs:
            raise TypeError(
                "cancel: the runner gives each request its own token; use handle.cancel()"
            )
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise TypeError(f"chunk_size must be an int, got {type(chunk_size).__name__}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")
        operation = str(kwargs.get("operation", "default"))
        handle = RequestHandle(next(self._ids), method.upper(), url, operation)
        self._inbox.add(handle)
        try:
            future = self._pool.submit(
                _run,
                self._manager,
                self._inbox,
                handle,
                kwargs,
                progress=progress,
                chunk_size=chunk_size,
            )
        except RuntimeError:  # the pool shut down between add() and submit()
            self._inbox.put_end(handle, None, RuntimeError("the RequestRunner is closed"))
            raise
        self._futures[handle.id] = future
        return handle

    def get(self, url: str, **kwargs: Any) -> RequestHandle:
        """``request("GET", url, **kwargs)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> RequestHandle:
        """``request("POST", url, **kwargs)``: sent once unless it has an ``Idempotency-Key``."""
        return self.request("POST", url, **kwargs)

    # -- cancelling and closing --------------------------------------------------------

    def cancel(self, handle: RequestHandle, reason: str = "cancelled by the app") -> None:
        """Cancel one request (same as ``handle.cancel()``, and takes it off the queue)."""
        handle.cancel(reason)
        self._dequeue(handle)

    def cancel_all(self, reason: str = "cancelled by the app") -> int:
        """Cancel every queued and running request; return how many.

        Each one's wait ends within 50 ms and arrives through ``failed`` with
        :class:`~connmgr.RequestCancelledError`; one not started yet is reported
        at once without running.
        """
        handles = self._inbox.handles()
        for handle in handles:
            handle.cancel(reason)
        for handle in handles:
            self._dequeue(handle)
        return len(handles)

    def close(self, wait: float = 0.0) -> None:
        """Cancel everything, stop the pool, emit nothing more; idempotent.

        ``wait`` (seconds) waits for the workers to return (they do within
        about 50 ms of the cancel); 0 does not wait. Call it before closing the
        manager (see docs/qt.md, "Shutting down").
        """
        handles = self._inbox.handles()
        self._lifetime.close()
        if wait > 0:
            deadline = time.monotonic() + wait
            for handle in handles:
                handle.wait(max(0.0, deadline - time.monotonic()))

    def _dequeue(self, handle: RequestHandle) -> None:
        future = self._futures.get(handle.id)
        if future is not None:
            future.cancel()  # frees the queue slot if it has not started
        error = handle._abandon()
        if error is not None:
            # Never started: no worker will report it, so report it here.
            self._inbox.put_end(handle, None, error)

    # -- Qt --------------------------------------------------------------------------

    def customEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        """Deliver what the workers left in the inbox (GUI thread)."""
        if event.type() != _DELIVER_EVENT:
            super().customEvent(event)
            return
        if self._inbox.is_closed():
            return
        batch = self._inbox.take()
        # Progress first: a request's last progress comes before its end.
        for handle, done, total in batch.progress.values():
            self.progress.emit(handle, done, total)
        for handle, response, error in batch.ends:
            self._futures.pop(handle.id, None)
            if self._inbox.is_closed():  # a receiver closed the runner
                return
            if error is not None:
                self.failed.emit(handle, error)
            else:
                self.finished.emit(handle, response)


def _run(
    manager: Any,
    inbox: _Inbox,
    handle: RequestHandle,
    kwargs: dict[str, Any],
    *,
    progress: bool,
    chunk_size: int,
) -> None:
    """One request on a worker thread: never raises, always reports its end once."""
    if not handle._start():
        return
    response: Any = None
    error: BaseException | None = None
    try:
        if progress:
            response = _streamed(manager, inbox, handle, kwargs, chunk_size)
        else:
            response = manager.request(handle.method, handle.url, cancel=handle.token, **kwargs)
    except Exception as exc:  # every error goes to failed(); the GUI decides what to show
        error = exc
    if handle._end(response, error):
        inbox.put_end(handle, response, error)


def _streamed(
    manager: Any, inbox: _Inbox, handle: RequestHandle, kwargs: dict[str, Any], chunk_size: int
) -> Any:
    """Send with ``stream=True`` and read the body in chunks, posting progress."""
    kwargs = {**kwargs, "stream": True}
    response = manager.request(handle.method, handle.url, cancel=handle.token, **kwargs)
    try:
        length = response.headers.get("Content-Length")
        try:
            total = int(length) if length is not None else -1
        except ValueError:
            total = -1
        body = bytearray()
        inbox.put_progress(handle, 0, total)
        last = time.monotonic()
        for chunk in response.iter_content(chunk_size):
            body += chunk
            now = time.monotonic()
            if now - last >= _PROGRESS_INTERVAL:
                last = now
                inbox.put_progress(handle, len(body), total)
            if handle.token.cancelled:
                raise RequestCancelledError.from_token(handle.token, url=redact_url(handle.url))
        inbox.put_progress(handle, len(body), total if total >= 0 else len(body))
        # What requests' own Response.content does once it has read the body, so
        # response.content / .text / .json() work for the receiver.
        response._content = bytes(body)
        response._content_consumed = True
        return response
    finally:
        response.close()
