"""RetryBanner tells the current truth: a failure goes once its origin or the network is well.

Includes the issue's independent check: a failure banner hides within 1 s of
its origin's next success (a real manager against a FaultServer). Also: the
network's own words and colours (no internet, captive portal with Sign in…),
and the optional "Back online" note that hides by itself.
"""

from __future__ import annotations

import random
import time

import pytest
from qt_helpers import FakeManager, in_thread

from connmgr import signals
from connmgr.clock import SystemClock
from connmgr.errors import OfflineError, ServerError
from connmgr.machine import ConnectionState as S
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, NetworkStatus, TcpProbe
from connmgr.qt import ConnectionStatusWidget, RequestRunner, RetryBanner, SignalBridge
from connmgr.qt.banner import BANNER_COLORS, portal_url
from connmgr.retry import RetryConfig
from connmgr.testing import FaultServer

ORIGIN_URL = "http://127.0.0.1:8080/search?q=x"


class FakeMonitor:
    """A monitor's status and last probe results, as the banner reads them."""

    def __init__(self) -> None:
        self.status: object = NetworkStatus.ONLINE
        self.last_results: tuple[object, ...] = ()
        self.probes: tuple[object, ...] = ()


class _Result:
    def __init__(self, status: object, detail: str, url: str) -> None:
        self.status = status
        self.detail = detail
        self.probe = type("Probe", (), {"url": url})()


def retry_then_fail(manager, error, request_id=1, state=S.BACKOFF):
    """A request seen retrying that then gives up, leaving its origin in ``state``."""
    manager.set_state(state)

    def send() -> None:
        signals.retry_scheduled.send(
            manager, request_id=request_id, attempt=2, max_attempts=3, delay=0.5, error=error,
            url=ORIGIN_URL, operation="search", cancel=None,
        )  # fmt: skip
        signals.request_failed.send(
            manager, request_id=request_id, error=error, url=ORIGIN_URL, operation="search"
        )
        signals.request_finished.send(
            manager, request_id=request_id, outcome="transient", url=ORIGIN_URL
        )

    in_thread(send)


def server_error() -> ServerError:
    return ServerError(
        "503", user_message="The server is having trouble right now.", url=ORIGIN_URL, attempts=3
    )


@pytest.fixture
def monitor():
    return FakeMonitor()


@pytest.fixture
def manager(clock, monitor):
    return FakeManager(clock, monitor=monitor)


def make_banner(qtbot, manager, **kw):
    banner = RetryBanner(manager, **kw)
    qtbot.addWidget(banner)
    return banner


def test_a_failure_hides_when_its_origin_answers_again(qtbot, manager):
    banner = make_banner(qtbot, manager)
    retry_then_fail(manager, server_error())
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    assert banner.isVisible() and banner.look == "failed"
    # A request to another origin proves nothing about this one.
    in_thread(
        signals.request_finished.send, manager, request_id=7, outcome="success",
        url="http://127.0.0.1:9999/other",
    )  # fmt: skip
    qtbot.wait(50)
    assert banner.mode == "failed"
    in_thread(
        signals.request_finished.send, manager, request_id=8, outcome="success", url=ORIGIN_URL
    )
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)
    assert banner.mode == "idle" and banner.failure is None


def test_a_failure_hides_when_its_origin_is_online_again(qtbot, manager):
    banner = make_banner(qtbot, manager)
    retry_then_fail(manager, server_error())
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    in_thread(signals.state_changed.send, manager, **manager.set_state(S.ONLINE))
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)


def test_a_network_failure_hides_when_the_network_is_back(qtbot, manager, monitor):
    banner = make_banner(qtbot, manager)
    monitor.status = NetworkStatus.OFFLINE
    in_thread(signals.network_changed.send, monitor, online=False, status=NetworkStatus.OFFLINE)
    error = OfflineError("the network is unreachable", url=ORIGIN_URL)
    retry_then_fail(manager, error, state=S.OFFLINE)
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    assert banner.look == "offline"
    assert banner.message_label.text() == "There is no network connection."
    monitor.status = NetworkStatus.ONLINE
    in_thread(signals.network_changed.send, monitor, online=True, status=NetworkStatus.ONLINE)
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)


def test_a_server_failure_stays_when_only_the_network_comes_back(qtbot, manager, monitor):
    banner = make_banner(qtbot, manager)
    retry_then_fail(manager, server_error())
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    in_thread(signals.network_changed.send, monitor, online=True, status=NetworkStatus.ONLINE)
    qtbot.wait(50)
    assert banner.mode == "failed"  # the server, not the network, failed it


def test_the_recovery_note_says_back_online_then_hides_by_itself(qtbot, manager):
    banner = make_banner(qtbot, manager, recovery_note_ms=150)
    retry_then_fail(manager, server_error())
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    with qtbot.waitSignal(banner.recovered, timeout=1000):
        in_thread(signals.state_changed.send, manager, **manager.set_state(S.ONLINE))
    qtbot.waitUntil(lambda: banner.mode == "recovered", timeout=1000)
    assert banner.isVisible() and banner.look == "recovered"
    assert banner.message_label.text() == "Back online."
    assert "127.0.0.1:8080" in banner.status_label.text()
    assert not banner.try_again_button.isVisible()
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)


def test_no_internet_has_its_own_words_and_colours(qtbot, manager, monitor):
    from types import SimpleNamespace

    banner = make_banner(qtbot, manager)
    limited = SimpleNamespace(name="LIMITED", value="limited")  # by name, before and after
    in_thread(signals.network_changed.send, monitor, online=False, status=limited)
    retry_then_fail(manager, server_error(), state=S.DEGRADED)
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    assert banner.look == "limited"
    assert banner.message_label.text().startswith("No internet")
    assert not banner.sign_in_button.isVisible()
    assert BANNER_COLORS["limited"][1] in banner.styleSheet()


def test_captive_portal_offers_sign_in_which_opens_the_portal(qtbot, manager, monitor):
    from PySide6.QtCore import QObject, QUrl, Slot
    from PySide6.QtGui import QDesktopServices

    opened: list[str] = []

    class Browser(QObject):
        @Slot(QUrl)
        def open(self, url: QUrl) -> None:
            opened.append(url.toString())

    browser = Browser()
    monitor.last_results = (
        _Result(
            NetworkStatus.CAPTIVE_PORTAL,
            "redirected (302) to http://10.0.0.1/login?from=probe",
            "http://127.0.0.1:1/generate_204",
        ),
    )
    banner = make_banner(qtbot, manager)
    monitor.status = NetworkStatus.CAPTIVE_PORTAL
    in_thread(
        signals.network_changed.send, monitor, online=False, status=NetworkStatus.CAPTIVE_PORTAL
    )
    retry_then_fail(manager, OfflineError("behind a portal", url=ORIGIN_URL), state=S.OFFLINE)
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    assert banner.look == "captive_portal"
    assert banner.message_label.text().startswith("Sign in to the network")
    assert banner.sign_in_button.isVisible()
    assert banner.sign_in_button.text() == "Sign in…"
    QDesktopServices.setUrlHandler("http", browser, "open")
    try:
        banner.sign_in_button.click()
    finally:
        QDesktopServices.unsetUrlHandler("http")
    assert opened == ["http://10.0.0.1/login?from=probe"]


def test_portal_url_falls_back_to_the_probe_url():
    monitor = FakeMonitor()
    monitor.last_results = (
        _Result(NetworkStatus.CAPTIVE_PORTAL, "200 with a page instead of 204", "http://a/204"),
    )
    assert portal_url(monitor) == "http://a/204"
    assert portal_url(FakeMonitor()) is None
    assert portal_url(None) is None


@pytest.mark.parametrize("bad", [-1, 60_001, True, 1.5])
def test_recovery_note_ms_is_validated(qapp, manager, bad):
    with pytest.raises(ValueError, match="recovery_note_ms"):
        RetryBanner(manager, recovery_note_ms=bad)


# -- a real manager ---------------------------------------------------------------------


def test_banner_hides_within_1_s_of_the_origins_next_success(qtbot, qt_messages):
    """The issue's check, end to end: 503s until the retries run out, then a success."""
    from PySide6.QtWidgets import QMainWindow, QVBoxLayout, QWidget

    with FaultServer() as server:
        monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", server.port)], timeout=0.2)
        mgr = ConnectionManager(
            server.url,
            retry=RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.02, jitter_range=0.0),
            policy=MachinePolicy(recover_after=1, cooldown_jitter=0.0),
            monitor=monitor,
            clock=SystemClock(),
            rng=random.Random(2),
            watch_network=False,
        )
        with mgr:
            window = QMainWindow()
            qtbot.addWidget(window)
            central = QWidget()
            layout = QVBoxLayout(central)
            bridge = SignalBridge(mgr, parent=window)
            banner = RetryBanner(mgr, bridge=bridge)
            layout.addWidget(banner)
            window.setCentralWidget(central)
            status = ConnectionStatusWidget(mgr, bridge=bridge)
            window.statusBar().addPermanentWidget(status)
            window.show()
            runner = RequestRunner(mgr, parent=window)
            ends: list[object] = []
            runner.finished.connect(lambda h, r: ends.append(r))
            runner.failed.connect(lambda h, e: ends.append(e))

            server.alias("/search", "/status/503")
            runner.get("/search")
            qtbot.waitUntil(lambda: banner.mode == "failed", timeout=5000)
            assert status.text() != "Online"
            server.alias("/search", "/ok")
            runner.get("/search")
            qtbot.waitUntil(lambda: len(ends) == 2, timeout=5000)
            succeeded_at = time.monotonic()
            qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)
            assert time.monotonic() - succeeded_at <= 1.0
            # The status bar and the banner agree.
            qtbot.waitUntil(lambda: status.text() == "Online", timeout=1000)
            runner.close()
    assert qt_messages.warnings() == []
