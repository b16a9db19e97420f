"""Fixtures for the plan-compatibility tests: no public address, a clean NetworkState.

Plan-style tests simulate the network by patching ``socket.create_connection``.
A test that forgot to would reach 8.8.8.8, so every connect to an address that
is not loopback is refused here and fails the test. The plan's class-level
cache is restored after each test, and the default monitor is a loopback one,
so a re-probe that ``NetworkState`` asks for never leaves the machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from connmgr.network import NetworkMonitor, NetworkState, TcpProbe, set_default_monitor
from connmgr.testing import ProbeTarget

_PLAN_ATTRIBUTES = ("_is_online", "_last_check", "_check_interval", "probe", "timeout")


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_public_connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Refuse (and report) every connect to an address that is not loopback."""
    attempted: list[object] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            attempted.append(address)
            raise ConnectionRefusedError(f"test guard: no connects to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            attempted.append(address)
            return 111
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempted
    assert not attempted, f"the test tried to reach {attempted}"


@pytest.fixture
def loopback_target() -> Iterator[ProbeTarget]:
    """A loopback listener standing in for "the internet"."""
    with ProbeTarget() as target:
        yield target


@pytest.fixture(autouse=True)
def plan_state(loopback_target: ProbeTarget) -> Iterator[NetworkMonitor]:
    """A fresh plan cache and a loopback default monitor; both restored afterwards."""
    saved = {name: getattr(NetworkState, name) for name in _PLAN_ATTRIBUTES}
    saved_recheck = NetworkState._recheck_asked
    NetworkState._is_online = None
    NetworkState._last_check = None
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", loopback_target.port)], os_events=False)
    previous = set_default_monitor(monitor)
    try:
        yield monitor
    finally:
        monitor.stop()
        set_default_monitor(previous)
        for name, value in saved.items():
            setattr(NetworkState, name, value)
        NetworkState._recheck_asked = saved_recheck
