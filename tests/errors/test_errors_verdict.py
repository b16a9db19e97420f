"""connmgr.errors.verdict: retryable or not, and the outcome of one attempt."""

from __future__ import annotations

import dataclasses
import math
import ssl
import timeit
from typing import Any

import pytest
import requests
from errors_helpers import (
    closed_port,
    failure,
    raw_server,
    reset_handler,
    response,
    silent_handler,
)

import connmgr.errors.responses as responses_module
from connmgr.clock import CancelToken
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
    Outcome,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    is_retryable,
    judge,
    outcome_of,
)
from connmgr.ratelimit import RateLimitInfo, parse_rate_limit_headers
from connmgr.testing import FaultServer

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


# --------------------------------------------------------------------------- judge: responses

RESET_EPOCH = "Tue, 01 Dec 2026 18:00:00 GMT"


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retryable", "retry_after", "error"),
    [
        (200, {}, Outcome.SUCCESS, False, None, None),
        (204, {"Content-Type": "text/plain"}, Outcome.SUCCESS, False, None, None),
        (404, {}, Outcome.SUCCESS, False, None, None),  # returned to the caller, not raised
        (501, {}, Outcome.SUCCESS, False, None, None),
        (429, {}, Outcome.THROTTLED, True, None, RateLimitError),
        (429, {"Retry-After": "7"}, Outcome.THROTTLED, True, 7.0, RateLimitError),
        (
            429,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
            Outcome.THROTTLED,
            True,
            30.0,
            RateLimitError,
        ),
        (
            429,
            {"Retry-After": "4", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
            Outcome.THROTTLED,
            True,
            4.0,  # Retry-After wins over the reset time
            RateLimitError,
        ),
        (
            429,
            {"Retry-After": "Tue, 01 Dec 2026 18:00:30 GMT", "Date": RESET_EPOCH},
            Outcome.THROTTLED,
            True,
            30.0,  # an HTTP-date, measured against the server's own Date
            RateLimitError,
        ),
        (429, {"Retry-After": "-5"}, Outcome.THROTTLED, True, 0.0, RateLimitError),  # clamped
        (429, {"Retry-After": "soon"}, Outcome.THROTTLED, True, None, RateLimitError),
        (429, {"Retry-After": "nan"}, Outcome.THROTTLED, True, None, RateLimitError),
        (429, {"Retry-After": "1e400"}, Outcome.THROTTLED, True, None, RateLimitError),
        (
            429,
            {"Retry-After": "86400"},  # a day: reported as asked, not capped
            Outcome.THROTTLED,
            True,
            86400.0,
            RateLimitError,
        ),
        (503, {"Retry-After": "5"}, Outcome.THROTTLED, True, 5.0, ServerError),
        (503, {"Retry-After": "garbage"}, Outcome.TRANSIENT, True, None, ServerError),
        (503, {}, Outcome.TRANSIENT, True, None, ServerError),
        (500, {}, Outcome.TRANSIENT, True, None, ServerError),
        (500, {"Retry-After": "2"}, Outcome.TRANSIENT, True, 2.0, ServerError),
        (502, {}, Outcome.TRANSIENT, True, None, ServerError),
        (504, {}, Outcome.TRANSIENT, True, None, ServerError),
        (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"},
            Outcome.THROTTLED,  # out of quota (GitHub's way), but 403 is not retried
            False,
            60.0,
            None,
        ),
        (403, {"X-RateLimit-Remaining": "5"}, Outcome.SUCCESS, False, None, None),
        (
            200,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"},
            Outcome.THROTTLED,  # the last request of the window: pause the next
            False,
            12.0,
            None,
        ),
        (
            200,
            {"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=9;w=60'},
            Outcome.THROTTLED,
            False,
            30.0,
            None,
        ),
        (200, {"X-RateLimit-Remaining": "57"}, Outcome.SUCCESS, False, None, None),
        (200, {"X-RateLimit-Remaining": "garbage"}, Outcome.SUCCESS, False, None, None),
        (200, {"Retry-After": "3"}, Outcome.SUCCESS, False, None, None),
    ],
)
def test_judge_a_response(
    status: int,
    headers: dict[str, str],
    outcome: Outcome,
    retryable: bool,
    retry_after: float | None,
    error: type[NetworkError] | None,
) -> None:
    r = response(status, headers)
    verdict = judge(r, url="https://api.example.com/v1/search?token=t", attempts=2)
    assert verdict.outcome is outcome
    assert verdict.retryable is retryable
    if retry_after is None:
        assert verdict.retry_after is None
    else:
        assert verdict.retry_after == pytest.approx(retry_after)
    assert verdict.request_sent is True and verdict.response is r
    if error is None:
        assert verdict.error is None
    else:
        assert type(verdict.error) is error and verdict.error.status == status
        assert verdict.error.response is r and verdict.error.attempts == 2
        assert verdict.error.url == "https://api.example.com/v1/search?token=***"
    # The older questions answer from the same rules.
    assert outcome_of(r) == outcome.value
    assert is_retryable(r) is retryable
    if verdict.error is not None:
        assert is_retryable(verdict.error) is retryable
    if verdict.retry_after is not None:
        assert math.isfinite(verdict.retry_after) and verdict.retry_after >= 0
    assert (verdict.quota is None) is (parse_rate_limit_headers(r.headers) is None)


def test_judge_parses_the_rate_limit_headers_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = responses_module.parse_rate_limit_headers

    def counting(headers: Any, now: float | None = None) -> RateLimitInfo | None:
        calls.append(headers)
        return real(headers, now)

    monkeypatch.setattr(responses_module, "parse_rate_limit_headers", counting)
    verdict = judge(response(429, {"Retry-After": "5", "X-RateLimit-Remaining": "0"}))
    assert verdict.outcome is Outcome.THROTTLED and verdict.error is not None
    assert len(calls) == 1  # outcome, error and retry_after share one parse
    calls.clear()
    judge(response(200, {"Content-Type": "text/html"}))
    assert len(calls) == 1


def test_judge_slow_only_for_a_success_past_the_threshold() -> None:
    ok = response(200)
    assert judge(ok, elapsed=2.0, slow_after=1.5).outcome is Outcome.SLOW
    assert judge(ok, elapsed=1.5, slow_after=1.5).outcome is Outcome.SUCCESS
    assert judge(ok, elapsed=9.0).outcome is Outcome.SUCCESS  # no threshold, never slow
    assert judge(ok, slow_after=0.0).outcome is Outcome.SUCCESS  # no time, never slow
    assert judge(response(500), elapsed=9.0, slow_after=1.0).outcome is Outcome.TRANSIENT
    assert judge(response(429), elapsed=9.0, slow_after=1.0).outcome is Outcome.THROTTLED


def test_judge_honours_the_retry_status_codes() -> None:
    narrowed = frozenset({502})
    verdict = judge(response(503), retry_status_codes=narrowed)
    assert verdict.outcome is Outcome.SUCCESS and verdict.error is None
    assert not verdict.retryable
    verdict = judge(response(409), retry_status_codes={409})
    assert verdict.outcome is Outcome.TRANSIENT and verdict.retryable
    assert type(verdict.error) is HTTPStatusError
    # 429 without 429 in the list: still throttled (the limiter must learn), returned as is.
    verdict = judge(response(429, {"Retry-After": "3"}), retry_status_codes={500})
    assert verdict.outcome is Outcome.THROTTLED and verdict.error is None
    assert verdict.retry_after == 3.0 and not verdict.retryable


def test_a_verdict_is_frozen_and_replaceable() -> None:
    verdict = judge(ConnectionFailedError(kind="refused"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.outcome = Outcome.TRANSIENT  # type: ignore[misc]
    confirmed = dataclasses.replace(verdict, outcome=Outcome.TRANSIENT)
    assert confirmed.outcome is Outcome.TRANSIENT and verdict.outcome is Outcome.UNREACHABLE
    assert confirmed.error is verdict.error
    assert not hasattr(verdict, "__dict__")  # slots


def test_judge_rejects_what_is_neither_a_response_nor_an_exception() -> None:
    with pytest.raises(TypeError, match="result must be"):
        judge("500")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="quota must be"):
        outcome_of(response(200), quota="none")


# --------------------------------------------------------------------------- judge: exceptions


@pytest.mark.parametrize(
    ("err", "outcome", "retryable", "retry_after", "request_sent"),
    [
        (ConnectionFailedError(kind="refused"), Outcome.UNREACHABLE, True, None, False),
        (ConnectionFailedError(kind="unreachable"), Outcome.UNREACHABLE, True, None, False),
        (ConnectionFailedError(kind="reset"), Outcome.TRANSIENT, True, None, True),
        (ConnectionFailedError(kind="incomplete"), Outcome.TRANSIENT, True, None, True),
        (ConnectionFailedError(kind="decoding"), Outcome.TRANSIENT, True, None, True),
        (ConnectionFailedError(kind="proxy"), Outcome.TRANSIENT, True, None, False),
        (DNSError(temporary=True), Outcome.UNREACHABLE, True, None, False),
        (DNSError(), Outcome.UNREACHABLE, False, None, False),
        (RequestTimeoutError(kind="connect_timeout"), Outcome.UNREACHABLE, True, None, False),
        (RequestTimeoutError(kind="read_timeout"), Outcome.TRANSIENT, True, None, True),
        (DeadlineExceededError(timeout=30), Outcome.TRANSIENT, False, None, True),
        (RateLimitError(retry_after=40), Outcome.THROTTLED, False, 40.0, False),  # the gate
        (RateLimitError(status=429, retry_after=5), Outcome.THROTTLED, True, 5.0, False),
        (ServerError(status=503, retry_after=5), Outcome.THROTTLED, True, 5.0, True),
        (ServerError(status=500), Outcome.TRANSIENT, True, None, True),
        (HTTPStatusError(status=404), Outcome.FATAL, False, None, True),
        (TLSError(kind="tls_hostname"), Outcome.FATAL, False, None, False),
        (InvalidRequestError(kind="invalid_url"), Outcome.FATAL, False, None, False),
        (NetworkError(kind="invalid_response"), Outcome.FATAL, False, None, True),
        (OfflineError(), Outcome.UNREACHABLE, False, None, False),
        (BackoffError(retry_in=8), Outcome.TRANSIENT, False, 8.0, False),
        (RequestCancelledError("closed"), Outcome.FATAL, False, None, True),
        (RuntimeError("a bug"), Outcome.FATAL, False, None, True),
        (
            ssl.SSLCertVerificationError("certificate verify failed"),
            Outcome.FATAL,
            False,
            None,
            False,
        ),
    ],
    ids=lambda v: v if isinstance(v, str | bool) else None,
)
def test_judge_an_exception(
    err: BaseException,
    outcome: Outcome,
    retryable: bool,
    retry_after: float | None,
    request_sent: bool,
) -> None:
    verdict = judge(err, attempts=3, operation="search")
    assert verdict.outcome is outcome
    assert verdict.retryable is retryable
    assert verdict.retry_after == retry_after
    assert verdict.request_sent is request_sent
    assert verdict.error is not None and verdict.error.request_sent is request_sent
    assert verdict.error.attempts == 3 and verdict.error.operation == "search"
    assert verdict.response is None and verdict.quota is None
    assert outcome_of(err) == outcome.value and is_retryable(err) is retryable
    if isinstance(err, NetworkError):
        assert err.attempts == 0 and err.operation is None  # judge is pure too


def test_judge_a_cancelled_token() -> None:
    token = CancelToken()
    token.cancel("the window closed")
    verdict = judge(RequestCancelledError.from_token(token, url="https://x.test/a", attempts=1))
    assert verdict.outcome is Outcome.FATAL and not verdict.retryable
    assert isinstance(verdict.error, RequestCancelledError)
    assert str(verdict.error) == "the window closed (https://x.test/a; 1 attempt)"


def test_judge_an_http_error_carries_its_response_and_quota() -> None:
    r = response(429, {"Retry-After": "9", "X-RateLimit-Remaining": "0"})
    verdict = judge(requests.HTTPError("429 Client Error", response=r))
    assert verdict.outcome is Outcome.THROTTLED and verdict.retryable
    assert verdict.response is r and verdict.retry_after == 9.0
    assert verdict.quota is not None and verdict.quota.remaining == 0


# Real failures on loopback: what the transport would hand judge.


def test_judge_a_refused_port() -> None:
    port = closed_port()
    exc = failure(lambda: requests.post(f"http://127.0.0.1:{port}/", data=b"x", timeout=1))
    verdict = judge(exc, url=f"http://127.0.0.1:{port}/", attempts=1)
    assert verdict.outcome is Outcome.UNREACHABLE and verdict.retryable
    assert verdict.request_sent is False  # a POST that never left may be resent
    assert isinstance(verdict.error, ConnectionFailedError) and verdict.error.kind == "refused"


def test_judge_a_reset_after_the_request() -> None:
    with raw_server(reset_handler) as port:
        exc = failure(lambda: requests.post(f"http://127.0.0.1:{port}/", data=b"x", timeout=1))
    verdict = judge(exc)
    assert verdict.outcome is Outcome.TRANSIENT and verdict.retryable
    assert verdict.request_sent is True


def test_judge_a_read_timeout() -> None:
    with raw_server(silent_handler) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(1, 0.1)))
    verdict = judge(exc)
    assert verdict.outcome is Outcome.TRANSIENT and verdict.retryable
    assert verdict.request_sent is True
    assert isinstance(verdict.error, RequestTimeoutError)
    assert verdict.error.kind == "read_timeout"


def test_judge_a_real_429_and_a_real_200(server: FaultServer) -> None:
    throttled = requests.get(server.url_for("/status/429?retry_after=3"), timeout=2)
    verdict = judge(throttled, elapsed=0.01, slow_after=5)
    assert throttled.status_code == 429
    assert verdict.outcome is Outcome.THROTTLED and verdict.retry_after == 3.0
    assert isinstance(verdict.error, RateLimitError) and verdict.retryable
    ok = requests.get(server.url_for("/ok"), timeout=2)
    verdict = judge(ok, elapsed=0.01, slow_after=5)
    assert verdict.outcome is Outcome.SUCCESS and verdict.error is None
    assert verdict.quota is None and verdict.response is ok


def test_judging_a_plain_200_is_cheap() -> None:
    ok = response(
        200,
        {
            "Date": RESET_EPOCH,
            "Server": "nginx",
            "Content-Type": "application/json",
            "Content-Length": "1234",
            "Cache-Control": "no-cache",
        },
    )
    best = min(timeit.repeat(lambda: judge(ok, elapsed=0.1, slow_after=7.5), number=2000, repeat=5))
    assert best / 2000 < 50e-6  # about 1.5 µs on an idle machine; generous for a shared one
