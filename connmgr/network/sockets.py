"""Socket helpers for the probes: bounded name lookups, a bare TCP connect, plain-word failures."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

__all__ = ["AddrInfo", "connect", "describe_failure", "is_ip_literal", "redact_url", "resolve"]


def redact_url(url: str) -> str:
    """``host[:port]/path`` without credentials or query (which may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}" + ("?…" if parts.query else "")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def resolve(host: str, port: int, timeout: float) -> Sequence[AddrInfo]:
    """``getaddrinfo`` bounded by ``timeout`` (it cannot be interrupted, so it runs aside)."""
    if is_ip_literal(host):
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    box: list[Sequence[AddrInfo] | OSError] = []
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


def connect(host: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection within ``timeout``; raise ``OSError`` otherwise."""
    started = time.perf_counter()
    infos = resolve(host, port, timeout)
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


def describe_failure(exc: BaseException, timeout: float) -> str:
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
