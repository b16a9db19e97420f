"""What one attempt means: retryable or not, and the outcome the state machine is fed."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Final

import requests

from connmgr.errors.classify import classify_error
from connmgr.errors.responses import _header, _quota_exhausted
from connmgr.errors.tree import (
    BackoffError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    HTTPStatusError,
    InvalidRequestError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
)

if TYPE_CHECKING:
    from connmgr.ratelimit import RateLimitInfo

__all__ = ["DEFAULT_RETRY_STATUS_CODES", "is_retryable", "outcome_of"]

#: The statuses retried by default (the original plan's list).
DEFAULT_RETRY_STATUS_CODES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})


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

    Whether a *POST* may be resent is a separate question: see
    ``error.request_sent`` and :func:`connmgr.retry.may_resend`.

    Example::

        >>> is_retryable(ServerError(status=503))
        True
        >>> is_retryable(HTTPStatusError(status=404))
        False
    """
    if isinstance(error, requests.Response):
        return error.status_code in retry_status_codes
    err = classify_error(error)
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
        return err.status is not None and err.status in retry_status_codes
    return False


#: outcome_of's default for ``quota``: read the response's headers itself.
_UNREAD: Final = object()


def outcome_of(
    error_or_response: BaseException | requests.Response,
    retry_status_codes: AbstractSet[int] = DEFAULT_RETRY_STATUS_CODES,
    *,
    quota: object = _UNREAD,  # RateLimitInfo | None when the caller parsed the headers
) -> str:
    """The outcome of one attempt for the state machine. Pure.

    One of ``"success"``, ``"transient"``, ``"throttled"``, ``"unreachable"``,
    ``"fatal"`` (the values of :class:`connmgr.machine.Outcome`; ``"slow"``
    needs the elapsed time, so the manager decides it).

    For a response: 429, a 503 with ``Retry-After``, and any answer whose
    rate-limit headers say no quota remains are throttled; another status in
    ``retry_status_codes`` is transient; anything else (a 404 included) is a
    success: the server answered, the link works. A caller that has already
    parsed the headers passes ``quota=parse_rate_limit_headers(...)`` (``None``
    when there were none) and they are not read again.

    For an error: :class:`RateLimitError` is throttled; connect failures
    (refused, no route, DNS, connect timeout) and :class:`OfflineError` are
    *unreachable*: a candidate only, which the manager confirms with the
    network monitor and treats as transient when the network is up (a refused
    port means the server is down, not the network); read timeouts, resets,
    cut-off bodies, proxy failures, :class:`DeadlineExceededError`,
    :class:`BackoffError` and retryable statuses are transient; TLS, invalid
    requests, other statuses, cancellation and unknown errors are fatal (no
    state change, never retried).

    Example::

        >>> outcome_of(RateLimitError(retry_after=3))
        'throttled'
        >>> outcome_of(ConnectionFailedError(kind="refused"))
        'unreachable'
    """
    if isinstance(error_or_response, requests.Response):
        status = error_or_response.status_code
        if quota is not _UNREAD:
            # The caller already parsed the rate-limit headers: no second read.
            info: RateLimitInfo | None = quota  # type: ignore[assignment]  # (no cast() call)
            retry_after = info is not None and info.retry_after is not None
            if status == 429 or (status == 503 and retry_after):
                return "throttled"
            if status in retry_status_codes:
                return "transient"
            return "throttled" if info is not None and info.exhausted else "success"
        headers = error_or_response.headers
        if status == 429 or (status == 503 and _header(headers, "Retry-After") is not None):
            return "throttled"
        if status in retry_status_codes:
            return "transient"
        if _quota_exhausted(headers):
            return "throttled"
        return "success"
    err = classify_error(error_or_response)
    if isinstance(err, RateLimitError):
        return "throttled"
    if isinstance(err, HTTPStatusError):
        if err.status == 429 or (err.status == 503 and err.retry_after is not None):
            return "throttled"
        if err.status in retry_status_codes or (
            err.status is None and isinstance(err, ServerError)
        ):
            return "transient"
        return "fatal"
    if isinstance(err, OfflineError | DNSError):
        return "unreachable"
    if isinstance(err, DeadlineExceededError | BackoffError):
        return "transient"
    if isinstance(err, RequestTimeoutError):
        return "unreachable" if err.kind == "connect_timeout" else "transient"
    if isinstance(err, ConnectionFailedError):
        return "unreachable" if err.kind in ("refused", "unreachable") else "transient"
    return "fatal"
