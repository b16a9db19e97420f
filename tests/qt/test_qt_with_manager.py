"""The widgets on a real ConnectionManager over loopback (FaultServer), from worker threads.

Includes issue 6's independent check: a status widget in a QMainWindow's status
bar reads "online" at start and "offline" after a worker's request fails to a
closed port while the monitor's probe fails; a retry banner is visible while a
worker waits to retry a 503 and hidden after the request succeeds.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from contextlib import closing

import pytest

from connmgr.clock import CancelToken, SystemClock
from connmgr.errors import NetworkError, RequestCancelledError, ServerError
from connmgr.machine import ConnectionState as S
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.qt import ConnectionStatusWidget, RetryBanner, SignalBridge
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer

FAST = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02, jitter_range=0.0)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make_manager(server, probe_target, *, retry=FAST, policy=None, clock=None) -> ConnectionManager:
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)],
        timeout=0.2,
        offline_interval=0.05,
        debounce=0.0,
    )
    return ConnectionManager(
        server.url,
        retry=retry,
        policy=policy or MachinePolicy(cooldown_jitter=0.0),
        monitor=monitor,
        clock=clock or SystemClock(),
        rng=random.Random(3),
    )


class Worker:
    """Runs one call on a worker thread and keeps its result or exception."""

    def __init__(self, fn, *args, **kwargs) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            self.result = fn(*args, **kwargs)
        except BaseException as exc:
            self.error = exc

    def done(self) -> bool:
        return not self.thread.is_alive()


@pytest.fixture
def window(qtbot):
    from PySide6.QtWidgets import QLabel, QMainWindow, QVBoxLayout, QWidget

    def build(manager):
        win = QMainWindow()
        central = QWidget()
        layout = QVBoxLayout(central)
        bridge = SignalBridge(manager, parent=win)
        win.banner = RetryBanner(manager, bridge=bridge)
        layout.addWidget(win.banner)
        layout.addWidget(QLabel("results"))
        win.setCentralWidget(central)
        win.status = ConnectionStatusWidget(manager, bridge=bridge)
        win.statusBar().addPermanentWidget(win.status)
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        return win

    return build


def test_status_reads_online_then_offline_after_a_worker_fails_to_a_closed_port(
    qtbot, server, probe_target, window, qt_messages
):
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with make_manager(server, probe_target) as mgr:
        win = window(mgr)
        assert win.status.text().lower() == "online"
        probe_target.close()  # the monitor's probe now fails
        worker = Worker(mgr.get, f"http://127.0.0.1:{dead_port}/search")
        qtbot.waitUntil(worker.done, timeout=5000)
        assert isinstance(worker.error, NetworkError)
        qtbot.waitUntil(lambda: win.status.text().lower() == "offline", timeout=3000)
        assert win.status.state is S.OFFLINE
        assert qt_messages.warnings() == []


def test_banner_shows_a_503_retry_and_hides_after_success(
    qtbot, server, probe_target, window, qt_messages
):
    # A manual fake clock: the worker's retry wait lasts until the test moves time,
    # however slow the machine is.
    clock = FakeClock(auto_advance=False)
    retry = RetryConfig(max_retries=2, base_delay=2.4, jitter_range=0.0)
    with make_manager(server, probe_target, retry=retry, clock=clock) as mgr:
        win = window(mgr)
        assert not win.banner.isVisible()
        server.alias("/api/search", "/flaky/check?fail=1&status=503")
        worker = Worker(mgr.get, "/api/search")
        qtbot.waitUntil(win.banner.isVisible, timeout=3000)
        assert win.banner.text().endswith("Retrying in 2.4 s — attempt 2 of 3")
        assert not worker.done()  # the worker is waiting to retry
        clock.advance(1.0)
        qtbot.waitUntil(
            lambda: win.banner.status_label.text() == "Retrying in 1.4 s — attempt 2 of 3",
            timeout=2000,
        )
        clock.advance(1.4)
        qtbot.waitUntil(worker.done, timeout=3000)
        assert worker.error is None
        assert worker.result.status_code == 200  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: not win.banner.isVisible(), timeout=2000)
        assert qt_messages.warnings() == []


def test_retry_now_cuts_the_wait_short(qtbot, server, probe_target, window):
    retry = RetryConfig(max_retries=1, base_delay=30.0, jitter_range=0.0)
    with make_manager(server, probe_target, retry=retry) as mgr:
        win = window(mgr)
        server.alias("/api/search", "/flaky/rn?fail=1&status=503")
        worker = Worker(mgr.get, "/api/search")
        qtbot.waitUntil(win.banner.isVisible, timeout=3000)
        clicked = time.perf_counter()
        win.banner.retry_now_button.click()
        qtbot.waitUntil(worker.done, timeout=2000)
        assert time.perf_counter() - clicked < 1.0  # not 30 s
        assert worker.error is None
        qtbot.waitUntil(lambda: not win.banner.isVisible(), timeout=2000)


def test_cancel_ends_that_request(qtbot, server, probe_target, window):
    retry = RetryConfig(max_retries=1, base_delay=30.0, jitter_range=0.0)
    with make_manager(server, probe_target, retry=retry) as mgr:
        win = window(mgr)
        token = CancelToken()
        worker = Worker(mgr.get, "/status/503", cancel=token)
        qtbot.waitUntil(win.banner.isVisible, timeout=3000)
        win.banner.cancel_button.click()
        assert token.cancelled
        qtbot.waitUntil(worker.done, timeout=2000)
        assert isinstance(worker.error, RequestCancelledError)
        qtbot.wait(50)
        assert not win.banner.isVisible()  # a cancel is not reported as a failure


def test_final_failure_stays_on_screen(qtbot, server, probe_target, window):
    with make_manager(server, probe_target) as mgr:
        win = window(mgr)
        worker = Worker(mgr.get, "/status/503")
        qtbot.waitUntil(worker.done, timeout=3000)
        assert isinstance(worker.error, ServerError)
        qtbot.waitUntil(lambda: win.banner.mode == "failed", timeout=2000)
        assert win.banner.isVisible()
        assert win.banner.try_again_button.isVisible()
        assert "Gave up after 4 attempts" in win.banner.status_label.text()


def test_rate_limit_countdown_from_the_server(qtbot, server, probe_target, window):
    policy = MachinePolicy(max_wait=0, cooldown_jitter=0.0)
    with make_manager(server, probe_target, retry=RetryConfig(max_retries=0), policy=policy) as mgr:
        win = window(mgr)
        worker = Worker(mgr.get, "/status/429?retry_after=12")
        qtbot.waitUntil(worker.done, timeout=3000)
        qtbot.waitUntil(
            lambda: win.status.text() == "Rate limited — resuming in 12 s", timeout=2000
        )
        assert win.status.countdown_running()


def test_the_countdown_ends_in_the_state_that_follows(qtbot, server, probe_target, window):
    clock = FakeClock(auto_advance=False)
    policy = MachinePolicy(max_wait=0, cooldown_jitter=0.0)
    with make_manager(
        server, probe_target, retry=RetryConfig(max_retries=0), policy=policy, clock=clock
    ) as mgr:
        win = window(mgr)
        worker = Worker(mgr.get, "/status/429?retry_after=12")
        qtbot.waitUntil(worker.done, timeout=3000)
        qtbot.waitUntil(lambda: win.status.state is S.RATE_LIMITED, timeout=2000)
        clock.advance(12.5)
        # No request is sent: the widget's own tick asks the manager, which moves on.
        qtbot.waitUntil(lambda: win.status.text() == "Online", timeout=3000)
        assert not win.status.countdown_running()


def test_the_details_popup_shows_the_managers_own_history(qtbot, server, probe_target, window):
    with make_manager(server, probe_target) as mgr:
        win = window(mgr)
        worker = Worker(mgr.get, "/flaky/d?fail=1&status=503")
        qtbot.waitUntil(worker.done, timeout=5000)
        assert worker.error is None
        dialog = win.status.show_details()
        qtbot.addWidget(dialog)
        history = mgr.history()
    assert dialog.records == tuple(history) and len(history) == 1
    tree = dialog.timeline_view
    assert tree is not None
    request = tree.topLevelItem(0)
    assert request.text(0) == f"GET {server.url}/flaky/d?fail=1&status=503"
    request.setExpanded(True)
    steps = [request.child(i).text(0) for i in range(request.childCount())]
    assert steps[0].startswith("attempt 1: 503 (")
    assert any(step.startswith("retry in ") for step in steps)
    assert steps[-1].startswith("attempt 2: 200 (")
    assert "attempt 2: 200" in dialog.copy_text()
