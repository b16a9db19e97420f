"""An absurd Retry-After has one rule, for 429 and 503 alike: fail fast, say "later"."""

from __future__ import annotations

import re

import pytest

from connmgr.errors import RateLimitError
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock

DAY = 86400.0
ABSURD = ["999999999", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"]


def manager(probe_target, clock, max_retry_after=None):
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock, os_events=False
    )
    kwargs = {}
    if max_retry_after is not None:
        kwargs = {
            "policy": MachinePolicy(max_retry_after=max_retry_after),
            "retry": RetryConfig(max_retry_after=max_retry_after),
        }
    return ConnectionManager(monitor=monitor, clock=clock, watch_network=False, **kwargs)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("value", ABSURD)
def test_an_absurd_retry_after_fails_fast_after_one_request(
    status, value, fault_server, probe_target
):
    clock = FakeClock(start=0.0)
    route = f"/status/{status}"
    with manager(probe_target, clock) as mgr:
        with pytest.raises(RateLimitError) as info:
            mgr.get(fault_server.url_for(f"{route}?retry_after={value}"))
        assert clock.total_slept == 0.0  # no retry wait, not even a fake one
        assert mgr.state is ConnectionState.RATE_LIMITED
        # The origin is paused for max_retry_after (300 s by default), not for years.
        assert info.value.retry_after == pytest.approx(300.0)
        assert not re.search(r"\d+\s*days?", info.value.suggestion)
        with pytest.raises(RateLimitError):  # the pause holds: nothing more is sent
            mgr.get(fault_server.url_for(route))
    assert fault_server.hits(route) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_past_a_day_the_message_says_later_not_a_number_of_days(status, fault_server, probe_target):
    clock = FakeClock(start=0.0)
    with (
        manager(probe_target, clock, max_retry_after=30 * DAY) as mgr,
        pytest.raises(RateLimitError) as info,
    ):
        mgr.get(fault_server.url_for(f"/status/{status}?retry_after=999999999"))
    error = info.value
    assert error.retry_after == pytest.approx(30 * DAY)
    text = f"{error.user_message} {error.suggestion} {error}"
    assert "later" in error.suggestion.lower(), error.suggestion
    assert not re.search(r"\d+\s*days?", text), text
    assert fault_server.hits(f"/status/{status}") == 1
