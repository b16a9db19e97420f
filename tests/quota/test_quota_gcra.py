"""The pure pacing rules (connmgr.quota.gcra) and the in-memory store that runs them."""

from __future__ import annotations

import gc
import math
import threading

import pytest

from connmgr.quota import Feedback, MemoryStore, Pace
from connmgr.quota.gcra import Cell, Meter, clear_pause, pause, peek, take
from connmgr.ratelimit import OriginRateLimits

FIVE = Pace(interval=0.2, burst=5, window=1.0)


@pytest.mark.parametrize("rate", [2.0, 50.0, 2000.0, 20000.0])
def test_rate_meter_step_stays_within_one_percent_of_the_exact_decay(rate: float) -> None:
    # Events closer together than the meter's step skip the exp(); compare with the
    # exact decayed count, event by event.
    meter = Meter()
    times = [i / rate for i in range(int(3 * rate))]
    for t in times:
        meter.add(t, tau=1.0)
    now = times[-1] + 0.25 / rate
    count = sum(math.exp(-(now - t)) for t in times)
    exact = count / -math.expm1(-(now - times[0]))
    assert meter.rate(now, tau=1.0) == pytest.approx(exact, rel=0.01)


def test_a_burst_opens_after_an_idle_window_and_is_paid_back() -> None:
    cell = Cell()
    assert [take(cell, FIVE, 100.0, fresh=True) for _ in range(5)] == [0.0] * 5
    # The burst is paid back: the next grant is 5 intervals after the last of them.
    assert take(cell, FIVE, 100.0, fresh=True) == pytest.approx(1.0)
    assert take(cell, FIVE, 100.5, fresh=True) == pytest.approx(0.5)
    # A whole window after the last grant, a new burst may open (no half-open
    # window [t, t + 1) holds more than 5).
    assert [take(cell, FIVE, 101.0, fresh=True) for _ in range(5)] == [0.0] * 5
    assert take(cell, FIVE, 101.0, fresh=True) == pytest.approx(1.0)


def test_a_caller_that_is_not_fresh_never_opens_a_burst() -> None:
    cell = Cell()
    assert take(cell, FIVE, 100.0, fresh=False) == 0.0
    assert take(cell, FIVE, 100.0, fresh=True) == pytest.approx(0.2)


def test_peek_answers_without_taking() -> None:
    cell = Cell()
    assert peek(cell, FIVE, 100.0, fresh=True) == 0.0
    assert peek(cell, FIVE, 100.0, fresh=True) == 0.0
    assert take(cell, FIVE, 100.0, fresh=False) == 0.0
    assert peek(cell, FIVE, 100.0, fresh=False) == pytest.approx(0.2)


def test_a_change_of_pace_keeps_the_debt_in_requests() -> None:
    cell = Cell()
    assert take(cell, FIVE, 100.0, fresh=False) == 0.0  # one request owed: 0.2 s at 5/s
    slower = Pace(interval=1.0, burst=1, window=1.0)
    assert peek(cell, slower, 100.0, fresh=False) == pytest.approx(1.0)  # still one request
    unlimited = Pace(interval=0.0, burst=1, window=1.0)
    assert take(cell, unlimited, 100.0, fresh=False) == 0.0


def test_pauses_only_extend_hold_every_grant_and_block_the_next_burst() -> None:
    cell = Cell()
    pause(cell, 130.0, 100.0)
    pause(cell, 110.0, 100.0)  # shorter: ignored
    pause(cell, 90.0, 100.0)  # in the past: ignored
    assert cell.paused_until == 130.0
    assert take(cell, FIVE, 100.0, fresh=True) == pytest.approx(30.0)
    assert take(cell, FIVE, 130.0, fresh=True) == 0.0
    assert take(cell, FIVE, 130.0, fresh=True) == pytest.approx(0.2)  # no burst after a pause
    clear_pause(cell)
    assert cell.paused_until == -math.inf


def test_the_meter_counts_grants() -> None:
    cell = Cell()
    for i in range(50):
        assert take(cell, FIVE, 100.0 + i * 0.2, fresh=False) == 0.0
    assert cell.sent.rate(109.9, tau=1.0) == pytest.approx(5.0, rel=0.05)


def test_feedback_round_trips_through_clock_times() -> None:
    fb = Feedback(
        plateau=19.0,
        start=14.0,
        hold=5.0,
        since_throttle=2.0,
        since_decrease=math.inf,
        header_rate=1.5,
        header_left=10.0,
    )
    times = fb.to_times(1000.0)
    assert times["t0"] == 998.0 and times["dec"] is None and times["huntil"] == 1010.0
    later = Feedback.from_times(times, 1003.0)
    assert (later.since_throttle, later.since_decrease, later.header_left) == (5.0, math.inf, 7.0)
    assert Feedback.from_times(Feedback().to_times(5.0), 9.0) == Feedback()


def test_memory_store_gives_one_bucket_per_key_shared_by_its_users() -> None:
    store = MemoryStore()
    bucket, other = store.bucket("a"), store.bucket("b")
    assert store.bucket("a") is bucket and other is not bucket
    assert not store.shared and "keys=2" in repr(store)
    assert bucket.publish(None, now=0.0) == 1 and bucket.feedback(now=0.0) == (1, None)
    bucket.pause(5.0, now=100.0)
    assert bucket.peek(FIVE, fresh=True, now=101.0).paused == pytest.approx(4.0)
    bucket.clear_pause(now=101.0)
    assert bucket.take(FIVE, fresh=True, now=101.0).wait == 0.0


def test_memory_bucket_grants_exactly_the_rate_to_many_threads() -> None:
    bucket = MemoryStore().bucket("k")
    granted: list[int] = []
    pace = Pace(interval=1.0, burst=10, window=10.0)

    def grab() -> None:
        granted.extend(1 for _ in range(100) if bucket.take(pace, fresh=True, now=5.0).wait == 0.0)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10  # the burst, and nothing more at one instant


def test_a_key_nobody_holds_any_more_takes_no_memory() -> None:
    store = MemoryStore()
    limits = OriginRateLimits(store=store)
    for n in range(100):
        limits.for_origin(f"http://h{n}.example")
    assert "keys=100" in repr(store)
    for n in range(100):
        assert limits.forget(f"http://h{n}.example")
    gc.collect()
    assert "keys=0" in repr(store)


def test_a_clock_that_steps_back_moves_the_state_with_it() -> None:
    # A wall clock set back an hour must not hold every sharer for that hour.
    cell = Cell()
    assert take(cell, FIVE, 5000.0, fresh=False) == 0.0
    pause(cell, 5010.0, 5000.0)
    assert take(cell, FIVE, 1400.0, fresh=False) == pytest.approx(10.0)  # an hour back
    assert take(cell, FIVE, 1410.0, fresh=False) == 0.0
    assert take(cell, FIVE, 1410.0, fresh=False) == pytest.approx(0.2)
