"""SQLiteStore: one quota in a file, shared by connections; a locked or broken file fails over."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from connmgr import signals
from connmgr.quota import Feedback, Pace, SQLiteStore
from connmgr.ratelimit import OriginRateLimits, RateLimit, RateLimitInfo

FIVE = Pace(interval=0.2, burst=5, window=1.0)


def test_grants_pace_on_the_machines_clock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sub" / "quota.sqlite3")  # the directory is created
    bucket = store.bucket("https://api.example.com:443")
    answers = [bucket.take(FIVE, fresh=True, now=0.0) for _ in range(6)]
    assert [a.wait for a in answers[:5]] == [0.0] * 5
    assert 0.9 < answers[5].wait <= 1.0
    assert bucket.sent_rate(FIVE, now=0.0) > 0.0
    assert store.available and store.shared and store.path.exists()
    assert "quota.sqlite3" in repr(store)
    store.close()
    # Closed: the next operation reopens the file, the state is still there.
    assert 0.8 < bucket.peek(FIVE, fresh=True, now=0.0).wait <= 1.0


def test_two_stores_on_one_file_share_the_quota_pause_and_feedback(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "q.db"), SQLiteStore(tmp_path / "q.db")
    for _ in range(3):
        assert a.bucket("k").take(FIVE, fresh=True, now=0.0).wait == 0.0
    for _ in range(2):
        assert b.bucket("k").take(FIVE, fresh=True, now=0.0).wait == 0.0
    assert b.bucket("k").take(FIVE, fresh=True, now=0.0).wait > 0.9  # five in all
    a.bucket("k").pause(30.0, now=0.0)
    assert 29.0 < b.bucket("k").peek(FIVE, fresh=True, now=0.0).paused <= 30.0
    b.bucket("k").clear_pause(now=0.0)
    assert a.bucket("k").peek(FIVE, fresh=True, now=0.0).paused == 0.0
    fb = Feedback(plateau=3.0, start=2.0, hold=5.0, since_throttle=0.0, since_decrease=0.0)
    version = a.bucket("k").publish(fb, now=0.0)
    seen, got = b.bucket("k").feedback(now=0.0)
    assert seen == version and got is not None and got.plateau == 3.0
    assert b.bucket("other").feedback(now=0.0) == (0, None)
    assert b.bucket("other").sent_rate(FIVE, now=0.0) == 0.0


def test_registries_sharing_a_file_share_what_the_server_said(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    one = OriginRateLimits(default=RateLimit(10, 1.0), store=SQLiteStore(path))
    two = OriginRateLimits(default=RateLimit(10, 1.0), store=SQLiteStore(path))
    origin = "https://api.example.com:443"
    one.for_origin(origin).record_response(200, RateLimitInfo(remaining=4, reset_after=8.0))
    two.for_origin(origin).get_wait_time()  # the answer carries the new feedback version
    assert two.for_origin(origin).rate == pytest.approx(0.5)
    assert two.for_origin(origin).status().reason == "headers"
    one.for_origin(origin).reset_feedback()
    two.for_origin(origin).get_wait_time()
    assert two.for_origin(origin).rate == 10.0


def test_a_locked_file_fails_over_after_the_busy_timeout_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.db"
    store = SQLiteStore(path, busy_timeout=0.05, retry_interval=0.2)
    bucket = store.bucket("k")
    assert bucket.take(FIVE, fresh=True, now=100.0).wait == 0.0
    failed, recovered = threading.Event(), threading.Event()

    def on_failed(sender: object, **kw: object) -> None:
        assert sender is store and "locked" in str(kw["error"])
        failed.set()

    def on_recovered(sender: object, **kw: object) -> None:
        assert sender is store and isinstance(kw["down_for"], float)
        recovered.set()

    signals.quota_store_failed.connect(on_failed)
    signals.quota_store_recovered.connect(on_recovered)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        caplog.set_level(logging.INFO, logger="connmgr.quota")
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        answers = [bucket.take(FIVE, fresh=True, now=100.0) for _ in range(3)]
        took = time.monotonic() - started
        # One busy timeout, then the circuit answers locally at once.
        assert took < 0.5, took
        # Local now, paced from the first request (no burst right after losing the store).
        assert answers[0].wait == 0.0 and answers[1].wait == pytest.approx(0.2)
        assert not store.available and failed.wait(2.0)
        holder.execute("ROLLBACK")
        time.sleep(0.25)
        bucket.take(FIVE, fresh=True, now=100.0)
        assert store.available and recovered.wait(2.0)
        levels = [r.levelno for r in caplog.records if r.name == "connmgr.quota"]
        assert levels == [logging.WARNING, logging.INFO]
    finally:
        holder.close()
        signals.quota_store_failed.disconnect(on_failed)
        signals.quota_store_recovered.disconnect(on_recovered)


def test_a_file_that_cannot_be_opened_limits_locally(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the file should be
    store = SQLiteStore(tmp_path / "dir.db", retry_interval=60.0)
    limits = OriginRateLimits(default=RateLimit(2, 1.0), store=store)
    limiter = limits.for_origin("https://api.example.com")
    assert [limiter.acquire() for _ in range(3)] == [True, False, False]
    assert not store.available


def test_a_receiver_that_raises_is_logged_and_the_others_still_hear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "dir.db").mkdir()
    heard = threading.Event()

    def broken(sender: object, **kw: object) -> None:
        raise RuntimeError("receiver bug")

    def fine(sender: object, **kw: object) -> None:
        heard.set()

    store = SQLiteStore(tmp_path / "dir.db")
    signals.quota_store_failed.connect(broken, sender=store)
    signals.quota_store_failed.connect(fine, sender=store)
    try:
        caplog.set_level(logging.ERROR, logger="connmgr.signals")
        store.bucket("k").take(FIVE, fresh=True, now=0.0)
        assert heard.wait(2.0)
        deadline = time.monotonic() + 2.0
        while not any("broken" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        signals.quota_store_failed.disconnect(broken, sender=store)
        signals.quota_store_failed.disconnect(fine, sender=store)


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"busy_timeout": 0}, ValueError, "busy_timeout"),
        ({"busy_timeout": math.nan}, ValueError, "busy_timeout"),
        ({"busy_timeout": "1"}, TypeError, "busy_timeout"),
        ({"retry_interval": 0}, ValueError, "retry_interval"),
        ({"retry_interval": 1000}, ValueError, "retry_interval"),
        ({"retry_interval": True}, TypeError, "retry_interval"),
    ],
)
def test_bad_settings_name_the_field(
    tmp_path: Path, kwargs: dict, error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=field):
        SQLiteStore(tmp_path / "q.db", **kwargs)


def test_bad_paths_and_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path"):
        SQLiteStore(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        SQLiteStore(tmp_path / "q.db").bucket("")
    with pytest.raises(TypeError, match="store"):
        OriginRateLimits(store=object())  # type: ignore[arg-type]


def test_a_shared_store_keeps_its_pause_when_the_local_clock_missed_a_sleep(
    tmp_path: Path,
) -> None:
    # The store's clock (time.time()) counted the sleep; only a monotonic clock needs help.
    bucket = SQLiteStore(tmp_path / "q.db").bucket("k")
    bucket.pause(30.0, now=0.0)
    bucket.shorten_pause(20.0, now=0.0)
    assert 29.0 < bucket.peek(FIVE, fresh=True, now=0.0).paused <= 30.0
