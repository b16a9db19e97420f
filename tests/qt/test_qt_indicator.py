"""NetworkStatusIndicator and the QNetworkInformation hint, on loopback only."""

from __future__ import annotations

import threading
import time

import pytest

from connmgr.network import NetworkMonitor, NetworkStatus, ProbeResult, TcpProbe
from connmgr.qt.indicator import NetworkStatusIndicator
from connmgr.qt.netinfo import NetworkInformationHint
from connmgr.testing import ProbeTarget


@pytest.fixture
def listener():
    with ProbeTarget() as target:
        yield target


def make_monitor(port: int) -> NetworkMonitor:
    return NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", port)],
        interval=0.05,
        offline_interval=0.05,
        timeout=0.2,
        debounce=0.0,
    )


def test_follows_the_monitor_from_online_to_offline(qtbot, listener, qt_messages):
    monitor = make_monitor(listener.port)
    indicator = NetworkStatusIndicator(monitor, poll_interval_ms=None)
    qtbot.waitUntil(lambda: indicator.status is NetworkStatus.ONLINE, timeout=2000)
    assert indicator.get_status_text() == "Online"
    listener.close()
    with qtbot.waitSignal(indicator.status_changed, timeout=2000) as changed:
        indicator.check_now()
    assert changed.args == [False]
    assert indicator.get_status_text() == "Offline"
    assert indicator.is_online is False
    indicator.close()
    assert qt_messages.warnings() == []


def test_polling_timer_asks_the_monitor(qtbot, listener):
    monitor = make_monitor(listener.port)
    indicator = NetworkStatusIndicator(monitor, poll_interval_ms=20)
    assert indicator.polling()
    qtbot.waitUntil(lambda: indicator.status is NetworkStatus.ONLINE, timeout=2000)
    listener.close()
    # No explicit check: the timer notices.
    with qtbot.waitSignal(indicator.status_changed, timeout=2000) as changed:
        pass
    assert changed.args == [False]
    indicator.close()
    assert not indicator.polling()


class BlockingProbe:
    """A probe that holds its check until released (a dead network, in effect)."""

    name = "blocking"
    detects_portal = False

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def check(self, timeout: float) -> ProbeResult:
        self.started.set()
        self.release.wait(5)
        return ProbeResult(self.name, NetworkStatus.OFFLINE, 0.0, "released")


def test_a_slow_probe_never_blocks_the_gui_thread(qtbot):
    probe = BlockingProbe()
    monitor = NetworkMonitor(probes=[probe], timeout=5.0, debounce=0.0)
    started = time.perf_counter()
    indicator = NetworkStatusIndicator(monitor)  # checks at once, on a worker
    indicator.check_now()
    took = time.perf_counter() - started
    assert probe.started.wait(1)
    assert took < 0.05
    assert indicator.get_status_text() == "Online"  # optimistic until the check answers
    with qtbot.waitSignal(indicator.status_changed, timeout=2000) as changed:
        probe.release.set()
    assert changed.args == [False]
    indicator.close()


def test_captive_portal_text(qtbot):
    monitor = make_monitor(1)
    indicator = NetworkStatusIndicator(monitor, poll_interval_ms=None)
    qtbot.waitUntil(lambda: indicator.status is NetworkStatus.OFFLINE, timeout=2000)
    indicator.bridge.post_network(False, NetworkStatus.CAPTIVE_PORTAL)
    qtbot.waitUntil(lambda: indicator.status is NetworkStatus.CAPTIVE_PORTAL, timeout=2000)
    assert indicator.get_status_text() == "Sign in to the network"
    indicator.close()


def test_no_internet_text_for_a_limited_network(qtbot):
    from types import SimpleNamespace

    monitor = make_monitor(1)
    indicator = NetworkStatusIndicator(monitor, poll_interval_ms=None)
    qtbot.waitUntil(lambda: indicator.status is NetworkStatus.OFFLINE, timeout=2000)
    # By name: NetworkStatus.LIMITED may not exist in this version of the monitor.
    limited = SimpleNamespace(name="LIMITED", value="limited")
    indicator.bridge.post_network(False, limited)
    qtbot.waitUntil(lambda: indicator.status is limited, timeout=2000)
    assert indicator.get_status_text() == "No internet"
    indicator.close()


def test_defaults_to_the_monitor_network_state_uses(qtbot, listener):
    from connmgr.network import set_default_monitor

    monitor = make_monitor(listener.port)
    previous = set_default_monitor(monitor)
    try:
        indicator = NetworkStatusIndicator()
        assert indicator.monitor is monitor
        assert indicator.polling()  # the plan's 30 s poll
        indicator.close()
    finally:
        set_default_monitor(previous)


def test_poll_interval_is_validated(qapp):
    with pytest.raises(ValueError, match="poll_interval_ms"):
        NetworkStatusIndicator(make_monitor(1), poll_interval_ms=-5)


# -- QNetworkInformation --------------------------------------------------------------


class RecordingMonitor:
    def __init__(self) -> None:
        self.hints: list[str] = []

    def hint_changed(self, source: str = "os") -> None:
        self.hints.append(source)


def test_reachability_changes_become_recheck_hints_not_verdicts(qtbot):
    from PySide6.QtNetwork import QNetworkInformation

    monitor = RecordingMonitor()
    hint = NetworkInformationHint(monitor)
    if not hint.available:
        pytest.skip("no QNetworkInformation backend on this machine")
    assert hint.backend_name
    with qtbot.waitSignal(hint.hinted, timeout=1000) as hinted:
        QNetworkInformation.instance().reachabilityChanged.emit(
            QNetworkInformation.Reachability.Disconnected
        )
    assert hinted.args == ["reachability Disconnected"]
    assert len(monitor.hints) == 1
    assert "QNetworkInformation" in monitor.hints[0]
    hint.close()
    QNetworkInformation.instance().reachabilityChanged.emit(QNetworkInformation.Reachability.Online)
    assert len(monitor.hints) == 1


def test_a_hint_makes_a_real_monitor_probe_again(qtbot, listener):
    monitor = make_monitor(listener.port)
    monitor.interval = 3600.0  # the cache would otherwise answer for an hour
    assert monitor.is_online()
    checked = monitor.last_checked
    hint = NetworkInformationHint(monitor)
    hint._on_reachability("Online")  # what the OS signal calls
    qtbot.waitUntil(lambda: monitor.last_checked != checked, timeout=2000)
    hint.close()
