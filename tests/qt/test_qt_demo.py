"""The demo window's screenshot mode: one real PNG per state and for the banner."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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


def test_the_window_plays_the_story_and_shuts_down_promptly(qtbot):
    lab = demo.DemoLab(timings=demo._story_timings())
    window = demo.DemoWindow(lab, auto=False)
    qtbot.addWidget(window)
    try:
        if demo._story_runner() is None:
            assert not window.play_story()
            return
        assert window.play_story()
        assert not window.network_action.isEnabled()  # the script owns the world now
        qtbot.waitUntil(lambda: window.results.count() >= 3, timeout=5000)
        assert window.results.item(window.results.count() - 1).text().startswith("▶")
        started = time.monotonic()
        window.shutdown()  # stops the story and its workers
        assert time.monotonic() - started < 3
        assert not window.story_running()
    finally:
        window.shutdown()
        lab.close()


def test_the_command_runs_for_the_seconds_asked(tmp_path):
    # A process of its own: QApplication.exec() and quit() stay out of this one.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "connmgr.qt.demo", "--seconds", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15


def test_without_a_display_it_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(demo.QApplication, "instance", staticmethod(lambda: None))
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(demo.sys, "platform", "linux")
    assert demo.main([]) == 2
    assert "--screenshots" in capsys.readouterr().err
