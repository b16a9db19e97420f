"""Memory stays bounded however many origins an app talks to."""

from __future__ import annotations

import gc
import random
import socket
import tracemalloc

import pytest

from connmgr.errors import NetworkError
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.origin_table import OriginTable
from connmgr.ratelimit import OriginRateLimits
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock


def closed_ports(count: int) -> list[int]:
    """Loopback ports with no listener (bound, then released)."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.add(sock.getsockname()[1])
    return sorted(ports)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_thousands_of_failing_origins_stay_within_twenty_megabytes(probe_target):
    # 1,500 origins, past the 1,024 kept: the benchmark (bench_loop) runs the full 10,000.
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=60
    )
    hosts = [f"127.0.0.{n}" for n in range(2, 5)]
    ports = closed_ports(500)
    with ConnectionManager(
        monitor=monitor, clock=clock, retry=RetryConfig(max_retries=0), watch_network=False
    ) as mgr:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for host in hosts:
            for port in ports:
                with pytest.raises(NetworkError):
                    mgr.get(f"http://{host}:{port}/x")
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert len(mgr.snapshots()) <= 1024
    assert grown < 20 * 1024 * 1024, f"{grown / 1e6:.1f} MB for 1,500 origins"


def make_table(clock, **kw):
    return OriginTable(
        MachinePolicy(), OriginRateLimits(clock=clock), clock=clock, rng=random.Random(), **kw
    )


def test_the_least_recently_used_idle_origins_go_first():
    clock = FakeClock(start=0.0)
    table = make_table(clock, max_origins=10)
    for n in range(10):
        table.gate(f"http://h{n}:80")
        clock.advance(1)
    entry = table.get("http://h0:80")
    assert entry is not None
    table.record(entry, table.policy and _success(), trial=False, retry_after=None, error=None)
    table.gate("http://new:80")
    assert table.get("http://h0:80") is not None  # used last: kept
    assert table.get("http://h1:80") is None  # the least recently used: gone
    assert len(table) <= 10


def test_an_origin_in_a_server_pause_or_cooldown_is_never_evicted():
    clock = FakeClock(start=0.0)
    table = make_table(clock, max_origins=2)
    paused, _, _, _ = table.gate("http://paused:80")
    table.record(paused, _throttled(), trial=False, retry_after=600.0, error=None)
    assert paused.machine.state is ConnectionState.RATE_LIMITED
    for n in range(50):
        table.gate(f"http://h{n}:80")
    assert table.get("http://paused:80") is paused
    clock.advance(601)
    for n in range(50, 100):
        table.gate(f"http://h{n}:80")
    assert table.get("http://paused:80") is None  # the pause ended: now it may go


def test_idle_origins_expire_after_the_ttl():
    clock = FakeClock(start=0.0)
    table = make_table(clock, idle_ttl=60.0)
    table.gate("http://old:80")
    clock.advance(61)
    table.gate("http://new:80")
    assert table.get("http://old:80") is None
    assert table.get("http://new:80") is not None


@pytest.mark.parametrize(("field", "value"), [("max_origins", 0), ("idle_ttl", float("nan"))])
def test_bad_bounds_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        make_table(FakeClock(), **{field: value})


def _success():
    from connmgr.errors import Outcome

    return Outcome.SUCCESS


def _throttled():
    from connmgr.errors import Outcome

    return Outcome.THROTTLED
