"""decide_status: combining a round's results into a verdict."""

from __future__ import annotations

from network_helpers import (
    OFFLINE,
    ONLINE,
    PORTAL,
)

from connmgr.network import (
    HttpProbe,
    NetworkStatus,
    Probe,
    ProbeResult,
    TcpProbe,
    decide_status,
)

# --------------------------------------------------------------------------- the verdict


def _r(status: NetworkStatus, *, portal: bool) -> ProbeResult:
    probe: Probe = HttpProbe("http://x/generate_204") if portal else TcpProbe("127.0.0.1", 1)
    return ProbeResult(probe, status, 0.0)


def test_decide_status_rules():
    http_ok, http_portal = _r(ONLINE, portal=True), _r(PORTAL, portal=True)
    tcp_ok, tcp_down = _r(ONLINE, portal=False), _r(OFFLINE, portal=False)
    http_down = _r(OFFLINE, portal=True)
    # An HTTP 204 decides at once, even with others pending.
    assert decide_status([http_ok], pending=2, portal_pending=1, grace_over=False) is ONLINE
    # A portal decides at once and beats an earlier TCP success.
    assert decide_status([tcp_ok, http_portal], pending=1, portal_pending=0) is PORTAL
    # A TCP success waits for pending HTTP probes until the grace period is over...
    assert decide_status([tcp_ok], pending=1, portal_pending=1, grace_over=False) is None
    assert decide_status([tcp_ok], pending=1, portal_pending=1, grace_over=True) is ONLINE
    # ...but not for pending probes that cannot see a portal.
    assert decide_status([tcp_ok], pending=1, portal_pending=0, grace_over=False) is ONLINE
    # HTTP blocked, TCP fine: online (nothing saw a portal).
    assert decide_status([http_down, tcp_ok]) is ONLINE
    # Offline only when every probe failed.
    assert decide_status([tcp_down], pending=1, portal_pending=0) is None
    assert decide_status([tcp_down, http_down]) is OFFLINE
    assert decide_status([]) is OFFLINE
