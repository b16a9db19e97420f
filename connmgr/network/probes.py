"""Probes: small, real attempts to reach the internet (HTTP 204, TCP connect, DNS lookup).

Each probe's ``check(timeout)`` returns a :class:`ProbeResult` and never raises.
:class:`HttpProbe` is the only one that can see a captive portal, and the only
one that *validates* the internet (``detects_portal``): with an HTTP probe
configured, a TCP or DNS success alone says ``LIMITED``, not ``ONLINE``.

Every probe takes an optional ``resolver`` (``getaddrinfo``'s shape), so a test
can make name lookups fail or point names at loopback without a real DNS query.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import certifi
import requests
import urllib3

from connmgr.frozen import explain_frozen
from connmgr.network.sockets import (
    Resolver,
    connect,
    describe_failure,
    is_ip_literal,
    redact_url,
    resolve,
)
from connmgr.network.status import NetworkStatus, ProbeFailure

__all__ = ["DEFAULT_PROBES", "DnsProbe", "HttpProbe", "Probe", "ProbeResult", "TcpProbe"]

_USER_AGENT = "connmgr/0.1 (connectivity check)"

# The most an HttpProbe with ``expect_body`` reads to look for it.
_MAX_EXPECTED_BODY = 65536


class _Read(Protocol):
    def __call__(self, amt: int, *, decode_content: bool) -> bytes: ...


def _check_host(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty host name or address, got {value!r}")


def _check_port(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{name} must be a port number (1-65535), got {value!r}")


@runtime_checkable
class Probe(Protocol):
    """One way of testing connectivity.

    ``check(timeout)`` must return a :class:`ProbeResult` whose status is
    ``ONLINE``, ``OFFLINE`` or (for probes that can tell) ``CAPTIVE_PORTAL``,
    within about ``timeout`` seconds, and should not raise. ``name`` is what
    logs and ``connmgr check`` show. ``detects_portal`` says whether the probe
    can see a captive portal; such a probe also *validates* the internet: while
    one is configured, a success from a probe that cannot (TCP, DNS) says only
    ``LIMITED``.

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


@explain_frozen
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
        failure: why it failed (``None`` for a success or a portal answer);
            :attr:`ProbeFailure.NAME_LOOKUP` is what makes a round say "name
            lookup (DNS) failing".
    """

    probe: Probe
    status: NetworkStatus
    elapsed: float
    detail: str = ""
    failure: ProbeFailure | None = None

    def __str__(self) -> str:
        return f"{self.probe.name}: {self.status.value} in {self.elapsed * 1000:.1f} ms" + (
            f" ({self.detail})" if self.detail else ""
        )


@explain_frozen
@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Online when a TCP connection to ``host:port`` opens.

    Cheap and private (a handshake, no data), but it cannot see a captive
    portal: many portals let TCP through or answer it themselves. An IP address
    avoids a DNS lookup; a host name is resolved within the timeout, by
    ``resolver`` when given (``getaddrinfo``'s shape) or the system's.

    Example::

        TcpProbe("8.8.8.8", 443).check(timeout=3.0)   # ProbeResult(..., ONLINE, 0.012, ...)
    """

    host: str
    port: int
    resolver: Resolver | None = field(default=None, kw_only=True, compare=False, repr=False)

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
            connect(self.host, self.port, timeout, self.resolver)
        except OSError as exc:
            failure, detail = describe_failure(exc, timeout)
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, detail, failure
            )
        return ProbeResult(self, NetworkStatus.ONLINE, time.perf_counter() - started, "connected")


@explain_frozen
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
    that only lets traffic out through a proxy is not taken for offline. Without
    a proxy the probe resolves the host itself (``resolver``, or the system's)
    and connects to the addresses it got, so a name that does not resolve is
    reported as a name lookup failure, and a ``resolver`` in a test means no
    real DNS query is made.

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
    resolver: Resolver | None = field(default=None, kw_only=True, compare=False, repr=False)

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
        return f"{urlsplit(self.url).scheme} {redact_url(self.url)}"

    @property
    def detects_portal(self) -> bool:
        """``True``: a portal answers this probe with its login page or a redirect."""
        return True

    def check(self, timeout: float) -> ProbeResult:
        """Send one GET (no redirects, no cookies) and interpret the answer; never raises.

        ``timeout`` bounds the name lookup, the connect and each read.
        """
        started = time.perf_counter()
        try:
            proxies = requests.utils.get_environ_proxies(self.url)
            if proxies.get(urlsplit(self.url).scheme) or proxies.get("all"):
                status, body, location = self._fetch_via_proxy(timeout, proxies)
            else:
                status, body, location = self._fetch_direct(timeout)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            failure, detail = describe_failure(exc, timeout)
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, detail, failure
            )
        verdict, detail = self.interpret(status, body, location)
        bad_status = ProbeFailure.STATUS if verdict is NetworkStatus.OFFLINE else None
        return ProbeResult(self, verdict, time.perf_counter() - started, detail, bad_status)

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

    def _fetch_direct(self, timeout: float) -> tuple[int, bytes, str | None]:
        # Resolve here (bounded, injectable), then connect to each address in turn
        # with the URL's host in the Host header and, for https, in SNI and the
        # certificate check: the same request as through requests, one lookup.
        started = time.perf_counter()
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = resolve(host, port, timeout, self.resolver)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Host": (f"[{host}]" if ":" in host else host)
            + (f":{parts.port}" if parts.port else ""),
            "User-Agent": _USER_AGENT,
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Cache-Control": "no-cache",
        }
        error: Exception = OSError(f"no address for {host}")
        for address in dict.fromkeys(str(info[4][0]) for info in infos):
            remaining = timeout - (time.perf_counter() - started)
            if remaining <= 0:
                raise TimeoutError("timed out")
            pool = self._pool(
                parts.scheme, address, port, host, urllib3.Timeout(remaining, timeout)
            )
            try:
                response = pool.urlopen(
                    "GET",
                    target,
                    headers=headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                )
            except (
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ConnectTimeoutError,
            ) as exc:
                pool.close()
                error = exc  # this address does not connect: try the next one
                continue
            except BaseException:
                pool.close()
                raise
            try:
                body = self._sniff_body(response.status, response.headers, response.read)
            finally:
                response.release_conn()
                pool.close()
            return response.status, body, response.headers.get("Location")
        raise error

    @staticmethod
    def _pool(
        scheme: str, address: str, port: int, host: str, timeout: urllib3.Timeout
    ) -> urllib3.HTTPConnectionPool:
        if scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                server_hostname=host if not is_ip_literal(host) else None,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
            )
        return urllib3.HTTPConnectionPool(address, port, timeout=timeout, maxsize=1, retries=False)

    def _fetch_via_proxy(
        self, timeout: float, proxies: dict[str, str]
    ) -> tuple[int, bytes, str | None]:
        # Through a proxy the proxy resolves the name. A fresh session per check:
        # thread-safe, no cookies carried between checks, and no ~/.netrc credentials
        # sent to a probe host (trust_env off, the environment's proxies passed in).
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(
                self.url,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                proxies=proxies,
                headers={"User-Agent": _USER_AGENT, "Cache-Control": "no-cache"},
            )
            try:
                body = self._sniff_body(response.status_code, response.headers, response.raw.read)
            finally:
                response.close()
            return response.status_code, body, response.headers.get("Location")

    def _sniff_body(self, status: int, headers: Mapping[str, str], read: _Read) -> bytes:
        # Unless a body is expected, only whether there is content matters: take it
        # from Content-Length when given, so a portal page is never downloaded (and a
        # slow one cannot stall the probe), else read a single byte.
        if status == 204:
            return b""
        if self.expect_body is None:
            length = headers.get("Content-Length", "")
            if length.strip().isdigit():
                return b"?" if int(length) > 0 else b""
        limit = 1 if self.expect_body is None else _MAX_EXPECTED_BODY
        return read(limit, decode_content=True) or b""


@explain_frozen
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
    resolver: Resolver | None = field(default=None, kw_only=True, compare=False, repr=False)

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
            infos = resolve(self.hostname, 443, timeout, self.resolver)
        except OSError as exc:
            failure, detail = describe_failure(exc, timeout)
            return ProbeResult(
                self, NetworkStatus.OFFLINE, time.perf_counter() - started, detail, failure
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
