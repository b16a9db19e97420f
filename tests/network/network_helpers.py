"""Probe doubles and helpers shared by the network tests."""

from __future__ import annotations

import socket
import threading
import time

from connmgr.network import (
    NetworkMonitor,
    NetworkStatus,
    Probe,
    ProbeResult,
)
from connmgr.testing import FakeClock

ONLINE = NetworkStatus.ONLINE
OFFLINE = NetworkStatus.OFFLINE
PORTAL = NetworkStatus.CAPTIVE_PORTAL
UNKNOWN = NetworkStatus.UNKNOWN


# --------------------------------------------------------------------------- helpers


class CountingProbe:
    """Wraps a real probe and counts how often it runs."""

    def __init__(self, inner: Probe) -> None:
        self.inner = inner
        self.calls = 0
        self.name = inner.name
        self.detects_portal = inner.detects_portal

    def check(self, timeout: float) -> ProbeResult:
        self.calls += 1
        return self.inner.check(timeout)


class ScriptedProbe:
    """Answers from a script (the last answer repeats); can block until released."""

    def __init__(
        self,
        *answers: NetworkStatus,
        portal: bool = False,
        gate: threading.Event | None = None,
    ) -> None:
        self.answers = list(answers) or [ONLINE]
        self.calls = 0
        self.name = "scripted"
        self.detects_portal = portal
        self.gate = gate
        self.entered = threading.Event()

    def check(self, timeout: float) -> ProbeResult:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(5.0)
        status = self.answers[min(self.calls - 1, len(self.answers) - 1)]
        return ProbeResult(self, status, 0.0, "scripted")


class RaisingProbe:
    name = "raises"
    detects_portal = False

    def check(self, timeout: float) -> ProbeResult:
        raise RuntimeError("boom")


def wait_for(predicate, timeout: float = 2.0) -> bool:
    """Poll ``predicate`` until true (a test-side wait, bounded)."""
    end = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < end:
        if predicate():
            return True
        pause.wait(0.002)
    return predicate()


class Events:
    """Collects network_changed events from one monitor."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, NetworkStatus]] = []
        self.arrived = threading.Condition()

    def __call__(self, sender: object, **kwargs: object) -> None:
        with self.arrived:
            online = kwargs["online"]
            status = kwargs["status"]
            assert isinstance(online, bool) and isinstance(status, NetworkStatus)
            self.seen.append((online, status))
            self.arrived.notify_all()

    def statuses(self) -> list[NetworkStatus]:
        return [s for _, s in self.seen]

    def wait_count(self, n: int, timeout: float = 2.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.seen) >= n, timeout)


def monitor_for(*probes: Probe, clock=None, **kwargs) -> NetworkMonitor:
    """A monitor on these probes, a fake clock, and no OS events (unless asked).

    OS events are off by default here: a namespace another test creates would
    otherwise send hints (and extra rounds) to monitors that count rounds.
    """
    kwargs.setdefault("timeout", 0.5)
    kwargs.setdefault("os_events", False)
    return NetworkMonitor(list(probes), clock=clock or FakeClock(), **kwargs)


LIMITED = NetworkStatus.LIMITED


def failing_resolver(host: str, port: int):
    """A resolver for which no name exists (no DNS query leaves the machine)."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def loopback_resolver(*addresses: str):
    """A resolver that answers every name with these loopback addresses (no DNS query)."""

    def resolve(host: str, port: int):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


class Recorder:
    """Collects network_changed and network_epoch_changed payloads, in arrival order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, object]]] = []
        self.arrived = threading.Condition()
        #: When set, only this monitor's events are kept: a watcher left running by
        #: an earlier test in the same process may still send its own.
        self.sender: object | None = None

    def status(self, sender: object, **kwargs: object) -> None:
        self._add("status", sender, kwargs)

    def epoch(self, sender: object, **kwargs: object) -> None:
        self._add("epoch", sender, kwargs)

    def _add(self, kind: str, sender: object, kwargs: dict[str, object]) -> None:
        if self.sender is not None and sender is not self.sender:
            return
        with self.arrived:
            self.seen.append((kind, kwargs))
            self.arrived.notify_all()

    def of(self, kind: str) -> list[dict[str, object]]:
        with self.arrived:
            return [k for t, k in self.seen if t == kind]

    def wait_for(self, predicate, timeout: float = 2.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self), timeout)
