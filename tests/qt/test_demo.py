"""The demo window's screenshot mode: one real PNG per state and for the banner."""

from __future__ import annotations

import pytest

from connmgr.qt import demo

EXPECTED = {
    "status-online.png",
    "status-degraded.png",
    "status-rate-limited.png",
    "status-backoff.png",
    "status-offline.png",
    "status-captive-portal.png",
    "banner-retrying.png",
    "banner-several.png",
    "banner-failed.png",
    "details.png",
}


@pytest.mark.slow
def test_screenshots_cover_every_state_and_the_banner(qapp, tmp_path, capsys):
    from PySide6.QtGui import QImage

    assert demo.main(["--screenshots", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == EXPECTED
    assert set(capsys.readouterr().out.split()) == {str(tmp_path / n) for n in EXPECTED}
    for name in EXPECTED:
        image = QImage(str(tmp_path / name))
        assert not image.isNull(), name
        assert image.width() >= 300 and image.height() >= 150, name
        # Not a blank canvas: many distinct colours (text, dot, banner).
        colours = {
            image.pixel(x, y)
            for x in range(0, image.width(), 7)
            for y in range(0, image.height(), 5)
        }
        assert len(colours) > 8, name


def test_the_window_plays_the_story_and_closes_on_time(qapp, capsys):
    import time

    started = time.monotonic()
    assert demo.main(["--seconds", "0.8"]) == 0
    # The story is stopped and its workers cancelled promptly on close.
    assert time.monotonic() - started < 5


def test_without_a_display_it_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(demo.QApplication, "instance", staticmethod(lambda: None))
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(demo.sys, "platform", "linux")
    assert demo.main([]) == 2
    assert "--screenshots" in capsys.readouterr().err
