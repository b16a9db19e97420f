"""The demo's terminal timeline: one countdown per wait, also when many searches wait."""

from __future__ import annotations

import io

import pytest

from connmgr.demo.events import DemoEvent
from connmgr.demo.printer import TimelinePrinter
from connmgr.terminal import Terminal


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    term = Terminal(Tty())
    assert term.live
    return term


def pause(at: float, wait: float) -> DemoEvent:
    return DemoEvent(at, "rate_limited", f"rate limited: searches wait {wait:.1f} s",
                     wait=wait, key=("rate", "o"))  # fmt: skip


def retry(at: float, key: int, wait: float) -> DemoEvent:
    return DemoEvent(at, "retry", f"search #{key}: HTTP 429; retry 1/3 in {wait:.1f} s",
                     wait=wait, key=key)  # fmt: skip


def test_retries_held_by_the_servers_pause_share_its_countdown(live):
    printer = TimelinePrinter(live)
    with live:
        printer(pause(1.0, 2.0))
        for key in (1, 2, 3):  # three searches, each told to retry when the pause ends
            printer(retry(1.0, key, 2.1))
        assert [w.label for w in live._current()] == ["the server's pause ends"]


def test_a_retry_past_the_pause_gets_its_own_countdown(live):
    printer = TimelinePrinter(live)
    with live:
        printer(pause(1.0, 2.0))
        printer(retry(1.0, 7, 4.0))  # the backoff outlasts the pause: a wait of its own
        printer(retry(5.0, 8, 0.5))  # after the pause: nothing covers it
        labels = sorted(w.label for w in live._current())
    assert labels == ["retrying search #7", "retrying search #8", "the server's pause ends"]


def test_plain_output_prints_each_retry_line_and_no_countdowns():
    out = io.StringIO()
    printer = TimelinePrinter(Terminal(out, live=False))
    printer(pause(1.0, 2.0))
    printer(retry(1.0, 1, 2.1))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "⏸ rate limited" in lines[0] and "↻ search #1: HTTP 429; retry 1/3" in lines[1]
