"""connmgr.errors: the tree, classification of real failures, messages, redaction.

Failures are provoked for real on loopback wherever the kernel allows it (a
closed port, a ``.invalid`` name, an SO_LINGER-0 reset, a silent socket, a
trustme certificate); constructed exceptions and responses cover the rest.
"""

from __future__ import annotations

import builtins
import datetime as dt
import doctest
import errno
import gzip
import json
import pickle
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from typing import Any

import pytest
import requests
import trustme
import urllib3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

import connmgr.errors as errors_module
from connmgr.errors import (
    DEFAULT_RETRY_STATUS_CODES,
    BackoffError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    ErrorMessageFormatter,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    classify_error,
    is_retryable,
    outcome_of,
    redact_headers,
    redact_text,
    redact_url,
)
from connmgr.testing import FaultServer

ERROR_CLASSES = [
    obj
    for name in errors_module.__all__
    if isinstance(obj := getattr(errors_module, name), type) and issubclass(obj, BaseException)
]


# --------------------------------------------------------------------------- loopback helpers


def closed_port() -> int:
    """A loopback port nobody listens on (bound, noted, closed)."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def raw_server(
    handler: Callable[[socket.socket, threading.Event], None],
    *,
    wrap: ssl.SSLContext | None = None,
) -> Iterator[int]:
    """Accept connections on loopback and hand each to ``handler`` in a thread.

    ``handler`` gets the socket and a stop event; leaving the block sets the
    event, closes the listener and joins the threads, so no test hangs.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def serve(conn: socket.socket) -> None:
        try:
            if wrap is not None:
                conn = wrap.wrap_socket(conn, server_side=True)
            handler(conn, stop)
        except OSError:
            pass  # the client gave up or the handshake failed: expected in these tests
        finally:
            conn.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            worker = threading.Thread(target=serve, args=(conn,), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        for worker in workers:
            worker.join(2)


def read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def reset_handler(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silent_handler(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    stop.wait(2)


def reply_handler(
    raw: bytes, *, hold: bool = False
) -> Callable[[socket.socket, threading.Event], None]:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(raw)
        if hold:
            stop.wait(2)

    return handler


def failure(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it returns)."""
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("expected the call to fail")


def response(
    status: int,
    headers: dict[str, str] | None = None,
    *,
    url: str = "https://api.example.com/v1/search?q=x",
    body: bytes = b"",
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = {
        200: "OK",
        404: "Not Found",
        429: "Too Many Requests",
        503: "Service Unavailable",
    }.get(status, "")
    r.headers = CaseInsensitiveDict(headers or {})
    r.url = url
    r._content = body
    return r


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault:
        yield fault


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


# --------------------------------------------------------------------------- the tree


def _drawn_tree() -> dict[str, str]:
    """class name -> parent name, read from the module docstring's drawing."""
    doc = errors_module.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Za-z_.]+)(?:\s+\(also .*\))?\s*$", line)
        if found is None or ("──" not in line and "RequestException" not in line):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        name = found.group(2).split(".")[-1]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_drawn_tree_is_the_real_tree() -> None:
    drawn = _drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in ERROR_CLASSES}
    for cls in ERROR_CLASSES:
        assert cls.__bases__[0].__name__ == drawn[cls.__name__], cls


def test_the_also_notes_in_the_drawing_are_true() -> None:
    doc = errors_module.__doc__ or ""
    for name, also in re.findall(r"── (\w+)\s+\(also ([\w.]+)\)", doc):
        target = {"ValueError": ValueError}.get(also) or eval(also, {"requests": requests})
        assert issubclass(getattr(errors_module, name), target), (name, also)


def test_every_error_is_a_requests_exception_and_the_design_pairs_hold() -> None:
    for cls in ERROR_CLASSES:
        assert issubclass(cls, requests.RequestException)
        assert issubclass(cls, NetworkError)
    assert issubclass(ConnectionFailedError, requests.ConnectionError)
    assert issubclass(DNSError, ConnectionFailedError)
    assert issubclass(RequestTimeoutError, requests.Timeout)
    assert issubclass(DeadlineExceededError, RequestTimeoutError)
    assert issubclass(HTTPStatusError, requests.HTTPError)
    assert issubclass(ServerError, HTTPStatusError)
    assert issubclass(InvalidRequestError, ValueError)


def test_tls_error_is_requests_ssl_error_but_not_a_retryable_connection_failure() -> None:
    err = TLSError("handshake failed")
    assert isinstance(err, requests.exceptions.SSLError)
    assert isinstance(err, requests.ConnectionError)  # as with plain requests
    assert not isinstance(err, ConnectionFailedError)
    assert not is_retryable(err)


def test_the_docstring_examples_hold() -> None:
    results = doctest.testmod(errors_module)
    assert results.attempted >= 10 and results.failed == 0


def test_no_public_name_shadows_a_builtin() -> None:
    for name in errors_module.__all__:
        assert not hasattr(builtins, name), name


def test_every_public_name_is_documented() -> None:
    for name in errors_module.__all__:
        obj = getattr(errors_module, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_requests_handlers_still_catch_connmgr_errors() -> None:
    with pytest.raises(requests.Timeout):
        raise DeadlineExceededError("deadline")
    with pytest.raises(requests.ConnectionError):
        raise DNSError("nope")
    with pytest.raises(requests.HTTPError):
        raise ServerError(status=503)
    with pytest.raises(requests.RequestException):
        raise OfflineError()


# --------------------------------------------------------------------------- the error object


def test_defaults_of_a_bare_error() -> None:
    err = NetworkError()
    assert err.user_message == "A network error occurred."
    assert err.suggestion == "Check your connection and try again."
    assert (err.url, err.status, err.response, err.retry_after, err.operation) == (None,) * 5
    assert err.attempts == 0
    assert err.details == ""
    assert err.kind == "error"
    assert str(err) == "A network error occurred."


def test_context_is_redacted_and_str_is_one_short_line() -> None:
    err = NetworkError(
        "upload failed\nwith token=abc123 in it " + "x" * 1000,
        url="https://bob:hunter2@api.example.com/v1?api_key=abc123&q=techno",
        details="Authorization: Bearer abc123",
        attempts=3,
        operation="search",
    )
    line = str(err)
    assert "\n" not in line and len(line) <= 400
    assert "abc123" not in line and "hunter2" not in line
    assert err.url == "https://***@api.example.com/v1?api_key=***&q=techno"
    assert err.details == "Authorization: ***"
    assert err.host == "api.example.com"
    short = NetworkError("boom", url="https://api.example.com/x", attempts=3, operation="search")
    assert str(short) == "boom (https://api.example.com/x; 3 attempts; operation search)"


def test_user_message_and_suggestion_can_be_overridden_and_are_redacted() -> None:
    err = ConnectionFailedError(user_message="Sync failed for token=abc123.", suggestion="Retry.")
    assert err.user_message == "Sync failed for token=***."
    assert err.suggestion == "Retry."
    err.user_message = None  # back to the default
    assert err.user_message == "Could not connect to the server."


def test_status_comes_from_the_response() -> None:
    err = HTTPStatusError("HTTP 404", response=response(404))
    assert err.status == 404
    assert err.response is not None and err.response.status_code == 404
    assert err.url == "https://api.example.com/v1/search?q=x"


def test_backoff_error_retry_in_is_retry_after() -> None:
    err = BackoffError("circuit open", retry_in=8.2, url="https://api.example.com/x")
    assert err.retry_in == err.retry_after == pytest.approx(8.2)
    assert err.user_message == (
        "Requests to api.example.com are paused because it failed several times in a row."
    )
    assert err.suggestion == "Wait 9 seconds, then try again."
    assert err.request_sent is False


def test_rate_limit_wording_in_a_dialog_and_in_a_retry_banner() -> None:
    err = RateLimitError(retry_after=12)
    assert err.user_message == "The server asked us to slow down."
    assert ErrorMessageFormatter.format_error(err) == (
        "The server asked us to slow down. Wait 12 seconds, then try again."
    )
    assert ErrorMessageFormatter.format_retry(err, 12) == (
        "The server asked us to slow down. Trying again in 12 seconds."
    )
    assert ErrorMessageFormatter.format_retry(err, 1, attempt=2, max_attempts=4) == (
        "The server asked us to slow down. Trying again in 1 second (attempt 2 of 4)."
    )
    assert ErrorMessageFormatter().format_error(RateLimitError()) == (
        "The server asked us to slow down. Wait a moment, then try again."
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.2, "1 second"),
        (1, "1 second"),
        (11.2, "12 seconds"),
        (119, "119 seconds"),
        (150, "3 minutes"),
        (7200, "2 hours"),
        (3 * 86400, "3 days"),
    ],
)
def test_waits_are_worded_rounding_up(seconds: float, words: str) -> None:
    assert RateLimitError(retry_after=seconds).suggestion == f"Wait {words}, then try again."


def test_gate_rate_limit_was_never_sent_but_a_429_was() -> None:
    assert RateLimitError(retry_after=3).request_sent is False
    assert RateLimitError("HTTP 429", response=response(429)).request_sent is True


def test_deadline_message_names_the_budget() -> None:
    err = DeadlineExceededError("deadline", timeout=60)
    assert err.user_message == "The request was stopped because it took longer than 60 seconds."
    assert DeadlineExceededError().user_message == "The request took too long and was stopped."
    assert not is_retryable(err)


def test_call_sites_of_other_modules_keep_working() -> None:
    # The exact shapes used by transport.py, timeouts.py and clock.py.
    err = DeadlineExceededError(
        "the request did not finish within its 3 s deadline (body, 3.001 s elapsed)",
        url="http://127.0.0.1:9/drip",
        details="total deadline 3 s exceeded body; last error: ReadTimeoutError()",
    )
    assert err.url == "http://127.0.0.1:9/drip" and "3 s deadline" in str(err)
    cancelled = RequestCancelledError("user pressed stop", url="http://127.0.0.1:9/x")
    assert cancelled.user_message == "The request was cancelled."
    assert outcome_of(cancelled) == "fatal" and not is_retryable(cancelled)


def test_errors_survive_pickling_with_their_context() -> None:
    err = RateLimitError("HTTP 429", retry_after=3, url="https://x.test/?token=t", attempts=2)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is RateLimitError
    assert (copy.retry_after, copy.url, copy.attempts) == (3.0, "https://x.test/?token=***", 2)
    assert str(copy) == str(err)
    dns = pickle.loads(pickle.dumps(DNSError("x", temporary=True)))
    assert dns.temporary is True


def test_every_class_has_plain_words_defaults() -> None:
    jargon = re.compile(r"errno|urllib3|requests\.|Exception|Traceback|socket|None\b|Error\b")
    for cls in ERROR_CLASSES:
        err = cls()
        for text in (err.user_message, err.suggestion):
            assert text and text.endswith("."), (cls, text)
            assert not jargon.search(text), (cls, text)


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


def test_a_network_error_passes_through_and_only_empty_context_is_filled() -> None:
    err = RateLimitError(retry_after=3)
    same = classify_error(err, url="https://x.test/?token=t", attempts=2, operation="search")
    assert same is err
    assert (err.url, err.attempts, err.operation) == ("https://x.test/?token=***", 2, "search")
    classify_error(err, url="https://other.test/", attempts=5, operation="quick")
    assert (err.url, err.attempts, err.operation) == ("https://x.test/?token=***", 2, "search")


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


# --------------------------------------------------------------------------- retryable and outcomes


@pytest.mark.parametrize(
    ("err", "retryable", "outcome"),
    [
        (ConnectionFailedError(kind="refused", request_sent=False), True, "unreachable"),
        (ConnectionFailedError(kind="unreachable"), True, "unreachable"),
        (ConnectionFailedError(kind="reset"), True, "transient"),
        (ConnectionFailedError(kind="incomplete"), True, "transient"),
        (ConnectionFailedError(kind="proxy"), True, "transient"),
        (DNSError(temporary=True), True, "unreachable"),
        (DNSError(), False, "unreachable"),
        (RequestTimeoutError(kind="connect_timeout"), True, "unreachable"),
        (RequestTimeoutError(kind="read_timeout"), True, "transient"),
        (DeadlineExceededError(), False, "transient"),
        (RateLimitError(retry_after=5), False, "throttled"),  # raised by the gate
        (RateLimitError(status=429), True, "throttled"),
        (HTTPStatusError(status=404), False, "fatal"),
        (HTTPStatusError(status=408), False, "fatal"),
        (ServerError(status=500), True, "transient"),
        (ServerError(status=501), False, "fatal"),
        (ServerError(status=503, retry_after=5), True, "throttled"),
        (ServerError(), False, "transient"),
        (TLSError(kind="tls_certificate"), False, "fatal"),
        (InvalidRequestError(), False, "fatal"),
        (OfflineError(), False, "unreachable"),
        (BackoffError(retry_in=2), False, "transient"),
        (RequestCancelledError(), False, "fatal"),
        (NetworkError(), False, "fatal"),
    ],
    ids=lambda v: v if isinstance(v, str | bool) else f"{type(v).__name__}-{v.kind}-{v.status}",
)
def test_retryable_and_outcome_of_every_kind(
    err: NetworkError, retryable: bool, outcome: str
) -> None:
    assert is_retryable(err) is retryable
    assert outcome_of(err) == outcome


def test_retry_status_codes_can_be_narrowed() -> None:
    assert is_retryable(ServerError(status=503), frozenset({502})) is False
    assert is_retryable(RateLimitError(status=429), {500}) is False
    assert is_retryable(RateLimitError(status=429), {429}) is True
    assert is_retryable(RateLimitError(retry_after=3), {429}) is False  # the gate's: no status
    assert is_retryable(RateLimitError(status=403), DEFAULT_RETRY_STATUS_CODES) is True
    assert is_retryable(HTTPStatusError(status=409), {409}) is True
    assert outcome_of(ServerError(status=500), {502}) == "fatal"
    assert frozenset({429, 500, 502, 503, 504}) == DEFAULT_RETRY_STATUS_CODES


@pytest.mark.parametrize(
    ("status", "headers", "outcome"),
    [
        (200, {}, "success"),
        (404, {}, "success"),  # the server answered: the link works
        (501, {}, "success"),
        (429, {}, "throttled"),
        (503, {"Retry-After": "5"}, "throttled"),
        (503, {}, "transient"),
        (500, {}, "transient"),
        (200, {"X-RateLimit-Remaining": "0"}, "throttled"),
        (200, {"RateLimit-Remaining": "3"}, "success"),
        (200, {"x-rate-limit-remaining": "0"}, "throttled"),
        (
            200,
            {"RateLimit": '"default";r=0;t=30', "RateLimit-Policy": '"default";q=9;w=60'},
            "throttled",
        ),
        (
            200,
            {"RateLimit": '"default";r=4;t=30', "RateLimit-Policy": '"default";q=9;w=60'},
            "success",
        ),
        (200, {"X-RateLimit-Remaining": "garbage"}, "success"),
    ],
)
def test_outcome_of_responses(status: int, headers: dict[str, str], outcome: str) -> None:
    r = response(status, headers)
    assert outcome_of(r) == outcome
    assert is_retryable(r) is (status in DEFAULT_RETRY_STATUS_CODES)


def test_is_retryable_and_outcome_of_accept_raw_exceptions() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=1))
    assert is_retryable(exc) is True
    assert outcome_of(exc) == "unreachable"
    assert outcome_of(ssl.SSLCertVerificationError("certificate verify failed")) == "fatal"


# --------------------------------------------------------------------------- formatter


def test_format_error_and_details_accept_any_exception() -> None:
    port = closed_port()
    exc = failure(lambda: requests.get(f"http://127.0.0.1:{port}/a?password=pw123", timeout=1))
    text = ErrorMessageFormatter.format_error(exc)
    assert text == (
        f"Could not connect to 127.0.0.1:{port}: the connection was refused. "
        "The server may be down or restarting. Try again in a moment."
    )
    details = ErrorMessageFormatter.format_details(exc)
    lines = details.splitlines()
    assert lines[0] == "Error: ConnectionFailedError (refused)"
    assert f"Request: GET http://127.0.0.1:{port}/a?password=***" in lines
    assert "Request sent: no (it never left this machine)" in lines
    assert "Details:" in lines
    assert any("ConnectionRefusedError" in line for line in lines)
    assert "pw123" not in details


def test_format_details_redacts_request_headers(server: FaultServer) -> None:
    r = requests.get(
        server.url_for("/status/401"),
        headers={"Authorization": "Bearer tok-777", "X-Trace": "t1"},
        cookies={"session": "cookie-888"},
        timeout=2,
    )
    err = classify_error(failure(r.raise_for_status), operation="search")
    details = ErrorMessageFormatter.format_details(err)
    assert "HTTP status: 401 Unauthorized" in details
    assert "Operation: search" in details
    assert "Authorization: ***" in details and "X-Trace: t1" in details
    assert "tok-777" not in details and "cookie-888" not in details


def test_format_retry_now() -> None:
    assert ErrorMessageFormatter.format_retry(ServerError(status=503), 0) == (
        "The server is temporarily unavailable (busy or down for maintenance). Trying again now."
    )


def test_format_error_of_a_response() -> None:
    assert ErrorMessageFormatter.format_error(response(404)) == (
        "The page or item was not found on the server. "
        "Check the address or search terms; it may have been moved or removed."
    )


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bob:hunter2@api.test/x", "https://***@api.test/x"),
        ("https://bob@api.test/x", "https://***@api.test/x"),
        ("http://u:p@[::1]:8080/x", "http://***@[::1]:8080/x"),
        ("https://u:p@ss@api.test/", "https://***@api.test/"),
        ("https://api.test/x?token=a&q=b", "https://api.test/x?token=***&q=b"),
        ("https://api.test/x?access_token=a", "https://api.test/x?access_token=***"),
        (
            "https://api.test/x?api_key=a&apikey=b&key=c",
            "https://api.test/x?api_key=***&apikey=***&key=***",
        ),
        (
            "https://api.test/x?password=a&passwd=b&pwd=c",
            "https://api.test/x?password=***&passwd=***&pwd=***",
        ),
        (
            "https://api.test/x?secret=a&client_secret=b",
            "https://api.test/x?secret=***&client_secret=***",
        ),
        ("https://api.test/x?signature=a&sig=b", "https://api.test/x?signature=***&sig=***"),
        (
            "https://s3.test/o?X-Amz-Signature=a&X-Amz-Credential=b&X-Amz-Date=1",
            "https://s3.test/o?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Date=1",
        ),
        (
            "https://api.test/x?auth=a&session=b&sid=c&code=d",
            "https://api.test/x?auth=***&session=***&sid=***&code=***",
        ),
        (
            "https://api.test/x?TOKEN=a&Api-Key=b&accessToken=c&refresh_token=d",
            "https://api.test/x?TOKEN=***&Api-Key=***&accessToken=***&refresh_token=***",
        ),
        ("https://api.test/x?api%5Fkey=a", "https://api.test/x?api%5Fkey=***"),
        (
            "https://api.test/x?q=daft+punk&keyword=house&author=x&page=2&country_code=de",
            "https://api.test/x?q=daft+punk&keyword=house&author=x&page=2&country_code=de",
        ),
        (
            "https://api.test/cb#access_token=a&state=s",
            "https://api.test/cb#access_token=***&state=s",
        ),
        ("https://api.test/x#section-2", "https://api.test/x#section-2"),
        ("https://api.test/x?token=", "https://api.test/x?token="),
        ("/relative/path?token=a", "/relative/path?token=***"),
        ("https://api.test/x", "https://api.test/x"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent


def test_redact_headers() -> None:
    headers = CaseInsensitiveDict(
        {
            "Authorization": "Bearer a",
            "Proxy-Authorization": "Basic b",
            "Cookie": "session=c",
            "Set-Cookie": "id=d",
            "X-Api-Key": "e",
            "X-Auth-Token": "f",
            "X-Client-Secret": "g",
            "Accept": "text/html",
            "Idempotency-Key": "retry-id-1",
            "Referer": "https://x.test/?token=h",
        }
    )
    redacted = redact_headers(headers)
    assert redacted == {
        "Authorization": "***",
        "Proxy-Authorization": "***",
        "Cookie": "***",
        "Set-Cookie": "***",
        "X-Api-Key": "***",
        "X-Auth-Token": "***",
        "X-Client-Secret": "***",
        "Accept": "text/html",
        "Idempotency-Key": "retry-id-1",
        "Referer": "https://x.test/?token=***",
    }
    assert redact_headers([("authorization", "x"), ("accept", "y")]) == {
        "authorization": "***",
        "accept": "y",
    }
    assert redact_headers(None) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Max retries exceeded with url: /search?token=abc (Caused by X)",
            "Max retries exceeded with url: /search?token=*** (Caused by X)",
        ),
        ("see (https://u:p@x.test/a?key=k).", "see (https://***@x.test/a?key=***)."),
        ("header Bearer xyz was rejected", "header Bearer *** was rejected"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: ***"),
        ("Cookie: a=1; b=2\nnext line", "Cookie: ***\nnext line"),
        (
            "{'Authorization': 'Bearer a', 'Accept': '*/*'}",
            "{'Authorization': '***', 'Accept': '*/*'}",
        ),
        ('{"access_token": "a", "expires": 3}', '{"access_token": "***", "expires": 3}'),
        ("login(password='hunter2', user='bob')", "login(password=***, user='bob')"),
        ("api_key=abc123 rejected", "api_key=*** rejected"),
        ("Token 0123456789abcdef0123", "Token ***"),
        (
            "HTTPConnectionPool(host='127.0.0.1', port=80): Read timed out. (read timeout=0.1)",
            "HTTPConnectionPool(host='127.0.0.1', port=80): Read timed out. (read timeout=0.1)",
        ),
        ("the keyword=house search", "the keyword=house search"),
        ('{"keyword": "house", "X-Authkey": "k"}', '{"keyword": "house", "X-Authkey": "***"}'),
        ("X-Authkey: k", "X-Authkey: ***"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


_SECRETS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
    min_size=8,
    max_size=40,
)


def _all_text(err: NetworkError) -> str:
    return "\n".join(
        [
            str(err),
            repr(err),
            err.details,
            err.user_message,
            err.suggestion,
            err.url or "",
            ErrorMessageFormatter.format_error(err),
            ErrorMessageFormatter.format_details(err),
        ]
    )


def _leaky_error(secret: str, where: str) -> NetworkError:
    url = {
        "userinfo": f"https://bob:{secret}@api.test/v1/search?q=x",
        "query": f"https://api.test/v1/search?q=x&access_token={secret}",
        "fragment": f"https://api.test/cb#token={secret}",
    }.get(where, "https://api.test/v1/search?q=x")
    message = {
        "bearer": f"401 for {url}: Authorization: Bearer {secret}",
        "json": f'server said {{"api_key": "{secret}"}}',
        "pair": f"failed with password={secret} and {url}",
        "cookie": f"Cookie: session={secret}",
    }.get(where, f"failed: {url}")
    prepared = requests.Request(
        "GET", url, headers={"Authorization": f"Bearer {secret}", "X-Api-Key": secret}
    ).prepare()
    return classify_error(requests.ConnectionError(message, request=prepared))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=_SECRETS,
    where=st.sampled_from(["userinfo", "query", "fragment", "bearer", "json", "pair", "cookie"]),
)
def test_no_secret_ever_reaches_a_message(secret: str, where: str) -> None:
    placeholder = _all_text(_leaky_error("PLACEHOLDERxyz", where))
    assume(secret not in placeholder)
    assert secret not in _all_text(_leaky_error(secret, where))


def test_outcome_of_with_headers_already_parsed_agrees_with_reading_them():
    import requests as _requests

    from connmgr.ratelimit import parse_rate_limit_headers

    cases = [
        (200, {}),
        (404, {}),
        (429, {}),
        (503, {}),
        (503, {"Retry-After": "3"}),
        (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}),
        (200, {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "30"}),
    ]
    for status, headers in cases:
        response = _requests.Response()
        response.status_code = status
        response.headers.update(headers)
        quota = parse_rate_limit_headers(response.headers)
        assert outcome_of(response, quota=quota) == outcome_of(response), (status, headers)
