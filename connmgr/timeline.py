"""What happened to each request, step by step, as frozen records any UI can show (no Qt).

:meth:`ConnectionManager.history() <connmgr.ConnectionManager.history>` returns
the manager's last finished requests as :class:`RequestTimeline` objects
(frozen), oldest first, built from the request loop's own notes: the waits at
the gate and why, the waits for a rate-limit slot, each attempt and its answer,
each retry with its backoff and budget, the state changes it caused. Every
number is already in words for people ("2.0 s", "7.3 requests/s")::

    GET http://127.0.0.1:8080/search — 200 after 2 attempts in 2.6 s
      gate wait 2.0 s (rate_limited: the server's pause)
      attempt 1: 503 (0.12 s)
      retry in 0.50 s (backoff 0.50 s, budget 495/500)
      attempt 2: 200 (0.01 s)

Example::

    mgr.get("/search", params={"q": "daft punk"})
    for record in mgr.history():
        log.info("%s", record.summary)
        for step in record.steps:
            log.info("  %s", step.text)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from connmgr.frozen import explain_frozen

__all__ = [
    "RequestTimeline",
    "TimelineStep",
    "format_duration",
    "format_rate",
]


# --------------------------------------------------------------------------- numbers for people


def format_duration(seconds: float) -> str:
    """Seconds for people: ``"0.12 s"``, ``"2.0 s"``, ``"37 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``.

    Two decimals under a second (an attempt's time), one under ten seconds
    (a wait), whole seconds above. Negative, NaN and infinite values read as
    ``"0.00 s"`` and ``"a long time"``.
    """
    if math.isnan(seconds) or seconds <= 0:
        return "0.00 s"
    if math.isinf(seconds):
        return "a long time"
    if seconds < 0.995:
        return f"{seconds:.2f} s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min"


def format_rate(per_second: float | None) -> str:
    """A request rate for people: ``"7.3 requests/s"``, ``"12 requests/s"``, ``"1 request/min"``."""
    if per_second is None or math.isnan(per_second) or per_second <= 0:
        return "no limit known"
    if math.isinf(per_second):
        return "no limit"
    if per_second < 1:
        per_minute = per_second * 60
        count = (
            f"{per_minute:.1f}".rstrip("0").rstrip(".") if per_minute < 10 else f"{per_minute:.0f}"
        )
        return f"{count} request/min" if count == "1" else f"{count} requests/min"
    count = f"{per_second:.1f}".rstrip("0").rstrip(".") if per_second < 10 else f"{per_second:.0f}"
    return f"{count} request/s" if count == "1" else f"{count} requests/s"


# --------------------------------------------------------------------------- records


@explain_frozen
@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step of a request: a wait, an attempt, a retry, a state change, its end.

    ``kind`` is one of ``"gate_wait"``, ``"slot_wait"``, ``"attempt"``,
    ``"retry"``, ``"state"`` (and ``"failed"`` in records a UI builds itself);
    ``at`` is the manager's clock time the step began; ``duration`` its length
    in seconds when it has one; ``text`` the whole step in words and ``cause``
    the why alone (also inside ``text``, in brackets).
    """

    kind: str
    at: float
    text: str
    cause: str = ""
    duration: float | None = None


@explain_frozen
@dataclass(frozen=True, slots=True)
class RequestTimeline:
    """One request from start to end (or up to now, while ``outcome == "running"``).

    ``outcome`` is the ``request_finished`` outcome (``"success"``,
    ``"transient"``, ``"throttled"``, ``"cancelled"``, ``"gated"`` …), or
    ``"running"`` in a record a UI builds for a request still under way.
    Times are on the manager's clock; ``elapsed`` is seconds from start to end
    (to the last step while running).
    """

    request_id: int
    method: str
    url: str
    operation: str
    started_at: float
    ended_at: float | None
    outcome: str
    status: int | None
    attempts: int
    steps: tuple[TimelineStep, ...]
    error_message: str = ""

    @property
    def running(self) -> bool:
        """Whether the request has not ended yet."""
        return self.ended_at is None

    @property
    def elapsed(self) -> float:
        """Seconds from start to end (or to the last step while running)."""
        end = self.ended_at
        if end is None:
            end = max((s.at + (s.duration or 0.0) for s in self.steps), default=self.started_at)
        return max(0.0, end - self.started_at)

    @property
    def summary(self) -> str:
        """One line: ``"GET http://…/search — 200 after 2 attempts in 2.6 s"``."""
        head = f"{self.method} {self.url}"
        if self.running:
            return f"{head} — running ({format_duration(self.elapsed)} so far)"
        tries = f"{self.attempts} attempt" + ("" if self.attempts == 1 else "s")
        took = format_duration(self.elapsed)
        if self.outcome in ("success", "slow", "stale"):
            code = str(self.status) if self.status is not None else "done"
            if self.outcome == "stale":
                code += " from the cache (stale)"
            return f"{head} — {code} after {tries} in {took}"
        if self.outcome == "cancelled":
            return f"{head} — cancelled after {took}"
        if self.outcome == "gated":
            return f"{head} — not sent ({self.error_message or 'refused before sending'})"
        what = self.error_message or self.outcome
        return f"{head} — failed after {tries} in {took}: {what}"
