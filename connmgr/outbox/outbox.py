"""Outbox: what the user did while offline, kept on disk and delivered when the network returns.

Example::

    from connmgr.outbox import Outbox

    outbox = Outbox("~/.local/share/djtool/outbox.db", mgr)
    outbox.start()                      # deliver in the background from now on
    outbox.submit("POST", "/playlists/7/tracks", json={"track": 42})
    status_bar.showMessage(f"{outbox.pending_count} changes waiting to be sent")
    ...
    outbox.close()
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from connmgr import signals
from connmgr.clock import CancelToken, Clock
from connmgr.outbox.delivery import Courier
from connmgr.outbox.entry import EXPIRED, FAILED, FINAL_STATES, OPEN_STATES, QUEUED, Entry
from connmgr.outbox.errors import OutboxClosedError
from connmgr.outbox.request import build_request, check_base_url, resolve_url
from connmgr.outbox.store import Store

if TYPE_CHECKING:
    from connmgr.manager import ConnectionManager

__all__ = ["DEFAULT_TTL", "Outbox", "WallClock"]

logger = logging.getLogger("connmgr.outbox")

#: How long an entry waits to be delivered before it expires (7 days).
DEFAULT_TTL: Final = 7 * 24 * 3600.0
#: The background thread looks at the queue at least this often (seconds).
_IDLE: Final = 60.0
_UNSET: Any = object()


class WallClock:
    """The outbox's default clock: ``time.time()`` (stored times must outlive the process)
    and interruptible ``threading.Event`` waits."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait up to ``seconds``; ``True`` if ``wake`` cut the wait short."""
        event = wake if wake is not None else threading.Event()
        if seconds <= 0:
            return event.is_set()
        return event.wait(min(seconds, threading.TIMEOUT_MAX))


class Outbox:
    """A durable queue of requests, delivered through a manager when the network allows.

    Args:
        path: the SQLite file (created, with its directory, if missing).
        manager: the :class:`~connmgr.ConnectionManager` to send through; its
            monitor says when the network is validated online.
        base_url: the base that relative URLs are stored against and that every
            stored relative entry is resolved against on delivery (default: the
            manager's ``base_url``); see :mod:`connmgr.outbox.request`.
        ttl: default time to live of an entry, in seconds (7 days).
        retry_delay: the first wait after an attempt that did not deliver; it
            doubles with each further attempt (jittered), up to ``max_retry_delay``.
            A server's ``Retry-After`` is honoured when longer.
        max_retry_delay: the longest wait between two attempts (5 minutes), a
            server's ``Retry-After`` included.
        max_bytes: the largest the file may grow (``None``: no limit);
            :meth:`submit` raises :class:`~connmgr.outbox.OutboxFullError` past it.
        clock: a :class:`~connmgr.Clock` whose ``now()`` is *wall-clock* time
            (it is stored); default :class:`WallClock`. Tests pass a ``FakeClock``.
        rng: randomness for the retry jitter.

    Raises:
        OutboxLockedError: the file is already open (this or another process).
        OutboxSchemaError: the file comes from a newer release, or is not an outbox.
        OutboxStorageError: the file cannot be opened or written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        manager: ConnectionManager,
        *,
        base_url: str | None = None,
        ttl: float = DEFAULT_TTL,
        retry_delay: float = 5.0,
        max_retry_delay: float = 300.0,
        max_bytes: int | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        for name in ("request", "monitor", "state_for", "timeouts"):
            if not hasattr(manager, name):
                raise TypeError(
                    f"manager must be a ConnectionManager, got {type(manager).__name__}"
                )
        self.ttl = _check_seconds("ttl", ttl)
        self.retry_delay = _check_seconds("retry_delay", retry_delay)
        self.max_retry_delay = _check_seconds("max_retry_delay", max_retry_delay)
        if self.max_retry_delay < self.retry_delay:
            raise ValueError(
                f"max_retry_delay ({max_retry_delay!r}) must be >= retry_delay ({retry_delay!r})"
            )
        if max_bytes is not None:
            if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
                raise TypeError(f"max_bytes must be an int or None, got {type(max_bytes).__name__}")
            if max_bytes < 4096:
                raise ValueError(f"max_bytes must be >= 4096 (one page or more), got {max_bytes!r}")
        self.manager = manager
        self.base_url = check_base_url(base_url) or check_base_url(
            getattr(manager, "base_url", None), "manager.base_url"
        )
        self.clock: Clock = WallClock() if clock is None else clock
        self._rng = random.Random() if rng is None else rng
        self._store = Store(os.path.expanduser(path), max_bytes=max_bytes)
        try:
            now = self.clock.now()
            interrupted = self._store.recover_interrupted(now=now)
            if interrupted:
                logger.warning(
                    "outbox %s: %d entr%s interrupted while sending; sending again with the "
                    "same Idempotency-Key",
                    self._store.path,
                    interrupted,
                    "y was" if interrupted == 1 else "ies were",
                )
            # A restart is a new situation: a server that was never reached saw no load.
            self._store.wake_unreached(now=now)
            self._pending = self._store.count(OPEN_STATES)
        except BaseException:
            self._store.close()
            raise
        self._courier = Courier(
            self._store,
            manager,
            base_url=self.base_url,
            clock=self.clock,
            rng=self._rng,
            retry_delay=self.retry_delay,
            max_retry_delay=self.max_retry_delay,
            changed=self._changed,
        )
        self._lock = threading.Lock()
        self._deliver_lock = threading.Lock()
        self._owner: int | None = None
        self._close_after_pass = False
        self._wake = threading.Event()
        self._waiters: set[threading.Event] = set()
        self._tokens: set[CancelToken] = set()
        self._thread: threading.Thread | None = None
        self._thread_stop = threading.Event()
        self._thread_token: CancelToken | None = None
        self._closed = False
        # blinker holds receivers weakly: keep the bound method alive on self.
        self._on_network_ref = self._on_network_changed
        signals.network_changed.connect(self._on_network_ref, sender=manager.monitor)

    # ------------------------------------------------------------------ reading

    @property
    def path(self) -> str:
        """The database file."""
        return str(self._store.path)

    @property
    def recovered_from(self) -> str | None:
        """Where a damaged file was moved when this outbox opened (else ``None``)."""
        aside = self._store.recovered_from
        return None if aside is None else str(aside)

    @property
    def pending_count(self) -> int:
        """How many entries are still to be sent (queued or sending): "3 changes waiting"."""
        return self._pending

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def running(self) -> bool:
        """Whether the background delivery thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._thread_stop.is_set()

    def pending(self) -> list[Entry]:
        """The entries still to be sent (queued or sending), in submission order.

        Entries whose time to live has run out are expired first.
        """
        return self._entries(OPEN_STATES)

    def failed(self) -> list[Entry]:
        """The entries the outbox gave up on (failed or expired), kept with their reason."""
        return self._entries((FAILED, EXPIRED))

    def _entries(self, states: tuple[str, ...]) -> list[Entry]:
        self._check_open()
        self._courier.expire(self.clock.now())
        return [
            Entry.from_row(row, self._courier.url_of(row)) for row in self._store.entries(states)
        ]

    # ------------------------------------------------------------------ writing

    def submit(
        self,
        method: str,
        url: str,
        *,
        json: Any = _UNSET,
        data: Any = None,
        headers: Any = None,
        params: Any = None,
        ttl: float | None = None,
        operation: str = "default",
    ) -> int:
        """Queue a request; return its id once it is on disk (committed and fsynced).

        Args:
            method: the HTTP method (any token; uppercased).
            url: absolute, or relative to the base in effect (see ``base_url``).
            json: a body to send as JSON (serialised now: an unserialisable
                value raises ``TypeError``/``ValueError`` and nothing is stored).
            data: ``bytes``, ``str`` (sent as UTF-8) or a mapping of form fields.
            headers: a mapping of ``str`` to ``str``. An ``Idempotency-Key``
                given here is used as the entry's key; otherwise a fresh UUID4 is.
                They are stored as given: put credentials on the manager's
                session, which adds them when the entry is sent.
            params: query parameters (a mapping or a list of pairs).
            ttl: seconds the entry may wait before it expires (default: the outbox's).
            operation: the manager's timeout profile for each attempt.

        Raises:
            TypeError, ValueError: a caller's bug (nothing is stored).
            OutboxFullError, OutboxStorageError: the entry could not be stored
                (nothing is stored; earlier entries are intact).
            OutboxClosedError: the outbox is closed.
        """
        self._check_open()
        life = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        if not isinstance(operation, str):
            raise TypeError(f"operation must be a str, got {type(operation).__name__}")
        self.manager.timeouts.get(operation)  # an unknown profile raises ValueError now
        request = build_request(
            method,
            url,
            base=self.base_url,
            json=None if json is _UNSET else json,
            has_json=json is not _UNSET,
            data=data,
            headers=headers,
            params=params,
            operation=operation,
        )
        now = self.clock.now()
        entry_id = self._store.insert(request, now=now, expires_at=now + life)
        with self._lock:
            self._pending += 1
        self._notify()
        self._changed(entry_id, QUEUED, resolve_url(self.base_url, request.base, request.ref), None)
        return entry_id

    def discard(self, entry_id: int) -> bool:
        """Remove an entry (e.g. a failed one the user dismissed); never blocks.

        Returns ``False`` if there is no such entry, or if it is being sent
        right now (it may already have reached the server). A queued entry that
        is discarded is never sent; the next one of its origin goes instead.
        """
        self._check_open()
        state = self._store.discard(entry_id)
        if state in OPEN_STATES:
            with self._lock:
                self._pending -= 1
        return state is not None

    def retry(self, entry_id: int, *, ttl: float | None = None) -> bool:
        """Queue a failed or expired entry again (a UI's "Try again"), with the same key.

        It keeps its place in submission order: older than what was queued after
        it, it is the next of its origin to be sent. Its attempts start from zero
        and its time to live from now (``ttl``, default the outbox's). Returns
        ``False`` if there is no such failed or expired entry.
        """
        self._check_open()
        life = self.ttl if ttl is None else _check_seconds("ttl", ttl)
        now = self.clock.now()
        if not self._store.requeue(entry_id, now=now, expires_at=now + life):
            return False
        with self._lock:
            self._pending += 1
        self._notify()
        rows = self._store.entries_by_id([entry_id])
        if rows:
            self._changed(entry_id, QUEUED, self._courier.url_of(rows[0]), rows[0])
        return True

    # ------------------------------------------------------------------ delivering

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Deliver what can be delivered within ``timeout`` seconds; ``True`` when nothing
        is left to send.

        Waits for the network to be validated, for the origins' gates and for
        retry times that fall within the timeout; a request still in flight
        when the time is up is interrupted (and sent again later with the same
        key). ``False`` means entries remain pending (see :meth:`pending`).
        ``timeout=None`` waits until everything is delivered or final.
        """
        self._check_open()
        if self._owner == threading.get_ident():
            raise RuntimeError(
                "drain() was called from inside a delivery (an outbox_changed receiver); "
                "call it from another thread"
            )
        if timeout is not None:
            timeout = _check_seconds("timeout", timeout, zero=True)
        deadline = math.inf if timeout is None else self.clock.now() + timeout
        token = CancelToken()
        waiter = threading.Event()
        timer: threading.Timer | None = None
        if timeout is not None:
            timer = threading.Timer(timeout, token.cancel, ("drain() ran out of time",))
            timer.daemon = True
            timer.start()
        with self._lock:
            self._tokens.add(token)
            self._waiters.add(waiter)
        try:
            while not self._halted(token):
                waiter.clear()
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    break
                with self._delivering(min(remaining, threading.TIMEOUT_MAX)) as held:
                    if not held or self._halted(token):
                        break
                    next_due = self._courier.deliver_due(token, deadline)
                if self._pending == 0:
                    return True
                now = self.clock.now()
                if next_due is None or next_due >= deadline or token.cancelled:
                    break
                self.clock.sleep(max(0.0, next_due - now), waiter)
        except OutboxClosedError:
            return False  # closed while draining: what was not delivered stays queued
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._tokens.discard(token)
                self._waiters.discard(waiter)
        return self._pending == 0

    def start(self) -> None:
        """Deliver in a background thread from now on (idempotent).

        The thread wakes for new submissions, for ``network_changed`` and when
        the next retry or expiry is due; it never polls faster than that.
        """
        self._check_open()
        with self._lock:
            thread = self._thread
            if thread is not None and thread.is_alive() and not self._thread_stop.is_set():
                return
            # A thread still finishing after stop() keeps its own (set) stop event.
            self._thread_stop = stop = threading.Event()
            self._wake.clear()
            thread = threading.Thread(
                target=self._run, args=(stop,), name="connmgr-outbox", daemon=True
            )
            self._thread = thread
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (idempotent); a request in flight is interrupted
        and stays queued, to be sent again with the same key."""
        with self._lock:
            thread = self._thread
            self._thread_stop.set()
            token = self._thread_token
        if token is not None:
            token.cancel("the outbox stopped")
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop delivering and close the file (idempotent); later calls raise
        :class:`~connmgr.outbox.OutboxClosedError`. Nothing queued is lost."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            tokens = list(self._tokens)
        inside_a_pass = self._owner == threading.get_ident()
        self.stop(timeout=0 if inside_a_pass else 5.0)
        for token in tokens:
            token.cancel("the outbox closed")
        self._notify()
        signals.network_changed.disconnect(self._on_network_ref, sender=self.manager.monitor)
        if inside_a_pass:
            # Called by a receiver during a pass: the pass closes the file as it ends.
            self._close_after_pass = True
            return
        with self._delivering():
            self._store.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._pending} pending"
        return f"<Outbox {self._store.path} {state}>"

    # ------------------------------------------------------------------ the loop

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            token = CancelToken()
            with self._lock:
                self._tokens.add(token)
                self._thread_token = token
            try:
                with self._delivering():
                    if stop.is_set() or self._halted(token):
                        break
                    next_due = self._courier.deliver_due(token, math.inf)
            except OutboxClosedError:
                break
            except Exception:
                # The thread must outlive a bad moment (a disk error): log, wait, go on.
                logger.exception("outbox %s: delivery pass failed", self._store.path)
                next_due = self.clock.now() + self.retry_delay
            finally:
                with self._lock:
                    self._tokens.discard(token)
            if stop.is_set() or self._halted(token):
                break
            wait = _IDLE if next_due is None else min(_IDLE, next_due - self.clock.now())
            self.clock.sleep(max(0.0, wait), self._wake)

    @contextlib.contextmanager
    def _delivering(self, timeout: float = -1) -> Iterator[bool]:
        """Hold the one-pass-at-a-time lock; yields ``False`` if it was not had in time.

        A :meth:`close` from inside the pass (a signal receiver) closes the file
        here, when the pass lets go of it.
        """
        if not self._deliver_lock.acquire(timeout=timeout):
            yield False
            return
        self._owner = threading.get_ident()
        try:
            yield True
        finally:
            self._owner = None
            close_now = self._close_after_pass
            self._deliver_lock.release()
            if close_now:
                self._store.close()

    # ------------------------------------------------------------------ events

    def _on_network_changed(self, sender: object, **kwargs: Any) -> None:
        self._courier.network_changed()
        status = kwargs.get("status")
        if status is not None and status.name in ("ONLINE", "LIMITED") and not self._closed:
            try:
                self._store.wake_unreached(now=self.clock.now())
            except (OutboxClosedError, OSError):
                return
            self._notify()

    def _notify(self) -> None:
        self._wake.set()
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.set()

    def _changed(self, entry_id: int, state: str, url: str, row: sqlite3.Row | None) -> None:
        """An entry changed state: count it, and tell the receivers (if any)."""
        if state in FINAL_STATES:
            with self._lock:
                self._pending -= 1
        signal = signals.outbox_changed
        if signal.is_muted or not signal.receivers:
            return  # nothing reads the row back when no one listens
        if row is None:
            rows = self._store.entries_by_id([entry_id])
            if not rows:
                return
            row = rows[0]
        entry = Entry.from_row(row, url, state=state)
        # A receiver that raises is logged by the signal and changes nothing here.
        signal.send(self, entry=entry, state=state, pending=self._pending)

    def _halted(self, token: CancelToken) -> bool:
        # Read through a call: close() changes these from other threads.
        return self._closed or token.cancelled

    def _check_open(self) -> None:
        if self._closed:
            raise OutboxClosedError(f"the outbox {self._store.path} is closed")


def _check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise ValueError(
            f"{name} must be a finite number of seconds {'>= 0' if zero else '> 0'}, got {value!r}"
        )
    return seconds
