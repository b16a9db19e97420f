"""The error table, row by row: fault -> error class -> user message -> retried or not.

Every fault is real and on loopback: FaultServer routes (statuses, reset,
close, stalls, drip, redirect loops, TLS with a wrong certificate), a closed
port, a ``.invalid`` name and an unreachable proxy. ``docs/errors.md`` shows
the same table to users.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from connmgr.errors import (
    ConnectionFailedError,
    DNSError,
    ErrorMessageFormatter,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    classify_error,
    is_retryable,
    outcome_of,
)
from connmgr.testing import FaultServer

#: A timeout short enough that no row waits for real more than 0.1 s.
SHORT = (1.0, 0.1)


@dataclass(frozen=True)
class Faults:
    """Everything a row may fail against."""

    http: FaultServer
    tls: FaultServer  # its certificate names wrong.example, not 127.0.0.1
    closed_port: int

    def host(self) -> str:
        return f"127.0.0.1:{self.http.port}"


@pytest.fixture(scope="module")
def faults() -> Iterator[Faults]:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with FaultServer() as http, FaultServer(tls=True, cert_hosts=["wrong.example"]) as tls:
        http.alias("/loop", "/redirect?to=/loop")
        yield Faults(http=http, tls=tls, closed_port=port)


def raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("the fault did not fail")


def status(path: str) -> Callable[[Faults], BaseException]:
    """GET ``path`` and raise_for_status: the HTTPError, as application code sees it."""

    def provoke(f: Faults) -> BaseException:
        r = requests.get(f.http.url_for(path), timeout=2)
        return raised(r.raise_for_status)

    return provoke


def get(path: str, timeout: tuple[float, float] = SHORT) -> Callable[[Faults], BaseException]:
    return lambda f: raised(lambda: requests.get(f.http.url_for(path), timeout=timeout))


def redirect_loop(f: Faults) -> BaseException:
    with requests.Session() as session:
        session.max_redirects = 3
        return raised(lambda: session.get(f.http.url_for("/loop"), timeout=2))


def dns_failure(f: Faults) -> BaseException:
    started = time.perf_counter()
    with suppress(OSError):
        socket.getaddrinfo("connmgr-table.invalid", 80)
    if time.perf_counter() - started > 0.5:
        pytest.skip("this machine's resolver is slow to fail on .invalid names")
    return raised(lambda: requests.get("http://connmgr-table.invalid/search?q=x", timeout=SHORT))


@dataclass(frozen=True)
class Row:
    fault: str
    provoke: Callable[[Faults], BaseException]
    error: type[NetworkError]
    kind: str
    user_message: str  # {host}, {refused_host}, {tls_host}: the host:port that failed
    retried: bool
    outcome: str


TABLE = [
    Row("HTTP 400", status("/status/400"), HTTPStatusError, "status",
        "The server could not understand the request.", False, "fatal"),
    Row("HTTP 401", status("/status/401"), HTTPStatusError, "status",
        "You need to sign in to do this.", False, "fatal"),
    Row("HTTP 403", status("/status/403"), HTTPStatusError, "status",
        "The server refused access to this.", False, "fatal"),
    Row("HTTP 404", status("/status/404"), HTTPStatusError, "status",
        "The page or item was not found on the server.", False, "fatal"),
    Row("HTTP 410", status("/status/410"), HTTPStatusError, "status",
        "This item has been removed from the server and is no longer available.", False, "fatal"),
    Row("HTTP 422", status("/status/422"), HTTPStatusError, "status",
        "The server could not accept the data that was sent.", False, "fatal"),
    Row("HTTP 429, Retry-After: 3", status("/status/429?retry_after=3"), RateLimitError,
        "rate_limited", "The server asked us to slow down.", True, "throttled"),
    Row("HTTP 403, X-RateLimit-Remaining: 0", status("/status/403?header=X-RateLimit-Remaining:0"),
        RateLimitError, "rate_limited", "The server asked us to slow down.", True, "throttled"),
    Row("HTTP 500", status("/status/500"), ServerError, "status",
        "The server ran into a problem.", True, "transient"),
    Row("HTTP 501", status("/status/501"), ServerError, "status",
        "The server does not support this request.", False, "fatal"),
    Row("HTTP 502", status("/status/502"), ServerError, "status",
        "The server is having trouble (bad gateway).", True, "transient"),
    Row("HTTP 503", status("/status/503"), ServerError, "status",
        "The server is temporarily unavailable (busy or down for maintenance).", True, "transient"),
    Row("HTTP 503, Retry-After: 30", status("/status/503?retry_after=30"), ServerError, "status",
        "The server is temporarily unavailable (busy or down for maintenance).", True, "throttled"),
    Row("HTTP 504", status("/status/504"), ServerError, "status",
        "The server took too long to respond (gateway timeout).", True, "transient"),
    Row("connection reset (/reset)", get("/reset"), ConnectionFailedError, "reset",
        "The connection to {host} was cut off before the reply arrived.", True, "transient"),
    Row("closed without a reply (/close)", get("/close"), ConnectionFailedError, "reset",
        "The connection to {host} was cut off before the reply arrived.", True, "transient"),
    Row("connection refused",
        lambda f: raised(lambda: requests.get(f"http://127.0.0.1:{f.closed_port}/", timeout=SHORT)),
        ConnectionFailedError, "refused",
        "Could not connect to {refused_host}: the connection was refused.", True, "unreachable"),
    Row("no headers within the read timeout (/stall-headers)", get("/stall-headers?seconds=5"),
        RequestTimeoutError, "read_timeout",
        "The server {host} did not reply in time (waited 0.1 seconds).", True, "transient"),
    Row("body stalls mid-way (/stall-body)", get("/stall-body?seconds=5&bytes=1000"),
        RequestTimeoutError, "read_timeout", "The server {host} did not reply in time.", True,
        "transient"),
    Row("body drips slower than the read timeout (/drip)", get("/drip?bytes=20&interval=0.5"),
        RequestTimeoutError, "read_timeout", "The server {host} did not reply in time.", True,
        "transient"),
    Row("DNS: the name does not exist", dns_failure, DNSError, "dns",
        "Could not find the server connmgr-table.invalid.", False, "unreachable"),
    Row("TLS: certificate for another name",
        lambda f: raised(lambda: requests.get(f.tls.url_for("/ok"), verify=f.tls.ca_bundle,
                                              timeout=2)),
        TLSError, "tls_hostname",
        "The security certificate presented by {tls_host} belongs to a different site.",
        False, "fatal"),
    Row("TLS: certificate not trusted",
        lambda f: raised(lambda: requests.get(f.tls.url_for("/ok"), timeout=2)),
        TLSError, "tls_certificate",
        "The security certificate of {tls_host} could not be verified.", False, "fatal"),
    Row("proxy refuses",
        lambda f: raised(lambda: requests.get(
            "http://music.example/", proxies={"http": f"http://127.0.0.1:{f.closed_port}"},
            timeout=SHORT)),
        ConnectionFailedError, "proxy", "Could not connect through the proxy server.", True,
        "transient"),
    Row("URL without a scheme", lambda f: raised(lambda: requests.get("music.example/search")),
        InvalidRequestError, "missing_schema",
        "The address is incomplete: it must start with https:// or http://.", False, "fatal"),
    Row("redirect loop", redirect_loop, NetworkError, "redirect_loop",
        "The server kept redirecting the request in a loop.", False, "fatal"),
]  # fmt: skip


@pytest.mark.parametrize("row", TABLE, ids=[row.fault for row in TABLE])
def test_fault_to_error_to_message_to_retry(faults: Faults, row: Row) -> None:
    started = time.perf_counter()
    exc = row.provoke(faults)
    assert time.perf_counter() - started < 1.0  # no row waits for a real timeout beyond 0.1 s
    err = classify_error(exc)

    assert type(err) is row.error, f"{row.fault}: {exc!r}"
    assert err.kind == row.kind
    expected = row.user_message.format(
        host=faults.host(),
        refused_host=f"127.0.0.1:{faults.closed_port}",
        tls_host=f"127.0.0.1:{faults.tls.port}",
    )
    assert err.user_message == expected
    assert err.suggestion
    assert ErrorMessageFormatter.format_error(exc) == f"{expected} {err.suggestion}"
    assert is_retryable(err) is row.retried
    assert outcome_of(err) == row.outcome
    assert err.__cause__ is exc
    line = str(err)
    assert line and "\n" not in line and len(line) <= 400


def test_the_table_covers_every_class_a_request_can_fail_with() -> None:
    covered = {row.error for row in TABLE}
    # OfflineError, BackoffError, RequestCancelledError and DeadlineExceededError
    # come from the manager and the transport, not from a single fault.
    assert covered >= {
        ConnectionFailedError,
        DNSError,
        RequestTimeoutError,
        RateLimitError,
        HTTPStatusError,
        ServerError,
        TLSError,
        InvalidRequestError,
        NetworkError,
    }


def test_the_docs_show_every_row_of_the_table() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    for row in TABLE:
        example = "api.example.com"
        message = row.user_message.format(host=example, refused_host=example, tls_host=example)
        message = message.replace("connmgr-table.invalid", example)
        if "(waited 0.1 seconds)" in message:
            message = message.replace("0.1 seconds", "30 seconds")
        assert message in docs, f"{row.fault}: {message!r} is missing from docs/errors.md"
