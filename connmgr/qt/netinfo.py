"""Feed the operating system's network-change hints (``QNetworkInformation``) to a monitor.

``QNetworkInformation`` learns about network changes from the operating system
at once (a cable pulled, Wi-Fi joined), which a monitor probing every 30
seconds would only notice later. It is no proof of anything, though: on Linux
the ``glib`` backend says ``Online`` whenever a default route exists, internet
or not. So :class:`NetworkInformationHint` takes a reachability change only as
a reason to probe *now* (:meth:`NetworkMonitor.hint_changed`, which returns at
once); the monitor's probes give the verdict, and its ``network_changed``
carries it to the widgets.

Example::

    hint = NetworkInformationHint(mgr.monitor, parent=window)
    hint.available          # False when Qt has no backend here: nothing else changes
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

__all__ = ["NetworkInformationHint"]

logger = logging.getLogger(__name__)


class NetworkInformationHint(QObject):
    """Turn ``QNetworkInformation`` reachability and captive-portal changes into re-probes.

    ``monitor`` needs ``hint_changed(source)`` (or ``request_recheck()``), which
    must not block: it is called on the GUI thread. Needs a ``QCoreApplication``.
    ``hinted`` is emitted with a short description after each hint passed on.

    Example::

        hint = NetworkInformationHint(monitor)
        if not hint.available:
            log.info("no OS network hints: relying on probes alone")
    """

    hinted = Signal(str)

    def __init__(self, monitor: Any, *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._monitor = monitor
        self._info: Any = None
        self._backend: str | None = None
        self._connected = False
        self.hints = 0
        try:
            from PySide6.QtNetwork import QNetworkInformation
        except ImportError:  # pragma: no cover - QtNetwork ships with PySide6-Essentials
            logger.info("QtNetwork is missing: no OS network hints")
            return
        # The stubs say instance() is never None; it is until a backend is loaded.
        info: Any = QNetworkInformation.instance()
        if info is None:
            if not QNetworkInformation.loadDefaultBackend():
                logger.info("QNetworkInformation has no backend here: no OS network hints")
                return
            info = QNetworkInformation.instance()
        if info is None:  # pragma: no cover - load() said yes
            return
        self._info = info
        self._backend = info.backendName()
        info.reachabilityChanged.connect(self._on_reachability)
        info.isBehindCaptivePortalChanged.connect(self._on_captive_portal)
        self._connected = True
        logger.debug("QNetworkInformation backend %s feeds %r", self._backend, monitor)

    @property
    def available(self) -> bool:
        """Whether a ``QNetworkInformation`` backend is loaded and connected."""
        return self._connected

    @property
    def backend_name(self) -> str | None:
        """The backend in use (``"glib"``, ``"networkmanager"``, …) or ``None``."""
        return self._backend

    def reachability(self) -> str | None:
        """The backend's current reachability name (``"Online"``, …) or ``None``."""
        if self._info is None:
            return None
        return str(self._info.reachability().name)

    def close(self) -> None:
        """Stop passing hints on (the Qt singleton itself stays)."""
        if self._connected and self._info is not None:
            self._info.reachabilityChanged.disconnect(self._on_reachability)
            self._info.isBehindCaptivePortalChanged.disconnect(self._on_captive_portal)
        self._connected = False

    def _on_reachability(self, reachability: Any) -> None:
        self._hint(f"reachability {getattr(reachability, 'name', reachability)}")

    def _on_captive_portal(self, behind: bool) -> None:
        self._hint(f"captive portal {'yes' if behind else 'no'}")

    def _hint(self, what: str) -> None:
        source = f"QNetworkInformation ({self._backend}): {what}"
        hint = getattr(self._monitor, "hint_changed", None)
        if callable(hint):
            hint(source)
        else:
            self._monitor.request_recheck()
        self.hints += 1
        self.hinted.emit(what)
