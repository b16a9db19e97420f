"""TcpProbe, DnsProbe and HttpProbe over real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from network_helpers import (
    OFFLINE,
    ONLINE,
    PORTAL,
    ScriptedProbe,
    failing_resolver,
    loopback_resolver,
    wait_for,
)

from connmgr.network import (
    DEFAULT_PROBES,
    DnsProbe,
    HttpProbe,
    Probe,
    ProbeFailure,
    ProbeResult,
    TcpProbe,
)
from connmgr.testing import FaultServer

# --------------------------------------------------------------------------- probes


def test_tcp_probe_listening_port_is_online(listener):
    result = TcpProbe("127.0.0.1", listener.port).check(1.0)
    assert result.status is ONLINE
    assert result.detail == "connected"
    assert 0 <= result.elapsed < 0.5
    assert wait_for(lambda: listener.accepted == 1)


def test_tcp_probe_closed_port_is_offline_at_once(closed_port):
    result = TcpProbe("127.0.0.1", closed_port).check(1.0)
    assert result.status is OFFLINE
    assert result.detail == "connection refused"
    assert result.elapsed < 0.5


def test_blackholed_port_really_hangs_until_the_timeout(blackholed_port):
    # The fixture's premise, checked with a bare socket.
    with socket.socket() as s:
        s.settimeout(0.1)
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            s.connect(("127.0.0.1", blackholed_port))
        assert time.perf_counter() - started >= 0.09


def test_tcp_probe_blackholed_port_times_out(blackholed_port):
    result = TcpProbe("127.0.0.1", blackholed_port).check(0.1)
    assert result.status is OFFLINE
    assert result.detail == "no answer within 0.1 s"
    assert 0.09 <= result.elapsed < 0.5


def test_tcp_probe_resolves_a_host_name(listener):
    assert TcpProbe("localhost", listener.port).check(1.0).status is ONLINE


def test_dns_probe_resolves_localhost():
    result = DnsProbe("localhost").check(1.0)
    assert result.status is ONLINE
    assert result.detail.startswith("resolved to ")


def test_dns_probe_failure_and_timeout():
    result = DnsProbe("no-such-host.invalid", resolver=failing_resolver).check(1.0)
    assert result.status is OFFLINE
    assert result.detail == "name lookup failed (Name or service not known)"
    assert result.failure is ProbeFailure.NAME_LOOKUP

    release = threading.Event()

    def hang(host: str, port: int):
        release.wait(2.0)
        raise socket.gaierror(socket.EAI_AGAIN, "late")

    started = time.perf_counter()
    result = DnsProbe("slow.invalid", resolver=hang).check(0.05)
    release.set()
    assert (result.status, result.failure) == (OFFLINE, ProbeFailure.NAME_LOOKUP)
    assert result.detail == "name lookup took longer than 0.05 s"
    assert time.perf_counter() - started < 0.5


def test_a_resolver_with_no_answer_or_a_bug_is_a_failure_not_a_hang():
    empty = DnsProbe("empty.test", resolver=lambda host, port: []).check(1.0)
    assert (empty.status, empty.failure) == (OFFLINE, ProbeFailure.NAME_LOOKUP)

    def buggy(host: str, port: int):
        raise ValueError("resolver bug")

    with pytest.raises(ValueError, match="resolver bug"):
        TcpProbe("buggy.test", 80, resolver=buggy).check(1.0)


def test_tcp_probe_uses_its_resolver(listener, closed_port):
    probe = TcpProbe("internet.test", listener.port, resolver=loopback_resolver("127.0.0.1"))
    assert probe.check(1.0).status is ONLINE
    refused = TcpProbe("internet.test", closed_port, resolver=loopback_resolver("127.0.0.1"))
    assert refused.check(1.0).failure is ProbeFailure.REFUSED
    broken = TcpProbe("internet.test", listener.port, resolver=failing_resolver).check(1.0)
    assert (broken.status, broken.failure) == (OFFLINE, ProbeFailure.NAME_LOOKUP)
    assert probe == TcpProbe("internet.test", listener.port)  # the resolver is no identity


@pytest.mark.parametrize(
    ("status", "body", "location", "expected", "detail"),
    [
        (204, b"", None, ONLINE, "204 as expected"),
        (200, b"", None, ONLINE, "200 with an empty body (read as 204)"),
        (200, b"<", None, PORTAL, "200 with a page instead of 204"),
        (302, b"", "http://login.hotel.example/?mac=aa:bb", PORTAL, "redirected (302) to "),
        (307, b"", None, PORTAL, "redirected (307)"),
        (511, b"<html>", None, PORTAL, "511 Network Authentication Required"),
        (403, b"blocked", None, OFFLINE, "unexpected status 403 (blocked or moved?)"),
        (503, b"", None, OFFLINE, "unexpected status 503 (blocked or moved?)"),
    ],
)
def test_http_probe_reads_answers(status, body, location, expected, detail):
    verdict, text = HttpProbe("http://127.0.0.1/generate_204").interpret(status, body, location)
    assert verdict is expected
    assert text.startswith(detail)


def test_http_probe_redirect_detail_names_only_the_host():
    _, text = HttpProbe("http://x/generate_204").interpret(
        302, b"", "http://login.hotel.example/portal?token=secret"
    )
    assert text == "redirected (302) to login.hotel.example"


def test_http_probe_expected_status_and_body():
    health = HttpProbe("https://api.example.com/health", expect_status=200)
    assert health.interpret(200, b"{}")[0] is ONLINE
    assert health.interpret(302, b"")[0] is PORTAL
    apple = HttpProbe("http://captive.apple.com/", expect_status=200, expect_body="Success")
    assert apple.interpret(200, b"<HTML>Success</HTML>")[0] is ONLINE
    assert apple.interpret(200, b"<html>Please log in</html>") == (
        PORTAL,
        "200 without the expected content (a login page?)",
    )


def test_http_probe_closed_port_is_offline(closed_port):
    result = HttpProbe(f"http://127.0.0.1:{closed_port}/generate_204").check(1.0)
    assert result.status is OFFLINE
    assert result.detail == "connection refused"


def test_probe_names_carry_no_credentials():
    probe = HttpProbe("https://user:pw@api.example.com:8443/health?token=abc")
    assert probe.name == "https api.example.com:8443/health?…"
    assert "pw" not in probe.name and "abc" not in probe.name
    assert TcpProbe("::1", 80).name == "tcp [::1]:80"
    assert DnsProbe("example.com").name == "dns example.com"
    assert str(ProbeResult(TcpProbe("127.0.0.1", 1), OFFLINE, 0.0012, "connection refused")) == (
        "tcp 127.0.0.1:1: offline in 1.2 ms (connection refused)"
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TcpProbe("", 80), "TcpProbe.host"),
        (lambda: TcpProbe("127.0.0.1", 0), "TcpProbe.port"),
        (lambda: TcpProbe("127.0.0.1", True), "TcpProbe.port"),
        (lambda: TcpProbe("127.0.0.1", 70000), "TcpProbe.port"),
        (lambda: HttpProbe("ftp://example.com/"), "HttpProbe.url"),
        (lambda: HttpProbe("http:///nohost"), "HttpProbe.url"),
        (lambda: HttpProbe("http://x/", expect_status=True), "HttpProbe.expect_status"),
        (lambda: HttpProbe("http://x/", expect_status=99), "HttpProbe.expect_status"),
        (lambda: DnsProbe(""), "DnsProbe.hostname"),
    ],
)
def test_probe_validation_names_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_probes_satisfy_the_protocol():
    for probe in (*DEFAULT_PROBES, DnsProbe("example.com"), ScriptedProbe()):
        assert isinstance(probe, Probe)


# --------------------------------------------------------------------------- HTTP on FaultServer


@pytest.mark.parametrize(
    ("path", "expected", "detail"),
    [
        ("/generate_204", ONLINE, "204 as expected"),
        ("/portal", PORTAL, "200 with a page instead of 204"),
        ("/redirect?to=/portal", PORTAL, "redirected (302)"),
        ("/status/511", PORTAL, "511 Network Authentication Required"),
        ("/status/500", OFFLINE, "unexpected status 500 (blocked or moved?)"),
        ("/reset", OFFLINE, "connection reset"),
        ("/close", OFFLINE, "closed without an answer"),
        ("/stall-headers?seconds=5", OFFLINE, "no answer within 0.1 s"),
        ("/drip?bytes=100&interval=1", PORTAL, "200 with a page instead of 204"),
    ],
)
def test_http_probe_against_fault_server(server, path, expected, detail):
    result = HttpProbe(server.url_for(path)).check(0.1)
    assert (result.status, result.detail) == (expected, detail)
    assert result.elapsed < 0.5  # a dripping page is judged by its headers, not downloaded


def test_http_probe_sends_a_plain_get_and_follows_no_redirect(server):
    HttpProbe(server.url_for("/redirect?to=/portal")).check(1.0)
    assert server.hits("/redirect") == 1
    assert server.hits("/portal") == 0
    request = server.requests[0]
    assert request.method == "GET"
    assert request.headers["User-Agent"].startswith("connmgr/")
    assert "Cookie" not in request.headers and "Authorization" not in request.headers


def test_http_probe_for_your_own_server(server):
    assert HttpProbe(server.url_for("/ok"), expect_status=200).check(1.0).status is ONLINE
    probe = HttpProbe(server.url_for("/ok"), expect_status=200, expect_body="ok")
    assert probe.check(1.0).status is ONLINE
    probe = HttpProbe(server.url_for("/portal"), expect_status=200, expect_body="ok")
    assert probe.check(1.0).status is PORTAL


def test_http_probe_resolves_with_its_resolver_and_sends_the_name(server):
    url = server.url_for("/generate_204").replace("127.0.0.1", "connectivity.test")
    probe = HttpProbe(url, resolver=loopback_resolver("127.0.0.1"))
    result = probe.check(1.0)
    assert (result.status, result.failure) == (ONLINE, None)
    assert server.requests[-1].headers["Host"] == f"connectivity.test:{server.port}"


def test_http_probe_tries_the_next_address_when_one_is_refused(server, closed_port):
    # Two addresses for one name: the first refuses (a dead A record), the second answers.
    def two(host: str, port: int):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", closed_port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port)),
        ]

    url = server.url_for("/generate_204").replace("127.0.0.1", "two.test")
    assert HttpProbe(url, resolver=two).check(1.0).status is ONLINE


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http_probe_name_lookup_failure_is_reported_as_such(scheme):
    result = HttpProbe(f"{scheme}://nowhere.test/generate_204", resolver=failing_resolver).check(
        1.0
    )
    assert (result.status, result.failure) == (OFFLINE, ProbeFailure.NAME_LOOKUP)
    assert result.detail == "name lookup failed (Name or service not known)"


def test_http_probe_failure_kinds(server, closed_port):
    refused = HttpProbe(f"http://127.0.0.1:{closed_port}/generate_204").check(1.0)
    assert (refused.failure, refused.detail) == (ProbeFailure.REFUSED, "connection refused")
    bad = HttpProbe(server.url_for("/status/500")).check(1.0)
    assert (bad.status, bad.failure) == (OFFLINE, ProbeFailure.STATUS)
    portal = HttpProbe(server.url_for("/portal")).check(1.0)
    assert (portal.status, portal.failure) == (PORTAL, None)


def test_an_https_probe_whose_certificate_is_not_trusted_fails_as_tls():
    # A certificate from a CA the system does not trust: what a portal intercepting
    # https presents. The probe connects, sends SNI, and refuses the answer.
    with FaultServer(tls=True) as tls_server:
        url = tls_server.url_for("/generate_204").replace("127.0.0.1", "localhost")
        result = HttpProbe(url, resolver=loopback_resolver("127.0.0.1")).check(2.0)
    assert (result.status, result.failure) == (OFFLINE, ProbeFailure.TLS)
    assert result.detail == "TLS failed (a portal intercepting https?)"


def test_through_a_proxy_from_the_environment_the_proxy_resolves_the_name(server, monkeypatch):
    # The FaultServer stands in for the proxy: it receives the absolute URL and
    # answers; the probe's own resolver is never asked (the proxy resolves names).
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("NO_PROXY", "")
    result = HttpProbe("http://connectivity.test/generate_204", resolver=failing_resolver).check(
        1.0
    )
    assert result.status is ONLINE, result
    assert server.requests[-1].headers["Host"] == "connectivity.test"
