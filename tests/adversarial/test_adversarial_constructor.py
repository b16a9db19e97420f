"""Wrong argument types fail at construction, naming the argument, before anything is sent."""

from __future__ import annotations

import pytest

from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.timeouts import TimeoutProfiles


@pytest.fixture
def monitor(probe_target):
    return NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], os_events=False)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("retry", "fast"),
        ("retry", {"max_retries": 3}),
        ("policy", {}),
        ("monitor", "x"),
        ("rate_limits", 5),
        ("retry_budget", 5),
        ("timeouts", 30),
        ("session", "requests"),
        ("clock", "now"),
        ("rng", 42),
        ("base_url", b"http://127.0.0.1"),
        ("watch_network", "yes"),
    ],
)
def test_a_wrong_type_raises_type_error_naming_the_argument(argument, value, monitor):
    kwargs = {"monitor": monitor, argument: value}
    with pytest.raises(TypeError, match=rf"\b{argument}\b"):
        ConnectionManager(**kwargs)


def test_a_wrong_type_sends_nothing(fault_server, monitor):
    with pytest.raises(TypeError):
        ConnectionManager(fault_server.url_for("/status/200"), monitor=monitor, policy={})
    assert fault_server.hits("/status/200") == 0


@pytest.mark.parametrize(
    "entry",
    [
        None,
        30,
        "fast",
        ["connect", 5],
    ],
)
def test_a_profile_entry_that_is_not_a_mapping_is_refused_naming_it(entry):
    with pytest.raises((TypeError, ValueError), match="search"):
        TimeoutProfiles.from_dict({"search": entry})
