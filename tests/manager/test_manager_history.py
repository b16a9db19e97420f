"""mgr.history(): what each request went through, from the loop's own verdicts and decisions."""

from __future__ import annotations

import dataclasses
import random
import threading

import pytest

from connmgr import signals
from connmgr.errors import RateLimitError, RequestCancelledError, ServerError
from connmgr.machine import MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make(server, probe_target, **kw):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock)
    kw.setdefault("retry", RetryConfig(base_delay=0.5, jitter_range=0.0))
    return ConnectionManager(
        server.url, monitor=monitor, clock=clock, rng=random.Random(1), watch_network=False,
        **kw,
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


def test_a_cancelled_request_keeps_what_it_did_before_the_cancel(server, probe_target):
    with make(server, probe_target) as mgr:

        def cancel_the_wait(sender, **kw):
            kw["cancel"].cancel("the user closed the search")

        signals.retry_scheduled.connect(cancel_the_wait, sender=mgr)
        try:
            with pytest.raises(RequestCancelledError):
                mgr.get("/status/503")
        finally:
            signals.retry_scheduled.disconnect(cancel_the_wait, sender=mgr)
        (record,) = mgr.history()
    assert record.outcome == "cancelled"
    assert [s.kind for s in record.steps if s.kind != "state"] == ["attempt", "retry"]
    assert record.steps[0].text.startswith("attempt 1: 503 (")
    assert " — cancelled after " in record.summary


def test_a_request_refused_at_the_gate_was_never_sent(server, probe_target):
    with make(server, probe_target, policy=MachinePolicy(max_wait=2)) as mgr:
        with pytest.raises(RateLimitError):
            mgr.get("/status/429?retry_after=30")
        with pytest.raises(RateLimitError):  # the origin's pause is longer than max_wait
            mgr.get("/ok")
        throttled, gated = mgr.history()
    assert throttled.outcome == "throttled" and throttled.steps[0].text.startswith("attempt 1: 429")
    assert gated.outcome == "gated"
    assert [s.kind for s in gated.steps] == []  # no attempt: nothing left the client
    assert gated.summary.startswith(f"GET {server.url}/ok — not sent (")
    assert server.requests_to("/ok") == []


def test_a_wait_for_a_rate_limit_slot_is_a_step_with_its_cause(server, probe_target):
    clock = FakeClock(start=0.0)
    limits = OriginRateLimits(default=RateLimit(max_requests=1, time_window=2.0), clock=clock)
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", probe_target.port)], clock=clock)
    with ConnectionManager(
        server.url, monitor=monitor, clock=clock, rate_limits=limits, watch_network=False
    ) as mgr:
        mgr.get("/ok?i=1")
        mgr.get("/ok?i=2")
        first, second = mgr.history()
    assert [s.kind for s in first.steps] == ["attempt"]
    slot = second.steps[0]
    assert slot.kind == "slot_wait" and slot.cause == "the client's rate limit"
    assert slot.text == "rate-limit slot wait 2.0 s (the client's rate limit)"
    assert second.steps[1].text.startswith("attempt 1: 200 (")
    assert second.elapsed == pytest.approx(2.0, abs=0.01)


def test_requests_on_several_threads_keep_their_own_steps(server, probe_target):
    with make(server, probe_target) as mgr:
        threads = [
            threading.Thread(target=mgr.get, args=(f"/flaky/k{i}?fail=1&status=503",))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        records = mgr.history()
    assert sorted(r.url for r in records) == sorted(
        f"{server.url}/flaky/k{i}?fail=1&status=503" for i in range(4)
    )
    for record in records:
        kinds = [s.kind for s in record.steps if s.kind not in ("state", "gate_wait")]
        assert kinds == ["attempt", "retry", "attempt"], record.steps


def test_records_are_frozen(server, probe_target):
    with make(server, probe_target) as mgr:
        mgr.get("/ok")
        (record,) = mgr.history()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.outcome = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.steps[0].text = "x"  # type: ignore[misc]
