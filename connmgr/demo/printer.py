"""The terminal view of the demo's story: a live timeline, then the summary tables."""

from __future__ import annotations

import math
import threading

from connmgr.demo.events import DemoEvent
from connmgr.demo.report import DemoReport
from connmgr.demo.timings import DemoTimings
from connmgr.demo.world import DemoWorld
from connmgr.machine import ConnectionState
from connmgr.terminal import Terminal, state_style

__all__ = ["TimelinePrinter"]

# Two waits that end this close together (seconds) are one wait: a retry's jitter
# on top of the server's Retry-After.
_SAME_WAIT = 0.5


def _duration(seconds: float) -> str:
    """``"85 µs"`` for an answer at the gate, ``"1.4 s"`` for one after trying."""
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.01 else f"{seconds:.1f} s"


class TimelinePrinter:
    """The terminal view of the story: a live timeline, then a summary.

    Chapters and steps are headlines; state changes are coloured; each retry
    and rate-limit wait is a line plus a countdown (live on a terminal); fail-fasts
    of the same kind within a second are folded into one line with a count.

    Example::

        with Terminal(sys.stdout) as term:
            printer = TimelinePrinter(term)
            report = run_story(..., on_event=printer)
            printer.summary(report)
    """

    def __init__(self, terminal: Terminal, *, fold: float = 1.0) -> None:
        self.term = terminal
        self.fold = fold
        self._lock = threading.Lock()
        self._folded: dict[str, list[float]] = {}  # error class -> [first at, count, last µs]
        self._last_rate: float = -math.inf
        self._pause_until: float = -math.inf  # story time when the last pause ends

    def __call__(self, event: DemoEvent) -> None:
        """Print one event (thread-safe)."""
        with self._lock:
            if event.kind not in ("fail_fast", "stale"):
                self._flush_folded(event.at)
            stamp = f"{event.at:5.1f}s"
            if event.kind == "chapter":
                self.term.line("")
                self.term.line(f"{stamp}  ━━ {event.text}", style="bold")
            elif event.kind == "step":
                self.term.line(f"{stamp}  ▸ {event.text}", style="bold cyan")
            elif event.kind == "state":
                self.term.line(f"{stamp}  ● {event.text}", style=state_style(event.state))
                if event.wait:
                    self.term.wait(event.key, "trial request", event.wait, announce=False)
            elif event.kind == "retry":
                self.term.line(f"{stamp}    ↻ {event.text}", style="yellow")
                ends = event.at + (event.wait or 0.0)
                # A retry that the server's pause (counting down already) holds until its
                # end is the same wait: it gets no countdown of its own.
                covered = event.at < self._pause_until and ends <= self._pause_until + _SAME_WAIT
                if not covered:
                    self.term.wait(
                        event.key, f"retrying search #{event.key}", ends - event.at, announce=False
                    )
            elif event.kind == "rate_limited":
                # Every gated search reports the same pause; one line per pause.
                if event.at - self._last_rate > 0.5:
                    self._last_rate = event.at
                    self._pause_until = event.at + (event.wait or 0.0)
                    self.term.line(f"{stamp}    ⏸ {event.text}", style="magenta")
                    self.term.wait(
                        event.key, "the server's pause ends", event.wait or 0.0, announce=False
                    )
            elif event.kind in ("fail_fast", "stale"):
                self._fold(event, stamp)
            elif event.kind == "outbox":
                self.term.line(f"{stamp}    ✉ {event.text}", style="bold blue")
            elif event.kind == "failed":
                self.term.line(f"{stamp}    ✗ {event.text}", style="red")
            elif event.kind == "network":
                self.term.line(f"{stamp}  ◆ {event.text}", style="bold")
            else:
                self.term.line(f"{stamp}    {event.text}", style="dim")

    def _fold(self, event: DemoEvent, stamp: str) -> None:
        name = event.error or "error"
        entry = self._folded.get(name)
        if entry is None or event.at - entry[0] > self.fold:
            if entry is not None:
                self._flush_one(name, entry)
            if event.kind == "stale":
                self.term.line(f"{stamp}    ⟲ {event.text}", style="blue")
            else:
                self.term.line(f"{stamp}    ⚡ {event.text}", style="red")
            self._folded[name] = [event.at, 0.0, 0.0]
        else:
            entry[1] += 1
            entry[2] = max(entry[2], (event.elapsed or 0.0) * 1e6)

    def _flush_one(self, name: str, entry: list[float]) -> None:
        if entry[1] and name == "stale":
            count = int(entry[1])
            self.term.line(
                f"        … and {count} more search{'es' if count != 1 else ''} answered from"
                f" the cache (slowest {_duration(entry[2] / 1e6)})",
                style="blue",
            )
        elif entry[1]:
            self.term.line(
                f"        … and {int(entry[1])} more {name} fail-fast"
                f"{'s' if entry[1] != 1 else ''} (slowest {entry[2]:.0f} µs, no request sent)",
                style="red",
            )

    def _flush_folded(self, now: float) -> None:
        for name, entry in list(self._folded.items()):
            self._flush_one(name, entry)
            del self._folded[name]

    def header(self, world: DemoWorld | None, timings: DemoTimings, workers: int) -> None:
        """What is about to happen, and which timings were shortened."""
        where = f" at {world.api.url}" if world is not None else ""
        self.term.line(
            f"connmgr demo: {workers} worker threads search a store API (a loopback FaultServer"
            f"{where}) through one ConnectionManager while the world misbehaves.",
            style="bold",
        )
        self.term.line(timings.describe(), style="dim")

    def summary(self, report: DemoReport) -> None:
        """The closing tables: counts, failures by class, time in each state."""
        with self._lock:
            self._flush_folded(report.elapsed)
        self.term.line("")
        failed = sum(report.failed.values())
        rows = [
            ("searches (logical requests)", str(report.searches)),
            ("  succeeded", str(report.succeeded)),
            ("  failed (with a plain-words error)", str(failed)),
            ("  cancelled when the demo ended", str(report.cancelled)),
            ("attempts sent to the server", str(report.server_hits)),
            ("retries", str(report.retries)),
            ("sends per search (a fail-fast sends none)", f"{report.sends_per_search:.2f}"),
        ]
        if report.stale:
            rows.insert(2, ("  of which answered from the cache (stale)", str(report.stale)))
        if report.fail_fast:
            median = (report.fail_fast_median or 0.0) * 1e6
            rows.append(
                ("fail-fasts (no request sent)", f"{report.fail_fast} (median {median:.0f} µs)")
            )
        self.term.table(f"Summary after {report.elapsed:.1f} s", ("", "count"), rows)
        if report.failed:
            self.term.line("")
            self.term.table(
                "Failures by class",
                ("error", "count", "what the user is told"),
                [
                    (name, str(count), report.messages.get(name, ""))
                    for name, count in sorted(report.failed.items(), key=lambda kv: -kv[1])
                ],
                align="lrl",
            )
        if report.time_in_state:
            self.term.line("")
            self.term.table(
                "Time in each state",
                ("state", "seconds"),
                [
                    (state.value, f"{report.time_in_state.get(state.value, 0.0):.1f}")
                    for state in ConnectionState
                ],
            )
        self.term.line("")
        visited = ", ".join(state.value for state in report.states_visited)
        self.term.line(f"states visited: {visited}")
        if report.accounted:
            self.term.line(
                f"every search accounted for: {report.searches} = {report.succeeded} succeeded"
                f" + {failed} failed + {report.cancelled} cancelled; nothing escaped the error"
                " tree.",
                style="green",
            )
        for miss in report.missed:
            self.term.line(f"missed: {miss}", style="bold red")
        for problem in report.unexpected:
            self.term.line(f"unexpected: {problem}", style="bold red")
