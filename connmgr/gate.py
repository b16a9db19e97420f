"""The gate before every attempt: the origin's state, the network, and the cap rule.

:meth:`Gate.enter` lets an attempt through, makes it wait when the wait fits
the cap rule (``min(deadline remaining, policy.max_wait)``), or refuses it
before anything is sent:

* :class:`~connmgr.OfflineError` while the network is gone (unless the call
  waits for it), :class:`~connmgr.CaptivePortalError` behind a captive portal
  for an origin that has not answered on this network;
* :class:`~connmgr.RateLimitError` or :class:`~connmgr.BackoffError` when the
  origin's pause or cooldown would not end in time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from contextlib import AbstractContextManager

from connmgr import signals
from connmgr.call import Call
from connmgr.clock import CancelToken, Clock, interruptible_sleep
from connmgr.errors import CaptivePortalError, OfflineError
from connmgr.machine import ConnectionState, MachinePolicy, StateChange
from connmgr.network import HttpProbe, NetworkMonitor, NetworkStatus
from connmgr.origin_table import OriginEntry, OriginTable
from connmgr.timeouts import TimeoutConfig

__all__ = ["BLOCKED", "Gate"]

#: Network statuses under which nothing can reach an origin: requests fail fast.
BLOCKED = frozenset({NetworkStatus.OFFLINE, NetworkStatus.CAPTIVE_PORTAL})

#: How often a request waiting for the circuit's trial looks at its verdict (seconds).
_TRIAL_POLL = 0.05

_WHY = {
    ConnectionState.RATE_LIMITED: "the server's pause",
    ConnectionState.BACKOFF: "the circuit's cooldown",
}


class Gate:
    """One manager's gate; see the module's docstring.

    Args:
        sender: the manager, as the sender of the ``rate_limited`` signal.
        origins, monitor, policy, clock: the manager's.
        waiting: registers a call's token for one wait (``close()`` ends it).
        emit: sends the state changes a step caused (outside every lock).
        ensure_watcher: starts the monitor's watcher, so the network's return is seen.
    """

    def __init__(
        self,
        sender: object,
        origins: OriginTable,
        monitor: NetworkMonitor,
        policy: MachinePolicy,
        clock: Clock,
        *,
        waiting: Callable[[Call], AbstractContextManager[CancelToken]],
        emit: Callable[[list[StateChange]], None],
        ensure_watcher: Callable[[], None],
    ) -> None:
        self._sender = sender
        self._origins = origins
        self._monitor = monitor
        self._policy = policy
        self._clock = clock
        self._waiting = waiting
        self._emit = emit
        self._ensure_watcher = ensure_watcher
        self._configs: dict[tuple[TimeoutConfig, float], TimeoutConfig] = {}

    def enter(self, call: Call) -> tuple[OriginEntry, bool, TimeoutConfig]:
        """Pass the gate: (the origin's entry, whether this is the circuit's trial, timeouts).

        Raises the gate's errors (nothing sent) when the wait would not fit.
        """
        entry = self._origins.get(call.origin)
        if (
            entry is not None
            and entry.machine.state is ConnectionState.ONLINE
            and self._monitor.status not in BLOCKED
        ):
            # The common case, read without the lock: a state change racing with this
            # read is no different from one that lands just after the request left.
            return entry, False, call.config
        trial_waited = 0.0
        while True:
            self._refuse_behind_a_portal(call)
            entry, verdict, read_factor, changes = self._origins.gate(call.origin)
            self._emit(changes)
            if verdict.action == "pass" and self._monitor.status is not NetworkStatus.OFFLINE:
                return entry, verdict.trial, self._effective(call.config, read_factor)
            cap = call.cap(self._policy.max_wait)
            if verdict.action in ("fail", "pass"):  # offline, as the machine or the monitor says
                if call.wait_for_network and cap > 0 and self._wait_for_network(call, cap):
                    continue
                self._refuse_behind_a_portal(call)
                raise OfflineError(
                    "the network is unreachable", url=call.shown_url, operation=call.operation
                )
            if verdict.wait == math.inf:
                # The trial is out and its verdict has no known time: look again
                # shortly, for as long as the deadline and max_wait allow.
                if cap <= 0 or trial_waited >= self._policy.max_wait:
                    raise call.gate_error(verdict.state, None)
                wait = min(_TRIAL_POLL, cap)
            elif verdict.wait > cap:
                raise call.gate_error(verdict.state, verdict.retry_in)
            else:
                wait = verdict.wait
            if verdict.state is ConnectionState.RATE_LIMITED:
                signals.rate_limited.send(
                    self._sender, origin=call.origin, resume_at=self._clock.now() + wait, wait=wait
                )
            waited_from = self._clock.now()
            with self._waiting(call) as token:
                interruptible_sleep(self._clock, wait, cancel=token)
            call.raise_if_cancelled()
            waited = self._clock.now() - waited_from
            trial_waited += waited
            why = _WHY[verdict.state] if verdict.wait != math.inf else "the circuit's trial"
            call.notes.append(("gate_wait", waited_from, waited, verdict.state.value, why))

    def _wait_for_network(self, call: Call, cap: float) -> bool:
        self._ensure_watcher()
        waited_from = self._clock.now()
        with self._waiting(call) as token:
            back = self._monitor.wait_until_online(cap, cancel=token)
        call.raise_if_cancelled()
        waited = self._clock.now() - waited_from
        call.notes.append(("gate_wait", waited_from, waited, "offline", "waiting for the network"))
        return back

    def _refuse_behind_a_portal(self, call: Call) -> None:
        """Behind a captive portal, an origin that has not answered since fails fast."""
        monitor = self._monitor
        if monitor.status is not NetworkStatus.CAPTIVE_PORTAL:
            return
        entry = self._origins.get(call.origin)
        if entry is not None and entry.answered_epoch == monitor.epoch:
            return  # it answered on this network: the portal lets it through
        check = next((p.url for p in monitor.probes if isinstance(p, HttpProbe)), None)
        raise CaptivePortalError(
            "a captive portal answers instead of the internet: sign in to the network",
            url=call.shown_url,
            operation=call.operation,
            portal_url=check,
        )

    def _effective(self, config: TimeoutConfig, read_factor: float) -> TimeoutConfig:
        """The profile with the state's read factor (degraded: ×1.5, never past total)."""
        if read_factor == 1.0:
            return config
        key = (config, read_factor)
        cached = self._configs.get(key)
        if cached is None:
            read = config.read * read_factor
            if config.total is not None:
                read = min(read, config.total)
            cached = self._configs[key] = dataclasses.replace(config, read=read)
        return cached
