"""Terminal: plain lines when piped; on a TTY a live area with spinners, countdowns, bars."""

from __future__ import annotations

import io
import os
import re

import pytest

from connmgr.terminal import (
    Terminal,
    format_bytes,
    format_duration,
    format_seconds,
    is_terminal,
    same_destination,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Tty(io.StringIO):
    """An in-memory stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def tty(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return Tty()


def screen(stream: io.StringIO) -> str:
    return ANSI.sub("", stream.getvalue())


def test_plain_terminal_prints_lines_and_announces_waits():
    out = io.StringIO()
    term = Terminal(out, live=False)
    with term:
        term.line("hello", style="bold")
        term.wait("k", "retry 1/3", 1.5)
        term.wait("k2", "silent", 1.5, announce=False)
        term.table("T", ("a", "n"), [("x", "1"), ("longer", "22")])
        with term.working("waiting"), term.transfer("body", 10) as bar:
            bar.advance(4)
            bar.advance(6)
    assert bar.done == 10 and bar.total == 10
    assert out.getvalue().splitlines() == ["hello", "retry 1/3 in 1.5 s", "T", "  a        n",
                                           "  x        1", "  longer  22"]  # fmt: skip


def test_terminal_is_plain_when_piped_or_dumb(monkeypatch, tty):
    assert Terminal(tty).live is True
    assert Terminal(io.StringIO()).live is False
    monkeypatch.setenv("TERM", "dumb")
    assert Terminal(Tty()).live is False
    assert not is_terminal(Tty())


def test_a_closed_stream_is_not_a_terminal():
    stream = io.StringIO()
    stream.close()
    assert not is_terminal(stream)


def test_live_terminal_counts_down_and_clears(tty):
    with Terminal(tty) as term:
        term.wait("r", "retrying search #1", 2.0)
        term.line("a line above the countdown")
        assert [w.label for w in term._current()] == ["retrying search #1"]
        term.relabel("r", "retry 1/3")
        term.relabel("missing", "ignored")
        term.refresh()
        assert [w.label for w in term._current()] == ["retry 1/3"]
        term.done("r")
        assert term._current() == []
    assert "a line above the countdown" in tty.getvalue()
    assert "retry 1/3 in" in screen(tty)


def test_the_spinner_shows_until_a_countdown_says_more(tty):
    term = Terminal(tty)
    assert not term.running
    with term.working("waiting for the response"):
        assert term.running  # it started the live area itself
        term.refresh()
        assert "waiting for the response" in screen(tty)
        term.wait("w", "retry 1/3", 5.0)
        before = len(tty.getvalue())
        term.refresh()
        frame = ANSI.sub("", tty.getvalue()[before:])
        assert "retry 1/3 in" in frame and "waiting for the response" not in frame
    assert not term.running  # and stopped it again


def test_a_transfer_shows_bytes_rate_and_time_left_then_goes(tty):
    with Terminal(tty) as term, term.transfer("↓ out.bin", 2_000_000) as bar:
        bar.advance(500_000)
        term.refresh()
        text = screen(tty)
        assert "↓ out.bin" in text
        assert re.search(r"0\.5/2\.0 MB", text), text
        assert "-:--:--" in text or re.search(r"\d:\d\d:\d\d", text)
    assert term._progress.tasks == []  # the bar went with its block


def test_a_transfer_of_unknown_size_still_counts(tty):
    with Terminal(tty) as term, term.transfer("↓ stdout", None) as bar:
        bar.advance(1234)
        term.refresh()
    assert bar.done == 1234 and "1.2/? kB" in screen(tty)


def test_same_destination_compares_the_files_behind_the_streams(tmp_path):
    read_end, write_end = os.pipe()
    other_read, other_write = os.pipe()
    first = os.fdopen(write_end, "wb")
    second = os.fdopen(os.dup(write_end), "wb")
    other = os.fdopen(other_write, "wb")
    try:
        assert same_destination(first, second)
        assert not same_destination(first, other)
        assert not same_destination(first, io.BytesIO())  # no file descriptor at all
    finally:
        for stream in (first, second, other):
            stream.close()
        os.close(read_end)
        os.close(other_read)


def test_numbers_for_people():
    assert format_bytes(0) == "0 bytes"
    assert format_bytes(1) == "1 byte"
    assert format_bytes(999) == "999 bytes"
    assert format_bytes(1234) == "1.2 kB (1,234 bytes)"
    assert format_bytes(1_234_567) == "1.2 MB (1,234,567 bytes)"
    assert format_bytes(3_000_000_000) == "3.0 GB (3,000,000,000 bytes)"
    assert format_seconds(1.46) == "1.5 s" and format_seconds(42.3) == "42 s"
    assert format_duration(0.0123) == "12 ms" and format_duration(2.5) == "2.50 s"


def test_lines_from_many_threads_stay_whole(tty):
    import threading

    with Terminal(tty) as term:
        threads = [
            threading.Thread(target=lambda i=i: [term.line(f"line {i}-{n}") for n in range(50)])
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = {line.strip() for line in screen(tty).splitlines()}
    assert {f"line {i}-{n}" for i in range(4) for n in range(50)} <= lines
