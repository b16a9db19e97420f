"""Render the widgets offscreen, one state at a time, and save each as a PNG at 1:1 scale.

``python -m connmgr.qt.screenshots docs/images`` (what ``make screenshots``
runs) writes one image per widget state, each cropped to the widget it
illustrates (``widget.grab()``, device pixel ratio 1): the status widget in
each connection state and network condition, the retry banner in each of its
modes, the statechart, and the details popup; the status widget with an
outbox holding three changes (and its details listing them), and the banner
showing a stale answer. Fonts come from pip packages
(:mod:`connmgr.qt.fonts`), so the images look the same on any machine.

The status widget and the banner are driven by a stand-in manager (the
exact state and countdown each image needs, on a clock that does not move);
the details popup shows a real :class:`~connmgr.ConnectionManager`'s
``history()``, recorded against a local :class:`~connmgr.testing.FaultServer` on
a fake clock (a 503 retried, a server's ``Retry-After: 2`` waited at the gate).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.errors import NetworkError, OfflineError, ServerError
from connmgr.frozen import explain_frozen
from connmgr.machine import STATE_EFFECTS, ConnectionState

__all__ = ["main", "take_screenshots"]

S = ConnectionState
ORIGIN = "http://127.0.0.1:8080"
_SEARCH = f"{ORIGIN}/search?q=daft+punk"
#: Width of the banner images (a narrow app window's content area).
BANNER_WIDTH = 640

logger = logging.getLogger(__name__)


@explain_frozen
@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The fields of ``ConnectionSnapshot`` the widgets read."""

    origin: str | None
    state: ConnectionState
    since: float
    resume_at: float | None
    retry_in: float | None
    last_error: Any
    attempts: int
    outcomes: Mapping[str, int]
    rate: float | None
    label: str
    network: Any
    taken_at: float


class _StillClock:
    """A clock that stays put, so a countdown reads exactly what the image needs."""

    def __init__(self) -> None:
        self.t = 5000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        return False


class _Stage:
    """What the widgets need from a manager, set by hand for each image."""

    def __init__(self) -> None:
        self.clock = _StillClock()
        self.monitor: Any = None
        self.state = S.ONLINE
        self.resume_at: float | None = None
        self.network: Any = "online"
        self.last_error: Any = None

    def snapshot(self, url: str | None = None) -> _Snapshot:
        now = self.clock.now()
        return _Snapshot(
            origin=ORIGIN, state=self.state, since=now - 42, resume_at=self.resume_at,
            retry_in=None if self.resume_at is None else self.resume_at - now,
            last_error=self.last_error, attempts=12,
            outcomes=MappingProxyType({"success": 9, "transient": 3}), rate=7.32596,
            label=STATE_EFFECTS[self.state].label, network=self.network, taken_at=now,
        )  # fmt: skip

    def state_for(self, url: str) -> ConnectionState:
        return self.state

    def retry_now(self) -> None:
        return None

    def set(
        self, state: ConnectionState, *, resume_in: float | None = None, network: Any = "online"
    ) -> None:
        old = self.state
        self.state = state
        self.network = network
        self.resume_at = None if resume_in is None else self.clock.now() + resume_in
        signals.state_changed.send(
            self, origin=ORIGIN, old=old, new=state, reason="screenshot", snapshot=None
        )


def _server_error() -> ServerError:
    return ServerError(
        "503 Service Unavailable",
        user_message="The server is having trouble right now.",
        suggestion="Try again in a minute.",
        url=_SEARCH,
        attempts=4,
    )


def _settle(app: Any, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()


def _save(widget: Any, path: Path) -> Path:
    image = widget.grab()
    image.setDevicePixelRatio(1.0)
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


class _StageOutbox:
    """What the status widget reads from an outbox: three changes made offline."""

    def __init__(self, clock: _StillClock) -> None:
        from connmgr.outbox import Entry

        made = 1_764_600_000.0  # wall-clock seconds, as an outbox stores them
        offline = "There is no network connection."

        def entry(number: int, method: str, path: str, attempts: int) -> Entry:
            return Entry(
                id=number, method=method, url=f"{ORIGIN}{path}", state="queued",
                attempts=attempts, created_at=made + number, expires_at=made + 7 * 86400,
                next_attempt_at=made + 60, last_error=offline if attempts else None,
                status=None, idempotency_key=f"5f0c9a1e-0000-4000-8000-00000000000{number}",
            )  # fmt: skip

        self._entries = [
            entry(4, "POST", "/playlists/7/tracks", 2),
            entry(5, "PUT", "/playlists/7", 1),
            entry(6, "DELETE", "/playlists/7/tracks/19", 0),
        ]

    @property
    def pending_count(self) -> int:
        return len(self._entries)

    def pending(self) -> list[Any]:
        return list(self._entries)


# --------------------------------------------------------------------------- status widget


def _status_images(app: Any, out: Path) -> list[Path]:
    from PySide6.QtWidgets import QFrame, QHBoxLayout

    from connmgr.qt.status import ConnectionStatusWidget

    stage = _Stage()
    holder = QFrame()
    holder.setObjectName("statusbar")
    # A status bar's strip, tight around the widget: the image is the widget.
    holder.setStyleSheet("#statusbar { background: palette(window); }")
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(4, 4, 4, 4)
    widget = ConnectionStatusWidget(stage, parent=holder)
    layout.addWidget(widget)
    holder.show()
    limited = type("Limited", (), {"name": "LIMITED", "value": "limited"})()
    shots: list[tuple[str, Callable[[], None]]] = [
        ("status-online.png", lambda: stage.set(S.ONLINE)),
        ("status-degraded.png", lambda: stage.set(S.DEGRADED)),
        ("status-rate-limited.png", lambda: stage.set(S.RATE_LIMITED, resume_in=12)),
        ("status-backoff.png", lambda: stage.set(S.BACKOFF, resume_in=7.2)),
        ("status-offline.png", lambda: stage.set(S.OFFLINE, network="offline")),
        ("status-captive-portal.png", lambda: stage.set(S.OFFLINE, network="captive_portal")),
        ("status-limited.png", lambda: stage.set(S.DEGRADED, network=limited)),
    ]
    saved = []
    for name, act in shots:
        act()
        _settle(app)
        widget.refresh()
        holder.adjustSize()
        _settle(app)
        saved.append(_save(holder, out / name))
    # Offline, with three changes the user made waiting in the outbox.
    stage.set(S.OFFLINE, network="offline")
    widget.watch_outbox(_StageOutbox(stage.clock))
    _settle(app)
    widget.refresh()
    holder.adjustSize()
    _settle(app)
    saved.append(_save(holder, out / "status-outbox.png"))
    dialog = widget.show_details()
    dialog.resize(900, 720)
    if dialog.tabs is not None and dialog.outbox_view is not None:
        dialog.tabs.setCurrentWidget(dialog.outbox_view)
    _settle(app, 10)
    saved.append(_save(dialog, out / "details-outbox.png"))
    dialog.close()
    dialog.deleteLater()
    widget.bridge.close()
    holder.close()
    holder.deleteLater()
    return saved


# --------------------------------------------------------------------------- banner


def _retry(stage: _Stage, request_id: int, delay: float, error: Any, attempt: int = 2) -> None:
    signals.retry_scheduled.send(
        stage, request_id=request_id, attempt=attempt, max_attempts=4, delay=delay, error=error,
        url=_SEARCH, operation="search", cancel=CancelToken(),
    )  # fmt: skip


def _give_up(stage: _Stage, request_id: int, error: Any) -> None:
    signals.request_failed.send(
        stage, request_id=request_id, error=error, url=_SEARCH, operation="search"
    )
    signals.request_finished.send(stage, request_id=request_id, outcome="transient", url=_SEARCH)


def _banner_images(app: Any, out: Path) -> list[Path]:
    from connmgr.network import NetworkStatus
    from connmgr.qt.banner import RetryBanner

    saved = []

    def shoot(name: str, script: Callable[[_Stage], None], *, note_ms: int = 0) -> None:
        stage = _Stage()
        monitor = _Monitor()
        stage.monitor = monitor
        banner = RetryBanner(stage, recovery_note_ms=note_ms)
        banner.setFixedWidth(BANNER_WIDTH)
        script(stage)
        _settle(app)
        if not banner.isVisible():
            raise RuntimeError(f"screenshots: the banner for {name} did not show")
        banner.adjustSize()
        _settle(app)
        saved.append(_save(banner, out / name))
        banner.bridge.close()
        banner.close()
        banner.deleteLater()

    def retrying(stage: _Stage) -> None:
        stage.set(S.DEGRADED)
        _retry(stage, 1, 2.2, _server_error())

    def several(stage: _Stage) -> None:
        stage.set(S.DEGRADED)
        for request_id, delay in ((1, 3.1), (2, 1.8), (3, 4.5)):
            _retry(stage, request_id, delay, _server_error())

    def failed(stage: _Stage) -> None:
        stage.state = S.BACKOFF
        _retry(stage, 1, 0.5, _server_error(), attempt=4)
        _give_up(stage, 1, _server_error())

    def network(status: Any, state: ConnectionState) -> Callable[[_Stage], None]:
        def script(stage: _Stage) -> None:
            stage.monitor.status = status
            stage.monitor.last_results = ()
            signals.network_changed.send(stage.monitor, online=False, status=status)
            stage.state = state
            error = OfflineError("the network is unreachable", url=_SEARCH, attempts=3)
            _retry(stage, 1, 0.5, error, attempt=3)
            _give_up(stage, 1, error)

        return script

    def stale(stage: _Stage) -> None:
        stage.monitor.status = NetworkStatus.OFFLINE
        signals.network_changed.send(stage.monitor, online=False, status=NetworkStatus.OFFLINE)
        stage.state = S.OFFLINE
        signals.request_finished.send(
            stage, request_id=1, outcome="stale", url=_SEARCH, method="GET", operation="search",
            status=200, stale_age=5 * 60 + 12.0,
        )  # fmt: skip

    def recovered(stage: _Stage) -> None:
        failed(stage)
        _settle(stage_app)
        stage.set(S.ONLINE)

    stage_app = app
    limited = type("Limited", (), {"name": "LIMITED", "value": "limited"})()
    shoot("banner-retrying.png", retrying)
    shoot("banner-several.png", several)
    shoot("banner-failed.png", failed)
    shoot("banner-offline.png", network(NetworkStatus.OFFLINE, S.OFFLINE))
    shoot("banner-limited.png", network(limited, S.DEGRADED))
    shoot("banner-captive-portal.png", network(NetworkStatus.CAPTIVE_PORTAL, S.OFFLINE))
    shoot("banner-recovered.png", recovered, note_ms=60_000)
    shoot("banner-stale.png", stale)
    return saved


class _Monitor:
    """A monitor's status for the banner's network words."""

    def __init__(self) -> None:
        self.status: Any = "online"
        self.last_results: tuple[Any, ...] = ()
        self.probes: tuple[Any, ...] = ()


# --------------------------------------------------------------------------- details


def _recorded_timeline() -> tuple[list[Any], str, Any]:
    """A real manager's timeline: a 503 retried, a Retry-After waited at the gate."""
    from connmgr.manager import ConnectionManager
    from connmgr.network import NetworkMonitor, TcpProbe
    from connmgr.qt._text import technical_details
    from connmgr.retry import RetryConfig
    from connmgr.testing import FakeClock, FaultServer

    clock = FakeClock()
    with FaultServer() as server:
        monitor = NetworkMonitor(probes=[TcpProbe("127.0.0.1", server.port)], clock=clock)
        mgr = ConnectionManager(
            server.url, retry=RetryConfig(max_retries=3, base_delay=0.5, jitter_range=0.0),
            monitor=monitor, clock=clock, rng=random.Random(7), watch_network=False,
        )  # fmt: skip
        with mgr:
            mgr.get("/ok?q=aphex+twin", operation="search")
            server.alias("/search", "/flaky/s?fail=1&status=503")
            mgr.get("/search?q=daft+punk", operation="search")
            server.alias("/search", "/status/429?retry_after=2")
            # The 429s run out of retries: that failure is part of the story told.
            with contextlib.suppress(NetworkError):
                mgr.get("/search?q=bonobo", operation="search")
            server.alias("/search", "/echo")
            mgr.get("/search?q=caribou", operation="search")
            records = mgr.history()
            snapshot = mgr.snapshot()
            details = technical_details(snapshot, clock.now())
    return records, details, snapshot.state


def _details_images(app: Any, out: Path) -> list[Path]:
    from connmgr.qt.details import DetailsDialog
    from connmgr.qt.statechart_view import StatechartView

    records, details, state = _recorded_timeline()
    view = StatechartView(S.DEGRADED, (S.ONLINE, S.DEGRADED))
    view.resize(view.sizeHint())
    view.show()
    _settle(app)
    saved = [_save(view, out / "statechart.png")]
    view.close()
    dialog = DetailsDialog(
        "Connection details", details, state=state,
        last_change=(S.RATE_LIMITED, state) if state is not S.RATE_LIMITED else None,
        timeline=records,
    )  # fmt: skip
    dialog.resize(1180, 940)
    dialog.show()
    _settle(app, 10)
    saved.append(_save(dialog, out / "details.png"))
    dialog.close()
    dialog.deleteLater()
    return saved


# --------------------------------------------------------------------------- entry point


def take_screenshots(directory: str | os.PathLike[str]) -> list[Path]:
    """Write every image into ``directory`` (created if missing); return their paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # 1:1: one image pixel per device-independent pixel, whatever the screen says.
    os.environ["QT_SCALE_FACTOR"] = "1"
    os.environ.pop("QT_SCREEN_SCALE_FACTORS", None)
    from PySide6.QtWidgets import QApplication

    import connmgr.qt  # noqa: F401  (the PySide6 workaround before any Qt call)
    from connmgr.qt.fonts import use_bundled_fonts

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(["connmgr-screenshots"])
    if not use_bundled_fonts(app):  # type: ignore[arg-type]
        raise RuntimeError(
            "screenshots need the fonts of the `qt` extra: pip install 'connmgr[qt]'"
        )
    return [*_status_images(app, out), *_banner_images(app, out), *_details_images(app, out)]


def main(argv: list[str] | None = None) -> int:
    """``python -m connmgr.qt.screenshots DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m connmgr.qt.screenshots", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("directory", help="where to write the PNGs (e.g. docs/images)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in take_screenshots(args.directory):
        width, height = _size_of(path)
        logger.info("%s  %d×%d", path, width, height)
    return 0


def _size_of(path: Path) -> tuple[int, int]:
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    return image.width(), image.height()


if __name__ == "__main__":
    raise SystemExit(main())
