"""``connmgr demo --gui``: a window with the status widget and the retry banner, live.

Two embedded :class:`~connmgr.testing.FaultServer` instances stand in for the
world: *the API* (what the app searches) and *the internet* (what the network
monitor probes, ``/generate_204``). The toolbar breaks them on purpose — a
flaky server, a rate limit, an outage, a lost network, a captive portal — while
four worker threads search through one :class:`~connmgr.ConnectionManager`,
and the status bar and the banner follow from the GUI thread.

``--screenshots DIR`` runs the same window offscreen through each state and
saves one PNG per state and for the banner (retrying, several retrying, final
failure), plus the details popup: ``make screenshots`` regenerates
``docs/images/``.

Example::

    connmgr demo --gui
    connmgr demo --gui --screenshots docs/images
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QListWidget,
    QMainWindow,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from connmgr.demo.story import QUERIES
from connmgr.qt.banner import RetryBanner
from connmgr.qt.bridge import SignalBridge
from connmgr.qt.netinfo import NetworkInformationHint
from connmgr.qt.status import ConnectionStatusWidget

__all__ = ["DemoLab", "DemoWindow", "main", "take_screenshots"]

logger = logging.getLogger(__name__)


# What each toolbar mode makes the API's /api/search do (FaultServer routes).
SERVER_MODES: dict[str, str | None] = {
    "healthy": None,
    "flaky": "/random?rate=0.35&status=503&seed=7",
    "rate limited": "/limited?rate=2&burst=3&headers=1",
    "outage": "/status/503",
}


def _story_runner() -> Callable[..., Any] | None:
    """``connmgr.demo.runner.run_story`` (the terminal demo's script), if it is there."""
    try:
        from connmgr.demo.runner import run_story
    except ImportError:
        return None
    return run_story


def _story_timings() -> Any:
    try:
        from connmgr.demo.timings import DemoTimings
    except ImportError:
        return None
    return DemoTimings()


class DemoLab:
    """The embedded world: an API server, an "internet" to probe, and the manager.

    ``timings`` (a :class:`connmgr.demo.timings.DemoTimings`) sets the manager up as the
    scripted story of ``connmgr demo`` expects; ``retry`` and ``policy``
    override (the screenshots use short, fixed ones). Close it to stop both
    servers.
    """

    def __init__(
        self,
        *,
        timings: Any = None,
        retry: Any = None,
        policy: Any = None,
    ) -> None:
        from connmgr.manager import ConnectionManager
        from connmgr.network import HttpProbe, NetworkMonitor
        from connmgr.testing import FaultServer

        self.timings = timings
        self.api = FaultServer().start()
        self.internet = FaultServer().start()
        self.api.alias("/api/search", "/ok?delay=0.05")
        offline_interval = timings.offline_interval if timings is not None else 0.5
        self.monitor = NetworkMonitor(
            probes=[HttpProbe(self.internet.url_for("/generate_204"), expect_status=204)],
            interval=max(5.0, offline_interval),
            offline_interval=offline_interval,
            timeout=0.5,
            debounce=0.0,
        )
        options: dict[str, Any] = {}
        if timings is not None:
            from connmgr.ratelimit import OriginRateLimits, RateLimit

            options = {
                "timeouts": timings.timeouts(),
                "retry": timings.retry(),
                "policy": timings.policy(),
                "rate_limits": OriginRateLimits(
                    default=RateLimit(max_requests=timings.rate, time_window=1.0)
                ),
            }
        if retry is not None:
            options["retry"] = retry
        if policy is not None:
            options["policy"] = policy
        self.manager = ConnectionManager(
            self.api.url, monitor=self.monitor, rng=random.Random(6), **options
        )
        self.mode = "healthy"
        self.network_up = True
        self.portal = False

    def set_mode(self, mode: str) -> None:
        """Make the API healthy, flaky, rate limited or down (see :data:`SERVER_MODES`)."""
        route = SERVER_MODES[mode]
        self.api.alias("/api/search", route or "/ok?delay=0.05")
        self.api.reset()
        self.mode = mode

    def set_network(self, up: bool) -> None:
        """Lose the network (both servers refuse or reset) or get it back."""
        if up and not self.network_up:
            self.api.start()
            self.internet.alias("/generate_204", "/portal" if self.portal else None)
        elif not up and self.network_up:
            self.api.stop()
            self.internet.alias("/generate_204", "/reset")
        self.network_up = up
        self.monitor.hint_changed("demo")

    def set_portal(self, on: bool) -> None:
        """Put a hotel-style login page in front of the internet (or take it away)."""
        self.portal = on
        if self.network_up:
            self.internet.alias("/generate_204", "/portal" if on else None)
        self.monitor.hint_changed("demo")

    def search(self, query: str, *, cancel: Any = None) -> str:
        """One search through the manager; a line for the results list (worker thread)."""
        started = time.perf_counter()
        try:
            response = self.manager.get(
                "/api/search", params={"q": query}, operation="search", cancel=cancel
            )
        except Exception as exc:
            message = getattr(exc, "user_message", None) or str(exc)
            return f"✗ {query!r}: {message}"
        took = (time.perf_counter() - started) * 1000
        return f"✓ {query!r}: {response.status_code} in {took:.0f} ms"

    def close(self) -> None:
        """Close the manager and stop both servers."""
        self.manager.close()
        self.api.close()
        self.internet.close()


class DemoWindow(QMainWindow):
    """The demo's main window: toolbar, banner, results list, status bar.

    ``auto`` starts a search every 0.7 s on one of ``workers`` threads.
    """

    #: A line for the results list, emitted from worker threads (queued to the GUI).
    result = Signal(str)
    #: The story's thread ended (emitted from it, queued to the GUI).
    story_done = Signal()

    def __init__(self, lab: DemoLab, *, workers: int = 4, auto: bool = True) -> None:
        super().__init__()
        self.lab = lab
        self.setWindowTitle("connmgr demo — music search")
        self.bridge = SignalBridge(lab.manager, parent=self)
        self.status = ConnectionStatusWidget(lab.manager, bridge=self.bridge)
        self.banner = RetryBanner(lab.manager, bridge=self.bridge)
        self.results = QListWidget()
        self.results.setAccessibleName("Search results")
        self.hint = NetworkInformationHint(lab.monitor, parent=self)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        self._running = True
        self._story: threading.Thread | None = None
        self._story_stop = threading.Event()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.banner)
        heading = QLabel("Search results")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)
        layout.addWidget(self.results, 1)
        self.setCentralWidget(central)
        self.statusBar().addPermanentWidget(self.status)
        self.statusBar().showMessage(f"API {lab.api.url} · 4 search threads")
        self._toolbar()

        self.result.connect(self._add_result)
        self.story_done.connect(self._story_finished)
        self.banner.try_again_requested.connect(self._try_again)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.search_once)
        if auto:
            self._timer.start(700)
        self.resize(760, 360)

    def _toolbar(self) -> None:
        bar = QToolBar("Scenario")
        bar.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.addWidget(QLabel(" Server: "))
        group = QActionGroup(self)
        #: The server-mode actions, by mode name (see :data:`SERVER_MODES`).
        self.mode_actions: dict[str, QAction] = {}
        for mode in SERVER_MODES:
            action = QAction(mode.capitalize(), self, checkable=True)
            action.setChecked(mode == "healthy")
            action.toggled.connect(functools.partial(self._mode_toggled, mode))
            group.addAction(action)
            bar.addAction(action)
            self.mode_actions[mode] = action
        bar.addSeparator()
        self.network_action = QAction("Network", self, checkable=True, checked=True)
        self.network_action.setToolTip("Turn the (simulated) network off and on")
        self.network_action.toggled.connect(self.lab.set_network)
        bar.addAction(self.network_action)
        self.portal_action = QAction("Login page", self, checkable=True)
        self.portal_action.setToolTip("Put a captive portal (hotel Wi-Fi login) in the way")
        self.portal_action.toggled.connect(self.lab.set_portal)
        bar.addAction(self.portal_action)
        bar.addSeparator()
        burst = QAction("Search ×8", self)
        burst.triggered.connect(self.search_burst)
        bar.addAction(burst)
        self.story_action = QAction("Play the story", self)
        self.story_action.setToolTip(
            "The scripted bad day of `connmgr demo`: flaky, outage, rate limit, network loss"
        )
        self.story_action.triggered.connect(self.play_story)
        self.story_action.setEnabled(_story_runner() is not None)
        bar.addAction(self.story_action)

    def _mode_toggled(self, mode: str, checked: bool) -> None:
        if checked:
            self.lab.set_mode(mode)

    def select_mode(self, mode: str) -> None:
        """Switch the server mode as the toolbar would."""
        self.mode_actions[mode].setChecked(True)

    def search_burst(self, count: int = 8) -> None:
        """Start ``count`` searches at once (they queue on the worker threads)."""
        for _ in range(count):
            self.search_once()

    def story_running(self) -> bool:
        """Whether the scripted story is playing."""
        return self._story is not None and self._story.is_alive()

    def play_story(self) -> bool:
        """Play ``connmgr demo``'s scripted story on this window's manager (``False``: none).

        The toolbar's scenario switches and the free-play searches pause while it runs;
        its timeline goes to the results list.
        """
        run_story = _story_runner()
        if run_story is None or self.story_running():
            return False
        self.select_mode("healthy")
        self.network_action.setChecked(True)
        self.portal_action.setChecked(False)
        self._set_scenario_enabled(False)
        self._story_stop.clear()
        self.result.emit("▶ the story of a bad day (connmgr demo)")
        self._story = threading.Thread(
            target=self._run_story, args=(run_story,), name="demo-story", daemon=True
        )
        self._story.start()
        return True

    def _run_story(self, run_story: Callable[..., Any]) -> None:
        lab = self.lab
        try:
            report = run_story(
                lab.manager,
                lab.api,
                set_network=lab.set_network,
                timings=lab.timings,
                on_event=lambda event: self.result.emit(f"{event.at:5.1f} s  {event.text}"),
                stop=self._story_stop,
            )
            summary = getattr(report, "ok", None)
            self.result.emit("■ story over" + ("" if summary in (None, True) else " (see above)"))
        except Exception:
            logger.exception("the demo story failed")
            self.result.emit("■ the story stopped with an error (see the log)")
        finally:
            self.story_done.emit()

    def _story_finished(self) -> None:
        self._set_scenario_enabled(True)

    def _set_scenario_enabled(self, enabled: bool) -> None:
        for action in (*self.mode_actions.values(), self.network_action, self.portal_action):
            action.setEnabled(enabled)
        self.story_action.setEnabled(enabled and _story_runner() is not None)

    def search_once(self, query: str | None = None) -> None:
        """Start one search on a worker thread (skipped while the story plays)."""
        if not self._running or self.story_running():
            return
        chosen = query or random.choice(QUERIES)
        self._pool.submit(self._search, chosen)

    def _search(self, query: str) -> None:
        line = self.lab.search(query)
        if self._running:
            self.result.emit(line)

    def _add_result(self, line: str) -> None:
        self.results.insertItem(0, line)
        while self.results.count() > 200:
            self.results.takeItem(self.results.count() - 1)

    def _try_again(self, failed: Any) -> None:
        self.search_once()

    def shutdown(self) -> None:
        """Stop the workload and wait for the search threads (cancelling nothing)."""
        self._running = False
        self._timer.stop()
        self._story_stop.set()
        if self._story is not None:
            self._story.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.hint.close()
        self.bridge.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Stop the workload before the window goes."""
        self.shutdown()
        super().closeEvent(event)


# --------------------------------------------------------------------------- screenshots


def _wait(app: Any, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        app.processEvents()
        pause.wait(0.005)
    app.processEvents()


def _settle(app: Any, seconds: float = 0.15) -> None:
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while time.monotonic() < deadline:
        app.processEvents()
        pause.wait(0.005)


@contextlib.contextmanager
def _scene(
    app: Any, *, retry: Any = None, policy: Any = None, results: Sequence[str] = ()
) -> Iterator[tuple[DemoLab, Any]]:
    lab = DemoLab(retry=retry, policy=policy)
    window = DemoWindow(lab, auto=False)
    window.show()
    for line in results:
        window._add_result(line)
    try:
        _wait(app, window.isVisible, 2.0, "the window")
        yield lab, window
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()
        lab.close()
        _settle(app, 0.05)


def _save(window: Any, directory: Path, name: str, saved: list[Path]) -> None:
    # Let Qt finish the layout passes that text changes queued.
    _settle(QApplication.instance(), 0.1)
    path = directory / name
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    saved.append(path)
    logger.info("saved %s", path)


def _background(fn: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def take_screenshots(directory: str | os.PathLike[str]) -> list[Path]:
    """Run the window offscreen through every state and save PNGs in ``directory``."""
    from connmgr.machine import ConnectionState as S
    from connmgr.machine import MachinePolicy
    from connmgr.retry import RetryConfig

    app = QApplication.instance()
    if app is None:
        # Offscreen whatever the desktop: the same pixels on every machine, no window.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication([])
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    fast = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02, jitter_range=0.0)
    history = [
        "✓ 'deep house 124 bpm': 200 in 61 ms",
        "✓ 'aphex twin': 200 in 58 ms",
        "✓ 'boards of canada': 200 in 57 ms",
    ]

    # Online.
    with _scene(app, retry=fast, results=history) as (lab, window):
        lab.search("amapiano")
        _wait(app, lambda: window.status.text() == "Online", 5, "online")
        _save(window, out, "status-online.png", saved)

    # Unstable: one failed attempt, then success.
    with _scene(app, retry=fast, results=history) as (lab, window):
        window.select_mode("flaky")
        # Deterministic for the picture: exactly one failed attempt, then success.
        lab.api.alias("/api/search", "/flaky/unstable?fail=1&status=503")
        window._add_result(lab.search("disco edits"))
        _wait(app, lambda: window.status.state is S.DEGRADED, 5, "degraded")
        _save(window, out, "status-degraded.png", saved)

    # Rate limited: a 429 asking for 12 s; the gate refuses to wait that long.
    no_retry = RetryConfig(max_retries=0)
    with _scene(app, retry=no_retry, policy=MachinePolicy(max_wait=0), results=history) as (
        lab,
        window,
    ):
        window.select_mode("rate limited")
        lab.api.alias("/api/search", "/status/429?retry_after=12")
        window._add_result(lab.search("italo disco"))
        _wait(app, lambda: window.status.state is S.RATE_LIMITED, 5, "rate limited")
        _save(window, out, "status-rate-limited.png", saved)

    # Server trouble: five transient failures in a row open the circuit.
    # max_wait bounds retry delays too: 0.5 s lets the 0.01-0.08 s retries run.
    policy = MachinePolicy(cooldown_base=8.0, cooldown_jitter=0.0, max_wait=0.5)
    trip = RetryConfig(max_retries=4, base_delay=0.01, jitter_range=0.0)
    with _scene(app, retry=trip, policy=policy, results=history) as (lab, window):
        window.select_mode("outage")
        window._add_result(lab.search("detroit techno"))
        _wait(app, lambda: window.status.state is S.BACKOFF, 5, "backoff")
        window.banner.dismiss()
        _save(window, out, "status-backoff.png", saved)

    # Offline: the network goes, a request fails to connect, the probe confirms.
    with _scene(app, retry=fast, results=history) as (lab, window):
        lab.search("amapiano")
        window.network_action.setChecked(False)
        window._add_result(lab.search("drum and bass 174"))
        _wait(app, lambda: window.status.state is S.OFFLINE, 5, "offline")
        window.banner.dismiss()
        _save(window, out, "status-offline.png", saved)

    # Captive portal: the probe gets a login page instead of 204.
    with _scene(app, retry=fast, results=history) as (lab, window):
        window.portal_action.setChecked(True)
        _wait(app, lambda: lab.monitor.status.name == "CAPTIVE_PORTAL", 5, "the portal probe")
        lab.search("aphex twin")  # may fail or not: the status bar is the point
        window.status.refresh()
        _wait(
            app,
            lambda: window.status.text() == "Sign in to the network",
            5,
            "the portal status",
        )
        _save(window, out, "status-captive-portal.png", saved)

    # The banner while a request waits to retry a 503.
    slow = RetryConfig(max_retries=3, base_delay=2.4, jitter_range=0.0, max_delay=10.0)
    with _scene(app, retry=slow, results=history) as (lab, window):
        window.select_mode("flaky")
        lab.api.alias("/api/search", "/flaky/banner?fail=1&status=503")
        worker = _background(lambda: lab.search("boards of canada"))
        _wait(app, lambda: window.banner.mode == "retrying", 5, "the banner")
        _settle(app, 0.12)
        _save(window, out, "banner-retrying.png", saved)
        window.banner.retry_now()
        worker.join(5)
        _wait(app, lambda: window.banner.mode == "idle", 5, "the banner to hide")

    # Several requests retrying at once: one line, not a stack.
    with _scene(app, retry=slow, results=history) as (lab, window):
        window.select_mode("outage")
        workers = [_background(functools.partial(lab.search, q)) for q in QUERIES[:3]]
        _wait(app, lambda: len(window.banner.retrying) == 3, 5, "three retries")
        _settle(app, 0.12)
        _save(window, out, "banner-several.png", saved)
        window.banner.cancel()
        for worker in workers:
            worker.join(5)

    # Retries ran out: the final error stays until dismissed.
    with _scene(app, retry=fast, results=history) as (lab, window):
        window.select_mode("outage")
        window._add_result(lab.search("deep house 124 bpm"))
        _wait(app, lambda: window.banner.mode == "failed", 5, "the final failure")
        _save(window, out, "banner-failed.png", saved)

        # And the details popup of the status widget.
        dialog = window.status.show_details()
        _save(dialog, out, "details.png", saved)
        dialog.close()
    return saved


# --------------------------------------------------------------------------- entry point


def _display_available() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="connmgr demo --gui", description="The Qt demo window of connmgr."
    )
    parser.add_argument("--screenshots", metavar="DIR", help="save PNGs offscreen and exit")
    parser.add_argument("--seconds", type=float, default=None, help="close after this long")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Run the demo window, or with ``screenshots`` set, save the screenshots and exit.

    ``args`` is the CLI's namespace (``screenshots``, optionally ``seconds``),
    or an argument list (``["--screenshots", "docs/images"]``).
    """
    namespace = args if isinstance(args, argparse.Namespace) else _parse(args)
    screenshots = getattr(namespace, "screenshots", None)
    if screenshots:
        saved = take_screenshots(screenshots)
        for path in saved:
            sys.stdout.write(f"{path}\n")
        return 0
    if QApplication.instance() is None and not _display_available():
        # Qt would abort the process here (qFatal), with a message about plugins.
        sys.stderr.write(
            "connmgr demo --gui: no display found (DISPLAY / WAYLAND_DISPLAY are unset).\n"
            "Use --screenshots DIR to render offscreen, or set QT_QPA_PLATFORM=offscreen.\n"
        )
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    lab = DemoLab(timings=_story_timings())
    window = DemoWindow(lab)
    window.show()
    # Open on the scripted story; free play (the toolbar) once it is over.
    window.play_story()
    seconds = getattr(namespace, "seconds", None)
    if seconds:

        def finish() -> None:
            window.close()
            app.quit()

        QTimer.singleShot(int(seconds * 1000), finish)
    try:
        return int(app.exec())
    finally:
        window.shutdown()
        lab.close()


if __name__ == "__main__":
    raise SystemExit(main())
