"""The plan's NetworkState names and the replaceable default monitor."""

from __future__ import annotations

import pytest
from network_helpers import (
    ONLINE,
    monitor_for,
)

from connmgr.network import (
    DEFAULT_PROBES,
    NetworkState,
    TcpProbe,
    get_default_monitor,
    set_default_monitor,
)

# --------------------------------------------------------------------------- the plan's names


def test_network_state_delegates_to_a_replaceable_default(listener, closed_port):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port))
    previous = set_default_monitor(monitor)
    try:
        assert get_default_monitor() is monitor
        assert NetworkState.get_default_monitor() is monitor
        assert NetworkState.is_online() is True
        assert NetworkState.is_online(force_check=True) is True
        assert NetworkState.check_specific_host("127.0.0.1", listener.port, timeout=1.0) is True
        assert NetworkState.check_specific_host("127.0.0.1", closed_port, 1.0) is False
        assert monitor.status is ONLINE  # one unreachable host changes nothing
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


def test_network_state_has_no_class_level_state():
    assert NetworkState.__slots__ == ()
    assert not [
        name
        for name, value in vars(NetworkState).items()
        if not name.startswith("__") and not isinstance(value, staticmethod)
    ]
