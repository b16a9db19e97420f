"""What happened to each request, step by step, as frozen records any UI can show (no Qt).

A :class:`TimelineRecorder` listens to one manager's signals and keeps, for the
last ``max_requests`` requests, what each one went through: the waits at the
gate and why, each attempt and its answer, each retry and its delay, the state
changes it caused, and how it ended. :meth:`TimelineRecorder.records` returns
them as :class:`RequestTimeline` objects (frozen), oldest first, with every
number already in words for people ("2.0 s", "7.3 requests/s")::

    GET http://127.0.0.1:8080/search — 200 after 2 attempts in 2.6 s
      gate wait 2.0 s (rate_limited: Retry-After: 2 from the server)
      attempt 1: 503 (0.12 s)
      retry in 0.5 s (backoff, budget 480/500)
      attempt 2: 200 (0.01 s)

The records are built from the signals the manager already sends
(``request_started``, ``rate_limited``, ``retry_scheduled``, ``state_changed``,
``request_failed``, ``request_finished``). Signals are sent synchronously on
the thread that runs the request, so a ``rate_limited`` or ``state_changed``
without a request id is attributed to the request running on the thread that
sent it. Attempt durations are measured between signals: the time from the end
of the previous wait to the verdict, so they include connecting and reading.

Example::

    recorder = TimelineRecorder(mgr, max_requests=50)
    mgr.get("/search", params={"q": "daft punk"})
    for record in recorder.records():
        print(record.summary)
        for step in record.steps:
            print("  ", step.text)
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connmgr import signals
from connmgr.ratelimit import origin_of

logger = logging.getLogger(__name__)

__all__ = [
    "RequestTimeline",
    "TimelineRecorder",
    "TimelineStep",
    "format_duration",
    "format_rate",
]


# --------------------------------------------------------------------------- numbers for people


def format_duration(seconds: float) -> str:
    """Seconds for people: ``"0.12 s"``, ``"2.0 s"``, ``"37 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``.

    Two decimals under a second (an attempt's time), one under ten seconds
    (a wait), whole seconds above. Negative, NaN and infinite values read as
    ``"0.00 s"`` and ``"a long time"``.
    """
    if math.isnan(seconds) or seconds <= 0:
        return "0.00 s"
    if math.isinf(seconds):
        return "a long time"
    if seconds < 0.995:
        return f"{seconds:.2f} s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min"


def format_rate(per_second: float | None) -> str:
    """A request rate for people: ``"7.3 requests/s"``, ``"12 requests/s"``, ``"1 request/min"``."""
    if per_second is None or math.isnan(per_second) or per_second <= 0:
        return "no limit known"
    if math.isinf(per_second):
        return "no limit"
    if per_second < 1:
        per_minute = per_second * 60
        count = (
            f"{per_minute:.1f}".rstrip("0").rstrip(".") if per_minute < 10 else f"{per_minute:.0f}"
        )
        return f"{count} request/min" if count == "1" else f"{count} requests/min"
    count = f"{per_second:.1f}".rstrip("0").rstrip(".") if per_second < 10 else f"{per_second:.0f}"
    return f"{count} request/s" if count == "1" else f"{count} requests/s"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step of a request: a wait, an attempt, a retry, a state change, its end.

    ``kind`` is one of ``"gate_wait"``, ``"attempt"``, ``"retry"``, ``"state"``,
    ``"failed"``; ``at`` is the manager's clock time the step began; ``duration``
    its length in seconds when it has one; ``text`` the whole step in words and
    ``cause`` the why alone (also inside ``text``, in brackets).
    """

    kind: str
    at: float
    text: str
    cause: str = ""
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class RequestTimeline:
    """One request from start to end (or up to now, while ``outcome == "running"``).

    ``outcome`` is ``"running"``, or the ``request_finished`` outcome
    (``"success"``, ``"transient"``, ``"throttled"``, ``"cancelled"``, ``"gated"`` …).
    Times are on the manager's clock; ``elapsed`` is seconds from start to end
    (to the last step while running).
    """

    request_id: int
    method: str
    url: str
    operation: str
    started_at: float
    ended_at: float | None
    outcome: str
    status: int | None
    attempts: int
    steps: tuple[TimelineStep, ...]
    error_message: str = ""

    @property
    def running(self) -> bool:
        """Whether the request has not ended yet."""
        return self.ended_at is None

    @property
    def elapsed(self) -> float:
        """Seconds from start to end (or to the last step while running)."""
        end = self.ended_at
        if end is None:
            end = max((s.at + (s.duration or 0.0) for s in self.steps), default=self.started_at)
        return max(0.0, end - self.started_at)

    @property
    def summary(self) -> str:
        """One line: ``"GET http://…/search — 200 after 2 attempts in 2.6 s"``."""
        head = f"{self.method} {self.url}"
        if self.running:
            return f"{head} — running ({format_duration(self.elapsed)} so far)"
        tries = f"{self.attempts} attempt" + ("" if self.attempts == 1 else "s")
        took = format_duration(self.elapsed)
        if self.outcome in ("success", "slow"):
            code = str(self.status) if self.status is not None else "done"
            return f"{head} — {code} after {tries} in {took}"
        if self.outcome == "cancelled":
            return f"{head} — cancelled after {took}"
        if self.outcome == "gated":
            return f"{head} — not sent ({self.error_message or 'refused before sending'})"
        what = self.error_message or self.outcome
        return f"{head} — failed after {tries} in {took}: {what}"


# --------------------------------------------------------------------------- describing errors


def _status_of(error: Any) -> int | None:
    response = getattr(error, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _answer(error: Any) -> str:
    """What an attempt got back: ``"503"``, ``"connection refused"``, ``"timeout"``."""
    code = _status_of(error)
    if code is not None:
        return str(code)
    kind = getattr(error, "kind", None)
    words = {
        "connection": "could not connect",
        "dns": "name not found",
        "timeout": "timed out",
        "deadline": "deadline reached",
        "tls": "TLS failure",
        "cancelled": "cancelled",
    }
    if isinstance(kind, str) and kind in words:
        return words[kind]
    return type(error).__name__ if error is not None else "failed"


def _server_pause(error: Any) -> str:
    """Why the server asked for a pause: ``"Retry-After: 2 from the server"``, or ``""``."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        try:
            value = headers.get("Retry-After")
        except Exception:  # a foreign headers object: the step still gets its words
            value = None
        if value:
            return f"Retry-After: {str(value)[:40]} from the server"
    code = _status_of(error)
    if code == 429:
        return "429 from the server"
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        return f"the server asked for {format_duration(float(retry_after))}"
    return ""


def _message(error: Any) -> str:
    if error is None:
        return ""
    return str(getattr(error, "user_message", None) or error or type(error).__name__)


# --------------------------------------------------------------------------- the recorder

# Steps that start at the same instant: in the order they can cause one another.
_ORDER = {"gate_wait": 0, "attempt": 1, "state": 2, "retry": 3, "failed": 4}
# A gate "wait" shorter than this is the pause ending as the request arrived: not a step.
_SHORTEST_WAIT_SHOWN = 0.01


@dataclass(slots=True)
class _Live:
    """A request being recorded (mutable; frozen into a RequestTimeline on demand)."""

    request_id: int
    method: str
    url: str
    operation: str
    origin: str
    started_at: float
    attempt_from: float
    attempt: int = 1
    steps: list[TimelineStep] = field(default_factory=list)
    # Indexes of state steps that happen before the attempt they share a time with:
    # leaving rate_limited is the clock's doing at the gate, never an attempt's.
    early: set[int] = field(default_factory=set)
    # The last rate_limited seen while no attempt had ended since: a gate wait,
    # unless the next step is this attempt's retry (then the server's own pause).
    pending_pause: tuple[float, float] | None = None
    ended_at: float | None = None
    outcome: str = "running"
    status: int | None = None
    attempts: int = 0
    error_message: str = ""


def _origin_of(url: str) -> str:
    """The URL's origin as the manager names it (``scheme://host:port``), or ``""``."""
    try:
        return origin_of(url)
    except (ValueError, TypeError, AttributeError):  # not an absolute URL: no origin
        return ""


class TimelineRecorder:
    """Keeps the timeline of a manager's last ``max_requests`` requests (thread-safe).

    Connects to ``manager``'s signals at construction; :meth:`close` disconnects.
    The receivers run on the worker threads, take one lock for a list append,
    and never raise into the request.

    Example::

        recorder = TimelineRecorder(mgr)
        ...
        for record in recorder.records()[-5:]:
            print(record.summary)
    """

    def __init__(self, manager: Any, *, max_requests: int = 50) -> None:
        if isinstance(max_requests, bool) or not isinstance(max_requests, int):
            raise TypeError(f"max_requests must be an int, got {type(max_requests).__name__}")
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests!r}")
        self._manager = manager
        clock = getattr(manager, "clock", None)
        self._now: Callable[[], float] = clock.now if clock is not None else _monotonic
        self._lock = threading.Lock()
        self._live: dict[int, _Live] = {}
        self._done: collections.deque[_Live] = collections.deque(maxlen=max_requests)
        self._by_thread: dict[int, int] = {}
        self._origin_errors: dict[str, Any] = {}
        self._connections: list[tuple[Any, Callable[..., None]]] = []
        self._closed = False
        for signal, receiver in (
            (signals.request_started, self._on_started),
            (signals.rate_limited, self._on_rate_limited),
            (signals.retry_scheduled, self._on_retry),
            (signals.state_changed, self._on_state),
            (signals.request_failed, self._on_failed),
            (signals.request_finished, self._on_finished),
        ):
            guarded = _never_raise(receiver)
            signal.connect(guarded, sender=manager)
            self._connections.append((signal, guarded))

    @property
    def max_requests(self) -> int:
        """How many ended requests are kept."""
        return self._done.maxlen or 0

    def close(self) -> None:
        """Stop recording (idempotent); the records stay readable."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._closed = True
        for signal, receiver in connections:
            signal.disconnect(receiver, sender=self._manager)

    def records(self) -> list[RequestTimeline]:
        """Ended requests (oldest first), then the ones still running."""
        with self._lock:
            lives = [*self._done, *self._live.values()]
            return [_freeze(live) for live in lives]

    def record_for(self, request_id: int) -> RequestTimeline | None:
        """The timeline of one request, if it is still kept."""
        with self._lock:
            live = self._live.get(request_id)
            if live is None:
                live = next((d for d in self._done if d.request_id == request_id), None)
            return _freeze(live) if live is not None else None

    # -- receivers (worker threads) ----------------------------------------------------

    def _current(self) -> _Live | None:
        # Caller holds the lock.
        request_id = self._by_thread.get(threading.get_ident())
        return self._live.get(request_id) if request_id is not None else None

    def _on_started(self, sender: object, **kw: Any) -> None:
        now = self._now()
        url = str(kw.get("url", ""))
        live = _Live(
            request_id=int(kw["request_id"]),
            method=str(kw.get("method", "")),
            url=url,
            operation=str(kw.get("operation", "")),
            origin=_origin_of(url),
            started_at=now,
            attempt_from=now,
        )
        with self._lock:
            # A thread runs one request at a time: one still open on this thread
            # ended without request_finished (an exception outside the error tree).
            stale = self._live.pop(self._by_thread.get(threading.get_ident(), -1), None)
            if stale is not None:
                stale.ended_at = now
                stale.outcome = "ended"
                stale.error_message = "ended without a result"
                self._done.append(stale)
            self._live[live.request_id] = live
            self._by_thread[threading.get_ident()] = live.request_id

    def _on_rate_limited(self, sender: object, **kw: Any) -> None:
        wait = float(kw.get("wait") or 0.0)
        now = self._now()
        with self._lock:
            live = self._current()
            if live is None or str(kw.get("origin", "")) not in ("", live.origin):
                return
            self._settle_pause(live, None)
            live.pending_pause = (now, wait)

    def _on_retry(self, sender: object, **kw: Any) -> None:
        now = self._now()
        error = kw.get("error")
        delay = float(kw.get("delay") or 0.0)
        budget = getattr(self._manager, "retry_budget", None)
        with self._lock:
            live = self._live.get(int(kw["request_id"]))
            if live is None:
                return
            pause = live.pending_pause
            live.pending_pause = None
            if error is not None:
                self._origin_errors[live.origin] = error
            number = int(kw.get("attempt") or live.attempt + 1) - 1
            live.steps.append(
                TimelineStep(
                    "attempt",
                    live.attempt_from,
                    f"attempt {number}: {_answer(error)} "
                    f"({format_duration(now - live.attempt_from)})",
                    duration=max(0.0, now - live.attempt_from),
                )
            )
            server = _server_pause(error)
            if pause is not None and not server:
                server = "the server asked us to slow down"
            why = [server] if server else ["backoff"]
            available = getattr(budget, "available", None)
            capacity = getattr(budget, "capacity", None)
            if isinstance(available, int) and isinstance(capacity, int):
                why.append(f"budget {available}/{capacity}")
            cause = ", ".join(why)
            live.steps.append(
                TimelineStep(
                    "retry",
                    now,
                    f"retry in {format_duration(delay)} ({cause})",
                    cause=cause,
                    duration=delay,
                )
            )
            live.attempt = number + 1
            live.attempt_from = now + delay

    def _on_state(self, sender: object, **kw: Any) -> None:
        now = self._now()
        old, new = kw.get("old"), kw.get("new")
        old_name = getattr(old, "value", old)
        new_name = getattr(new, "value", new)
        reason = str(kw.get("reason", ""))
        with self._lock:
            live = self._current()
            if live is None or str(kw.get("origin", "")) != live.origin:
                return
            self._settle_pause(live, None)
            if old_name == "rate_limited":
                live.early.add(len(live.steps))
            live.steps.append(
                TimelineStep(
                    "state",
                    now,
                    f"state {old_name} → {new_name}" + (f" ({reason})" if reason else ""),
                    cause=reason,
                )
            )

    def _on_failed(self, sender: object, **kw: Any) -> None:
        now = self._now()
        error = kw.get("error")
        with self._lock:
            live = self._live.get(int(kw["request_id"]))
            if live is None:
                return
            if _status_of(error) is not None:
                # The pause announced by this attempt's own answer (a 429), not a gate wait.
                live.pending_pause = None
            self._settle_pause(live, error)
            if error is not None:
                self._origin_errors[live.origin] = error
            live.error_message = _message(error)
            sent = bool(getattr(error, "request_sent", True))
            kind = getattr(error, "kind", "")
            if sent and kind != "cancelled":
                live.steps.append(
                    TimelineStep(
                        "attempt",
                        live.attempt_from,
                        f"attempt {live.attempt}: {_answer(error)} "
                        f"({format_duration(now - live.attempt_from)})",
                        duration=max(0.0, now - live.attempt_from),
                    )
                )
            live.steps.append(TimelineStep("failed", now, f"gave up: {live.error_message}"))

    def _on_finished(self, sender: object, **kw: Any) -> None:
        now = self._now()
        with self._lock:
            request_id = int(kw["request_id"])
            live = self._live.pop(request_id, None)
            if self._by_thread.get(threading.get_ident()) == request_id:
                del self._by_thread[threading.get_ident()]
            if live is None:
                return
            live.outcome = str(kw.get("outcome", "")) or "success"
            status = kw.get("status")
            live.status = status if isinstance(status, int) else None
            live.attempts = int(kw.get("attempts") or live.attempt)
            if live.outcome in ("success", "slow"):
                self._settle_pause(live, None)
                live.steps.append(
                    TimelineStep(
                        "attempt",
                        live.attempt_from,
                        f"attempt {live.attempts}: {live.status if live.status else 'done'} "
                        f"({format_duration(now - live.attempt_from)})",
                        duration=max(0.0, now - live.attempt_from),
                    )
                )
            live.ended_at = now
            self._done.append(live)

    def _settle_pause(self, live: _Live, error: Any) -> None:
        """A pending rate_limited that no retry claimed was a wait at the gate."""
        pause = live.pending_pause
        if pause is None:
            return
        live.pending_pause = None
        at, wait = pause
        if wait < _SHORTEST_WAIT_SHOWN:
            return
        why = self._last_pause_reason(live, error)
        live.steps.append(
            TimelineStep(
                "gate_wait",
                at,
                f"gate wait {format_duration(wait)} (rate_limited: {why})",
                cause=f"rate_limited: {why}",
                duration=wait,
            )
        )
        live.attempt_from = max(live.attempt_from, at + wait)

    def _last_pause_reason(self, live: _Live, error: Any) -> str:
        # Caller holds the lock. The origin's last error is the server's answer that
        # set the pause (a 429 or a 503 with Retry-After), possibly another request's.
        last_error = error if error is not None else self._origin_errors.get(live.origin)
        return _server_pause(last_error) or "the origin is paused"


def _freeze(live: _Live) -> RequestTimeline:
    ranked = [
        (step.at, 0.5 if index in live.early else _ORDER.get(step.kind, 9), index, step)
        for index, step in enumerate(live.steps)
    ]
    if live.pending_pause is not None and live.pending_pause[1] >= _SHORTEST_WAIT_SHOWN:
        at, wait = live.pending_pause
        pending = TimelineStep(
            "gate_wait",
            at,
            f"gate wait {format_duration(wait)} (rate_limited)",
            cause="rate_limited",
            duration=wait,
        )
        ranked.append((at, 0, len(ranked), pending))
    # By start time: an attempt's step is written when its verdict is known, after
    # the state change the verdict caused. At equal times (a clock that did not
    # move), an attempt comes before what it caused.
    ranked.sort(key=lambda item: item[:3])
    steps = [step for *_key, step in ranked]
    return RequestTimeline(
        request_id=live.request_id,
        method=live.method,
        url=live.url,
        operation=live.operation,
        started_at=live.started_at,
        ended_at=live.ended_at,
        outcome=live.outcome,
        status=live.status,
        attempts=live.attempts or live.attempt,
        steps=tuple(steps),
        error_message=live.error_message,
    )


def _monotonic() -> float:
    return time.monotonic()


def _never_raise(receiver: Callable[..., None]) -> Callable[..., None]:
    """A receiver runs inside the worker's ``send()``: recording must never fail a request."""

    def guarded(sender: object, **kwargs: Any) -> None:
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception("the timeline could not take a signal")

    return guarded
