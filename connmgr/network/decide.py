"""decide_status: combine the probe results of one round into a verdict (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from connmgr.network.probes import ProbeResult
from connmgr.network.status import NetworkStatus

__all__ = ["decide_status"]


def decide_status(
    results: Iterable[ProbeResult],
    *,
    pending: int = 0,
    portal_pending: int = 0,
    grace_over: bool = True,
) -> NetworkStatus | None:
    """Combine the results so far into a verdict, or ``None`` to keep waiting (pure).

    ``pending`` probes are still running, ``portal_pending`` of them can detect a
    portal; ``grace_over`` says the grace period for those has passed. Rules, first
    match wins:

    1. a success from a portal-detecting probe → ``ONLINE``;
    2. a portal seen by any probe → ``CAPTIVE_PORTAL``;
    3. any other success → ``ONLINE`` once no portal-detecting probe is pending or
       the grace period is over;
    4. nothing pending → ``OFFLINE``;
    5. otherwise ``None``.

    Example::

        decide_status([ProbeResult(TcpProbe("127.0.0.1", 1), NetworkStatus.OFFLINE, 0.0)])
        # NetworkStatus.OFFLINE
    """
    weak_online = False
    for result in results:
        if result.status is NetworkStatus.ONLINE:
            if result.probe.detects_portal:
                return NetworkStatus.ONLINE
            weak_online = True
        elif result.status is NetworkStatus.CAPTIVE_PORTAL:
            return NetworkStatus.CAPTIVE_PORTAL
    if weak_online and (portal_pending == 0 or grace_over):
        return NetworkStatus.ONLINE
    if pending == 0:
        return NetworkStatus.OFFLINE
    return None
