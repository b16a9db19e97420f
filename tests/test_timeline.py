"""connmgr.timeline: the frozen per-request records and the numbers for people (no Qt).

What fills the records (the request loop's own notes) is tested through
``mgr.history()`` in tests/manager/test_manager_history.py.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

from connmgr.timeline import RequestTimeline, TimelineStep, format_duration, format_rate


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


def test_the_module_does_not_import_qt():
    code = "import sys, connmgr.timeline; sys.exit('PySide6' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_steps_are_frozen_values():
    step = TimelineStep("attempt", 1.0, "attempt 1: 200 (0.01 s)", duration=0.01)
    assert step == TimelineStep("attempt", 1.0, "attempt 1: 200 (0.01 s)", duration=0.01)
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.text = "x"  # type: ignore[misc]


def record(outcome: str, *, ended_at: float | None = 12.6, **kw) -> RequestTimeline:
    fields = {
        "request_id": 7, "method": "GET", "url": "http://127.0.0.1:8080/search", "operation": "",
        "started_at": 10.0, "ended_at": ended_at, "outcome": outcome, "status": 200,
        "attempts": 2, "steps": (TimelineStep("attempt", 10.0, "attempt 1: 503", duration=0.1),),
    }  # fmt: skip
    fields.update(kw)
    return RequestTimeline(**fields)


@pytest.mark.parametrize(
    ("rec", "tail"),
    [
        (record("success"), "200 after 2 attempts in 2.6 s"),
        (record("stale", attempts=1), "200 from the cache (stale) after 1 attempt in 2.6 s"),
        (record("slow", status=None), "done after 2 attempts in 2.6 s"),
        (record("cancelled"), "cancelled after 2.6 s"),
        (record("gated", error_message="Offline."), "not sent (Offline.)"),
        (record("gated"), "not sent (refused before sending)"),
        (record("transient", error_message="The server had a problem."),
         "failed after 2 attempts in 2.6 s: The server had a problem."),
        (record("running", ended_at=None), "running (0.10 s so far)"),
    ],
)  # fmt: skip
def test_the_summary_says_how_it_ended(rec, tail):
    assert rec.summary == f"GET http://127.0.0.1:8080/search — {tail}"


def test_elapsed_is_never_negative_and_a_running_record_counts_to_its_last_step():
    assert record("success", ended_at=5.0).elapsed == 0.0  # a clock that went back
    running = record("running", ended_at=None, steps=())
    assert running.running and running.elapsed == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        running.outcome = "x"  # type: ignore[misc]
