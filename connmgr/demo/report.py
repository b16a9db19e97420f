"""What the demo's story did: counts, failures by class, states visited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connmgr.frozen import explain_frozen
from connmgr.machine import ConnectionState

__all__ = ["DemoReport"]


@explain_frozen
@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the story did, for the summary table and for tests.

    ``transitions`` are the origin's state changes in order; ``states_visited``
    the distinct states seen, first visit first (starting with the state at the
    start); ``failed`` counts searches that failed for good per error class, with
    one ``messages`` user message per class; ``fail_fast`` how many of those were
    answered at the gate without touching the network; ``missed`` the expected
    states the script waited for in vain; ``unexpected`` exceptions outside
    connmgr's error tree (there should be none); ``stale`` how many of the
    ``succeeded`` searches the session's cache answered because no live answer
    could be had.
    """

    chapters: tuple[str, ...]
    elapsed: float
    searches: int
    succeeded: int
    cancelled: int
    failed: Mapping[str, int]
    messages: Mapping[str, str]
    fail_fast: int
    fail_fast_median: float | None
    attempts: int
    retries: int
    server_hits: int
    transitions: tuple[tuple[ConnectionState, ConnectionState], ...]
    states_visited: tuple[ConnectionState, ...]
    time_in_state: Mapping[str, float]
    missed: tuple[str, ...]
    unexpected: tuple[str, ...]
    #: Searches answered from the session's cache (counted in ``succeeded`` too).
    stale: int = 0

    @property
    def sends_per_search(self) -> float:
        """Attempts that reached the server per search (1.0 = no retries)."""
        return self.server_hits / self.searches if self.searches else 0.0

    @property
    def accounted(self) -> bool:
        """Every search either succeeded, failed with a connmgr error, or was cancelled."""
        return (
            self.searches == self.succeeded + sum(self.failed.values()) + self.cancelled
            and not self.unexpected
        )

    @property
    def ok(self) -> bool:
        """Every expected state was reached and nothing escaped the error tree."""
        return not self.missed and not self.unexpected and self.accounted
