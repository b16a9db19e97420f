"""Combine the probe results of one round into a verdict and its reason (pure).

The truth table the monitor follows (``docs/network.md`` compares it with
Android, Windows and Chromium). *Validating* probes are those that can see a
captive portal (``detects_portal``: :class:`~connmgr.network.HttpProbe`):

1. a validating probe got its expected answer → ``ONLINE``;
2. any probe saw a portal → ``CAPTIVE_PORTAL``;
3. a validating probe is still running → wait;
4. with a validating probe configured: a TCP/DNS success → ``LIMITED``
   ("name lookup (DNS) failing" when a lookup failed and no name resolved,
   else "every HTTP check failed");
5. with only TCP/DNS probes: a success → ``ONLINE``, unless a lookup failed
   and no name resolved (``LIMITED``, DNS); an IP-address success waits for
   the name-resolving probes still running, so that verdict does not depend
   on which probe answers first;
6. nothing succeeded and nothing is running → ``OFFLINE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from connmgr.frozen import explain_frozen
from connmgr.network.probes import DnsProbe, HttpProbe, Probe, ProbeResult, TcpProbe
from connmgr.network.sockets import is_ip_literal
from connmgr.network.status import NetworkStatus, ProbeFailure

__all__ = ["DNS_FAILING", "Conclusion", "conclude", "decide_status"]

#: The reason given when names do not resolve while an IP address connects.
DNS_FAILING = "name lookup (DNS) failing"

# Failures that show the name was resolved (an answer came from an address).
_NAME_RESOLVED = frozenset(
    {ProbeFailure.REFUSED, ProbeFailure.RESET, ProbeFailure.STATUS, ProbeFailure.TLS}
)


@explain_frozen
@dataclass(frozen=True, slots=True)
class Conclusion:
    """A round's verdict and the plain words that explain it.

    Example::

        Conclusion(NetworkStatus.LIMITED, "name lookup (DNS) failing")
    """

    status: NetworkStatus
    reason: str


def resolves_names(probe: Probe) -> bool:
    """Whether ``probe`` looks a host name up (built-in probes only; others: ``False``)."""
    if isinstance(probe, DnsProbe):
        return True
    if isinstance(probe, TcpProbe):
        return not is_ip_literal(probe.host)
    if isinstance(probe, HttpProbe):
        return not is_ip_literal(urlsplit(probe.url).hostname or "")
    return False


def conclude(results: Iterable[ProbeResult], *, pending: Sequence[Probe] = ()) -> Conclusion | None:
    """The verdict for ``results`` with ``pending`` probes still running, or ``None`` to wait.

    Example::

        conclude([ProbeResult(TcpProbe("127.0.0.1", 1), NetworkStatus.OFFLINE, 0.0)])
        # Conclusion(status=NetworkStatus.OFFLINE, reason='every probe failed ...')
    """
    done = list(results)
    for result in done:
        if result.status is NetworkStatus.ONLINE and result.probe.detects_portal:
            return Conclusion(NetworkStatus.ONLINE, f"{result.probe.name} answered as expected")
    for result in done:
        if result.status is NetworkStatus.CAPTIVE_PORTAL:
            return Conclusion(
                NetworkStatus.CAPTIVE_PORTAL,
                f"a sign-in page answered {result.probe.name} ({result.detail or 'a portal'})",
            )
    if any(probe.detects_portal for probe in pending):
        return None
    validating = any(r.probe.detects_portal for r in done)
    successes = [r for r in done if r.status is NetworkStatus.ONLINE]
    dns_failing = _dns_failing(done)
    if successes:
        if dns_failing:
            return Conclusion(NetworkStatus.LIMITED, DNS_FAILING)
        if validating:
            failed = next(r for r in done if r.probe.detects_portal)
            return Conclusion(
                NetworkStatus.LIMITED,
                f"{successes[0].probe.name} works, but every HTTP check failed "
                f"({failed.detail or 'no answer'})",
            )
        proves_names = any(resolves_names(r.probe) for r in successes)
        if not proves_names and any(resolves_names(p) for p in pending):
            return None
        return Conclusion(
            NetworkStatus.ONLINE,
            f"{successes[0].probe.name} succeeded (no HTTP check configured)",
        )
    if pending:
        return None
    first = next((r for r in done if r.detail), None)
    why = f" ({first.detail})" if first is not None else ""
    return Conclusion(NetworkStatus.OFFLINE, f"every probe failed{why}")


def _dns_failing(results: Sequence[ProbeResult]) -> bool:
    # A lookup failed and no probe showed that a name resolves.
    lookup_failed = any(r.failure is ProbeFailure.NAME_LOOKUP for r in results)
    if not lookup_failed:
        return False
    return not any(
        resolves_names(r.probe)
        and (
            r.status in (NetworkStatus.ONLINE, NetworkStatus.CAPTIVE_PORTAL)
            or r.failure in _NAME_RESOLVED
        )
        for r in results
    )


def decide_status(
    results: Iterable[ProbeResult], *, pending: Sequence[Probe] = ()
) -> NetworkStatus | None:
    """:func:`conclude`'s status alone (``None``: keep waiting); what ``connmgr check`` prints.

    Example::

        decide_status([ProbeResult(TcpProbe("127.0.0.1", 1), NetworkStatus.OFFLINE, 0.0)])
        # NetworkStatus.OFFLINE
    """
    conclusion = conclude(results, pending=pending)
    return None if conclusion is None else conclusion.status
