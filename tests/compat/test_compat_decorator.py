"""The plan's decorator, tracker and callback (connmgr.compat), on a fake clock and loopback."""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import threading
import time

import pytest
import requests
import responses

from connmgr.clock import CancelToken, SystemClock
from connmgr.compat import RetryCallback, RetryTracker, exponential_backoff
from connmgr.errors import ConnectionFailedError, NetworkError, RequestCancelledError, ServerError
from connmgr.retry import RetryBudget, RetryConfig, RetryEvent, RetryNow
from connmgr.testing import FakeClock

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
    """A function that raises the given exceptions in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException | None, forever: BaseException | None = None):
        self.failures = list(failures)
        self.forever = forever
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
            return "ok"
        if self.forever is not None:
            raise self.forever
        return "ok"


@pytest.fixture
def clock():
    return FakeClock(start=0.0)


def backoff(fn, clock, config=NO_JITTER, **kw):
    return exponential_backoff(fn, config, clock=clock, rng=random.Random(1), **kw)


# --------------------------------------------------------------------------- the loop


def test_503_is_tried_four_times_with_exact_backoff(clock):
    attempt = Failing(forever=http_error(503))
    tracker = RetryTracker()
    with pytest.raises(requests.HTTPError) as info:
        backoff(attempt, clock, tracker=tracker)()
    assert attempt.calls == 4 and clock.sleeps == [0.5, 1.0, 2.0]
    assert type(info.value) is requests.HTTPError  # the original, re-raised
    assert (tracker.attempts, tracker.total_delay) == (3, 3.5)
    assert isinstance(tracker.last_error, ServerError)


def test_404_and_tls_are_tried_once(clock):
    for failure in (http_error(404), requests.exceptions.SSLError("certificate verify failed")):
        attempt = Failing(forever=failure)
        with pytest.raises(type(failure)):
            backoff(attempt, clock)()
        assert attempt.calls == 1
    assert clock.sleeps == []


def test_transient_then_success_returns_the_result(clock):
    attempt = Failing(
        requests.ConnectionError("refused"), requests.exceptions.ReadTimeout("slow"), None
    )
    assert backoff(attempt, clock)() == "ok"
    assert attempt.calls == 3 and clock.sleeps == [0.5, 1.0]


def test_retry_after_sets_the_wait_and_a_long_one_stops_at_once(clock):
    attempt = Failing(http_error(503, {"Retry-After": "7"}), None)
    assert backoff(attempt, clock)() == "ok"
    assert clock.sleeps == [7.0]
    long_pause = Failing(forever=http_error(429, {"Retry-After": "86400"}))
    with pytest.raises(requests.HTTPError):
        backoff(long_pause, clock)()
    assert long_pause.calls == 1 and clock.sleeps == [7.0]


def test_budget_drains_under_sustained_failure_then_retries_stop(clock):
    budget = RetryBudget(capacity=50, retry_cost=5)  # pays for 10 retries
    calls = []
    for _ in range(6):
        attempt = Failing(forever=http_error(503))
        with pytest.raises(requests.HTTPError):
            backoff(attempt, clock, budget=budget)()
        calls.append(attempt.calls)
    assert calls == [4, 4, 4, 2, 1, 1]
    assert budget.available == 0
    assert backoff(Failing(None), clock, budget=budget)() == "ok"
    assert budget.available == 1


def test_the_tracker_gets_a_frozen_event_before_each_wait(clock):
    events: list[tuple[RetryEvent, float]] = []

    class Recorder(RetryTracker):
        def record(self, event: RetryEvent) -> None:
            events.append((event, clock.now()))
            super().record(event)

    attempt = Failing(http_error(503), requests.ConnectionError("reset"), None)
    backoff(attempt, clock, tracker=Recorder())()
    first, second = (e for e, _ in events)
    assert (first.attempt, first.retry_num, first.max_attempts, first.delay) == (2, 1, 4, 0.5)
    assert isinstance(first.error, ServerError) and isinstance(first.cause, requests.HTTPError)
    assert (first.at, first.elapsed, first.waited_so_far, first.resume_at) == (0.0, 0.0, 0.0, 0.5)
    assert (second.attempt, second.delay, second.waited_so_far) == (3, 1.0, 0.5)
    assert isinstance(second.error, ConnectionFailedError)
    assert [at for _, at in events] == [0.0, 0.5]  # called before the wait, not after
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.delay = 0  # type: ignore[misc]


def test_cancel_in_the_tracker_raises_without_waiting(clock):
    token = CancelToken()

    class Canceller(RetryTracker):
        def record(self, event: RetryEvent) -> None:
            token.cancel("user gave up")

    attempt = Failing(forever=http_error(503))
    with pytest.raises(RequestCancelledError) as info:
        backoff(attempt, clock, cancel=token, tracker=Canceller())()
    assert attempt.calls == 1 and clock.sleeps == []
    assert isinstance(info.value.__cause__, ServerError) and info.value.attempts == 1


def test_cancel_during_a_real_wait_raises_within_50_ms():
    token = CancelToken()
    attempt = Failing(forever=requests.ConnectionError("refused"))
    wrapped = exponential_backoff(
        attempt, RetryConfig(base_delay=5.0, jitter_range=0.0), clock=SystemClock(), cancel=token
    )
    outcome: list[BaseException] = []
    ended: list[float] = []

    def worker():
        try:
            wrapped()
        except BaseException as exc:
            outcome.append(exc)
        ended.append(time.monotonic())

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.05)
    cancelled_at = time.monotonic()
    token.cancel()
    thread.join(2.0)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RequestCancelledError)
    assert ended[0] - cancelled_at < 0.05
    assert attempt.calls == 1


def test_retry_now_from_the_tracker_cuts_the_wait(clock):
    hub = RetryNow()

    class Impatient(RetryTracker):
        def record(self, event: RetryEvent) -> None:
            hub.retry_now()

    attempt = Failing(http_error(503), None)
    result = backoff(
        attempt, clock, config=RetryConfig(base_delay=30.0), wake=hub, tracker=Impatient()
    )()
    assert result == "ok" and attempt.calls == 2
    assert clock.now() == 0.0 and hub.waiting == 0


def test_retry_exceptions_widened_by_assignment_retries_other_errors(clock):
    config = RetryConfig(jitter_range=0.0)
    config.retry_exceptions = (Exception,)
    attempt = Failing(ValueError("flaky parser"), None)
    assert exponential_backoff(attempt, config, clock=clock)() == "ok"
    assert attempt.calls == 2
    # Still never a 404: connmgr's status rule holds inside retry_exceptions.
    not_found = Failing(forever=http_error(404))
    with pytest.raises(requests.HTTPError):
        exponential_backoff(not_found, config, clock=clock)()
    assert not_found.calls == 1


def test_an_assignment_applies_to_the_next_call(clock):
    config = RetryConfig(jitter_range=0.0)
    wrapped_attempt = Failing(forever=http_error(503))
    wrapped = exponential_backoff(wrapped_attempt, config, clock=clock)
    config.max_retries = 1
    with pytest.raises(requests.HTTPError):
        wrapped()
    assert wrapped_attempt.calls == 2


# --------------------------------------------------------------------------- spellings


def test_decorator_bare_404_once_503_four_times(clock, monkeypatch):
    calls = {"n": 0}

    @exponential_backoff
    def fetch(status):
        calls["n"] += 1
        raise http_error(status)

    # The bare form waits on the system clock, interruptibly, never with time.sleep.
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("time.sleep used"))
    monkeypatch.setattr(SystemClock, "sleep", lambda self, s, wake=None: slept.append(s))
    with pytest.raises(requests.HTTPError) as info:
        fetch(404)
    assert calls["n"] == 1 and not isinstance(info.value, NetworkError)
    calls["n"] = 0
    with pytest.raises(requests.HTTPError) as info:
        fetch(503)
    assert calls["n"] == 4
    assert len(slept) == 3
    assert all(base <= s <= base + 0.25 for s, base in zip(slept, (0.5, 1.0, 2.0), strict=True))
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
    assert attempt.calls == 3 and clock.sleeps == [0.5, 1.0]
    assert type(info.value) is requests.ConnectionError


def test_decorator_never_retries_tls_or_non_network_errors(clock):
    for failure in (requests.exceptions.SSLError("bad cert"), KeyError("x"), ValueError("y")):
        attempt = Failing(forever=failure)
        with pytest.raises(type(failure)) as info:
            exponential_backoff(attempt, clock=clock)()
        assert info.value is failure and attempt.calls == 1


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
    with caplog.at_level(logging.WARNING, logger="connmgr.compat"):
        exponential_backoff(attempt, clock=clock, rng=random.Random(0))()
    records = [r for r in caplog.records if r.name == "connmgr.compat"]
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
    assert attempt.calls == 0

    budget = RetryBudget(capacity=5)
    attempt = Failing(forever=http_error(503))
    with pytest.raises(requests.HTTPError):
        exponential_backoff(attempt, clock=clock, budget=budget)()
    assert attempt.calls == 2 and budget.available == 0


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


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_loopback_a_post_that_never_left_is_retried_and_one_that_arrived_is_not(server, session):
    refused = f"http://127.0.0.1:{closed_port()}/orders"
    calls = []

    def post_refused():
        calls.append(1)
        return session.post(refused, data=b"order", timeout=(1, 1))

    with pytest.raises(requests.ConnectionError):
        exponential_backoff(post_refused, NO_JITTER, clock=FakeClock())()
    assert len(calls) == 4


# --------------------------------------------------------------------------- the plan's rules


def test_an_http_error_is_weighed_by_status_even_when_not_listed(clock):
    config = RetryConfig(jitter_range=0.0)
    config.retry_exceptions = (requests.ConnectionError,)
    unavailable = Failing(http_error(503), None)
    assert exponential_backoff(unavailable, config, clock=clock)() == "ok"
    assert unavailable.calls == 2
    config.retry_status_codes = {502}
    still_503 = Failing(forever=http_error(503))
    with pytest.raises(requests.HTTPError):
        exponential_backoff(still_503, config, clock=clock)()
    assert still_503.calls == 1


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(1), GeneratorExit()])
def test_interrupts_are_never_retried_even_under_base_exception(clock, interrupt):
    config = RetryConfig()
    config.retry_exceptions = (BaseException,)
    attempt = Failing(forever=interrupt)
    with pytest.raises(type(interrupt)):
        exponential_backoff(attempt, config, clock=clock)()
    assert attempt.calls == 1 and clock.sleeps == []


def test_widened_retry_exceptions_still_never_retry_tls_and_raise_the_last(clock):
    config = RetryConfig(jitter_range=0.0)
    config.retry_exceptions = (Exception,)
    tls = Failing(forever=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(requests.exceptions.SSLError):
        exponential_backoff(tls, config, clock=clock)()
    assert tls.calls == 1
    errors = [RuntimeError(f"#{n}") for n in range(4)]
    flaky = Failing(*errors)
    with pytest.raises(RuntimeError) as info:
        exponential_backoff(flaky, config, clock=clock)()
    assert info.value is errors[-1] and flaky.calls == 4


def test_the_plain_spelling_waits_on_the_system_clock_and_still_tracks(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("time.sleep used"))
    monkeypatch.setattr(SystemClock, "sleep", lambda self, s, wake=None: slept.append(s))
    tracker = RetryTracker()
    attempt = Failing(requests.ConnectionError("a"), requests.ConnectionError("b"), None)
    assert exponential_backoff(attempt, NO_JITTER, tracker=tracker)() == "ok"
    assert slept == [0.5, 1.0]
    assert (tracker.attempts, tracker.total_delay) == (2, 1.5)


def test_any_of_clock_cancel_or_wake_makes_the_wait_interruptible(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("time.sleep used"))
    for option in ({"cancel": CancelToken()}, {"wake": RetryNow()}, {"clock": FakeClock()}):
        monkeypatch.setattr(SystemClock, "sleep", lambda self, s, wake=None: False)
        attempt = Failing(requests.ConnectionError("a"), None)
        assert exponential_backoff(attempt, NO_JITTER, **option)() == "ok"


def test_the_log_names_the_function_as_the_plan_did(clock, caplog):
    def search_tracks():
        raise requests.ConnectionError("refused")

    with (
        caplog.at_level(logging.WARNING, logger="connmgr.compat"),
        pytest.raises(requests.ConnectionError),
    ):
        exponential_backoff(search_tracks, NO_JITTER, clock=clock)()
    messages = [r.getMessage() for r in caplog.records if r.name == "connmgr.compat"]
    assert messages[0].startswith("Retry 1/3 for search_tracks after 0.50s: ")
    assert messages[2].startswith("Retry 3/3 for search_tracks after 2.00s: ")


def test_star_import_gives_every_plan_name():
    namespace: dict[str, object] = {}
    exec("from connmgr.compat import *", namespace)
    plan_names = {
        "TimeoutConfig", "NetworkConfig", "TimeoutHTTPAdapter", "create_session", "RetryConfig",
        "exponential_backoff", "RetryCallback", "RetryTracker", "NetworkState", "RateLimiter",
        "RateLimitParser", "NetworkError", "RateLimitError", "classify_error",
        "ErrorMessageFormatter",
    }  # fmt: skip
    assert plan_names <= set(namespace)
    # The plan's ConnectionError and TimeoutError shadowed the builtins; connmgr's do not.
    assert "ConnectionError" not in namespace and "TimeoutError" not in namespace


def post_and_raise(session, url, headers=None):
    response = session.post(url, data=b"order", headers=headers or {}, timeout=(1, 0.2))
    response.raise_for_status()
    return response


def test_loopback_a_post_that_arrived_is_sent_once(server, session):
    clock = FakeClock()
    fetch = exponential_backoff(post_and_raise, clock=clock)
    with pytest.raises(requests.HTTPError):
        fetch(session, server.url_for("/status/503"))
    assert server.hits("/status/503") == 1 and clock.sleeps == []
    with pytest.raises(requests.ReadTimeout):
        fetch(session, server.url_for("/stall-headers?seconds=2"))
    assert server.hits("/stall-headers") == 1


def test_loopback_a_post_with_an_idempotency_key_is_retried(server, session):
    clock = FakeClock()
    fetch = exponential_backoff(post_and_raise, NO_JITTER, clock=clock)
    with pytest.raises(requests.HTTPError):
        fetch(session, server.url_for("/status/503"), {"Idempotency-Key": "order-17"})
    assert server.hits("/status/503") == 4 and clock.sleeps == [0.5, 1.0, 2.0]


def test_an_exception_without_a_request_leaves_the_method_to_the_caller(clock):
    attempt = Failing(requests.ConnectionError("no request attached"), None)
    assert exponential_backoff(attempt, clock=clock)() == "ok"
    assert attempt.calls == 2


def test_any_object_with_on_retry_is_a_tracker_and_may_come_third(clock, monkeypatch):
    from unittest.mock import Mock

    monkeypatch.setattr(time, "sleep", lambda s: None)
    tracker = Mock(spec=["on_retry"])
    attempt = Failing(http_error(503), None)
    assert exponential_backoff(attempt, NO_JITTER, tracker)() == "ok"
    tracker.on_retry.assert_called_once()
    args = tracker.on_retry.call_args.args
    assert args[:3] == (2, 4, 0.5) and isinstance(args[3], ServerError)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"config": {"max_retries": 1}}, "config"), ({"tracker": object()}, "tracker")],
)
def test_wrong_types_are_refused_when_decorating(kwargs, named):
    with pytest.raises(TypeError, match=named):
        exponential_backoff(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="func"):
        exponential_backoff(42)  # type: ignore[call-overload]
