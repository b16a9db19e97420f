"""Helpers shared by the outbox tests (imported by name: tests/outbox is on sys.path)."""

from __future__ import annotations

import random

from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.retry import RetryConfig

#: The manager's own retries, fast: the outbox's retries are what these tests look at.
FAST_RETRY = RetryConfig(max_retries=0, base_delay=0.01, max_delay=0.02, jitter_range=0.0)


def make_manager(base_url, probe_port, clock=None, **kw):
    """A manager probing a loopback "internet"; on ``clock`` (a FakeClock shared with
    the outbox, so that gates and pauses pass as the outbox's waits do)."""
    monitor = NetworkMonitor(
        [TcpProbe("127.0.0.1", probe_port)],
        timeout=0.3,
        offline_interval=0.05,
        interval=30.0,
        debounce=0.0,
        clock=clock,
    )
    return ConnectionManager(
        base_url,
        monitor=monitor,
        retry=kw.pop("retry", FAST_RETRY),
        policy=kw.pop("policy", MachinePolicy(max_wait=0, cooldown_jitter=0.0, trip_after=1000)),
        rate_limits=OriginRateLimits(
            default=RateLimit(max_requests=10_000, time_window=1.0), clock=clock
        ),
        clock=clock,
        rng=random.Random(3),
        watch_network=False,
        **kw,
    )


def bare_manager(probe_port, clock=None):
    """A manager without a base_url."""
    return make_manager(None, probe_port, clock)
