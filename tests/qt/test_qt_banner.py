"""RetryBanner: countdown, Retry now, Cancel, hide on success, stay on final failure."""

from __future__ import annotations

import pytest
from qt_helpers import in_thread

from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.errors import RequestCancelledError, ServerError
from connmgr.qt.banner import BANNER_COLORS, RetryBanner
from connmgr.qt.colors import contrast_ratio


def server_error() -> ServerError:
    return ServerError(
        "503 Service Unavailable for http://127.0.0.1:8080/search?token=hunter2",
        user_message="The server is having trouble right now.",
        suggestion="Try again in a minute.",
        url="http://127.0.0.1:8080/search?token=hunter2",
        attempts=4,
    )


@pytest.fixture
def banner(qtbot, fake_manager):
    b = RetryBanner(fake_manager)
    qtbot.addWidget(b)
    b.show()  # a parent window would show it; the banner hides itself while idle
    b.hide()
    return b


def schedule(manager, request_id=1, attempt=2, delay=2.4, cancel=None, error=None):
    """Send retry_scheduled from a worker thread; returns the CancelToken."""
    token = cancel or CancelToken()
    in_thread(
        signals.retry_scheduled.send,
        manager,
        request_id=request_id,
        attempt=attempt,
        max_attempts=4,
        delay=delay,
        error=error or server_error(),
        url="http://127.0.0.1:8080/search?token=hunter2",
        operation="search",
        cancel=token,
    )
    return token


def finish(manager, request_id=1, outcome="success"):
    in_thread(signals.request_finished.send, manager, request_id=request_id, outcome=outcome)


def fail(manager, request_id=1, error=None, state=None):
    """A request that gave up: its origin is left unhealthy (backoff unless told otherwise)."""
    from connmgr.machine import ConnectionState

    manager.set_state(state or ConnectionState.BACKOFF)

    def send() -> None:
        signals.request_failed.send(
            manager, request_id=request_id, error=error or server_error(), url="u", operation="o"
        )
        signals.request_finished.send(manager, request_id=request_id, outcome="transient")

    in_thread(send)


def test_hidden_until_a_retry_is_scheduled(banner, fake_manager, qtbot, qt_messages):
    assert not banner.isVisible()
    assert banner.mode == "idle"
    schedule(fake_manager)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    assert banner.mode == "retrying"
    assert banner.message_label.text() == "The server is having trouble right now."
    assert banner.status_label.text() == "Retrying in 2.4 s — attempt 2 of 4"
    assert banner.progress.value() == 1000
    assert banner.retry_now_button.isVisible() and banner.cancel_button.isVisible()
    assert banner.details_button.isVisible()
    assert not banner.try_again_button.isVisible()
    assert qt_messages.warnings() == []


def test_countdown_and_progress_shrink_at_least_ten_times_a_second(
    banner, fake_manager, qtbot, clock
):
    schedule(fake_manager, delay=2.0)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    assert banner.countdown_running()
    assert banner._timer.interval() <= 100
    clock.advance(0.5)
    qtbot.waitUntil(lambda: banner.progress.value() == 750, timeout=1000)
    assert banner.status_label.text() == "Retrying in 1.5 s — attempt 2 of 4"
    clock.advance(1.6)
    qtbot.waitUntil(
        lambda: banner.status_label.text() == "Retrying now — attempt 2 of 4", timeout=1000
    )
    assert banner.progress.value() == 0


def test_retry_now_asks_the_manager(banner, fake_manager, qtbot):
    from PySide6.QtCore import Qt

    schedule(fake_manager, delay=30)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    qtbot.mouseClick(banner.retry_now_button, Qt.MouseButton.LeftButton)
    assert fake_manager.retry_now_calls == 1
    assert banner.status_label.text() == "Retrying now — attempt 2 of 4"


def test_cancel_cancels_that_request_and_hides(banner, fake_manager, qtbot):
    from PySide6.QtCore import Qt

    token = schedule(fake_manager)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    qtbot.mouseClick(banner.cancel_button, Qt.MouseButton.LeftButton)
    assert token.cancelled
    assert not banner.isVisible()
    # The request then fails as cancelled: that is not shown as a failure.
    fail(fake_manager, error=RequestCancelledError("cancelled"))
    qtbot.wait(30)
    assert not banner.isVisible()
    assert banner.failure is None


def test_hides_when_the_request_succeeds(banner, fake_manager, qtbot):
    schedule(fake_manager)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    finish(fake_manager)
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=1000)
    assert banner.mode == "idle"
    assert not banner.countdown_running()


def test_final_failure_stays_until_dismissed_and_offers_try_again(banner, fake_manager, qtbot):
    from PySide6.QtCore import Qt

    schedule(fake_manager, attempt=4)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    fail(fake_manager)
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    assert banner.message_label.text() == "The server is having trouble right now."
    assert banner.status_label.text() == "Gave up after 4 attempts. Try again in a minute."
    assert banner.try_again_button.isVisible() and banner.dismiss_button.isVisible()
    assert not banner.retry_now_button.isVisible()
    assert not banner.progress.isVisible()
    qtbot.wait(50)
    assert banner.isVisible()  # it stays
    with qtbot.waitSignal(banner.try_again_requested, timeout=1000) as again:
        qtbot.mouseClick(banner.try_again_button, Qt.MouseButton.LeftButton)
    assert again.args[0].request_id == 1
    assert not banner.isVisible()


def test_dismiss_hides_a_final_failure(banner, fake_manager, qtbot):
    schedule(fake_manager)
    fail(fake_manager)
    qtbot.waitUntil(lambda: banner.mode == "failed", timeout=1000)
    with qtbot.waitSignal(banner.dismissed, timeout=1000):
        banner.dismiss_button.click()
    assert not banner.isVisible()


def test_a_failure_never_seen_retrying_is_not_shown(banner, fake_manager, qtbot):
    fail(fake_manager, request_id=9)
    qtbot.wait(30)
    assert not banner.isVisible()


def test_several_requests_are_summarised_and_cancelled_together(banner, fake_manager, qtbot, clock):
    tokens = [
        schedule(fake_manager, request_id=i, delay=d) for i, d in ((1, 3.0), (2, 1.2), (3, 5))
    ]
    qtbot.waitUntil(lambda: len(banner.retrying) == 3, timeout=1000)
    assert banner.status_label.text() == "3 requests retrying — next in 1.2 s"
    assert banner.cancel_button.text() == "Cancel all"
    finish(fake_manager, request_id=2)
    qtbot.waitUntil(lambda: len(banner.retrying) == 2, timeout=1000)
    assert banner.status_label.text() == "2 requests retrying — next in 3.0 s"
    banner.cancel_button.click()
    assert [t.cancelled for t in tokens] == [True, False, True]
    assert not banner.isVisible()


def test_details_are_redacted(banner, fake_manager, qtbot):
    schedule(fake_manager)
    qtbot.waitUntil(banner.isVisible, timeout=1000)
    dialog = banner.show_details()
    qtbot.addWidget(dialog)
    assert "ServerError" in dialog.details
    assert "attempt 2 of 4" in dialog.details
    assert "hunter2" not in dialog.details


def test_banner_text_colours_pass_wcag_aa():
    for background, _border, text in BANNER_COLORS.values():
        assert contrast_ratio(text, background) >= 4.5


@pytest.mark.parametrize("bad", [0, 101, True])
def test_tick_is_validated(qapp, fake_manager, bad):
    with pytest.raises(ValueError, match="tick_ms"):
        RetryBanner(fake_manager, tick_ms=bad)
