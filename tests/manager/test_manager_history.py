"""mgr.history(): what each request went through, from the loop's own verdicts and decisions."""

from __future__ import annotations

import random

import pytest

from connmgr.errors import ServerError
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make(server, probe_target, **kw):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock)
    return ConnectionManager(
        server.url, monitor=monitor, clock=clock, rng=random.Random(1), watch_network=False,
        retry=RetryConfig(base_delay=0.5, jitter_range=0.0), **kw,
    )  # fmt: skip


def test_a_retried_request_tells_each_step_and_its_cause(server, probe_target):
    with make(server, probe_target) as mgr:
        assert mgr.get("/flaky/h?fail=1&status=503").status_code == 200
        (record,) = mgr.history()
    texts = [step.text for step in record.steps]
    assert texts[0].startswith("attempt 1: 503 (")
    assert "online → degraded" in texts[1]
    assert texts[2] == "retry in 0.50 s (backoff 0.50 s, budget 495/500)"  # left after it
    assert texts[3].startswith("attempt 2: 200 (")
    assert record.outcome == "success" and record.status == 200 and record.attempts == 2
    assert record.summary.endswith("200 after 2 attempts in 0.50 s")


def test_a_server_pause_shows_as_a_gate_wait_with_its_cause(server, probe_target):
    with make(server, probe_target) as mgr:
        mgr.get("/flaky/p?fail=1&status=429")
        records = mgr.history()
    kinds = [step.kind for step in records[-1].steps]
    assert "gate_wait" in kinds
    wait = next(s for s in records[-1].steps if s.kind == "gate_wait")
    # The retry waited its 0.5 s backoff; the gate held the rest of the 1 s pause.
    assert wait.text == "gate wait 0.50 s (rate_limited: the server's pause)"


def test_failures_are_kept_with_their_words_and_the_size_is_bounded(server, probe_target):
    with make(server, probe_target, history_size=3, policy=MachinePolicy(max_wait=0)) as mgr:
        for _ in range(5):
            with pytest.raises(ServerError):
                mgr.get("/status/500", params={"token": "s3cret"})
        records = mgr.history()
    assert len(records) == 3
    assert [r.request_id for r in records] == [3, 4, 5]
    assert all("s3cret" not in r.url for r in records)
    assert records[-1].outcome in ("transient", "gated")
    assert records[-1].error_message


def test_a_wrong_history_size_is_refused_naming_it(probe_target):
    with pytest.raises(TypeError, match="history_size"):
        ConnectionManager(history_size="50")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="history size"):
        ConnectionManager(history_size=-1)
