"""What the network's status allows: ONLINE sends, LIMITED lets origins prove themselves,
a captive portal and OFFLINE send nothing."""

from __future__ import annotations

import random

import pytest

from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import HttpProbe, NetworkMonitor, NetworkStatus, TcpProbe
from connmgr.outbox import Outbox
from connmgr.testing import FaultServer

LIMITED = getattr(NetworkStatus, "LIMITED", None)


@pytest.fixture
def dead_port():
    server = FaultServer().start()
    port = server.port
    server.close()
    return port


def manager_with(probes, server, clock):
    monitor = NetworkMonitor(probes, timeout=0.5, offline_interval=0.05, clock=clock)
    return ConnectionManager(
        server.url,
        monitor=monitor,
        policy=MachinePolicy(max_wait=0, trip_after=1000),
        clock=clock,
        rng=random.Random(2),
        watch_network=False,
    )


@pytest.mark.skipif(LIMITED is None, reason="this monitor has no LIMITED status")
def test_on_a_limited_network_an_origin_that_answers_gets_its_queue(
    server, probe_target, dead_port, clock, tmp_path
):
    probes = [HttpProbe(f"http://127.0.0.1:{dead_port}/generate_204"),
              TcpProbe("127.0.0.1", probe_target.port)]  # fmt: skip
    mgr = manager_with(probes, server, clock)
    box = Outbox(tmp_path / "o.db", mgr, clock=clock)
    try:
        for i in range(3):
            box.submit("POST", "/echo", json=i)
        assert box.drain(timeout=5) is True
        assert mgr.monitor.status is LIMITED  # still: the app's server is not the internet
        assert [r.body for r in server.requests] == [b"0", b"1", b"2"]
    finally:
        box.close()
        mgr.close()


@pytest.mark.skipif(LIMITED is None, reason="this monitor has no LIMITED status")
def test_on_a_limited_network_an_unreachable_origin_costs_one_attempt(
    server, probe_target, dead_port, clock, tmp_path
):
    probes = [HttpProbe(f"http://127.0.0.1:{dead_port}/generate_204"),
              TcpProbe("127.0.0.1", probe_target.port)]  # fmt: skip
    mgr = manager_with(probes, server, clock)
    box = Outbox(tmp_path / "o.db", mgr, clock=clock)
    try:
        for i in range(3):
            box.submit("POST", "/echo", json=i)
        server.stop()
        assert box.drain(timeout=2) is False
        assert [e.attempts for e in box.pending()] == [1, 0, 0]
    finally:
        box.close()
        mgr.close()


def test_behind_a_captive_portal_nothing_is_sent(server, clock, tmp_path):
    with FaultServer() as portal:
        mgr = manager_with([HttpProbe(portal.url_for("/portal/login"))], server, clock)
        box = Outbox(tmp_path / "o.db", mgr, clock=clock)
        try:
            box.submit("POST", "/echo", json=1)
            assert box.drain(timeout=1) is False
            assert mgr.monitor.status is NetworkStatus.CAPTIVE_PORTAL
            assert server.hits() == 0 and box.pending()[0].attempts == 0
        finally:
            box.close()
            mgr.close()


def test_offline_nothing_is_sent_and_the_return_is_noticed(server, probe_target, clock, tmp_path):
    mgr = manager_with([TcpProbe("127.0.0.1", probe_target.port)], server, clock)
    box = Outbox(tmp_path / "o.db", mgr, clock=clock)
    try:
        probe_target.close()
        box.submit("POST", "/echo", json=1)
        assert box.drain(timeout=1) is False
        assert mgr.monitor.status is NetworkStatus.OFFLINE and server.hits() == 0
        probe_target.reopen()
        # No one tells the outbox: its own check (one per offline_interval) finds the way back.
        assert box.drain(timeout=60) is True
        assert server.hits("/echo") == 1
    finally:
        box.close()
        mgr.close()
