"""Retries: the backoff policy, the retry budget, one retry engine and the plan's decorator.

Four pieces, each usable alone:

:class:`RetryConfig`
    the policy as a validated value object, with the pure delay functions
    :meth:`~RetryConfig.delay` (exponential backoff with jitter) and
    :meth:`~RetryConfig.delay_for` (the larger of that and ``Retry-After``).
:func:`may_resend`
    the idempotency rule: may this request be sent again?
:class:`RetryBudget`
    a token bucket shared by many calls (botocore's standard-mode retry quota)
    so that, under sustained failure, retries stop multiplying the load.
:class:`RetryEngine`
    the loop that runs attempts, asks all of the above whether to retry, tells
    an ``on_retry`` hook (a frozen :class:`RetryEvent`), and waits through the
    injected clock; the wait ends at once on cancellation and early on "retry
    now" (:class:`RetryNow`). Both :func:`exponential_backoff` and
    :class:`~connmgr.ConnectionManager` run on it.

Decisions are pure and apart from the waiting: nothing in :class:`RetryConfig`
sleeps, and the engine never calls ``time.sleep``.

Example::

    config = RetryConfig(max_retries=3, base_delay=0.5)
    rng = random.Random(0)
    [round(config.delay(n, rng), 2) for n in (1, 2, 3)]   # [0.71, 1.19, 2.11]

    @exponential_backoff
    def fetch(url: str) -> bytes:
        r = requests.get(url, timeout=5)
        r.raise_for_status()
        return r.content

    fetch("https://example.com/data")   # a 503 is tried 4 times, a 404 once
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

import requests
import urllib3.exceptions

from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, interruptible_sleep
from connmgr.errors import (
    DEFAULT_RETRY_STATUS_CODES,
    NetworkError,
    RequestCancelledError,
    RequestTimeoutError,
    classify_error,
    is_retryable,
)

__all__ = [
    "DEFAULT_CATCH",
    "DEFAULT_RETRY_STATUS_CODES",
    "IDEMPOTENT_METHODS",
    "CallStats",
    "RetryBudget",
    "RetryCallback",
    "RetryConfig",
    "RetryEngine",
    "RetryEvent",
    "RetryNow",
    "RetryTracker",
    "StopReason",
    "SupportsRemaining",
    "exponential_backoff",
    "may_resend",
    "resend_check",
]

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Methods that RFC 9110 §9.2.2 defines as idempotent: sending them twice has
#: the effect of sending them once, so a retry is always safe.
IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
)

#: What the engine catches and classifies by default. Anything else (a
#: ``TypeError`` in the caller's code, ``KeyboardInterrupt``) passes through
#: untouched: a bug must never look like a network failure.
DEFAULT_CATCH: Final[tuple[type[BaseException], ...]] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)


# --------------------------------------------------------------------------- policy


def _number(name: str, value: object, *, minimum: float) -> float:
    """A finite number >= ``minimum``; bools and strings rejected."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"RetryConfig.{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(
            f"RetryConfig.{name} must be a finite number >= {minimum:g}, got {value!r}"
        )
    return float(value)


def _status_codes(value: object) -> frozenset[int]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(
            f"RetryConfig.retry_status_codes must be a collection of status codes, got {value!r}"
        )
    codes = tuple(value)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(
                "RetryConfig.retry_status_codes must hold integer HTTP statuses 100-599, "
                f"got {code!r} in {value!r}"
            )
    return frozenset(codes)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How many times to retry and how long to wait in between (seconds).

    Attributes:
        max_retries: retries after the first attempt (``0`` = never retry).
        base_delay: the wait before the first retry, before jitter.
        exponential_base: the factor applied per further retry (``>= 1``).
        jitter_range: a uniform random ``0..jitter_range`` added to every wait,
            so that clients that failed together do not retry together.
        max_delay: the cap on the exponential part of the wait.
        retry_status_codes: statuses worth retrying (any iterable of ints
            100-599; stored as a ``frozenset``).
        max_retry_after: the longest server-requested wait (``Retry-After``)
            that is honoured; longer requests are cut to this.

    The defaults are the original plan's: 3 retries, 0.5 s, ×2, jitter
    0-0.25 s, at most 10 s, on 429/500/502/503/504. Every field is validated:
    a :class:`ValueError` names the field and the value; booleans are rejected
    where a number is meant. Changed copies come from
    :func:`dataclasses.replace`.

    **Jitter is added after the cap**: a wait is at most
    ``max_delay + jitter_range``. Clamping after the jitter would put every
    client that reached the cap back on exactly ``max_delay`` in lock step,
    which is the thundering herd that jitter exists to break up.

    Example::

        config = RetryConfig(max_retries=5, base_delay=0.2, jitter_range=0.0)
        [config.delay(n, random.Random()) for n in range(1, 6)]   # [0.2, 0.4, 0.8, 1.6, 3.2]
        config.max_attempts                                      # 6
        dataclasses.replace(config, retry_status_codes={503})
        RetryConfig(max_retries=-1)    # ValueError: RetryConfig.max_retries must be ...
    """

    max_retries: int = 3
    base_delay: float = 0.5
    exponential_base: float = 2.0
    jitter_range: float = 0.25
    max_delay: float = 10.0
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"RetryConfig.max_retries must be an integer >= 0, got {retries!r}")
        # Stored as floats (and a frozenset) so equal configs compare and hash the same.
        object.__setattr__(self, "base_delay", _number("base_delay", self.base_delay, minimum=0))
        object.__setattr__(
            self,
            "exponential_base",
            _number("exponential_base", self.exponential_base, minimum=1),
        )
        object.__setattr__(
            self, "jitter_range", _number("jitter_range", self.jitter_range, minimum=0)
        )
        object.__setattr__(self, "max_delay", _number("max_delay", self.max_delay, minimum=0))
        object.__setattr__(self, "retry_status_codes", _status_codes(self.retry_status_codes))
        object.__setattr__(
            self, "max_retry_after", _number("max_retry_after", self.max_retry_after, minimum=0)
        )

    @property
    def max_attempts(self) -> int:
        """Attempts in all: the first one plus ``max_retries``."""
        return self.max_retries + 1

    @property
    def retry_exceptions(self) -> tuple[type[requests.RequestException], ...]:
        """The plan's attribute: the requests exceptions considered for a retry.

        connmgr narrows them further: an ``HTTPError`` is retried only for a
        status in :attr:`retry_status_codes`, and an ``SSLError`` (a
        ``ConnectionError`` subclass) never.
        """
        return (requests.ConnectionError, requests.Timeout, requests.HTTPError)

    def backoff(self, attempt: int) -> float:
        """The capped exponential part of the wait before retry ``attempt``, no jitter.

        ``attempt`` is 1 for the first retry: ``min(base_delay *
        exponential_base ** (attempt - 1), max_delay)``.

        Example::

            RetryConfig().backoff(1), RetryConfig().backoff(3), RetryConfig().backoff(99)
            # (0.5, 2.0, 10.0)
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"attempt must be an integer >= 1 (1 = first retry), got {attempt!r}")
        try:
            raw = self.base_delay * self.exponential_base ** (attempt - 1)
        except OverflowError:  # float ** int raises instead of returning inf
            raw = math.inf
        return min(raw, self.max_delay)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry ``attempt`` (1 = the first retry), jitter included.

        ``min(base_delay * exponential_base ** (attempt - 1), max_delay) +
        rng.uniform(0, jitter_range)``. Pure: the only state it touches is
        ``rng``'s, so a seeded ``random.Random`` gives a repeatable sequence.

        Example::

            config = RetryConfig(jitter_range=0.0)
            [config.delay(n, random.Random()) for n in (1, 2, 3, 4, 10)]
            # [0.5, 1.0, 2.0, 4.0, 10.0]
        """
        wait = self.backoff(attempt)
        if self.jitter_range:
            wait += rng.uniform(0.0, self.jitter_range)
        return wait

    def delay_for(
        self, attempt: int, rng: random.Random, retry_after: float | None = None
    ) -> float:
        """The wait before retry ``attempt`` when the server may have said how long.

        ``max(delay(attempt, rng), min(retry_after, max_retry_after))``: a
        ``Retry-After`` longer than the backoff wins, but never beyond
        :attr:`max_retry_after`; a shorter one does not shorten the backoff.
        ``None``, NaN and negative values are ignored (``0``).

        Example::

            config = RetryConfig(jitter_range=0.0)
            config.delay_for(1, rng, retry_after=3.0)      # 3.0 (server wins)
            config.delay_for(4, rng, retry_after=1.0)      # 4.0 (backoff wins)
            config.delay_for(1, rng, retry_after=3600.0)   # 300.0 (capped)
        """
        wait = self.delay(attempt, rng)
        if retry_after is not None and retry_after > 0:  # NaN compares False
            wait = max(wait, min(float(retry_after), self.max_retry_after))
        return wait


# --------------------------------------------------------------------------- idempotency


def _has_idempotency_key(headers: Mapping[str, Any]) -> bool:
    if isinstance(headers, requests.structures.CaseInsensitiveDict):
        value = headers.get("Idempotency-Key")
    else:
        value = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return isinstance(value, str) and value.strip() != ""


def may_resend(method: str, headers: Mapping[str, Any] | None, *, sent: bool) -> bool:
    """Whether a failed request may be sent again without risking a double effect.

    True when any of these holds:

    * the method is idempotent (:data:`IDEMPOTENT_METHODS`: GET, HEAD,
      OPTIONS, PUT, DELETE, TRACE; case-insensitive);
    * the request carries a non-empty ``Idempotency-Key`` header (any case),
      so the server can recognise the repeat;
    * ``sent`` is False: the failure proves the request never left this
      machine (connection refused, DNS failure, connect timeout).

    A POST or PATCH that may have reached the server is sent once: a read
    timeout after the server received it could otherwise charge a card twice.
    Pure.

    Example::

        may_resend("GET", None, sent=True)                           # True
        may_resend("POST", {}, sent=True)                            # False
        may_resend("POST", {"idempotency-key": "8e0f..."}, sent=True)  # True
        may_resend("POST", {}, sent=False)                           # True (never left)
    """
    if not sent or method.upper() in IDEMPOTENT_METHODS:
        return True
    return headers is not None and _has_idempotency_key(headers)


def resend_check(method: str, headers: Mapping[str, Any] | None) -> Callable[[NetworkError], bool]:
    """A ``may_retry`` for :meth:`RetryEngine.call`: :func:`may_resend` for this request.

    ``sent`` comes from the classified error's ``request_sent``, which
    :func:`connmgr.errors.classify_error` sets to ``False`` only when the
    failure proves the request never left (refused, DNS, connect timeout).

    Example::

        engine.call(attempt, may_retry=resend_check("POST", {"Idempotency-Key": key}))
    """
    method = method.upper()

    def check(error: NetworkError) -> bool:
        return may_resend(method, headers, sent=error.request_sent)

    return check


# --------------------------------------------------------------------------- budget


def _count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"RetryBudget {name} must be an integer >= {minimum}, got {value!r}")
    return value


class RetryBudget:
    """A shared retry quota: a token bucket that retries drain and successes refill.

    Modelled on botocore's standard retry mode (``retries/quota.py`` and
    ``RetryQuotaChecker``): ``capacity`` tokens to start with; a retry costs
    ``retry_cost`` tokens, or ``timeout_retry_cost`` after a timeout (a
    timeout holds a connection and a server slot for long, so retrying it is
    dearer); a success refunds ``success_refund`` when the call was not
    retried, or the cost of its last retry when it was. When a retry cannot
    be paid for, it is not made and the failure is raised at once.

    With the defaults, 100 retries in a row with no success exhaust it: during
    a full outage the retries stop, so the load on the server stops growing
    to 4x, and they resume as successes come back.

    Thread-safe: one lock, O(1) per operation. A refund at full capacity
    returns without taking the lock (the hot path of a healthy service).

    Example::

        budget = RetryBudget(capacity=10)
        budget.try_spend(after_timeout=False), budget.available   # (True, 5)
        budget.try_spend(after_timeout=True), budget.available    # (False, 5)
        budget.refund_success(), budget.available                 # (None, 6)
    """

    __slots__ = (
        "_available",
        "_capacity",
        "_lock",
        "retry_cost",
        "success_refund",
        "timeout_retry_cost",
    )

    def __init__(
        self,
        capacity: int = 500,
        *,
        retry_cost: int = 5,
        timeout_retry_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        self._capacity = _count("capacity", capacity, minimum=0)
        self.retry_cost = _count("retry_cost", retry_cost, minimum=0)
        self.timeout_retry_cost = _count("timeout_retry_cost", timeout_retry_cost, minimum=0)
        self.success_refund = _count("success_refund", success_refund, minimum=0)
        self._available = self._capacity
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """The most tokens the budget can hold."""
        return self._capacity

    @property
    def available(self) -> int:
        """Tokens left now."""
        return self._available

    def cost(self, after_timeout: bool) -> int:
        """One retry's price: :attr:`timeout_retry_cost` after a timeout, or :attr:`retry_cost`."""
        return self.timeout_retry_cost if after_timeout else self.retry_cost

    def try_spend(self, after_timeout: bool = False) -> bool:
        """Take the cost of one retry; ``False`` (and nothing taken) if it is not there."""
        amount = self.timeout_retry_cost if after_timeout else self.retry_cost
        with self._lock:
            if amount > self._available:
                return False
            self._available -= amount
            return True

    def refund_success(self, last_cost: int = 0) -> None:
        """Put tokens back after a successful call, never beyond :attr:`capacity`.

        ``last_cost`` is what the call's last retry cost (``0`` if it was not
        retried): that much comes back, as in botocore; a call that succeeded
        at once refunds :attr:`success_refund`.
        """
        if self._available >= self._capacity:
            return
        amount = last_cost if last_cost > 0 else self.success_refund
        with self._lock:
            self._available = min(self._capacity, self._available + amount)

    def __repr__(self) -> str:
        return f"RetryBudget(available={self._available}, capacity={self._capacity})"


# --------------------------------------------------------------------------- events and stats


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryEvent:
    """What an ``on_retry`` hook learns when a retry has been scheduled, before the wait.

    Attributes:
        attempt: the attempt about to be made (2 for the first retry).
        max_attempts: attempts in all (``max_retries + 1``).
        delay: seconds the engine will wait before it.
        error: the classified :class:`~connmgr.NetworkError` of the failed attempt.
        cause: the exception the attempt actually raised (``error`` itself
            when it raised a ``NetworkError``).
        at: when the retry was scheduled, on the engine's clock (monotonic).
        elapsed: seconds since the call began, on the engine's clock.
        waited_so_far: seconds already spent waiting between earlier attempts.

    Example::

        def on_retry(event: RetryEvent) -> None:
            status_bar.show(f"{event.error.user_message} Retrying in {event.delay:.0f} s "
                            f"({event.retry_num}/{event.max_attempts - 1})")
    """

    attempt: int
    max_attempts: int
    delay: float
    error: NetworkError
    cause: BaseException
    at: float
    elapsed: float
    waited_so_far: float

    @property
    def retry_num(self) -> int:
        """Which retry this is: 1 for the first."""
        return self.attempt - 1

    @property
    def resume_at(self) -> float:
        """When the retry will be sent, on the engine's clock (unless cut short)."""
        return self.at + self.delay


class StopReason(Enum):
    """Why a call stopped retrying (:attr:`CallStats.stop_reason`)."""

    SUCCESS = "success"
    NOT_RETRYABLE = "not_retryable"  # fatal, or not a transient outcome
    EXHAUSTED = "exhausted"  # no attempts left
    UNSAFE = "unsafe"  # may_retry refused (e.g. a POST that may have arrived)
    BUDGET = "budget"  # the shared retry budget is empty
    DEADLINE = "deadline"  # the wait would not fit in the remaining time
    CANCELLED = "cancelled"


class CallStats:
    """Per-call counters that :meth:`RetryEngine.call` fills in when given one.

    Attributes:
        attempts: attempts made (1 = no retry).
        retries: retries scheduled (attempts - 1, unless cancelled mid-wait).
        total_delay: the sum of the scheduled waits, seconds.
        waited: the time actually spent waiting, on the engine's clock
            ("retry now" and cancellation make it shorter than ``total_delay``).
        stop_reason: why the loop ended, a :class:`StopReason`.

    Example::

        stats = CallStats()
        engine.call(attempt, stats=stats)
        stats.attempts, stats.total_delay, stats.stop_reason
    """

    __slots__ = ("attempts", "retries", "stop_reason", "total_delay", "waited")

    def __init__(self) -> None:
        self.attempts = 0
        self.retries = 0
        self.total_delay = 0.0
        self.waited = 0.0
        self.stop_reason: StopReason | None = None

    def __repr__(self) -> str:
        reason = self.stop_reason.value if self.stop_reason else None
        return (
            f"CallStats(attempts={self.attempts}, retries={self.retries}, "
            f"total_delay={self.total_delay:.3f}, waited={self.waited:.3f}, stop_reason={reason})"
        )


# --------------------------------------------------------------------------- retry now


class RetryNow:
    """Cuts current retry waits short: the banner's "Retry now".

    Every wait registers a fresh ``threading.Event`` here for its duration
    (from the moment its ``on_retry`` hook is called until the wait ends) and
    unregisters it afterwards; :meth:`retry_now` sets all that are registered.
    A wait that begins later is not affected, and nothing stays set: pressing
    "Retry now" twice, or while no request is waiting, is harmless.

    Cancellation and "retry now" differ in what follows the wake: a cancelled
    request raises :class:`~connmgr.RequestCancelledError`; a woken one goes
    straight on to its next attempt (its retry budget was already paid).

    Example::

        hub = RetryNow()
        engine.call(attempt, wake=hub)     # in worker threads
        hub.retry_now()                    # in the GUI thread: returns how many waits it cut
    """

    __slots__ = ("_lock", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()

    @property
    def waiting(self) -> int:
        """How many waits are registered now."""
        return len(self._waiting)

    def retry_now(self) -> int:
        """Wake every registered wait; return how many were woken."""
        with self._lock:
            events = tuple(self._waiting)
        for event in events:
            event.set()
        return len(events)

    @contextmanager
    def waiter(self) -> Iterator[threading.Event]:
        """Register a fresh event for one wait; unregister it on exit."""
        event = threading.Event()
        with self._lock:
            self._waiting.add(event)
        try:
            yield event
        finally:
            with self._lock:
                self._waiting.discard(event)

    def __repr__(self) -> str:
        return f"RetryNow(waiting={self.waiting})"


# --------------------------------------------------------------------------- engine


@runtime_checkable
class SupportsRemaining(Protocol):
    """Anything with ``remaining() -> float | None`` (e.g. :class:`connmgr.timeouts.Deadline`)."""

    def remaining(self) -> float | None:
        """Seconds left, or ``None`` for no limit."""
        ...


class RetryEngine:
    """Runs attempts and decides, after each failure, whether and when to try again.

    One engine serves many calls from many threads: it holds only the
    policy, the injected clock and ``rng``, the optional shared
    :class:`RetryBudget` and a :class:`RetryNow` hub (:meth:`retry_now`).

    Example::

        engine = RetryEngine(RetryConfig(), budget=RetryBudget())
        response = engine.call(
            lambda n: session.get(url, timeout=(5, 30)),   # n = attempt number, from 1
            may_retry=lambda err: may_resend("GET", None, sent=True),
            deadline=Deadline(60.0),
            cancel=token,
            on_retry=lambda event: print(f"retry {event.retry_num} in {event.delay:.1f} s"),
        )
    """

    __slots__ = ("_waiters", "budget", "clock", "config", "rng")

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.config = config if config is not None else RetryConfig()
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self.rng = rng if rng is not None else random.Random()
        self.budget = budget
        self._waiters = RetryNow()

    def retry_now(self) -> int:
        """Cut short the waits of calls made without their own ``wake``; return how many."""
        return self._waiters.retry_now()

    def call(
        self,
        attempt_fn: Callable[[int], _T],
        *,
        classify: Callable[[BaseException], NetworkError] | None = None,
        retryable: Callable[[NetworkError], bool] | None = None,
        may_retry: Callable[[NetworkError], bool] | None = None,
        deadline: SupportsRemaining | None = None,
        cancel: CancelToken | None = None,
        wake: RetryNow | threading.Event | None = None,
        on_retry: Callable[[RetryEvent], object] | None = None,
        catch: tuple[type[BaseException], ...] = DEFAULT_CATCH,
        raise_original: bool = False,
        stats: CallStats | None = None,
        first_failure: BaseException | None = None,
    ) -> _T:
        """Call ``attempt_fn(attempt_number)`` until it succeeds or retrying must stop.

        After a failure (an exception matching ``catch``) the engine retries
        only when all of these hold, checked in this order:

        1. ``retryable(error)`` (default: :func:`connmgr.errors.is_retryable`
           with the config's status list): a transient or throttled outcome;
        2. attempts remain (``config.max_attempts``);
        3. ``may_retry(error)`` allows it (the caller's idempotency rule,
           e.g. :func:`may_resend`);
        4. the wait, ``config.delay_for(retry, rng, error.retry_after)``,
           ends before ``deadline.remaining()`` runs out;
        5. the budget, if any, pays for it (checked last, so a refused retry
           costs nothing).

        Then ``on_retry(RetryEvent)`` is called and the engine waits on its
        clock. Cancelling ``cancel`` ends the wait (and the call) at once
        with :class:`~connmgr.RequestCancelledError`; ``wake`` cuts it short
        and the next attempt goes at once. ``wake`` is a :class:`RetryNow`
        hub (the default is this engine's own, see :meth:`retry_now`) or a
        ``threading.Event`` for this call alone, which the engine clears
        when it schedules each wait and after each wait, so a "retry now"
        applies to one wait and never stays set.

        When retrying stops, the last classified error is raised (with
        ``.attempts`` set) ``from`` the exception the attempt raised; with
        ``raise_original=True`` that exception itself is re-raised instead.
        Exceptions not in ``catch`` propagate untouched, at once. A success
        refunds the budget. ``stats``, when given, is filled in.

        ``first_failure`` is for a caller that made attempt 1 itself (a success
        then costs it no engine call at all): the exception that attempt raised,
        handled as if ``attempt_fn(1)`` had raised it; ``attempt_fn`` is called
        from attempt 2 on.
        """
        config = self.config
        clock = self.clock
        budget = self.budget
        if first_failure is None and cancel is not None and cancel.cancelled:
            raise RequestCancelledError(cancel.reason or "cancelled", attempts=0)
        started = clock.now()
        attempt = 1
        last_cost = 0
        waited = 0.0
        while True:
            try:
                if first_failure is not None:
                    failure, first_failure = first_failure, None
                    raise failure
                result = attempt_fn(attempt)
            except catch as exc:
                error = (classify or classify_error)(exc)
                error.attempts = attempt
                reason, delay = self._decide(error, attempt, retryable, may_retry, deadline)
                if reason is None and budget is not None:
                    after_timeout = isinstance(error, RequestTimeoutError)
                    if budget.try_spend(after_timeout):
                        last_cost = budget.cost(after_timeout)
                    else:
                        reason = StopReason.BUDGET
                if reason is not None:
                    logger.debug(
                        "not retrying after attempt %d/%d: %s (%s)",
                        attempt,
                        config.max_attempts,
                        reason.value,
                        type(error).__name__,
                    )
                    if stats is not None:
                        stats.attempts, stats.stop_reason = attempt, reason
                    if raise_original or error is exc:
                        raise
                    raise error from exc
                if stats is not None:
                    stats.retries += 1
                    stats.total_delay += delay
                now = clock.now()
                event = RetryEvent(
                    attempt=attempt + 1,
                    max_attempts=config.max_attempts,
                    delay=delay,
                    error=error,
                    cause=exc,
                    at=now,
                    elapsed=now - started,
                    waited_so_far=waited,
                )
                waited += self._wait(event, cancel, wake, on_retry)
                if stats is not None:
                    stats.waited = waited
                if cancel is not None and cancel.cancelled:
                    if stats is not None:
                        stats.attempts, stats.stop_reason = attempt, StopReason.CANCELLED
                    raise RequestCancelledError(
                        cancel.reason or "cancelled", url=error.url, attempts=attempt
                    ) from error
                attempt += 1
            else:
                if budget is not None:
                    budget.refund_success(last_cost)
                if stats is not None:
                    stats.attempts, stats.stop_reason = attempt, StopReason.SUCCESS
                return result

    def _decide(
        self,
        error: NetworkError,
        attempt: int,
        retryable: Callable[[NetworkError], bool] | None,
        may_retry: Callable[[NetworkError], bool] | None,
        deadline: SupportsRemaining | None,
    ) -> tuple[StopReason | None, float]:
        """The pure part of the decision: ``(None, delay)`` to retry, else ``(reason, 0)``."""
        config = self.config
        if isinstance(error, RequestCancelledError):
            return StopReason.CANCELLED, 0.0
        ok = (
            retryable(error)
            if retryable is not None
            else is_retryable(error, config.retry_status_codes)
        )
        if not ok:
            return StopReason.NOT_RETRYABLE, 0.0
        if attempt >= config.max_attempts:
            return StopReason.EXHAUSTED, 0.0
        if may_retry is not None and not may_retry(error):
            return StopReason.UNSAFE, 0.0
        delay = config.delay_for(attempt, self.rng, error.retry_after)
        if deadline is not None:
            remaining = deadline.remaining()
            if remaining is not None and delay >= remaining:
                return StopReason.DEADLINE, 0.0
        return None, delay

    def _wait(
        self,
        event: RetryEvent,
        cancel: CancelToken | None,
        wake: RetryNow | threading.Event | None,
        on_retry: Callable[[RetryEvent], object] | None,
    ) -> float:
        """Tell ``on_retry``, then wait ``event.delay``; return the time actually waited."""
        hub = self._waiters if wake is None else wake
        if isinstance(hub, threading.Event):
            hub.clear()  # a press before this retry was scheduled belongs to no wait
            waiter: AbstractContextManager[threading.Event] = _given(hub)
        else:
            # Registered before on_retry runs: a "retry now" pressed in answer to the
            # retry_scheduled signal (sent from on_retry) must reach this wait.
            waiter = hub.waiter()
        with waiter as wake_event:
            if on_retry is not None:
                on_retry(event)
            if event.delay > 0 and not (cancel is not None and cancel.cancelled):
                interruptible_sleep(self.clock, event.delay, cancel=cancel, wake=wake_event)
            if isinstance(hub, threading.Event):
                hub.clear()
        return self.clock.now() - event.at


@contextmanager
def _given(event: threading.Event) -> Iterator[threading.Event]:
    yield event


# --------------------------------------------------------------------------- the plan's API


@runtime_checkable
class RetryCallback(Protocol):
    """The plan's callback: told about every retry, e.g. to update a progress indicator.

    ``attempt`` is the attempt about to be made (2 for the first retry),
    ``max_attempts`` the attempts in all (4 with the defaults), ``delay`` the
    wait before it in seconds, ``error`` the classified
    :class:`~connmgr.NetworkError` (a ``requests.RequestException`` with a
    ``user_message``).
    """

    def on_retry(self, attempt: int, max_attempts: int, delay: float, error: Exception) -> None:
        """Called when a retry has been scheduled, before the wait."""
        ...


class RetryTracker:
    """Counts retries and their waits for UI feedback (the plan's class).

    ``attempts`` is the number of retries seen, ``total_delay`` the sum of
    their waits in seconds. Thread-safe: one tracker may follow several
    threads' calls. Give it to :func:`exponential_backoff` as ``tracker=``.

    Example::

        tracker = RetryTracker()

        @exponential_backoff(tracker=tracker)
        def fetch() -> requests.Response: ...

        fetch()
        tracker.attempts, tracker.total_delay     # (2, 1.63) after two retries
    """

    def __init__(self, callback: RetryCallback | None = None) -> None:
        self.callback = callback
        self.attempts = 0
        self.total_delay = 0.0
        self.last_error: Exception | None = None
        self._lock = threading.Lock()

    def on_retry(self, attempt: int, max_attempts: int, delay: float, error: Exception) -> None:
        """Record one retry and pass it on to the callback."""
        with self._lock:
            self.attempts += 1
            self.total_delay += delay
            self.last_error = error
        if self.callback is not None:
            self.callback.on_retry(attempt, max_attempts, delay, error)

    def record(self, event: RetryEvent) -> None:
        """Record a :class:`RetryEvent` (usable directly as an engine's ``on_retry``)."""
        self.on_retry(event.attempt, event.max_attempts, event.delay, event.error)

    def reset(self) -> None:
        """Forget every recorded retry."""
        with self._lock:
            self.attempts = 0
            self.total_delay = 0.0
            self.last_error = None

    def __repr__(self) -> str:
        return f"RetryTracker(attempts={self.attempts}, total_delay={self.total_delay:.3f})"


class _Decorator(Protocol):
    def __call__(self, func: Callable[_P, _T], /) -> Callable[_P, _T]: ...


@overload
def exponential_backoff(
    func: Callable[_P, _T],
    config: RetryConfig | None = None,
    *,
    tracker: RetryTracker | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    cancel: CancelToken | None = None,
    budget: RetryBudget | None = None,
    wake: RetryNow | None = None,
) -> Callable[_P, _T]: ...


@overload
def exponential_backoff(
    func: RetryConfig | None = None,
    config: RetryConfig | None = None,
    *,
    tracker: RetryTracker | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    cancel: CancelToken | None = None,
    budget: RetryBudget | None = None,
    wake: RetryNow | None = None,
) -> _Decorator: ...


def exponential_backoff(
    func: Callable[..., Any] | RetryConfig | None = None,
    config: RetryConfig | None = None,
    *,
    tracker: RetryTracker | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    cancel: CancelToken | None = None,
    budget: RetryBudget | None = None,
    wake: RetryNow | None = None,
) -> Any:
    """Retry a function on transient network failures with exponential backoff (the plan's API).

    Three spellings::

        @exponential_backoff
        def fetch(): ...

        @exponential_backoff(config=RetryConfig(max_retries=5), tracker=tracker)
        def fetch(): ...

        fetch = exponential_backoff(fetch, RetryConfig())     # the plan's direct call

    Only transient failures are retried: connection errors, timeouts, and an
    ``HTTPError`` whose ``response.status_code`` is in
    ``config.retry_status_codes`` (so ``r.raise_for_status()`` on a 503 is
    retried, on a 404 it is not). A TLS error, any other 4xx and anything
    that is not a network error (a ``ValueError`` in the function) are
    raised at once. The function is called again as it was, so wrap only
    calls that are safe to repeat (GET, or a request with an
    ``Idempotency-Key``).

    When retrying stops, the **original** exception the function raised is
    re-raised, so code that catches ``requests.HTTPError`` keeps working. A
    ``Retry-After`` on a 429/503 is honoured (capped at
    ``config.max_retry_after``). Each retry is logged at WARNING (the
    message is redacted) and reported to ``tracker``. Waits go through
    ``clock`` (default: the system clock, never ``time.sleep``); cancelling
    ``cancel`` ends a wait with :class:`~connmgr.RequestCancelledError`;
    ``wake`` (a :class:`RetryNow`) cuts waits short; ``budget`` (a
    :class:`RetryBudget`, default none) caps retries under sustained failure.
    """
    if isinstance(func, RetryConfig):  # @exponential_backoff(RetryConfig(...))
        func, config = None, func if config is None else config
    engine = RetryEngine(config, clock=clock, rng=rng, budget=budget)
    max_retries = engine.config.max_retries

    def decorate(fn: Callable[_P, _T]) -> Callable[_P, _T]:
        name = getattr(fn, "__qualname__", None) or repr(fn)

        def on_retry(event: RetryEvent) -> None:
            # str(error) is connmgr's redacted one-liner; str(event.cause) may hold a
            # URL with a token in its query string, so it is never logged.
            logger.warning(
                "Retry %d/%d for %s after %.2fs: %s: %s",
                event.retry_num,
                max_retries,
                name,
                event.delay,
                type(event.error).__name__,
                event.error,
            )
            if tracker is not None:
                tracker.record(event)

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return engine.call(
                lambda _attempt: fn(*args, **kwargs),
                cancel=cancel,
                wake=wake,
                on_retry=on_retry,
                raise_original=True,
            )

        return wrapper

    if func is None:
        return decorate
    return decorate(func)
