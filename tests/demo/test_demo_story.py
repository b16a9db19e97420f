"""The demo's story, on shortened timings: each chapter's state sequence, and the command."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connmgr.demo.events import DemoEvent
from connmgr.demo.printer import TimelinePrinter
from connmgr.demo.report import DemoReport
from connmgr.demo.runner import run_story
from connmgr.demo.story import CHAPTERS, chapter_names
from connmgr.demo.timings import DemoTimings
from connmgr.demo.world import DemoWorld
from connmgr.machine import ConnectionState
from connmgr.terminal import Terminal

S = ConnectionState
ROOT = Path(__file__).resolve().parents[2]


def is_subsequence(wanted, seen) -> bool:
    it = iter(seen)
    return all(any(item == x for x in it) for item in wanted)


@pytest.fixture(scope="module")
def story():
    """The whole story once, in-process, on the fast timings (about 6 s)."""
    events: list[DemoEvent] = []
    lock = threading.Lock()

    def collect(event: DemoEvent) -> None:
        with lock:
            events.append(event)

    timings = DemoTimings.fast()
    with DemoWorld(timings=timings) as world:
        report = run_story(
            world.manager,
            world.api,
            set_network=world.set_network,
            timings=timings,
            on_event=collect,
        )
        final = world.manager.state_for(world.api.url)
    return report, events, final


def changes_in(events, chapter):
    return [(e.old, e.state) for e in events if e.kind == "state" and e.chapter == chapter]


# -- the whole story ----------------------------------------------------------------------


def test_the_story_visits_all_five_states_and_accounts_for_every_search(story):
    report, _events, final = story
    assert set(report.states_visited) == set(ConnectionState)
    assert report.missed == () and report.unexpected == ()
    assert report.accounted and report.ok
    assert final is S.ONLINE
    assert report.searches > 20 and report.succeeded > 0
    assert report.elapsed < 20  # fast timings; the brisk story takes about 20 s


def test_each_chapter_moves_through_its_states(story):
    _report, events, _final = story
    assert changes_in(events, "healthy") == []

    flaky = changes_in(events, "flaky")
    assert flaky[0] == (S.ONLINE, S.DEGRADED) and flaky[-1][1] is S.ONLINE
    assert S.BACKOFF not in {new for _old, new in flaky}  # the seed never trips the circuit

    outage = [new for _old, new in changes_in(events, "outage")]
    assert is_subsequence([S.BACKOFF, S.BACKOFF, S.DEGRADED, S.ONLINE], outage), outage
    assert (S.BACKOFF, S.BACKOFF) in changes_in(events, "outage")  # the failed trial

    limited = changes_in(events, "rate-limit")
    assert is_subsequence([(S.ONLINE, S.RATE_LIMITED), (S.RATE_LIMITED, S.ONLINE)], limited)

    network = changes_in(events, "network")
    assert network[-1] == (S.OFFLINE, S.ONLINE)
    assert any(new is S.OFFLINE for _old, new in network)


def test_the_timeline_has_retries_waits_and_fail_fasts(story):
    report, events, _final = story
    kinds = {e.kind for e in events}
    assert {"chapter", "step", "state", "retry", "rate_limited", "fail_fast", "network"} <= kinds
    retry = next(e for e in events if e.kind == "retry")
    assert retry.wait is not None and retry.wait > 0
    assert "retry 1/3" in retry.text  # the first retry of three
    assert not any("/4" in e.text for e in events if e.kind == "retry")
    limited = next(e for e in events if e.kind == "rate_limited")
    assert limited.chapter == "rate-limit" and limited.wait and limited.wait > 0
    fast = [e for e in events if e.kind == "fail_fast"]
    assert all(e.chapter in ("outage", "network") for e in fast)
    assert all(e.elapsed is not None and e.elapsed < 0.005 for e in fast)
    assert report.fail_fast == len(fast)
    assert [e.text.split(" ", 1)[1].split(":")[0] for e in events if e.kind == "chapter"] == [
        c.title for c in CHAPTERS
    ]
    assert "OfflineError" in report.failed
    assert report.messages["OfflineError"]  # a plain-words user message per class


def test_the_counts_add_up(story):
    report, _events, _final = story
    assert report.server_hits == report.attempts or report.attempts >= report.server_hits
    assert report.retries > 0
    assert 0 < report.sends_per_search < 2
    assert set(report.time_in_state) == {s.value for s in ConnectionState}
    assert report.time_in_state["online"] > 0


# -- one chapter alone, and the command -----------------------------------------------------


@pytest.mark.parametrize("name", ["rate-limit"])
def test_a_chapter_runs_alone(name):
    timings = DemoTimings.fast()
    with DemoWorld(timings=timings) as world:
        report = run_story(
            world.manager, world.api, set_network=world.set_network,
            chapters=[name], timings=timings, workers=2,
        )  # fmt: skip
    assert report.chapters == (name,) and report.ok
    assert S.RATE_LIMITED in report.states_visited


def test_connmgr_demo_exits_0_and_names_all_five_states():
    env = {**os.environ, "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "connmgr", "demo", "--fast"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for state in ConnectionState:
        assert state.value in done.stdout
    assert "Summary" in done.stdout and "Failures by class" in done.stdout
    assert "Time in each state" in done.stdout
    assert "demo timings" in done.stdout  # says the timings were shortened
    assert "\x1b[" not in done.stdout  # piped: plain lines
    assert "Traceback" not in done.stderr


def test_an_unknown_scenario_is_refused_with_the_list():
    done = subprocess.run(
        [sys.executable, "-m", "connmgr", "demo", "--scenario", "nope"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 64
    for name in chapter_names():
        assert name in done.stdout + done.stderr


# -- the pieces -------------------------------------------------------------------------------


def test_timings_are_validated_and_describe_themselves():
    with pytest.raises(ValueError, match="think"):
        DemoTimings(think=0)
    with pytest.raises(ValueError, match="hold"):
        DemoTimings(hold=True)
    text = DemoTimings().describe()
    assert "[2 s]" in text and "cooldown 1 s" in text
    assert DemoTimings.fast().policy().cooldown_base < DemoTimings().policy().cooldown_base


def test_run_story_refuses_unknown_chapters_and_bad_worker_counts():
    with pytest.raises(ValueError, match="healthy, flaky"):
        run_story(None, None, set_network=lambda up: None, chapters=["nope"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        run_story(None, None, set_network=lambda up: None, workers=0)  # type: ignore[arg-type]


def test_the_printer_folds_fail_fasts_and_prints_a_summary():
    out = io.StringIO()
    printer = TimelinePrinter(Terminal(out, live=False))
    printer(DemoEvent(0.0, "chapter", "5/5 Network lost: ..."))
    for i in range(4):
        printer(DemoEvent(0.1 + i / 100, "fail_fast", "'x' failed fast in 90 µs: Offline.",
                          error="OfflineError", elapsed=90e-6))  # fmt: skip
    printer(DemoEvent(0.5, "state", "offline → online: back", state=S.ONLINE, old=S.OFFLINE))
    report = DemoReport(
        chapters=("network",), elapsed=1.0, searches=10, succeeded=5, cancelled=1,
        failed={"OfflineError": 4}, messages={"OfflineError": "There is no network connection."},
        fail_fast=4, fail_fast_median=90e-6, attempts=6, retries=1, server_hits=6,
        transitions=((S.ONLINE, S.OFFLINE), (S.OFFLINE, S.ONLINE)),
        states_visited=(S.ONLINE, S.OFFLINE), time_in_state={"online": 0.5, "offline": 0.5},
        missed=(), unexpected=(),
    )  # fmt: skip
    printer.summary(report)
    text = out.getvalue()
    assert text.count("failed fast") == 1
    assert "… and 3 more OfflineError fail-fasts" in text
    assert "offline → online" in text
    assert "There is no network connection." in text
    assert "every search accounted for: 10 = 5 succeeded + 4 failed + 1 cancelled" in text
    assert "0.60" in text  # sends per search
