"""The connection state machine, declared as data.

One :class:`OriginMachine` per origin (``scheme://host:port``) records the
outcome of every attempt and moves between the five :class:`ConnectionState`
values. The rules are the module-level :data:`TRANSITIONS` table: both
``transitions.Machine`` and the statechart exporter read it, so the diagrams in
``statecharts/`` can never drift from the behaviour. What each state does to a
request is the :data:`STATE_EFFECTS` table.

The half-open trial of a circuit breaker is not a separate state: in
``backoff``, once the cooldown has elapsed, the gate lets exactly one *trial*
request through; its success moves the origin to ``degraded``, its failure
re-opens the circuit with a longer cooldown.

An :class:`OriginMachine` is not thread-safe on its own: the
:class:`~connmgr.ConnectionManager` guards all machines with one lock, and
sends the :class:`StateChange` events it gets back after releasing that lock.

Example::

    m = OriginMachine("https://api.example.com:443", MachinePolicy(), clock=FakeClock())
    m.record(Outcome.TRANSIENT)          # -> [StateChange(online -> degraded)]
    m.state                              # ConnectionState.DEGRADED
"""

from __future__ import annotations

import enum
import functools
import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from connmgr.clock import SYSTEM_CLOCK, Clock
from connmgr.errors import Outcome
from connmgr.frozen import explain_frozen

if TYPE_CHECKING:
    from transitions import Machine

__all__ = [
    "STATE_EFFECTS",
    "TRANSITIONS",
    "ConnectionState",
    "Gate",
    "GateVerdict",
    "MachinePolicy",
    "OriginMachine",
    "Outcome",
    "StateChange",
    "StateEffect",
    "Transition",
]


class ConnectionState(enum.Enum):
    """The state of one origin's connection (``offline`` applies to all origins)."""

    ONLINE = "online"
    DEGRADED = "degraded"
    RATE_LIMITED = "rate_limited"
    BACKOFF = "backoff"
    OFFLINE = "offline"

    @property
    def severity(self) -> int:
        """How bad the state is, for "the worst across origins" (0 = online)."""
        return _SEVERITY[self]


_SEVERITY = {
    ConnectionState.ONLINE: 0,
    ConnectionState.DEGRADED: 1,
    ConnectionState.RATE_LIMITED: 2,
    ConnectionState.BACKOFF: 3,
    ConnectionState.OFFLINE: 4,
}


# --------------------------------------------------------------------------- policy


def _check_number(name: str, value: object, *, minimum: float, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"MachinePolicy.{name} must be a number, got {value!r}")
    if integer and not isinstance(value, int):
        raise ValueError(f"MachinePolicy.{name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float, e.g. 10**400
        number = math.inf
    # No wait may be longer than the platform can wait (threading.TIMEOUT_MAX).
    if not math.isfinite(number) or not minimum <= number <= threading.TIMEOUT_MAX:
        raise ValueError(
            f"MachinePolicy.{name} must be a finite number from {minimum} to "
            f"{threading.TIMEOUT_MAX:g}, got {value!r}"
        )


@explain_frozen
@dataclass(frozen=True, slots=True, kw_only=True)
class MachinePolicy:
    """Thresholds of the state machine (frozen; change with ``dataclasses.replace``).

    Attributes:
        degrade_after: consecutive transient or slow outcomes that move ``online`` to
            ``degraded``.
        recover_after: consecutive successes that move ``degraded`` back to ``online``.
        trip_after: consecutive transient outcomes (attempts, retries included) that open
            the circuit (``backoff``).
        cooldown_base: the first cooldown in seconds; it doubles with every trip.
        cooldown_max: the longest cooldown in seconds.
        cooldown_jitter: a cooldown is shortened by up to this fraction at random, so
            that many clients do not all send their trial at the same instant.
        max_retry_after: the longest server-requested pause that is honoured, seconds.
        default_rate_limit_wait: the pause after a 429 that names no time, seconds.
        max_wait: the longest a request waits at a gate (``rate_limited``, ``backoff``)
            before it raises instead; 0 means never wait.
        slow_fraction: a success slower than ``read timeout × slow_fraction`` of its
            operation's profile counts as *slow*.

    Example::

        policy = MachinePolicy(max_wait=0)      # fail fast at every gate
    """

    degrade_after: int = 1
    recover_after: int = 5
    trip_after: int = 5
    cooldown_base: float = 2.0
    cooldown_max: float = 60.0
    cooldown_jitter: float = 0.2
    max_retry_after: float = 300.0
    default_rate_limit_wait: float = 1.0
    max_wait: float = 30.0
    slow_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("degrade_after", "recover_after", "trip_after"):
            _check_number(name, getattr(self, name), minimum=1, integer=True)
        _check_number("cooldown_base", self.cooldown_base, minimum=0.0)
        _check_number("cooldown_max", self.cooldown_max, minimum=0.0)
        _check_number("max_retry_after", self.max_retry_after, minimum=0.0)
        _check_number("default_rate_limit_wait", self.default_rate_limit_wait, minimum=0.0)
        _check_number("max_wait", self.max_wait, minimum=0.0)
        _check_number("cooldown_jitter", self.cooldown_jitter, minimum=0.0)
        if self.cooldown_jitter >= 1.0:
            raise ValueError(
                f"MachinePolicy.cooldown_jitter must be below 1.0, got {self.cooldown_jitter!r}"
            )
        _check_number("slow_fraction", self.slow_fraction, minimum=0.0)
        if self.slow_fraction == 0:
            raise ValueError("MachinePolicy.slow_fraction must be above 0, got 0")
        if self.cooldown_max < self.cooldown_base:
            raise ValueError(
                f"MachinePolicy.cooldown_max ({self.cooldown_max!r}) must be >= "
                f"cooldown_base ({self.cooldown_base!r})"
            )

    def cooldown(self, trip: int, rng: random.Random) -> float:
        """The cooldown after the ``trip``-th consecutive trip (pure).

        ``cooldown_base × 2^(trip−1)``, capped at ``cooldown_max``, then shortened
        by a random fraction up to ``cooldown_jitter``.
        """
        # The exponent stops growing long before 2.0 ** n could overflow (n > 1023):
        # 2 ** 64 times any base is past every cooldown_max already.
        doublings = min(max(0, trip - 1), 64)
        raw = min(self.cooldown_base * 2.0**doublings, self.cooldown_max)
        return raw * (1.0 - rng.uniform(0.0, self.cooldown_jitter))


# --------------------------------------------------------------------------- tables

ANY = "*"


@explain_frozen
@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the transitions table.

    ``trigger`` is an :class:`Outcome` value or a network/clock event; ``conditions``
    name guard methods of :class:`OriginMachine`; ``label`` is the edge text of the
    statechart (the outcome and the guard, in words).
    """

    trigger: str
    source: tuple[ConnectionState, ...] | str
    dest: ConnectionState
    label: str
    conditions: tuple[str, ...] = ()

    def as_machine_kwargs(self) -> dict[str, Any]:
        """The row as ``transitions.Machine`` expects it."""
        source: Any = self.source if self.source == ANY else list(self.source)
        return {
            "trigger": self.trigger,
            "source": source,
            "dest": self.dest,
            "conditions": list(self.conditions),
        }

    def sources(self) -> frozenset[ConnectionState]:
        """The states this row can leave."""
        if self.source == ANY:
            return frozenset(ConnectionState)
        assert not isinstance(self.source, str)
        return frozenset(self.source)


S = ConnectionState

#: Every transition of the machine, in the order guards are tried for a trigger.
TRANSITIONS: tuple[Transition, ...] = (
    # Transient outcomes: trip the circuit first, else degrade.
    Transition(
        "transient", (S.ONLINE, S.DEGRADED), S.BACKOFF,
        "transient [trip_after in a row]", ("trip_reached",),
    ),
    Transition(
        "transient", (S.ONLINE,), S.DEGRADED,
        "transient [degrade_after in a row]", ("degrade_reached",),
    ),
    Transition(
        "slow", (S.ONLINE,), S.DEGRADED,
        "slow [degrade_after in a row]", ("degrade_reached",),
    ),
    Transition(
        "transient", (S.BACKOFF,), S.BACKOFF,
        "trial transient [cooldown doubles]", ("is_trial",),
    ),
    # Successes.
    Transition(
        "success", (S.DEGRADED,), S.ONLINE,
        "success [recover_after in a row]", ("recovery_reached",),
    ),
    Transition("success", (S.BACKOFF,), S.DEGRADED, "trial success [after cooldown]"),
    Transition("success", (S.OFFLINE,), S.ONLINE, "any success"),
    # Throttling.
    Transition(
        "throttled", (S.ONLINE, S.DEGRADED, S.BACKOFF), S.RATE_LIMITED,
        "throttled (429, Retry-After, no quota left)",
    ),
    Transition(
        "resume", (S.RATE_LIMITED,), S.ONLINE,
        "resume_at passed [came from online]", ("came_from_online",),
    ),
    Transition(
        "resume", (S.RATE_LIMITED,), S.DEGRADED,
        "resume_at passed [came from degraded]", ("came_from_degraded",),
    ),
    Transition(
        "resume", (S.RATE_LIMITED,), S.BACKOFF,
        "resume_at passed [came from backoff]", ("came_from_backoff",),
    ),
    # The network itself.
    Transition("network_down", ANY, S.OFFLINE, "network lost (monitor)"),
    Transition("network_up", (S.OFFLINE,), S.ONLINE, "network back (monitor)"),
)  # fmt: skip

del S

#: For each (trigger, state), the rows that can fire from that state, in table order.
#: Derived once, so recording an outcome that cannot move the state costs a dict lookup
#: instead of a transitions trigger.
_ROWS: Mapping[tuple[str, ConnectionState], tuple[Transition, ...]] = MappingProxyType(
    {
        (trigger, state): rows
        for trigger in {r.trigger for r in TRANSITIONS}
        for state in ConnectionState
        if (rows := tuple(r for r in TRANSITIONS if r.trigger == trigger and state in r.sources()))
    }
)


class Gate(enum.Enum):
    """What the gate does before a request is sent, per state."""

    PASS = "pass"
    WAIT_FOR_RESUME = "wait_for_resume"
    TRIAL = "trial"
    FAIL_FAST = "fail_fast"


@explain_frozen
@dataclass(frozen=True, slots=True)
class StateEffect:
    """What a state does to a request: the gate, the timeouts and the rate.

    ``read_factor`` multiplies the operation's read timeout (never past its total);
    ``rate_factor`` multiplies the origin's configured rate; ``label`` and ``color``
    are what a status bar shows.
    """

    gate: Gate
    read_factor: float
    rate_factor: float
    label: str
    color: str


#: The per-state policy, as a table rather than as if-chains.
STATE_EFFECTS: Mapping[ConnectionState, StateEffect] = MappingProxyType(
    {
        ConnectionState.ONLINE: StateEffect(Gate.PASS, 1.0, 1.0, "Online", "#1a7f37"),
        ConnectionState.DEGRADED: StateEffect(
            Gate.PASS, 1.5, 0.5, "Unstable connection", "#9a6700"
        ),
        ConnectionState.RATE_LIMITED: StateEffect(
            Gate.WAIT_FOR_RESUME, 1.0, 1.0, "Rate limited", "#8250df"
        ),
        ConnectionState.BACKOFF: StateEffect(Gate.TRIAL, 1.0, 1.0, "Server trouble", "#cf222e"),
        ConnectionState.OFFLINE: StateEffect(Gate.FAIL_FAST, 1.0, 1.0, "Offline", "#57606a"),
    }
)


# --------------------------------------------------------------------------- events


@explain_frozen
@dataclass(frozen=True, slots=True)
class StateChange:
    """An origin moved from ``old`` to ``new`` because of ``reason`` (plain words).

    ``at`` is the clock time of the change; ``time_in_old`` how long the origin
    had been in ``old`` (0 for a self-loop such as a failed trial).
    """

    origin: str
    old: ConnectionState
    new: ConnectionState
    reason: str
    at: float
    time_in_old: float


@explain_frozen
@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The gate's answer for one request (pure data; the manager does the waiting).

    ``action`` is ``"pass"``, ``"wait"`` (wait ``wait`` seconds, then ask again)
    or ``"fail"`` (raise at once); ``retry_in`` is how long until the gate may
    open, when known; ``trial`` marks the one request let through after a cooldown.
    """

    action: str
    state: ConnectionState
    wait: float = 0.0
    retry_in: float | None = None
    trial: bool = False


_PASS = {s: GateVerdict("pass", s) for s in ConnectionState}


# --------------------------------------------------------------------------- machine


@dataclass(slots=True)
class _Counters:
    consecutive_successes: int = 0
    consecutive_transient: int = 0
    consecutive_bad: int = 0
    trips: int = 0
    attempts: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


@functools.cache
def shared_machine() -> Machine:
    """The one ``transitions.Machine`` built from :data:`TRANSITIONS`, made on first use.

    Every :class:`OriginMachine` is a *model* of it (transitions' "one machine,
    many models"): the machine holds the states, events and guards once, and each
    origin holds only its own ``state``. Models are not registered with
    ``add_model``, which would bind some 20 methods (6 KB) onto each origin; each
    origin fires its triggers through ``machine.events[name].trigger(model)``.
    """
    # Imported here: building the machine is the only use, and it waits for the first origin.
    from transitions import Machine

    return Machine(
        model=[],
        states=ConnectionState,
        transitions=[row.as_machine_kwargs() for row in TRANSITIONS],
        initial=ConnectionState.ONLINE,
        auto_transitions=False,
        ignore_invalid_triggers=True,
        before_state_change="_before_state_change",
        after_state_change="_after_state_change",
    )


class OriginMachine:
    """The state of one origin and its counters, moved by :func:`shared_machine`.

    Not thread-safe by itself: the manager calls it under its own lock (plain
    ``Machine`` costs about 7 µs a trigger here, ``LockedMachine`` 39 µs). About
    2 KB an origin: the transitions machine itself is built once, for all.
    """

    def __init__(
        self,
        origin: str,
        policy: MachinePolicy,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        initial: ConnectionState = ConnectionState.ONLINE,
    ) -> None:
        self.origin = origin
        self.policy = policy
        self._clock = clock or SYSTEM_CLOCK
        self._rng = rng or random.Random()
        self.counters = _Counters()
        self.since = self._clock.now()
        #: When a ``rate_limited`` origin may send again (clock time), else None.
        self.resume_at: float | None = None
        #: When a ``backoff`` origin may send its trial (clock time), else None.
        self.cooldown_until: float | None = None
        self.trial_in_flight = False
        self._came_from = ConnectionState.ONLINE
        self._previous = initial
        self._is_trial_outcome = False
        self._reason = ""
        self._changes: list[StateChange] = []
        #: The state; ``transitions`` moves it (this object is a model of the shared machine).
        self.state = initial

    # -- guards (named in TRANSITIONS) ------------------------------------------------

    def trip_reached(self) -> bool:
        """Guard: enough transient outcomes in a row to open the circuit."""
        return self.counters.consecutive_transient >= self.policy.trip_after

    def degrade_reached(self) -> bool:
        """Guard: enough transient or slow outcomes in a row to call the link unstable."""
        return self.counters.consecutive_bad >= self.policy.degrade_after

    def recovery_reached(self) -> bool:
        """Guard: enough successes in a row to call the link healthy again."""
        return self.counters.consecutive_successes >= self.policy.recover_after

    def is_trial(self) -> bool:
        """Guard: the outcome being recorded is the circuit's trial request."""
        return self._is_trial_outcome

    def came_from_online(self) -> bool:
        """Guard: the origin was online before it was rate limited."""
        return self._came_from is ConnectionState.ONLINE

    def came_from_degraded(self) -> bool:
        """Guard: the origin was degraded before it was rate limited."""
        return self._came_from is ConnectionState.DEGRADED

    def came_from_backoff(self) -> bool:
        """Guard: the origin was in backoff before it was rate limited."""
        return self._came_from is ConnectionState.BACKOFF

    # -- recording ---------------------------------------------------------------------

    def record(
        self,
        outcome: Outcome,
        *,
        trial: bool = False,
        retry_after: float | None = None,
        reason: str = "",
    ) -> list[StateChange]:
        """Record one attempt's outcome; return the state changes it caused.

        Counters change on every outcome; a trigger fires only when one of its
        rows can leave the current state and that row's guards hold.
        ``retry_after`` (seconds) sets ``resume_at`` for a throttled outcome.
        """
        c = self.counters
        c.attempts += 1
        name = outcome.value
        c.by_outcome[name] = c.by_outcome.get(name, 0) + 1
        if outcome is Outcome.SUCCESS:
            c.consecutive_successes += 1
            c.consecutive_transient = 0
            c.consecutive_bad = 0
        elif outcome is Outcome.SLOW:
            # A slow answer is still an answer: it breaks a run of failures.
            c.consecutive_successes = 0
            c.consecutive_transient = 0
            c.consecutive_bad += 1
        elif outcome is Outcome.TRANSIENT:
            c.consecutive_successes = 0
            c.consecutive_transient += 1
            c.consecutive_bad += 1
        elif outcome is Outcome.THROTTLED:
            c.consecutive_successes = 0
            wait = self.policy.default_rate_limit_wait if retry_after is None else retry_after
            wait = min(max(0.0, wait), self.policy.max_retry_after)
            resume_at = self._clock.now() + wait
            # A later 429 can only push resume_at out, never pull it in.
            if self.state is ConnectionState.RATE_LIMITED:
                self.resume_at = max(self.resume_at or 0.0, resume_at)
                return []
            self._came_from = self.state
            self.resume_at = resume_at
        if trial:
            self.trial_in_flight = False
        # Most outcomes can move nothing from the current state (a success while online;
        # fatal and unreachable never do: the monitor decides about the network): one
        # dict lookup, and no trigger.
        rows = _ROWS.get((name, self.state))
        if rows is None:
            return []
        self._is_trial_outcome = trial
        changes = self._fire(name, reason or None, outcome, rows)
        self._is_trial_outcome = False
        return changes

    def network_changed(self, online: bool) -> list[StateChange]:
        """The monitor says the network went away (or came back)."""
        if online:
            return self._fire("network_up", "the network is back")
        return self._fire("network_down", "the network is unreachable")

    def new_epoch(self, now: float, slept: float) -> None:
        """The network changed: a cooldown ends now; a server pause counts ``slept``.

        ``slept`` is the time the machine was suspended, which a monotonic clock
        does not count.
        """
        if self.cooldown_until is not None:
            self.cooldown_until = now
        if self.resume_at is not None and slept > 0:
            self.resume_at = max(now, self.resume_at - slept)

    def poll(self) -> list[StateChange]:
        """Apply the clock: leave ``rate_limited`` once ``resume_at`` has passed."""
        if (
            self.state is ConnectionState.RATE_LIMITED
            and self.resume_at is not None
            and self._clock.now() >= self.resume_at
        ):
            return self._fire("resume", "the server's pause is over")
        return []

    def _fire(
        self,
        trigger: str,
        reason: str | None,
        outcome: Outcome | None = None,
        rows: tuple[Transition, ...] | None = None,
    ) -> list[StateChange]:
        # Check the guards here first: transitions' trigger() costs ~7 µs even when
        # nothing moves, and most outcomes (a success while online) move nothing.
        if rows is None:
            rows = _ROWS.get((trigger, self.state), ())
        if not rows or not any(all(getattr(self, g)() for g in r.conditions) for r in rows):
            return []
        if reason is None:
            reason = _DEFAULT_REASONS[outcome] if outcome is not None else trigger
        self._reason = reason
        self._changes = []
        shared_machine().events[trigger].trigger(self)
        changes, self._changes = self._changes, []
        return changes

    def _before_state_change(self) -> None:
        self._previous = self.state

    def _after_state_change(self) -> None:
        # Called by transitions after every transition, self-loops included.
        now = self._clock.now()
        old, new = self._previous, self.state
        time_in_old = now - self.since
        self._enter(old, new, now)
        self._changes.append(StateChange(self.origin, old, new, self._reason, now, time_in_old))

    def _enter(self, old: ConnectionState, new: ConnectionState, now: float) -> None:
        c = self.counters
        if new is ConnectionState.BACKOFF:
            # Back from a rate-limit pause, the circuit keeps the cooldown it had.
            if old is not ConnectionState.RATE_LIMITED or self.cooldown_until is None:
                c.trips += 1
                self.cooldown_until = now + self.policy.cooldown(c.trips, self._rng)
            c.consecutive_transient = 0
            self.trial_in_flight = False
        elif new is ConnectionState.ONLINE:
            c.trips = 0
            self.cooldown_until = None
        elif new is ConnectionState.DEGRADED:
            self.cooldown_until = None
            c.consecutive_successes = 0
        if new is not ConnectionState.RATE_LIMITED:
            self.resume_at = None
        self.since = now

    # -- the gate ----------------------------------------------------------------------

    def gate(self) -> GateVerdict:
        """Decide, without waiting, what happens to a request that wants to go now.

        In ``backoff`` after the cooldown, the first caller gets ``trial=True`` and
        must report its outcome with ``record(..., trial=True)``.
        """
        state = self.state
        effect = STATE_EFFECTS[state].gate
        if effect is Gate.PASS:
            return _PASS[state]
        now = self._clock.now()
        if effect is Gate.FAIL_FAST:
            return GateVerdict("fail", state)
        if effect is Gate.WAIT_FOR_RESUME:
            remaining = (self.resume_at or now) - now
            return GateVerdict("wait", state, wait=remaining, retry_in=remaining)
        # Gate.TRIAL
        remaining = (self.cooldown_until or now) - now
        if remaining > 0:
            return GateVerdict("wait", state, wait=remaining, retry_in=remaining)
        if not self.trial_in_flight:
            self.trial_in_flight = True
            return GateVerdict("pass", state, trial=True)
        # The trial is out; the others wait for its verdict.
        return GateVerdict("wait", state, wait=math.inf, retry_in=None)

    def release_trial(self) -> None:
        """The trial request ended without an outcome (cancelled): let another go."""
        self.trial_in_flight = False

    @property
    def effect(self) -> StateEffect:
        """The current state's :class:`StateEffect`."""
        return STATE_EFFECTS[self.state]


_DEFAULT_REASONS: Mapping[Outcome, str] = MappingProxyType(
    {
        Outcome.SUCCESS: "requests are succeeding",
        Outcome.SLOW: "the server is answering slowly",
        Outcome.TRANSIENT: "a request failed",
        Outcome.THROTTLED: "the server asked us to slow down",
        Outcome.UNREACHABLE: "the server could not be reached",
        Outcome.FATAL: "the request was refused",
    }
)
