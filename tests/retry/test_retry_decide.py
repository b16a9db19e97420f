"""decide(): the pure retry decision after one attempt's Verdict."""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time

import pytest
import requests

from connmgr.errors import (
    ConnectionFailedError,
    RequestCancelledError,
    RequestTimeoutError,
    TLSError,
    judge,
)
from connmgr.retry import Decision, RetryBudget, RetryConfig, StopReason, decide

NO_JITTER = RetryConfig(jitter_range=0.0)
URL = "http://127.0.0.1:9/api?token=secret123"


def response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.url = URL
    r.headers.update(headers or {})
    r.request = requests.Request("GET", URL).prepare()
    return r


def run(verdict, *, config=NO_JITTER, **kw):
    """The decisions for attempts 1, 2, ... until one stops."""
    decisions: list[Decision] = []
    for attempt in range(1, 50):
        d = decide(verdict, attempt, config=config, rng=random.Random(1), **kw)
        decisions.append(d)
        if not d.retry:
            return decisions
    raise AssertionError("never stopped")


def test_a_success_stops_with_success():
    d = decide(judge(response(200)), 1, config=NO_JITTER, rng=random.Random())
    assert (d.retry, d.reason, d.delay) == (False, StopReason.SUCCESS, 0.0)


def test_a_503_retries_three_times_with_exact_backoff_then_is_exhausted():
    decisions = run(judge(response(503)))
    assert [d.delay for d in decisions if d.retry] == [0.5, 1.0, 2.0]
    assert decisions[-1].reason is StopReason.EXHAUSTED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_statuses_are_not_errors_at_all(status):
    d = decide(judge(response(status)), 1, config=NO_JITTER, rng=random.Random())
    assert d.reason is StopReason.SUCCESS  # the response is returned, as requests does


def test_tls_and_cancellation_are_never_retried():
    assert run(judge(TLSError("bad certificate")))[0].reason is StopReason.NOT_RETRYABLE
    assert run(judge(RequestCancelledError("stop")))[0].reason is StopReason.CANCELLED


def test_retry_after_longer_than_the_backoff_wins():
    d = decide(judge(response(503, {"Retry-After": "7"})), 1, config=NO_JITTER, rng=random.Random())
    assert (d.retry, d.delay, d.backoff) == (True, 7.0, 0.5)
    shorter = decide(
        judge(response(503, {"Retry-After": "0"})), 3, config=NO_JITTER, rng=random.Random()
    )
    assert shorter.delay == 2.0  # a shorter Retry-After does not shorten the backoff


def test_retry_after_as_an_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    d = decide(
        judge(response(429, {"Retry-After": when})), 1, config=NO_JITTER, rng=random.Random()
    )
    assert 28.0 <= d.delay <= 30.0


@pytest.mark.parametrize("status", [429, 503])
def test_a_pause_longer_than_max_retry_after_stops_at_once(status):
    verdict = judge(response(status, {"Retry-After": "86400"}))
    d = decide(verdict, 1, config=NO_JITTER, rng=random.Random())
    assert (d.retry, d.reason) == (False, StopReason.MAX_WAIT)


def test_the_cap_rule_deadline_and_max_wait():
    verdict = judge(response(503))
    assert decide(verdict, 2, config=NO_JITTER, rng=random.Random(), remaining=0.7).reason is (
        StopReason.DEADLINE
    )
    assert decide(verdict, 2, config=NO_JITTER, rng=random.Random(), remaining=1.5).retry
    assert decide(verdict, 2, config=NO_JITTER, rng=random.Random(), max_wait=0.9).reason is (
        StopReason.MAX_WAIT
    )
    slow = judge(response(429, {"Retry-After": "40"}))
    d = decide(slow, 1, config=NO_JITTER, rng=random.Random(), remaining=60.0, max_wait=2.0)
    assert d.reason is StopReason.MAX_WAIT


@pytest.mark.parametrize(
    ("method", "headers", "sent", "retry"),
    [
        ("POST", {}, True, False),
        ("PATCH", None, True, False),
        ("POST", {"Idempotency-Key": "order-17"}, True, True),
        ("POST", {}, False, True),
        ("GET", None, True, True),
        ("PUT", {}, True, True),
        (None, None, True, True),  # the caller vouches (the plan's decorator)
    ],
)
def test_resending_only_when_safe(method, headers, sent, retry):
    error = ConnectionFailedError("reset", kind="reset")
    error.request_sent = sent
    verdict = dataclasses.replace(judge(error), request_sent=sent)
    d = decide(verdict, 1, config=NO_JITTER, rng=random.Random(), method=method, headers=headers)
    assert d.retry is retry
    if not retry:
        assert d.reason is StopReason.UNSAFE


def test_the_budget_is_read_not_spent_and_timeouts_cost_more():
    budget = RetryBudget(capacity=12)
    plain = decide(judge(response(503)), 1, config=NO_JITTER, rng=random.Random(), budget=budget)
    assert plain.retry and plain.cost == 5 and budget.available == 12
    timeout = judge(RequestTimeoutError("read timed out", kind="read_timeout"))
    d = decide(timeout, 1, config=NO_JITTER, rng=random.Random(), budget=budget)
    assert d.cost == 10 and d.retry
    budget.try_spend(after_timeout=True)
    d = decide(timeout, 1, config=NO_JITTER, rng=random.Random(), budget=budget)
    assert (d.retry, d.reason) == (False, StopReason.BUDGET)


def test_decisions_are_frozen_and_pure():
    verdict = judge(response(503))
    first = decide(verdict, 1, config=NO_JITTER, rng=random.Random(3))
    again = decide(verdict, 1, config=NO_JITTER, rng=random.Random(3))
    assert first == again
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.delay = 0.0  # type: ignore[misc]


def test_an_attempt_ended_because_its_network_went_goes_again_at_once():
    error = ConnectionFailedError("the network changed", kind="network_changed")
    d = decide(judge(error), 1, config=RetryConfig(), rng=random.Random(), method="GET")
    assert (d.retry, d.delay) == (True, 0.0)
    # Never for a POST that may have arrived: that rule comes first.
    unsafe = decide(judge(error), 1, config=RetryConfig(), rng=random.Random(), method="POST")
    assert unsafe.reason is StopReason.UNSAFE
