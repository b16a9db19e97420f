"""RedisStore against a real redis-server: the Lua rules equal the Python ones, sharing, failure."""

from __future__ import annotations

import logging
import math
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connmgr import signals
from connmgr.quota import Feedback, Pace, RedisStore
from connmgr.quota.gcra import Cell, peek, take
from connmgr.quota.redis_store import TAKE_SCRIPT
from connmgr.ratelimit import OriginRateLimits, RateLimit, RateLimitInfo

FIVE = Pace(interval=0.2, burst=5, window=1.0)
_CLOCK_LINE = "local now = clock()"


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    s = RedisStore(redis_url, prefix="test:")
    yield s
    s.close()


# -- the script is the Python rules, on an injected clock ----------------------------

_PACES = st.builds(
    Pace,
    interval=st.sampled_from([0.0, 0.1, 0.2, 1.0, 2.5]),
    burst=st.integers(1, 6),
    window=st.sampled_from([0.5, 1.0, 3.0]),
)
_STEPS = st.lists(
    st.tuples(
        # time since the previous step; now and then the clock steps back
        st.one_of(st.floats(0.0, 1.5), st.floats(-3.0, 0.0)),
        _PACES,
        st.booleans(),  # fresh
        st.booleans(),  # take (else peek)
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_the_lua_script_decides_exactly_as_the_python_rules(redis_url: str, steps: list) -> None:
    import redis

    assert TAKE_SCRIPT.count(_CLOCK_LINE) == 1
    # The real script, with its clock read from an argument instead of TIME.
    script_text = TAKE_SCRIPT.replace(_CLOCK_LINE, "local now = tonumber(ARGV[8])")
    client = redis.Redis.from_url(redis_url)
    script = client.register_script(script_text)
    client.delete("equiv")
    cell, now = Cell(), 1_700_000_000.0
    for gap, pace, fresh, taking in steps:
        now += gap
        expected = (take if taking else peek)(cell, pace, now, fresh=fresh)
        args = [repr(pace.interval), str(pace.burst), repr(pace.window), "1.0"]
        args += ["1" if fresh else "0", "1" if taking else "0", "60000", repr(now)]
        wait, paused, _ = script(keys=["equiv"], args=args)
        assert float(wait) == pytest.approx(expected, abs=1e-6)
        assert float(paused) == pytest.approx(max(0.0, cell.paused_until - now), abs=1e-6)
    client.close()


# -- the store -----------------------------------------------------------------------


def test_grants_pace_on_redis_time(store: RedisStore) -> None:
    bucket = store.bucket("https://api.example.com:443")
    answers = [bucket.take(FIVE, fresh=True, now=0.0) for _ in range(6)]
    assert [a.wait for a in answers[:5]] == [0.0] * 5  # the burst
    assert 0.9 < answers[5].wait <= 1.0  # then paid back
    assert bucket.peek(FIVE, fresh=False, now=0.0).wait > 0.9
    assert bucket.sent_rate(FIVE, now=0.0) > 0.0
    assert store.available and store.shared


def test_two_clients_share_one_pause_and_one_feedback(redis_url: str) -> None:
    a, b = RedisStore(redis_url), RedisStore(redis_url)
    try:
        a.bucket("k").pause(30.0, now=0.0)
        answer = b.bucket("k").take(FIVE, fresh=True, now=0.0)
        assert 29.0 < answer.wait <= 30.0 and 29.0 < answer.paused <= 30.0
        b.bucket("k").clear_pause(now=0.0)
        assert a.bucket("k").take(FIVE, fresh=True, now=0.0).wait == 0.0

        version = a.bucket("k").publish(
            Feedback(
                plateau=9.5,
                start=7.0,
                hold=5.0,
                since_throttle=1.0,
                since_decrease=1.0,
                header_rate=2.0,
                header_left=10.0,
            ),
            now=0.0,
        )
        seen, feedback = b.bucket("k").feedback(now=0.0)
        assert seen == version >= 1 and feedback is not None
        assert (feedback.plateau, feedback.start, feedback.hold, feedback.header_rate) == (
            9.5,
            7.0,
            5.0,
            2.0,
        )
        assert 1.0 <= feedback.since_throttle < 2.0 and 9.0 < feedback.header_left <= 10.0
        assert b.bucket("k").take(FIVE, fresh=True, now=0.0).version == version
        assert a.bucket("k").publish(None, now=0.0) == version + 1
        assert b.bucket("k").feedback(now=0.0) == (version + 1, None)
    finally:
        a.close()
        b.close()


def test_registries_in_two_processes_share_a_retry_after(redis_url: str) -> None:
    # Two registries, two clients: what one learns, the other obeys.
    one = OriginRateLimits(store=RedisStore(redis_url))
    two = OriginRateLimits(store=RedisStore(redis_url))
    origin = "https://api.example.com:443"
    one.for_origin(origin).record_response(429, RateLimitInfo(retry_after=20.0))
    assert 19.0 < two.for_origin(origin).pause_remaining() <= 20.0
    assert two.for_origin(origin).wait(timeout=1.0) is False
    one.for_origin(origin).record_response(429, None)  # a bare 429: an adaptive cut, shared
    assert math.isfinite(one.for_origin(origin).rate)
    two.for_origin(origin).get_wait_time()  # the next answer carries the new version
    assert two.for_origin(origin).rate == pytest.approx(one.for_origin(origin).rate, rel=0.01)
    assert two.for_origin(origin).status().reason == "paused"


def test_the_url_password_never_shows(redis_url: str) -> None:
    store = RedisStore(redis_url.replace("redis://", "redis://user:s3cret@"))
    assert "s3cret" not in store.describe() and "s3cret" not in repr(store)
    store.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"socket_timeout": 0}, ValueError, "socket_timeout"),
        ({"socket_timeout": "1"}, TypeError, "socket_timeout"),
        ({"ttl": math.inf}, ValueError, "ttl"),
        ({"retry_interval": 0}, ValueError, "retry_interval"),
        ({"prefix": 3}, TypeError, "prefix"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict, error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=field):
        RedisStore("redis://127.0.0.1:1/0", **kwargs)


# -- a dead Redis never blocks a request -----------------------------------------------


def test_a_dead_redis_falls_back_at_once_logs_once_and_signals(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[dict] = []
    done = threading.Event()

    def failed(sender: object, **kw: object) -> None:
        events.append(kw)
        done.set()

    signals.quota_store_failed.connect(failed)
    try:
        store = RedisStore(dead_redis_url, retry_interval=60.0)
        limits = OriginRateLimits(default=RateLimit(5, 1.0), store=store)
        limiter = limits.for_origin("https://api.example.com")
        caplog.set_level(logging.WARNING, logger="connmgr.quota")
        started = time.monotonic()
        granted = [limiter.acquire() for _ in range(7)]
        took = time.monotonic() - started
        # The configured rate, locally, paced from the first request: no fresh burst.
        assert granted == [True] + [False] * 6
        assert took < 0.5, took
        assert done.wait(2.0)
        assert len(events) == 1 and events[0]["retry_in"] == 60.0
        assert events[0]["store"] == dead_redis_url
        warnings = [r for r in caplog.records if r.name == "connmgr.quota"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert not store.available
    finally:
        signals.quota_store_failed.disconnect(failed)


def test_a_redis_that_comes_back_is_used_again_and_announced(
    start_redis: Callable[[int], subprocess.Popen[bytes]], dead_redis_url: str
) -> None:
    port = int(dead_redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    recovered = threading.Event()

    def on_recovered(sender: object, **kw: object) -> None:
        assert kw["down_for"] > 0
        recovered.set()

    signals.quota_store_recovered.connect(on_recovered)
    store = RedisStore(dead_redis_url, retry_interval=0.05)
    try:
        bucket = store.bucket("k")
        assert bucket.take(FIVE, fresh=True, now=0.0).wait == 0.0  # local
        assert not store.available
        start_redis(port)
        time.sleep(0.06)  # past retry_interval: the next operation tries the store again
        assert bucket.take(FIVE, fresh=True, now=0.0).wait == 0.0  # the store's first grant
        assert store.available
        assert recovered.wait(2.0)
    finally:
        signals.quota_store_recovered.disconnect(on_recovered)
        store.close()


def test_a_redis_that_hangs_costs_one_socket_timeout_then_nothing() -> None:
    # A listener that never answers: connecting works (the kernel's backlog), replies never come.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        store = RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout=0.05, retry_interval=60.0)
        limiter = OriginRateLimits(default=RateLimit(100, 1.0), store=store).for_origin(
            "https://api.example.com"
        )
        started = time.monotonic()
        assert limiter.acquire()
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(50):
            limiter.acquire()
        rest = time.monotonic() - started
        store.close()
    assert not store.available
    assert first < 0.5, first  # the limiter's first answer: one timeout (or two: peek, take)
    assert rest < 0.05, rest  # then local, without touching the socket
