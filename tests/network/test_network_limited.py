"""Validated connectivity: LIMITED and CAPTIVE_PORTAL through a monitor, on loopback only.

The "internet" is a ProbeTarget (a TCP port that connects) and a FaultServer
(HTTP). Name lookups go through injected resolvers, so no DNS query leaves
the machine.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from network_helpers import (
    LIMITED,
    OFFLINE,
    ONLINE,
    PORTAL,
    failing_resolver,
    loopback_resolver,
    monitor_for,
)

from connmgr.clock import SystemClock
from connmgr.network import (
    DNS_FAILING,
    EpochCause,
    HttpProbe,
    ProbeFailure,
    TcpProbe,
)
from connmgr.testing import FakeClock


def test_tcp_connects_but_the_http_name_does_not_resolve_is_limited(listener, recorder):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe("http://connectivity.test/generate_204", resolver=failing_resolver),
    )
    assert monitor.is_online() is False
    assert monitor.status is LIMITED
    assert monitor.reason == DNS_FAILING == "name lookup (DNS) failing"
    tcp, http = monitor.last_results
    assert (tcp.status, http.failure) == (ONLINE, ProbeFailure.NAME_LOOKUP)
    assert listener.accepted == 1
    [change] = recorder.of("status")
    assert change == {"online": False, "status": LIMITED, "reason": DNS_FAILING, "epoch": 1}


def test_tcp_connects_but_the_http_port_is_refused_is_limited(listener, closed_port):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(f"http://127.0.0.1:{closed_port}/generate_204"),
    )
    assert monitor.check() is LIMITED
    assert monitor.reason == (
        f"tcp 127.0.0.1:{listener.port} works, but every HTTP check failed (connection refused)"
    )
    assert monitor.is_online() is False  # cached: LIMITED is not online


def test_only_tcp_probes_configured_a_connect_is_online(listener):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port))
    assert monitor.check() is ONLINE
    assert monitor.reason.endswith("succeeded (no HTTP check configured)")


def test_only_tcp_and_dns_probes_with_dns_failing_is_limited(listener):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        TcpProbe("api.test", listener.port, resolver=failing_resolver),
    )
    assert monitor.check() is LIMITED
    assert monitor.reason == DNS_FAILING


def test_validated_http_with_an_injected_name_is_online(server, listener):
    url = server.url_for("/generate_204").replace("127.0.0.1", "connectivity.test")
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(url, resolver=loopback_resolver("127.0.0.1")),
    )
    assert monitor.check() is ONLINE
    assert (
        monitor.reason == f"http connectivity.test:{server.port}/generate_204 answered as expected"
    )


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/portal", "200 with a page instead of 204"),
        ("/redirect?to=/portal", "redirected (302)"),
        ("/status/511", "511 Network Authentication Required"),
    ],
)
def test_a_loopback_portal_page_is_captive_portal(server, listener, path, detail):
    monitor = monitor_for(TcpProbe("127.0.0.1", listener.port), HttpProbe(server.url_for(path)))
    assert monitor.check() is PORTAL
    assert detail in monitor.reason
    assert monitor.reason.startswith("a sign-in page answered http 127.0.0.1:")


@pytest.fixture
def tiny_portal() -> Iterator[str]:
    """A plain http.server portal of our own: 302 to a login page where 204 is expected."""

    class Handler(http.server.BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://login.hotel.test/start")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/generate_204"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirecting_portal_of_our_own(tiny_portal):
    monitor = monitor_for(HttpProbe(tiny_portal))
    assert monitor.check() is PORTAL
    assert "redirected (302) to login.hotel.test" in monitor.reason


def test_limited_becomes_online_when_the_http_check_passes_again(server, listener, recorder):
    clock = FakeClock()
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(server.url_for("/generate_204")),
        clock=clock,
        interval=10.0,
        offline_interval=1.0,
    )
    server.alias("/generate_204", "/status/503")  # the HTTP check is blocked
    assert monitor.check() is LIMITED
    server.alias("/generate_204", None)
    clock.advance(1.0)
    assert monitor.is_online() is True
    statuses = [(c["status"], c["epoch"]) for c in recorder.of("status")]
    assert statuses == [(LIMITED, 1), (ONLINE, 2)]
    causes = [e["cause"] for e in recorder.of("epoch")]
    assert causes == [EpochCause.STATUS, EpochCause.STATUS]


def test_a_response_while_limited_proves_only_its_origin(listener, closed_port, recorder):
    monitor = monitor_for(
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(f"http://127.0.0.1:{closed_port}/generate_204"),
    )
    assert monitor.check() is LIMITED
    epoch = monitor.epoch
    monitor.report_success(url="https://intranet.example/api")
    assert (monitor.status, monitor.epoch) == (LIMITED, epoch)
    assert monitor.is_online() is False
    assert [c["status"] for c in recorder.of("status")] == [LIMITED]


def test_an_offline_monitor_hears_a_response_as_online(closed_port):
    monitor = monitor_for(TcpProbe("127.0.0.1", closed_port))
    assert monitor.check() is OFFLINE
    assert monitor.reason == "every probe failed (connection refused)"
    monitor.report_success()
    assert (monitor.status, monitor.reason) == (ONLINE, "a response arrived")


def test_limited_does_not_wait_for_a_blackholed_tcp_probe_once_http_failed(
    listener, blackholed_port, closed_port
):
    # HTTP refused at once, one TCP connects, another hangs: LIMITED without the timeout.
    monitor = monitor_for(
        TcpProbe("127.0.0.1", blackholed_port),
        TcpProbe("127.0.0.1", listener.port),
        HttpProbe(f"http://127.0.0.1:{closed_port}/generate_204"),
        timeout=2.0,
        clock=SystemClock(),
    )
    started = SystemClock().now()
    assert monitor.check() is LIMITED
    assert SystemClock().now() - started < 1.0
