"""Qt widgets that follow a :class:`~connmgr.ConnectionManager` from any thread.

Needs the extra ``qt`` (PySide6); this package is the only part of connmgr
that imports it, so ``import connmgr`` works without Qt.

- :class:`RequestRunner` runs requests on a thread pool and hands back each
  result (``finished``/``failed``/``progress``) on the GUI thread, with
  cancel and cancel-all: the way to send requests from a Qt app.
- :class:`SignalBridge` moves connmgr's blinker signals onto the GUI thread,
  coalescing bursts.
- :class:`ConnectionStatusWidget` is a status-bar dot and label with a live
  countdown, a tooltip and a details popup.
- :class:`RetryBanner` shows retries in progress with Retry now / Cancel, and
  the final error when retries run out.
- :class:`NetworkStatusIndicator` is the original plan's ``QObject`` with
  ``status_changed(bool)`` and ``get_status_text()``.
- :class:`NetworkInformationHint` feeds the operating system's reachability
  changes (``QNetworkInformation``) to a monitor as a reason to re-probe.

- :class:`StatechartView` draws the connection statechart with the current
  state and the last transition marked.

Example::

    from connmgr.qt import ConnectionStatusWidget, RequestRunner, RetryBanner

    window.statusBar().addPermanentWidget(ConnectionStatusWidget(mgr))
    layout.insertWidget(0, RetryBanner(mgr))
    runner = RequestRunner(mgr, parent=window)
    runner.finished.connect(show_results)
    runner.get("/search", params={"q": "daft punk"}, operation="search")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connmgr import lazy

# First: imports PySide6 (with a clear message when it is missing) and applies
# the PySide6 6.12 / CPython 3.11 reference-count workaround before any Qt call.
from connmgr.qt import _compat  # noqa: F401

if TYPE_CHECKING:
    from connmgr.qt.banner import RetryBanner
    from connmgr.qt.bridge import (
        NetworkChangedEvent,
        OutboxChangedEvent,
        RateLimitedEvent,
        RequestFailedEvent,
        RequestFinishedEvent,
        RetryScheduledEvent,
        SignalBridge,
        StateChangedEvent,
    )
    from connmgr.qt.details import DetailsDialog
    from connmgr.qt.fonts import use_bundled_fonts
    from connmgr.qt.indicator import NetworkStatusIndicator
    from connmgr.qt.netinfo import NetworkInformationHint
    from connmgr.qt.runner import RequestHandle, RequestRunner
    from connmgr.qt.statechart_view import StatechartView
    from connmgr.qt.status import ConnectionStatusWidget

__all__ = [
    "ConnectionStatusWidget",
    "DetailsDialog",
    "NetworkChangedEvent",
    "NetworkInformationHint",
    "NetworkStatusIndicator",
    "OutboxChangedEvent",
    "RateLimitedEvent",
    "RequestFailedEvent",
    "RequestFinishedEvent",
    "RequestHandle",
    "RequestRunner",
    "RetryBanner",
    "RetryScheduledEvent",
    "SignalBridge",
    "StateChangedEvent",
    "StatechartView",
    "use_bundled_fonts",
]

_EXPORTS: dict[str, str] = {
    "ConnectionStatusWidget": "connmgr.qt.status",
    "DetailsDialog": "connmgr.qt.details",
    "NetworkChangedEvent": "connmgr.qt.bridge",
    "NetworkInformationHint": "connmgr.qt.netinfo",
    "NetworkStatusIndicator": "connmgr.qt.indicator",
    "OutboxChangedEvent": "connmgr.qt.bridge",
    "RateLimitedEvent": "connmgr.qt.bridge",
    "RequestFailedEvent": "connmgr.qt.bridge",
    "RequestFinishedEvent": "connmgr.qt.bridge",
    "RequestHandle": "connmgr.qt.runner",
    "RequestRunner": "connmgr.qt.runner",
    "RetryBanner": "connmgr.qt.banner",
    "RetryScheduledEvent": "connmgr.qt.bridge",
    "SignalBridge": "connmgr.qt.bridge",
    "StateChangedEvent": "connmgr.qt.bridge",
    "StatechartView": "connmgr.qt.statechart_view",
    "use_bundled_fonts": "connmgr.qt.fonts",
}

__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, __all__)
