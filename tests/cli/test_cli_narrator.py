"""RequestNarrator: the signals of one request, told with one countdown per wait."""

from __future__ import annotations

import io
import re
import threading

import pytest

from connmgr.commands.narrator import RequestNarrator
from connmgr.errors import ConnectionFailedError, RateLimitError, ServerError
from connmgr.machine import ConnectionState
from connmgr.terminal import Terminal

ORIGIN = "http://127.0.0.1:9"
COUNTDOWN = re.compile(r" in \d+(\.\d)? s$")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def plain(**options):
    out = io.StringIO()
    return RequestNarrator(Terminal(out, live=False), max_retries=3, **options), out


def countdowns(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if COUNTDOWN.search(line)]


def wait_for(predicate, timeout: float = 2.0) -> bool:
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return True
        pause.wait(0.005)
    return predicate()


def retry(narrator, *, delay: float, error=None, attempt: int = 2, most: int = 4) -> None:
    narrator.on_retry(
        None, request_id=1, attempt=attempt, max_attempts=most, delay=delay,
        error=error or ServerError("503", status=503),
    )  # fmt: skip


def test_retries_are_counted_from_one_whatever_the_signal_numbers():
    narrator, out = plain()
    for attempt in (2, 3, 4):
        retry(narrator, delay=0.01, attempt=attempt, most=4)
    text = out.getvalue()
    assert [line for line in text.splitlines() if line.startswith("retry")] == [
        "retry 1/3 in 0.0 s", "retry 2/3 in 0.0 s", "retry 3/3 in 0.0 s",
    ]  # fmt: skip
    assert "/4" not in text
    assert [line.split(":")[0] for line in text.splitlines() if "failed" in line] == [
        "attempt 1 failed", "attempt 2 failed", "attempt 3 failed",
    ]  # fmt: skip
    assert narrator.retries == 3 and len(narrator.attempt_errors) == 3


def test_a_429_and_its_retry_are_one_wait_with_one_countdown():
    narrator, out = plain(grace=5.0)
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=2.0)
    retry(narrator, delay=2.1, error=RateLimitError("429", retry_after=2.0))
    narrator.close()
    assert countdowns(out) == ["retry 1/3 in 2.1 s"]
    assert f"Requests to {ORIGIN} are paused for 2.0 s." in out.getvalue()


def test_a_retry_due_before_the_pause_ends_counts_down_to_the_pause():
    narrator, out = plain(grace=5.0)
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=1.0)
    retry(narrator, delay=0.1)
    # The gate then reports the rest of the same pause: no second countdown.
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=0.85)
    narrator.close()
    assert countdowns(out) == ["retry 1/3 in 1.0 s"]


def test_a_pause_the_request_never_waits_for_gets_no_countdown():
    narrator, out = plain(grace=30.0)
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=30.0)
    timer = narrator._timer
    assert timer is not None
    narrator.on_finished(None, request_id=1)  # the retries ran out: the error follows
    timer.join(2.0)  # cancelled: it ends at once, without showing the pause
    assert not timer.is_alive()
    narrator._show_pending()  # and a timer firing late finds nothing to show
    assert out.getvalue() == ""


def test_a_pause_at_the_gate_is_a_wait_of_its_own():
    narrator, out = plain(grace=0.0)
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=3.0)
    assert wait_for(lambda: countdowns(out))
    assert countdowns(out) == ["sending again in 3.0 s"]
    assert f"rate limited by {ORIGIN}" in out.getvalue()
    # A retry that lands in the same pause, later than the grace, adds no countdown.
    retry(narrator, delay=3.0)
    assert countdowns(out) == ["sending again in 3.0 s"]
    assert "retry 1/3 when the pause ends" in out.getvalue()
    narrator.close()


def test_live_there_is_one_countdown_row_and_it_is_the_retry(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    term = Terminal(Tty())
    assert term.live
    narrator = RequestNarrator(term, max_retries=2, grace=5.0)
    with term:
        narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=2.0)
        retry(narrator, delay=2.0, most=3)
        assert [w.label for w in term._current()] == ["retry 1/2"]
        narrator.on_finished(None, request_id=1)
        assert term._current() == []


@pytest.mark.parametrize(
    "wait", [0.0, -1.0, float("nan"), float("inf"), None, "soon", object(), [2.0]]
)
def test_pauses_of_no_length_or_garbage_are_ignored_without_raising(wait):
    narrator, out = plain(grace=0.0)
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=wait)
    assert narrator._pending is None and out.getvalue() == ""


def test_quiet_prints_nothing_but_still_counts():
    narrator, out = plain(quiet=True, grace=0.0)
    narrator.on_state(None, origin=ORIGIN, old=ConnectionState.ONLINE,
                      new=ConnectionState.DEGRADED, reason="x")  # fmt: skip
    narrator.on_rate_limited(None, origin=ORIGIN, resume_at=0.0, wait=1.0)
    retry(narrator, delay=0.5, error=ConnectionFailedError("refused", kind="refused"))
    narrator.on_started(None, method="GET", url=ORIGIN, operation="default")
    assert out.getvalue() == ""
    assert narrator.retries == 1 and narrator.attempt_errors[0].kind == "refused"


def test_state_changes_and_verbose_starts_are_lines():
    narrator, out = plain(verbose=True)
    narrator.on_started(None, method="GET", url=ORIGIN + "/x", operation="quick")
    narrator.on_state(None, origin=ORIGIN, old=ConnectionState.ONLINE,
                      new=ConnectionState.BACKOFF, reason="5 failures in a row")  # fmt: skip
    assert out.getvalue().splitlines() == [
        f"→ GET {ORIGIN}/x (operation quick)",
        f"state {ORIGIN}: online → backoff (5 failures in a row)",
    ]


def test_signals_from_many_threads_count_every_retry():
    narrator, _out = plain(grace=0.0)
    threads = [
        threading.Thread(target=lambda: [retry(narrator, delay=0.0) for _ in range(25)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert narrator.retries == 100


@pytest.mark.parametrize("delay", [None, "later", float("nan"), float("inf"), -3.0])
def test_a_garbage_retry_delay_is_a_retry_now_not_an_exception(delay):
    narrator, out = plain()
    narrator.on_retry(None, request_id=1, delay=delay, error=None)
    assert narrator.retries == 1
    assert countdowns(out) == ["retry 1/3 in 0.0 s"]


def test_a_state_change_missing_its_arguments_still_prints_a_line():
    narrator, out = plain()
    narrator.on_state(None, origin=ORIGIN)
    assert out.getvalue() == f"state {ORIGIN}: None → None (None)\n"
