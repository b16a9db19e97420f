"""Network state: is there a working way out to the internet, right now?

A :class:`NetworkMonitor` answers :meth:`~NetworkMonitor.is_online` from a
cache that costs a clock read and a compare, and refreshes that cache by
running its *probes* concurrently:

* :class:`HttpProbe` asks an endpoint that answers ``204 No Content`` (the
  check browsers and phones make). Anything else that looks like a page, a
  redirect or ``511`` means a captive portal (a hotel or airport login page)
  stands between the app and the internet.
* :class:`TcpProbe` opens a TCP connection (the original plan's check).
* :class:`DnsProbe` resolves a host name.

The first conclusive answer wins, so one dead probe target never makes a check
slow: an HTTP ``204`` or a portal page decides at once; a TCP or DNS success
decides at once unless an HTTP probe is still running, which then gets a short
grace period (``portal_grace``) to report a portal, because portals often let
TCP and DNS through; ``OFFLINE`` needs every probe to fail.

While online the answer is cached for ``interval`` seconds; while offline (or
behind a portal) it is re-probed every ``offline_interval`` seconds for the
first six checks (so a short drop is noticed within one ``offline_interval``),
then backing off ×2 per failed check toward ``interval``. Concurrent callers share one
probe round. :data:`connmgr.signals.network_changed` is sent when the status
changes, never while the monitor holds its lock.

The request path feeds the monitor: :meth:`~NetworkMonitor.report_failure`
after a connect or DNS failure re-probes (debounced) and says whether the
network is really gone; :meth:`~NetworkMonitor.report_success` records that a
response arrived, which proves connectivity without a probe.

Example::

    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", 8080)], interval=30.0)
    monitor.is_online()            # probes once, then answers from the cache
    monitor.status                 # NetworkStatus.ONLINE
    monitor.start()                # background watcher: events without asking
    ...
    monitor.stop()                 # returns within 100 ms

The original plan's static names live on :class:`NetworkState` and delegate to
a replaceable default monitor (:func:`set_default_monitor`).
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import ipaddress
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import requests
import urllib3

from connmgr import signals
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock

__all__ = [
    "DEFAULT_PROBES",
    "DnsProbe",
    "HttpProbe",
    "NetworkMonitor",
    "NetworkState",
    "NetworkStatus",
    "Probe",
    "ProbeResult",
    "TcpProbe",
    "decide_status",
    "get_default_monitor",
    "set_default_monitor",
]

logger = logging.getLogger(__name__)

_USER_AGENT = "connmgr/0.1 (connectivity check)"

#: Offline probe rounds at ``offline_interval`` before the pace backs off.
_STEADY_OFFLINE_ROUNDS = 6

# The most an HttpProbe with ``expect_body`` reads to look for it.
_MAX_EXPECTED_BODY = 65536

# The watcher never starts probe rounds more often than this (real seconds), whatever
# its clock says: a guard against a storm of probes from a tiny offline_interval or
# from a fake clock that advances by itself.
_MIN_WATCH_GAP = 0.01

# A round ends at the probe timeout plus this slack even if a probe never returns
# (getaddrinfo cannot be interrupted); a probe that times out on its own reports first.
_ROUND_SLACK = 0.1


# --------------------------------------------------------------------------- validation


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"NetworkMonitor.{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"NetworkMonitor.{name} must be a finite number {bound}, got {value!r}")


def _check_host(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty host name or address, got {value!r}")


def _check_port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{name} must be a port number (1-65535), got {value!r}")


# --------------------------------------------------------------------------- status


class NetworkStatus(enum.Enum):
    """What the monitor knows about the way out to the internet.

    ``UNKNOWN`` is the status before the first check. Behind a captive portal
    (``CAPTIVE_PORTAL``) :meth:`NetworkMonitor.is_online` returns ``False``: the
    app cannot reach its server until the user signs in to the portal page.
    """

    ONLINE = "online"
    OFFLINE = "offline"
    CAPTIVE_PORTAL = "captive_portal"
    UNKNOWN = "unknown"

    @property
    def online(self) -> bool:
        """Whether requests can reach the internet (only ``ONLINE``)."""
        return self is NetworkStatus.ONLINE

    @property
    def label(self) -> str:
        """Plain words for a status bar."""
        return _LABELS[self]


_LABELS = {
    NetworkStatus.ONLINE: "Online",
    NetworkStatus.OFFLINE: "Offline",
    NetworkStatus.CAPTIVE_PORTAL: "Sign-in required (network login page)",
    NetworkStatus.UNKNOWN: "Checking the network",
}


# --------------------------------------------------------------------------- probes


@runtime_checkable
class Probe(Protocol):
    """One way of testing connectivity.

    ``check(timeout)`` must return a :class:`ProbeResult` whose status is
    ``ONLINE``, ``OFFLINE`` or (for probes that can tell) ``CAPTIVE_PORTAL``,
    within about ``timeout`` seconds, and should not raise. ``name`` is what
    logs and ``connmgr check`` show. ``detects_portal`` says whether the probe
    can see a captive portal; a success from a probe that cannot is held back
    briefly while probes that can are still running.

    Example (a probe for your own server's health endpoint)::

        class Health:
            name = "my api"
            detects_portal = True
            def check(self, timeout: float) -> ProbeResult:
                ok = requests.get(URL, timeout=timeout).ok
                return ProbeResult(self, NetworkStatus.ONLINE if ok else NetworkStatus.OFFLINE, 0.0)
    """

    @property
    def name(self) -> str:
        """A short, credential-free description, e.g. ``"tcp 8.8.8.8:443"``."""
        ...

    @property
    def detects_portal(self) -> bool:
        """Whether a success from this probe rules out a captive portal."""
        ...

    def check(self, timeout: float) -> ProbeResult:
        """Test connectivity once, within about ``timeout`` seconds."""
        ...


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The answer of one probe.

    Attributes:
        probe: the probe that answered.
        status: ``ONLINE``, ``OFFLINE`` or ``CAPTIVE_PORTAL``; ``UNKNOWN`` in
            :attr:`NetworkMonitor.last_results` for a probe that was still
            running when the verdict came.
        elapsed: seconds the probe took (wall time of the real I/O).
        detail: plain words, e.g. ``"connection refused"`` or
            ``"200 with a page instead of 204"``.
    """

    probe: Probe
    status: NetworkStatus
    elapsed: float
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.probe.name}: {self.status.value} in {self.elapsed * 1000:.1f} ms" + (
            f" ({self.detail})" if self.detail else ""
        )


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Online when a TCP connection to ``host:port`` opens.

    Cheap and private (a handshake, no data), but it cannot see a captive
    portal: many portals let TCP through or answer it themselves. An IP address
    avoids a DNS lookup; a host name is resolved within the timeout.

    Example::

        TcpProbe("8.8.8.8", 443).check(timeout=3.0)   # ProbeResult(..., ONLINE, 0.012, ...)
    """

    host: str
    port: int

    def __post_init__(self) -> None:
        _check_host("TcpProbe.host", self.host)
        _check_port("TcpProbe.port", self.port)

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
            _connect(self.host, self.port, timeout)
        except OSError as exc:
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, _describe(exc, timeout)
            )
        return ProbeResult(self, NetworkStatus.ONLINE, time.perf_counter() - started, "connected")


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """Online when ``url`` answers ``expect_status`` (default ``204 No Content``).

    The answer is read as follows (:meth:`interpret`):

    * ``expect_status`` (and ``expect_body`` found in the body, if given) → ``ONLINE``;
    * ``200`` with an empty body while ``204`` is expected → ``ONLINE`` (some
      proxies rewrite 204; nobody can sign in to an empty page);
    * a redirect (3xx), ``511 Network Authentication Required``, or another
      2xx with content → ``CAPTIVE_PORTAL``;
    * any other status, or no answer → ``OFFLINE``.

    Redirects are never followed. Proxies from the environment (``HTTP_PROXY``,
    ``HTTPS_PROXY``, ``NO_PROXY``) are honoured, as requests does, so a network
    that only lets traffic out through a proxy is not taken for offline.

    Point it at your own server to avoid contacting third parties: use an
    ``https://`` URL (a portal cannot forge a TLS answer) and the status your
    health endpoint returns.

    Example::

        HttpProbe("http://connectivitycheck.gstatic.com/generate_204")
        HttpProbe("https://api.example.com/health", expect_status=200)
        HttpProbe("http://captive.apple.com/hotspot-detect.html", expect_status=200,
                  expect_body="Success")
    """

    url: str
    expect_status: int = 204
    expect_body: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise ValueError(f"HttpProbe.url must be a string, got {self.url!r}")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"HttpProbe.url must be an http(s) URL with a host, got {self.url!r}")
        if (
            isinstance(self.expect_status, bool)
            or not isinstance(self.expect_status, int)
            or not 100 <= self.expect_status <= 599
        ):
            raise ValueError(
                f"HttpProbe.expect_status must be an HTTP status (100-599), "
                f"got {self.expect_status!r}"
            )
        if self.expect_body is not None and not isinstance(self.expect_body, str):
            raise ValueError(f"HttpProbe.expect_body must be a string, got {self.expect_body!r}")

    @property
    def name(self) -> str:
        """``"http host/path"`` (credentials and query removed)."""
        return f"{urlsplit(self.url).scheme} {_redact_url(self.url)}"

    @property
    def detects_portal(self) -> bool:
        """``True``: a portal answers this probe with its login page or a redirect."""
        return True

    def check(self, timeout: float) -> ProbeResult:
        """Send one GET (no redirects, no cookies) and interpret the answer; never raises.

        ``timeout`` bounds the connect and each read; a host name lookup is bounded
        only by the resolver (the monitor's round deadline still caps it).
        """
        started = time.perf_counter()
        try:
            status, body, location = self._fetch(timeout)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, _describe(exc, timeout)
            )
        verdict, detail = self.interpret(status, body, location)
        return ProbeResult(self, verdict, time.perf_counter() - started, detail)

    def interpret(
        self, status_code: int, body: bytes, location: str | None = None
    ) -> tuple[NetworkStatus, str]:
        """Read an answer (pure): ``(status, detail)``.

        Example::

            HttpProbe("http://x/generate_204").interpret(200, b"<html>login")
            # (NetworkStatus.CAPTIVE_PORTAL, '200 with a page instead of 204')
        """
        expected = self.expect_status
        if status_code == expected:
            if self.expect_body is None or self.expect_body in body.decode("utf-8", "replace"):
                return NetworkStatus.ONLINE, f"{status_code} as expected"
            return NetworkStatus.CAPTIVE_PORTAL, (
                f"{status_code} without the expected content (a login page?)"
            )
        if expected == 204 and status_code == 200 and not body:
            return NetworkStatus.ONLINE, "200 with an empty body (read as 204)"
        if 300 <= status_code < 400:
            host = urlsplit(location).hostname if location else None
            where = f" to {host}" if host else ""
            return NetworkStatus.CAPTIVE_PORTAL, f"redirected ({status_code}){where}"
        if status_code == 511:
            return NetworkStatus.CAPTIVE_PORTAL, "511 Network Authentication Required"
        if 200 <= status_code < 300:
            return NetworkStatus.CAPTIVE_PORTAL, f"{status_code} with a page instead of {expected}"
        return NetworkStatus.OFFLINE, f"unexpected status {status_code} (blocked or moved?)"

    def _fetch(self, timeout: float) -> tuple[int, bytes, str | None]:
        # A fresh session per check: thread-safe, no cookies carried between checks,
        # and no ~/.netrc credentials sent to a probe host (trust_env off, proxies
        # from the environment passed explicitly).
        with requests.Session() as session:
            session.trust_env = False
            proxies = requests.utils.get_environ_proxies(self.url)
            response = session.get(
                self.url,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                proxies=proxies,
                headers={"User-Agent": _USER_AGENT, "Cache-Control": "no-cache"},
            )
            try:
                body = self._sniff_body(response)
            finally:
                response.close()
            return response.status_code, body, response.headers.get("Location")

    def _sniff_body(self, response: requests.Response) -> bytes:
        # Unless a body is expected, only whether there is content matters: take it
        # from Content-Length when given, so a portal page is never downloaded (and a
        # slow one cannot stall the probe), else read a single byte.
        if response.status_code == 204:
            return b""
        if self.expect_body is None:
            length = response.headers.get("Content-Length", "")
            if length.strip().isdigit():
                return b"?" if int(length) > 0 else b""
        limit = 1 if self.expect_body is None else _MAX_EXPECTED_BODY
        return response.raw.read(limit, decode_content=True) or b""


@dataclass(frozen=True, slots=True)
class DnsProbe:
    """Online when ``hostname`` resolves.

    It shows that a resolver answers, not that the internet is reachable: the
    operating system may answer from its cache, and portals usually let DNS
    through. Useful as an extra signal, weak on its own.

    Example::

        DnsProbe("example.com").check(timeout=2.0)
    """

    hostname: str

    def __post_init__(self) -> None:
        _check_host("DnsProbe.hostname", self.hostname)

    @property
    def name(self) -> str:
        """``"dns hostname"``."""
        return f"dns {self.hostname}"

    @property
    def detects_portal(self) -> bool:
        """``False``: portals resolve names too."""
        return False

    def check(self, timeout: float) -> ProbeResult:
        """Resolve within ``timeout``; never raises."""
        started = time.perf_counter()
        try:
            infos = _getaddrinfo(self.hostname, 443, timeout)
        except OSError as exc:
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, _describe(exc, timeout)
            )
        count = len({info[4][0] for info in infos})
        return ProbeResult(
            self,
            NetworkStatus.ONLINE,
            time.perf_counter() - started,
            f"resolved to {count} address{'es' if count != 1 else ''}",
        )


#: The probes a monitor uses when none are given (see ``docs/network.md``): the
#: 204 endpoints of two vendors (captive-portal aware, one survives the other being
#: blocked) and a bare TCP handshake with Google Public DNS on 443 (no DNS lookup;
#: 443 is open on networks that block outside DNS on 53).
DEFAULT_PROBES: tuple[Probe, ...] = (
    HttpProbe("http://connectivitycheck.gstatic.com/generate_204"),
    HttpProbe("http://cp.cloudflare.com/generate_204"),
    TcpProbe("8.8.8.8", 443),
)


def decide_status(
    results: Iterable[ProbeResult],
    *,
    pending: int = 0,
    portal_pending: int = 0,
    grace_over: bool = True,
) -> NetworkStatus | None:
    """Combine the results so far into a verdict, or ``None`` to keep waiting (pure).

    ``pending`` probes are still running, ``portal_pending`` of them can detect a
    portal; ``grace_over`` says the grace period for those has passed. Rules, first
    match wins:

    1. a success from a portal-detecting probe → ``ONLINE``;
    2. a portal seen by any probe → ``CAPTIVE_PORTAL``;
    3. any other success → ``ONLINE`` once no portal-detecting probe is pending or
       the grace period is over;
    4. nothing pending → ``OFFLINE``;
    5. otherwise ``None``.

    Example::

        decide_status([ProbeResult(TcpProbe("127.0.0.1", 1), NetworkStatus.OFFLINE, 0.0)])
        # NetworkStatus.OFFLINE
    """
    weak_online = False
    for result in results:
        if result.status is NetworkStatus.ONLINE:
            if result.probe.detects_portal:
                return NetworkStatus.ONLINE
            weak_online = True
        elif result.status is NetworkStatus.CAPTIVE_PORTAL:
            return NetworkStatus.CAPTIVE_PORTAL
    if weak_online and (portal_pending == 0 or grace_over):
        return NetworkStatus.ONLINE
    if pending == 0:
        return NetworkStatus.OFFLINE
    return None


# --------------------------------------------------------------------------- a round


class _Round:
    """One round of probes, shared by every caller that asks while it runs.

    Each probe runs in its own daemon thread; the round concludes on the first
    conclusive answer (:func:`decide_status`), or when the grace or deadline
    timers fire. Probes still running afterwards finish on their own and are
    ignored. Whoever waits applies the verdict to the monitor; if nobody waits
    (the watcher was stopped, or a background re-check), the thread that
    concluded applies it.
    """

    __slots__ = (
        "_lock",
        "_on_verdict",
        "_results",
        "_timers",
        "_wakes",
        "applied",
        "done",
        "effective",
        "grace",
        "grace_over",
        "grace_started",
        "probes",
        "recheck",
        "started_at",
        "successes_before",
        "t0",
        "timeout",
        "verdict",
        "verdict_elapsed",
        "waiters",
    )

    def __init__(
        self,
        probes: tuple[Probe, ...],
        *,
        timeout: float,
        grace: float,
        started_at: float,
        successes_before: int,
        on_verdict: Callable[[_Round], object],
    ) -> None:
        self.probes = probes
        self.timeout = timeout
        self.grace = grace
        self.started_at = started_at
        self.successes_before = successes_before
        self._on_verdict = on_verdict
        self._lock = threading.Lock()
        self._results: dict[int, ProbeResult] = {}
        self._timers: list[threading.Timer] = []
        self._wakes: list[threading.Event] = []
        self.done = threading.Event()
        self.verdict: NetworkStatus | None = None
        self.verdict_elapsed = 0.0
        self.grace_over = grace <= 0
        self.grace_started = False
        self.waiters = 0
        self.t0 = time.perf_counter()
        # Set and read under the monitor's lock:
        self.applied = False
        self.effective: NetworkStatus = NetworkStatus.UNKNOWN
        self.recheck = False

    def launch(self) -> None:
        with self._lock:
            self._start_timer(self.timeout + _ROUND_SLACK, self._expire)
        for index, probe in enumerate(self.probes):
            threading.Thread(
                target=self._run, args=(index, probe), name="connmgr-probe", daemon=True
            ).start()

    def _start_timer(self, seconds: float, action: Callable[[], None]) -> None:
        # Caller holds self._lock.
        if self.verdict is not None:
            return
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _run(self, index: int, probe: Probe) -> None:
        started = time.perf_counter()
        try:
            result = probe.check(self.timeout)
        except Exception as exc:  # a third-party probe must not kill the round
            logger.exception("probe %s raised", getattr(probe, "name", probe))
            result = ProbeResult(
                probe,
                NetworkStatus.OFFLINE,
                time.perf_counter() - started,
                f"the probe raised {type(exc).__name__}",
            )
        self._add(index, result)

    def _add(self, index: int, result: ProbeResult) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self._results[index] = result
            verdict = self._decide(expired=False)
            if (
                verdict is None
                and result.status is NetworkStatus.ONLINE
                and not self.grace_started
                and not self.grace_over
            ):
                # A TCP/DNS success while an HTTP probe runs: give it a moment to see a portal.
                self.grace_started = True
                self._start_timer(self.grace, self._grace_ended)
        if verdict is not None:
            self._conclude(verdict)

    def _decide(self, *, expired: bool) -> NetworkStatus | None:
        # Caller holds self._lock.
        if expired:
            return decide_status(self._results.values())
        pending = [p for i, p in enumerate(self.probes) if i not in self._results]
        return decide_status(
            self._results.values(),
            pending=len(pending),
            portal_pending=sum(1 for p in pending if p.detects_portal),
            grace_over=self.grace_over,
        )

    def _grace_ended(self) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self.grace_over = True
            verdict = self._decide(expired=False)
        if verdict is not None:
            self._conclude(verdict)

    def _expire(self) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            verdict = self._decide(expired=True)
        if verdict is not None:
            self._conclude(verdict)

    def _conclude(self, verdict: NetworkStatus) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self.verdict = verdict
            self.verdict_elapsed = time.perf_counter() - self.t0
            nobody_waits = self.waiters == 0
            wakes = list(self._wakes)
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self.done.set()
        for wake in wakes:
            wake.set()
        if nobody_waits:
            self._on_verdict(self)

    def join(self, wake: threading.Event | None) -> None:
        with self._lock:
            self.waiters += 1
            if wake is not None:
                self._wakes.append(wake)
                if self.verdict is not None:
                    wake.set()

    def leave(self, wake: threading.Event | None) -> NetworkStatus | None:
        with self._lock:
            self.waiters -= 1
            if wake is not None:
                with contextlib.suppress(ValueError):
                    self._wakes.remove(wake)
            return self.verdict

    def force_expire(self) -> None:
        self._expire()

    def results(self) -> tuple[ProbeResult, ...]:
        """Every probe's result in probe order; ``UNKNOWN`` for those still running."""
        with self._lock:
            got = dict(self._results)
            elapsed = self.verdict_elapsed
        return tuple(
            got.get(i)
            or ProbeResult(probe, NetworkStatus.UNKNOWN, elapsed, "still running at the verdict")
            for i, probe in enumerate(self.probes)
        )


# --------------------------------------------------------------------------- the monitor


class _Watcher:
    __slots__ = ("recheck", "stopping", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stopping = False
        self.recheck = False
        self.thread: threading.Thread | None = None


class NetworkMonitor:
    """Cached, probing network state with captive-portal detection and change events.

    Args:
        probes: the probes to run (default :data:`DEFAULT_PROBES`, which contact
            Google and Cloudflare: see ``docs/network.md``).
        interval: seconds an ``ONLINE`` answer is trusted (and the watcher's pace
            while online).
        offline_interval: seconds before re-probing after an ``OFFLINE`` or
            ``CAPTIVE_PORTAL`` answer; after six such answers in a row it doubles
            with each further one, up to ``interval``. Must not exceed ``interval``.
        timeout: seconds each probe may take; a round never takes much longer.
        clock: a :class:`~connmgr.clock.Clock` (default: the system clock).
        debounce: :meth:`report_failure` does not re-probe when a probe finished
            less than this many seconds ago.
        portal_grace: seconds a TCP/DNS success waits for a still-running HTTP
            probe to report a captive portal (0: never wait).

    Thread-safe. ``is_online()`` on a fresh cache takes no lock.

    Example::

        monitor = NetworkMonitor(probes=[HttpProbe("https://api.example.com/health",
                                                   expect_status=200)])
        if not monitor.is_online():
            status_bar.show(monitor.status.label)   # "Offline" or "Sign-in required ..."
    """

    def __init__(
        self,
        probes: Iterable[Probe] | None = None,
        *,
        interval: float = 30.0,
        offline_interval: float = 5.0,
        timeout: float = 3.0,
        clock: Clock | None = None,
        debounce: float = 1.0,
        portal_grace: float = 0.3,
    ) -> None:
        _check_seconds("interval", interval, positive=True)
        _check_seconds("offline_interval", offline_interval, positive=True)
        _check_seconds("timeout", timeout, positive=True)
        _check_seconds("debounce", debounce, positive=False)
        _check_seconds("portal_grace", portal_grace, positive=False)
        if offline_interval > interval:
            raise ValueError(
                f"NetworkMonitor.offline_interval ({offline_interval!r}) must be <= "
                f"interval ({interval!r})"
            )
        chosen = DEFAULT_PROBES if probes is None else tuple(probes)
        if not chosen:
            raise ValueError("NetworkMonitor.probes must hold at least one probe, got none")
        for probe in chosen:
            if not isinstance(probe, Probe):
                raise ValueError(
                    f"NetworkMonitor.probes must be Probe objects (name, detects_portal, "
                    f"check), got {probe!r}"
                )
        if clock is not None and not isinstance(clock, Clock):
            raise ValueError(f"NetworkMonitor.clock must be a Clock, got {clock!r}")
        self._probes: tuple[Probe, ...] = chosen
        self.interval = float(interval)
        self.offline_interval = float(offline_interval)
        self.timeout = float(timeout)
        self.debounce = float(debounce)
        self.portal_grace = float(portal_grace)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._now = self._clock.now

        self._lock = threading.Lock()
        # (valid until, online): one tuple so a lock-free reader sees a consistent pair.
        self._cache: tuple[float, bool] = (-math.inf, False)
        self._status = NetworkStatus.UNKNOWN
        self._round: _Round | None = None
        self._offline_delay = self.offline_interval
        self._offline_rounds = 0
        self._last_checked: float | None = None
        # Counts report_success() calls: a round knows whether one came while it ran
        # (a count, not a time, so a frozen test clock cannot blur before and during).
        self._successes = 0
        self._last_results: tuple[ProbeResult, ...] = ()
        self._online_waiters: set[threading.Event] = set()
        self._watcher: _Watcher | None = None
        self._pending_events: deque[tuple[NetworkStatus, NetworkStatus]] = deque()
        self._emitting = False

    # ------------------------------------------------------------------ reading

    @property
    def probes(self) -> tuple[Probe, ...]:
        """The probes, in the order given."""
        return self._probes

    @property
    def clock(self) -> Clock:
        """The injected clock."""
        return self._clock

    @property
    def status(self) -> NetworkStatus:
        """The latest known status (never probes; ``UNKNOWN`` before the first check)."""
        return self._status

    @property
    def last_checked(self) -> float | None:
        """Clock time when the last probe round ended, or ``None``."""
        return self._last_checked

    @property
    def last_results(self) -> tuple[ProbeResult, ...]:
        """Each probe's result in the last round (probe order), with timings.

        A probe still running when the verdict came shows ``UNKNOWN``.
        """
        return self._last_results

    @property
    def running(self) -> bool:
        """Whether the background watcher is running."""
        watcher = self._watcher
        return watcher is not None and not watcher.stopping

    def is_online(self, force_check: bool = False) -> bool:
        """Whether the internet is reachable; ``False`` offline and behind a captive portal.

        Answers from the cache while it is fresh (a clock read and a compare, no
        lock); otherwise probes, sharing a round already running with other callers
        (``force_check=True`` also joins a running round rather than start another).
        :attr:`status` says why the answer is ``False``.

        Example::

            if not monitor.is_online():
                show_offline_banner(monitor.status.label)
        """
        if not force_check:
            valid_until, online = self._cache
            if self._now() < valid_until:
                return online
        return self._check(force=force_check) is NetworkStatus.ONLINE

    def check(self) -> NetworkStatus:
        """Probe now (or join the running round) and return the resulting status."""
        return self._check(force=True)

    def check_specific_host(self, host: str, port: int = 80, timeout: float = 3.0) -> bool:
        """Whether a TCP connection to ``host:port`` opens within ``timeout`` (not cached).

        Changes nothing in the monitor: one unreachable server does not mean the
        network is down.

        Example::

            monitor.check_specific_host("api.example.com", 443, timeout=2.0)
        """
        _check_seconds("timeout", timeout, positive=True)
        result = TcpProbe(host, port).check(timeout)
        return result.status is NetworkStatus.ONLINE

    def diagnose(self) -> tuple[ProbeResult, ...]:
        """Run every probe to the end (no short cut) and return all results; for ``connmgr check``.

        Does not change the monitor's status; :func:`decide_status` combines the
        results.
        """
        results: list[ProbeResult | None] = [None] * len(self._probes)
        started = time.perf_counter()

        def run(index: int, probe: Probe) -> None:
            try:
                results[index] = probe.check(self.timeout)
            except Exception as exc:
                results[index] = ProbeResult(
                    probe,
                    NetworkStatus.OFFLINE,
                    time.perf_counter() - started,
                    f"the probe raised {type(exc).__name__}",
                )

        threads = [
            threading.Thread(target=run, args=(i, p), name="connmgr-probe", daemon=True)
            for i, p in enumerate(self._probes)
        ]
        for thread in threads:
            thread.start()
        end = started + self.timeout + _ROUND_SLACK
        for thread in threads:
            thread.join(max(0.0, end - time.perf_counter()))
        elapsed = time.perf_counter() - started
        return tuple(
            r or ProbeResult(p, NetworkStatus.OFFLINE, elapsed, "no answer in time")
            for r, p in zip(results, self._probes, strict=True)
        )

    # ------------------------------------------------------------------ hints

    def report_failure(self, error: BaseException | None = None) -> NetworkStatus:
        """A connect or DNS failure happened: re-probe (debounced) and return the status.

        Probes synchronously unless a round ended less than ``debounce`` seconds
        ago (or one is running: then it waits for that one). A debounced answer
        that says ``ONLINE`` is trusted for at most ``debounce`` more seconds.
        The manager reads the result: anything but ``ONLINE`` confirms that the
        failure was the network, not the server.

        Example::

            except requests.ConnectionError as exc:
                if monitor.report_failure(exc) is not NetworkStatus.ONLINE:
                    ...   # the network is gone, not just this server
        """
        if error is not None:
            logger.debug("connect failure reported (%s)", type(error).__name__)
        with self._lock:
            # A failure is evidence that the cached "online" may be stale.
            if self._last_checked is not None:
                valid_until, online = self._cache
                self._cache = (min(valid_until, self._last_checked + self.debounce), online)
        return self._check(force=True, max_age=self.debounce)

    def report_success(self, *, url: str | None = None) -> None:
        """A response arrived, so the network works: set ``ONLINE`` without probing.

        Extends the cache by ``interval`` (traffic makes probes unnecessary) and
        sends ``network_changed`` if the status was not ``ONLINE``. Behind a captive
        portal, a plain ``http://`` answer (``url``) proves nothing, since the
        portal can answer it itself; it only makes the next check probe again.
        """
        with self._lock:
            now = self._now()
            old = self._status
            if (
                old is NetworkStatus.CAPTIVE_PORTAL
                and url is not None
                and not url.lower().startswith("https:")
            ):
                self._cache = (now, False)
                return
            self._successes += 1
            self._cache = (now + self.interval, True)
            if old is NetworkStatus.ONLINE:
                return
            self._set_status(NetworkStatus.ONLINE)
        self._drain_events()

    def request_recheck(self) -> None:
        """Something may have changed (an OS hint): re-probe soon, without blocking.

        Expires the cache; wakes the watcher if it runs, else starts a probe round
        in the background. A round already running is followed by another, since
        it may have started before the change. Any resulting change is sent as
        ``network_changed`` from the thread that did the work.
        """
        with self._lock:
            self._cache = (-math.inf, self._cache[1])
            if self._round is not None:
                self._round.recheck = True
            watcher = self._watcher
            if watcher is not None and not watcher.stopping:
                watcher.recheck = True
                watcher.wake.set()
                return
        self._start_or_join(force=True, max_age=None)

    def hint_changed(self, source: str = "os") -> None:
        """An outside source (e.g. Qt's ``QNetworkInformation``) reports a change: a hint.

        Never a verdict: it only triggers :meth:`request_recheck`.
        """
        logger.debug("network change hint from %s", source)
        self.request_recheck()

    def wait_until_online(self, timeout: float | None, cancel: CancelToken | None = None) -> bool:
        """Block until the network is back; ``True`` if online, ``False`` on timeout or cancel.

        Re-probes every ``offline_interval`` seconds (rounds shared with other
        waiters and callers) and returns as soon as any round or
        :meth:`report_success` says ``ONLINE``. ``timeout=None`` waits without limit.

        Example::

            if monitor.wait_until_online(30.0, cancel=token):
                retry_the_request()
        """
        if timeout is not None:
            _check_seconds("timeout", timeout, positive=False)
        deadline = math.inf if timeout is None else self._now() + timeout
        waiter = threading.Event()
        remove = cancel.add_callback(waiter.set) if cancel is not None else None
        with self._lock:
            self._online_waiters.add(waiter)
        try:
            while True:
                if self._online_now():
                    return True
                if cancel is not None and cancel.cancelled:
                    return False
                if self._check(force=True, max_age=self.offline_interval, wake=waiter) is (
                    NetworkStatus.ONLINE
                ):
                    return True
                now = self._now()
                if now >= deadline:
                    return False
                last = self._last_checked if self._last_checked is not None else now
                pause = min(deadline - now, max(0.0, last + self.offline_interval - now))
                # The round set the waiter when it ended: clear it, then look at the
                # flags it stands for again, so a wake-up in between is not lost.
                waiter.clear()
                if self._status is NetworkStatus.ONLINE or (
                    cancel is not None and cancel.cancelled
                ):
                    continue
                self._clock.sleep(pause, waiter)
        finally:
            with self._lock:
                self._online_waiters.discard(waiter)
            if remove is not None:
                remove()

    def _online_now(self) -> bool:
        # A call, not an inline compare: the status changes under other threads.
        return self._status is NetworkStatus.ONLINE

    # ------------------------------------------------------------------ watcher

    def start(self) -> None:
        """Start the background watcher (a daemon thread); idempotent.

        It probes whenever the cache runs out (every ``interval`` while online,
        faster while offline) and on :meth:`request_recheck`, so
        ``network_changed`` arrives without anyone asking.
        """
        with self._lock:
            if self._watcher is not None and not self._watcher.stopping:
                return
            watcher = _Watcher()
            watcher.thread = threading.Thread(
                target=self._watch, args=(watcher,), name="connmgr-network-watcher", daemon=True
            )
            self._watcher = watcher
        watcher.thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the watcher; returns within 100 ms, even mid-probe (idempotent).

        A probe round the watcher was waiting for still finishes in the
        background and its verdict is applied.
        """
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.stopping = True
        watcher.wake.set()
        thread = watcher.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop the watcher (for ``contextlib.closing`` and owners' ``close()``)."""
        self.stop()

    def _watch(self, watcher: _Watcher) -> None:
        logger.debug("network watcher started")
        try:
            while True:
                # Flags are the truth; the event only wakes us. Clear before reading them.
                watcher.wake.clear()
                if watcher.stopping:
                    return
                if watcher.recheck or self._now() >= self._cache[0]:
                    force, watcher.recheck = watcher.recheck, False
                    self._check(force=force, wake=watcher.wake)
                    continue
                if watcher.wake.wait(_MIN_WATCH_GAP):
                    continue
                delay = self._cache[0] - self._now()
                if delay > 0:
                    self._clock.sleep(delay, watcher.wake)
        except Exception:
            logger.exception("network watcher failed")
        finally:
            # A watcher that died must not look alive to start().
            watcher.stopping = True
            with self._lock:
                if self._watcher is watcher:
                    self._watcher = None
            logger.debug("network watcher stopped")

    # ------------------------------------------------------------------ probing

    def _start_or_join(
        self,
        *,
        force: bool,
        max_age: float | None,
        wait: bool = False,
        wake: threading.Event | None = None,
    ) -> _Round | NetworkStatus:
        """Return the fresh status, or the round to wait for (joined when ``wait``).

        The caller joins under the lock, before the probes start, so a round that
        concludes at once still leaves its verdict (and event) to this caller.
        """
        launch = False
        with self._lock:
            now = self._now()
            if not force and now < self._cache[0]:
                return self._status
            current = self._round
            if current is None:
                last = self._last_checked
                if max_age is not None and last is not None and now - last < max_age:
                    return self._status
                current = self._round = _Round(
                    self._probes,
                    timeout=self.timeout,
                    grace=self.portal_grace,
                    started_at=now,
                    successes_before=self._successes,
                    on_verdict=self._apply,
                )
                launch = True
            if wait:
                current.join(wake)
        if launch:
            current.launch()
        return current

    def _check(
        self,
        *,
        force: bool,
        max_age: float | None = None,
        wake: threading.Event | None = None,
    ) -> NetworkStatus:
        """Probe (or join a round) and return the status; ``wake`` may cut the wait short.

        When ``wake`` ends the wait before the verdict, the current status is
        returned and the round's verdict is applied by whoever finishes it.
        """
        got = self._start_or_join(force=force, max_age=max_age, wait=True, wake=wake)
        if isinstance(got, NetworkStatus):
            return got
        current = got
        if wake is None:
            if not current.done.wait(current.timeout + _ROUND_SLACK + 1.0):
                current.force_expire()  # a safety net: the deadline timer should have fired
        else:
            wake.wait()
        if current.leave(wake) is None:
            return self._status
        return self._apply(current)

    def _apply(self, current: _Round) -> NetworkStatus:
        """Make a concluded round's verdict the monitor's status (once)."""
        followup = False
        with self._lock:
            if current.applied:
                return current.effective
            current.applied = True
            now = self._now()
            verdict = current.verdict or NetworkStatus.OFFLINE
            if verdict is not NetworkStatus.ONLINE and self._successes > current.successes_before:
                # A response arrived while the probes ran: newer evidence than theirs.
                verdict = NetworkStatus.ONLINE
            self._last_checked = now
            self._last_results = current.results()
            if verdict is NetworkStatus.ONLINE:
                self._offline_delay = self.offline_interval
                self._offline_rounds = 0
                valid = self.interval
            else:
                valid = self._offline_delay
                self._offline_rounds += 1
                # A short drop (a Wi-Fi hop) is noticed within one offline_interval;
                # only a long outage backs the probing off toward interval.
                if self._offline_rounds >= _STEADY_OFFLINE_ROUNDS:
                    self._offline_delay = min(self._offline_delay * 2.0, self.interval)
            if current.recheck:
                valid = 0.0
                watcher = self._watcher
                followup = watcher is None or watcher.stopping
            self._cache = (now + valid, verdict is NetworkStatus.ONLINE)
            if self._round is current:
                self._round = None
            current.effective = verdict
            self._set_status(verdict)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "network %s after %.1f ms: %s",
                verdict.value,
                current.verdict_elapsed * 1000,
                "; ".join(str(r) for r in current.results()),
            )
        self._drain_events()
        if followup:
            self._start_or_join(force=True, max_age=None)
        return verdict

    def _set_status(self, new: NetworkStatus) -> None:
        # Caller holds self._lock.
        old = self._status
        if new is old:
            return
        self._status = new
        self._pending_events.append((old, new))
        if new is NetworkStatus.ONLINE:
            for waiter in self._online_waiters:
                waiter.set()

    def _drain_events(self) -> None:
        """Send queued ``network_changed`` events in order, outside the lock.

        One thread sends at a time, so receivers see the changes in the order they
        happened; a thread that finds another sending leaves its events to it.
        """
        with self._lock:
            if self._emitting:
                return
            self._emitting = True
        try:
            while True:
                with self._lock:
                    if not self._pending_events:
                        self._emitting = False
                        return
                    old, new = self._pending_events.popleft()
                logger.info("network: %s -> %s", old.value, new.value)
                self._send(new)
        except BaseException:
            with self._lock:
                self._emitting = False
            raise

    def _send(self, status: NetworkStatus) -> None:
        # blinker's send() stops at the first receiver that raises; call each one
        # here so a faulty status widget cannot keep the manager from hearing it.
        signal = signals.network_changed
        if signal.is_muted:
            return
        for receiver in signal.receivers_for(self):
            try:
                receiver(self, online=status.online, status=status)
            except Exception:
                logger.exception("a network_changed receiver raised")

    def __repr__(self) -> str:
        return (
            f"NetworkMonitor(status={self._status.value}, "
            f"probes=[{', '.join(p.name for p in self._probes)}], interval={self.interval!r})"
        )


# --------------------------------------------------------------------------- the plan's names


class _DefaultMonitor:
    """The module-level holder of the default monitor (created lazily, replaceable)."""

    __slots__ = ("_lock", "_monitor")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._monitor: NetworkMonitor | None = None

    def get(self) -> NetworkMonitor:
        monitor = self._monitor
        if monitor is None:
            with self._lock:
                if self._monitor is None:
                    self._monitor = NetworkMonitor()
                monitor = self._monitor
        return monitor

    def set(self, monitor: NetworkMonitor | None) -> NetworkMonitor | None:
        if monitor is not None and not isinstance(monitor, NetworkMonitor):
            raise ValueError(f"monitor must be a NetworkMonitor or None, got {monitor!r}")
        with self._lock:
            previous, self._monitor = self._monitor, monitor
        return previous


_DEFAULT = _DefaultMonitor()


def get_default_monitor() -> NetworkMonitor:
    """The monitor behind :class:`NetworkState` (a default one is created on first use)."""
    return _DEFAULT.get()


def set_default_monitor(monitor: NetworkMonitor | None) -> NetworkMonitor | None:
    """Replace the monitor behind :class:`NetworkState`; return the previous one.

    ``None`` goes back to a lazily created default monitor. Tests use it to point
    the plan's static names at loopback probes.

    Example::

        previous = set_default_monitor(NetworkMonitor(probes=[TcpProbe("127.0.0.1", port)]))
        try:
            assert NetworkState.is_online()
        finally:
            set_default_monitor(previous)
    """
    return _DEFAULT.set(monitor)


class NetworkState:
    """The original plan's static names, delegating to the default monitor.

    No state lives on the class: the monitor comes from :func:`get_default_monitor`,
    which an application (or a test) can replace with :func:`set_default_monitor`.

    Example::

        if NetworkState.is_online():
            ...
        NetworkState.check_specific_host("api.example.com", 443, timeout=2.0)
    """

    __slots__ = ()

    @staticmethod
    def is_online(force_check: bool = False) -> bool:
        """:meth:`NetworkMonitor.is_online` on the default monitor."""
        return get_default_monitor().is_online(force_check)

    @staticmethod
    def check_specific_host(host: str, port: int = 80, timeout: float = 3.0) -> bool:
        """:meth:`NetworkMonitor.check_specific_host` on the default monitor."""
        return get_default_monitor().check_specific_host(host, port, timeout)

    @staticmethod
    def get_default_monitor() -> NetworkMonitor:
        """See :func:`get_default_monitor`."""
        return get_default_monitor()

    @staticmethod
    def set_default_monitor(monitor: NetworkMonitor | None) -> NetworkMonitor | None:
        """See :func:`set_default_monitor`."""
        return set_default_monitor(monitor)


# --------------------------------------------------------------------------- helpers


def _redact_url(url: str) -> str:
    """``host[:port]/path`` without credentials or query (which may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}" + ("?…" if parts.query else "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def _getaddrinfo(host: str, port: int, timeout: float) -> Sequence[_AddrInfo]:
    """``getaddrinfo`` bounded by ``timeout`` (it cannot be interrupted, so it runs aside)."""
    if _is_ip(host):
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    box: list[Sequence[_AddrInfo] | OSError] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            box.append(exc)
        finally:
            done.set()

    threading.Thread(target=resolve, name="connmgr-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"name lookup took longer than {timeout:g} s")
    answer = box[0]
    if isinstance(answer, OSError):
        raise answer
    return answer


def _connect(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection within ``timeout``; raise ``OSError`` otherwise."""
    started = time.perf_counter()
    infos = _getaddrinfo(host, port, timeout)
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in infos:
        remaining = timeout - (time.perf_counter() - started)
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining)
            sock.connect(address)
            return
        except OSError as exc:
            error = exc
        finally:
            sock.close()
    raise error


def _describe(exc: BaseException, timeout: float) -> str:
    """Plain words for why a probe failed (no URLs: they may carry credentials).

    The whole cause chain is read before deciding, root causes first: urllib3's
    ``NewConnectionError`` is a ``TimeoutError`` subclass even when the connection
    was refused.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        reason = getattr(current, "reason", None)
        current = (
            current.__cause__
            or current.__context__
            or (reason if isinstance(reason, BaseException) else nested)
        )
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"name lookup failed ({cause.strerror or cause})"
        if isinstance(cause, http.client.RemoteDisconnected):
            return "closed without an answer"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
    for cause in chain:
        if isinstance(cause, requests.exceptions.SSLError):
            return "TLS failed (a portal intercepting https?)"
        if isinstance(cause, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError):
            return f"no answer within {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
