"""The manager's memory of its last requests, step by step, from the loop itself.

Each :class:`~connmgr.call.Call` notes what its loop did, as it does it: the
waits at the gate and why, each attempt and its verdict, each retry decision
with its delay and budget. The notes are plain tuples (a request that goes
straight through costs one append); they become frozen, worded
:class:`~connmgr.timeline.RequestTimeline` records only when someone asks,
through :meth:`ConnectionManager.history`::

    for record in mgr.history():
        log.info("%s", record.summary)    # GET http://…/search — 200 after 2 attempts in 2.6 s
        for step in record.steps:
            log.info("  %s", step.text)   # attempt 1: 503 (0.12 s)
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connmgr.errors import redact_url

if TYPE_CHECKING:
    from connmgr.timeline import RequestTimeline, TimelineStep

__all__ = ["History", "Note"]

#: One step as the loop notes it: ``(kind, at, duration, detail...)``.
Note = tuple[Any, ...]


@dataclass(slots=True)
class _Ended:
    request_id: int
    method: str
    url: str
    operation: str
    started_at: float
    ended_at: float
    outcome: str
    status: int | None
    attempts: int
    notes: list[Note]
    error_message: str


class History:
    """The last ``size`` requests a manager finished; thread-safe, bounded."""

    def __init__(self, size: int = 50) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"history size must be an integer >= 0, got {size!r}")
        # deque.append and deque.copy are each one C call under the GIL: thread-safe
        # without a lock of our own, so a request pays no lock to be remembered.
        self._ended: collections.deque[_Ended] = collections.deque(maxlen=size)

    def add(
        self,
        *,
        request_id: int,
        method: str,
        url: str,
        operation: str,
        started_at: float,
        ended_at: float,
        outcome: str,
        status: int | None,
        attempts: int,
        notes: list[Note],
        error_message: str = "",
    ) -> None:
        """Keep one ended request (the oldest kept one goes when full)."""
        ended = _Ended(
            request_id, method, url, operation, started_at, ended_at, outcome, status,
            attempts, notes, error_message,
        )  # fmt: skip
        self._ended.append(ended)

    def records(self) -> list[RequestTimeline]:
        """The kept requests as frozen records, oldest first, every number in words."""
        return [_record(e) for e in self._ended.copy()]


def _record(e: _Ended) -> RequestTimeline:
    # The worded records load when someone first asks for them, not with the manager.
    from connmgr.timeline import RequestTimeline

    return RequestTimeline(
        request_id=e.request_id,
        method=e.method,
        url=redact_url(e.url),
        operation=e.operation,
        started_at=e.started_at,
        ended_at=e.ended_at,
        outcome=e.outcome,
        status=e.status,
        attempts=e.attempts,
        steps=tuple(_step(note) for note in e.notes),
        error_message=e.error_message,
    )


def _step(note: Note) -> TimelineStep:
    from connmgr.timeline import TimelineStep, format_duration

    kind, at, duration = note[0], note[1], note[2]
    if kind == "gate_wait":
        state, why = note[3], note[4]
        cause = f"{state}: {why}"
        text = f"gate wait {format_duration(duration)} ({cause})"
    elif kind == "slot_wait":
        cause = note[3]
        text = f"rate-limit slot wait {format_duration(duration)} ({cause})"
    elif kind == "attempt":
        number, answer = note[3], answer_of(note[4], note[5])
        cause = ""
        text = f"attempt {number}: {answer} ({format_duration(duration)})"
    elif kind == "retry":
        why, available, capacity = note[3], note[4], note[5]
        cause = f"{why}, budget {available}/{capacity}"
        text = f"retry in {format_duration(duration)} ({cause})"
    else:  # "state"
        old, new, reason = note[3], note[4], note[5]
        cause = reason
        text = f"{old} → {new} ({reason})"
    return TimelineStep(kind=kind, at=at, text=text, cause=cause, duration=duration)


def answer_of(response_status: int | None, error_kind: str | None) -> str:
    """What one attempt got back, in a word: ``"503"``, ``"connection refused"``."""
    if response_status is not None:
        return str(response_status)
    if error_kind is None:
        return "no answer"
    words = {"refused": "connection refused", "dns": "name not found"}
    return words.get(error_kind, error_kind.replace("_", " "))


def retry_reason(backoff: float, retry_after: float | None) -> str:
    """Why a retry waits what it waits: the backoff, or the server's Retry-After."""
    from connmgr.timeline import format_duration

    if retry_after is not None and retry_after > backoff:
        return f"Retry-After: {format_duration(retry_after)} from the server"
    return f"backoff {format_duration(backoff)}"
