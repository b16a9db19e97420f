"""Socket helpers for the probes: bounded name lookups, a bare TCP connect, plain-word failures."""

from __future__ import annotations

import errno
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from connmgr.network.status import ProbeFailure

__all__ = [
    "AddrInfo",
    "NameLookupTimeoutError",
    "Resolver",
    "connect",
    "describe_failure",
    "is_ip_literal",
    "redact_url",
    "resolve",
    "system_resolver",
]


def redact_url(url: str) -> str:
    """``host[:port]/path`` without credentials or query (which may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}" + ("?…" if parts.query else "")


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (no name lookup needed)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


#: A resolver in ``getaddrinfo``'s shape, ``(host, port) -> [(family, type, proto, _, addr)]``,
#: raising ``socket.gaierror`` (or another ``OSError``) when the name does not resolve.
Resolver = Callable[[str, int], Sequence[AddrInfo]]


class NameLookupTimeoutError(TimeoutError):
    """The resolver did not answer within the probe's timeout (a name lookup failure)."""


def system_resolver(host: str, port: int) -> Sequence[AddrInfo]:
    """The operating system's resolver (``socket.getaddrinfo``, TCP addresses)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve(
    host: str, port: int, timeout: float, resolver: Resolver | None = None
) -> Sequence[AddrInfo]:
    """Resolve ``host`` within ``timeout`` with ``resolver`` (default: the system's).

    An IP address is never looked up. A lookup cannot be interrupted, so it runs
    in a thread of its own; one that takes too long raises :class:`NameLookupTimeoutError`.
    """
    if is_ip_literal(host):
        return system_resolver(host, port)
    lookup = resolver if resolver is not None else system_resolver
    box: list[Sequence[AddrInfo] | Exception] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(lookup(host, port))
        except Exception as exc:  # an injected resolver's bug is re-raised to the caller
            box.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="connmgr-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise NameLookupTimeoutError(f"name lookup took longer than {timeout:g} s")
    answer = box[0]
    if isinstance(answer, Exception):
        raise answer
    if not answer:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return answer


def connect(host: str, port: int, timeout: float, resolver: Resolver | None = None) -> None:
    """Open and close a TCP connection within ``timeout``; raise ``OSError`` otherwise."""
    started = time.perf_counter()
    infos = resolve(host, port, timeout, resolver)
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


def describe_failure(exc: BaseException, timeout: float) -> tuple[ProbeFailure, str]:
    """Why a probe failed: the kind, and plain words (no URLs: they may carry credentials).

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
            return ProbeFailure.REFUSED, "connection refused"
        if isinstance(cause, socket.gaierror):
            return ProbeFailure.NAME_LOOKUP, f"name lookup failed ({cause.strerror or cause})"
        if isinstance(cause, NameLookupTimeoutError):
            return ProbeFailure.NAME_LOOKUP, str(cause)
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return ProbeFailure.UNREACHABLE, _UNREACHABLE[cause.errno]
        if isinstance(cause, http.client.RemoteDisconnected):
            return ProbeFailure.RESET, "closed without an answer"
        if isinstance(cause, ConnectionResetError):
            return ProbeFailure.RESET, "connection reset"
    for cause in chain:
        if isinstance(
            cause, ssl.SSLError | requests.exceptions.SSLError | urllib3.exceptions.SSLError
        ):
            return ProbeFailure.TLS, "TLS failed (a portal intercepting https?)"
        if isinstance(cause, TimeoutError | requests.Timeout | urllib3.exceptions.TimeoutError):
            return ProbeFailure.TIMEOUT, f"no answer within {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return ProbeFailure.OTHER, f"{type(exc).__name__}: {exc.strerror}"
    return ProbeFailure.OTHER, type(exc).__name__


_UNREACHABLE = {
    errno.ENETUNREACH: "network unreachable (no route)",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETDOWN: "network is down",
}
