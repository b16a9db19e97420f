"""The original plan's ``NetworkStatusIndicator``, driven by a :class:`~connmgr.NetworkMonitor`.

The plan's version called ``NetworkState.is_online(force_check=True)`` on the
GUI thread every 30 seconds, freezing the window for up to the probe timeout
when the network was gone. This one is signal-driven: it follows the monitor's
``network_changed`` (through a :class:`~connmgr.qt.SignalBridge`), and its
optional polling timer only *starts* a check on a worker thread, so the GUI
thread never waits for a probe.

Example::

    indicator = NetworkStatusIndicator(monitor)          # or () for the default monitor
    indicator.status_changed.connect(lambda online: label.setText(indicator.get_status_text()))
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from connmgr.qt.bridge import NetworkChangedEvent, SignalBridge

__all__ = ["NetworkStatusIndicator"]

logger = logging.getLogger(__name__)


def _status_name(status: Any) -> str:
    return str(getattr(status, "name", status or "")).upper()


class NetworkStatusIndicator(QObject):
    """A ``QObject`` with ``status_changed(bool)`` and ``get_status_text()``, as in the plan.

    Args:
        monitor: the :class:`~connmgr.NetworkMonitor` to follow (default: the one
            ``NetworkState`` uses, :func:`connmgr.network.get_default_monitor`).
        poll_interval_ms: also ask the monitor every so often, on a worker thread
            (the plan's 30 s by default; ``None`` or 0 turns polling off and
            relies on the monitor's events, e.g. its watcher started with
            ``monitor.start()``). The monitor's own cache decides whether a poll
            actually probes.
        parent: the Qt parent.

    ``status_changed`` is emitted on the GUI thread, only when online-ness changes.

    Example::

        indicator = NetworkStatusIndicator(monitor, poll_interval_ms=None)
        indicator.status_changed.connect(on_online_changed)
    """

    status_changed = Signal(bool)

    def __init__(
        self,
        monitor: Any = None,
        *,
        poll_interval_ms: int | None = 30_000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if poll_interval_ms is not None and (
            isinstance(poll_interval_ms, bool) or poll_interval_ms < 0
        ):
            raise ValueError(f"poll_interval_ms must be None or >= 0, got {poll_interval_ms!r}")
        if monitor is None:
            from connmgr.network import get_default_monitor

            monitor = get_default_monitor()
        self._monitor = monitor
        status = getattr(monitor, "status", None)
        self._status: Any = status
        # Optimistic until a check says otherwise (the plan started at True).
        self._is_online = _status_name(status) not in ("OFFLINE", "CAPTIVE_PORTAL", "LIMITED")
        self._check_lock = threading.Lock()
        self._checking = False
        self._again = False
        self._force = False
        self.bridge = SignalBridge(monitor=monitor, parent=self)
        self.bridge.network_changed.connect(self._on_network_changed)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        if poll_interval_ms:
            self._timer.start(poll_interval_ms)
        if _status_name(status) in ("", "UNKNOWN"):
            self.check_now(force=False)

    @property
    def monitor(self) -> Any:
        """The monitor followed."""
        return self._monitor

    @property
    def is_online(self) -> bool:
        """The latest online-ness seen (``True`` until a check says otherwise)."""
        return self._is_online

    @property
    def status(self) -> Any:
        """The latest ``NetworkStatus`` seen (``UNKNOWN``/``None`` before a check)."""
        return self._status

    def get_status_text(self) -> str:
        """``"Online"``, ``"Offline"``, ``"Sign in to the network"`` (captive portal), or
        ``"No internet"`` (a network without internet access: the monitor's ``LIMITED``)."""
        name = _status_name(self._status)
        if name == "CAPTIVE_PORTAL":
            return "Sign in to the network"
        if name == "LIMITED" and not self._is_online:
            return "No internet"
        return "Online" if self._is_online else "Offline"

    def polling(self) -> bool:
        """Whether the polling timer runs."""
        return self._timer.isActive()

    def check_now(self, *, force: bool = True) -> None:
        """Ask the monitor on a worker thread; returns at once.

        ``force=True`` probes even when the monitor's cache is fresh (the user
        asked); the polling timer passes ``False`` and lets the cache answer.
        One check runs at a time; asking during a check runs one more after it,
        since the check under way may have started before whatever prompted this.
        """
        with self._check_lock:
            self._force = self._force or force
            if self._checking:
                self._again = True
                return
            self._checking = True
        thread = threading.Thread(target=self._check, name="connmgr-indicator-check", daemon=True)
        thread.start()

    def close(self) -> None:
        """Stop polling and stop following the monitor."""
        self._timer.stop()
        self.bridge.close()

    # -- worker thread -----------------------------------------------------------------

    def _check(self) -> None:
        while True:
            with self._check_lock:
                force, self._force = self._force, False
            try:
                online = bool(self._monitor.is_online(force_check=force))
                status = getattr(self._monitor, "status", None)
            except Exception:
                logger.exception("network check failed")
            else:
                # The monitor also sends network_changed on a change; this covers
                # the first answer, and polls where the monitor saw no change.
                self.bridge.post_network(online, status)
            with self._check_lock:
                if not self._again:
                    self._checking = False
                    return
                self._again = False

    # -- GUI thread --------------------------------------------------------------------

    def _poll(self) -> None:
        self.check_now(force=False)

    def _on_network_changed(self, event: NetworkChangedEvent) -> None:
        if event.status is not None:
            self._status = event.status
        online = bool(event.online)
        if online != self._is_online:
            self._is_online = online
            self.status_changed.emit(online)
