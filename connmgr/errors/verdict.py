"""The one classification of one attempt: :func:`judge` -> :class:`Verdict`.

An attempt ends with a response or an exception. :func:`judge` turns either
into a frozen :class:`Verdict` once, at the boundary where it arrives: the
:class:`Outcome` the state machine is fed, the error the call raises if it
stops there, whether another attempt may help, the server's requested pause,
the parsed rate-limit headers and whether the request may have reached the
server. Everything downstream (the machine, the limiter, the retry decision,
the signals) reads the verdict; nothing re-derives status rules.

:func:`is_retryable` and :func:`outcome_of` are the older, narrower questions;
they answer from the same rules (each rule is written once, below).
"""

from __future__ import annotations

import enum
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final

import requests

from connmgr.errors.classify import classify_error, classify_response
from connmgr.errors.responses import quota_of, throttle_wait
from connmgr.errors.tree import (
    BackoffError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
)
from connmgr.frozen import explain_frozen
from connmgr.ratelimit.headers import RateLimitInfo

__all__ = [
    "DEFAULT_RETRY_STATUS_CODES",
    "Outcome",
    "Verdict",
    "is_retryable",
    "judge",
    "outcome_of",
]

#: The statuses retried by default (the original plan's list).
DEFAULT_RETRY_STATUS_CODES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})


class Outcome(enum.Enum):
    """The classified outcome of one attempt, as the state machine is fed it.

    ``SLOW`` is a success that took longer than the caller's threshold;
    ``UNREACHABLE`` (a connect or DNS failure) is a candidate that the
    manager confirms with the network monitor: the server may be down while
    the network is fine.
    """

    SUCCESS = "success"
    SLOW = "slow"
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    UNREACHABLE = "unreachable"
    FATAL = "fatal"


@explain_frozen
@dataclass(frozen=True, slots=True)
class Verdict:
    """The one classification of one attempt, built once at the boundary.

    ``outcome``
        what the state machine is fed;
    ``response``
        the response, when one arrived;
    ``error``
        what the call raises if it stops here; ``None`` means: return ``response``;
    ``retryable``
        another attempt may succeed (the transient and throttled kinds);
    ``retry_after``
        the server's requested pause in seconds (``Retry-After``, and for a
        throttled answer also the reset headers); finite and >= 0, not capped:
        the caller applies its own caps;
    ``quota``
        the parsed rate-limit headers, ``None`` when the response had none;
    ``request_sent``
        the request may have reached the server (always true with a response).

    Example::

        >>> verdict = judge(RateLimitError(retry_after=3, status=429))
        >>> verdict.outcome, verdict.retryable, verdict.retry_after
        (<Outcome.THROTTLED: 'throttled'>, True, 3.0)
    """

    outcome: Outcome
    response: requests.Response | None
    error: NetworkError | None
    retryable: bool
    retry_after: float | None
    quota: RateLimitInfo | None
    request_sent: bool


def judge(
    result: requests.Response | BaseException,
    *,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
    url: str | None = None,
    attempts: int = 0,
    operation: str | None = None,
    elapsed: float | None = None,
    slow_after: float | None = None,
    request_sent: bool | None = None,
) -> Verdict:
    """The :class:`Verdict` of one attempt that ended with ``result``. Pure.

    For a **response**, its rate-limit headers are parsed once (a response
    without any costs one set test). A 429, a 503 with ``Retry-After`` and any
    answer whose headers say no quota remains are ``THROTTLED``; another status
    in ``retry_status_codes`` is ``TRANSIENT``; anything else (a 404 included:
    the server answered, the link works) is ``SUCCESS``, or ``SLOW`` when
    ``elapsed`` exceeds ``slow_after``. ``error`` is the classified error when
    the status is in ``retry_status_codes`` (the call fails with it unless a
    retry succeeds), else ``None`` (the caller gets the response, a 404 too).
    ``retry_after`` of a throttled answer is ``Retry-After``, else the quota's
    reset time.

    For an **exception**, ``error`` is :func:`classify_error` of it (with
    ``url``, ``attempts``, ``operation`` and ``request_sent``, the transport's
    knowledge of whether the first byte was written). A server's or the gate's
    :class:`RateLimitError` is ``THROTTLED``; connect failures (refused, no
    route, DNS, connect timeout) and :class:`OfflineError` are
    ``UNREACHABLE`` (a candidate the manager confirms with the network
    monitor); read timeouts, resets, cut-off bodies, proxy failures,
    :class:`DeadlineExceededError`, :class:`BackoffError` and retryable
    statuses are ``TRANSIENT``; TLS, invalid requests, other statuses,
    cancellation and unknown errors are ``FATAL``.

    ``retryable`` follows :func:`is_retryable`. Whether a *POST* may be resent
    is a separate question: ``request_sent`` and ``connmgr.retry.may_resend``.

    Example::

        >>> judge(ConnectionFailedError(kind="refused")).outcome
        <Outcome.UNREACHABLE: 'unreachable'>
        >>> verdict = judge(RequestCancelledError("closed"))
        >>> verdict.outcome, verdict.retryable
        (<Outcome.FATAL: 'fatal'>, False)
    """
    if isinstance(result, requests.Response):
        quota = quota_of(result.headers)
        status = result.status_code
        outcome = _response_outcome(status, quota, retry_status_codes)
        error = (
            classify_response(result, quota, url=url, attempts=attempts, operation=operation)
            if _status_fails(status, retry_status_codes)
            else None
        )
        if outcome is Outcome.THROTTLED:
            retry_after = throttle_wait(quota)
        else:
            retry_after = error.retry_after if error is not None else None
            if (
                outcome is Outcome.SUCCESS
                and elapsed is not None
                and slow_after is not None
                and elapsed > slow_after
            ):
                outcome = Outcome.SLOW
        # An answer came back, so the request arrived: request_sent is True.
        return Verdict(outcome, result, error, error is not None, retry_after, quota, True)
    given: object = result
    if not isinstance(given, BaseException):
        raise TypeError(f"result must be a requests.Response or an exception, got {given!r}")
    error = classify_error(
        result, url=url, attempts=attempts, operation=operation, request_sent=request_sent
    )
    response = error.response
    return Verdict(
        outcome=_error_outcome(error, retry_status_codes),
        response=response,
        error=error,
        retryable=_error_retryable(error, retry_status_codes),
        retry_after=error.retry_after,
        quota=quota_of(response.headers) if response is not None else None,
        request_sent=error.request_sent,
    )


def is_retryable(
    error: BaseException | requests.Response,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
) -> bool:
    """Whether another attempt may succeed (the "transient or throttled" kinds). Pure.

    * Yes: connection failures (refused, reset, cut off, no route, proxy),
      timeouts (connect and read), a DNS failure the resolver calls
      *temporary*, a :class:`RateLimitError` from the server (a 429, or a 403
      out of quota; while 429 is in the list), a status in
      ``retry_status_codes`` (429, 500, 502, 503, 504 by default).
    * No: a DNS name that does not exist (a typo does not fix itself within
      seconds; when the network is the cause, the manager's network check goes
      offline instead), :class:`DeadlineExceededError` (the time is spent),
      :class:`TLSError`, :class:`InvalidRequestError`, any other status,
      :class:`OfflineError`, :class:`BackoffError`, a :class:`RateLimitError`
      with no status (raised by the manager's gate before sending) and
      :class:`RequestCancelledError` (the gate or the caller decided), and
      anything unrecognised.

    The same answer as ``judge(error).retryable``. Whether a *POST* may be
    resent is a separate question: see ``error.request_sent`` and
    :func:`connmgr.retry.may_resend`.

    Example::

        >>> is_retryable(ServerError(status=503))
        True
        >>> is_retryable(HTTPStatusError(status=404))
        False
    """
    if isinstance(error, requests.Response):
        return _status_fails(error.status_code, retry_status_codes)
    return _error_retryable(classify_error(error), retry_status_codes)


#: outcome_of's default for ``quota``: read the response's headers itself.
_UNREAD: Final = object()


def outcome_of(
    error_or_response: BaseException | requests.Response,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
    *,
    quota: object = _UNREAD,  # RateLimitInfo | None when the caller parsed the headers
) -> str:
    """The outcome of one attempt for the state machine, as a string. Pure.

    The value of ``judge(error_or_response).outcome``: ``"success"``,
    ``"transient"``, ``"throttled"``, ``"unreachable"`` or ``"fatal"``
    (``"slow"`` needs the elapsed time: see :func:`judge`). A caller that has
    already parsed the headers passes ``quota=parse_rate_limit_headers(...)``
    (``None`` when there were none) and they are not read again.

    Example::

        >>> outcome_of(RateLimitError(retry_after=3))
        'throttled'
        >>> outcome_of(ConnectionFailedError(kind="refused"))
        'unreachable'
    """
    if isinstance(error_or_response, requests.Response):
        info = quota_of(error_or_response.headers) if quota is _UNREAD else quota
        if info is not None and not isinstance(info, RateLimitInfo):
            raise TypeError(f"quota must be a RateLimitInfo or None, got {info!r}")
        status = error_or_response.status_code
        return _response_outcome(status, info, retry_status_codes).value
    return _error_outcome(classify_error(error_or_response), retry_status_codes).value


# --------------------------------------------------------------------------- the rules


def _status_fails(status: int, retry_status_codes: AbstractSet[int]) -> bool:
    """A status the call fails with (unless a retry succeeds); it is also the retryable one."""
    return status in retry_status_codes


def _response_outcome(
    status: int, quota: RateLimitInfo | None, retry_status_codes: AbstractSet[int]
) -> Outcome:
    """The outcome of an answer with ``status`` and rate-limit headers ``quota``."""
    if status == 429 or (status == 503 and quota is not None and quota.retry_after is not None):
        return Outcome.THROTTLED
    if status in retry_status_codes:
        return Outcome.TRANSIENT
    if quota is not None and quota.exhausted:
        # A 403 out of quota (GitHub), or a success that spent the last request.
        return Outcome.THROTTLED
    return Outcome.SUCCESS


def _error_outcome(err: NetworkError, retry_status_codes: AbstractSet[int]) -> Outcome:
    """The outcome of an attempt that failed with ``err``."""
    if isinstance(err, RateLimitError):
        return Outcome.THROTTLED
    if isinstance(err, HTTPStatusError):
        if err.status == 429 or (err.status == 503 and err.retry_after is not None):
            return Outcome.THROTTLED
        if err.status in retry_status_codes or (
            err.status is None and isinstance(err, ServerError)
        ):
            return Outcome.TRANSIENT
        return Outcome.FATAL
    if isinstance(err, OfflineError | DNSError):
        return Outcome.UNREACHABLE
    if isinstance(err, DeadlineExceededError | BackoffError):
        return Outcome.TRANSIENT
    if isinstance(err, RequestTimeoutError):
        return Outcome.UNREACHABLE if err.kind == "connect_timeout" else Outcome.TRANSIENT
    if isinstance(err, ConnectionFailedError):
        if err.kind == "network_changed":
            # Dropped on purpose when the network changed: no fault of the server's,
            # so the origin's state does not move (FATAL moves nothing); still retried.
            return Outcome.FATAL
        return Outcome.UNREACHABLE if err.kind in ("refused", "unreachable") else Outcome.TRANSIENT
    return Outcome.FATAL


def _error_retryable(err: NetworkError, retry_status_codes: AbstractSet[int]) -> bool:
    """Whether another attempt may succeed after ``err``."""
    if isinstance(
        err,
        TLSError
        | InvalidRequestError
        | OfflineError
        | BackoffError
        | RequestCancelledError
        | DeadlineExceededError,
    ):
        return False
    if isinstance(err, DNSError):
        return err.temporary
    if isinstance(err, ConnectionFailedError | RequestTimeoutError):
        return True
    if isinstance(err, RateLimitError):
        if err.status is None:
            # Raised by the manager's gate: it already decided the wait does not
            # fit the deadline or max_wait, so another attempt cannot help.
            return False
        # 429 in the list stands for "retry when throttled", whatever the status
        # (a 403 out of quota too).
        return 429 in retry_status_codes or err.status in retry_status_codes
    if isinstance(err, HTTPStatusError):
        return err.status is not None and _status_fails(err.status, retry_status_codes)
    return False
