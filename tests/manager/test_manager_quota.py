"""The manager's side of shared quotas and priority lanes."""

from __future__ import annotations

import random
import threading

import pytest

from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.quota import MemoryStore, SQLiteStore
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.testing import FakeClock, FaultServer


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def monitor_for(probe_target, clock=None):
    return NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock)


def test_a_quota_store_given_to_the_manager_holds_its_limits(server, probe_target, tmp_path):
    store = SQLiteStore(tmp_path / "quota.db")
    try:
        with ConnectionManager(
            server.url, monitor=monitor_for(probe_target), quota_store=store
        ) as m:
            assert m.rate_limits.store is store
            assert m.get("/ok").status_code == 200
    finally:
        store.close()


def test_a_quota_store_and_rate_limits_together_are_refused_naming_it(probe_target):
    with pytest.raises(ValueError, match="quota_store"):
        ConnectionManager(quota_store=MemoryStore(), rate_limits=OriginRateLimits())
    with pytest.raises(TypeError, match="quota_store"):
        ConnectionManager(quota_store="redis://127.0.0.1:6379/0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("priority", "error"),
    [("urgent", ValueError), (1.5, TypeError), (True, TypeError), (42, ValueError)],
)
def test_a_bad_priority_is_refused_naming_it_before_sending(server, probe_target, priority, error):
    with (
        ConnectionManager(server.url, monitor=monitor_for(probe_target)) as m,
        pytest.raises(error, match="priority"),
    ):
        m.get("/ok", priority=priority)
    assert server.hits() == 0


def test_an_interactive_request_goes_before_queued_background_ones(server, probe_target):
    clock = FakeClock(start=0.0, auto_advance=False)
    limits = OriginRateLimits(default=RateLimit(1, 1.0), clock=clock)
    with ConnectionManager(
        server.url, monitor=monitor_for(probe_target, clock), clock=clock, rate_limits=limits,
        rng=random.Random(1), watch_network=False,
    ) as m:  # fmt: skip
        m.get("/ok")  # the one slot of this second
        order: list[str] = []
        threads = [
            threading.Thread(target=lambda i=i: (m.get(f"/ok?bg={i}", priority="background"),
                                                 order.append(f"bg{i}")))
            for i in range(3)
        ]  # fmt: skip
        for t in threads:
            t.start()
        limiter = limits.for_origin(server.url)
        while limiter.waiting < 3:
            threading.Event().wait(0.005)
        search = threading.Thread(target=lambda: (m.get("/ok?q=search"), order.append("search")))
        search.start()
        while limiter.waiting < 4:
            threading.Event().wait(0.005)
        for _ in range(4):
            clock.advance(1.0)
            threading.Event().wait(0.05)
        for t in [*threads, search]:
            t.join(5)
        assert order[0] == "search"
        assert sorted(order[1:]) == ["bg0", "bg1", "bg2"]
