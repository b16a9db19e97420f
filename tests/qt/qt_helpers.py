"""Helpers for the Qt tests: a stand-in manager, a hand-moved clock, a worker-thread runner.

A module of its own (not conftest.py) so the test files can import it by a
name no other test directory uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["FakeManager", "FakeSnapshot", "ManualClock", "in_thread"]


# -- a stand-in manager ---------------------------------------------------------------


@dataclass(frozen=True)
class FakeSnapshot:
    """The fields of ``ConnectionSnapshot`` the widgets read."""

    origin: str | None
    state: Any
    since: float
    resume_at: float | None
    retry_in: float | None
    last_error: Any
    attempts: int
    outcomes: Any
    rate: float | None
    label: str
    network: Any
    taken_at: float


class FakeManager:
    """Has what the widgets need from a ConnectionManager: snapshot, retry_now, clock, monitor.

    Tests change ``state`` / ``resume_at`` / ``network`` and send connmgr.signals
    with this object as sender, from any thread.
    """

    def __init__(self, clock: Any, monitor: Any = None) -> None:
        from connmgr.machine import ConnectionState

        self.clock = clock
        self.monitor = monitor
        self.lock = threading.Lock()
        self.state = ConnectionState.ONLINE
        self.since = clock.now()
        self.resume_at: float | None = None
        self.last_error: Any = None
        self.network: Any = "online"
        self.retry_now_calls = 0
        self.snapshot_threads: set[int] = set()

    def snapshot(self, url: str | None = None) -> FakeSnapshot:
        from connmgr.machine import STATE_EFFECTS

        self.snapshot_threads.add(threading.get_ident())
        with self.lock:
            now = self.clock.now()
            return FakeSnapshot(
                origin="http://127.0.0.1:8080",
                state=self.state,
                since=self.since,
                resume_at=self.resume_at,
                retry_in=None if self.resume_at is None else max(0.0, self.resume_at - now),
                last_error=self.last_error,
                attempts=3,
                outcomes=MappingProxyType({"success": 2, "transient": 1}),
                rate=10.0,
                label=STATE_EFFECTS[self.state].label,
                network=self.network,
                taken_at=now,
            )

    def set_state(self, state: Any, *, resume_in: float | None = None, error: Any = None) -> Any:
        """Change state and return the kwargs of the matching ``state_changed``."""
        with self.lock:
            old = self.state
            self.state = state
            self.since = self.clock.now()
            self.resume_at = None if resume_in is None else self.clock.now() + resume_in
            if error is not None:
                self.last_error = error
        return {
            "origin": "http://127.0.0.1:8080",
            "old": old,
            "new": state,
            "reason": "test",
            "snapshot": self.snapshot(),
        }

    def retry_now(self) -> None:
        self.retry_now_calls += 1


class ManualClock:
    """A clock the test moves by hand (``now()`` only is needed by the widgets)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        self._now += seconds
        return False


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run ``fn`` on a fresh worker thread and wait for it (the GUI thread is not touched)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    if errors:
        raise errors[0]
