"""Every plan name, used the way code and tests written for the plan use it.

Nothing here uses connmgr's own spellings (no clock=, no FakeClock): like a
plan user's module, it patches ``socket.create_connection`` and ``time.time``.
Where the plan's tests patched ``time.sleep``, these patch
``connmgr.clock.SystemClock.sleep`` instead: connmgr's waits never call
``time.sleep`` (they are interruptible), so that patch and the imports are
what changes when switching.
"""

from __future__ import annotations

import logging
import time
from unittest.mock import Mock, patch

import pytest
import requests

from connmgr import (
    ErrorMessageFormatter,
    NetworkConfig,
    NetworkError,
    NetworkState,
    RateLimiter,
    RateLimitError,
    RateLimitParser,
    RetryCallback,
    RetryConfig,
    RetryTracker,
    TimeoutConfig,
    TimeoutHTTPAdapter,
    classify_error,
    create_session,
    exponential_backoff,
)

#: What the plan's tests patched as "time.sleep": the decorator's default wait.
SLEEP = "connmgr.clock.SystemClock.sleep"


def http_error(status: int, **headers: str) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    response.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.HTTPError(f"{status} Error", response=response)


# --------------------------------------------------------------------------- timeouts


class TestTimeouts:
    def test_the_default_profile(self):
        config = TimeoutConfig()
        assert (config.connect, config.read, config.total) == (5.0, 30.0, 60.0)

    @pytest.mark.parametrize(
        ("factory", "expected"),
        [
            (TimeoutConfig.for_search, (5.0, 45.0, 90.0)),
            (TimeoutConfig.for_quick_check, (5.0, 10.0, 20.0)),
            (TimeoutConfig.for_download, (5.0, 60.0, 300.0)),
        ],
    )
    def test_the_class_methods(self, factory, expected):
        config = factory()
        assert isinstance(config, TimeoutConfig)
        assert (config.connect, config.read, config.total) == expected

    @pytest.mark.parametrize(
        ("operation", "read"),
        [("default", 30.0), ("search", 45.0), ("quick", 10.0), ("download", 60.0), ("?", 30.0)],
    )
    def test_network_config_get_timeout(self, operation, read):
        assert NetworkConfig.get_timeout(operation).read == read
        assert NetworkConfig.get_timeout() == TimeoutConfig()

    def test_create_session_mounts_the_timeout_adapter(self):
        session = create_session(TimeoutConfig.for_quick_check())
        for prefix in ("http://", "https://"):
            adapter = session.get_adapter(prefix + "example.com/")
            assert isinstance(adapter, TimeoutHTTPAdapter)
            assert adapter.timeout_config == TimeoutConfig.for_quick_check()
        assert isinstance(session, requests.Session)
        assert create_session().get_adapter("https://x/").timeout_config == TimeoutConfig()
        session.close()


# --------------------------------------------------------------------------- retries


class TestRetries:
    def test_the_default_retry_config(self):
        config = RetryConfig()
        assert (config.max_retries, config.base_delay, config.max_delay) == (3, 0.5, 10.0)
        assert (config.jitter_range, config.exponential_base) == (0.25, 2.0)
        assert set(config.retry_status_codes) == {500, 502, 503, 504, 429}
        assert config.retry_exceptions == (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.HTTPError,
        )

    def test_a_config_customised_by_assignment(self):
        config = RetryConfig()
        config.max_retries = 5
        config.base_delay = 0.1
        config.retry_status_codes = {503}
        assert (config.max_retries, config.base_delay, config.retry_status_codes) == (
            5,
            0.1,
            {503},
        )

    def test_bare_decorator_passes_values_through(self):
        @exponential_backoff
        def fetch(a, b=1):
            return a + b

        assert fetch(1, b=2) == 3
        assert fetch.__name__ == "fetch"

    @patch(SLEEP, return_value=False)
    def test_widened_retry_exceptions_retry_anything(self, sleep):
        calls = []
        config = RetryConfig()
        config.retry_exceptions = (Exception,)

        @exponential_backoff(config=config)
        def flaky():
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("not yet")
            return "done"

        assert flaky() == "done"
        assert len(calls) == 3 and sleep.call_count == 2

    @patch(SLEEP, return_value=False)
    def test_exhausted_retries_raise_the_last_exception(self, sleep):
        errors = [requests.ConnectionError(f"refused #{n}") for n in range(4)]

        @exponential_backoff
        def connect():
            raise errors[len(sleep.call_args_list)]

        with pytest.raises(requests.ConnectionError) as info:
            connect()
        assert info.value is errors[3]
        assert sleep.call_count == 3

    @patch(SLEEP, return_value=False)
    def test_the_waits_grow_exponentially_with_jitter(self, sleep):
        @exponential_backoff
        def down():
            raise requests.Timeout("slow")

        with pytest.raises(requests.Timeout):
            down()
        waits = [c.args[0] for c in sleep.call_args_list]
        assert len(waits) == 3
        assert all(base <= w <= base + 0.25 for w, base in zip(waits, (0.5, 1.0, 2.0), strict=True))

    @patch(SLEEP, return_value=False)
    def test_a_builtin_exception_outside_retry_exceptions_is_raised_at_once(self, sleep):
        @exponential_backoff
        def broken():
            raise ConnectionError("the builtin, not requests'")

        with pytest.raises(ConnectionError):
            broken()
        sleep.assert_not_called()

    @patch(SLEEP, return_value=False)
    def test_http_errors_are_retried_by_status(self, sleep):
        calls = {503: 0, 404: 0}

        @exponential_backoff
        def fetch(status):
            calls[status] += 1
            raise http_error(status)

        with pytest.raises(requests.HTTPError):
            fetch(503)
        with pytest.raises(requests.HTTPError):
            fetch(404)
        assert calls == {503: 4, 404: 1}

    @patch(SLEEP, return_value=False)
    def test_a_tracker_counts_retries_and_delays(self, sleep):
        tracker = RetryTracker()
        calls = []

        @exponential_backoff(config=RetryConfig(), tracker=tracker)
        def flaky():
            calls.append(1)
            if len(calls) < 3:
                raise requests.ConnectionError("reset")
            return "ok"

        assert flaky() == "ok"
        assert tracker.attempts == 2
        assert tracker.total_delay == pytest.approx(sum(c.args[0] for c in sleep.call_args_list))

    @patch(SLEEP, return_value=False)
    def test_each_retry_is_logged_as_the_plan_words_it(self, sleep, caplog):
        @exponential_backoff
        def search():
            raise requests.ConnectionError("refused")

        with caplog.at_level(logging.WARNING), pytest.raises(requests.ConnectionError):
            search()
        lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert [line.split(" after ")[0] for line in lines] == [
            "Retry 1/3 for search",
            "Retry 2/3 for search",
            "Retry 3/3 for search",
        ]
        assert all(line.split(" after ")[1][4] == "s" for line in lines)  # "0.62s: ..."

    def test_tracker_starts_at_zero_and_forwards_to_its_callback(self):
        tracker = RetryTracker()
        assert (tracker.attempts, tracker.total_delay) == (0, 0.0)
        callback = Mock()
        tracker = RetryTracker(callback=callback)
        error = requests.ConnectionError("x")
        tracker.on_retry(1, 3, 0.5, error)
        tracker.on_retry(2, 3, 1.0, error)
        assert (tracker.attempts, tracker.total_delay) == (2, 1.5)
        assert callback.on_retry.call_count == 2
        callback.on_retry.assert_called_with(2, 3, 1.0, error)

    @patch(SLEEP, return_value=False)
    def test_a_retry_callback_hears_every_retry(self, sleep):
        heard = []

        class Progress:
            def on_retry(self, attempt, max_attempts, delay, error):
                heard.append((attempt, max_attempts, delay, error))

        assert isinstance(Progress(), RetryCallback)
        calls = []

        @exponential_backoff(tracker=RetryTracker(Progress()))
        def flaky():
            calls.append(1)
            if len(calls) < 2:
                raise http_error(502)
            return "ok"

        assert flaky() == "ok"
        assert len(heard) == 1 and heard[0][2] == sleep.call_args.args[0]
        assert isinstance(heard[0][3], requests.HTTPError)


# --------------------------------------------------------------------------- network state


class TestNetworkState:
    @patch("socket.create_connection")
    def test_online_when_a_connection_opens(self, connect):
        connect.return_value = Mock()
        NetworkState._is_online = None
        assert NetworkState.is_online(force_check=True) is True
        assert NetworkState._is_online is True
        connect.return_value.close.assert_called_once()

    @patch("socket.create_connection", side_effect=OSError("Network is unreachable"))
    def test_offline_when_it_does_not(self, connect):
        NetworkState._is_online = None
        assert NetworkState.is_online() is False
        assert NetworkState._is_online is False
        assert time.time() - NetworkState._last_check < 5

    @patch("socket.create_connection")
    def test_a_recent_answer_is_reused(self, connect):
        NetworkState._is_online = False
        NetworkState._last_check = time.time()
        assert NetworkState.is_online() is False
        connect.assert_not_called()

    @patch("socket.create_connection")
    def test_check_specific_host(self, connect):
        connect.return_value = True
        assert NetworkState.check_specific_host("api.example.com", 443) is True
        connect.side_effect = OSError("refused")
        assert NetworkState.check_specific_host("api.example.com", 443, timeout=1.0) is False


# --------------------------------------------------------------------------- rate limiting


class TestRateLimiting:
    def test_ten_per_second_by_default(self):
        limiter = RateLimiter()
        assert [limiter.acquire() for _ in range(10)] == [True] * 10
        assert limiter.acquire() is False
        assert 0.0 < limiter.get_wait_time() <= 1.0

    def test_no_wait_while_under_the_limit(self):
        limiter = RateLimiter(max_requests=3, time_window=60.0)
        assert limiter.get_wait_time() == 0.0
        limiter.wait_if_needed()
        assert limiter.get_wait_time() == 0.0

    def test_wait_if_needed_blocks_until_the_window_has_room(self):
        limiter = RateLimiter(max_requests=2, time_window=0.05)
        assert limiter.acquire() and limiter.acquire()
        started = time.monotonic()
        limiter.wait_if_needed()
        assert 0.02 <= time.monotonic() - started < 1.0

    def test_parse_headers(self):
        response = requests.Response()
        response.headers.update(
            {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "20", "Retry-After": "3"}
        )
        info = RateLimitParser.parse_headers(response)
        assert info is not None
        assert (info["remaining"], info["reset"], info["retry_after"]) == (7, 20, 3)
        assert RateLimitParser.parse_headers(requests.Response()) is None


# --------------------------------------------------------------------------- errors


class TestErrors:
    def test_classify_connection_and_timeout_errors(self):
        connection = classify_error(requests.ConnectionError("refused"))
        timeout = classify_error(requests.Timeout("slow"))
        assert isinstance(connection, NetworkError) and isinstance(timeout, NetworkError)
        assert isinstance(connection, requests.ConnectionError)
        assert isinstance(timeout, requests.Timeout)
        assert type(connection) is not type(timeout)

    def test_classify_a_429_with_retry_after(self):
        error = classify_error(http_error(429, Retry_After="30"))
        assert isinstance(error, RateLimitError)
        assert error.retry_after == 30

    def test_classify_other_http_errors_and_anything_else(self):
        assert isinstance(classify_error(http_error(500)), NetworkError)
        assert isinstance(classify_error(ValueError("odd")), NetworkError)

    def test_formatted_messages_are_plain_words(self):
        messages = [
            ErrorMessageFormatter.format_error(classify_error(requests.ConnectionError("x"))),
            ErrorMessageFormatter.format_error(classify_error(requests.Timeout("x"))),
            ErrorMessageFormatter.format_error(RateLimitError(retry_after=30)),
            ErrorMessageFormatter.format_error(RateLimitError()),
            ErrorMessageFormatter.format_error(NetworkError("boom")),
        ]
        assert all(isinstance(m, str) and m.endswith(".") for m in messages)
        assert "30 seconds" in messages[2]
        assert len(set(messages)) == 5
        assert "requests." not in "".join(messages)
