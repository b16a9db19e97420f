"""Terminal output for the ``connmgr`` command and the terminal demo.

:class:`Terminal` writes human-readable lines to one stream: plain lines when
the stream is a pipe or a file, and on a terminal (``TERM`` not ``dumb``,
``rich`` installed) live countdowns that update in place below the lines.

Example::

    with Terminal(sys.stderr) as term:
        term.line("state: online -> degraded", style="yellow")
        term.wait("req-1", "retry 1/3", 1.5)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = [
    "Terminal",
    "format_duration",
    "format_seconds",
    "is_terminal",
    "state_style",
]

# A wait at least this long gets a progress bar on a terminal.
_LONG_WAIT = 1.0
# How often a live countdown is redrawn.
_REFRESH_PER_SECOND = 8


@dataclass(slots=True)
class _Wait:
    label: str
    started: float
    ends: float


class Terminal:
    """Human-readable output for one stream: plain lines, or live countdowns on a TTY.

    ``live=None`` decides by itself: live when the stream is a terminal, ``TERM``
    is not ``dumb`` and ``rich`` is installed. Thread-safe: the demo's workers
    and connmgr's signals write from many threads.

    * :meth:`line` prints one line (``style`` is a rich style; ignored when plain).
    * :meth:`wait` shows a countdown: live, it ticks in place below the lines (with a
      progress bar when it is long) until :meth:`done` or its end; plain, it is
      printed once as ``"<label> in 2.0 s"``.

    Use it as a context manager so the live area is cleared at the end.

    Example::

        with Terminal(sys.stderr) as term:
            term.line("state: online -> degraded", style="yellow")
            term.wait("req-1", "retry 2/4", 1.5)
    """

    def __init__(self, stream: IO[str], *, live: bool | None = None) -> None:
        self.stream = stream
        # Two locks, never nested: rich's refresh thread renders the countdowns (taking
        # _waits_lock) while holding its own lock, and a print takes rich's lock, so
        # printing under _waits_lock could deadlock.
        self._write_lock = threading.Lock()
        self._waits_lock = threading.Lock()
        self._waits: dict[object, _Wait] = {}
        self._console: Any = None
        self._live: Any = None
        if live is None:
            live = is_terminal(stream) and importlib.util.find_spec("rich") is not None
        if live:
            try:
                from rich.console import Console
            except ImportError:
                live = False
            else:
                self._console = Console(file=stream, highlight=False, soft_wrap=True)
        self.live: bool = bool(live)

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Terminal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the live area (no-op when plain or already started)."""
        if not self.live or self._live is not None:
            return
        from rich.live import Live

        self._live = Live(
            _WaitsView(self),
            console=self._console,
            refresh_per_second=_REFRESH_PER_SECOND,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def stop(self) -> None:
        """Clear the live area and stop redrawing."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        with self._waits_lock:
            self._waits.clear()

    # -- output --------------------------------------------------------------------

    def line(self, text: str, *, style: str | None = None) -> None:
        """Print one line."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(text, style=style or ""))  # rich locks by itself
            return
        with self._write_lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(
        self,
        title: str,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        align: str | None = None,
    ) -> None:
        """Print a table: a rich table on a terminal, aligned plain columns otherwise.

        ``align`` has one letter per column, ``l`` or ``r`` (default: the first
        column left, the others right).
        """
        align = align or "l" + "r" * (len(headers) - 1)
        if self._console is not None:
            from rich.table import Table

            table = Table(title=title, title_justify="left", show_edge=False)
            for i, header in enumerate(headers):
                table.add_column(header, justify="left" if align[i] == "l" else "right")
            for row in rows:
                table.add_row(*row)
            self._console.print(table)
            return
        with self._write_lock:
            widths = [
                max(len(str(cell)) for cell in column)
                for column in zip(headers, *rows, strict=False)
            ]
            lines = [title]
            for row in (headers, *rows):
                cells = [
                    str(cell).ljust(width) if align[i] == "l" else str(cell).rjust(width)
                    for i, (cell, width) in enumerate(zip(row, widths, strict=False))
                ]
                lines.append("  " + "  ".join(cells).rstrip())
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def wait(self, key: object, label: str, seconds: float, *, announce: bool = True) -> None:
        """Show a countdown of ``seconds`` under ``key`` (replacing one with the same key).

        Plain output has no countdowns: it prints ``"<label> in N s"`` once, unless
        ``announce`` is false (the caller's own line already said when).
        """
        if not self.live:
            if announce:
                self.line(f"{label} in {format_seconds(seconds)}")
            return
        now = time.monotonic()
        with self._waits_lock:
            self._waits[key] = _Wait(label, now, now + max(0.0, seconds))

    def done(self, key: object) -> None:
        """End the countdown under ``key`` (if any)."""
        with self._waits_lock:
            self._waits.pop(key, None)

    @contextlib.contextmanager
    def working(self, label: str) -> Iterator[None]:
        """A spinner while something runs (live only; plain output shows nothing)."""
        if self._console is None:
            yield
            return
        with self._console.status(label):
            yield

    def _current(self) -> list[_Wait]:
        now = time.monotonic()
        with self._waits_lock:
            # A countdown that reached zero lingers briefly as "now", then goes.
            for key in [k for k, w in self._waits.items() if now > w.ends + 0.5]:
                del self._waits[key]
            return list(self._waits.values())


class _WaitsView:
    """The live area: one row per running countdown (rich renders ``__rich__``)."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def __rich__(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        now = time.monotonic()
        for wait in self.terminal._current():
            remaining = max(0.0, wait.ends - now)
            total = wait.ends - wait.started
            text = Text(
                f"⏳ {wait.label} " + (f"in {remaining:4.1f} s" if remaining > 0 else "now"),
                style="cyan",
            )
            bar: Any = ""
            if total >= _LONG_WAIT:
                bar = ProgressBar(total=total, completed=total - remaining, width=24)
            grid.add_row(text, bar)
        return grid


def is_terminal(stream: IO[str] | IO[bytes]) -> bool:
    """Whether ``stream`` is a terminal a person reads (a TTY, and ``TERM`` is not ``dumb``)."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def format_duration(seconds: float) -> str:
    """``0.0123`` -> ``"12 ms"``; ``2.5`` -> ``"2.50 s"``: an elapsed time for people."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_seconds(value: float) -> str:
    """``1.46`` -> ``"1.5 s"``; ``42.3`` -> ``"42 s"``: a wait for people."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def state_style(state: Any) -> str:
    """A rich style for a :class:`~connmgr.machine.ConnectionState` (its status colour)."""
    from connmgr.machine import STATE_EFFECTS

    effect = STATE_EFFECTS.get(state)
    return f"bold {effect.color}" if effect is not None else "bold"
