"""Setup for the Qt tests: offscreen platform, skip cleanly without PySide6, no Qt warnings.

``QT_QPA_PLATFORM=offscreen`` must be set before the QApplication exists; it is
set here, at import, before any test asks for ``qapp``. Without PySide6 (or
pytest-qt) nothing in this directory is collected.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"


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


# -- fonts ----------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def bundled_fonts(qapp: Any) -> list[str]:
    """Noto Sans from its pip package as the application font: no system font needed."""
    from connmgr.qt.fonts import load_bundled_fonts, use_bundled_fonts

    use_bundled_fonts(qapp)
    return load_bundled_fonts()


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


# -- stand-ins ------------------------------------------------------------------------


@pytest.fixture
def clock() -> Any:
    """A clock the test moves by hand."""
    from qt_helpers import ManualClock

    return ManualClock()


@pytest.fixture
def fake_manager(clock: Any) -> Any:
    """A stand-in manager (snapshot, retry_now, clock) driven by the test."""
    from qt_helpers import FakeManager

    return FakeManager(clock)
