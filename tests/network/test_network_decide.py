"""conclude/decide_status: the truth table that turns a round's results into a verdict."""

from __future__ import annotations

import pytest
from network_helpers import OFFLINE, ONLINE, PORTAL, ScriptedProbe

from connmgr.network import (
    DNS_FAILING,
    DnsProbe,
    HttpProbe,
    NetworkStatus,
    Probe,
    ProbeFailure,
    ProbeResult,
    TcpProbe,
    conclude,
    decide_status,
)

LIMITED = NetworkStatus.LIMITED

HTTP = HttpProbe("http://connectivity.test/generate_204")
HTTP_IP = HttpProbe("http://192.0.2.1/generate_204")
TCP_IP = TcpProbe("192.0.2.1", 443)
TCP_NAME = TcpProbe("tcp.test", 443)
DNS = DnsProbe("dns.test")

DNS_FAIL = ProbeFailure.NAME_LOOKUP


def ok(probe: Probe) -> ProbeResult:
    return ProbeResult(probe, ONLINE, 0.0, "fine")


def portal(probe: Probe) -> ProbeResult:
    return ProbeResult(probe, PORTAL, 0.0, "200 with a page instead of 204")


def down(probe: Probe, failure: ProbeFailure = ProbeFailure.REFUSED) -> ProbeResult:
    detail = "name lookup failed (x)" if failure is DNS_FAIL else "connection refused"
    return ProbeResult(probe, OFFLINE, 0.0, detail, failure)


# Every row: the results so far, the probes still running, the verdict (None: wait).
TRUTH_TABLE = [
    # An HTTP probe's expected answer validates, whatever else is pending or failed.
    ([ok(HTTP)], [TCP_IP, HTTP_IP], ONLINE),
    ([down(TCP_IP), ok(HTTP)], [], ONLINE),
    # A portal answer decides, and beats a TCP success.
    ([ok(TCP_IP), portal(HTTP)], [HTTP_IP], PORTAL),
    # A TCP success never validates while an HTTP probe runs...
    ([ok(TCP_IP)], [HTTP], None),
    # ...and with every HTTP probe failed it is LIMITED, not ONLINE.
    ([ok(TCP_IP), down(HTTP)], [], LIMITED),
    ([ok(TCP_IP), down(HTTP, ProbeFailure.TIMEOUT)], [], LIMITED),
    ([ok(DNS), down(HTTP, ProbeFailure.STATUS)], [], LIMITED),
    # Names fail while an IP address connects: LIMITED (DNS).
    ([ok(TCP_IP), down(HTTP, DNS_FAIL)], [], LIMITED),
    # Only TCP/DNS probes configured: a success is ONLINE...
    ([ok(TCP_IP)], [], ONLINE),
    ([ok(TCP_IP)], [TcpProbe("192.0.2.2", 443)], ONLINE),
    ([ok(DNS), down(TCP_IP)], [], ONLINE),
    # ...unless names fail while an IP connects (the IP success waits for the lookups).
    ([ok(TCP_IP)], [DNS], None),
    ([ok(TCP_IP), down(DNS, DNS_FAIL)], [], LIMITED),
    ([ok(TCP_NAME), down(DNS, DNS_FAIL)], [], ONLINE),  # a name resolved after all
    # Nothing worked: OFFLINE, but only once nothing is running.
    ([down(TCP_IP)], [HTTP], None),
    ([down(TCP_IP), down(HTTP)], [], OFFLINE),
    ([down(TCP_IP, DNS_FAIL), down(HTTP, DNS_FAIL)], [], OFFLINE),
    ([], [], OFFLINE),
]


@pytest.mark.parametrize(("results", "pending", "expected"), TRUTH_TABLE)
def test_the_truth_table(results, pending, expected):
    assert decide_status(results, pending=pending) is expected
    conclusion = conclude(results, pending=pending)
    assert (conclusion.status if conclusion else None) is expected


def test_reasons_say_what_is_true():
    assert (
        conclude([ok(TCP_IP), down(HTTP, DNS_FAIL)]).reason
        == DNS_FAILING
        == ("name lookup (DNS) failing")
    )
    limited = conclude([ok(TCP_IP), down(HTTP)])
    assert limited.reason == (
        "tcp 192.0.2.1:443 works, but every HTTP check failed (connection refused)"
    )
    assert conclude([ok(HTTP)]).reason == "http connectivity.test/generate_204 answered as expected"
    assert conclude([portal(HTTP)]).reason.startswith("a sign-in page answered http ")
    assert conclude([ok(TCP_IP)]).reason == "tcp 192.0.2.1:443 succeeded (no HTTP check configured)"
    assert conclude([down(TCP_IP)]).reason == "every probe failed (connection refused)"


def test_a_custom_probe_that_detects_portals_validates():
    custom = ScriptedProbe(ONLINE, portal=True)
    assert decide_status([ok(TCP_IP)], pending=[custom]) is None
    assert decide_status([ok(TCP_IP), ok(custom)]) is ONLINE
    # A custom probe that cannot see portals is weak, like TCP.
    weak = ScriptedProbe(ONLINE)
    assert decide_status([ok(weak), down(HTTP)]) is LIMITED


def test_status_words():
    assert [s.online for s in NetworkStatus] == [True, False, False, False, False]
    assert NetworkStatus.LIMITED.connected and NetworkStatus.CAPTIVE_PORTAL.connected
    assert not NetworkStatus.OFFLINE.connected and not NetworkStatus.UNKNOWN.connected
    assert NetworkStatus.LIMITED.label == "No internet"
    assert NetworkStatus.CAPTIVE_PORTAL.label == "Sign in to the network"
    assert NetworkStatus.LIMITED.description == (
        "Connected to a network, but the internet can't be reached."
    )
    assert "sign in" in NetworkStatus.CAPTIVE_PORTAL.description
    assert all(s.label and s.description for s in NetworkStatus)
