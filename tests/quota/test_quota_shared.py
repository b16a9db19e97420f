"""The failure rules every shared store follows, on a store whose engine we switch off and on."""

from __future__ import annotations

import threading
import time

import pytest

from connmgr import signals
from connmgr.quota import Answer, Feedback, MemoryStore, Pace, QuotaStoreError, SharedStore

FIVE = Pace(interval=0.2, burst=5, window=1.0)


class Switchable(SharedStore):
    """A shared store over an in-memory engine that can be made to fail, counting its calls."""

    def __init__(self, **kw: float) -> None:
        super().__init__(**kw)
        self.engine = MemoryStore()
        self.held: dict[str, object] = {}  # the engine keeps a key while someone holds it
        self.down = False
        self.calls = 0
        self.block = threading.Event()
        self.block.set()

    def describe(self) -> str:
        return "switchable"

    def close(self) -> None:
        pass

    def _call(self) -> None:
        self.calls += 1
        self.block.wait(5)
        if self.down:
            raise QuotaStoreError("switched off")

    def raw_take(self, key: str, pace: Pace, *, fresh: bool, take: bool) -> Answer:
        self._call()
        bucket = self.engine.bucket(key)
        self.held[key] = bucket
        op = bucket.take if take else bucket.peek
        return op(pace, fresh=fresh, now=time.monotonic())

    def raw_pause(self, key: str, seconds: float) -> None:
        self._call()
        self.engine.bucket(key).pause(seconds, now=time.monotonic())

    def raw_clear_pause(self, key: str) -> None:
        self._call()

    def raw_sent_rate(self, key: str, pace: Pace) -> float:
        self._call()
        return 0.0

    def raw_feedback(self, key: str) -> tuple[int, Feedback | None]:
        self._call()
        return 0, None

    def raw_publish(self, key: str, feedback: Feedback | None) -> int:
        self._call()
        return 1


def test_while_down_the_store_is_left_alone_then_tried_by_one_caller() -> None:
    store = Switchable(retry_interval=0.1)
    bucket = store.bucket("k")
    store.down = True
    assert bucket.take(FIVE, fresh=True, now=0.0).wait == 0.0  # answered locally
    assert store.calls == 1 and not store.available
    for _ in range(50):
        bucket.take(FIVE, fresh=True, now=0.0)
    assert store.calls == 1  # the circuit is open: not one more try
    time.sleep(0.12)
    store.down = False
    bucket.take(FIVE, fresh=True, now=0.0)
    assert store.calls == 2 and store.available


def test_a_store_that_stays_down_is_tried_ever_more_rarely() -> None:
    store = Switchable(retry_interval=0.05)
    bucket = store.bucket("k")
    store.down = True
    bucket.take(FIVE, fresh=True, now=0.0)
    time.sleep(0.06)
    bucket.take(FIVE, fresh=True, now=0.0)  # the retry fails: the gap doubles to 0.1 s
    assert store.calls == 2
    time.sleep(0.06)
    bucket.take(FIVE, fresh=True, now=0.0)
    assert store.calls == 2
    time.sleep(0.06)
    bucket.take(FIVE, fresh=True, now=0.0)
    assert store.calls == 3


def test_only_one_caller_probes_a_store_that_may_be_back() -> None:
    store = Switchable(retry_interval=0.05)
    bucket = store.bucket("k")
    store.down = True
    bucket.take(FIVE, fresh=True, now=0.0)
    time.sleep(0.06)
    store.block.clear()  # the probe hangs (a slow network)
    prober = threading.Thread(target=bucket.take, args=(FIVE,), kwargs={"fresh": True, "now": 0.0})
    prober.start()
    deadline = time.monotonic() + 2.0
    while store.calls < 2:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    started = time.monotonic()
    for _ in range(20):  # everyone else is answered locally, at once
        bucket.take(FIVE, fresh=True, now=0.0)
    assert time.monotonic() - started < 0.5 and store.calls == 2
    store.block.set()
    prober.join(5)


def test_failure_and_recovery_are_announced_once_each() -> None:
    store = Switchable(retry_interval=0.05)
    failed: list[dict] = []
    recovered: list[dict] = []
    got = threading.Event()

    def on_failed(sender: object, **kw: object) -> None:
        failed.append(kw)

    def on_recovered(sender: object, **kw: object) -> None:
        recovered.append(kw)
        got.set()

    signals.quota_store_failed.connect(on_failed, sender=store)
    signals.quota_store_recovered.connect(on_recovered, sender=store)
    try:
        bucket = store.bucket("k")
        store.down = True
        for _ in range(3):
            bucket.take(FIVE, fresh=True, now=0.0)
            time.sleep(0.06)  # each retry fails again: still one outage
        store.down = False
        time.sleep(0.25)
        bucket.take(FIVE, fresh=True, now=0.0)
        assert got.wait(2.0)
        assert len(failed) == 1 and failed[0]["store"] == "switchable"
        assert failed[0]["error"] == "switched off" and failed[0]["retry_in"] == 0.05
        assert len(recovered) == 1 and recovered[0]["down_for"] > 0.1
    finally:
        signals.quota_store_failed.disconnect(on_failed, sender=store)
        signals.quota_store_recovered.disconnect(on_recovered, sender=store)


def test_a_pause_given_while_down_still_holds_this_process() -> None:
    store = Switchable(retry_interval=60.0)
    bucket = store.bucket("k")
    store.down = True
    bucket.pause(30.0, now=100.0)
    assert bucket.take(FIVE, fresh=True, now=100.0).wait == pytest.approx(30.0)
    assert bucket.publish(None, now=100.0) == 1  # the local version
    assert bucket.feedback(now=100.0) == (1, None)
