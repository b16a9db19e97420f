"""Fonts from pip packages: loaded without any system font, used by the tests and screenshots."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_packaged_fonts_load_and_noto_sans_is_the_app_font(qapp, bundled_fonts):
    from PySide6.QtGui import QFontDatabase, QGuiApplication

    from connmgr.qt.fonts import UI_FAMILY, load_bundled_fonts, monospace_font

    assert {"Noto Sans", "Roboto Mono"} <= set(bundled_fonts)
    assert load_bundled_fonts() == bundled_fonts  # once: a second call loads nothing new
    assert QGuiApplication.font().family() == UI_FAMILY
    assert "Noto Sans" in QFontDatabase.families()
    assert monospace_font().family() == "Roboto Mono"


def test_glyphs_are_drawn_not_boxes(qapp, bundled_fonts):
    """Without a font every glyph is the same box: two letters would draw alike."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    def draw(text: str) -> QImage:
        image = QImage(40, 40, QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        painter.setFont(QFont("Noto Sans", 20))
        painter.setPen(QColor("black"))
        painter.drawText(image.rect(), Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
        return image

    assert draw("O") != draw("I")
    assert draw("O") != draw("0")


def test_make_test_and_make_screenshots_need_no_apt_get():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "apt-get" not in makefile
    assert "apt " not in makefile
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "fontpkg-noto-sans" in pyproject


def test_loading_needs_an_application():
    import subprocess
    import sys

    code = (
        "import connmgr.qt.fonts as f\n"
        "try:\n    f.load_bundled_fonts()\nexcept RuntimeError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "needs a QGuiApplication" in done.stdout


def test_a_machine_without_any_system_font_still_draws_text(tmp_path):
    """Hide every system font from fontconfig: only the packaged fonts can draw letters."""
    import os
    import subprocess
    import sys

    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
        f"<fontconfig><cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>\n",
        encoding="utf-8",
    )
    code = """
import connmgr.qt
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import QApplication
app = QApplication([])
def draw(text, family):
    img = QImage(40, 40, QImage.Format.Format_RGB32); img.fill(QColor("white"))
    p = QPainter(img); p.setFont(QFont(family, 20)); p.setPen(QColor("black"))
    p.drawText(img.rect(), Qt.AlignmentFlag.AlignCenter, text); p.end()
    return img
print("before", draw("O", "Sans") == draw("I", "Sans"))
from connmgr.qt.fonts import use_bundled_fonts
print("loaded", use_bundled_fonts(app))
print("after", draw("O", "Noto Sans") == draw("I", "Noto Sans"))
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FONTCONFIG_FILE": str(conf)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    assert "before True" in done.stdout  # no font: every letter draws alike
    assert "loaded True" in done.stdout
    assert "after False" in done.stdout  # the packaged font draws real letters
