"""Adaptive pacing: the pure rule, the meter, server feedback; fake clock, then loopback."""

from __future__ import annotations

import math
import threading
import time

import pytest
import requests
from ratelimit_helpers import START, Waiter, queue_up, until

from connmgr.ratelimit import (
    AdaptivePolicy,
    AdaptiveRate,
    AdaptiveRateLimiter,
    OriginRateLimits,
    RateLimit,
    RateLimitInfo,
    parse_rate_limit_headers,
)
from connmgr.testing import FaultServer
from connmgr.testing.clock import FakeClock


def test_adaptive_rate_cut_recover_hold_probe() -> None:
    policy = AdaptivePolicy()
    a = AdaptiveRate(policy)
    assert a.rate(0.0, 100.0) is None and not a.active
    assert a.on_throttle(10.0, sending_rate=30.0, success_rate=20.0, ceiling=100.0) == 14.0
    assert a.plateau == pytest.approx(19.0)
    assert a.rate(10.0, 100.0) == pytest.approx(14.0)
    assert a.rate(13.0, 100.0) == pytest.approx(19.0 - 5.0 * math.exp(-3.0))
    assert a.rate(17.9, 100.0) == pytest.approx(19.0, abs=0.01)  # holding
    probing = a.rate(18.0 + 10.0, 100.0)
    assert probing == pytest.approx(19.0 * (1 + 0.2 + 0.2**3))
    assert a.rate(18.0 + 200.0, 100.0) is None  # probed up to the ceiling: lifted
    assert not a.active


def test_adaptive_rate_cooldown_and_hold_doubling() -> None:
    a = AdaptiveRate(AdaptivePolicy(hold=5.0, max_hold=12.0, decrease_cooldown=0.5))
    assert a.on_throttle(0.0, sending_rate=20.0, success_rate=20.0, ceiling=50.0) is not None
    assert a.on_throttle(0.3, sending_rate=20.0, success_rate=20.0, ceiling=50.0) is None
    # Throttled again near the same plateau: the server's limit is stable, hold longer.
    a.on_throttle(30.0, sending_rate=20.0, success_rate=20.0, ceiling=50.0)
    assert a.rate(30.0 + 3.0 + 9.9, 50.0) == pytest.approx(19.0, abs=0.01)
    a.on_throttle(60.0, sending_rate=20.0, success_rate=20.0, ceiling=50.0)
    assert a.rate(60.0 + 3.0 + 11.9, 50.0) == pytest.approx(19.0, abs=0.01)  # capped at 12
    assert a.rate(60.0 + 3.0 + 13.0, 50.0) > 19.1
    # A very different plateau means the limit moved: back to the base hold.
    a.on_throttle(90.0, sending_rate=5.0, success_rate=5.0, ceiling=50.0)
    assert a.rate(90.0 + 3.0 + 6.0, 50.0) > 4.75


def test_adaptive_rate_floor_and_success_estimate() -> None:
    a = AdaptiveRate(AdaptivePolicy(min_rate=0.5))
    assert a.on_throttle(0.0, sending_rate=0.2, success_rate=0.0, ceiling=10.0) == 0.5
    b = AdaptiveRate(AdaptivePolicy())
    # Nothing measured yet: the configured ceiling is what throttled.
    assert b.on_throttle(0.0, sending_rate=0.0, success_rate=0.0, ceiling=10.0) == 7.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"beta": 1.0}, "beta"),
        ({"beta": 0}, "beta"),
        ({"min_rate": 0}, "min_rate"),
        ({"margin": 0.5}, "margin"),
        ({"recover_time": -1}, "recover_time"),
        ({"hold": 10.0, "max_hold": 5.0}, "max_hold"),
        ({"max_pause": math.inf}, "max_pause"),
        ({"lift_factor": 1.0}, "lift_factor"),
    ],
)
def test_adaptive_policy_validation(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AdaptivePolicy(**kwargs)  # type: ignore[arg-type]


# -- adaptive pacing: the limiter -----------------------------------------------------


def paced(limiter: AdaptiveRateLimiter, n: int, status: int = 200) -> None:
    for _ in range(n):
        limiter.wait()
        limiter.record_response(status, None)


def test_429_without_headers_cuts_then_recovers_never_above_configured() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, burst=1, clock=clock)
    paced(limiter, 30)  # 3 s at 10/s
    limiter.record_response(429, None)
    assert limiter.rate == pytest.approx(7.0, rel=0.05)
    assert limiter.status().reason == "adaptive"
    rates = []
    for _ in range(60):
        clock.advance(0.5)
        rates.append(limiter.rate)
    assert rates == sorted(rates)  # gradual, monotonic recovery
    assert max(rates) <= 10.0
    assert rates[-1] == 10.0  # lifted once probing reached the configured rate


def test_in_flight_429s_cut_once_per_cooldown() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, burst=1, clock=clock)
    paced(limiter, 30)
    limiter.record_response(429, None)
    after_first = limiter.rate
    for _ in range(3):
        limiter.record_response(429, None)
    assert limiter.rate == after_first
    clock.advance(0.6)
    limiter.record_response(429, None)
    assert limiter.rate < after_first


def test_retry_after_pauses_and_cuts_when_no_quota_is_given() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(429, RateLimitInfo(retry_after=12.0))
    assert limiter.get_wait_time() == pytest.approx(12.0)
    status = limiter.status()
    assert status.reason == "paused" and status.paused_until == pytest.approx(1012.0)
    assert limiter.rate < 10.0


def test_retry_after_is_capped_at_max_pause() -> None:
    limiter = AdaptiveRateLimiter(10, 1.0, clock=FakeClock(START))
    limiter.record_response(429, parse_rate_limit_headers({"Retry-After": "100000"}))
    assert limiter.get_wait_time() == pytest.approx(300.0)


def test_quota_exhausted_on_a_success_pauses_until_reset_without_a_cut() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(200, RateLimitInfo(remaining=0, reset_after=30.0))
    assert limiter.get_wait_time() == pytest.approx(30.0)
    assert limiter.status().reason == "paused"
    clock.advance(30.0)
    assert limiter.rate == 10.0


def test_429_with_quota_headers_and_retry_after_follows_retry_after_only() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    info = RateLimitInfo(remaining=0, reset_after=2.0, retry_after=5.0, dialect="x-ratelimit")
    limiter.record_response(429, info)
    assert limiter.get_wait_time() == pytest.approx(5.0)  # Retry-After takes precedence
    clock.advance(5.0)
    assert limiter.rate == 10.0  # headers explained the 429: no adaptive cut


def test_remaining_quota_is_spread_over_the_reset_window() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(200, RateLimitInfo(remaining=5, reset_after=10.0))
    assert limiter.rate == pytest.approx(0.5)
    assert limiter.status().reason == "headers"
    grants = []
    for _ in range(3):
        limiter.wait()
        grants.append(clock.now())
    assert grants == pytest.approx([START, START + 2.0, START + 4.0])
    clock.set(START + 10.0)
    assert limiter.rate == 10.0  # the window reset: back to the configured rate


def test_waiters_wake_when_the_header_window_ends() -> None:
    clock = FakeClock(START, auto_advance=False)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(200, RateLimitInfo(remaining=1, reset_after=100.0))
    assert limiter.acquire()
    assert limiter.get_wait_time() == pytest.approx(100.0)  # 0.01/s until the reset
    waiter = Waiter(limiter, clock)
    queue_up(limiter, waiter)
    clock.advance(100.0)  # the quota window resets: the 0.01/s pacing is over
    until(lambda: waiter.result is not None)
    assert waiter.result is True and waiter.at == 1100.0


def test_503_with_retry_after_pauses_without_a_cut() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(503, RateLimitInfo(retry_after=3.0))
    assert limiter.get_wait_time() == pytest.approx(3.0)
    clock.advance(3.0)
    assert limiter.rate == 10.0


def test_non_adaptive_limiter_ignores_the_server() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock, adaptive=False)
    limiter.record_response(429, RateLimitInfo(retry_after=30.0))
    limiter.record_response(200, RateLimitInfo(remaining=0, reset_after=30.0))
    assert limiter.rate == 10.0 and limiter.get_wait_time() == 0.0


def test_reset_feedback_forgets_the_server() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(10, 1.0, clock=clock)
    limiter.record_response(429, RateLimitInfo(retry_after=30.0))
    limiter.reset_feedback()
    assert limiter.rate == 10.0 and limiter.paused_until is None


# -- loopback: FaultServer's hidden limit ------------------------------------------------


@pytest.fixture(scope="module")
def server() -> FaultServer:
    with FaultServer() as s:
        yield s  # type: ignore[misc]


def test_loopback_quota_headers_pause_until_the_next_token(server: FaultServer) -> None:
    server.reset()
    url = server.url_for("/limited?rate=1&burst=2&headers=1")
    limiter = OriginRateLimits(clock=FakeClock(START)).for_origin(url)
    with requests.Session() as session:
        for expected_status, expected_remaining in [(200, 1), (200, 0)]:
            r = session.get(url, timeout=5)
            info = parse_rate_limit_headers(r.headers)
            assert info is not None
            assert (r.status_code, info.remaining) == (expected_status, expected_remaining)
            limiter.record_response(r.status_code, info)
        # No token left: the limiter pauses for the time to the next one (about 1 s).
        assert 0.5 < limiter.get_wait_time() <= 1.0
        assert limiter.status().reason == "paused"
        r = session.get(url, timeout=5)  # sent anyway: the server refuses it
        assert r.status_code == 429
        info = parse_rate_limit_headers(r.headers)
        assert info is not None and info.retry_after == 1.0
        limiter.record_response(r.status_code, info)
    assert limiter.get_wait_time() == pytest.approx(1.0)
    # Explained by the headers: no adaptive cut, so still no rate of our own.
    assert limiter.status().rate == math.inf


def test_loopback_bare_429_cuts_the_rate(server: FaultServer) -> None:
    server.reset()
    url = server.url_for("/limited?rate=1&burst=2&headers=0")
    limiter = OriginRateLimits(clock=FakeClock(START)).for_origin(url)
    statuses = []
    with requests.Session() as session:
        for _ in range(3):
            r = session.get(url, timeout=5)
            assert parse_rate_limit_headers(r.headers) is None
            limiter.record_response(r.status_code, None)
            statuses.append(r.status_code)
    assert statuses == [200, 200, 429]
    # No configured rate: the first bare 429 is what engages the adaptive limit.
    assert math.isfinite(limiter.rate) and limiter.status().reason == "adaptive"


def test_loopback_threads_adapt_to_a_hidden_limit(server: FaultServer) -> None:
    # 4 threads, a client allowed 1000/s, a server that allows 200/s (burst 10).
    # A naive client gets nearly all 429s; the adaptive limiter only a few at the start.
    server.reset()
    url = server.url_for("/limited?rate=200&burst=10&headers=0")
    # Every time constant divided by 20, so 0.4 s here plays 8 s of the default policy.
    fast = AdaptivePolicy(
        recover_time=0.05, hold=0.25, decrease_cooldown=0.025, measure_window=0.05
    )
    limits = OriginRateLimits(default=RateLimit(max_requests=1000), adaptive_policy=fast)
    limiter = limits.for_origin(url)
    statuses: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = time.monotonic() + 0.4

    def run() -> None:
        with requests.Session() as session:
            while time.monotonic() < stop:
                if not limiter.wait(timeout=max(0.0, stop - time.monotonic())):
                    return
                r = session.get(url, timeout=5)
                limiter.record_response(r.status_code, parse_rate_limit_headers(r.headers))
                with lock:
                    statuses.append((time.monotonic(), r.status_code))

    pool = [threading.Thread(target=run) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    later = [code for at, code in statuses if at > stop - 0.3]
    share = sum(code == 429 for code in later) / len(later)
    goodput = sum(code == 200 for code in later) / 0.3
    assert share <= 0.05, share
    assert goodput >= 0.7 * 200, goodput


# -- no configured rate: free until the server says otherwise ---------------------------


def test_no_configured_rate_sends_freely_until_a_429_then_lifts_again() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(None, clock=clock)
    for _ in range(50):  # 50 a second, unthrottled
        assert limiter.wait(timeout=0)
        limiter.record_response(200, None)
        clock.advance(0.02)
    assert limiter.rate == math.inf and clock.sleeps == []
    limiter.record_response(429, None)  # a bare 429: the adaptive limit engages
    cut = limiter.rate
    assert math.isfinite(cut) and limiter.status().reason == "adaptive"
    assert cut < 50.0
    assert limiter.acquire() and not limiter.acquire()  # paced from the next grant on
    # Quiet for a long time: probing climbs to lift_factor x the plateau, and the
    # limit is lifted again.
    clock.advance(600.0)
    assert limiter.rate == math.inf and limiter.status().reason == "ready"


def test_adaptive_rate_without_a_ceiling_lifts_at_lift_factor_times_the_plateau() -> None:
    a = AdaptiveRate(AdaptivePolicy(lift_factor=2.0))
    assert a.on_throttle(0.0, sending_rate=30.0, success_rate=20.0, ceiling=math.inf) == 14.0
    settle = 3.0 + 5.0
    # p (1 + x + x^3) reaches 2p at x of about 0.6823, i.e. 34.1 s of probing at 2%/s.
    assert a.rate(settle + 34.0, math.inf) == pytest.approx(19.0 * 1.993, rel=1e-3)
    assert a.rate(settle + 34.2, math.inf) is None and not a.active


def test_a_429_with_nothing_measured_and_no_ceiling_assumes_the_slowest() -> None:
    a = AdaptiveRate(AdaptivePolicy())
    assert a.on_throttle(0.0, sending_rate=0.0, success_rate=0.0, ceiling=math.inf) == 0.5


def test_degraded_halves_the_servers_rate_when_none_is_configured() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(None, clock=clock)
    limiter.record_response(200, RateLimitInfo(remaining=10, reset_after=10.0))
    assert limiter.rate == pytest.approx(1.0) and limiter.status().reason == "headers"
    limiter.set_rate_factor(0.5)
    assert limiter.rate == pytest.approx(0.5)


def test_a_long_retry_after_without_a_rate_fails_a_short_wait_at_once() -> None:
    clock = FakeClock(START)
    limiter = AdaptiveRateLimiter(None, clock=clock, policy=AdaptivePolicy(max_pause=120.0))
    limiter.record_response(429, parse_rate_limit_headers({"Retry-After": "40"}))
    assert limiter.pause_remaining() == pytest.approx(40.0)
    assert limiter.wait(timeout=2.0) is False and clock.sleeps == []
    limiter.record_response(429, parse_rate_limit_headers({"Retry-After": "100000"}))
    assert limiter.pause_remaining() == pytest.approx(120.0)  # remembered up to max_pause
