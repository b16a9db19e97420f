"""Registries sharing one store: one quota, one pause, one learned rate (memory store)."""

from __future__ import annotations

import math

import pytest
from ratelimit_helpers import START

from connmgr.quota import MemoryStore
from connmgr.ratelimit import OriginRateLimits, RateLimit, RateLimitInfo
from connmgr.testing.clock import FakeClock

ORIGIN = "https://api.example.com:443"


def two_registries(default: RateLimit | None = None) -> tuple[OriginRateLimits, OriginRateLimits]:
    clock, store = FakeClock(START), MemoryStore()
    return (
        OriginRateLimits(default=default, clock=clock, store=store),
        OriginRateLimits(default=default, clock=clock, store=store),
    )


def test_two_registries_on_one_store_spend_one_quota() -> None:
    one, two = two_registries(RateLimit(2, 1.0))
    assert one.for_origin(ORIGIN).acquire() and two.for_origin(ORIGIN).acquire()
    assert not one.for_origin(ORIGIN).acquire() and not two.for_origin(ORIGIN).acquire()
    assert two.for_origin(ORIGIN).get_wait_time() == pytest.approx(1.0)
    assert one.store is two.store


def test_a_retry_after_seen_by_one_pauses_the_other() -> None:
    one, two = two_registries()
    one.for_origin(ORIGIN).record_response(429, RateLimitInfo(retry_after=40.0))
    assert two.for_origin(ORIGIN).pause_remaining() == pytest.approx(40.0)
    assert two.for_origin(ORIGIN).wait(timeout=2.0) is False
    assert two.for_origin(ORIGIN).status().reason == "paused"
    one.for_origin(ORIGIN).reset_feedback()
    assert two.for_origin(ORIGIN).pause_remaining() == 0.0


def test_an_adaptive_cut_learned_by_one_is_adopted_by_the_other() -> None:
    one, two = two_registries()
    first, second = one.for_origin(ORIGIN), two.for_origin(ORIGIN)
    for _ in range(20):
        assert first.acquire()
        first.record_response(200, None)
    first.record_response(429, None)
    cut = first.rate
    assert math.isfinite(cut)
    assert second.rate == math.inf  # not asked the bucket since
    second.get_wait_time()  # its next answer carries the new feedback version
    assert second.rate == pytest.approx(cut) and second.status().reason == "adaptive"
    first.reset_feedback()
    second.get_wait_time()
    assert second.rate == math.inf


def test_a_header_pace_is_shared_and_ends_for_both() -> None:
    clock, store = FakeClock(START), MemoryStore()
    one = OriginRateLimits(clock=clock, store=store)
    two = OriginRateLimits(clock=clock, store=store)
    one.for_origin(ORIGIN).record_response(200, RateLimitInfo(remaining=3, reset_after=6.0))
    two.for_origin(ORIGIN).get_wait_time()
    assert two.for_origin(ORIGIN).rate == pytest.approx(0.5)
    clock.advance(6.5)
    assert two.for_origin(ORIGIN).rate == math.inf


def test_a_registry_that_ignores_the_server_ignores_shared_feedback_too() -> None:
    clock, store = FakeClock(START), MemoryStore()
    listening = OriginRateLimits(clock=clock, store=store)
    deaf = OriginRateLimits(clock=clock, store=store, adaptive=False)
    listening.for_origin(ORIGIN).record_response(200, RateLimitInfo(remaining=3, reset_after=6.0))
    deaf.for_origin(ORIGIN).get_wait_time()
    assert deaf.for_origin(ORIGIN).rate == math.inf
