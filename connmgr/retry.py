"""Retries: the backoff policy, the idempotency rule, the retry budget and ``decide``.

Each piece is usable alone, and none of them waits:

:class:`RetryConfig`
    the policy as a validated value object, with the pure delay functions
    :meth:`~RetryConfig.delay` (exponential backoff with jitter) and
    :meth:`~RetryConfig.delay_for` (the larger of that and ``Retry-After``).
:func:`may_resend`
    the idempotency rule: may this request be sent again?
:class:`RetryBudget`
    a token bucket shared by many calls (botocore's standard-mode retry quota)
    so that, under sustained failure, retries stop multiplying the load.
:func:`decide`
    the pure decision after one attempt: given its
    :class:`~connmgr.errors.Verdict`, retry after ``delay`` seconds or stop,
    and why (a frozen :class:`Decision`). The caller owns the loop and the
    wait, as urllib3's ``Retry.increment`` leaves the loop to
    ``connectionpool.urlopen``: :class:`~connmgr.ConnectionManager` and the
    plan's :func:`~connmgr.compat.exponential_backoff` both loop on it.
:class:`RetryNow`
    the hub behind the banner's "Retry now": it cuts current waits short.

Example::

    config = RetryConfig(max_retries=3, base_delay=0.5)
    rng = random.Random(0)
    [round(config.delay(n, rng), 2) for n in (1, 2, 3)]   # [0.71, 1.19, 2.11]
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import requests
import urllib3.exceptions

from connmgr import forksafe
from connmgr.errors import (
    DEFAULT_RETRY_STATUS_CODES,
    NetworkError,
    RequestCancelledError,
    RequestTimeoutError,
    Verdict,
)
from connmgr.frozen import explain_frozen

__all__ = [
    "DEFAULT_CATCH",
    "DEFAULT_RETRY_STATUS_CODES",
    "IDEMPOTENT_METHODS",
    "Decision",
    "RetryBudget",
    "RetryConfig",
    "RetryEvent",
    "RetryNow",
    "StopReason",
    "decide",
    "may_resend",
]

#: Methods that RFC 9110 §9.2.2 defines as idempotent: sending them twice has
#: the effect of sending them once, so a retry is always safe.
IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
)

#: The exceptions that are network outcomes, judged rather than passed through.
#: Anything else (a ``TypeError`` in the caller's code, ``KeyboardInterrupt``)
#: passes through untouched: a bug must never look like a network failure.
DEFAULT_CATCH: Final[tuple[type[BaseException], ...]] = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)

#: The longest wait any policy may ask for: ``threading`` cannot wait longer
#: (``Condition.wait`` raises ``OverflowError`` above ``TIMEOUT_MAX``).
MAX_SECONDS: Final = float(threading.TIMEOUT_MAX)


# --------------------------------------------------------------------------- policy


def _number(name: str, value: object, *, minimum: float) -> float:
    """A finite number from ``minimum`` to :data:`MAX_SECONDS`; bools and strings rejected."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"RetryConfig.{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float, e.g. 10**400
        number = math.inf
    if not math.isfinite(number) or not minimum <= number <= MAX_SECONDS:
        raise ValueError(
            f"RetryConfig.{name} must be a finite number from {minimum:g} to "
            f"{MAX_SECONDS:g}, got {value!r}"
        )
    return number


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
        if code not in _RETRYABLE_CLIENT_ERRORS and not 500 <= code <= 599:
            # A 404 asked again gets the same 404; a 2xx/3xx is not a failure.
            raise ValueError(
                f"RetryConfig.retry_status_codes: {code} is never retried (only 408, 425, "
                f"429 and 500-599 can succeed when asked again), got {value!r}"
            )
    return frozenset(codes)


#: The client errors that say "try again": timeout, too early, too many requests.
_RETRYABLE_CLIENT_ERRORS: Final = frozenset({408, 425, 429})


_PLAN_RETRY_EXCEPTIONS: Final[tuple[type[BaseException], ...]] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.HTTPError,
)


def _max_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise ValueError(
            f"RetryConfig.max_retries must be an integer from 0 to 1000, got {value!r}"
        )
    return value


def _exception_types(value: object) -> tuple[type[BaseException], ...]:
    types = (value,) if isinstance(value, type) else value
    if not isinstance(types, tuple | list) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise ValueError(
            "RetryConfig.retry_exceptions must be an exception class or a tuple of them, "
            f"got {value!r}"
        )
    return tuple(types)


#: Each field's validator: it returns the stored value or raises ValueError naming the field.
_FIELD_CHECKS: Final[dict[str, Callable[[object], object]]] = {
    "max_retries": _max_retries,
    "base_delay": lambda v: _number("base_delay", v, minimum=0),
    "exponential_base": lambda v: _number("exponential_base", v, minimum=1),
    "jitter_range": lambda v: _number("jitter_range", v, minimum=0),
    "max_delay": lambda v: _number("max_delay", v, minimum=0),
    "retry_status_codes": _status_codes,
    "retry_exceptions": _exception_types,
    "max_retry_after": lambda v: _number("max_retry_after", v, minimum=0),
}


class _InstanceFields(type):
    """RetryConfig's metaclass: a field set on the class would break every instance.

    The plan's ``RetryConfig`` was a plain class, so ``RetryConfig.max_retries = 5``
    looks natural; on a slots dataclass it would replace the field's slot
    descriptor. It raises ``AttributeError`` saying to set the field on an instance.
    """

    def __setattr__(cls, name: str, value: object) -> None:
        if name in _FIELD_CHECKS:
            raise AttributeError(
                f"RetryConfig.{name} cannot be set on the class (it would change every "
                f"RetryConfig, the manager's too); set it on an instance: "
                f"config = RetryConfig({name}=...), or config.{name} = ..."
            )
        super().__setattr__(name, value)

    def __delattr__(cls, name: str) -> None:
        if name in _FIELD_CHECKS:
            raise AttributeError(f"RetryConfig.{name} is a field and cannot be deleted")
        super().__delattr__(name)


@dataclass(slots=True, kw_only=True)
class RetryConfig(metaclass=_InstanceFields):
    """How many times to retry and how long to wait in between (seconds).

    Attributes:
        max_retries: retries after the first attempt (``0`` = never retry).
        base_delay: the wait before the first retry, before jitter.
        exponential_base: the factor applied per further retry (``>= 1``).
        jitter_range: a uniform random ``0..jitter_range`` added to every wait,
            so that clients that failed together do not retry together.
        max_delay: the cap on the exponential part of the wait.
        retry_status_codes: statuses worth retrying (any iterable of 408, 425,
            429 and 500-599; stored as a ``frozenset``). Other statuses are
            refused: a 404 asked again is a 404 again.
        retry_exceptions: the exception types considered for a retry (default
            ``requests.ConnectionError``, ``requests.Timeout``,
            ``requests.HTTPError``). Within them connmgr's rules still hold: an
            ``HTTPError`` is retried only for a status in ``retry_status_codes``,
            a TLS failure never, and a request is never resent when that could
            repeat its effect. Widening it (``(Exception,)``) makes other
            exceptions of the wrapped function retryable too.
        max_retry_after: the longest server-requested wait (``Retry-After``)
            that is remembered. A longer one counts as *long*: the call stops at
            once with the server's error, its ``retry_after`` cut to this. In a
            :class:`~connmgr.ConnectionManager` the bound is the smaller of this
            and :attr:`MachinePolicy.max_retry_after <connmgr.MachinePolicy>`
            (both 300 s by default).

    The defaults: 3 retries, 0.5 s, ×2, jitter 0-0.25 s, at most 10 s, on
    429/500/502/503/504. Every field is validated: a :class:`ValueError`
    names the field and the value; booleans are rejected where a number is
    meant, and no wait may exceed what ``threading`` can wait (about 292
    years), so no arithmetic on a config can overflow.

    **Assignable, and snapshotted by its users.** Each field may be assigned
    (``config.max_retries = 5``), and is validated then, as in the
    constructor; on the class (``RetryConfig.max_retries = 5``) it is refused
    with an ``AttributeError``, since it would change every instance. A
    :class:`~connmgr.ConnectionManager` copies the config it is given, and
    :func:`~connmgr.compat.exponential_backoff` copies it at the start of each
    call, so an assignment never changes a request in flight; it applies to
    the decorator's next call, and to managers created after it.

    **Jitter is added after the cap**: a wait is at most
    ``max_delay + jitter_range``. Clamping after the jitter would put every
    client that reached the cap back on exactly ``max_delay`` in lock step,
    which is the thundering herd that jitter exists to break up.

    Example::

        config = RetryConfig(max_retries=5, base_delay=0.2, jitter_range=0.0)
        [config.delay(n, random.Random()) for n in range(1, 6)]   # [0.2, 0.4, 0.8, 1.6, 3.2]
        config.max_attempts                                      # 6
        config.retry_status_codes = {503}      # validated on assignment
        RetryConfig(max_retries=-1)    # ValueError: RetryConfig.max_retries must be ...
    """

    max_retries: int = 3
    base_delay: float = 0.5
    exponential_base: float = 2.0
    jitter_range: float = 0.25
    max_delay: float = 10.0
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES
    retry_exceptions: tuple[type[BaseException], ...] = _PLAN_RETRY_EXCEPTIONS
    max_retry_after: float = 300.0

    def __setattr__(self, name: str, value: object) -> None:
        check = _FIELD_CHECKS.get(name)
        if check is None:
            raise AttributeError(f"RetryConfig has no field {name!r}")
        object.__setattr__(self, name, check(value))

    @property
    def max_attempts(self) -> int:
        """Attempts in all: the first one plus ``max_retries``."""
        return self.max_retries + 1

    def copy(self) -> RetryConfig:
        """A snapshot: later assignments to either object do not reach the other."""
        return dataclasses.replace(self)

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
        "__weakref__",
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
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
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
        return self.try_take(self.cost(after_timeout))

    def try_take(self, amount: int) -> bool:
        """Take ``amount`` tokens (a :attr:`Decision.cost`); ``False`` if they are not there."""
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


@explain_frozen
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
    """Why a call stops instead of retrying (:attr:`Decision.reason`)."""

    SUCCESS = "success"
    NOT_RETRYABLE = "not_retryable"  # fatal, or not a transient outcome
    EXHAUSTED = "exhausted"  # no attempts left
    UNSAFE = "unsafe"  # resending could repeat an effect (a POST that may have arrived)
    BUDGET = "budget"  # the shared retry budget is empty
    DEADLINE = "deadline"  # the wait would not end before the deadline
    MAX_WAIT = "max_wait"  # the wait is longer than the caller's max_wait
    CANCELLED = "cancelled"


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

    __slots__ = ("__weakref__", "_lock", "_waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[threading.Event] = set()
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child the waiting threads are gone, and a lock they held stays held.
        self._lock = threading.Lock()
        self._waiting = set()

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


# --------------------------------------------------------------------------- decide


@explain_frozen
@dataclass(frozen=True, slots=True)
class Decision:
    """What follows one attempt: another one after ``delay`` seconds, or the end.

    Attributes:
        retry: whether to send again.
        delay: seconds to wait first (``0.0`` when stopping).
        reason: why the call stops (``None`` when it retries).
        cost: the :class:`RetryBudget` tokens the retry costs; the caller
            spends them (:meth:`RetryBudget.try_spend`) before waiting.
        backoff: the backoff part of ``delay`` (before a longer ``Retry-After``
            won), for a timeline that says why it waited.
    """

    retry: bool
    delay: float = 0.0
    reason: StopReason | None = None
    cost: int = 0
    backoff: float = 0.0


_SUCCESS: Final = Decision(False, reason=StopReason.SUCCESS)


def decide(
    verdict: Verdict,
    attempt: int,
    *,
    config: RetryConfig,
    rng: random.Random,
    remaining: float | None = None,
    max_wait: float = math.inf,
    budget: RetryBudget | None = None,
    method: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> Decision:
    """Retry or stop after attempt number ``attempt`` (1 = the first). Pure.

    It retries only when all of these hold, checked in this order:

    1. the attempt failed (``verdict.error``) with a retryable outcome
       (``verdict.retryable``: transient or throttled);
    2. attempts remain (``config.max_attempts``);
    3. resending is safe (:func:`may_resend` for ``method`` and ``headers``;
       ``method=None`` means the caller vouches for it, as the plan's
       decorator does);
    4. the wait, ``config.delay_for(attempt, rng, verdict.retry_after)``, fits
       the cap rule: it ends before the deadline (``remaining`` seconds, ``None``
       for none) and is at most ``max_wait``;
    5. the budget, if any, holds the retry's cost (read, not spent: the
       caller spends it, so a refused retry costs nothing).

    A server-requested pause (``Retry-After``) longer than ``config.max_retry_after``
    never fits: such a pause is *long*, and the call ends with the server's error.

    Example::

        verdict = judge(response_503)                         # from connmgr.errors
        d = decide(verdict, 1, config=RetryConfig(), rng=random.Random(0), remaining=60.0)
        d.retry, round(d.delay, 2)                            # (True, 0.71)
    """
    error = verdict.error
    if error is None:
        return _SUCCESS
    if isinstance(error, RequestCancelledError):
        return Decision(False, reason=StopReason.CANCELLED)
    if not verdict.retryable:
        return Decision(False, reason=StopReason.NOT_RETRYABLE)
    if attempt >= config.max_attempts:
        return Decision(False, reason=StopReason.EXHAUSTED)
    if method is not None and not may_resend(method, headers, sent=verdict.request_sent):
        return Decision(False, reason=StopReason.UNSAFE)
    retry_after = verdict.retry_after
    if retry_after is not None and retry_after > config.max_retry_after:
        return Decision(False, reason=StopReason.MAX_WAIT)
    # An attempt ended on purpose because its network is gone goes again at once, on the
    # new one: waiting out a backoff would only delay what is now likely to work.
    abandoned = getattr(error, "kind", None) == "network_changed"
    backoff = 0.0 if abandoned else config.delay(attempt, rng)
    delay = backoff if retry_after is None or retry_after <= backoff else retry_after
    if remaining is not None and delay >= remaining:
        return Decision(False, reason=StopReason.DEADLINE)
    if delay > max_wait:
        return Decision(False, reason=StopReason.MAX_WAIT)
    cost = 0
    if budget is not None:
        cost = budget.cost(isinstance(error, RequestTimeoutError))
        if cost > budget.available:
            return Decision(False, reason=StopReason.BUDGET)
    return Decision(True, delay, cost=cost, backoff=backoff)
