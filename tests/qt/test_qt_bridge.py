"""SignalBridge: worker-thread signals reach the GUI thread, coalesced, and stop on close."""

from __future__ import annotations

import threading
import time

import pytest
from qt_helpers import FakeManager, in_thread

from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.machine import ConnectionState as S
from connmgr.qt.bridge import (
    RequestFailedEvent,
    RequestFinishedEvent,
    RetryScheduledEvent,
    SignalBridge,
    StateChangedEvent,
)


def state_kwargs(old: S, new: S, origin: str = "http://a:80") -> dict:
    return {"origin": origin, "old": old, "new": new, "reason": "test", "snapshot": None}


def retry_kwargs(request_id: int, attempt: int = 2, delay: float = 1.0) -> dict:
    return {
        "request_id": request_id,
        "attempt": attempt,
        "max_attempts": 4,
        "delay": delay,
        "error": None,
        "url": "http://a/x",
        "operation": "default",
        "cancel": CancelToken(),
    }


def test_worker_thread_signals_are_delivered_on_the_gui_thread(qtbot, fake_manager, qt_messages):
    bridge = SignalBridge(fake_manager)
    got: list[tuple[StateChangedEvent, int]] = []
    bridge.state_changed.connect(lambda e: got.append((e, threading.get_ident())))

    in_thread(signals.state_changed.send, fake_manager, **state_kwargs(S.ONLINE, S.DEGRADED))
    assert got == []  # nothing runs on the worker: it only posted
    qtbot.waitUntil(lambda: len(got) == 1, timeout=1000)
    event, thread_id = got[0]
    assert thread_id == threading.main_thread().ident
    assert (event.old, event.new, event.origin) == (S.ONLINE, S.DEGRADED, "http://a:80")
    bridge.close()
    assert qt_messages.warnings() == []


def test_a_burst_is_coalesced_into_one_flush_per_event_loop_turn(qtbot, fake_manager):
    bridge = SignalBridge(fake_manager)
    states: list[StateChangedEvent] = []
    retries: list[RetryScheduledEvent] = []
    flushes: list[int] = []
    bridge.state_changed.connect(states.append)
    bridge.retry_scheduled.connect(retries.append)
    bridge.flushed.connect(lambda: flushes.append(1))
    cycle = [S.DEGRADED, S.BACKOFF, S.RATE_LIMITED, S.ONLINE]

    def burst(worker: int) -> None:
        old = S.ONLINE
        for i in range(250):
            new = cycle[i % 4]
            signals.state_changed.send(
                fake_manager, **state_kwargs(old, new, f"http://o{i % 2}:80")
            )
            signals.retry_scheduled.send(fake_manager, **retry_kwargs(worker, attempt=i))
            old = new

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    qtbot.waitUntil(lambda: bool(flushes), timeout=1000)
    qtbot.wait(20)  # a second flush would have been posted by now
    assert len(flushes) == 1
    assert sorted(e.origin for e in states) == ["http://o0:80", "http://o1:80"]
    assert sorted(e.request_id for e in retries) == [0, 1, 2, 3]
    assert all(e.attempt == 249 for e in retries)  # the latest of each request
    assert bridge.received == 2000
    assert bridge.coalesced == 2000 - 6
    bridge.close()


def test_coalesced_state_change_reports_the_net_change(qtbot, fake_manager):
    bridge = SignalBridge(fake_manager)
    states: list[StateChangedEvent] = []
    bridge.state_changed.connect(states.append)
    for old, new in [(S.ONLINE, S.DEGRADED), (S.DEGRADED, S.BACKOFF), (S.BACKOFF, S.OFFLINE)]:
        signals.state_changed.send(fake_manager, **state_kwargs(old, new))
    qtbot.waitUntil(lambda: bool(states), timeout=1000)
    assert [(e.old, e.new) for e in states] == [(S.ONLINE, S.OFFLINE)]
    bridge.close()


def test_sending_never_waits_for_the_gui(qtbot, fake_manager):
    bridge = SignalBridge(fake_manager)
    # The GUI thread is busy (this test) and runs no event loop while workers send.
    started = time.perf_counter()
    in_thread(
        lambda: [
            signals.state_changed.send(fake_manager, **state_kwargs(S.ONLINE, S.DEGRADED))
            for _ in range(2000)
        ]
    )
    assert time.perf_counter() - started < 0.5
    bridge.close()


def test_ends_of_retried_requests_are_never_dropped_others_are_bounded(qtbot, fake_manager):
    bridge = SignalBridge(fake_manager, max_pending_ends=10)
    finished: list[RequestFinishedEvent] = []
    failed: list[RequestFailedEvent] = []
    bridge.request_finished.connect(finished.append)
    bridge.request_failed.connect(failed.append)

    def work() -> None:
        signals.retry_scheduled.send(fake_manager, **retry_kwargs(7))
        for i in range(100, 200):
            signals.request_finished.send(fake_manager, request_id=i, outcome="success")
        signals.request_failed.send(fake_manager, request_id=7, error=None, url="u", operation="o")
        signals.request_finished.send(fake_manager, request_id=7, outcome="transient")

    in_thread(work)
    qtbot.waitUntil(lambda: any(e.request_id == 7 for e in finished), timeout=1000)
    untracked = [e.request_id for e in finished if e.request_id != 7]
    assert untracked == list(range(190, 200))  # the newest ten, in order
    assert [e.request_id for e in failed] == [7]
    assert bridge.dropped == 90
    bridge.close()


def test_ends_keep_their_order_failed_before_finished(qtbot, fake_manager):
    bridge = SignalBridge(fake_manager)
    order: list[str] = []
    bridge.request_failed.connect(lambda e: order.append(f"failed {e.request_id}"))
    bridge.request_finished.connect(lambda e: order.append(f"finished {e.request_id}"))
    bridge.retry_scheduled.connect(lambda e: order.append(f"retry {e.request_id}"))

    def work() -> None:
        signals.retry_scheduled.send(fake_manager, **retry_kwargs(1))
        signals.request_failed.send(fake_manager, request_id=1, error=None, url="u", operation="o")
        signals.request_finished.send(fake_manager, request_id=1, outcome="transient")

    in_thread(work)
    qtbot.waitUntil(lambda: len(order) == 3, timeout=1000)
    assert order == ["retry 1", "failed 1", "finished 1"]
    bridge.close()


def test_other_senders_are_ignored(qtbot, fake_manager, clock):
    bridge = SignalBridge(fake_manager)
    states: list[StateChangedEvent] = []
    bridge.state_changed.connect(states.append)
    other = FakeManager(clock)
    in_thread(signals.state_changed.send, other, **state_kwargs(S.ONLINE, S.OFFLINE))
    qtbot.wait(30)
    assert states == []
    bridge.close()


def test_retry_due_time_is_taken_on_the_managers_clock(qtbot, fake_manager, clock):
    bridge = SignalBridge(fake_manager)
    retries: list[RetryScheduledEvent] = []
    bridge.retry_scheduled.connect(retries.append)
    in_thread(signals.retry_scheduled.send, fake_manager, **retry_kwargs(3, delay=2.5))
    clock.advance(10)  # the GUI gets to it late: the due time does not move
    qtbot.waitUntil(lambda: bool(retries), timeout=1000)
    assert retries[0].scheduled_at == 1000.0
    assert retries[0].due_at == 1002.5


def test_close_disconnects_and_nothing_is_emitted_after(qtbot, fake_manager):
    before = len(list(signals.state_changed.receivers_for(fake_manager)))
    bridge = SignalBridge(fake_manager)
    assert len(list(signals.state_changed.receivers_for(fake_manager))) == before + 1
    got: list[object] = []
    bridge.state_changed.connect(got.append)
    signals.state_changed.send(fake_manager, **state_kwargs(S.ONLINE, S.OFFLINE))
    bridge.close()
    bridge.close()  # idempotent
    assert bridge.closed
    assert len(list(signals.state_changed.receivers_for(fake_manager))) == before
    signals.state_changed.send(fake_manager, **state_kwargs(S.OFFLINE, S.ONLINE))
    qtbot.wait(30)
    assert got == []  # the pending flush was dropped too


def test_destroying_the_bridge_disconnects_it(qtbot, fake_manager):
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    before = len(list(signals.retry_scheduled.receivers_for(fake_manager)))
    bridge = SignalBridge(fake_manager, parent=parent)
    assert len(list(signals.retry_scheduled.receivers_for(fake_manager))) == before + 1
    signals.retry_scheduled.send(fake_manager, **retry_kwargs(1))  # a flush is pending
    with qtbot.waitSignal(bridge.destroyed, timeout=1000):
        parent.deleteLater()
    del parent
    assert len(list(signals.retry_scheduled.receivers_for(fake_manager))) == before
    # Workers sending after the destruction do nothing (and do not crash).
    in_thread(signals.retry_scheduled.send, fake_manager, **retry_kwargs(2))
    qtbot.wait(20)
    del bridge


def test_a_bridge_with_only_a_monitor_follows_network_changed(qtbot):
    monitor = object()
    bridge = SignalBridge(monitor=monitor)
    got: list[object] = []
    bridge.network_changed.connect(got.append)
    in_thread(signals.network_changed.send, monitor, online=False, status="offline")
    qtbot.waitUntil(lambda: bool(got), timeout=1000)
    assert got[0].online is False  # type: ignore[attr-defined]
    bridge.close()


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_pending_ends_is_validated(qapp, bad):
    with pytest.raises(ValueError, match="max_pending_ends"):
        SignalBridge(object(), max_pending_ends=bad)


def test_the_warning_check_catches_cross_thread_access(qtbot, qt_messages):
    """The qt_messages fixture the other tests rely on does see Qt's complaints."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    in_thread(timer.start, 1000)  # touching a GUI-thread object from a worker
    assert any("another thread" in w for w in qt_messages.warnings())


def test_a_malformed_signal_never_breaks_the_sender(qtbot, fake_manager, caplog):
    bridge = SignalBridge(fake_manager)
    # Missing "old"/"new": the receiver fails, the worker's send() does not.
    in_thread(signals.state_changed.send, fake_manager, origin="http://a:80")
    assert "could not take a on_state signal" in caplog.text
    bridge.close()
