"""A complete Qt app on connmgr: a search window against a flaky music store.

Run it from a checkout (``pip install -e '.[qt]'`` first)::

    python examples/qt_search_app.py              # a window; close it to quit
    python examples/qt_search_app.py --seconds 3  # quits by itself (exit status 0)

What it shows:

- a ``QMainWindow`` with a search box, a results list, the
  :class:`~connmgr.qt.RetryBanner` above the results and the
  :class:`~connmgr.qt.ConnectionStatusWidget` in the status bar (click it for
  the statechart and the timeline of the last searches);
- every search sent through a :class:`~connmgr.qt.RequestRunner`: the request
  runs on the runner's threads, the answer comes back as a signal on the GUI
  thread, and the window never freezes, however long a retry waits;
- the "store" is a :class:`~connmgr.testing.FaultServer` started inside the app
  on 127.0.0.1 (nothing leaves the machine). The toolbar makes it flaky, rate
  limited or down, and puts it back;
- shutting down in the right order: close the window, cancel what is in
  flight, close the manager, stop the server.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from typing import Any

import connmgr.qt  # noqa: F401 - first: applies the PySide6 workaround before any Qt call
from connmgr import ConnectionManager, MachinePolicy, RetryConfig
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.qt import ConnectionStatusWidget, RequestRunner, RetryBanner, use_bundled_fonts
from connmgr.testing import FaultServer

if "--seconds" in sys.argv and not os.environ.get("QT_QPA_PLATFORM"):
    # A timed run is a smoke test: no display needed.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

SEARCH_PATH = "/api/search"
# What the store does, by toolbar button: a FaultServer route behind /api/search.
STORE_MODES = {
    "Healthy": "/echo",
    "Flaky": "/random?rate=0.5&status=503&seed=store",
    "Rate limited": "/status/429?retry_after=3",
    "Down": "/status/503",
}
ARTISTS = ["daft punk", "aphex twin", "bonobo", "caribou", "four tet", "jon hopkins"]


class SearchWindow(QMainWindow):
    """The app's one window."""

    def __init__(self, manager: ConnectionManager, server: FaultServer) -> None:
        super().__init__()
        self.setWindowTitle("Music store search (connmgr example)")
        self.manager = manager
        self.server = server
        self.finished_count = 0
        self.failed_count = 0

        # The runner is a child of the window: when the window goes, it cancels
        # its requests and emits nothing more.
        self.runner = RequestRunner(manager, parent=self, max_workers=4)
        self.runner.finished.connect(self.on_results)
        self.runner.failed.connect(self.on_failed)

        self.query = QLineEdit()
        self.query.setPlaceholderText("Artist or title")
        self.query.returnPressed.connect(self.search)
        search_button = QPushButton("Search")
        search_button.clicked.connect(self.search)
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(search_button)

        self.banner = RetryBanner(manager, recovery_note_ms=3000)
        self.banner.try_again_requested.connect(lambda failed: self.search())
        self.results = QListWidget()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(row)
        layout.addWidget(self.banner)
        layout.addWidget(self.results, 1)
        self.setCentralWidget(central)

        self.status = ConnectionStatusWidget(manager)
        self.statusBar().addPermanentWidget(self.status)

        toolbar = self.addToolBar("Store")
        for name, route in STORE_MODES.items():
            action = QAction(f"Store: {name}", self)
            action.triggered.connect(lambda _=False, r=route: self.server.alias(SEARCH_PATH, r))
            toolbar.addAction(action)
        self.server.alias(SEARCH_PATH, STORE_MODES["Healthy"])
        self.resize(720, 420)

    def search(self, text: str | None = None) -> None:
        """Send one search; the answer arrives in on_results / on_failed."""
        if self.runner.closed:
            return  # shutting down
        query = text or self.query.text().strip() or random.choice(ARTISTS)
        self.runner.get(SEARCH_PATH, params={"q": query}, operation="search")
        self.statusBar().showMessage(f"Searching for {query!r}…", 2000)

    def on_results(self, handle: Any, response: Any) -> None:
        """GUI thread: show what the store answered."""
        self.finished_count += 1
        try:
            query = json.loads(response.text).get("args", {}).get("q", "?")
            line = f"{handle.id}: results for {query!r} ({response.status_code})"
        except ValueError:
            line = f"{handle.id}: {response.status_code} {response.text.strip()[:60]}"
        self.results.insertItem(0, line)

    def on_failed(self, handle: Any, error: Any) -> None:
        """GUI thread: the banner shows retries and failures; the list keeps a line."""
        self.failed_count += 1
        message = getattr(error, "user_message", None) or str(error)
        self.results.insertItem(0, f"{handle.id}: {message}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Shutting down, step 1 and 2: the window closes, what is in flight is cancelled."""
        self.runner.cancel_all("the window closed")
        self.runner.close(wait=1.0)
        super().closeEvent(event)


def build_manager(server: FaultServer) -> ConnectionManager:
    """One manager for the whole app; its network probe is the local store, not the internet."""
    monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", server.port)], timeout=0.5)
    return ConnectionManager(
        server.url,
        retry=RetryConfig(max_retries=3, base_delay=0.5, max_delay=4.0),
        policy=MachinePolicy(max_wait=10.0),
        monitor=monitor,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--seconds", type=float, default=None, help="quit by itself after this many seconds"
    )
    parser.add_argument(
        "--store", choices=sorted(STORE_MODES), default="Healthy", help="how the store starts"
    )
    args = parser.parse_args(argv)
    if args.seconds is not None and not 0 < args.seconds <= 3600:
        parser.error("--seconds must be between 0 and 3600")

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    use_bundled_fonts(app)  # the same look on any machine, fonts from pip
    with FaultServer() as server:
        manager = build_manager(server)
        try:
            window = SearchWindow(manager, server)
            server.alias(SEARCH_PATH, STORE_MODES[args.store])
            window.show()
            if args.seconds is not None:
                # A timed run searches on its own, twice a second.
                ticker = QTimer(window)
                ticker.timeout.connect(window.search)
                ticker.start(500)
                QTimer.singleShot(0, window.search)
                QTimer.singleShot(round(args.seconds * 1000), window.close)
            app.exec()
            print(  # noqa: T201 - the run's summary, for people and for the test
                f"searches: {window.finished_count} answered, {window.failed_count} failed; "
                f"state at exit: {manager.state.value}"
            )
        finally:
            # Shutting down, step 3: the manager (after the runner), then the store.
            manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
