"""The per-origin state of one manager: each origin's machine, limiter and last error.

:class:`OriginTable` is the only place that touches an origin's
:class:`~connmgr.machine.OriginMachine`, always under its one lock, and it
returns the :class:`~connmgr.machine.StateChange` list of every step so that
the manager can send signals *outside* the lock.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from types import MappingProxyType

from connmgr.clock import Clock
from connmgr.errors import NetworkError, Outcome
from connmgr.machine import (
    STATE_EFFECTS,
    ConnectionState,
    GateVerdict,
    MachinePolicy,
    OriginMachine,
    StateChange,
)
from connmgr.network import NetworkStatus
from connmgr.ratelimit import AdaptiveRateLimiter, OriginRateLimits
from connmgr.snapshot import ConnectionSnapshot

__all__ = ["OriginEntry", "OriginTable"]


@dataclass(slots=True)
class OriginEntry:
    """One origin's state. Read its fields freely; change them only through the table."""

    machine: OriginMachine
    limiter: AdaptiveRateLimiter
    last_error: NetworkError | None = None
    time_in_state: dict[str, float] = field(default_factory=dict)


class OriginTable:
    """Thread-safe registry of :class:`OriginEntry`, one per ``scheme://host:port``.

    Args:
        policy: the machines' thresholds.
        rate_limits: where each origin's limiter comes from.
        clock, rng: passed to every machine.
    """

    def __init__(
        self,
        policy: MachinePolicy,
        rate_limits: OriginRateLimits,
        *,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.policy = policy
        self.rate_limits = rate_limits
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._entries: dict[str, OriginEntry] = {}
        #: Whether the monitor last said the network is gone (new origins start offline).
        self.offline = False

    def __len__(self) -> int:
        return len(self._entries)

    def origins(self) -> list[str]:
        """Every origin known now."""
        with self._lock:
            return list(self._entries)

    def get(self, origin: str) -> OriginEntry | None:
        """The origin's entry, or ``None``; takes no lock (for the hot path)."""
        return self._entries.get(origin)

    def _entry(self, origin: str) -> OriginEntry:
        # Caller holds self._lock.
        entry = self._entries.get(origin)
        if entry is None:
            initial = ConnectionState.OFFLINE if self.offline else ConnectionState.ONLINE
            machine = OriginMachine(
                origin, self.policy, clock=self._clock, rng=self._rng, initial=initial
            )
            entry = self._entries[origin] = OriginEntry(
                machine, self.rate_limits.for_origin(origin)
            )
        return entry

    # ------------------------------------------------------------------ steps

    def gate(self, origin: str) -> tuple[OriginEntry, GateVerdict, float, list[StateChange]]:
        """Apply the clock and ask the origin's gate: (entry, verdict, read factor, changes)."""
        with self._lock:
            entry = self._entry(origin)
            changes = self._poll(entry)
            verdict = entry.machine.gate()
            return entry, verdict, entry.machine.effect.read_factor, changes

    def record(
        self,
        entry: OriginEntry,
        outcome: Outcome,
        *,
        trial: bool,
        retry_after: float | None,
        error: NetworkError | None,
    ) -> tuple[list[StateChange], float | None]:
        """Record one attempt's outcome: (changes, the machine's ``resume_at``)."""
        with self._lock:
            if error is not None:
                entry.last_error = error
            changes = entry.machine.record(outcome, trial=trial, retry_after=retry_after)
            self._account(changes)
            return changes, entry.machine.resume_at

    def release_trial(self, entry: OriginEntry) -> None:
        """The circuit's trial ended without an outcome (cancelled): let another go."""
        with self._lock:
            entry.machine.release_trial()

    def state(self, origin: str) -> tuple[ConnectionState, list[StateChange]]:
        """The origin's state after applying the clock (``online`` if never contacted)."""
        with self._lock:
            entry = self._entries.get(origin)
            if entry is None:
                return self._default_state(), []
            changes = self._poll(entry)
            return entry.machine.state, changes

    def worst_state(self) -> ConnectionState:
        """The most severe state of any origin (``offline`` while the network is gone)."""
        with self._lock:
            if self.offline:
                return ConnectionState.OFFLINE
            states = [e.machine.state for e in self._entries.values()]
        return max(states, key=lambda s: s.severity, default=ConnectionState.ONLINE)

    def network_changed(self, online: bool) -> list[StateChange]:
        """Move every origin as the monitor says the network went (or came back)."""
        changes: list[StateChange] = []
        with self._lock:
            self.offline = not online
            for entry in self._entries.values():
                changes.extend(entry.machine.network_changed(online))
            self._account(changes)
        return changes

    # ------------------------------------------------------------------ views

    def snapshot(
        self, origin: str | None, network: NetworkStatus
    ) -> tuple[ConnectionSnapshot, list[StateChange]]:
        """A snapshot of ``origin`` (``None``: the worst origin) after applying the clock."""
        with self._lock:
            if origin is not None:
                entry = self._entries.get(origin)
            else:
                entry = max(
                    self._entries.values(),
                    key=lambda e: e.machine.state.severity,
                    default=None,
                )
            changes = self._poll(entry) if entry is not None else []
            return self._snapshot(entry, network), changes

    def snapshot_as_is(self, origin: str, network: NetworkStatus) -> ConnectionSnapshot:
        """A snapshot without applying the clock (for a state change's own payload)."""
        with self._lock:
            return self._snapshot(self._entries.get(origin), network)

    def time_in_state(self) -> dict[str, float]:
        """Seconds spent in each state, summed over origins, up to now."""
        with self._lock:
            now = self._clock.now()
            totals: dict[str, float] = {}
            for entry in self._entries.values():
                for state, seconds in entry.time_in_state.items():
                    totals[state] = totals.get(state, 0.0) + seconds
                current = entry.machine.state.value
                totals[current] = totals.get(current, 0.0) + now - entry.machine.since
            return totals

    # ------------------------------------------------------------------ internals

    def _default_state(self) -> ConnectionState:
        return ConnectionState.OFFLINE if self.offline else ConnectionState.ONLINE

    def _poll(self, entry: OriginEntry) -> list[StateChange]:
        # Caller holds self._lock.
        changes = entry.machine.poll()
        self._account(changes)
        return changes

    def _account(self, changes: list[StateChange]) -> None:
        # Caller holds self._lock: book the time spent in the state just left.
        for change in changes:
            spent = self._entries[change.origin].time_in_state
            spent[change.old.value] = spent.get(change.old.value, 0.0) + change.time_in_old

    def _snapshot(self, entry: OriginEntry | None, network: NetworkStatus) -> ConnectionSnapshot:
        # Caller holds self._lock.
        now = self._clock.now()
        if entry is None:
            state = self._default_state()
            return ConnectionSnapshot(
                None, state, now, None, None, None, 0, MappingProxyType({}),
                None, STATE_EFFECTS[state].label, network, now,
            )  # fmt: skip
        m = entry.machine
        resume_at = None
        if m.state is ConnectionState.RATE_LIMITED:
            resume_at = m.resume_at
        elif m.state is ConnectionState.BACKOFF:
            resume_at = m.cooldown_until
        paused_until = entry.limiter.paused_until
        if paused_until is not None and paused_until > now:
            # The limiter's own pause (a 429 it learned from) counts down too.
            resume_at = paused_until if resume_at is None else max(resume_at, paused_until)
        return ConnectionSnapshot(
            origin=m.origin,
            state=m.state,
            since=m.since,
            resume_at=resume_at,
            retry_in=max(0.0, resume_at - now) if resume_at is not None else None,
            last_error=entry.last_error,
            attempts=m.counters.attempts,
            outcomes=MappingProxyType(dict(m.counters.by_outcome)),
            rate=rate if math.isfinite(rate := entry.limiter.rate) else None,
            label=STATE_EFFECTS[m.state].label,
            network=network,
            taken_at=now,
        )
