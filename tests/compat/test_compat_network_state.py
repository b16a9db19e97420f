"""NetworkState: the plan's class cache, checks through socket.create_connection, the monitor."""

from __future__ import annotations

import socket
import threading
import time
from unittest import mock

import pytest

from connmgr import signals
from connmgr.network import (
    DEFAULT_PROBES,
    ConnectProbe,
    NetworkMonitor,
    NetworkState,
    NetworkStatus,
    ProbeResult,
    TcpProbe,
    get_default_monitor,
    set_default_monitor,
)


class Connection:
    """What a patched ``socket.create_connection`` returns: it counts ``close()``."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class StatusProbe:
    """A probe with a fixed answer that counts its runs (for the monitor)."""

    def __init__(self, status: NetworkStatus, *, detects_portal: bool = True) -> None:
        self.status = status
        self.detects_portal = detects_portal
        self.name = f"fixed {status.value}"
        self.calls = 0
        self.ran = threading.Event()

    def check(self, timeout: float) -> ProbeResult:
        self.calls += 1
        self.ran.set()
        return ProbeResult(self, self.status, 0.0, "fixed")


def monitor_saying(status: NetworkStatus) -> tuple[NetworkMonitor, StatusProbe]:
    """A default monitor that has already concluded ``status`` from one probe round."""
    probe = StatusProbe(status)
    probes = [probe]
    if status is NetworkStatus.LIMITED:  # an HTTP check fails while a TCP one works
        probe.status = NetworkStatus.OFFLINE
        probes.append(StatusProbe(NetworkStatus.ONLINE, detects_portal=False))
    monitor = NetworkMonitor(probes=probes, os_events=False)
    monitor.check()
    assert monitor.status is status
    probe.calls = 0
    probe.ran.clear()
    set_default_monitor(monitor)
    return monitor, probe


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ check_specific_host


def test_check_specific_host_is_one_create_connection_and_closes_it():
    connection = Connection()
    with mock.patch("socket.create_connection", return_value=connection) as connect:
        assert NetworkState.check_specific_host("api.example.com", 443, timeout=2.0) is True
    connect.assert_called_once_with(("api.example.com", 443), timeout=2.0)
    assert connection.closed == 1


def test_check_specific_host_defaults_are_port_80_and_3_seconds():
    with mock.patch("socket.create_connection", return_value=True) as connect:
        assert NetworkState.check_specific_host("example.com") is True
    connect.assert_called_once_with(("example.com", 80), timeout=3.0)


@pytest.mark.parametrize(
    "failure",
    [OSError("down"), ConnectionRefusedError(), TimeoutError("slow"), socket.gaierror(-2, "no")],
)
def test_check_specific_host_is_false_for_every_oserror(failure):
    with mock.patch("socket.create_connection", side_effect=failure):
        assert NetworkState.check_specific_host("example.com", 80) is False


def test_check_specific_host_over_loopback(loopback_target, closed_port):
    before = loopback_target.accepted
    assert NetworkState.check_specific_host("127.0.0.1", loopback_target.port, 1.0) is True
    deadline = time.monotonic() + 2.0
    while loopback_target.accepted == before and time.monotonic() < deadline:
        time.sleep(0.005)
    assert loopback_target.accepted == before + 1
    assert NetworkState.check_specific_host("127.0.0.1", closed_port, 1.0) is False


def test_check_specific_host_changes_neither_the_cache_nor_the_monitor(plan_state, closed_port):
    assert NetworkState.check_specific_host("127.0.0.1", closed_port, 1.0) is False
    assert (NetworkState._is_online, NetworkState._last_check) == (None, None)
    assert plan_state.status is NetworkStatus.UNKNOWN


@pytest.mark.parametrize(
    ("args", "error", "named"),
    [
        ((None, 80, 3.0), TypeError, "host"),
        (("", 80, 3.0), ValueError, "host"),
        (("h", "80", 3.0), TypeError, "port"),
        (("h", True, 3.0), TypeError, "port"),
        (("h", 0, 3.0), ValueError, "port"),
        (("h", 70000, 3.0), ValueError, "port"),
        (("h", 80, None), TypeError, "timeout"),
        (("h", 80, -1), ValueError, "timeout"),
        (("h", 80, float("nan")), ValueError, "timeout"),
    ],
)
def test_check_specific_host_refuses_bad_arguments_before_connecting(args, error, named):
    with (
        mock.patch("socket.create_connection") as connect,
        pytest.raises(error, match=named),
    ):
        NetworkState.check_specific_host(*args)
    connect.assert_not_called()


def test_a_host_name_idna_cannot_encode_is_unreachable_not_a_crash():
    assert NetworkState.check_specific_host("a" * 64 + ".example", 80, 1.0) is False


# ------------------------------------------------------------------ is_online and its cache


def test_is_online_checks_through_create_connection_and_fills_the_cache(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1000.0)
    connection = Connection()
    with mock.patch("socket.create_connection", return_value=connection) as connect:
        assert NetworkState.is_online() is True
    connect.assert_called_once_with(("8.8.8.8", 443), timeout=3.0)
    assert connection.closed == 1
    assert (NetworkState._is_online, NetworkState._last_check) == (True, 1000.0)


def test_the_cache_answers_for_check_interval_seconds_of_time_time(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    with mock.patch("socket.create_connection", return_value=True) as connect:
        assert NetworkState.is_online() is True
        now[0] += 29.9
        assert NetworkState.is_online() is True
        assert connect.call_count == 1
        now[0] += 0.1  # 30 s: stale
        connect.side_effect = OSError("down")
        assert NetworkState.is_online() is False
        assert connect.call_count == 2
    assert (NetworkState._is_online, NetworkState._last_check) == (False, 1030.0)


def test_setting_is_online_to_none_forces_a_fresh_check(monkeypatch):
    NetworkState._is_online, NetworkState._last_check = True, time.time()
    with mock.patch("socket.create_connection", side_effect=OSError("down")) as connect:
        assert NetworkState.is_online() is True  # fresh cache: no check
        connect.assert_not_called()
        NetworkState._is_online = None
        assert NetworkState.is_online() is False
        connect.assert_called_once()


def test_force_check_ignores_a_fresh_cache():
    NetworkState._is_online, NetworkState._last_check = False, time.time()
    with mock.patch("socket.create_connection", return_value=True):
        assert NetworkState.is_online(force_check=True) is True
    assert NetworkState._is_online is True


def test_a_cache_written_by_hand_is_honoured_and_check_interval_is_assignable(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 500.0)
    NetworkState._is_online, NetworkState._last_check = False, 490.0
    NetworkState._check_interval = 5.0
    with mock.patch("socket.create_connection", return_value=True) as connect:
        assert NetworkState.is_online() is True  # 10 s old > 5 s: checked again
    connect.assert_called_once()


def test_a_clock_set_back_makes_the_cache_stale_not_eternal(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1000.0)
    NetworkState._is_online, NetworkState._last_check = True, 5000.0  # "in the future"
    with mock.patch("socket.create_connection", side_effect=OSError("down")):
        assert NetworkState.is_online() is False


def test_the_probe_is_replaceable_and_a_bad_one_is_a_type_error(loopback_target, closed_port):
    NetworkState.probe = ConnectProbe("127.0.0.1", loopback_target.port)
    assert NetworkState.is_online(force_check=True) is True
    NetworkState.probe = ConnectProbe("127.0.0.1", closed_port)
    assert NetworkState.is_online(force_check=True) is False
    NetworkState.probe = "8.8.8.8"  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"NetworkState\.probe"):
        NetworkState.is_online(force_check=True)


def test_concurrent_checks_leave_a_consistent_cache():
    with mock.patch("socket.create_connection", return_value=True):
        threads = [
            threading.Thread(target=NetworkState.is_online, kwargs={"force_check": True})
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5.0)
    assert NetworkState._is_online is True
    assert abs(time.time() - (NetworkState._last_check or 0.0)) < 5.0


# ------------------------------------------------------------------ agreeing with the monitor


def test_an_unasked_monitor_is_never_probed(plan_state):
    probe = StatusProbe(NetworkStatus.ONLINE)
    set_default_monitor(NetworkMonitor(probes=[probe], os_events=False))
    for side_effect in (None, OSError("down")):
        with mock.patch("socket.create_connection", side_effect=side_effect):
            NetworkState.is_online(force_check=True)
    time.sleep(0.05)
    assert probe.calls == 0


@pytest.mark.parametrize("status", [NetworkStatus.CAPTIVE_PORTAL, NetworkStatus.LIMITED])
def test_a_handshake_does_not_overrule_a_portal_or_limited_network(status):
    monitor, probe = monitor_saying(status)
    with mock.patch("socket.create_connection", return_value=True):
        assert NetworkState.is_online(force_check=True) is False
    assert NetworkState._is_online is False
    assert monitor.status is status and probe.calls == 0  # consistent: no re-probe


def test_a_handshake_after_offline_asks_the_monitor_to_look_again():
    monitor, probe = monitor_saying(NetworkStatus.OFFLINE)
    probe.status = NetworkStatus.ONLINE  # the network came back
    changed = threading.Event()

    def on_change(sender: object, **kw: object) -> None:
        changed.set()

    with signals.network_changed.connected_to(on_change, sender=monitor):
        with mock.patch("socket.create_connection", return_value=True):
            assert NetworkState.is_online(force_check=True) is True
        assert changed.wait(2.0)  # the event was sent within this test
    assert monitor.status is NetworkStatus.ONLINE  # the manager now agrees


def test_a_failed_handshake_while_online_asks_once_per_five_seconds():
    _monitor, probe = monitor_saying(NetworkStatus.ONLINE)
    with mock.patch("socket.create_connection", side_effect=OSError("down")):
        assert NetworkState.is_online(force_check=True) is False
        assert probe.ran.wait(2.0)
        for _ in range(5):
            assert NetworkState.is_online(force_check=True) is False
    time.sleep(0.05)
    assert probe.calls == 1


def test_agreeing_answers_ask_for_nothing():
    _monitor, probe = monitor_saying(NetworkStatus.ONLINE)
    with mock.patch("socket.create_connection", return_value=True):
        assert NetworkState.is_online(force_check=True) is True
    _monitor_offline, probe_offline = monitor_saying(NetworkStatus.OFFLINE)
    with mock.patch("socket.create_connection", side_effect=OSError("down")):
        assert NetworkState.is_online(force_check=True) is False
    time.sleep(0.05)
    assert probe.calls == 0 and probe_offline.calls == 0


# ------------------------------------------------------------------ the probe and the monitor


def test_connect_probe_goes_through_create_connection_and_fits_a_monitor():
    probe = ConnectProbe("192.0.2.1", 443)
    assert (probe.name, probe.detects_portal) == ("tcp 192.0.2.1:443", False)
    assert ConnectProbe("::1", 80).name == "tcp [::1]:80"
    monitor = NetworkMonitor(probes=[probe], os_events=False)
    with mock.patch("socket.create_connection", return_value=Connection()):
        assert monitor.is_online(force_check=True) is True
    with mock.patch("socket.create_connection", side_effect=ConnectionRefusedError()):
        result = probe.check(1.0)
    assert result.status is NetworkStatus.OFFLINE and result.detail == "connection refused"
    with pytest.raises(ValueError, match="port"):
        ConnectProbe("h", 0)


def test_network_state_delegates_to_a_replaceable_default(loopback_target):
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", loopback_target.port)])
    previous = NetworkState.set_default_monitor(monitor)
    try:
        assert get_default_monitor() is monitor
        assert NetworkState.get_default_monitor() is monitor
    finally:
        set_default_monitor(previous)


def test_default_monitor_is_created_lazily_once():
    previous = NetworkState.set_default_monitor(None)
    try:
        first = get_default_monitor()
        assert first is get_default_monitor()
        assert first.probes == DEFAULT_PROBES
    finally:
        set_default_monitor(previous)
    with pytest.raises(ValueError, match="NetworkMonitor"):
        set_default_monitor("monitor")  # type: ignore[arg-type]


def test_the_guard_catches_a_check_that_forgot_to_patch(no_public_connects):
    assert NetworkState.is_online(force_check=True) is False  # 8.8.8.8 refused by the guard
    assert no_public_connects == [("8.8.8.8", 443)]
    no_public_connects.clear()
