"""NetworkState: the original plan's static names and class-level cache, agreeing with the monitor.

Code written for the plan reads and writes ``NetworkState._is_online`` and
``NetworkState._last_check`` (a cache valid for ``_check_interval`` seconds of
``time.time()``), and its tests simulate the network by patching
``socket.create_connection``. Both work here: the checks call
``socket.create_connection`` at call time, through the :mod:`socket` module.

What connmgr adds is agreement with the default :class:`NetworkMonitor` (the one
a :class:`~connmgr.ConnectionManager` uses): a TCP handshake cannot see a captive
portal, so while the monitor's own probes say ``CAPTIVE_PORTAL`` or ``LIMITED``
the answer is ``False``; and when the handshake contradicts what the monitor
believes, the monitor is asked to re-probe in the background. Nothing here
probes through the monitor while it has never been asked (``UNKNOWN``), so a
test that patches ``socket.create_connection`` touches no real network.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

from connmgr.frozen import explain_frozen
from connmgr.network.default import get_default_monitor, set_default_monitor
from connmgr.network.monitor import NetworkMonitor
from connmgr.network.probes import Probe, ProbeResult
from connmgr.network.sockets import describe_failure
from connmgr.network.status import NetworkStatus

__all__ = ["ConnectProbe", "NetworkState"]

# The monitor is asked to re-probe at most this often (monotonic seconds): a loop of
# force_check=True calls must not start a probe round per call.
_RECHECK_GAP = 5.0

# A handshake cannot tell these from ONLINE; the monitor's HTTP probes can.
_HANDSHAKE_BLIND = frozenset({NetworkStatus.CAPTIVE_PORTAL, NetworkStatus.LIMITED})


def _close(connection: object) -> None:
    """Close what ``socket.create_connection`` returned (a test's stand-in may not be a socket)."""
    close = getattr(connection, "close", None)
    if callable(close):
        with contextlib.suppress(OSError):
            close()


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    return float(timeout)


def _check_address(host: object, port: object) -> tuple[str, int]:
    if not isinstance(host, str):
        raise TypeError(f"host must be a string, got {host!r}")
    if not host.strip():
        raise ValueError("host must be a host name or an IP address, got an empty string")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an integer, got {port!r}")
    if not 0 < port <= 65535:
        raise ValueError(f"port must be from 1 to 65535, got {port!r}")
    return host, port


def _handshake(host: str, port: int, timeout: float) -> None:
    """One ``socket.create_connection`` (looked up now, so a test's patch applies), closed."""
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except UnicodeError as exc:  # a name IDNA cannot encode: no such host
        raise OSError(f"invalid host name {host!r}") from exc
    _close(connection)


@explain_frozen
@dataclass(frozen=True, slots=True)
class ConnectProbe:
    """Online when ``socket.create_connection((host, port), timeout)`` succeeds.

    The plan's TCP check as a :class:`~connmgr.network.Probe`: unlike
    :class:`~connmgr.network.TcpProbe` it connects through
    ``socket.create_connection``, found at call time, so a test that patches
    that function decides the answer. Like every TCP probe it cannot see a
    captive portal. It is :attr:`NetworkState.probe`, and a
    :class:`NetworkMonitor` accepts it too.

    Example::

        ConnectProbe("8.8.8.8", 443).check(3.0).status     # NetworkStatus.ONLINE
    """

    host: str
    port: int

    def __post_init__(self) -> None:
        _check_address(self.host, self.port)

    @property
    def name(self) -> str:
        """``"tcp host:port"``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp {host}:{self.port}"

    @property
    def detects_portal(self) -> bool:
        """``False``: a TCP handshake says nothing about a login page."""
        return False

    def check(self, timeout: float) -> ProbeResult:
        """Connect and close at once; never raises."""
        started = time.perf_counter()
        try:
            _handshake(self.host, self.port, timeout)
        except OSError as exc:
            failure, detail = describe_failure(exc, timeout)
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, detail, failure
            )
        return ProbeResult(self, NetworkStatus.ONLINE, time.perf_counter() - started, "connected")


class NetworkState:
    """The original plan's class: a cached "is the network there?" and a per-host check.

    Class attributes, read and written as in the plan:

    * ``_is_online``: the last answer (``None`` before the first check, or to
      force the next one);
    * ``_last_check``: ``time.time()`` of the last check (``None`` before it);
    * ``_check_interval``: seconds an answer is reused (30).

    ``probe`` is the check behind :meth:`is_online` (a :class:`ConnectProbe` to
    8.8.8.8 on port 443: port 53 to outside resolvers is blocked on many
    networks, 443 almost never) and ``timeout`` its limit in seconds (3); both
    may be reassigned, e.g. to your own server.

    The answer agrees with the default monitor's stronger knowledge: ``False``
    while it says ``CAPTIVE_PORTAL`` or ``LIMITED``. When the handshake and the
    monitor disagree, the monitor re-probes in the background (at most every
    5 s). :meth:`get_default_monitor` / :meth:`set_default_monitor` replace
    the monitor (tests point it at loopback).

    Example::

        if NetworkState.is_online():
            ...
        NetworkState._is_online = None            # the next call checks again
        NetworkState.check_specific_host("api.example.com", 443, timeout=2.0)
    """

    _is_online: ClassVar[bool | None] = None
    _last_check: ClassVar[float | None] = None
    _check_interval: ClassVar[float] = 30.0

    probe: ClassVar[Probe] = ConnectProbe("8.8.8.8", 443)
    timeout: ClassVar[float] = 3.0

    # Writers of the two cache attributes, and the monitor's re-probe pace.
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _recheck_asked: ClassVar[float] = -math.inf

    @staticmethod
    def is_online(force_check: bool = False) -> bool:
        """Whether the network is reachable; answers from the class cache while it is fresh.

        The cache is fresh when ``_is_online`` is not ``None`` and
        ``time.time() - _last_check`` is from 0 to ``_check_interval`` (a clock
        set back makes it stale rather than fresh for longer). Otherwise, or
        with ``force_check=True``, :attr:`probe` runs, and both attributes are
        set from its answer.
        """
        if not force_check:
            cached = NetworkState._cached()
            if cached is not None:
                return cached
        probe = NetworkState.probe
        if not isinstance(probe, Probe):
            raise TypeError(f"NetworkState.probe must be a Probe, got {probe!r}")
        reachable = probe.check(_check_timeout(NetworkState.timeout)).status.online
        online = NetworkState._agree(reachable, get_default_monitor())
        with NetworkState._lock:
            NetworkState._is_online = online
            NetworkState._last_check = time.time()
        return online

    @staticmethod
    def check_specific_host(host: str, port: int = 80, timeout: float = 3.0) -> bool:
        """Whether ``socket.create_connection((host, port), timeout)`` succeeds (not cached).

        The connection is closed at once. It changes nothing else: one
        unreachable server does not mean the network is down. A wrong type
        raises ``TypeError``, a port outside 1-65535 or a timeout that is not a
        positive number ``ValueError``.
        """
        address = _check_address(host, port)
        seconds = _check_timeout(timeout)
        try:
            _handshake(*address, seconds)
        except OSError:
            return False
        return True

    @staticmethod
    def get_default_monitor() -> NetworkMonitor:
        """See :func:`connmgr.network.get_default_monitor`."""
        return get_default_monitor()

    @staticmethod
    def set_default_monitor(monitor: NetworkMonitor | None) -> NetworkMonitor | None:
        """See :func:`connmgr.network.set_default_monitor`."""
        return set_default_monitor(monitor)

    @staticmethod
    def _cached() -> bool | None:
        online, last, interval = (
            NetworkState._is_online,
            NetworkState._last_check,
            NetworkState._check_interval,
        )
        if online is None or last is None:
            return None
        age = time.time() - last
        return bool(online) if 0.0 <= age < interval else None

    @staticmethod
    def _agree(reachable: bool, monitor: NetworkMonitor) -> bool:
        """The answer, given the handshake and what the monitor already knows (never probes)."""
        status = monitor.status
        if reachable:
            if status is NetworkStatus.OFFLINE:
                NetworkState._ask_recheck(monitor)
            return status not in _HANDSHAKE_BLIND
        if status not in (NetworkStatus.UNKNOWN, NetworkStatus.OFFLINE):
            NetworkState._ask_recheck(monitor)
        return False

    @staticmethod
    def _ask_recheck(monitor: NetworkMonitor) -> None:
        now = time.monotonic()
        with NetworkState._lock:
            if now - NetworkState._recheck_asked < _RECHECK_GAP:
                return
            NetworkState._recheck_asked = now
        monitor.request_recheck()
