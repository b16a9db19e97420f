"""connmgr.errors.classify: real failures and constructed exceptions -> the tree.

Failures are provoked for real on loopback wherever the kernel allows it (a
closed port, a ``.invalid`` name, an SO_LINGER-0 reset, a silent socket, a
trustme certificate); constructed exceptions and responses cover the rest.
"""

from __future__ import annotations

import datetime as dt
import errno
import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from typing import Any

import pytest
import requests
import trustme
import urllib3
from errors_helpers import (
    closed_port,
    failure,
    raw_server,
    read_request,
    reply_handler,
    reset_handler,
    response,
    silent_handler,
)
from requests.structures import CaseInsensitiveDict

from connmgr.errors import (
    ConnectionFailedError,
    DNSError,
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

# ---------------------------------------------------------------- classification: real failures


def test_refused_port_is_a_connection_failure_that_never_left() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/x?token=s3cr3t", timeout=1))
    err = classify_error(exc, attempts=1, operation="search")
    assert type(err) is ConnectionFailedError
    assert err.kind == "refused" and err.request_sent is False
    assert err.__cause__ is exc and err.__suppress_context__
    assert err.url == f"http://127.0.0.1:{port}/x?token=***"
    assert err.user_message == f"Could not connect to 127.0.0.1:{port}: the connection was refused."
    assert is_retryable(err)
    assert outcome_of(err) == "unreachable"  # the manager confirms with the monitor
    assert "s3cr3t" not in str(err) + err.details
    assert str(err).startswith("connection refused (ConnectionRefusedError")


def test_refused_through_urllib3_alone() -> None:
    port = closed_port()
    pool = urllib3.PoolManager(retries=False)
    exc = failure(lambda: pool.request("GET", f"http://127.0.0.1:{port}/", timeout=1))
    assert isinstance(exc, urllib3.exceptions.NewConnectionError)
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "refused"
    assert err.host == f"127.0.0.1:{port}"  # from urllib3's text: no request object here


def _resolve_is_fast(name: str) -> bool:
    started = time.perf_counter()
    with suppress(OSError):
        socket.getaddrinfo(name, 80)
    return time.perf_counter() - started < 0.5


def test_dns_failure_of_an_invalid_name() -> None:
    if not _resolve_is_fast("connmgr-test.invalid"):
        pytest.skip("this machine's resolver is slow to fail on .invalid names")
    started = time.perf_counter()
    exc = failure(lambda: requests.get("http://connmgr-test.invalid/a?api_key=k3y", timeout=1))
    assert time.perf_counter() - started < 0.5
    err = classify_error(exc)
    assert type(err) is DNSError
    assert err.temporary is False and err.request_sent is False
    assert err.user_message == "Could not find the server connmgr-test.invalid."
    assert err.suggestion == "Check the address for typos, and check your internet connection."
    assert not is_retryable(err)  # a name that does not exist
    assert outcome_of(err) == "unreachable"
    assert "k3y" not in str(err) + err.details


def test_dns_message_names_the_host_even_without_a_request() -> None:
    pool = urllib3.PoolManager(retries=False)
    if not _resolve_is_fast("connmgr-test.invalid"):
        pytest.skip("this machine's resolver is slow to fail on .invalid names")
    exc = failure(lambda: pool.request("GET", "http://connmgr-test.invalid:8080/", timeout=1))
    err = classify_error(exc)
    assert type(err) is DNSError and err.url is None
    assert err.user_message == "Could not find the server connmgr-test.invalid."


@pytest.mark.parametrize(
    ("exc", "temporary"),
    [
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), True),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), False),
        (requests.ConnectionError("nodename nor servname provided, or not known"), False),
        (requests.ConnectionError("[Errno 11001] getaddrinfo failed"), False),
        (requests.ConnectionError("[Errno -5] No address associated with hostname"), False),
        (requests.ConnectionError("Temporary failure in name resolution"), True),
    ],
)
def test_dns_failures_from_every_platform_wording(exc: BaseException, temporary: bool) -> None:
    err = classify_error(exc)
    assert type(err) is DNSError
    assert err.temporary is temporary
    assert is_retryable(err) is temporary


def test_reset_by_peer_is_a_retryable_connection_failure() -> None:
    with raw_server(reset_handler) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError
    assert err.kind == "reset" and err.request_sent is True
    assert err.user_message == (
        f"The connection to 127.0.0.1:{port} was cut off before the reply arrived."
    )
    assert is_retryable(err) and outcome_of(err) == "transient"


def test_closed_without_a_reply_is_a_reset() -> None:
    with raw_server(lambda conn, stop: read_request(conn)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "reset"


def test_read_timeout_is_a_request_timeout_not_a_deadline() -> None:
    with raw_server(silent_handler) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(1, 0.1)))
    assert isinstance(exc, requests.ReadTimeout)
    err = classify_error(exc)
    assert type(err) is RequestTimeoutError
    assert err.kind == "read_timeout" and err.timeout == pytest.approx(0.1)
    assert (
        err.user_message
        == f"The server 127.0.0.1:{port} did not reply in time (waited 0.1 seconds)."
    )
    assert is_retryable(err) and outcome_of(err) == "transient"


def test_read_timed_out_during_the_body_arrives_as_connection_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf"
    with raw_server(reply_handler(head, hold=True)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(1, 0.1)))
    assert type(exc) is requests.ConnectionError and "Read timed out" in str(exc)
    err = classify_error(exc, url=f"http://127.0.0.1:{port}/")
    assert type(err) is RequestTimeoutError and err.kind == "read_timeout"
    assert isinstance(err, requests.Timeout)
    assert is_retryable(err)


def test_urllib3_read_timeout_alone() -> None:
    with raw_server(silent_handler) as port:
        pool = urllib3.PoolManager(retries=False)
        exc = failure(lambda: pool.request("GET", f"http://127.0.0.1:{port}/", timeout=0.1))
    assert isinstance(exc, urllib3.exceptions.ReadTimeoutError)
    err = classify_error(exc)
    assert type(err) is RequestTimeoutError and err.kind == "read_timeout"


def test_connect_timeout_is_a_request_timeout_that_never_left() -> None:
    # A listener with a full accept queue: Linux drops further SYNs, so the
    # connect times out on loopback without touching any other network.
    with closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(0.1, 1)))
        finally:
            for filler in fillers:
                filler.close()
    if not isinstance(exc, requests.ConnectTimeout):
        pytest.skip(f"this kernel did not drop the SYN: {type(exc).__name__}")
    err = classify_error(exc)
    assert type(err) is RequestTimeoutError  # not a DeadlineExceededError
    assert err.kind == "connect_timeout" and err.request_sent is False
    assert err.timeout == pytest.approx(0.1)
    assert err.user_message == (
        f"Could not connect to 127.0.0.1:{port}: it did not answer within 0.1 seconds."
    )
    assert is_retryable(err) and outcome_of(err) == "unreachable"


def _tls_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


def _tls_failure(ca: trustme.CA, cert: trustme.LeafCert, verify: bool | str) -> NetworkError:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with raw_server(reply_handler(ok), wrap=_tls_context(cert)) as port:
        exc = failure(lambda: requests.get(f"https://127.0.0.1:{port}/", verify=verify, timeout=2))
    assert isinstance(exc, requests.exceptions.SSLError)
    return classify_error(exc)


def test_untrusted_certificate(ca: trustme.CA) -> None:
    err = _tls_failure(ca, ca.issue_cert("127.0.0.1"), True)
    assert type(err) is TLSError and err.kind == "tls_certificate"
    assert err.user_message.startswith("The security certificate of 127.0.0.1:")
    assert err.request_sent is False
    assert not is_retryable(err) and outcome_of(err) == "fatal"


def test_certificate_for_another_host(ca: trustme.CA, tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    err = _tls_failure(ca, ca.issue_cert("wrong.example"), str(bundle))
    assert type(err) is TLSError and err.kind == "tls_hostname"
    assert "belongs to a different site" in err.user_message
    assert "Wi-Fi sign-in page" in err.suggestion


def test_expired_certificate(ca: trustme.CA, tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    cert = ca.issue_cert(
        "127.0.0.1",
        not_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
    )
    err = _tls_failure(ca, cert, str(bundle))
    assert type(err) is TLSError and err.kind == "tls_expired"
    assert "date and time" in err.suggestion


def test_https_to_a_plain_http_server_is_a_tls_handshake_failure() -> None:
    def plain_http(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(65536)  # the ClientHello, answered in plain HTTP
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with raw_server(plain_http) as port:
        exc = failure(lambda: requests.get(f"https://127.0.0.1:{port}/", timeout=2))
    err = classify_error(exc)
    assert type(err) is TLSError and err.kind == "tls"
    assert not is_retryable(err)


def test_hostname_mismatch_against_a_tls_fault_server() -> None:
    with FaultServer(tls=True, cert_hosts=["wrong.example"]) as tls:
        exc = failure(lambda: requests.get(tls.url_for("/ok"), verify=tls.ca_bundle, timeout=2))
    err = classify_error(exc)
    assert type(err) is TLSError and err.kind == "tls_hostname"


def test_unreachable_proxy() -> None:
    port = closed_port()
    exc = failure(
        lambda: requests.get(
            "http://music.example/search?q=x",
            proxies={"http": f"http://user:pw@127.0.0.1:{port}"},
            timeout=1,
        )
    )
    assert isinstance(exc, requests.exceptions.ProxyError)
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "proxy"
    assert err.user_message == "Could not connect through the proxy server."
    assert "proxy settings" in err.suggestion
    assert err.request_sent is False and is_retryable(err)
    assert "pw@" not in str(err) + err.details


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda: requests.get("http://", timeout=1), "invalid_url"),
        (lambda: requests.get("music.example/search", timeout=1), "missing_schema"),
        (lambda: requests.get("ftp://music.example/", timeout=1), "invalid_schema"),
        (lambda: requests.get("http://exa mple.com:abc/", timeout=1), "invalid_url"),
        (
            lambda: requests.get("http://127.0.0.1:9/", headers={"X-A": "a\nb"}, timeout=1),
            "invalid_header",
        ),
    ],
)
def test_invalid_requests_are_fatal_value_errors(call: Callable[[], Any], kind: str) -> None:
    exc = failure(call)
    err = classify_error(exc)
    assert type(err) is InvalidRequestError, exc
    assert err.kind == kind
    assert isinstance(err, ValueError)
    assert err.request_sent is False
    assert not is_retryable(err) and outcome_of(err) == "fatal"


def test_url_required_invalid_json_body_and_invalid_proxy_url() -> None:
    assert classify_error(requests.exceptions.URLRequired("no url")).kind == "invalid_url"
    body = classify_error(requests.exceptions.InvalidJSONError("set is not JSON serializable"))
    assert type(body) is InvalidRequestError and body.kind == "invalid_request"
    err = classify_error(requests.exceptions.InvalidProxyURL("bad proxy"))
    assert err.kind == "invalid_proxy"
    assert err.user_message == "The proxy address in your settings is not valid."


def test_redirect_loop(server: FaultServer) -> None:
    server.alias("/loop", "/redirect?to=/loop")
    try:
        with requests.Session() as session:
            session.max_redirects = 3
            exc = failure(lambda: session.get(server.url_for("/loop"), timeout=2))
    finally:
        server.alias("/loop", None)
    assert isinstance(exc, requests.TooManyRedirects)
    err = classify_error(exc)
    assert type(err) is NetworkError and err.kind == "redirect_loop"
    assert err.response is not None and err.status == 302
    assert err.user_message == "The server kept redirecting the request in a loop."
    assert not is_retryable(err) and outcome_of(err) == "fatal"


def test_body_cut_off_before_content_length() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"
    with raw_server(reply_handler(cut)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    assert isinstance(exc, requests.exceptions.ChunkedEncodingError)
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "incomplete"
    assert is_retryable(err)


def test_broken_chunked_body() -> None:
    broken = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab"
    with raw_server(reply_handler(broken)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "incomplete"


def test_damaged_gzip_body() -> None:
    bad = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n0123456789"
    with raw_server(reply_handler(bad)) as port:
        exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    assert isinstance(exc, requests.exceptions.ContentDecodingError)
    err = classify_error(exc)
    assert type(err) is ConnectionFailedError and err.kind == "decoding"
    assert gzip  # the body above is deliberately not gzip


def test_unreadable_json_is_not_an_invalid_request(server: FaultServer) -> None:
    r = requests.get(server.url_for("/ok"), timeout=2)
    exc = failure(r.json)
    err = classify_error(exc)
    assert type(err) is NetworkError and err.kind == "invalid_response"
    assert not is_retryable(err)


def test_urllib3_retry_giving_up_on_a_status(server: FaultServer) -> None:
    retry = urllib3.util.Retry(total=1, status_forcelist=[503], backoff_factor=0)
    with requests.Session() as session:
        session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
        exc = failure(lambda: session.get(server.url_for("/status/503"), timeout=2))
    assert isinstance(exc, requests.exceptions.RetryError)
    err = classify_error(exc)
    assert type(err) is ServerError and err.status == 503
    assert is_retryable(err)


# ---------------------------------------------------------------- classification: statuses


@pytest.mark.parametrize(
    ("status", "cls", "message"),
    [
        (400, HTTPStatusError, "The server could not understand the request."),
        (401, HTTPStatusError, "You need to sign in to do this."),
        (403, HTTPStatusError, "The server refused access to this."),
        (404, HTTPStatusError, "The page or item was not found on the server."),
        (
            410,
            HTTPStatusError,
            "This item has been removed from the server and is no longer available.",
        ),
        (418, HTTPStatusError, "The server refused the request (HTTP 418)."),
        (429, RateLimitError, "The server asked us to slow down."),
        (500, ServerError, "The server ran into a problem."),
        (502, ServerError, "The server is having trouble (bad gateway)."),
        (
            503,
            ServerError,
            "The server is temporarily unavailable (busy or down for maintenance).",
        ),
        (504, ServerError, "The server took too long to respond (gateway timeout)."),
        (599, ServerError, "The server had a problem (HTTP 599)."),
    ],
)
def test_raise_for_status_over_loopback(
    server: FaultServer, status: int, cls: type[NetworkError], message: str
) -> None:
    r = requests.get(server.url_for(f"/status/{status}"), timeout=2)
    exc = failure(r.raise_for_status)
    err = classify_error(exc, attempts=1)
    assert type(err) is cls
    assert err.status == status and err.response is r and err.__cause__ is exc
    assert err.user_message == message
    assert err.url == server.url_for(f"/status/{status}")
    assert str(err).startswith(f"HTTP {status}")
    # The response alone classifies the same way.
    assert type(classify_error(r)) is cls


def test_status_messages_tell_401_403_404_410_and_other_4xx_apart() -> None:
    texts = {classify_error(response(s)).user_message for s in (401, 403, 404, 410, 418)}
    suggestions = {classify_error(response(s)).suggestion for s in (401, 403, 404, 410, 418)}
    assert len(texts) == 5 and len(suggestions) == 5


def test_429_with_retry_after_seconds(server: FaultServer) -> None:
    r = requests.get(server.url_for("/status/429?retry_after=3"), timeout=2)
    err = classify_error(r)
    assert type(err) is RateLimitError
    assert err.retry_after == 3.0 and err.response is r and err.request_sent
    assert err.suggestion == "Wait 3 seconds, then try again."
    assert "retry after 3 s" in str(err)


def test_retry_after_http_date_is_measured_against_the_servers_date() -> None:
    r = response(
        429,
        {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
    )
    assert classify_error(r).retry_after == pytest.approx(30.0)


def test_retry_after_http_date_without_a_date_header_uses_our_clock() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    r = response(429, {"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    assert classify_error(r).retry_after == pytest.approx(120, abs=2)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit-Reset": "17"}, 17.0),
        ({"X-RateLimit-Reset": "5"}, 5.0),
        (
            {"X-RateLimit-Reset": "1445412510", "Date": "Wed, 21 Oct 2015 07:28:00 GMT"},
            30.0,
        ),
        ({"Retry-After": "4", "X-RateLimit-Reset": "99"}, 4.0),
        ({"Retry-After": "soon"}, None),
        ({"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=9;w=60'}, 30.0),
        ({}, None),
    ],
)
def test_429_wait_from_rate_limit_headers(headers: dict[str, str], expected: float | None) -> None:
    assert classify_error(response(429, headers)).retry_after == expected


def test_403_with_no_quota_left_is_a_rate_limit() -> None:
    err = classify_error(response(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}))
    assert type(err) is RateLimitError and err.status == 403 and err.retry_after == 60
    assert outcome_of(err) == "throttled"
    plain = classify_error(response(403))
    assert type(plain) is HTTPStatusError and outcome_of(plain) == "fatal"


def test_503_with_retry_after_carries_it_and_counts_as_throttled(server: FaultServer) -> None:
    r = requests.get(server.url_for("/status/503?retry_after=7"), timeout=2)
    err = classify_error(r)
    assert type(err) is ServerError and err.retry_after == 7.0
    assert err.suggestion == "Try again in 7 seconds."
    assert is_retryable(err)
    assert outcome_of(err) == "throttled" and outcome_of(r) == "throttled"


def test_a_non_error_status_is_an_unexpected_answer() -> None:
    err = classify_error(response(302))
    assert type(err) is HTTPStatusError
    assert err.user_message == "The server gave an unexpected answer (HTTP 302)."


def test_http_error_without_a_response_reads_the_status_from_the_text() -> None:
    err = classify_error(requests.HTTPError("503 Server Error: Service Unavailable for url: x"))
    assert type(err) is ServerError and err.status == 503
    assert type(classify_error(requests.HTTPError("odd"))) is HTTPStatusError


def test_response_details_show_useful_headers_and_the_body_redacted() -> None:
    r = response(
        401,
        {
            "Content-Type": "application/json",
            "X-Request-Id": "req-42",
            "Set-Cookie": "session=abc123",
            "WWW-Authenticate": "Bearer realm=x",
        },
        body=json.dumps({"error": "bad token", "access_token": "abc123"}).encode(),
    )
    details = classify_error(r).details
    assert "HTTP 401" in details and "req-42" in details and "bad token" in details
    assert "abc123" not in details


def test_a_streamed_body_is_never_read_for_details(server: FaultServer) -> None:
    r = requests.get(server.url_for("/status/500"), stream=True, timeout=2)
    classify_error(r)
    assert r.raw is not None and not r._content_consumed
    assert r.content == b"500 Internal Server Error\n"
    r.close()


# ---------------------------------------------------------------- classification: constructed edges


@pytest.mark.parametrize(
    ("exc", "cls", "kind"),
    [
        (
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
            ConnectionFailedError,
            "reset",
        ),
        (BrokenPipeError(), ConnectionFailedError, "reset"),
        (urllib3.exceptions.ProtocolError("Connection aborted."), ConnectionFailedError, "reset"),
        (
            OSError(errno.ENETUNREACH, "Network is unreachable"),
            ConnectionFailedError,
            "unreachable",
        ),
        (OSError(errno.EHOSTUNREACH, "No route to host"), ConnectionFailedError, "unreachable"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ConnectionFailedError, "refused"),
        (TimeoutError("timed out"), RequestTimeoutError, "timeout"),
        (requests.Timeout("slow"), RequestTimeoutError, "timeout"),
        (urllib3.exceptions.SSLError("bad record mac"), TLSError, "tls"),
        (ssl.SSLError(1, "[SSL] sslv3 alert handshake failure"), TLSError, "tls"),
        (urllib3.exceptions.DecodeError("bad"), ConnectionFailedError, "decoding"),
        (
            requests.exceptions.SSLError(
                urllib3.exceptions.SSLError(
                    ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2426)")
                )
            ),
            ConnectionFailedError,
            "reset",
        ),
        (
            requests.exceptions.SSLError("[SSL: UNEXPECTED_EOF_WHILE_READING] unexpected eof"),
            ConnectionFailedError,
            "reset",
        ),
        (requests.ConnectionError("something odd"), ConnectionFailedError, "connection"),
        (ValueError("not a network thing"), NetworkError, "error"),
        (KeyError("x"), NetworkError, "error"),
    ],
)
def test_constructed_exceptions(exc: BaseException, cls: type[NetworkError], kind: str) -> None:
    err = classify_error(exc)
    assert type(err) is cls
    assert err.kind == kind
    assert err.__cause__ is exc


def test_kernel_connect_timeout_under_new_connection_error() -> None:
    cause = TimeoutError(errno.ETIMEDOUT, "Connection timed out")
    exc = urllib3.exceptions.NewConnectionError(None, f"Failed to establish: {cause}")  # type: ignore[arg-type]
    exc.__cause__ = cause
    err = classify_error(exc)
    assert type(err) is RequestTimeoutError and err.kind == "connect_timeout"
    assert err.request_sent is False


def _state(err: NetworkError) -> dict[str, Any]:
    """Everything an error carries, to compare before and after."""
    return {
        "dict": dict(vars(err)),
        "args": err.args,
        "cause": err.__cause__,
        "context": err.__context__,
        "suppress": err.__suppress_context__,
        "traceback": err.__traceback__,
    }


def test_a_network_error_passes_through_and_only_empty_context_is_filled() -> None:
    err = RateLimitError(retry_after=3)
    before = _state(err)
    filled = classify_error(err, url="https://x.test/?token=t", attempts=2, operation="search")
    assert filled is not err and type(filled) is RateLimitError
    assert _state(err) == before  # pure: the argument is unchanged
    assert (err.url, err.attempts, err.operation) == (None, 0, None)
    assert (filled.url, filled.attempts, filled.operation) == (
        "https://x.test/?token=***",
        2,
        "search",
    )
    # Context already there is kept, and nothing to fill returns the same object.
    again = classify_error(filled, url="https://other.test/", attempts=5, operation="quick")
    assert again is filled
    assert (filled.url, filled.attempts, filled.operation) == (
        "https://x.test/?token=***",
        2,
        "search",
    )
    assert classify_error(err) is err


def test_classify_copies_keep_everything_an_error_carries() -> None:
    response = requests.Response()
    response.status_code = 503
    response.headers = CaseInsensitiveDict({"Retry-After": "4"})
    request = requests.Request("POST", "https://api.test/x").prepare()
    cause = ConnectionResetError(104, "reset")
    try:
        try:
            raise cause
        except ConnectionResetError as exc:
            raise ServerError(
                "HTTP 503",
                user_message="The shop is closed.",
                suggestion="Come back tomorrow.",
                details="secret=abc details",
                response=response,
                request=request,
                status=503,
                retry_after=4,
                request_sent=True,
                kind="status",
            ) from exc
    except ServerError as raised:
        err = raised
    before = _state(err)
    copy = classify_error(err, attempts=3, operation="search", request_sent=False)
    assert _state(err) == before and err.attempts == 0 and err.request_sent is True
    assert copy is not err and type(copy) is ServerError
    assert copy.user_message == "The shop is closed."
    assert copy.suggestion == "Come back tomorrow."
    assert copy.details == err.details and "abc" not in copy.details
    assert copy.response is response and copy.request is request
    assert (copy.status, copy.retry_after, copy.kind) == (503, 4.0, "status")
    assert copy.__cause__ is cause and copy.__traceback__ is err.__traceback__
    assert copy.args == err.args and str(copy).startswith("HTTP 503")
    assert (copy.attempts, copy.operation, copy.request_sent) == (3, "search", False)
    assert copy.url == err.url == "https://api.test/x"


def test_classifying_a_raw_exception_leaves_it_unchanged() -> None:
    exc = requests.ConnectionError("Connection refused")
    before = (exc.args, exc.request, exc.response, exc.__cause__, dict(vars(exc)))
    err = classify_error(exc, url="https://x.test/", attempts=1, operation="quick")
    assert err.__cause__ is exc
    assert (exc.args, exc.request, exc.response, exc.__cause__, dict(vars(exc))) == before


def test_classify_rejects_what_is_not_an_exception() -> None:
    with pytest.raises(TypeError, match=r"exception or a requests\.Response"):
        classify_error("boom")  # type: ignore[arg-type]


def test_a_broken_str_does_not_break_classification() -> None:
    class WeirdError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert type(classify_error(WeirdError())) is NetworkError


def test_classification_is_cheap() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    started = time.perf_counter()
    for _ in range(200):
        classify_error(exc)
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.002  # measured ~60 µs; generous for a loaded CI box
