"""python -m connmgr.qt.screenshots: every image cropped to its widget, at 1:1, not blank."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def shots(tmp_path_factory, qapp):
    from connmgr.qt.screenshots import take_screenshots

    out = tmp_path_factory.mktemp("images")
    return {path.name: path for path in take_screenshots(out)}


def image(path):
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull(), path
    return img


def colours(img) -> int:
    seen = set()
    for y in range(0, img.height(), max(1, img.height() // 20)):
        for x in range(0, img.width(), max(1, img.width() // 60)):
            seen.add(img.pixel(x, y))
    return len(seen)


@pytest.mark.slow
def test_every_image_is_written(shots):
    names = set(shots)
    for state in ("online", "degraded", "rate-limited", "backoff", "offline", "captive-portal"):
        assert f"status-{state}.png" in names
    for mode in ("retrying", "several", "failed", "offline", "limited", "captive-portal"):
        assert f"banner-{mode}.png" in names
    assert {"status-limited.png", "banner-recovered.png", "statechart.png", "details.png"} <= names
    assert {"status-outbox.png", "banner-stale.png", "details-outbox.png"} <= names


@pytest.mark.slow
def test_the_outbox_details_image_is_the_dialog_at_its_size(shots):
    img = image(shots["details-outbox.png"])
    assert (img.width(), img.height()) == (900, 720)
    assert colours(img) > 4


@pytest.mark.slow
def test_status_images_are_cropped_to_the_widget(shots):
    for name, path in shots.items():
        if name.startswith("status-"):
            img = image(path)
            # The widget and a 4 px strip around it, not a 760x360 window.
            assert 60 <= img.width() <= 320 and 18 <= img.height() <= 40, (name, img.size())
            assert colours(img) > 3, name  # words drawn, not an empty strip


@pytest.mark.slow
def test_banner_images_are_the_banner_at_1_to_1(shots):
    from connmgr.qt.screenshots import BANNER_WIDTH

    for name, path in shots.items():
        if name.startswith("banner-"):
            img = image(path)
            assert img.width() == BANNER_WIDTH, name
            assert 40 <= img.height() <= 140, (name, img.height())
            assert img.devicePixelRatio() == 1.0
            assert colours(img) > 4, name


@pytest.mark.slow
def test_the_details_image_is_the_dialog(shots):
    img = image(shots["details.png"])
    assert (img.width(), img.height()) == (1180, 940)
    drawing = image(shots["statechart.png"])
    from connmgr.qt.statechart_view import StatechartView

    hint = StatechartView().sizeHint()
    assert (drawing.width(), drawing.height()) == (hint.width(), hint.height())
