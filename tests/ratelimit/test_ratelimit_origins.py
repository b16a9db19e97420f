"""Per-origin limits: origin_of, the registry, its default (no limit) and overrides."""

from __future__ import annotations

import math
import threading

import pytest
from ratelimit_helpers import START

from connmgr.ratelimit import (
    AdaptiveRateLimiter,
    OriginRateLimits,
    RateLimit,
    RateLimitInfo,
    origin_of,
)
from connmgr.testing.clock import FakeClock


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://api.example.com/search?q=1", "https://api.example.com:443"),
        ("HTTPS://API.Example.COM", "https://api.example.com:443"),
        ("http://example.com", "http://example.com:80"),
        ("http://example.com:8080/x", "http://example.com:8080"),
        ("https://user:secret@example.com/", "https://example.com:443"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("http://[::1]/x", "http://[::1]:80"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("wss://stream.example.com/feed", "wss://stream.example.com:443"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "url", ["example.com/path", "/relative", "", "http://", "http://user:secret@host:notaport/"]
)
def test_origin_of_rejects_non_absolute_urls_without_leaking(url: str) -> None:
    with pytest.raises(ValueError) as info:
        origin_of(url)
    assert "secret" not in str(info.value)


def test_registry_gives_each_origin_its_own_limiter() -> None:
    limits = OriginRateLimits(
        default=RateLimit(max_requests=10, time_window=1.0),
        overrides={
            "https://api.example.com": RateLimit(max_requests=2, time_window=1.0),
            "slow.example.org": RateLimit(max_requests=1, time_window=5.0),
        },
        clock=FakeClock(START),
    )
    api = limits.for_origin("https://api.example.com:443")
    assert limits.for_origin("https://API.example.com/any/path") is api
    assert api.rate == 2.0
    assert limits.for_origin("http://api.example.com").rate == 10.0  # another origin
    assert limits.for_origin("https://slow.example.org:8443").rate == 0.2  # host override
    assert limits.for_origin("http://slow.example.org").rate == 0.2
    assert len(limits) == 4 and "https://api.example.com" in limits
    assert "http://nowhere.example" not in limits and 42 not in limits
    assert set(limits.status()) == set(limits.origins())


def test_one_origins_pause_never_delays_another() -> None:
    limits = OriginRateLimits(clock=FakeClock(START))
    a = limits.for_origin("https://a.example")
    b = limits.for_origin("https://b.example")
    a.record_response(429, RateLimitInfo(retry_after=60.0))
    assert a.get_wait_time() == pytest.approx(60.0)
    assert b.get_wait_time() == 0.0 and b.acquire()


def test_registry_creation_is_thread_safe() -> None:
    limits = OriginRateLimits()
    seen: list[AdaptiveRateLimiter] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        seen.append(limits.for_origin("https://race.example/x"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 1 and len(limits) == 1


def test_registry_configure_updates_live_limiters() -> None:
    limits = OriginRateLimits(clock=FakeClock(START), adaptive=False)
    limiter = limits.for_origin("https://api.example.com")
    other = limits.for_origin("https://other.example.com")
    assert limiter.rate == math.inf and not limiter.adaptive
    limits.configure("https://api.example.com", RateLimit(max_requests=3, time_window=1.0))
    assert limiter.rate == 3.0 and other.rate == math.inf
    found = limits.limit_for("https://api.example.com/x")
    assert found is not None and found.max_requests == 3
    limits.configure("api.example.com", None)  # a host key: no effect over the origin key
    assert limiter.rate == 3.0
    limits.configure("https://api.example.com", None)
    assert limiter.rate == math.inf and limits.limit_for("https://api.example.com") is None


def test_rate_limit_setting_validation() -> None:
    assert RateLimit().rate == 10.0
    with pytest.raises(ValueError, match="max_requests"):
        RateLimit(max_requests=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(burst=0)
    with pytest.raises(TypeError, match="overrides"):
        OriginRateLimits(overrides={"https://x.example": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="default"):
        OriginRateLimits(default=10)  # type: ignore[arg-type]
