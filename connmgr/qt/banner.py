"""A banner that shows retries as they happen, and the error when they run out.

:class:`RetryBanner` stays hidden until a retry is scheduled. Then it shows the
error in plain words, "Retrying in 2.4 s — attempt 2 of 4" and a progress bar
that shrinks toward the retry (redrawn 20 times a second), with **Retry now**
(:meth:`ConnectionManager.retry_now`), **Cancel** (the request's
:class:`~connmgr.CancelToken`) and **Details**. It hides when the request
succeeds. When the retries run out it shows the final error with **Try
again** (the :attr:`RetryBanner.try_again_requested` signal, for the app to
re-issue the request) and **Dismiss**, and stays until one is pressed.

Several requests retrying at once share one banner: "3 requests retrying —
next in 1.2 s"; Cancel then cancels all of them.

Only requests the banner saw retrying are reported when they fail; a request
that fails at once (a 404, or fail-fast while offline) is the caller's to show.

Example::

    banner = RetryBanner(mgr)
    banner.try_again_requested.connect(lambda failed: start_search_again(failed.url))
    central_layout.insertWidget(0, banner)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from connmgr.clock import SYSTEM_CLOCK, Clock
from connmgr.qt._text import format_delay, redact, technical_details
from connmgr.qt.bridge import (
    RequestFailedEvent,
    RequestFinishedEvent,
    RetryScheduledEvent,
    SignalBridge,
)
from connmgr.qt.status import DetailsDialog

__all__ = ["BANNER_COLORS", "RetryBanner"]

#: (background, border, text) per banner mode; the text passes WCAG AA on the background.
BANNER_COLORS: dict[str, tuple[str, str, str]] = {
    "retrying": ("#fff8c5", "#d4a72c", "#1f2328"),
    "failed": ("#ffebe9", "#cf222e", "#1f2328"),
}

_PROGRESS_STEPS = 1000


def _user_message(error: Any) -> str:
    if error is None:
        return "The request failed."
    return str(getattr(error, "user_message", None) or error)


def _is_cancellation(error: Any) -> bool:
    return any(cls.__name__ == "RequestCancelledError" for cls in type(error).__mro__)


class RetryBanner(QFrame):
    """Retries in progress (with a countdown, Retry now and Cancel) and final failures.

    ``manager`` needs ``retry_now()`` and ``clock``; pass ``bridge`` to share a
    :class:`~connmgr.qt.SignalBridge`. ``tick_ms`` is the countdown's redraw
    period (at most 100 ms). GUI thread only.

    Example::

        banner = RetryBanner(mgr)
        layout.insertWidget(0, banner)
    """

    #: The user pressed Try again on a final failure; carries the
    #: :class:`~connmgr.qt.RequestFailedEvent` (url, operation, error).
    try_again_requested = Signal(object)
    #: The user dismissed a final failure (Dismiss or Try again).
    dismissed = Signal()

    def __init__(
        self,
        manager: Any,
        *,
        bridge: SignalBridge | None = None,
        tick_ms: int = 50,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if isinstance(tick_ms, bool) or not 1 <= tick_ms <= 100:
            raise ValueError(f"tick_ms must be an int from 1 to 100, got {tick_ms!r}")
        self._manager = manager
        self._clock: Clock = getattr(manager, "clock", None) or SYSTEM_CLOCK
        self.bridge = bridge if bridge is not None else SignalBridge(manager, parent=self)
        self._retrying: dict[int, RetryScheduledEvent] = {}
        self._cancelled: set[int] = set()
        self._failure: RequestFailedEvent | None = None
        self._mode = "idle"
        self._dialog: DetailsDialog | None = None

        self.setObjectName("connmgrRetryBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        font = self.message_label.font()
        font.setBold(True)
        self.message_label.setFont(font)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, _PROGRESS_STEPS)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.setAccessibleName("Time until the next retry")

        self.retry_now_button = QPushButton("Retry now")
        self.cancel_button = QPushButton("Cancel")
        self.details_button = QPushButton("Details")
        self.try_again_button = QPushButton("Try again")
        self.dismiss_button = QPushButton("Dismiss")
        self.retry_now_button.setToolTip("Stop waiting and send the retry now")
        self.details_button.setToolTip("Show the technical details")
        self.retry_now_button.clicked.connect(self.retry_now)
        self.cancel_button.clicked.connect(self.cancel)
        self.details_button.clicked.connect(self.show_details)
        self.try_again_button.clicked.connect(self.try_again)
        self.dismiss_button.clicked.connect(self.dismiss)

        text_column = QVBoxLayout()
        text_column.setSpacing(2)
        text_column.addWidget(self.message_label)
        text_column.addWidget(self.status_label)
        text_column.addWidget(self.progress)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 6)
        row.addLayout(text_column, 1)
        for button in (
            self.retry_now_button,
            self.cancel_button,
            self.try_again_button,
            self.details_button,
            self.dismiss_button,
        ):
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)

        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)

        self.bridge.retry_scheduled.connect(self._on_retry)
        self.bridge.request_failed.connect(self._on_failed)
        self.bridge.request_finished.connect(self._on_finished)
        # Redraw once per delivered batch, however many requests it carried.
        self.bridge.flushed.connect(self._update)
        self.hide()

    # -- reading -----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"idle"`` (hidden), ``"retrying"`` or ``"failed"``."""
        return self._mode

    @property
    def retrying(self) -> dict[int, RetryScheduledEvent]:
        """The requests waiting to retry, by request id (a copy)."""
        return dict(self._retrying)

    @property
    def failure(self) -> RequestFailedEvent | None:
        """The final failure on show, if any."""
        return self._failure

    def text(self) -> str:
        """The message and the status line, e.g. "… Retrying in 2.4 s — attempt 2 of 4"."""
        return f"{self.message_label.text()}\n{self.status_label.text()}"

    def countdown_running(self) -> bool:
        """Whether the countdown timer is ticking."""
        return self._timer.isActive()

    # -- actions -----------------------------------------------------------------------

    def retry_now(self) -> None:
        """Cut every retry wait short (``manager.retry_now()``)."""
        self._manager.retry_now()
        now = self._clock.now()
        self._retrying = {
            k: replace(e, due_at=min(e.due_at, now)) for k, e in self._retrying.items()
        }
        self._render()

    def cancel(self) -> None:
        """Cancel every request on show through its CancelToken, and hide them."""
        for request_id, event in self._retrying.items():
            self._cancelled.add(request_id)
            if event.cancel is not None:
                event.cancel.cancel("cancelled from the retry banner")
        self._retrying.clear()
        self._update()

    def try_again(self) -> None:
        """Emit :attr:`try_again_requested` with the failure, then dismiss it."""
        failure = self._failure
        self.dismiss()
        if failure is not None:
            self.try_again_requested.emit(failure)

    def dismiss(self) -> None:
        """Forget the final failure on show (the banner hides unless retries are pending)."""
        had_failure = self._failure is not None
        self._failure = None
        self._update()
        if had_failure:
            self.dismissed.emit()

    def details_text(self) -> str:
        """Redacted technical details of what the banner shows."""
        now = self._clock.now()
        lines: list[str] = []
        errors: list[Any] = []
        for event in self._retrying.values():
            lines.append(
                f"request {event.request_id}: {redact(event.url)} (operation {event.operation})"
                f" — attempt {event.attempt} of {event.max_attempts}"
                f" in {format_delay(event.due_at - now)}"
            )
            if event.error is not None:
                errors.append(event.error)
        if self._failure is not None:
            lines.append(
                f"request {self._failure.request_id} failed: {redact(self._failure.url)}"
                f" (operation {self._failure.operation})"
            )
            if self._failure.error is not None:
                errors.append(self._failure.error)
        header = "\n".join(lines)
        return f"{header}\n\n{technical_details(None, now, extra_errors=errors)}"

    def show_details(self) -> DetailsDialog:
        """Open the details popup (redacted, with Copy); returns it."""
        if self._dialog is not None:
            self._dialog.close()
            self._dialog.deleteLater()
        self._dialog = DetailsDialog(
            "Request details", self.details_text(), show_statechart=False, parent=self.window()
        )
        self._dialog.show()
        return self._dialog

    # -- signals -----------------------------------------------------------------------

    def _on_retry(self, event: RetryScheduledEvent) -> None:
        if event.request_id in self._cancelled:
            return
        self._retrying[event.request_id] = event

    def _on_failed(self, event: RequestFailedEvent) -> None:
        was_retrying = self._retrying.pop(event.request_id, None) is not None
        cancelled = event.request_id in self._cancelled or _is_cancellation(event.error)
        if was_retrying and not cancelled:
            self._failure = event

    def _on_finished(self, event: RequestFinishedEvent) -> None:
        self._cancelled.discard(event.request_id)
        self._retrying.pop(event.request_id, None)

    # -- drawing -----------------------------------------------------------------------

    def _update(self) -> None:
        mode = "retrying" if self._retrying else "failed" if self._failure else "idle"
        if mode != self._mode:
            self._mode = mode
            self._restyle()
        if mode == "idle":
            self._timer.stop()
            self.hide()
            return
        if mode == "retrying":
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()
        self._render()
        self.show()

    def _restyle(self) -> None:
        retrying = self._mode == "retrying"
        failed = self._mode == "failed"
        self.progress.setVisible(retrying)
        self.retry_now_button.setVisible(retrying)
        self.cancel_button.setVisible(retrying)
        self.try_again_button.setVisible(failed)
        self.dismiss_button.setVisible(failed)
        self.details_button.setVisible(retrying or failed)
        if self._mode in BANNER_COLORS:
            background, border, text = BANNER_COLORS[self._mode]
            self.setStyleSheet(
                f"#connmgrRetryBanner {{ background: {background}; border: 1px solid {border};"
                f" border-radius: 4px; }}"
                f" #connmgrRetryBanner QLabel {{ color: {text}; background: transparent; }}"
            )
        self.setAccessibleName("Request failed" if failed else "Retrying a request")

    def _tick(self) -> None:
        self._render()

    def _render(self) -> None:
        if self._mode == "retrying":
            self._render_retrying()
        elif self._mode == "failed":
            self._render_failed()
        self.setAccessibleDescription(
            f"{self.message_label.text()} {self.status_label.text()}".strip()
        )

    def _render_retrying(self) -> None:
        now = self._clock.now()
        soonest = min(self._retrying.values(), key=lambda e: e.due_at)
        remaining = soonest.due_at - now
        count = len(self._retrying)
        if count == 1:
            attempt = f"attempt {soonest.attempt} of {soonest.max_attempts}"
            when = f"in {format_delay(remaining)}" if remaining > 0 else "now"
            status = f"Retrying {when} — {attempt}"
        else:
            when = f"next in {format_delay(remaining)}" if remaining > 0 else "retrying now"
            status = f"{count} requests retrying — {when}"
        self._set_text(self.message_label, _user_message(soonest.error))
        self._set_text(self.status_label, status)
        self.cancel_button.setText("Cancel" if count == 1 else "Cancel all")
        self.cancel_button.setToolTip(
            "Stop retrying this request" if count == 1 else f"Stop retrying these {count} requests"
        )
        fraction = remaining / soonest.delay if soonest.delay > 0 else 0.0
        self.progress.setValue(round(_PROGRESS_STEPS * min(1.0, max(0.0, fraction))))

    def _render_failed(self) -> None:
        failure = self._failure
        assert failure is not None
        error = failure.error
        attempts = getattr(error, "attempts", 0) or 0
        suggestion = getattr(error, "suggestion", None) or ""
        gave_up = f"Gave up after {attempts} attempts." if attempts else "The request failed."
        self._set_text(self.message_label, _user_message(error))
        self._set_text(self.status_label, f"{gave_up} {suggestion}".strip())

    @staticmethod
    def _set_text(label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)
