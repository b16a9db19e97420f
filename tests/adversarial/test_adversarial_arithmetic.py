"""No arithmetic escapes the error tree: huge numbers are refused, long runs never overflow."""

from __future__ import annotations

import pytest

from connmgr.errors import NetworkError, Outcome
from connmgr.machine import ConnectionState, MachinePolicy, OriginMachine
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock
from connmgr.timeouts import TimeoutConfig

TRIALS = 1100  # past 1024, where 2.0 ** trips used to overflow


def test_eleven_hundred_failed_circuit_trials_do_not_overflow():
    clock = FakeClock(start=0.0, auto_advance=False)
    machine = OriginMachine(
        "http://127.0.0.1:9", MachinePolicy(trip_after=1, cooldown_jitter=0.0), clock=clock
    )
    machine.record(Outcome.TRANSIENT)
    assert machine.state is ConnectionState.BACKOFF
    for _ in range(TRIALS):
        assert machine.cooldown_until is not None
        clock.set(machine.cooldown_until)
        verdict = machine.gate()
        assert verdict.trial, verdict
        machine.record(Outcome.TRANSIENT, trial=True)
        assert machine.state is ConnectionState.BACKOFF
    assert machine.cooldown_until - clock.now() == pytest.approx(60.0)  # cooldown_max


def test_a_manager_whose_origin_tripped_1100_times_still_fails_cleanly(fault_server, probe_target):
    # Sending 1,100 real trials takes seconds: the machine test above drives them
    # all; here the counter is set past 1,024 and real trials follow over loopback.
    clock = FakeClock(start=0.0)  # gate waits advance it: no real waiting
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock, os_events=False
    )
    policy = MachinePolicy(trip_after=1, cooldown_base=1.0, cooldown_max=5.0)
    url = fault_server.url_for("/status/503")
    with ConnectionManager(
        monitor=monitor,
        clock=clock,
        policy=policy,
        retry=RetryConfig(max_retries=0),
        watch_network=False,
    ) as mgr:
        with pytest.raises(NetworkError):
            mgr.get(url)
        entry = mgr._origins.get(url.rsplit("/status", 1)[0])
        assert entry is not None
        entry.machine.counters.trips = TRIALS
        for _ in range(20):
            with pytest.raises(NetworkError) as info:
                mgr.get(url)
            assert info.value.retry_after is None or info.value.retry_after < 10
        assert entry.machine.counters.trips == TRIALS + 20
        assert mgr.state is ConnectionState.BACKOFF
    assert fault_server.hits("/status/503") == 21


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_delay": 10**400}, "base_delay"),
        ({"max_delay": 10**400}, "max_delay"),
        ({"base_delay": 1e300, "max_delay": 1e300}, "base_delay"),
        ({"max_retries": 10**400}, "max_retries"),
        ({"exponential_base": 10**400}, "exponential_base"),
        ({"max_retry_after": 10**400}, "max_retry_after"),
    ],
)
def test_retry_config_refuses_numbers_it_cannot_wait(kwargs, field):
    with pytest.raises(ValueError, match=field):
        RetryConfig(**kwargs)


@pytest.mark.parametrize("field", ["connect", "read", "total"])
@pytest.mark.parametrize("value", [1e12, 10**400, float("inf")])
def test_timeout_config_refuses_what_the_platform_cannot_wait(field, value):
    with pytest.raises(ValueError, match=field):
        TimeoutConfig(**{field: value})
