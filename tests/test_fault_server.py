"""FaultServer: every route over real loopback sockets, counters, aliases, lifecycle, TLS."""

from __future__ import annotations

import json
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

import connmgr
from connmgr import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.testing import FaultServer, RecordedRequest
from connmgr.testing.server import RequestHeaders


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def raw_request(server: FaultServer, request: bytes, *, timeout: float = 2.0) -> socket.socket:
    """A connected raw socket that has sent ``request``."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.sendall(request)
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read until the end of the response head: (head, body bytes read so far)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed inside the head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


# -- routes --------------------------------------------------------------


def test_ok_answers_ok_with_size_and_head(
    fault_server: FaultServer, session: requests.Session
) -> None:
    r = session.get(fault_server.url_for("/ok"))
    assert (r.status_code, r.text, r.headers["Content-Length"]) == (200, "ok", "2")
    assert session.get(fault_server.url_for("/ok?size=1000")).content == b"x" * 1000
    assert session.get(fault_server.url_for("/ok?size=0")).content == b""
    head = session.head(fault_server.url_for("/ok?size=7"))
    assert (head.status_code, head.headers["Content-Length"], head.content) == (200, "7", b"")
    # Any method.
    assert session.post(fault_server.url_for("/ok"), data=b"payload").text == "ok"


def test_delay_holds_the_answer(fault_server: FaultServer, session: requests.Session) -> None:
    start = time.monotonic()
    assert session.get(fault_server.url_for("/ok?delay=0.05")).status_code == 200
    assert time.monotonic() - start >= 0.05
    with pytest.raises(requests.ReadTimeout):
        session.get(fault_server.url_for("/ok?delay=0.2"), timeout=(1, 0.02))


@pytest.mark.parametrize("code", [200, 201, 400, 404, 429, 500, 502, 503, 504, 599])
def test_status_answers_any_code(
    fault_server: FaultServer, session: requests.Session, code: int
) -> None:
    r = session.get(fault_server.url_for(f"/status/{code}"))
    assert r.status_code == code
    assert "Retry-After" not in r.headers


def test_status_retry_after_and_extra_headers(
    fault_server: FaultServer, session: requests.Session
) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    r = session.get(
        fault_server.url_for("/status/503"),
        params=[("retry_after", date), ("header", "X-RateLimit-Remaining:0"), ("header", "X-A: b")],
    )
    assert r.status_code == 503
    assert r.headers["Retry-After"] == date
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["X-A"] == "b"
    assert (
        session.get(fault_server.url_for("/status/429?retry_after=3")).headers["Retry-After"] == "3"
    )
    # 204 and 304 have no body, and the connection stays usable after them.
    assert session.get(fault_server.url_for("/status/204")).content == b""
    assert session.get(fault_server.url_for("/status/304")).content == b""
    assert session.get(fault_server.url_for("/ok")).text == "ok"


@pytest.mark.parametrize(
    "path",
    [
        "/status/abc",
        "/status/100",
        "/status/42",
        "/status/503?header=novalue",
        "/ok?delay=soon",
        "/ok?delay=-1",
        "/flaky/a?fail=x",
        "/random?rate=2",
        "/limited?rate=0",
        "/drip?bytes=-1",
    ],
)
def test_bad_parameters_answer_400(
    fault_server: FaultServer, session: requests.Session, path: str
) -> None:
    r = session.get(fault_server.url_for(path))
    assert r.status_code == 400
    assert r.text.strip()


def test_flaky_fails_n_times_then_succeeds_per_key(
    fault_server: FaultServer, session: requests.Session
) -> None:
    codes = [
        session.get(fault_server.url_for("/flaky/a?fail=2&status=502")).status_code
        for _ in range(4)
    ]
    assert codes == [502, 502, 200, 200]
    # Another key has its own counter; fail defaults to 1 and status to 503.
    assert [session.get(fault_server.url_for("/flaky/b")).status_code for _ in range(2)] == [
        503,
        200,
    ]
    fault_server.reset()
    assert session.get(fault_server.url_for("/flaky/a?fail=1")).status_code == 503


def test_flaky_status_reset_resets_the_connection(
    fault_server: FaultServer, session: requests.Session
) -> None:
    url = fault_server.url_for("/flaky/r?fail=1&status=reset")
    with pytest.raises(requests.ConnectionError) as info:
        session.get(url)
    assert "reset" in str(info.value).lower()
    assert session.get(url).status_code == 200


def test_random_fails_at_the_rate_reproducibly_with_a_seed(
    fault_server: FaultServer, session: requests.Session
) -> None:
    url = fault_server.url_for("/random?rate=0.3&status=500&seed=7")
    got = [session.get(url).status_code for _ in range(60)]
    rng = random.Random("7")
    expected = [500 if rng.random() < 0.3 else 200 for _ in range(60)]
    assert got == expected
    assert 5 <= got.count(500) <= 35
    assert all(session.get(fault_server.url_for("/random?rate=0")).ok for _ in range(10))
    assert not any(session.get(fault_server.url_for("/random?rate=1")).ok for _ in range(10))
    fault_server.reset()  # restarts the seeded sequence
    assert [session.get(url).status_code for _ in range(60)] == expected


def test_random_seed_from_the_constructor() -> None:
    runs = []
    for _ in range(2):
        with FaultServer(seed=3) as server, requests.Session() as s:
            runs.append([s.get(server.url_for("/random?rate=0.5")).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_drip_sends_headers_at_once_then_one_byte_per_interval(fault_server: FaultServer) -> None:
    with raw_request(fault_server, get("/drip?bytes=5&interval=0.02")) as sock:
        start = time.monotonic()
        head, body = read_head(sock)
        assert b"Content-Length: 5" in head
        assert len(body) < 5  # the body is still dripping
        while len(body) < 5:
            chunk = sock.recv(10)
            assert chunk
            body += chunk
        assert body == b"xxxxx"
        assert time.monotonic() - start >= 5 * 0.02 - 0.005


def test_drip_keeps_requests_read_timeout_from_firing(
    fault_server: FaultServer, session: requests.Session
) -> None:
    # Each byte arrives well within the read timeout, so requests never times out:
    # the reason connmgr needs a total deadline.
    r = session.get(fault_server.url_for("/drip?bytes=6&interval=0.02"), timeout=(1, 0.1))
    assert r.content == b"x" * 6


def test_stall_headers_waits_before_answering(
    fault_server: FaultServer, session: requests.Session
) -> None:
    start = time.monotonic()
    assert session.get(fault_server.url_for("/stall-headers?seconds=0.05")).text == "ok"
    assert time.monotonic() - start >= 0.05
    with pytest.raises(requests.ReadTimeout):
        session.get(fault_server.url_for("/stall-headers?seconds=5"), timeout=(1, 0.05))
    assert fault_server.hits("/stall-headers") == 2


def test_stall_body_sends_half_then_waits(fault_server: FaultServer) -> None:
    with raw_request(fault_server, get("/stall-body?seconds=0.1&bytes=10")) as sock:
        head, body = read_head(sock)
        assert b"Content-Length: 10" in head
        while len(body) < 5:
            body += sock.recv(10)
        assert body == b"xxxxx"
        sock.settimeout(0.03)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(2)
        while len(body) < 10:
            chunk = sock.recv(10)
            assert chunk
            body += chunk
        assert body == b"x" * 10


def test_reset_sends_a_tcp_reset(fault_server: FaultServer, session: requests.Session) -> None:
    with raw_request(fault_server, get("/reset")) as sock, pytest.raises(ConnectionResetError):
        sock.recv(100)
    with pytest.raises(requests.ConnectionError, match="reset"):
        session.get(fault_server.url_for("/reset"))


def test_close_closes_without_a_response(
    fault_server: FaultServer, session: requests.Session
) -> None:
    with raw_request(fault_server, get("/close")) as sock:
        assert sock.recv(100) == b""
    with pytest.raises(requests.ConnectionError, match="without response"):
        session.get(fault_server.url_for("/close"))


def test_limited_is_a_token_bucket_with_headers(
    fault_server: FaultServer, session: requests.Session
) -> None:
    url = fault_server.url_for("/limited?rate=5&burst=2&headers=1")
    first, second, third = (session.get(url) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert third.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < float(third.headers["X-RateLimit-Reset"]) <= 0.2
    assert third.headers["Retry-After"] == "1"  # whole seconds, at least 1
    assert "Retry-After" not in first.headers


def test_limited_refills_and_keeps_headers_hidden_by_default(
    fault_server: FaultServer, session: requests.Session
) -> None:
    url = fault_server.url_for("/limited?rate=10&burst=1")
    assert session.get(url).status_code == 200
    blocked = session.get(url)
    assert blocked.status_code == 429
    assert not any(
        name.lower().startswith(("x-ratelimit", "retry-after")) for name in blocked.headers
    )
    time.sleep(0.15)  # 1.5 tokens' worth at 10/s
    assert session.get(url).status_code == 200
    # Another rate is another bucket; reset() refills every bucket.
    assert session.get(fault_server.url_for("/limited?rate=9&burst=1")).status_code == 200
    assert session.get(url).status_code == 429
    fault_server.reset()
    assert session.get(url).status_code == 200


def test_generate_204_and_portal(fault_server: FaultServer, session: requests.Session) -> None:
    r = session.get(fault_server.url_for("/generate_204"))
    assert (r.status_code, r.content) == (204, b"")
    portal = session.get(fault_server.url_for("/portal"))
    assert portal.status_code == 200
    assert portal.headers["Content-Type"].startswith("text/html")
    assert "<form" in portal.text


def test_redirect(fault_server: FaultServer, session: requests.Session) -> None:
    r = session.get(fault_server.url_for("/redirect?to=/status/418"), allow_redirects=False)
    assert (r.status_code, r.headers["Location"]) == (302, "/status/418")
    assert session.get(fault_server.url_for("/redirect?to=/status/418")).status_code == 418
    assert session.get(fault_server.url_for("/redirect")).text == "ok"
    moved = session.get(fault_server.url_for("/redirect?status=307"), allow_redirects=False)
    assert moved.status_code == 307


def test_echo_returns_the_request(fault_server: FaultServer, session: requests.Session) -> None:
    r = session.post(
        fault_server.url_for("/echo?a=1&a=2&b=x"),
        json={"k": "v"},
        headers={"Idempotency-Key": "abc"},
    )
    doc = r.json()
    assert r.headers["Content-Type"] == "application/json"
    assert doc["method"] == "POST"
    assert doc["path"] == "/echo"
    assert doc["query"] == "a=1&a=2&b=x"
    assert doc["args"] == {"a": ["1", "2"], "b": "x"}
    assert doc["headers"]["Idempotency-Key"] == "abc"
    assert json.loads(doc["body"]) == {"k": "v"}


def test_echo_reads_chunked_bodies(fault_server: FaultServer, session: requests.Session) -> None:
    r = session.put(fault_server.url_for("/echo"), data=iter([b"ab", b"cd"]))
    assert r.json()["body"] == "abcd"
    assert session.get(fault_server.url_for("/ok")).text == "ok"  # connection still in sync


def test_unknown_path_is_404(fault_server: FaultServer, session: requests.Session) -> None:
    assert session.get(fault_server.url_for("/nothing/here")).status_code == 404
    assert session.get(fault_server.url).status_code == 404


# -- HTTP handling ---------------------------------------------------------


def test_keep_alive_reuses_one_connection(
    fault_server: FaultServer, session: requests.Session
) -> None:
    for path in ("/ok", "/status/503", "/echo", "/ok?size=3"):
        session.get(fault_server.url_for(path))
    assert len({r.client for r in fault_server.requests}) == 1


def test_no_delayed_ack_stall_on_keep_alive(
    fault_server: FaultServer, session: requests.Session
) -> None:
    # requests sends a POST's head and body in two writes and /stall-body answers
    # in two: with Nagle on, each exchange would stall ~40 ms on delayed ACKs.
    url = fault_server.url_for("/stall-body?seconds=0&bytes=4")
    session.post(url, data=b"x" * 100)
    start = time.monotonic()
    for _ in range(20):
        session.post(url, data=b"x" * 100)
    assert time.monotonic() - start < 0.4


def test_http10_and_connection_close_end_the_connection(fault_server: FaultServer) -> None:
    for request in (
        b"GET /ok HTTP/1.0\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /status/503 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        with raw_request(fault_server, request) as sock:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            assert b"Connection: close" in data


def test_expect_100_continue(fault_server: FaultServer) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    with raw_request(fault_server, request) as sock:
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        head, _ = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NONSENSE\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"POST /ok HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /ok HTTP/1.1\r\nContent-Length: many\r\n\r\n",
    ],
)
def test_malformed_request_gets_400(fault_server: FaultServer, request_bytes: bytes) -> None:
    with raw_request(fault_server, request_bytes) as sock:
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


# -- counters, log, aliases ------------------------------------------------


def test_hits_count_by_path_without_query_any_method(
    fault_server: FaultServer, session: requests.Session
) -> None:
    assert fault_server.hits() == 0
    session.get(fault_server.url_for("/ok?size=1"))
    session.post(fault_server.url_for("/ok"))
    session.get(fault_server.url_for("/status/503"))
    session.get(fault_server.url_for("/nope"))
    assert fault_server.hits("/ok") == 2
    assert fault_server.hits("/ok?whatever=1") == 2
    assert fault_server.hits(fault_server.url_for("/ok?size=2")) == 2
    assert fault_server.hits("/status/503") == 1
    assert fault_server.hits("/nope") == 1
    assert fault_server.hits("/never") == 0
    assert fault_server.hits() == 4


def test_hits_are_exact_under_concurrency(fault_server: FaultServer) -> None:
    def worker() -> None:
        with requests.Session() as s:
            for _ in range(25):
                s.get(fault_server.url_for("/ok"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fault_server.hits("/ok") == 200
    assert len(fault_server.requests) == 200


def test_requests_are_recorded(fault_server: FaultServer, session: requests.Session) -> None:
    before = time.monotonic()
    session.post(fault_server.url_for("/echo?q=1&token=t"), data=b"body", headers={"X-Test": "v"})
    (rec,) = fault_server.requests
    assert isinstance(rec, RecordedRequest)
    assert (rec.method, rec.path, rec.query, rec.body) == ("POST", "/echo", "q=1&token=t", b"body")
    assert rec.params == {"q": "1", "token": "t"}
    assert rec.headers["x-test"] == rec.headers["X-Test"] == "v"
    assert "X-TEST" in rec.headers
    assert "X-Test" in list(rec.headers)
    assert rec.route == "/echo"
    assert before <= rec.at <= time.monotonic()
    assert fault_server.requests_to("/echo?x") == [rec]
    assert fault_server.requests_to("/ok") == []


def test_request_headers_join_repeated_names() -> None:
    headers = RequestHeaders([("Accept", "a"), ("accept", "b"), ("Host", "h")])
    assert headers["ACCEPT"] == "a, b"
    assert len(headers) == 2
    assert dict(headers) == {"Accept": "a, b", "Host": "h"}
    assert headers.raw[1] == ("accept", "b")
    assert 3 not in headers


def test_max_recorded_keeps_the_newest() -> None:
    with FaultServer(max_recorded=3) as server, requests.Session() as s:
        for i in range(5):
            s.get(server.url_for(f"/ok?i={i}"))
        assert [r.query for r in server.requests] == ["i=2", "i=3", "i=4"]
        assert server.hits("/ok") == 5


def test_reset_clears_counters_and_log_but_keeps_aliases(
    fault_server: FaultServer, session: requests.Session
) -> None:
    fault_server.alias("/api", "/status/503")
    session.get(fault_server.url_for("/api"))
    session.get(fault_server.url_for("/ok"))
    fault_server.reset()
    assert fault_server.hits() == 0
    assert fault_server.hits("/api") == 0
    assert fault_server.hits_for_route("/status/503") == 0
    assert fault_server.requests == []
    assert session.get(fault_server.url_for("/api")).status_code == 503


def test_alias_switches_behaviour_and_counts_under_the_alias(
    fault_server: FaultServer, session: requests.Session
) -> None:
    url = fault_server.url_for("/api/search?q=techno")
    assert session.get(url).status_code == 404
    fault_server.alias("/api/search", "/status/429?retry_after=2")
    r = session.get(url)
    assert (r.status_code, r.headers["Retry-After"]) == (429, "2")
    fault_server.alias("/api/search", "/ok")
    assert session.get(url).text == "ok"
    fault_server.alias("/api/search", "/flaky/s?fail=1")
    assert [session.get(url).status_code for _ in range(2)] == [503, 200]
    assert fault_server.aliases == {"/api/search": "/flaky/s?fail=1"}
    fault_server.alias("/api/search", None)
    assert session.get(url).status_code == 404
    assert fault_server.hits("/api/search") == 6
    assert fault_server.hits("/ok") == 0  # counted under the path the client asked for
    assert fault_server.hits_for_route("/ok") == 1
    assert fault_server.hits_for_route("/status/429") == 1
    assert fault_server.hits_for_route("/flaky/s") == 2
    assert fault_server.requests[1].route == "/status/429"
    assert fault_server.requests[1].path == "/api/search"


def test_alias_target_query_wins_and_client_query_fills_in(
    fault_server: FaultServer, session: requests.Session
) -> None:
    fault_server.alias("/a", "/ok?size=3")
    assert session.get(fault_server.url_for("/a?size=10")).content == b"xxx"
    fault_server.alias("/b", "/ok")
    assert session.get(fault_server.url_for("/b?size=4")).content == b"xxxx"
    fault_server.alias("/e", "/echo")
    assert session.get(fault_server.url_for("/e?k=v")).json()["path"] == "/e"


def test_alias_validates_paths(fault_server: FaultServer) -> None:
    with pytest.raises(ValueError, match="path"):
        fault_server.alias("api", "/ok")
    with pytest.raises(ValueError, match="target"):
        fault_server.alias("/api", "ok")
    fault_server.alias("/gone", None)  # removing a missing alias is fine


# -- lifecycle -------------------------------------------------------------


def test_url_and_running() -> None:
    server = FaultServer()
    assert not server.running
    with server:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.url_for("ok?size=1") == server.url + "/ok?size=1"
        assert "running" in repr(server)
    assert not server.running
    server.close()  # idempotent
    server.stop()


def test_stop_refuses_then_start_serves_on_the_same_port(
    fault_server: FaultServer, session: requests.Session
) -> None:
    port = fault_server.port
    assert session.get(fault_server.url_for("/ok")).ok  # leaves a pooled keep-alive connection
    fault_server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(requests.ConnectionError):
        session.get(fault_server.url_for("/ok"))
    fault_server.start()
    assert fault_server.port == port
    assert session.get(fault_server.url_for("/ok")).ok
    assert fault_server.hits("/ok") == 2  # counters survive a restart


def test_stop_closes_open_keep_alive_connections(fault_server: FaultServer) -> None:
    with raw_request(fault_server, get("/ok")) as sock:
        read_head(sock)
        fault_server.stop()
        sock.settimeout(1)
        assert sock.recv(100) == b""


@pytest.mark.parametrize(
    "path",
    [
        "/stall-headers?seconds=30",
        "/stall-body?seconds=30",
        "/drip?bytes=100&interval=10",
        "/ok?delay=30",
    ],
)
def test_stop_is_prompt_with_a_stalled_handler(fault_server: FaultServer, path: str) -> None:
    errors: list[BaseException] = []

    def client() -> None:
        try:
            requests.get(fault_server.url_for(path), timeout=5)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 2
    while fault_server.hits() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    start = time.monotonic()
    fault_server.stop()
    assert time.monotonic() - start < 0.5
    thread.join(1)
    assert not thread.is_alive()
    assert len(errors) == 1  # the client saw the connection end, not a late answer


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="port"):
        FaultServer(port=-1)
    with pytest.raises(ValueError, match="port"):
        FaultServer(port=True)
    with pytest.raises(ValueError, match="max_recorded"):
        FaultServer(max_recorded=-1)
    with pytest.raises(ValueError, match="cert_hosts"):
        FaultServer(cert_hosts=["x"])


def test_plugin_import_stays_light() -> None:
    # Every pytest run imports the plugin: it must not pull in the server or trustme.
    code = (
        "import sys, connmgr.testing.plugin, connmgr.testing;"
        "heavy = {'trustme', 'connmgr.testing.server', 'http.server'} & set(sys.modules);"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_fixed_port_is_honoured() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FaultServer(port=port) as server:
        assert server.port == port
        assert requests.get(f"http://127.0.0.1:{port}/ok").text == "ok"


# -- TLS -------------------------------------------------------------------


def test_tls_verifies_with_the_ca_bundle(
    tls_fault_server: FaultServer, session: requests.Session
) -> None:
    assert tls_fault_server.url.startswith("https://127.0.0.1:")
    r = session.get(tls_fault_server.url_for("/ok"), verify=tls_fault_server.ca_bundle)
    assert r.text == "ok"
    localhost = f"https://localhost:{tls_fault_server.port}/status/503"
    assert session.get(localhost, verify=tls_fault_server.ca_bundle).status_code == 503
    assert tls_fault_server.hits() == 2


def test_tls_fails_without_the_ca(tls_fault_server: FaultServer) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(tls_fault_server.url_for("/ok"))
    # The failed handshake cost the server nothing: it still serves.
    assert requests.get(tls_fault_server.url_for("/ok"), verify=tls_fault_server.ca_bundle).ok


def test_tls_wrong_hostname_fails_verification() -> None:
    with FaultServer(tls=True, cert_hosts=["wrong.example"]) as server:
        with pytest.raises(requests.exceptions.SSLError, match=r"not valid for '127\.0\.0\.1'"):
            requests.get(server.url_for("/ok"), verify=server.ca_bundle)
        context = ssl.create_default_context(cafile=server.ca_bundle)
        context.check_hostname = False  # the chain itself is fine
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            context.wrap_socket(raw) as tls,
        ):
            tls.sendall(get("/ok"))
            assert tls.recv(4096).startswith(b"HTTP/1.1 200")


def test_tls_faults_and_restart(tls_fault_server: FaultServer, session: requests.Session) -> None:
    ca = tls_fault_server.ca_bundle
    r = session.get(tls_fault_server.url_for("/drip?bytes=3&interval=0.01"), verify=ca)
    assert r.content == b"xxx"
    with pytest.raises(requests.ConnectionError):
        session.get(tls_fault_server.url_for("/reset"), verify=ca)
    tls_fault_server.stop()
    tls_fault_server.start()
    assert session.get(tls_fault_server.url_for("/ok"), verify=ca).ok  # same CA after restart


def test_ca_bundle_only_for_tls(fault_server: FaultServer) -> None:
    with pytest.raises(RuntimeError, match="tls=True"):
        _ = fault_server.ca_bundle


def test_tls_files_are_removed_on_close() -> None:
    import os

    with FaultServer(tls=True) as server:
        path = server.ca_bundle
        assert os.path.exists(path)
    assert not os.path.exists(path)


# --------------------------------------------------------------------------- ProbeTarget


def test_probe_target_accepts_refuses_drops_and_returns_on_one_port(probe_target) -> None:
    port = probe_target.port
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert _eventually(lambda: probe_target.accepted == 1)
    probe_target.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    probe_target.blackhole()
    with pytest.raises(TimeoutError):
        socket.create_connection(("127.0.0.1", port), timeout=0.1)
    probe_target.reopen()
    assert probe_target.port == port
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert _eventually(lambda: probe_target.accepted == 2)


def test_the_docs_offline_example_runs(fault_server, probe_target, fake_clock) -> None:
    # docs/testing.md, "The network itself: ProbeTarget", as written there.
    monitor = NetworkMonitor([TcpProbe("127.0.0.1", probe_target.port)], clock=fake_clock)
    mgr = ConnectionManager(fault_server.url, monitor=monitor, clock=fake_clock)
    probe_target.close()
    assert monitor.is_online(force_check=True) is False
    with pytest.raises(connmgr.OfflineError):
        mgr.get("/ok")
    probe_target.reopen()
    assert monitor.is_online(force_check=True) is True
    mgr.close()


def _eventually(predicate, timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True
