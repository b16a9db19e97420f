"""connmgr.errors.verdict: retryable or not, and the outcome of one attempt."""

from __future__ import annotations

import ssl

import pytest
import requests
from errors_helpers import (
    closed_port,
    failure,
    response,
)

from connmgr.errors import (
    DEFAULT_RETRY_STATUS_CODES,
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
    is_retryable,
    outcome_of,
)

# --------------------------------------------------------------------------- retryable and outcomes


@pytest.mark.parametrize(
    ("err", "retryable", "outcome"),
    [
        (ConnectionFailedError(kind="refused", request_sent=False), True, "unreachable"),
        (ConnectionFailedError(kind="unreachable"), True, "unreachable"),
        (ConnectionFailedError(kind="reset"), True, "transient"),
        (ConnectionFailedError(kind="incomplete"), True, "transient"),
        (ConnectionFailedError(kind="proxy"), True, "transient"),
        (DNSError(temporary=True), True, "unreachable"),
        (DNSError(), False, "unreachable"),
        (RequestTimeoutError(kind="connect_timeout"), True, "unreachable"),
        (RequestTimeoutError(kind="read_timeout"), True, "transient"),
        (DeadlineExceededError(), False, "transient"),
        (RateLimitError(retry_after=5), False, "throttled"),  # raised by the gate
        (RateLimitError(status=429), True, "throttled"),
        (HTTPStatusError(status=404), False, "fatal"),
        (HTTPStatusError(status=408), False, "fatal"),
        (ServerError(status=500), True, "transient"),
        (ServerError(status=501), False, "fatal"),
        (ServerError(status=503, retry_after=5), True, "throttled"),
        (ServerError(), False, "transient"),
        (TLSError(kind="tls_certificate"), False, "fatal"),
        (InvalidRequestError(), False, "fatal"),
        (OfflineError(), False, "unreachable"),
        (BackoffError(retry_in=2), False, "transient"),
        (RequestCancelledError(), False, "fatal"),
        (NetworkError(), False, "fatal"),
    ],
    ids=lambda v: v if isinstance(v, str | bool) else f"{type(v).__name__}-{v.kind}-{v.status}",
)
def test_retryable_and_outcome_of_every_kind(
    err: NetworkError, retryable: bool, outcome: str
) -> None:
    assert is_retryable(err) is retryable
    assert outcome_of(err) == outcome


def test_retry_status_codes_can_be_narrowed() -> None:
    assert is_retryable(ServerError(status=503), frozenset({502})) is False
    assert is_retryable(RateLimitError(status=429), {500}) is False
    assert is_retryable(RateLimitError(status=429), {429}) is True
    assert is_retryable(RateLimitError(retry_after=3), {429}) is False  # the gate's: no status
    assert is_retryable(RateLimitError(status=403), DEFAULT_RETRY_STATUS_CODES) is True
    assert is_retryable(HTTPStatusError(status=409), {409}) is True
    assert outcome_of(ServerError(status=500), {502}) == "fatal"
    assert frozenset({429, 500, 502, 503, 504}) == DEFAULT_RETRY_STATUS_CODES


@pytest.mark.parametrize(
    ("status", "headers", "outcome"),
    [
        (200, {}, "success"),
        (404, {}, "success"),  # the server answered: the link works
        (501, {}, "success"),
        (429, {}, "throttled"),
        (503, {"Retry-After": "5"}, "throttled"),
        (503, {}, "transient"),
        (500, {}, "transient"),
        (200, {"X-RateLimit-Remaining": "0"}, "throttled"),
        (200, {"RateLimit-Remaining": "3"}, "success"),
        (200, {"x-rate-limit-remaining": "0"}, "throttled"),
        (
            200,
            {"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=9;w=60'},
            "throttled",
        ),
        (
            200,
            {"RateLimit": '"default";r=4;t=30', "RateLimit-Policy": '"default";q=9;w=60'},
            "success",
        ),
        (200, {"X-RateLimit-Remaining": "garbage"}, "success"),
    ],
)
def test_outcome_of_responses(status: int, headers: dict[str, str], outcome: str) -> None:
    r = response(status, headers)
    assert outcome_of(r) == outcome
    assert is_retryable(r) is (status in DEFAULT_RETRY_STATUS_CODES)


def test_is_retryable_and_outcome_of_accept_raw_exceptions() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    assert is_retryable(exc) is True
    assert outcome_of(exc) == "unreachable"
    assert outcome_of(ssl.SSLCertVerificationError("certificate verify failed")) == "fatal"


def test_outcome_of_with_headers_already_parsed_agrees_with_reading_them():
    import requests as _requests

    from connmgr.ratelimit import parse_rate_limit_headers

    cases = [
        (200, {}),
        (404, {}),
        (429, {}),
        (503, {}),
        (503, {"Retry-After": "3"}),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}),
        (200, {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "30"}),
    ]
    for status, headers in cases:
        response = _requests.Response()
        response.status_code = status
        response.headers.update(headers)
        quota = parse_rate_limit_headers(response.headers)
        assert outcome_of(response, quota=quota) == outcome_of(response), (status, headers)
