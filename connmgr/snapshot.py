"""Frozen views of a manager for a UI: one origin's snapshot, and the totals.

Both are values: taking one copies what it shows, so a UI can keep it, compare
it with the next one, or hand it to another thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connmgr.errors import NetworkError
from connmgr.frozen import explain_frozen
from connmgr.machine import ConnectionState
from connmgr.network import NetworkStatus

__all__ = ["ConnectionSnapshot", "ManagerStats"]


@explain_frozen
@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    """A frozen view of one origin (or the worst of all) for a UI.

    ``since`` and ``resume_at`` are clock times (``manager.clock.now()`` scale);
    ``retry_in`` is seconds from ``taken_at`` until a waiting origin may send
    again: the server's pause (``rate_limited``, also while only the client's
    limiter holds the pause) or the circuit's cooldown (``backoff``).
    ``label`` is the words a status bar shows; ``network`` is the monitor's
    status and ``epoch`` its network epoch.
    """

    origin: str | None
    state: ConnectionState
    since: float
    resume_at: float | None
    retry_in: float | None
    last_error: NetworkError | None
    attempts: int
    outcomes: Mapping[str, int]
    rate: float | None
    label: str
    network: NetworkStatus
    taken_at: float
    epoch: int = 0
    stale_served: int = 0


@explain_frozen
@dataclass(frozen=True, slots=True)
class ManagerStats:
    """Totals since the manager was created (for summaries and benchmarks).

    ``logical_requests`` counts the calls that have ended, so it always equals
    ``succeeded`` plus the sum of ``failed_by_class``; ``attempts`` counts every
    attempt that was sent, including those of requests still under way.
    """

    logical_requests: int
    attempts: int
    retries: int
    succeeded: int
    failed_by_class: Mapping[str, int]
    time_in_state: Mapping[str, float]
    stale_served: int = 0
