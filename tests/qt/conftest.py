"""Setup for the Qt tests: offscreen platform, skip cleanly without PySide6, no Qt warnings.

``QT_QPA_PLATFORM=offscreen`` must be set before the QApplication exists; it is
set here, at import, before any test asks for ``qapp``. Without PySide6 (or
pytest-qt) nothing in this directory is collected.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _have_qt() -> bool:
    try:
        return (
            importlib.util.find_spec("PySide6") is not None
            and importlib.util.find_spec("pytestqt") is not None
        )
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


_HAVE_QT = _have_qt()

if not _HAVE_QT:
    collect_ignore_glob = ["test_*.py"]
else:
    # Applies the PySide6 6.12 / CPython 3.11 workaround before any Qt call.
    import connmgr.qt  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.qt)


# -- Qt messages ----------------------------------------------------------------------


@dataclass
class QtMessages:
    """Every qDebug/qWarning/qCritical seen while a test ran."""

    records: list[tuple[str, str]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [text for kind, text in self.records if kind != "QtDebugMsg"]


# Messages the offscreen platform prints on its own, unrelated to our code.
_HARMLESS = ("propagateSizeHints", "This plugin does not support")


@pytest.fixture
def qt_messages(qapp: Any) -> Iterator[QtMessages]:
    """Capture Qt's messages through a message handler; the test asserts on them."""
    from PySide6.QtCore import qInstallMessageHandler

    seen = QtMessages()

    def handler(kind: Any, context: Any, text: str) -> None:
        if not any(h in text for h in _HARMLESS):
            seen.records.append((getattr(kind, "name", str(kind)), text))

    previous = qInstallMessageHandler(handler)
    try:
        yield seen
    finally:
        qInstallMessageHandler(previous)


# -- a stand-in manager ---------------------------------------------------------------


@dataclass(frozen=True)
class FakeSnapshot:
    """The fields of ``ConnectionSnapshot`` the widgets read."""

    origin: str | None
    state: Any
    since: float
    resume_at: float | None
    retry_in: float | None
    last_error: Any
    attempts: int
    outcomes: Any
    rate: float | None
    label: str
    network: Any
    taken_at: float


class FakeManager:
    """Has what the widgets need from a ConnectionManager: snapshot, retry_now, clock, monitor.

    Tests change ``state`` / ``resume_at`` / ``network`` and send connmgr.signals
    with this object as sender, from any thread.
    """

    def __init__(self, clock: Any, monitor: Any = None) -> None:
        from connmgr.machine import ConnectionState

        self.clock = clock
        self.monitor = monitor
        self.lock = threading.Lock()
        self.state = ConnectionState.ONLINE
        self.since = clock.now()
        self.resume_at: float | None = None
        self.last_error: Any = None
        self.network: Any = "online"
        self.retry_now_calls = 0
        self.snapshot_threads: set[int] = set()

    def snapshot(self, url: str | None = None) -> FakeSnapshot:
        from connmgr.machine import STATE_EFFECTS

        self.snapshot_threads.add(threading.get_ident())
        with self.lock:
            now = self.clock.now()
            return FakeSnapshot(
                origin="http://127.0.0.1:8080",
                state=self.state,
                since=self.since,
                resume_at=self.resume_at,
                retry_in=None if self.resume_at is None else max(0.0, self.resume_at - now),
                last_error=self.last_error,
                attempts=3,
                outcomes=MappingProxyType({"success": 2, "transient": 1}),
                rate=10.0,
                label=STATE_EFFECTS[self.state].label,
                network=self.network,
                taken_at=now,
            )

    def set_state(self, state: Any, *, resume_in: float | None = None, error: Any = None) -> Any:
        """Change state and return the kwargs of the matching ``state_changed``."""
        with self.lock:
            old = self.state
            self.state = state
            self.since = self.clock.now()
            self.resume_at = None if resume_in is None else self.clock.now() + resume_in
            if error is not None:
                self.last_error = error
        return {
            "origin": "http://127.0.0.1:8080",
            "old": old,
            "new": state,
            "reason": "test",
            "snapshot": self.snapshot(),
        }

    def retry_now(self) -> None:
        self.retry_now_calls += 1


class ManualClock:
    """A clock the test moves by hand (``now()`` only is needed by the widgets)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        self._now += seconds
        return False


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake_manager(clock: ManualClock) -> FakeManager:
    return FakeManager(clock)


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run ``fn`` on a fresh worker thread and wait for it (the GUI thread is not touched)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    if errors:
        raise errors[0]


__all__ = ["FakeManager", "FakeSnapshot", "ManualClock", "QtMessages", "in_thread", "replace"]
