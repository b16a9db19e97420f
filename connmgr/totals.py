"""A manager's running totals, counted as requests end; frozen into ManagerStats."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from connmgr import forksafe
from connmgr.snapshot import ManagerStats

__all__ = ["Totals"]


class Totals:
    """Thread-safe counters: one short lock per count.

    ``logical_requests`` is counted when a call ends, so it always equals
    ``succeeded`` plus the sum of ``failed_by_class``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logical_requests = 0
        self._attempts = 0
        self._retries = 0
        self._succeeded = 0
        self._failed_by_class: dict[str, int] = {}
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
        self._lock = threading.Lock()

    def attempt(self) -> None:
        """One attempt went out."""
        with self._lock:
            self._attempts += 1

    def retry(self) -> None:
        """One retry was scheduled."""
        with self._lock:
            self._retries += 1

    def succeeded(self) -> None:
        """A call ended with a response."""
        with self._lock:
            self._logical_requests += 1
            self._succeeded += 1

    def failed(self, error_class: str) -> None:
        """A call ended with an error of class ``error_class``."""
        with self._lock:
            self._logical_requests += 1
            self._failed_by_class[error_class] = self._failed_by_class.get(error_class, 0) + 1

    def freeze(self, time_in_state: Mapping[str, float], stale_served: int) -> ManagerStats:
        """The totals now, as a frozen :class:`~connmgr.ManagerStats`."""
        with self._lock:
            return ManagerStats(
                logical_requests=self._logical_requests,
                attempts=self._attempts,
                retries=self._retries,
                succeeded=self._succeeded,
                failed_by_class=MappingProxyType(dict(self._failed_by_class)),
                time_in_state=MappingProxyType(dict(time_in_state)),
                stale_served=stale_served,
            )
