"""RequestRunner: requests on a pool, results on the GUI thread, cancel, shutdown, lifetime.

Against a real ConnectionManager and a loopback FaultServer. Includes the
issue's independent checks: a 200 arrives on the GUI thread; cancel_all() ends
a request that waits to retry within 0.2 s, through failed; destroying the
parent mid-request neither crashes nor emits.
"""

from __future__ import annotations

import gc
import random
import threading
import time

import pytest

from connmgr import signals
from connmgr.clock import SystemClock
from connmgr.errors import RequestCancelledError, ServerError
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.qt.runner import RequestHandle, RequestRunner
from connmgr.retry import RetryConfig
from connmgr.testing import FaultServer

FAST = RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.02, jitter_range=0.0)
# A retry wait far longer than any test: only a cancel ends it.
LONG = RetryConfig(max_retries=2, base_delay=20.0, max_delay=20.0, jitter_range=0.0)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def manager_for(server, retry=FAST) -> ConnectionManager:
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", server.port)], timeout=0.2)
    return ConnectionManager(
        server.url,
        retry=retry,
        policy=MachinePolicy(cooldown_jitter=0.0),
        monitor=monitor,
        clock=SystemClock(),
        rng=random.Random(1),
        watch_network=False,
    )


class RetryWaits:
    """Counts retry_scheduled: sent by the worker just before it starts its retry wait."""

    def __init__(self, mgr: ConnectionManager) -> None:
        self.count = 0
        self._lock = threading.Lock()
        signals.retry_scheduled.connect(self._on_retry, sender=mgr)
        self._mgr = mgr

    def _on_retry(self, sender: object, **_kw: object) -> None:
        with self._lock:
            self.count += 1

    def close(self) -> None:
        signals.retry_scheduled.disconnect(self._on_retry, sender=self._mgr)


class Seen:
    """Every signal of a runner, with the thread it arrived on."""

    def __init__(self, runner: RequestRunner) -> None:
        self.finished: list[tuple[RequestHandle, object, int]] = []
        self.failed: list[tuple[RequestHandle, BaseException, int, float]] = []
        self.progress: list[tuple[int, int]] = []
        runner.finished.connect(lambda h, r: self.finished.append((h, r, threading.get_ident())))
        runner.failed.connect(
            lambda h, e: self.failed.append((h, e, threading.get_ident(), time.monotonic()))
        )
        runner.progress.connect(lambda h, done, total: self.progress.append((done, total)))

    def count(self) -> int:
        return len(self.finished) + len(self.failed)


def test_a_200_is_delivered_on_the_gui_thread(qtbot, server, qt_messages):
    gui = threading.get_ident()
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        handle = runner.get("/echo?q=daft+punk", operation="search")
        assert isinstance(handle, RequestHandle)
        assert handle.method == "GET" and handle.operation == "search"
        qtbot.waitUntil(lambda: seen.count() == 1, timeout=3000)
        got, response, thread = seen.finished[0]
        assert got is handle
        assert response.status_code == 200
        assert response.json()["args"] == {"q": "daft punk"}
        assert thread == gui
        assert handle.state == "finished" and handle.done()
        assert handle.request_id is not None  # the manager's id, learned from request_started
        assert runner.active() == []
        runner.close()
    assert qt_messages.warnings() == []


def test_errors_arrive_through_failed_with_the_classified_error(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        handle = runner.get("/status/503")
        qtbot.waitUntil(lambda: seen.count() == 1, timeout=5000)
        got, error, thread, _ = seen.failed[0]
        assert got is handle and thread == threading.get_ident()
        assert isinstance(error, ServerError)
        assert handle.state == "failed" and handle.error is error
        assert server.hits("/status/503") == 3  # the manager's retries ran on the worker
        runner.close()


def test_cancel_all_ends_a_request_waiting_to_retry_within_0_2_s(qtbot, server, qt_messages):
    with manager_for(server, retry=LONG) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        waits = RetryWaits(mgr)
        handle = runner.get("/status/503")
        # The first attempt has been answered; the worker now waits 20 s to retry.
        qtbot.waitUntil(lambda: waits.count == 1, timeout=3000)
        waits.close()
        assert not handle.done()
        started = time.monotonic()
        assert runner.cancel_all() == 1
        qtbot.waitUntil(lambda: seen.count() == 1, timeout=1000)
        _, error, _, at = seen.failed[0]
        assert at - started <= 0.2
        assert isinstance(error, RequestCancelledError)
        assert seen.finished == []
        assert server.hits("/status/503") == 1  # the retry was never sent
        runner.close()
    assert qt_messages.warnings() == []


def test_cancel_all_ends_a_wait_for_the_servers_retry_after(qtbot, server):
    with manager_for(server, retry=RetryConfig(max_retries=2, max_delay=30.0)) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        waits = RetryWaits(mgr)
        runner.get("/status/503?retry_after=20")
        qtbot.waitUntil(lambda: waits.count == 1, timeout=3000)
        waits.close()
        started = time.monotonic()
        runner.cancel_all()
        qtbot.waitUntil(lambda: seen.count() == 1, timeout=1000)
        assert seen.failed[0][3] - started <= 0.2
        assert isinstance(seen.failed[0][1], RequestCancelledError)
        runner.close()


def test_one_handle_cancels_only_its_request(qtbot, server):
    with manager_for(server, retry=LONG) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        slow = runner.get("/status/503")
        quick = runner.get("/ok")
        qtbot.waitUntil(lambda: len(seen.finished) == 1, timeout=3000)
        assert seen.finished[0][0] is quick
        qtbot.waitUntil(lambda: server.hits("/status/503") == 1, timeout=3000)
        slow.cancel()
        qtbot.waitUntil(lambda: len(seen.failed) == 1, timeout=1000)
        assert seen.failed[0][0] is slow and slow.cancelled
        runner.close()


def test_queued_requests_are_cancelled_without_running(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr, max_workers=1)
        seen = Seen(runner)
        blocker = runner.get("/stall-headers?seconds=20")
        queued = [runner.get("/ok") for _ in range(3)]
        qtbot.waitUntil(lambda: server.hits("/stall-headers") == 1, timeout=3000)
        assert all(h.state == "queued" for h in queued)
        assert runner.cancel_all() == 4
        qtbot.waitUntil(lambda: len(seen.failed) == 4, timeout=1000)
        assert {h for h, *_ in seen.failed} == {blocker, *queued}
        assert all(isinstance(e, RequestCancelledError) for _, e, *_ in seen.failed)
        assert server.hits("/ok") == 0  # the queued ones never ran
        runner.close()


def test_progress_streams_the_body_and_the_response_still_has_it(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        runner.get("/drip?bytes=6&interval=0.06", progress=True, chunk_size=1)
        qtbot.waitUntil(lambda: len(seen.finished) == 1, timeout=5000)
        response = seen.finished[0][1]
        assert response.content == b"xxxxxx"
        assert seen.progress[-1] == (6, 6)  # the last one always arrives, before finished
        assert {total for _, total in seen.progress} == {6}
        dones = [done for done, _ in seen.progress]
        assert dones == sorted(dones)
        assert any(0 < done < 6 for done in dones)  # some in between, not only the end
        runner.close()


def test_parent_destroyed_mid_request_no_crash_no_emission(qtbot, server, qt_messages):
    import shiboken6
    from PySide6.QtWidgets import QWidget

    with manager_for(server) as mgr:
        parent = QWidget()
        runner = RequestRunner(mgr, parent=parent)
        emitted: list[object] = []
        runner.finished.connect(lambda *a: emitted.append(a))
        runner.failed.connect(lambda *a: emitted.append(a))
        handles = [runner.get("/stall-headers?seconds=20") for _ in range(3)]
        qtbot.waitUntil(lambda: server.hits("/stall-headers") == 3, timeout=3000)
        # Others end while the parent goes: their results must not reach a deleted runner.
        handles += [runner.get("/ok?delay=0.02") for _ in range(4)]
        parent.deleteLater()
        qtbot.wait(10)  # deleteLater runs; the runner goes with its parent
        assert not shiboken6.isValid(runner)
        del parent
        gc.collect()
        for handle in handles:
            assert handle.wait(1.0)  # cancelled: the workers return at once
            assert handle.cancelled
        for handle in handles[:3]:
            assert isinstance(handle.error, RequestCancelledError)
        qtbot.wait(100)
        assert emitted == []
    assert qt_messages.warnings() == []


def test_a_result_that_arrives_after_close_is_not_emitted(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        handle = runner.get("/ok?delay=0.1")
        runner.close()
        assert runner.closed
        assert handle.wait(2.0)
        qtbot.wait(100)
        assert seen.count() == 0
        with pytest.raises(RuntimeError):
            runner.get("/ok")


def test_a_receiver_that_raises_does_not_stop_other_deliveries(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        got: list[int] = []

        def bad(handle, response):
            got.append(handle.id)
            raise ValueError("receiver bug")

        runner.finished.connect(bad)
        with qtbot.captureExceptions() as exceptions:
            runner.get("/ok")
            runner.get("/ok")
            # PySide6 reports a receiver's exception and goes on with the next signal.
            qtbot.waitUntil(lambda: len(got) == 2, timeout=3000)
        assert [type(e[1]) for e in exceptions] == [ValueError, ValueError]
        runner.close()


def test_bad_arguments(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        with pytest.raises(TypeError, match="url"):
            runner.get(b"/ok")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="method"):
            runner.request("FETCH", "/ok")
        with pytest.raises(TypeError, match="cancel"):
            runner.get("/ok", cancel=object())
        with pytest.raises(ValueError, match="chunk_size"):
            runner.get("/ok", chunk_size=0)
        with pytest.raises(ValueError, match="max_workers"):
            RequestRunner(mgr, max_workers=0)
        with pytest.raises(TypeError, match="manager"):
            RequestRunner(object())
        seen = Seen(runner)
        # A keyword the manager refuses fails on the worker and arrives through failed.
        handle = runner.get("/ok", timeout=3)
        qtbot.waitUntil(lambda: seen.count() == 1, timeout=3000)
        assert seen.failed[0][0] is handle
        assert isinstance(seen.failed[0][1], ValueError)
        runner.close()


def test_a_hundred_queued_requests_all_end_at_cancel_all(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr, max_workers=2)
        seen = Seen(runner)
        handles = [runner.get("/ok?delay=0.2") for _ in range(100)]
        qtbot.waitUntil(lambda: server.hits("/ok") >= 1, timeout=3000)
        started = time.monotonic()
        runner.cancel_all()
        qtbot.waitUntil(lambda: seen.count() == 100, timeout=2000)
        assert time.monotonic() - started < 1.0
        assert {h for h, *_ in seen.finished} | {h for h, *_ in seen.failed} == set(handles)
        assert len(seen.failed) >= 98  # at most the two running could have finished first
        assert runner.active() == []
        runner.close()


def test_progress_of_a_large_body_counts_every_byte(qtbot, server):
    with manager_for(server) as mgr:
        runner = RequestRunner(mgr)
        seen = Seen(runner)
        runner.get("/ok?size=300000", progress=True, chunk_size=65536)
        qtbot.waitUntil(lambda: len(seen.finished) == 1, timeout=5000)
        assert len(seen.finished[0][1].content) == 300_000
        # A fast body may arrive between two GUI turns: the latest progress wins.
        assert seen.progress[-1] == (300_000, 300_000)
        assert all(total == 300_000 for _, total in seen.progress)
        runner.close()
