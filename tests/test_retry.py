"""The retry policy, budget, engine and the plan's decorator, on a fake clock."""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import random
import socket
import threading
import time

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st

from connmgr.clock import CancelToken, SystemClock
from connmgr.errors import (
    ConnectionFailedError,
    HTTPStatusError,
    NetworkError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
)
from connmgr.retry import (
    IDEMPOTENT_METHODS,
    CallStats,
    RetryBudget,
    RetryCallback,
    RetryConfig,
    RetryEngine,
    RetryEvent,
    RetryNow,
    RetryTracker,
    StopReason,
    exponential_backoff,
    may_resend,
    resend_check,
)
from connmgr.testing import FakeClock
from connmgr.timeouts import Deadline

NO_JITTER = RetryConfig(jitter_range=0.0)
URL = "http://127.0.0.1:9/api?token=secret123"


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    """What ``response.raise_for_status()`` raises for ``status``."""
    response = requests.Response()
    response.status_code = status
    response.url = URL
    response.headers.update(headers or {})
    response.request = requests.Request("GET", URL).prepare()
    return requests.HTTPError(f"{status} Error for url: {URL}", response=response)


class Failing:
    """An attempt function that raises the given exceptions in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException | None, forever: BaseException | None = None):
        self.failures = list(failures)
        self.forever = forever
        self.calls: list[int] = []

    def __call__(self, attempt: int = 0) -> str:
        self.calls.append(attempt)
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
            return "ok"
        if self.forever is not None:
            raise self.forever
        return "ok"


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
    assert hash(RetryConfig(retry_status_codes=[503])) == hash(
        RetryConfig(retry_status_codes={503})
    )


def test_config_is_frozen_keyword_only_and_normalised():
    config = RetryConfig(base_delay=1, max_delay=4)
    assert isinstance(config.base_delay, float) and config.base_delay == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_retries = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryConfig(3)  # type: ignore[misc]
    assert dataclasses.replace(config, max_retries=0).max_attempts == 1


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


# --------------------------------------------------------------------------- RetryEngine


@pytest.fixture
def clock():
    return FakeClock(start=0.0)


def engine_on(clock, config=NO_JITTER, **kwargs):
    return RetryEngine(config, clock=clock, rng=random.Random(1), **kwargs)


def test_503_is_tried_four_times_with_exact_backoff(clock):
    attempt = Failing(forever=http_error(503))
    stats = CallStats()
    with pytest.raises(ServerError) as info:
        engine_on(clock).call(attempt, stats=stats)
    assert attempt.calls == [1, 2, 3, 4]
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert info.value.attempts == 4
    assert isinstance(info.value.__cause__, requests.HTTPError)
    assert info.value.response is not None and info.value.response.status_code == 503
    assert (stats.attempts, stats.retries, stats.stop_reason) == (4, 3, StopReason.EXHAUSTED)
    assert stats.total_delay == stats.waited == 3.5


def test_404_is_tried_once(clock):
    attempt = Failing(forever=http_error(404))
    with pytest.raises(HTTPStatusError) as info:
        engine_on(clock).call(attempt)
    assert attempt.calls == [1] and clock.sleeps == []
    assert not isinstance(info.value, ServerError) and info.value.attempts == 1


def test_tls_errors_are_never_retried(clock):
    attempt = Failing(forever=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(NetworkError):
        engine_on(clock).call(attempt)
    assert attempt.calls == [1]


def test_transient_then_success_returns_the_result(clock):
    attempt = Failing(
        requests.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow"), None
    )
    stats = CallStats()
    assert engine_on(clock).call(attempt, stats=stats) == "ok"
    assert attempt.calls == [1, 2, 3]
    assert (stats.attempts, stats.stop_reason) == (3, StopReason.SUCCESS)


def test_first_failure_is_handled_as_attempt_one(clock):
    # The caller made attempt 1 itself; the engine goes on from attempt 2.
    attempt = Failing(requests.exceptions.ReadTimeout("slow"), None)
    stats = CallStats()
    result = engine_on(clock).call(
        attempt, first_failure=requests.ConnectionError("refused"), stats=stats
    )
    assert result == "ok"
    assert attempt.calls == [2, 3]
    assert clock.sleeps == [0.5, 1.0]
    assert (stats.attempts, stats.retries, stats.stop_reason) == (3, 2, StopReason.SUCCESS)


def test_a_final_first_failure_raises_at_once(clock):
    attempt = Failing()
    with pytest.raises(HTTPStatusError) as info:
        engine_on(clock).call(attempt, first_failure=http_error(404))
    assert attempt.calls == [] and clock.sleeps == []
    assert info.value.attempts == 1
    with pytest.raises(KeyError):  # not in catch: propagates untouched
        engine_on(clock).call(attempt, first_failure=KeyError("bug"))


def test_retry_after_sets_the_wait_and_is_capped(clock):
    attempt = Failing(
        http_error(503, {"Retry-After": "7"}), http_error(429, {"Retry-After": "86400"}), None
    )
    assert engine_on(clock).call(attempt) == "ok"
    assert clock.sleeps == [7.0, 300.0]


def test_retry_after_as_an_http_date_is_honoured(clock):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    attempt = Failing(http_error(429, {"Retry-After": when}), None)
    engine_on(clock).call(attempt)
    assert 28.0 <= clock.sleeps[0] <= 30.0


def test_a_refusing_may_retry_stops_a_post_like_request(clock):
    attempt = Failing(forever=http_error(503))
    seen = []

    def may_retry(error):
        seen.append(error)
        return may_resend("POST", {}, sent=True)

    stats = CallStats()
    with pytest.raises(ServerError):
        engine_on(clock).call(attempt, may_retry=may_retry, stats=stats)
    assert attempt.calls == [1] and stats.stop_reason is StopReason.UNSAFE
    assert isinstance(seen[0], ServerError)


@pytest.mark.parametrize(
    ("headers", "sent"), [({"Idempotency-Key": "order-17"}, True), ({}, False)]
)
def test_a_post_with_an_idempotency_key_or_never_sent_is_retried(clock, headers, sent):
    attempt = Failing(requests.ConnectionError("refused"), None)
    result = engine_on(clock).call(
        attempt, may_retry=lambda _error: may_resend("POST", headers, sent=sent)
    )
    assert result == "ok" and attempt.calls == [1, 2]


def test_budget_drains_under_sustained_failure_then_retries_stop(clock):
    budget = RetryBudget(capacity=50, retry_cost=5)  # pays for 10 retries
    engine = engine_on(clock, budget=budget)
    attempts_per_call = []
    reasons = []
    for _ in range(6):
        attempt = Failing(forever=http_error(503))
        stats = CallStats()
        with pytest.raises(ServerError):
            engine.call(attempt, stats=stats)
        attempts_per_call.append(len(attempt.calls))
        reasons.append(stats.stop_reason)
    assert attempts_per_call == [4, 4, 4, 2, 1, 1]
    assert reasons[-1] is StopReason.BUDGET and reasons[0] is StopReason.EXHAUSTED
    assert budget.available == 0
    # A plain success refunds 1; a success after a retry refunds that retry's cost.
    assert engine.call(Failing(None)) == "ok"
    assert budget.available == 1
    budget.refund_success(last_cost=9)
    assert engine.call(Failing(requests.ConnectionError("x"), None)) == "ok"
    assert budget.available == 10


def test_timeouts_cost_more_budget(clock):
    budget = RetryBudget(capacity=25)
    attempt = Failing(forever=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RequestTimeoutError):
        engine_on(clock, budget=budget).call(attempt)
    assert attempt.calls == [1, 2, 3]  # two retries at 10 tokens, the third unaffordable
    assert budget.available == 5


def test_a_deadline_too_short_for_the_next_wait_stops_retrying(clock):
    deadline = Deadline(1.2, clock=clock)
    attempt = Failing(forever=http_error(503))
    stats = CallStats()
    with pytest.raises(ServerError) as info:
        engine_on(clock).call(attempt, deadline=deadline, stats=stats)
    # 0.5 s fits in 1.2 s; the next wait (1.0 s) does not fit in the 0.7 s left.
    assert attempt.calls == [1, 2] and clock.sleeps == [0.5]
    assert stats.stop_reason is StopReason.DEADLINE and info.value.attempts == 2


def test_any_object_with_remaining_is_a_deadline(clock):
    class NoTimeLeft:
        def remaining(self):
            return 0.1

    class Unlimited:
        def remaining(self):
            return None

    attempt = Failing(forever=http_error(503))
    with pytest.raises(ServerError):
        engine_on(clock).call(attempt, deadline=NoTimeLeft())
    assert attempt.calls == [1]
    attempt = Failing(http_error(503), None)
    assert engine_on(clock).call(attempt, deadline=Unlimited()) == "ok"


def test_retry_after_longer_than_the_deadline_stops_with_it_on_the_error(clock):
    attempt = Failing(forever=http_error(429, {"Retry-After": "120"}))
    with pytest.raises(RateLimitError) as info:
        engine_on(clock).call(attempt, deadline=Deadline(60.0, clock=clock))
    assert attempt.calls == [1] and info.value.retry_after == 120.0


def test_on_retry_gets_a_frozen_event_before_each_wait(clock):
    events: list[tuple[RetryEvent, float]] = []
    attempt = Failing(http_error(503), requests.ConnectionError("reset"), None)
    engine_on(clock).call(attempt, on_retry=lambda e: events.append((e, clock.now())))
    first, second = (e for e, _ in events)
    assert (first.attempt, first.retry_num, first.max_attempts, first.delay) == (2, 1, 4, 0.5)
    assert isinstance(first.error, ServerError) and isinstance(first.cause, requests.HTTPError)
    assert (first.at, first.elapsed, first.waited_so_far, first.resume_at) == (0.0, 0.0, 0.0, 0.5)
    assert (second.attempt, second.delay, second.waited_so_far) == (3, 1.0, 0.5)
    assert isinstance(second.error, ConnectionFailedError)
    assert [at for _, at in events] == [0.0, 0.5]  # called before the wait, not after
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.delay = 0  # type: ignore[misc]


def test_exceptions_outside_catch_propagate_at_once(clock):
    attempt = Failing(forever=ValueError("bug in the caller"))
    with pytest.raises(ValueError, match="bug"):
        engine_on(clock).call(attempt)
    assert attempt.calls == [1]


def test_a_cancelled_attempt_is_never_retried(clock):
    attempt = Failing(forever=RequestCancelledError("stop"))
    with pytest.raises(RequestCancelledError):
        engine_on(clock).call(attempt)
    assert attempt.calls == [1]


def test_an_already_cancelled_token_sends_nothing(clock):
    token = CancelToken()
    token.cancel()
    attempt = Failing(None)
    with pytest.raises(RequestCancelledError):
        engine_on(clock).call(attempt, cancel=token)
    assert attempt.calls == []


def test_cancel_in_on_retry_raises_without_waiting(clock):
    token = CancelToken()
    attempt = Failing(forever=http_error(503))
    stats = CallStats()
    with pytest.raises(RequestCancelledError) as info:
        engine_on(clock).call(
            attempt, cancel=token, on_retry=lambda _e: token.cancel("user gave up"), stats=stats
        )
    assert attempt.calls == [1] and clock.sleeps == []
    assert isinstance(info.value.__cause__, ServerError) and info.value.attempts == 1
    assert stats.stop_reason is StopReason.CANCELLED


def test_cancel_during_a_real_wait_raises_within_50_ms():
    token = CancelToken()
    engine = RetryEngine(RetryConfig(base_delay=5.0, jitter_range=0.0), clock=SystemClock())
    attempt = Failing(forever=requests.ConnectionError("refused"))
    cancelled_at: list[float] = []

    def cancel_soon(_event):
        def fire():
            cancelled_at.append(time.monotonic())
            token.cancel()

        threading.Timer(0.03, fire).start()

    outcome: list[BaseException] = []

    def worker():
        try:
            engine.call(attempt, cancel=token, on_retry=cancel_soon)
        except BaseException as exc:
            outcome.append(exc)
        outcome_at.append(time.monotonic())

    outcome_at: list[float] = []
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(2.0)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RequestCancelledError)
    assert outcome_at[0] - cancelled_at[0] < 0.05
    assert attempt.calls == [1]


def test_retry_now_from_on_retry_cuts_the_wait(clock):
    hub = RetryNow()
    attempt = Failing(http_error(503), None)
    stats = CallStats()
    result = engine_on(clock, config=RetryConfig(base_delay=30.0)).call(
        attempt, wake=hub, on_retry=lambda _e: hub.retry_now(), stats=stats
    )
    assert result == "ok" and attempt.calls == [1, 2]
    assert clock.now() == 0.0 and stats.waited == 0.0 and stats.total_delay >= 10.0
    assert hub.waiting == 0


def test_retry_now_wakes_a_blocked_wait_from_another_thread():
    clock = FakeClock(start=0.0, auto_advance=False)
    engine = RetryEngine(RetryConfig(base_delay=60.0, jitter_range=0.0), clock=clock)
    attempt = Failing(requests.ConnectionError("refused"), None)
    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(engine.call(attempt)))
    thread.start()
    for _ in range(200):  # wait (≤ 1 s) until the call is waiting
        if engine._waiters.waiting:
            break
        time.sleep(0.005)
    assert engine.retry_now() == 1
    thread.join(1.0)
    assert results == ["ok"] and clock.now() == 0.0
    assert engine.retry_now() == 0  # nothing stays registered or set


def test_a_per_call_event_is_one_shot(clock):
    wake = threading.Event()
    wake.set()  # pressed before any retry was scheduled: must not skip the wait
    attempt = Failing(http_error(503), http_error(503), None)
    presses = iter([False, True])

    def on_retry(_event):
        if next(presses):
            wake.set()

    engine_on(clock).call(attempt, wake=wake, on_retry=on_retry)
    assert clock.now() == 0.5  # the first wait ran in full, the second was cut
    assert attempt.calls == [1, 2, 3] and not wake.is_set()


# --------------------------------------------------------------------------- decorator


def test_decorator_bare_404_once_503_four_times(clock, monkeypatch):
    calls = {"n": 0}

    @exponential_backoff
    def fetch(status):
        calls["n"] += 1
        raise http_error(status)

    # The bare form uses the system clock: patch its wait so the test is instant.
    monkeypatch.setattr(SystemClock, "sleep", lambda self, s, wake=None: False)
    with pytest.raises(requests.HTTPError) as info:
        fetch(404)
    assert calls["n"] == 1 and not isinstance(info.value, NetworkError)
    calls["n"] = 0
    with pytest.raises(requests.HTTPError) as info:
        fetch(503)
    assert calls["n"] == 4
    assert type(info.value) is requests.HTTPError  # the original, not the classified error
    assert fetch.__name__ == "fetch"


@pytest.mark.parametrize(
    "spelling", ["with_args", "positional_config", "direct_call"], ids=lambda s: s
)
def test_decorator_spellings(clock, spelling):
    config = RetryConfig(max_retries=2, jitter_range=0.0)
    attempt = Failing(forever=requests.ConnectionError("refused"))
    if spelling == "with_args":
        wrapped = exponential_backoff(config=config, clock=clock)(attempt)
    elif spelling == "positional_config":
        wrapped = exponential_backoff(config, clock=clock)(attempt)
    else:
        wrapped = exponential_backoff(attempt, config, clock=clock)
    with pytest.raises(requests.ConnectionError) as info:
        wrapped()
    assert len(attempt.calls) == 3 and clock.sleeps == [0.5, 1.0]
    assert type(info.value) is requests.ConnectionError


def test_decorator_never_retries_tls_or_non_network_errors(clock):
    for failure in (requests.exceptions.SSLError("bad cert"), KeyError("x"), ValueError("y")):
        attempt = Failing(forever=failure)
        with pytest.raises(type(failure)) as info:
            exponential_backoff(attempt, clock=clock)()
        assert info.value is failure and len(attempt.calls) == 1


def test_decorator_returns_the_value_and_passes_arguments(clock):
    flaky = Failing(requests.exceptions.ConnectTimeout("t"), None)

    @exponential_backoff(clock=clock)
    def add(a, b, *, c=0):
        flaky()
        return a + b + c

    assert add(2, 3, c=1) == 6 and clock.sleeps == [pytest.approx(0.5, abs=0.25)]


def test_decorator_logs_each_retry_at_warning_redacted(clock, caplog):
    secret = requests.ConnectionError(f"Max retries exceeded with url: {URL}")
    attempt = Failing(secret, secret, None)
    with caplog.at_level(logging.WARNING, logger="connmgr.retry"):
        exponential_backoff(attempt, clock=clock, rng=random.Random(0))()
    records = [r for r in caplog.records if r.name == "connmgr.retry"]
    assert len(records) == 2 and all(r.levelno == logging.WARNING for r in records)
    assert records[0].args and records[0].msg.count("%") >= 4  # %-style, not an f-string
    assert records[0].args[:2] == (1, 3) and records[1].args[:2] == (2, 3)
    assert all("secret123" not in r.getMessage() for r in records)
    assert "ConnectionFailedError" in records[0].getMessage()
    assert "Failing" in records[0].args[2]  # the wrapped function's name


def test_tracker_and_callback_follow_the_retries(clock):
    seen: list[tuple[int, int, float, Exception]] = []

    class Banner:
        def on_retry(self, attempt, max_attempts, delay, error):
            seen.append((attempt, max_attempts, delay, error))

    assert isinstance(Banner(), RetryCallback)
    tracker = RetryTracker(Banner())
    attempt = Failing(http_error(502), http_error(504), None)
    config = RetryConfig(jitter_range=0.0)
    assert exponential_backoff(attempt, config, tracker=tracker, clock=clock)() == "ok"
    assert (tracker.attempts, tracker.total_delay) == (2, 1.5)
    assert [(a, m, d) for a, m, d, _ in seen] == [(2, 4, 0.5), (3, 4, 1.0)]
    assert isinstance(seen[0][3], ServerError) and seen[0][3].user_message
    tracker.reset()
    assert (tracker.attempts, tracker.total_delay, tracker.last_error) == (0, 0.0, None)


def test_decorator_cancel_and_budget(clock):
    token = CancelToken()
    attempt = Failing(forever=http_error(503))
    wrapped = exponential_backoff(attempt, clock=clock, cancel=token)
    token.cancel()
    with pytest.raises(RequestCancelledError):
        wrapped()
    assert attempt.calls == []

    budget = RetryBudget(capacity=5)
    attempt = Failing(forever=http_error(503))
    with pytest.raises(requests.HTTPError):
        exponential_backoff(attempt, clock=clock, budget=budget)()
    assert len(attempt.calls) == 2 and budget.available == 0


@responses.activate
def test_decorator_around_requests_with_a_mocked_server(clock):
    url = "http://api.test/search"
    responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "4"})
    responses.add(responses.GET, url, json={"hits": 3})

    @exponential_backoff(config=NO_JITTER, clock=clock)
    def search():
        r = requests.get(url, timeout=5)
        r.raise_for_status()
        return r.json()

    assert search() == {"hits": 3}
    assert len(responses.calls) == 3 and clock.sleeps == [0.5, 4.0]


# --------------------------------------------------------------------------- loopback


@pytest.fixture(scope="module")
def server():
    from connmgr.testing import FaultServer

    with FaultServer() as running:
        yield running


@pytest.fixture
def session(server):
    server.reset()
    with requests.Session() as s:
        yield s


def get_and_raise(session, url):
    response = session.get(url, timeout=(2, 2))
    response.raise_for_status()
    return response


@pytest.mark.parametrize(("path", "hits"), [("/status/404", 1), ("/status/503", 4)])
def test_loopback_decorator_sends_a_404_once_and_a_503_four_times(server, session, path, hits):
    clock = FakeClock()
    fetch = exponential_backoff(get_and_raise, clock=clock)
    with pytest.raises(requests.HTTPError) as info:
        fetch(session, server.url_for(path))
    assert server.hits(path) == hits
    assert info.value.response is not None
    assert info.value.response.status_code == int(path.rsplit("/", 1)[1])
    assert len(clock.sleeps) == hits - 1


def test_loopback_flaky_route_recovers(server, session):
    clock = FakeClock()
    fetch = exponential_backoff(get_and_raise, NO_JITTER, clock=clock)
    assert fetch(session, server.url_for("/flaky/retry-test?fail=2&status=502")).status_code == 200
    assert server.hits("/flaky/retry-test") == 3 and clock.sleeps == [0.5, 1.0]


def test_loopback_reset_connections_are_retried(server, session):
    clock = FakeClock()
    with pytest.raises(requests.ConnectionError):
        exponential_backoff(get_and_raise, clock=clock)(session, server.url_for("/reset"))
    assert server.hits("/reset") == 4


def test_loopback_retry_after_is_honoured(server, session):
    clock = FakeClock()
    fetch = exponential_backoff(get_and_raise, NO_JITTER, clock=clock)
    with pytest.raises(requests.HTTPError):
        fetch(session, server.url_for("/status/429?retry_after=3"))
    assert clock.sleeps == [3.0, 3.0, 3.0] and server.hits("/status/429") == 4


def test_loopback_tls_failure_is_not_retried():
    from connmgr.testing import FaultServer

    calls = []

    def fetch(url):
        calls.append(url)
        return get_and_raise(requests, url)  # verifies against the system CAs: must fail

    with FaultServer(tls=True) as tls_server, pytest.raises(requests.exceptions.SSLError):
        exponential_backoff(fetch, clock=FakeClock())(tls_server.url_for("/ok"))
    assert len(calls) == 1


def test_loopback_a_failing_post_is_sent_once_and_a_keyed_one_retried(server, session):
    engine = RetryEngine(NO_JITTER, clock=FakeClock())

    def post(headers):
        def attempt(_n):
            r = session.post(server.url_for("/status/503"), data=b"order", headers=headers)
            r.raise_for_status()
            return r

        return attempt

    for headers, sends in (({}, 1), ({"Idempotency-Key": "order-17"}, 4)):
        server.reset()
        with pytest.raises(ServerError):
            engine.call(
                post(headers), may_retry=lambda _e, h=headers: may_resend("POST", h, sent=True)
            )
        assert server.hits("/status/503") == sends


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_loopback_resend_check_retries_a_post_that_never_left(server, session):
    engine = RetryEngine(NO_JITTER, clock=FakeClock())
    refused = f"http://127.0.0.1:{closed_port()}/orders"
    calls = []

    def attempt(n):
        calls.append(n)
        return session.post(refused, data=b"order", timeout=(1, 1))

    with pytest.raises(ConnectionFailedError) as info:
        engine.call(attempt, may_retry=resend_check("post", {}))
    assert calls == [1, 2, 3, 4] and info.value.request_sent is False

    # The same POST reaching a failing server is sent once.
    server.reset()
    with pytest.raises(ServerError) as info:
        engine.call(
            lambda _n: get_and_raise_post(session, server.url_for("/status/503")),
            may_retry=resend_check("POST", {}),
        )
    assert server.hits("/status/503") == 1 and info.value.request_sent is True


def get_and_raise_post(session, url):
    response = session.post(url, data=b"order", timeout=(2, 2))
    response.raise_for_status()
    return response
