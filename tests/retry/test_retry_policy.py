"""The retry policy: RetryConfig, may_resend and RetryBudget."""

from __future__ import annotations

import dataclasses
import math
import random
import threading

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connmgr.retry import IDEMPOTENT_METHODS, RetryBudget, RetryConfig, may_resend

NO_JITTER = RetryConfig(jitter_range=0.0)
URL = "http://127.0.0.1:9/api?token=secret123"


# --------------------------------------------------------------------------- RetryConfig


def test_defaults_are_the_plans():
    config = RetryConfig()
    assert (config.max_retries, config.base_delay, config.exponential_base) == (3, 0.5, 2.0)
    assert (config.jitter_range, config.max_delay, config.max_retry_after) == (0.25, 10.0, 300.0)
    assert config.retry_status_codes == frozenset({429, 500, 502, 503, 504})
    assert config.max_attempts == 4
    assert requests.HTTPError in config.retry_exceptions


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", True),
        ("max_retries", 1.5),
        ("max_retries", "3"),
        ("base_delay", -0.1),
        ("base_delay", True),
        ("base_delay", math.nan),
        ("base_delay", "0.5"),
        ("exponential_base", 0.5),
        ("exponential_base", math.inf),
        ("jitter_range", -0.25),
        ("max_delay", math.inf),
        ("max_delay", False),
        ("max_retry_after", -1),
        ("retry_status_codes", "503"),
        ("retry_status_codes", 503),
        ("retry_status_codes", {503: True}),
        ("retry_status_codes", {99}),
        ("retry_status_codes", {600}),
        ("retry_status_codes", {True}),
        ("retry_status_codes", [503.0]),
    ],
)
def test_invalid_values_raise_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=field) as info:
        RetryConfig(**{field: value})
    shown = repr(value)
    assert shown in str(info.value) or repr(next(iter(value))) in str(info.value)


def test_status_codes_accept_any_iterable_and_are_stored_frozen():
    for given_codes in ({503, 429}, [503, 429], (c for c in (503, 429)), frozenset({429, 503})):
        config = RetryConfig(retry_status_codes=given_codes)
        assert config.retry_status_codes == frozenset({429, 503})
        assert isinstance(config.retry_status_codes, frozenset)
    assert RetryConfig(retry_status_codes=[503]) == RetryConfig(retry_status_codes={503})


def test_config_is_keyword_only_normalised_and_validated_on_assignment():
    config = RetryConfig(base_delay=1, retry_status_codes=[503])
    assert isinstance(config.base_delay, float) and config.base_delay == 1.0
    assert config.retry_status_codes == frozenset({503})
    config.max_retries = 5
    assert config.max_attempts == 6
    config.retry_exceptions = (Exception,)
    assert config.retry_exceptions == (Exception,)
    with pytest.raises(ValueError, match=r"RetryConfig\.max_retries"):
        config.max_retries = -1
    assert config.max_retries == 5  # a refused assignment changes nothing
    with pytest.raises(AttributeError, match="max_retrys"):
        config.max_retrys = 5  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        RetryConfig(3)  # type: ignore[misc]
    assert dataclasses.replace(config, max_retries=0).max_attempts == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", 10**400),
        ("base_delay", 10**400),
        ("base_delay", 1e300),
        ("max_delay", 1e300),
        ("jitter_range", 1e12),
        ("max_retry_after", 10**30),
        ("retry_exceptions", "ConnectionError"),
        ("retry_exceptions", (ValueError, 3)),
        ("exponential_base", 10**400),
    ],
)
def test_values_no_wait_can_honour_are_refused_on_construction_and_assignment(field, value):
    with pytest.raises(ValueError, match=rf"RetryConfig\.{field}"):
        RetryConfig(**{field: value})
    config = RetryConfig()
    with pytest.raises(ValueError, match=rf"RetryConfig\.{field}"):
        setattr(config, field, value)


def test_a_copy_is_a_snapshot():
    config = RetryConfig()
    snapshot = config.copy()
    config.max_retries = 0
    assert snapshot.max_retries == 3


def test_delays_without_jitter_are_exact_and_capped():
    rng = random.Random(0)
    assert [NO_JITTER.delay(n, rng) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    config = RetryConfig(base_delay=0.1, exponential_base=3.0, max_delay=2.0, jitter_range=0.0)
    assert [config.delay(n, rng) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9, 2.0])
    # A huge attempt number must not overflow.
    assert NO_JITTER.delay(100_000, rng) == 10.0


def test_delays_with_a_seeded_rng_are_repeatable_and_exact():
    config = RetryConfig()
    got = [config.delay(n, random.Random(42)) for n in (1, 2, 3)]
    again = [config.delay(n, random.Random(42)) for n in (1, 2, 3)]
    assert got == again
    expected_jitter = random.Random(7)
    rng = random.Random(7)
    for n, base in zip(range(1, 7), (0.5, 1.0, 2.0, 4.0, 8.0, 10.0), strict=True):
        assert config.delay(n, rng) == base + expected_jitter.uniform(0.0, 0.25)


def test_jitter_may_push_past_max_delay_but_no_further_than_jitter_range():
    config = RetryConfig(max_delay=1.0, jitter_range=0.25)
    rng = random.Random(3)
    delays = [config.delay(10, rng) for _ in range(200)]
    assert all(1.0 <= d <= 1.25 for d in delays)
    assert max(delays) > 1.2  # the jitter really is on top of the cap


@given(
    attempt=st.integers(min_value=1, max_value=2000),
    base=st.floats(min_value=0, max_value=100),
    factor=st.floats(min_value=1, max_value=10),
    jitter=st.floats(min_value=0, max_value=5),
    cap=st.floats(min_value=0, max_value=1000),
    seed=st.integers(0, 2**32),
)
def test_delay_is_always_between_backoff_and_cap_plus_jitter(
    attempt, base, factor, jitter, cap, seed
):
    config = RetryConfig(
        base_delay=base, exponential_base=factor, jitter_range=jitter, max_delay=cap
    )
    delay = config.delay(attempt, random.Random(seed))
    assert math.isfinite(delay)
    assert config.backoff(attempt) <= delay <= min(cap, config.backoff(attempt)) + jitter


@pytest.mark.parametrize("attempt", [0, -1, True, 1.0])
def test_delay_rejects_bad_attempt_numbers(attempt):
    with pytest.raises(ValueError, match="attempt"):
        NO_JITTER.delay(attempt, random.Random())


def test_retry_after_dominates_the_backoff_and_is_capped():
    rng = random.Random(0)
    assert NO_JITTER.delay_for(1, rng, retry_after=3.0) == 3.0
    assert NO_JITTER.delay_for(4, rng, retry_after=1.0) == 4.0  # a shorter one never shortens
    assert NO_JITTER.delay_for(1, rng, retry_after=3600.0) == 300.0
    capped = RetryConfig(jitter_range=0.0, max_retry_after=20.0)
    assert capped.delay_for(1, rng, retry_after=3600.0) == 20.0
    for ignored in (None, math.nan, -5.0, 0.0):
        assert NO_JITTER.delay_for(2, rng, retry_after=ignored) == 1.0


# --------------------------------------------------------------------------- may_resend


@pytest.mark.parametrize(
    ("method", "headers", "sent", "expected"),
    [
        ("GET", None, True, True),
        ("get", {}, True, True),
        ("HEAD", None, True, True),
        ("OPTIONS", None, True, True),
        ("PUT", None, True, True),
        ("DELETE", None, True, True),
        ("TRACE", None, True, True),
        ("POST", None, True, False),
        ("POST", {"Content-Type": "application/json"}, True, False),
        ("PATCH", {}, True, False),
        ("POST", {"Idempotency-Key": "3f2a"}, True, True),
        ("POST", {"idempotency-key": "3f2a"}, True, True),
        ("PATCH", {"IDEMPOTENCY-KEY": b"3f2a"}, True, True),
        ("POST", requests.structures.CaseInsensitiveDict({"idempotency-KEY": "k"}), True, True),
        ("POST", {"Idempotency-Key": ""}, True, False),
        ("POST", {"Idempotency-Key": "  "}, True, False),
        ("POST", None, False, True),
        ("PATCH", {}, False, True),
    ],
)
def test_may_resend(method, headers, sent, expected):
    assert may_resend(method, headers, sent=sent) is expected


def test_idempotent_methods_are_rfc_9110s():
    assert frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}) == IDEMPOTENT_METHODS


# --------------------------------------------------------------------------- RetryBudget


def test_budget_spends_and_refunds_like_botocore_standard_mode():
    budget = RetryBudget()
    assert (budget.capacity, budget.available) == (500, 500)
    assert budget.try_spend(after_timeout=False)
    assert budget.available == 495
    assert budget.try_spend(after_timeout=True)
    assert budget.available == 485
    budget.refund_success()  # a call that was not retried gives back 1
    assert budget.available == 486
    budget.refund_success(last_cost=10)  # a retried call gives back its last retry's cost
    assert budget.available == 496
    budget.refund_success(last_cost=10)  # never beyond capacity
    assert budget.available == 500


def test_budget_refuses_what_it_cannot_pay_and_takes_nothing():
    budget = RetryBudget(capacity=12)
    assert budget.try_spend(after_timeout=True)  # 2 left
    assert not budget.try_spend(after_timeout=False)
    assert budget.available == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("capacity", -1),
        ("capacity", True),
        ("retry_cost", 1.5),
        ("timeout_retry_cost", -10),
        ("success_refund", None),
    ],
)
def test_budget_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RetryBudget(**{field: value})


def test_budget_is_thread_safe():
    budget = RetryBudget(capacity=5000, retry_cost=5)
    granted = [0] * 8
    start = threading.Barrier(8)

    def spender(i):
        start.wait()
        for _ in range(500):
            if budget.try_spend(after_timeout=False):
                granted[i] += 1

    threads = [threading.Thread(target=spender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 1000 and budget.available == 0

    def refunder():
        start.wait()
        for _ in range(300):
            budget.refund_success()

    threads = [threading.Thread(target=refunder) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.available == 2400
