"""The background thread, close() and drain() timeouts, on real time (waits are events)."""

from __future__ import annotations

import threading
import time

import pytest
from outbox_helpers import make_manager

from connmgr import signals
from connmgr.outbox import Outbox, OutboxClosedError


@pytest.fixture
def real_manager(server, probe_target):
    mgr = make_manager(server.url, probe_target.port)
    yield mgr
    mgr.close()


@pytest.fixture
def box(tmp_path, real_manager):
    outbox = Outbox(tmp_path / "outbox.db", real_manager)
    yield outbox
    outbox.close()


def delivered_event(outbox, count=1):
    done = threading.Event()
    seen = []

    def receiver(sender, *, state, **kw):
        if state == "delivered":
            seen.append(1)
            if len(seen) >= count:
                done.set()

    return done, signals.outbox_changed.connected_to(receiver, sender=outbox)


def test_the_thread_delivers_new_submissions(box, server):
    done, connected = delivered_event(box, 3)
    with connected:
        box.start()
        box.start()  # idempotent
        assert box.running
        for i in range(3):
            box.submit("POST", "/echo", json=i)
        assert done.wait(10)
    assert [r.body for r in server.requests] == [b"0", b"1", b"2"]
    box.stop()
    box.stop()
    assert not box.running


def test_the_thread_wakes_when_the_network_returns(box, server, real_manager, probe_target):
    probe_target.close()
    real_manager.monitor.check()
    done, connected = delivered_event(box)
    with connected:
        box.start()
        box.submit("POST", "/echo", json=1)
        assert not done.wait(0.3)
        assert server.hits() == 0
        probe_target.reopen()
        real_manager.monitor.check()  # network_changed: the thread wakes at once
        assert done.wait(10)
    assert server.hits("/echo") == 1


def test_close_interrupts_a_stalled_request_and_keeps_the_entry(
    box, server, real_manager, tmp_path
):
    server.alias("/api/slow", "/stall-headers?seconds=30")
    box.submit("POST", "/api/slow")
    box.start()
    deadline = time.monotonic() + 10
    while server.hits("/api/slow") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    box.close()
    assert time.monotonic() - started < 2.0
    with pytest.raises(OutboxClosedError):
        box.submit("POST", "/a")
    again = Outbox(tmp_path / "outbox.db", real_manager)
    try:
        (entry,) = again.pending()
        assert entry.state == "queued" and entry.attempts == 1
        assert entry.idempotency_key == server.requests[0].headers["Idempotency-Key"]
    finally:
        again.close()


def test_drain_gives_up_on_a_stalled_request_in_time(box, server):
    server.alias("/api/slow", "/stall-headers?seconds=30")
    box.submit("POST", "/api/slow")
    started = time.monotonic()
    assert box.drain(timeout=0.5) is False
    assert time.monotonic() - started < 2.0
    (entry,) = box.pending()
    assert entry.attempts == 1 and "interrupted" in entry.last_error


def test_close_ends_a_drain_in_another_thread(box, server):
    server.alias("/api/slow", "/stall-headers?seconds=30")
    box.submit("POST", "/api/slow")
    result = []
    worker = threading.Thread(target=lambda: result.append(box.drain(timeout=30)))
    worker.start()
    deadline = time.monotonic() + 10
    while server.hits("/api/slow") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    box.close()
    worker.join(5)
    assert not worker.is_alive() and result == [False]


def test_stop_does_not_interrupt_a_drain(box, server):
    server.alias("/api/slow", "/stall-headers?seconds=0.3")
    box.submit("POST", "/api/slow")
    box.start()
    box.stop()
    server.alias("/api/slow", "/status/201")
    ok = box.drain(timeout=5)
    assert ok is True, box.pending()


def test_close_from_a_receiver_during_a_pass(box, server, tmp_path, real_manager):
    def closer(sender, *, state, **kw):
        if state == "sending":
            sender.close()

    box.submit("POST", "/status/201")
    box.submit("POST", "/status/201")
    with signals.outbox_changed.connected_to(closer, sender=box):
        assert box.drain(timeout=5) is False
    assert box.closed
    again = Outbox(tmp_path / "outbox.db", real_manager)
    try:
        # Closed before the request left: nothing was sent, and the pass still wrote
        # down the interrupted attempt before the file closed.
        assert server.hits() == 0
        first, second = again.pending()
        assert first.attempts == 1 and "interrupted" in first.last_error
        assert second.attempts == 0
    finally:
        again.close()


def test_drain_from_a_receiver_is_refused(box, server):
    errors = []

    def drainer(sender, *, state, **kw):
        if state == "sending":
            try:
                sender.drain(timeout=1)
            except RuntimeError as exc:
                errors.append(str(exc))

    box.submit("POST", "/status/201")
    with signals.outbox_changed.connected_to(drainer, sender=box):
        assert box.drain(timeout=5) is True
    assert errors and "inside a delivery" in errors[0]
    assert server.hits() == 1


def test_an_entry_being_sent_cannot_be_discarded(box, server):
    server.alias("/api/slow", "/stall-headers?seconds=0.5")
    entry_id = box.submit("POST", "/api/slow")
    box.start()
    deadline = time.monotonic() + 10
    while server.hits("/api/slow") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    assert box.discard(entry_id) is False  # it may already have reached the server
    assert time.monotonic() - started < 0.2  # and the call did not wait for the send


def test_start_after_stop_delivers_again(box, server):
    box.start()
    box.stop()
    done, connected = delivered_event(box)
    with connected:
        box.start()
        box.submit("POST", "/status/201")
        assert done.wait(10)
