"""ConnectionStatusWidget: words per state, live countdown, tooltip, details, contrast."""

from __future__ import annotations

import pytest
from qt_helpers import FakeManager, in_thread

from connmgr import signals
from connmgr.errors import RateLimitError
from connmgr.machine import ConnectionState as S
from connmgr.qt.colors import contrast_ratio
from connmgr.qt.status import LIMITED_COLOR, ConnectionStatusWidget


@pytest.fixture
def widget(qtbot, fake_manager):
    w = ConnectionStatusWidget(fake_manager)
    qtbot.addWidget(w)
    return w


def change(manager: FakeManager, state: S, **kw) -> None:
    """Change the stand-in's state and send state_changed from a worker thread."""
    payload = manager.set_state(state, **kw)
    in_thread(signals.state_changed.send, manager, **payload)


@pytest.mark.parametrize(
    ("state", "kw", "words"),
    [
        (S.ONLINE, {}, "Online"),
        (S.DEGRADED, {}, "Unstable connection"),
        (S.RATE_LIMITED, {"resume_in": 12}, "Rate limited — resuming in 12 s"),
        (S.BACKOFF, {"resume_in": 7.2}, "Server trouble — retrying in 8 s"),
        (S.OFFLINE, {}, "Offline"),
    ],
)
def test_each_state_has_its_words_from_a_worker_thread(
    qtbot, widget, fake_manager, qt_messages, state, kw, words
):
    change(fake_manager, S.DEGRADED if state is S.ONLINE else S.ONLINE)
    qtbot.waitUntil(lambda: widget.state is not state, timeout=1000)
    change(fake_manager, state, **kw)
    qtbot.waitUntil(lambda: widget.text() == words, timeout=1000)
    assert widget.state is state
    # Widgets were only ever touched on the GUI thread, and Qt said nothing.
    assert qt_messages.warnings() == []


def test_starts_online(widget):
    assert widget.text() == "Online"
    assert not widget.countdown_running()


def test_captive_portal_asks_to_sign_in(qtbot, widget, fake_manager):
    fake_manager.network = "captive_portal"
    in_thread(signals.state_changed.send, fake_manager, **fake_manager.set_state(S.OFFLINE))
    qtbot.waitUntil(lambda: widget.text() == "Sign in to the network", timeout=1000)
    assert "login page" in widget.toolTip()


def test_the_countdown_ticks_only_while_shown(qtbot, widget, fake_manager, clock):
    change(fake_manager, S.RATE_LIMITED, resume_in=12)
    qtbot.waitUntil(lambda: widget.text() == "Rate limited — resuming in 12 s", timeout=1000)
    assert widget.countdown_running()
    clock.advance(2.5)
    qtbot.waitUntil(lambda: widget.text() == "Rate limited — resuming in 10 s", timeout=1000)
    clock.advance(10)
    qtbot.waitUntil(lambda: widget.text() == "Rate limited — resuming now", timeout=2000)
    change(fake_manager, S.ONLINE)
    qtbot.waitUntil(lambda: widget.text() == "Online", timeout=1000)
    assert not widget.countdown_running()


def test_long_countdowns_read_in_minutes(qtbot, widget, fake_manager):
    change(fake_manager, S.RATE_LIMITED, resume_in=125)
    qtbot.waitUntil(lambda: widget.text() == "Rate limited — resuming in 2 min 5 s", timeout=1000)


def test_tooltip_says_where_since_when_and_the_last_error(qtbot, widget, fake_manager):
    error = RateLimitError(
        "429 Too Many Requests",
        user_message="The server asked us to slow down.",
        url="http://127.0.0.1:8080/search?token=hunter2",
    )
    change(fake_manager, S.RATE_LIMITED, resume_in=5, error=error)
    qtbot.waitUntil(lambda: widget.state is S.RATE_LIMITED, timeout=1000)
    tip = widget.toolTip()
    assert "Server: http://127.0.0.1:8080" in tip
    assert "Since: " in tip
    assert "The server asked us to slow down." in tip
    assert widget.accessibleName() == "Connection status"
    assert widget.accessibleDescription().startswith("Rate limited — resuming in 5 s")


def test_click_opens_redacted_details_with_copy_and_the_statechart(qtbot, widget, fake_manager):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    error = RateLimitError(
        "429 for http://127.0.0.1:8080/search?q=x&token=hunter2",
        user_message="The server asked us to slow down.",
        url="http://user:pw@127.0.0.1:8080/search?q=x&token=hunter2",
        details="GET http://127.0.0.1:8080/search?api_key=hunter2 -> 429",
    )
    change(fake_manager, S.RATE_LIMITED, resume_in=5, error=error)
    qtbot.waitUntil(lambda: widget.state is S.RATE_LIMITED, timeout=1000)
    with qtbot.waitSignal(widget.details_opened, timeout=1000) as opened:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
    dialog = opened.args[0]
    qtbot.addWidget(dialog)
    assert "state: rate_limited" in dialog.details
    assert "RateLimitError" in dialog.details
    assert "hunter2" not in dialog.details
    assert "pw@" not in dialog.details
    assert dialog.statechart_view is not None
    assert dialog.statechart_view.state is S.RATE_LIMITED
    # The change that led here is the edge marked in the drawing.
    assert dialog.statechart_view.last_edge.source == "online"  # type: ignore[union-attr]
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == dialog.copy_text()
    assert dialog.details in dialog.copy_text()
    assert dialog.copy_button.text() == "Copied"


def test_keyboard_opens_details_too(qtbot, widget):
    from PySide6.QtCore import Qt

    with qtbot.waitSignal(widget.details_opened, timeout=1000) as opened:
        qtbot.keyClick(widget, Qt.Key.Key_Space)
    qtbot.addWidget(opened.args[0])


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_state_passes_wcag_contrast(qtbot, fake_manager, dark):
    from PySide6.QtGui import QColor, QPalette

    w = ConnectionStatusWidget(fake_manager)
    qtbot.addWidget(w)
    if dark:
        palette = w.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor("#202124"))
        palette.setColor(QPalette.ColorRole.WindowText, QColor("#e8eaed"))
        w.setPalette(palette)
    seen = set()
    for state in S:
        fake_manager.set_state(state, resume_in=3 if state in (S.RATE_LIMITED, S.BACKOFF) else None)
        w.refresh()
        background = w.background_color()
        assert contrast_ratio(w.color(), background) >= 4.5, (state, w.color(), background)
        assert contrast_ratio(w.dot_color(), background) >= 3.0, (state, w.dot_color())
        seen.add(w.color())
    fake_manager.network = "captive_portal"
    w.refresh()
    assert contrast_ratio(w.color(), w.background_color()) >= 4.5
    fake_manager.network = "limited"
    fake_manager.set_state(S.DEGRADED)
    w.refresh()
    assert w.text() == "No internet"
    assert contrast_ratio(w.color(), w.background_color()) >= 4.5
    assert w.color() not in seen  # its own colour
    assert len(seen) == 5  # the states stay apart by colour too


def test_limited_network_says_no_internet_unless_the_server_answers(qtbot, widget, fake_manager):
    from types import SimpleNamespace

    # The monitor's LIMITED (by name: the enum member may not exist in this version).
    fake_manager.network = SimpleNamespace(name="LIMITED", value="limited")
    change(fake_manager, S.DEGRADED)
    qtbot.waitUntil(lambda: widget.text() == "No internet", timeout=1000)
    assert widget.color() != "#000000"
    assert "internet cannot be reached" in widget.toolTip()
    change(fake_manager, S.ONLINE)  # this server answers all the same: its state is the truth
    qtbot.waitUntil(lambda: widget.text() == "Online", timeout=1000)
    assert "This server answers." in widget.toolTip()
    assert LIMITED_COLOR.startswith("#")


def test_a_manager_without_history_gets_an_empty_timeline(qtbot, widget):
    # The stand-in has snapshot() but no history(): the popup still opens, and says so.
    assert widget.records() == []
    dialog = widget.show_details()
    qtbot.addWidget(dialog)
    assert dialog.timeline_view is not None
    assert dialog.timeline_view.topLevelItem(0).text(0) == "No requests yet"
