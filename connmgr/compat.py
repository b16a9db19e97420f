"""The names of the original networking plan, with its signatures and defaults.

Code written against that plan switches to connmgr by changing its imports::

    from connmgr.compat import exponential_backoff, NetworkState, RetryConfig

Every name here is also importable from :mod:`connmgr` itself. The product's own
API (:class:`~connmgr.ConnectionManager` and its policies) is stricter where the
plan was loose; docs/migrating.md lists each name, what is the same, and what
is stricter and why.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

import requests

from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, interruptible_sleep
from connmgr.errors import (
    ErrorMessageFormatter,
    NetworkError,
    RateLimitError,
    RequestCancelledError,
    Verdict,
    classify_error,
    judge,
)
from connmgr.network import ConnectProbe, NetworkState
from connmgr.ratelimit import RateLimiter, RateLimitParser
from connmgr.retry import (
    DEFAULT_CATCH,
    RetryBudget,
    RetryConfig,
    RetryEvent,
    RetryNow,
    decide,
)
from connmgr.timeouts import NetworkConfig, TimeoutConfig
from connmgr.transport import TimeoutHTTPAdapter, create_session

__all__ = [
    "ConnectProbe",
    "ErrorMessageFormatter",
    "NetworkConfig",
    "NetworkError",
    "NetworkState",
    "RateLimitError",
    "RateLimitParser",
    "RateLimiter",
    "RetryCallback",
    "RetryConfig",
    "RetryTracker",
    "TimeoutConfig",
    "TimeoutHTTPAdapter",
    "classify_error",
    "create_session",
    "exponential_backoff",
]


def _have_qt() -> bool:
    try:
        return importlib.util.find_spec("PySide6") is not None
    except (ImportError, ValueError):  # ValueError: PySide6 set to None in sys.modules
        return False


if _have_qt():
    # So that `from connmgr.compat import *` brings the plan's Qt indicator where Qt
    # is installed, and still works where it is not.
    __all__ += ["NetworkStatusIndicator"]  # noqa: F822 (loaded by __getattr__)

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


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
    tracker: RetryTracker | RetryCallback | None = None,
    *,
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
    tracker: RetryTracker | RetryCallback | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    cancel: CancelToken | None = None,
    budget: RetryBudget | None = None,
    wake: RetryNow | None = None,
) -> _Decorator: ...


def exponential_backoff(
    func: Callable[..., Any] | RetryConfig | None = None,
    config: RetryConfig | None = None,
    tracker: RetryTracker | RetryCallback | None = None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    cancel: CancelToken | None = None,
    budget: RetryBudget | None = None,
    wake: RetryNow | None = None,
) -> Any:
    """Retry a function on transient network failures with exponential backoff.

    Three spellings::

        @exponential_backoff
        def fetch(): ...

        @exponential_backoff(config=RetryConfig(max_retries=5), tracker=tracker)
        def fetch(): ...

        fetch = exponential_backoff(fetch, RetryConfig())     # a direct call

    What is weighed for a retry: the types in ``config.retry_exceptions``
    (default ``requests.ConnectionError``, ``requests.Timeout``,
    ``requests.HTTPError``) and any ``HTTPError``. Among them, network failures
    follow connmgr's rules: an ``HTTPError`` is retried only when its
    ``response.status_code`` is in ``config.retry_status_codes`` (so
    ``r.raise_for_status()`` on a 503 is retried, on a 404 it is not), a TLS
    error never. Any other type listed in ``retry_exceptions`` (say
    ``(Exception,)``) is retried. Anything else (a ``ValueError`` in the
    function, with the default config) is raised at once, and
    ``KeyboardInterrupt``/``SystemExit`` always are. The function is called
    again as it was; when the exception carries its request (``requests``'
    exceptions do), a POST or PATCH that may have reached the server is not
    sent twice, unless it has an ``Idempotency-Key`` header. Wrap only calls
    that are safe to repeat.

    Each failure is judged (:func:`connmgr.errors.judge`) and the same pure
    :func:`connmgr.retry.decide` as the manager's decides; this wrapper owns
    the loop and the wait. When retrying stops, the **original** exception
    the function raised is re-raised, so code that catches
    ``requests.HTTPError`` keeps working. A ``Retry-After`` on a 429/503 is
    honoured up to ``config.max_retry_after``; a longer one stops at once.
    Each retry is logged at WARNING (the message is redacted) and reported to
    ``tracker`` before the wait (a :class:`RetryTracker`, or any object with the
    plan's ``on_retry(attempt, max_attempts, delay, error)``; it may also be
    given third, positionally). Waits go through ``clock`` (default: the
    system clock; never ``time.sleep``, so a test gives ``clock=FakeClock()``
    rather than patching ``time.sleep``) and are interruptible: cancelling
    ``cancel`` ends a wait with
    :class:`~connmgr.RequestCancelledError`; ``wake`` (a :class:`RetryNow`)
    cuts waits short; ``budget`` (a :class:`RetryBudget`, default none) caps
    retries under sustained failure.
    """
    if isinstance(func, RetryConfig):  # @exponential_backoff(RetryConfig(...))
        func, config = None, func if config is None else config
    if config is not None and not isinstance(config, RetryConfig):
        raise TypeError(f"config must be a RetryConfig or None, got {config!r}")
    if func is not None and not callable(func):
        raise TypeError(f"func must be a callable (the function to retry), got {func!r}")
    if tracker is not None and not callable(getattr(tracker, "on_retry", None)):
        raise TypeError(f"tracker must be a RetryTracker or have on_retry(), got {tracker!r}")
    wait_clock: Clock = SYSTEM_CLOCK if clock is None else clock
    random_source = random.Random() if rng is None else rng
    hub = RetryNow() if wake is None else wake

    def decorate(fn: Callable[_P, _T]) -> Callable[_P, _T]:
        name = getattr(fn, "__name__", None) or type(fn).__name__

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            # A snapshot per call: an assignment to the config applies to the next call,
            # never to one in flight.
            policy = RetryConfig() if config is None else config.copy()
            started = wait_clock.now()
            waited = 0.0
            last_cost = 0
            attempt = 0
            while True:
                attempt += 1
                if cancel is not None and cancel.cancelled:
                    raise RequestCancelledError(cancel.reason or "cancelled", attempts=attempt - 1)
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    if not _considered(exc, policy):
                        raise
                    verdict = _judge(exc, policy, attempt)
                    method, headers = _sent_request(exc)
                    decision = decide(
                        verdict,
                        attempt,
                        config=policy,
                        rng=random_source,
                        budget=budget,
                        method=method,
                        headers=headers,
                    )
                    error = verdict.error
                    if not decision.retry or error is None:
                        raise
                    if budget is not None:
                        if not budget.try_take(decision.cost):
                            raise
                        last_cost = decision.cost
                    now = wait_clock.now()
                    event = RetryEvent(
                        attempt=attempt + 1,
                        max_attempts=policy.max_attempts,
                        delay=decision.delay,
                        error=error,
                        cause=exc,
                        at=now,
                        elapsed=now - started,
                        waited_so_far=waited,
                    )
                    # str(error) is connmgr's redacted one-liner; str(exc) may hold a
                    # URL with a token in its query string, so it is never logged.
                    logger.warning(
                        "Retry %d/%d for %s after %.2fs: %s: %s",
                        event.retry_num,
                        policy.max_retries,
                        name,
                        event.delay,
                        type(error).__name__,
                        error,
                    )
                    with hub.waiter() as woken:
                        _report(tracker, event)
                        interruptible_sleep(wait_clock, event.delay, cancel=cancel, wake=woken)
                    waited += wait_clock.now() - now
                    if cancel is not None and cancel.cancelled:
                        raise RequestCancelledError(
                            cancel.reason or "cancelled", url=error.url, attempts=attempt
                        ) from error
                else:
                    if budget is not None:
                        budget.refund_success(last_cost)
                    return result

        return wrapper

    if func is None:
        return decorate
    return decorate(func)


def _report(tracker: RetryTracker | RetryCallback | None, event: RetryEvent) -> None:
    """Tell the tracker: a :class:`RetryTracker` gets the event, any other object ``on_retry``."""
    if isinstance(tracker, RetryTracker):
        tracker.record(event)
    elif tracker is not None:
        tracker.on_retry(event.attempt, event.max_attempts, event.delay, event.error)


def _considered(exc: BaseException, policy: RetryConfig) -> bool:
    """Whether a failure is weighed for a retry at all (then ``_judge`` decides).

    The config's ``retry_exceptions`` are, and so is every ``requests.HTTPError``:
    for those the status decides (``retry_status_codes``), whether or not the type
    is listed. ``KeyboardInterrupt``, ``SystemExit`` and other exceptions that
    are not ``Exception`` never are, even under ``retry_exceptions=(BaseException,)``.
    """
    if not isinstance(exc, Exception):
        return False
    return isinstance(exc, (requests.HTTPError, *policy.retry_exceptions))


def _sent_request(exc: BaseException) -> tuple[str | None, Mapping[str, Any] | None]:
    """The method and headers of the request a ``requests`` exception carries, if any.

    With them :func:`~connmgr.retry.decide` applies the idempotency rule: a POST
    that may have reached the server is not sent again (unless it carries an
    ``Idempotency-Key``). Without them (an exception that names no request) the
    caller vouches for repeating the call, as in the plan.
    """
    request = getattr(exc, "request", None)
    if not isinstance(request, requests.PreparedRequest | requests.Request):
        return None, None
    method = request.method
    if not isinstance(method, str):
        return None, None
    return method, request.headers


def _judge(exc: BaseException, policy: RetryConfig, attempt: int) -> Verdict:
    """connmgr's verdict on a failure that ``_considered`` let through.

    A network failure keeps connmgr's rules (an ``HTTPError`` only for a status
    in ``retry_status_codes``, a TLS failure never); any other exception was put
    in ``retry_exceptions`` on purpose, so it is retryable.
    """
    verdict = judge(exc, retry_status_codes=policy.retry_status_codes, attempts=attempt)
    if isinstance(exc, DEFAULT_CATCH):
        return verdict
    return dataclasses.replace(verdict, retryable=True)


def __getattr__(name: str) -> Any:
    # The plan's Qt indicator needs PySide6, which `import connmgr` must not.
    if name == "NetworkStatusIndicator":
        from connmgr.qt import NetworkStatusIndicator

        return NetworkStatusIndicator
    raise AttributeError(f"module 'connmgr.compat' has no attribute {name!r}")
