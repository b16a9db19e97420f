"""NetworkStatus: the monitor's word for the way out to the internet, with its labels."""

from __future__ import annotations

import enum

__all__ = ["NetworkStatus"]


class NetworkStatus(enum.Enum):
    """What the monitor knows about the way out to the internet.

    ``UNKNOWN`` is the status before the first check. Behind a captive portal
    (``CAPTIVE_PORTAL``) :meth:`NetworkMonitor.is_online` returns ``False``: the
    app cannot reach its server until the user signs in to the portal page.
    """

    ONLINE = "online"
    OFFLINE = "offline"
    CAPTIVE_PORTAL = "captive_portal"
    UNKNOWN = "unknown"

    @property
    def online(self) -> bool:
        """Whether requests can reach the internet (only ``ONLINE``)."""
        return self is NetworkStatus.ONLINE

    @property
    def label(self) -> str:
        """Plain words for a status bar."""
        return _LABELS[self]


_LABELS = {
    NetworkStatus.ONLINE: "Online",
    NetworkStatus.OFFLINE: "Offline",
    NetworkStatus.CAPTIVE_PORTAL: "Sign-in required (network login page)",
    NetworkStatus.UNKNOWN: "Checking the network",
}
