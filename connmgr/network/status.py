"""The network's vocabulary: NetworkStatus (with its labels) and why a probe failed."""

from __future__ import annotations

import enum

__all__ = ["NetworkStatus", "ProbeFailure"]


class NetworkStatus(enum.Enum):
    """What the monitor knows about the way out to the internet.

    * ``ONLINE``: validated. An HTTP probe got its expected answer, a response
      arrived, or (only when no HTTP probe is configured) a TCP/DNS probe succeeded.
    * ``LIMITED``: connected, but the internet is not reachable. TCP or DNS
      works while every HTTP check fails without a portal answer, or names do
      not resolve while an IP address connects. Requests are still sent: the
      app's own server may be reachable (an intranet).
    * ``CAPTIVE_PORTAL``: a sign-in page or redirect answered in the internet's place.
    * ``OFFLINE``: every probe failed, or the operating system reports that no
      network link is up.
    * ``UNKNOWN``: before the first check.

    :meth:`NetworkMonitor.is_online` is ``True`` only for ``ONLINE``.
    """

    ONLINE = "online"
    LIMITED = "limited"
    CAPTIVE_PORTAL = "captive_portal"
    OFFLINE = "offline"
    UNKNOWN = "unknown"

    @property
    def online(self) -> bool:
        """Whether the internet is reachable (only ``ONLINE``)."""
        return self is NetworkStatus.ONLINE

    @property
    def connected(self) -> bool:
        """Whether a network answers at all: ``ONLINE``, ``LIMITED`` or ``CAPTIVE_PORTAL``.

        Not ``OFFLINE`` and not ``UNKNOWN``. A manager keeps sending while
        ``LIMITED`` (an intranet server may answer); behind a portal only to
        origins that have answered since.
        """
        return self in _CONNECTED

    @property
    def label(self) -> str:
        """Plain words for a status bar (``"No internet"`` for ``LIMITED``)."""
        return _LABELS[self]

    @property
    def description(self) -> str:
        """One plain sentence for a tooltip, a log line or ``connmgr check``."""
        return _DESCRIPTIONS[self]


_CONNECTED = frozenset({NetworkStatus.ONLINE, NetworkStatus.LIMITED, NetworkStatus.CAPTIVE_PORTAL})

_LABELS = {
    NetworkStatus.ONLINE: "Online",
    NetworkStatus.LIMITED: "No internet",
    NetworkStatus.CAPTIVE_PORTAL: "Sign in to the network",
    NetworkStatus.OFFLINE: "Offline",
    NetworkStatus.UNKNOWN: "Checking the network",
}

_DESCRIPTIONS = {
    NetworkStatus.ONLINE: "The internet is reachable.",
    NetworkStatus.LIMITED: "Connected to a network, but the internet can't be reached.",
    NetworkStatus.CAPTIVE_PORTAL: (
        "The network shows a sign-in page: sign in to the network in a web browser."
    ),
    NetworkStatus.OFFLINE: "There is no network connection.",
    NetworkStatus.UNKNOWN: "The network has not been checked yet.",
}


class ProbeFailure(enum.Enum):
    """Why a probe failed, for the monitor's verdict (``ProbeResult.failure``).

    Only ``NAME_LOOKUP`` changes a verdict (``LIMITED`` with the reason "name
    lookup (DNS) failing" when an IP address still connects); the others say
    that a name resolved (``REFUSED``, ``RESET``, ``STATUS``, ``TLS``) or
    nothing at all (``TIMEOUT``, ``OTHER``).
    """

    NAME_LOOKUP = "name_lookup"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    RESET = "reset"
    TIMEOUT = "timeout"
    TLS = "tls"
    STATUS = "status"
    OTHER = "other"
