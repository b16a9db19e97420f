"""Terminal output for the ``connmgr`` command and the terminal demo.

:class:`Terminal` writes human-readable lines to one stream. When the stream
is a pipe or a file, that is all: plain lines, no colours, no escape codes.
On a terminal (a TTY, ``TERM`` not ``dumb``, ``rich`` installed) a live area
below the lines shows what is going on now, redrawn in place:

- a spinner while something runs (:meth:`Terminal.working`), e.g. waiting for
  a response's headers;
- a countdown per wait (:meth:`Terminal.wait`), with a bar when it is long;
- a progress bar per transfer (:meth:`Terminal.transfer`): bytes, rate and
  time left, as httpie and pip show them.

Example::

    with Terminal(sys.stderr) as term:
        term.line("state: online -> degraded", style="yellow")
        term.wait("req-1", "retry 1/3", 1.5)
        with term.transfer("body", total=1_000_000) as bar:
            bar.advance(65536)
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
    "Transfer",
    "format_bytes",
    "format_duration",
    "format_seconds",
    "is_terminal",
    "same_destination",
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


class Transfer:
    """One transfer's progress: bytes so far and the expected total (``None``: unknown).

    On a live terminal it is a progress bar with bytes, rate and time left;
    otherwise it only counts. Get one from :meth:`Terminal.transfer`.
    """

    def __init__(self, total: int | None, progress: Any = None, task: Any = None) -> None:
        self.total = total
        #: Bytes so far.
        self.done = 0
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        """``count`` more bytes arrived."""
        self.done += count
        if self._progress is not None:
            self._progress.update(self._task, advance=count)


class Terminal:
    """Human-readable output for one stream: plain lines, or a live area on a TTY.

    ``live=None`` decides by itself: live when the stream is a terminal, ``TERM``
    is not ``dumb`` and ``rich`` is installed. Thread-safe: the demo's workers
    and connmgr's signals write from many threads.

    * :meth:`line` prints one line (``style`` is a rich style; ignored when plain).
    * :meth:`wait` shows a countdown: live, it ticks in place below the lines (with a
      bar when it is long) until :meth:`done` or its end; plain, it is printed once
      as ``"<label> in 2.0 s"``.
    * :meth:`working` shows a spinner while its block runs (live only).
    * :meth:`transfer` shows a progress bar for a body (live only).

    Use it as a context manager so the live area is cleared at the end.

    Example::

        with Terminal(sys.stderr) as term:
            term.line("state: online -> degraded", style="yellow")
            term.wait("req-1", "retry 1/3", 1.5)
    """

    def __init__(self, stream: IO[str], *, live: bool | None = None) -> None:
        self.stream = stream
        # Two locks, never nested: rich's refresh thread renders the live area (taking
        # _waits_lock) while holding its own lock, and a print takes rich's lock, so
        # printing under _waits_lock could deadlock.
        self._write_lock = threading.Lock()
        self._waits_lock = threading.Lock()
        self._waits: dict[object, _Wait] = {}
        self._activities: dict[int, Any] = {}
        self._console: Any = None
        self._live: Any = None
        self._progress: Any = None
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
            _LiveView(self),
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
            self._activities.clear()

    def refresh(self) -> None:
        """Redraw the live area now (it redraws by itself several times a second)."""
        live = self._live
        if live is not None:
            live.refresh()

    @property
    def running(self) -> bool:
        """Whether the live area is on screen."""
        return self._live is not None

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

    def relabel(self, key: object, label: str) -> None:
        """Rename the countdown under ``key``, keeping its end (no-op if there is none)."""
        with self._waits_lock:
            wait = self._waits.get(key)
            if wait is not None:
                wait.label = label

    def done(self, key: object) -> None:
        """End the countdown under ``key`` (if any)."""
        with self._waits_lock:
            self._waits.pop(key, None)

    @contextlib.contextmanager
    def working(self, label: str) -> Iterator[None]:
        """A spinner with ``label`` while the block runs (live only; plain shows nothing).

        The spinner steps aside while a countdown runs: then the countdown says
        what is happening. Starts the live area if it is not running, and then
        stops it again at the end of the block.
        """
        if not self.live:
            yield
            return
        from rich.spinner import Spinner

        started_here = not self.running
        self.start()
        key = id(object())
        with self._waits_lock:
            self._activities[key] = Spinner("dots", text=label, style="cyan")
        try:
            yield
        finally:
            with self._waits_lock:
                self._activities.pop(key, None)
            if started_here:
                self.stop()

    @contextlib.contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Transfer]:
        """A progress bar for ``total`` bytes (``None``: unknown) while the block runs.

        Live, it shows the bytes so far, the rate and the time left; plain, the
        :class:`Transfer` only counts. The bar goes when the block ends.
        """
        if not self.live:
            yield Transfer(total)
            return
        started_here = not self.running
        self.start()
        progress = self._transfers()
        task = progress.add_task(label, total=total)
        try:
            yield Transfer(total, progress, task)
        finally:
            progress.remove_task(task)
            if started_here:
                self.stop()

    def _transfers(self) -> Any:
        """The rich ``Progress`` that draws the transfers (never started: the live area
        renders it, since rich allows one live display at a time)."""
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}", style="cyan"),
                BarColumn(bar_width=30),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                auto_refresh=False,
            )
        return self._progress

    def _current(self) -> list[_Wait]:
        now = time.monotonic()
        with self._waits_lock:
            # A countdown that reached zero lingers briefly as "now", then goes.
            for key in [k for k, w in self._waits.items() if now > w.ends + 0.5]:
                del self._waits[key]
            return list(self._waits.values())

    def _spinners(self) -> list[Any]:
        with self._waits_lock:
            return list(self._activities.values())


class _LiveView:
    """The live area: spinners, countdowns, transfers (rich renders ``__rich__``)."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        parts: list[Any] = []
        waits = self.terminal._current()
        if not waits:
            parts.extend(self.terminal._spinners())
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        grid.add_column()
        now = time.monotonic()
        for wait in waits:
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
        if waits:
            parts.append(grid)
        progress = self.terminal._progress
        if progress is not None and progress.tasks:
            parts.append(progress.get_renderable())
        return Group(*parts)


def is_terminal(stream: IO[str] | IO[bytes]) -> bool:
    """Whether ``stream`` is a terminal a person reads (a TTY, and ``TERM`` is not ``dumb``)."""
    if os.environ.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def same_destination(first: IO[Any], second: IO[Any]) -> bool:
    """Whether two streams write to the same place (one terminal, one pipe, one file).

    Then what one writes runs on from what the other wrote: a body without a final
    newline on stdout, then a status line on stderr, share a line. ``False`` when
    either has no file descriptor (an in-memory stream).
    """
    try:
        one, two = os.fstat(first.fileno()), os.fstat(second.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)


def format_duration(seconds: float) -> str:
    """``0.0123`` -> ``"12 ms"``; ``2.5`` -> ``"2.50 s"``: an elapsed time for people."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_seconds(value: float) -> str:
    """``1.46`` -> ``"1.5 s"``; ``42.3`` -> ``"42 s"``: a wait for people."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def format_bytes(count: int) -> str:
    """``1`` -> ``"1 byte"``; ``1234567`` -> ``"1.2 MB (1,234,567 bytes)"``: a size for people."""
    if count == 1:
        return "1 byte"
    if count < 1000:
        return f"{count} bytes"
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if count >= size:
            return f"{count / size:.1f} {unit} ({count:,} bytes)"
    return f"{count / 1e3:.1f} kB ({count:,} bytes)"


def state_style(state: Any) -> str:
    """A rich style for a :class:`~connmgr.machine.ConnectionState` (its status colour)."""
    from connmgr.machine import STATE_EFFECTS

    effect = STATE_EFFECTS.get(state)
    return f"bold {effect.color}" if effect is not None else "bold"
