"""The offline-first chapter: searches answered stale, a playlist edit queued and delivered."""

from __future__ import annotations

import io
import threading

import pytest

from connmgr.demo import world as world_module
from connmgr.demo.events import DemoEvent
from connmgr.demo.printer import TimelinePrinter
from connmgr.demo.report import DemoReport
from connmgr.demo.runner import run_story
from connmgr.demo.story import PLAYLIST_PATH, StoryContext, chapter_names
from connmgr.demo.timings import DemoTimings
from connmgr.demo.world import DemoWorld
from connmgr.machine import ConnectionState
from connmgr.terminal import Terminal

S = ConnectionState


def play(**world_kwargs):
    events: list[DemoEvent] = []
    lock = threading.Lock()

    def collect(event: DemoEvent) -> None:
        with lock:
            events.append(event)

    timings = DemoTimings.fast()
    with DemoWorld(timings=timings, **world_kwargs) as world:
        report = run_story(
            world.manager, world.api, set_network=world.set_network,
            chapters=["offline-first"], timings=timings, workers=2, on_event=collect,
        )  # fmt: skip
        posts = world.api.requests_to(PLAYLIST_PATH)
        final = world.manager.state_for(world.api.url)
    return report, events, posts, final


@pytest.fixture(scope="module")
def played():
    return play()


def test_it_is_the_last_chapter_of_the_story():
    assert chapter_names()[-1] == "offline-first"


def test_searches_are_answered_from_the_cache_while_offline(played):
    report, events, _posts, final = played
    assert report.ok and report.accounted, (report.missed, report.unexpected)
    # Straight to offline, or by way of degraded when a search in flight was refused.
    assert any(new is S.OFFLINE for _old, new in report.transitions)
    assert report.transitions[-1] == (S.OFFLINE, S.ONLINE) and final is S.ONLINE
    stale = [e for e in events if e.kind == "stale"]
    assert stale and report.stale == len(stale)
    assert report.stale <= report.succeeded
    assert all("answered from the cache" in e.text and "saved" in e.text for e in stale)
    # With a cache holding every query, no search fails while the network is gone.
    assert not report.failed and report.fail_fast == 0
    # Offline, the answer comes from the gate without a socket: well under 10 ms.
    offline_at = next(e.at for e in events if e.kind == "state" and e.state is S.OFFLINE)
    gated = [e.elapsed for e in stale if e.at > offline_at + 0.05]
    assert gated and min(gated) < 0.01


def test_the_playlist_edit_is_queued_with_its_key_and_delivered_once(played):
    _report, events, posts, _final = played
    queued, delivered = (e for e in events if e.kind == "outbox")
    assert "queued on disk as #1" in queued.text and "1 change waiting to be sent" in queued.text
    key = queued.key
    assert isinstance(key, str) and len(key) >= 32 and key in queued.text
    assert delivered.key == key and "delivered #1" in delivered.text and key in delivered.text
    assert "nothing waiting to be sent" in delivered.text
    assert len(posts) == 1
    assert posts[0].headers.get("Idempotency-Key") == key
    assert posts[0].method == "POST" and b'"track": 42' in posts[0].body
    # Queued while offline, delivered after the network came back.
    back = next(e.at for e in events if e.kind == "state" and e.old is S.OFFLINE)
    assert queued.at <= back <= delivered.at


def test_without_an_http_cache_searches_fail_fast_and_the_edit_is_still_delivered(monkeypatch):
    monkeypatch.setattr(world_module, "_network_first_cache", lambda: None)
    report, events, posts, final = play()
    assert report.ok, report.missed
    assert report.stale == 0 and not any(e.kind == "stale" for e in events)
    assert any("no HTTP cache" in e.text for e in events if e.kind == "step")
    assert report.failed.get("OfflineError", 0) > 0
    assert len(posts) == 1 and final is S.ONLINE


def test_serve_stale_is_off_outside_the_chapter():
    ctx = StoryContext(
        None, None, set_network=lambda up: None, timings=DemoTimings.fast(),  # type: ignore[arg-type]
        emit=lambda *a, **k: None, deadline=0.0, stop=threading.Event(),
    )  # fmt: skip
    assert ctx.serve_stale is False and ctx.stale_served == 0
    ctx.count_stale()
    assert ctx.stale_served == 1


def test_the_printer_folds_stale_answers_and_prints_outbox_lines():
    out = io.StringIO()
    printer = TimelinePrinter(Terminal(out, live=False))
    printer(DemoEvent(1.0, "outbox", "queued on disk as #1 (Idempotency-Key k)", key="k"))
    for n in range(4):
        printer(
            DemoEvent(1.1 + n / 10, "stale", f"search {n} answered from the cache",
                      error="stale", elapsed=90e-6 * (n + 1))
        )  # fmt: skip
    printer(DemoEvent(2.0, "step", "the network is back"))
    printer.summary(
        DemoReport(
            chapters=("offline-first",), elapsed=2.0, searches=10, succeeded=10, cancelled=0,
            failed={}, messages={}, fail_fast=0, fail_fast_median=None, attempts=6,
            retries=0, server_hits=6, transitions=(), states_visited=(S.ONLINE,),
            time_in_state={}, missed=(), unexpected=(), stale=4,
        )
    )  # fmt: skip
    text = out.getvalue()
    assert "✉ queued on disk as #1" in text
    assert "⟲ search 0 answered from the cache" in text
    assert "… and 3 more searches answered from the cache (slowest 360 µs)" in text
    assert "search 2 answered" not in text
    assert "of which answered from the cache (stale)" in text
