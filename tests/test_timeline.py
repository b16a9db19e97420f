"""connmgr.timeline: frozen per-request records from a real manager's signals (no Qt)."""

from __future__ import annotations

import dataclasses
import math
import random
import subprocess
import sys
import threading

import pytest

from connmgr import signals
from connmgr.errors import NetworkError
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer
from connmgr.timeline import (
    RequestTimeline,
    TimelineRecorder,
    TimelineStep,
    format_duration,
    format_rate,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.123, "0.12 s"),
        (0.004, "0.00 s"),
        (0.999, "1.0 s"),
        (2.0, "2.0 s"),
        (7.32596, "7.3 s"),
        (37.4, "37 s"),
        (125, "2 min 5 s"),
        (120, "2 min"),
        (3725, "1 h 2 min"),
        (-5, "0.00 s"),
        (math.nan, "0.00 s"),
        (math.inf, "a long time"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (7.32596, "7.3 requests/s"),
        (10.0, "10 requests/s"),
        (12.6, "13 requests/s"),
        (1.0, "1 request/s"),
        (2.0, "2 requests/s"),
        (0.5, "30 requests/min"),
        (1 / 60, "1 request/min"),
        (None, "no limit known"),
        (0, "no limit known"),
        (-1, "no limit known"),
        (math.inf, "no limit"),
    ],
)
def test_format_rate(rate, text):
    assert format_rate(rate) == text


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def manager_for(server, *, retry: RetryConfig, clock=None) -> ConnectionManager:
    clock = clock or FakeClock()
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", server.port)], timeout=0.5, clock=clock)
    return ConnectionManager(
        server.url, retry=retry, monitor=monitor, clock=clock, rng=random.Random(5),
        watch_network=False,
    )  # fmt: skip


FAST = RetryConfig(max_retries=3, base_delay=0.5, max_delay=0.5, jitter_range=0.0)


def test_a_retried_request_reads_attempt_retry_attempt(server):
    with manager_for(server, retry=FAST) as mgr:
        recorder = TimelineRecorder(mgr)
        assert mgr.get("/flaky/a?fail=1&status=503").status_code == 200
        [rec] = recorder.records()
    assert isinstance(rec, RequestTimeline) and not rec.running
    assert rec.outcome == "success" and rec.status == 200 and rec.attempts == 2
    kinds = [s.kind for s in rec.steps if s.kind != "state"]
    assert kinds == ["attempt", "retry", "attempt"]
    texts = [s.text for s in rec.steps if s.kind != "state"]
    assert texts[0].startswith("attempt 1: 503 (")
    assert texts[1] == "retry in 0.50 s (backoff, budget 495/500)"
    assert texts[2].startswith("attempt 2: 200 (")
    assert rec.summary.startswith(
        f"GET {server.url}/flaky/a?fail=1&status=503 — 200 after 2 attempts"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.outcome = "x"  # type: ignore[misc]


def test_a_gate_wait_names_the_servers_retry_after(server):
    with manager_for(server, retry=RetryConfig(max_retries=0)) as mgr:
        recorder = TimelineRecorder(mgr)
        with pytest.raises(NetworkError):
            mgr.get("/status/429?retry_after=2")
        assert mgr.get("/ok").status_code == 200
        first, second = recorder.records()
    assert first.outcome == "throttled"
    assert "attempt 1: 429" in first.steps[0].text
    assert first.summary.endswith("The server asked us to slow down.")
    gate = [s for s in second.steps if s.kind == "gate_wait"]
    assert [s.text for s in gate] == [
        "gate wait 2.0 s (rate_limited: Retry-After: 2 from the server)"
    ]
    assert gate[0].cause == "rate_limited: Retry-After: 2 from the server"
    assert second.steps[-1].text.startswith("attempt 1: 200")
    assert second.elapsed >= 2.0


def test_a_request_that_gave_up_says_so(server):
    with manager_for(
        server, retry=RetryConfig(max_retries=1, base_delay=0.1, jitter_range=0)
    ) as mgr:
        recorder = TimelineRecorder(mgr)
        with pytest.raises(NetworkError):
            mgr.get("/status/503")
        [rec] = recorder.records()
    attempts = [s.text for s in rec.steps if s.kind == "attempt"]
    assert [a.split(" (")[0] for a in attempts] == ["attempt 1: 503", "attempt 2: 503"]
    assert rec.steps[-1].kind == "failed"
    assert rec.summary.split(" — ")[1].startswith("failed after 2 attempts in ")


def test_only_the_last_n_requests_are_kept(server):
    with manager_for(server, retry=FAST) as mgr:
        recorder = TimelineRecorder(mgr, max_requests=3)
        for i in range(5):
            mgr.get(f"/ok?i={i}")
        urls = [r.url for r in recorder.records()]
    assert urls == [f"{server.url}/ok?i={i}" for i in (2, 3, 4)]
    assert recorder.max_requests == 3


def test_requests_on_several_threads_keep_their_own_steps(server):
    with manager_for(server, retry=FAST) as mgr:
        recorder = TimelineRecorder(mgr)
        threads = [
            threading.Thread(target=mgr.get, args=(f"/flaky/k{i}?fail=1&status=503",))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        records = recorder.records()
    assert len(records) == 4
    for rec in records:
        assert [s.kind for s in rec.steps if s.kind != "state"] == ["attempt", "retry", "attempt"]


def test_a_running_request_is_shown_as_running(server):
    clock = FakeClock()
    with manager_for(server, retry=FAST, clock=clock) as mgr:
        recorder = TimelineRecorder(mgr)
        seen: list[RequestTimeline | None] = []

        def look(sender, **kw):
            seen.append(recorder.record_for(kw["request_id"]))

        signals.retry_scheduled.connect(look, sender=mgr)
        try:
            mgr.get("/flaky/r?fail=1&status=503")
        finally:
            signals.retry_scheduled.disconnect(look, sender=mgr)
    [running] = seen
    assert running is not None and running.running
    assert running.summary.endswith("so far)")


def test_close_stops_recording_and_bad_arguments_are_refused(server):
    with pytest.raises(ValueError, match="max_requests"):
        TimelineRecorder(object(), max_requests=0)
    with pytest.raises(TypeError, match="max_requests"):
        TimelineRecorder(object(), max_requests="5")  # type: ignore[arg-type]
    with manager_for(server, retry=FAST) as mgr:
        recorder = TimelineRecorder(mgr)
        recorder.close()
        recorder.close()  # idempotent
        mgr.get("/ok")
        assert recorder.records() == []


def test_garbage_signals_never_reach_the_request():
    sender = object()
    recorder = TimelineRecorder(sender)
    # No request id, nonsense values: logged, never raised into send().
    signals.request_started.send(sender)
    signals.retry_scheduled.send(sender, request_id="x", delay="soon")
    signals.request_finished.send(sender, request_id=None)
    signals.rate_limited.send(sender, wait=-1)
    assert recorder.records() == []
    recorder.close()


def test_the_module_does_not_import_qt():
    code = "import sys, connmgr.timeline; sys.exit('PySide6' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_steps_are_frozen_values():
    step = TimelineStep("attempt", 1.0, "attempt 1: 200 (0.01 s)", duration=0.01)
    assert step == TimelineStep("attempt", 1.0, "attempt 1: 200 (0.01 s)", duration=0.01)
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.text = "x"  # type: ignore[misc]


def test_a_request_that_never_finished_is_closed_by_the_next_on_its_thread():
    sender = object()
    recorder = TimelineRecorder(sender)
    signals.request_started.send(sender, request_id=1, method="GET", url="http://h/a")
    # No request_finished for 1 (an exception outside the error tree): the next
    # request on the same thread closes it instead of leaving it running forever.
    signals.request_started.send(sender, request_id=2, method="GET", url="http://h/b")
    signals.request_finished.send(sender, request_id=2, outcome="success", status=200, attempts=1)
    first, second = recorder.records()
    assert first.request_id == 1 and not first.running and first.outcome == "ended"
    assert second.request_id == 2 and second.status == 200
    recorder.close()
