"""Fonts from pip packages, so offscreen tests and screenshots need nothing from the system.

A machine without fonts (a fresh container, CI) draws every glyph as a box.
The ``qt`` extra depends on ``fontpkg-noto-sans`` (Noto Sans) and
``fontpkg-roboto-mono`` (Roboto Mono), which ship the TTF files inside the
wheel; :func:`load_bundled_fonts` registers them with
``QFontDatabase.addApplicationFont`` and :func:`use_bundled_fonts` makes
Noto Sans the application font, so a screenshot looks the same everywhere.

Example::

    app = QApplication([])
    use_bundled_fonts(app)          # before the first widget
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication

__all__ = [
    "FONT_PACKAGES",
    "UI_FAMILY",
    "UI_POINT_SIZE",
    "load_bundled_fonts",
    "monospace_font",
    "use_bundled_fonts",
]

logger = logging.getLogger(__name__)

#: The packages whose fonts are loaded: (module, family).
FONT_PACKAGES: tuple[tuple[str, str], ...] = (
    ("fontpkg_noto_sans", "Noto Sans"),
    ("fontpkg_roboto_mono", "Roboto Mono"),
)
#: The application font set by :func:`use_bundled_fonts`.
UI_FAMILY = "Noto Sans"
#: Its size (points): what desktop environments use at 100 % scale.
UI_POINT_SIZE = 10

_loaded: list[str] = []


def _font_files(module_name: str) -> list[Path]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    root = Path(getattr(module, "ROOT", Path(module.__file__ or ".").parent))
    return sorted(p for p in (root / "files").glob("*") if p.suffix.lower() in (".ttf", ".otf"))


def load_bundled_fonts() -> list[str]:
    """Register the packaged fonts with Qt (once); return the families now available.

    Needs a ``QGuiApplication``. A package that is not installed is skipped
    (logged); the families that loaded are returned.
    """
    if _loaded:
        return list(_loaded)
    if QGuiApplication.instance() is None:
        raise RuntimeError("load_bundled_fonts() needs a QGuiApplication (create it first)")
    for module_name, family in FONT_PACKAGES:
        files = _font_files(module_name)
        if not files:
            logger.warning("font package %s is not installed: %s not loaded", module_name, family)
            continue
        found: set[str] = set()
        for path in files:
            font_id = QFontDatabase.addApplicationFont(str(path))
            if font_id < 0:
                logger.warning("Qt could not load the font file %s", path)
                continue
            found.update(QFontDatabase.applicationFontFamilies(font_id))
        # Not QFontDatabase.families(): a family the system also has is listed there
        # with its foundry ("Roboto Mono [GOOG]"), yet QFont("Roboto Mono") finds it.
        if family in found:
            _loaded.append(family)
    return list(_loaded)


def use_bundled_fonts(app: QGuiApplication) -> bool:
    """Load the packaged fonts and make Noto Sans the application font; ``False`` if missing.

    Also makes Roboto Mono the fixed-pitch font the details dialog asks for.
    """
    families = load_bundled_fonts()
    if UI_FAMILY not in families:
        return False
    app.setFont(QFont(UI_FAMILY, UI_POINT_SIZE))
    return True


def monospace_font() -> QFont:
    """Roboto Mono when it is loaded, else the system's fixed-pitch font."""
    if "Roboto Mono" in _loaded:
        font = QFont("Roboto Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        return font
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
