"""The per-origin state of one manager: each origin's machine, limiter and last error.

:class:`OriginTable` is the only place that touches an origin's
:class:`~connmgr.machine.OriginMachine`, always under its one lock, and it
returns the :class:`~connmgr.machine.StateChange` list of every step so that
the manager can send signals *outside* the lock.
"""

from __future__ import annotations

import copy
import math
import random
import threading
from dataclasses import dataclass, field
from types import MappingProxyType

from connmgr import forksafe
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
    #: The network epoch of the origin's last response (-1: none yet). A response
    #: in the current epoch proves the origin on this network.
    answered_epoch: int = -1
    #: Clock time of the last request (idle origins are evicted, least recent first).
    last_used: float = 0.0
    #: Stale answers from the cache served instead of a live one.
    stale_served: int = 0

    def holds_a_wait(self, now: float) -> bool:
        """Whether evicting it would forget a pause, a cooldown or a trial under way."""
        m = self.machine
        return (
            (m.resume_at is not None and m.resume_at > now)
            or (m.cooldown_until is not None and m.cooldown_until > now)
            or m.trial_in_flight
            or self.limiter.paused_until is not None
        )


class OriginTable:
    """Thread-safe registry of :class:`OriginEntry`, one per ``scheme://host:port``.

    Memory stays bounded: when more than ``max_origins`` are known, or an origin
    has been idle for ``idle_ttl`` seconds, idle origins are forgotten, least
    recently used first (an app that talks to thousands of hosts keeps the
    ones it uses). An origin whose server pause or circuit cooldown is still
    running is never forgotten: that would undo what the server said.

    Args:
        policy: the machines' thresholds.
        rate_limits: where each origin's limiter comes from.
        clock, rng: passed to every machine.
        max_origins: how many origins to keep at most (beyond those that hold a wait).
        idle_ttl: seconds after which an unused origin is forgotten.
    """

    def __init__(
        self,
        policy: MachinePolicy,
        rate_limits: OriginRateLimits,
        *,
        clock: Clock,
        rng: random.Random,
        max_origins: int = 1024,
        idle_ttl: float = 3600.0,
    ) -> None:
        if isinstance(max_origins, bool) or not isinstance(max_origins, int) or max_origins < 1:
            raise ValueError(f"max_origins must be an integer >= 1, got {max_origins!r}")
        if (
            isinstance(idle_ttl, bool)
            or not isinstance(idle_ttl, int | float)
            or not (0 < idle_ttl < math.inf)
        ):
            raise ValueError(f"idle_ttl must be a finite number of seconds > 0, got {idle_ttl!r}")
        self.policy = policy
        self.rate_limits = rate_limits
        self.max_origins = max_origins
        self.idle_ttl = float(idle_ttl)
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._entries: dict[str, OriginEntry] = {}
        self._next_sweep = clock.now() + self.idle_ttl
        self._stale_total = 0
        #: Whether the monitor last said the network is gone (new origins start offline).
        self.offline = False
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child: a trial sent by a parent's thread never reports back.
        self._lock = threading.Lock()
        for entry in self._entries.values():
            entry.machine.release_trial()

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
            now = self._clock.now()
            if len(self._entries) >= self.max_origins or now >= self._next_sweep:
                self._evict(now)
            initial = ConnectionState.OFFLINE if self.offline else ConnectionState.ONLINE
            machine = OriginMachine(
                origin, self.policy, clock=self._clock, rng=self._rng, initial=initial
            )
            entry = self._entries[origin] = OriginEntry(
                machine, self.rate_limits.for_origin(origin), last_used=now
            )
        return entry

    def _evict(self, now: float) -> None:
        # Caller holds self._lock. Idle origins go first; then, over the cap, the least
        # recently used down to 90% of it, so that the sort is paid once per batch.
        self._next_sweep = now + self.idle_ttl / 4
        idle = [e for e in self._entries.values() if not e.holds_a_wait(now)]
        idle.sort(key=lambda e: e.last_used)
        excess = len(self._entries) - (self.max_origins * 9) // 10
        for entry in idle:
            if excess <= 0 and now - entry.last_used < self.idle_ttl:
                break
            origin = entry.machine.origin
            del self._entries[origin]
            self.rate_limits.forget(origin)
            excess -= 1

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
        answered_epoch: int | None = None,
    ) -> tuple[list[StateChange], float | None]:
        """Record one attempt's outcome: (changes, the machine's ``resume_at``).

        ``answered_epoch`` is the network epoch when a response arrived.
        """
        with self._lock:
            entry.last_used = self._clock.now()
            if answered_epoch is not None:
                entry.answered_epoch = answered_epoch
            if error is not None:
                # A copy, without traceback or cause: the frames would pin every
                # local of the failed call for as long as the origin is known.
                entry.last_error = copy.copy(error)
            changes = entry.machine.record(outcome, trial=trial, retry_after=retry_after)
            self._account(changes)
            return changes, entry.machine.resume_at

    def count_stale(self, origin: str) -> None:
        """A stale answer was served for ``origin`` (it moves nothing else)."""
        with self._lock:
            self._entry(origin).stale_served += 1
            self._stale_total += 1

    def stale_served(self) -> int:
        """Stale answers served since the table was made, evicted origins included."""
        return self._stale_total

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

    def new_epoch(self, slept: float) -> None:
        """A new network: cooldowns learned on the old one end; pauses count the sleep.

        A circuit opened on the old network does not hold on this one: its
        cooldown ends now, so the next request is its trial. A server's own
        pause (``Retry-After``) still holds; after a sleep of ``slept`` seconds,
        which the monotonic clock did not count, it ends that much sooner.
        """
        with self._lock:
            now = self._clock.now()
            for entry in self._entries.values():
                entry.machine.new_epoch(now, slept)
                if slept > 0:
                    entry.limiter.shorten_pause(slept)

    # ------------------------------------------------------------------ views

    def snapshot(
        self, origin: str | None, network: NetworkStatus, epoch: int = 0
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
            return self._snapshot(entry, network, epoch), changes

    def snapshot_as_is(
        self, origin: str, network: NetworkStatus, epoch: int = 0
    ) -> ConnectionSnapshot:
        """A snapshot without applying the clock (for a state change's own payload)."""
        with self._lock:
            return self._snapshot(self._entries.get(origin), network, epoch)

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
            entry = self._entries.get(change.origin)
            if entry is None:
                continue  # evicted while a request to it was still under way
            spent = entry.time_in_state
            spent[change.old.value] = spent.get(change.old.value, 0.0) + change.time_in_old

    def _snapshot(
        self, entry: OriginEntry | None, network: NetworkStatus, epoch: int
    ) -> ConnectionSnapshot:
        # Caller holds self._lock.
        now = self._clock.now()
        if entry is None:
            state = self._default_state()
            return ConnectionSnapshot(
                None, state, now, None, None, None, 0, MappingProxyType({}),
                None, _label(state, network, proven=False), network, now, epoch,
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
            label=_label(m.state, network, proven=entry.answered_epoch == epoch),
            network=network,
            taken_at=now,
            epoch=epoch,
            stale_served=entry.stale_served,
        )


def _label(state: ConnectionState, network: NetworkStatus, *, proven: bool) -> str:
    """The words a status bar shows: the network's, where they say more than the state's.

    Behind a captive portal an origin is offline *because* of the portal: "Sign in
    to the network". While the network is limited, an origin that has not
    answered on it is not known to be reachable: "No internet".
    """
    if network is NetworkStatus.CAPTIVE_PORTAL and state is ConnectionState.OFFLINE:
        return network.label
    if network is NetworkStatus.LIMITED and not proven and state is not ConnectionState.OFFLINE:
        return network.label
    return STATE_EFFECTS[state].label
