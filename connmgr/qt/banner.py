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

A final failure tells the current truth: it goes away as soon as its origin
is healthy again (a request to it succeeds, or its state returns to online),
or, for a failure of the network itself, as soon as the network is back. With
``recovery_note_ms`` it turns into a short green "Back online" note that hides
by itself; by default it simply hides. So the banner never contradicts the
status widget. When the network has no internet (the monitor's ``LIMITED``)
or a login page is in the way (captive portal), the banner says so in its own
words and colour, and behind a portal offers **Sign in…**, which opens the
portal page in the browser (``QDesktopServices.openUrl``).

When a manager with ``serve_stale`` answers a search from the session's cache
because no live answer could be had (``request_finished`` with outcome
``"stale"`` and its ``stale_age``), the banner says so: "Showing results from
5 minutes ago" (the age in words, growing while it shows), with why and
**Dismiss**. It hides as soon as a live answer from that origin arrives.

Example::

    banner = RetryBanner(mgr)
    banner.try_again_requested.connect(lambda failed: start_search_again(failed.url))
    central_layout.insertWidget(0, banner)
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
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
from connmgr.machine import ConnectionState
from connmgr.qt._text import format_delay, network_kind, redact, technical_details
from connmgr.qt.bridge import (
    NetworkChangedEvent,
    RequestFailedEvent,
    RequestFinishedEvent,
    RetryScheduledEvent,
    SignalBridge,
    StateChangedEvent,
)
from connmgr.qt.details import DetailsDialog
from connmgr.ratelimit import origin_of

__all__ = ["BANNER_COLORS", "BANNER_WORDS", "RetryBanner", "age_words"]

#: (background, border, text) per banner look; the text passes WCAG AA on the background.
BANNER_COLORS: dict[str, tuple[str, str, str]] = {
    "retrying": ("#fff8c5", "#d4a72c", "#1f2328"),
    "failed": ("#ffebe9", "#cf222e", "#1f2328"),
    "offline": ("#f6f8fa", "#57606a", "#1f2328"),
    "limited": ("#e0f4f5", "#1b7c83", "#1f2328"),
    "captive_portal": ("#fff1e5", "#bc4c00", "#1f2328"),
    "recovered": ("#dafbe1", "#1a7f37", "#1f2328"),
    "stale": ("#ddf4ff", "#0969da", "#1f2328"),
}

#: (headline, what to do) for a failure caused by the network itself.
BANNER_WORDS: dict[str, tuple[str, str]] = {
    "offline": (
        "There is no network connection.",
        "Check Wi-Fi or the cable; the app notices by itself when it is back.",
    ),
    "limited": (
        "No internet: connected to a network, but the internet cannot be reached.",
        "The network may need a moment, or its router has no way out.",
    ),
    "captive_portal": (
        "Sign in to the network: a login page is in the way.",
        "Sign in (hotel, airport or guest Wi-Fi), then try again.",
    ),
}

_URL_IN_TEXT = re.compile(r"https?://[^\s'\")]+")

_PROGRESS_STEPS = 1000
# How often a stale answer's age is redrawn: its words change once a minute at most.
_AGE_TICK_MS = 1000


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'} ago"


def age_words(seconds: float | None) -> str:
    """How old a saved answer is, for people: ``"5 minutes ago"``, ``"1 hour ago"``.

    Whole units, rounded down (a 5 min 59 s old answer is "5 minutes ago");
    under a minute is "less than a minute ago"; ``None`` (unknown) is "earlier".
    """
    if seconds is None or not math.isfinite(seconds):  # unknown, or garbage from a cache
        return "earlier"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "less than a minute ago"
    if seconds < 3600:
        return _plural(int(seconds // 60), "minute")
    if seconds < 86400:
        return _plural(int(seconds // 3600), "hour")
    return _plural(int(seconds // 86400), "day")


def _user_message(error: Any) -> str:
    if error is None:
        return "The request failed."
    return str(getattr(error, "user_message", None) or error)


def _is_cancellation(error: Any) -> bool:
    return any(cls.__name__ == "RequestCancelledError" for cls in type(error).__mro__)


def _origin(url: str) -> str:
    """The URL's origin as the manager names it (``scheme://host:port``), or ``""``."""
    try:
        return origin_of(url)
    except (ValueError, TypeError, AttributeError):  # not an absolute URL: no origin
        return ""


def portal_url(monitor: Any) -> str | None:
    """The page to open for signing in: where the portal redirected a probe, or the probe's URL.

    A captive portal answers any plain-HTTP page with its login page, so the
    probe's own URL leads there too.
    """
    results = getattr(monitor, "last_results", ()) or ()
    for result in results:
        if network_kind(getattr(result, "status", None)) != "captive_portal":
            continue
        found = _URL_IN_TEXT.search(str(getattr(result, "detail", "") or ""))
        if found:
            return found.group(0)
        url = getattr(getattr(result, "probe", None), "url", None)
        if isinstance(url, str) and url:
            return url
    for probe in getattr(monitor, "probes", ()) or ():
        url = getattr(probe, "url", None)
        if isinstance(url, str) and url.startswith("http://"):
            return url
    return None


class RetryBanner(QFrame):
    """Retries in progress (with a countdown, Retry now and Cancel) and final failures.

    ``manager`` needs ``retry_now()`` and ``clock`` (and ``snapshot()`` and
    ``monitor`` for the network's words); pass ``bridge`` to share a
    :class:`~connmgr.qt.SignalBridge`. ``tick_ms`` is the countdown's redraw
    period (at most 100 ms); ``recovery_note_ms`` how long "Back online" shows
    once a failure's origin is healthy again (0: hide at once). GUI thread only.

    Example::

        banner = RetryBanner(mgr)
        layout.insertWidget(0, banner)
    """

    #: The user pressed Try again on a final failure; carries the
    #: :class:`~connmgr.qt.RequestFailedEvent` (url, operation, error).
    try_again_requested = Signal(object)
    #: The user dismissed a final failure (Dismiss or Try again).
    dismissed = Signal()
    #: A final failure went away by itself: its origin (or the network) is healthy again.
    recovered = Signal()

    def __init__(
        self,
        manager: Any,
        *,
        bridge: SignalBridge | None = None,
        tick_ms: int = 50,
        recovery_note_ms: int = 0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if isinstance(tick_ms, bool) or not 1 <= tick_ms <= 100:
            raise ValueError(f"tick_ms must be an int from 1 to 100, got {tick_ms!r}")
        if (
            isinstance(recovery_note_ms, bool)
            or not isinstance(recovery_note_ms, int)
            or not 0 <= recovery_note_ms <= 60_000
        ):
            raise ValueError(
                f"recovery_note_ms must be an int from 0 to 60000, got {recovery_note_ms!r}"
            )
        self._manager = manager
        self._clock: Clock = getattr(manager, "clock", None) or SYSTEM_CLOCK
        self.bridge = bridge if bridge is not None else SignalBridge(manager, parent=self)
        self._retrying: dict[int, RetryScheduledEvent] = {}
        self._cancelled: set[int] = set()
        self._failure: RequestFailedEvent | None = None
        self._failure_origin = ""
        self._failure_kind = "failed"
        self._recovered_origin = ""
        self._recovery_ms = recovery_note_ms
        # origin -> (the stale answer's end, the clock time it arrived): ages keep growing.
        self._stale: dict[str, tuple[RequestFinishedEvent, float]] = {}
        monitor = getattr(manager, "monitor", None)
        self._monitor = monitor
        self._network: Any = getattr(monitor, "status", None)
        self._mode = "idle"
        self._look = ""
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
        self.sign_in_button = QPushButton("Sign in…")
        self.sign_in_button.setToolTip("Open the network's login page in your browser")
        self.dismiss_button = QPushButton("Dismiss")
        self.retry_now_button.setToolTip("Stop waiting and send the retry now")
        self.details_button.setToolTip("Show the technical details")
        self.retry_now_button.clicked.connect(self.retry_now)
        self.cancel_button.clicked.connect(self.cancel)
        self.details_button.clicked.connect(self.show_details)
        self.try_again_button.clicked.connect(self.try_again)
        self.sign_in_button.clicked.connect(self.sign_in)
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
            self.sign_in_button,
            self.try_again_button,
            self.details_button,
            self.dismiss_button,
        ):
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)

        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)
        self._recovery_timer = QTimer(self)
        self._recovery_timer.setSingleShot(True)
        self._recovery_timer.timeout.connect(self._end_recovery_note)
        self._age_timer = QTimer(self)
        self._age_timer.setInterval(_AGE_TICK_MS)
        self._age_timer.timeout.connect(self._tick)

        self.bridge.retry_scheduled.connect(self._on_retry)
        self.bridge.state_changed.connect(self._on_state_changed)
        self.bridge.network_changed.connect(self._on_network_changed)
        self.bridge.request_failed.connect(self._on_failed)
        self.bridge.request_finished.connect(self._on_finished)
        # Redraw once per delivered batch, however many requests it carried.
        self.bridge.flushed.connect(self._update)
        self.hide()

    # -- reading -----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``"idle"`` (hidden), ``"retrying"``, ``"failed"``, ``"stale"`` or ``"recovered"``."""
        return self._mode

    @property
    def look(self) -> str:
        """The colours on show: a key of :data:`BANNER_COLORS` (``""`` while hidden)."""
        return self._look

    @property
    def retrying(self) -> dict[int, RetryScheduledEvent]:
        """The requests waiting to retry, by request id (a copy)."""
        return dict(self._retrying)

    @property
    def failure(self) -> RequestFailedEvent | None:
        """The final failure on show, if any."""
        return self._failure

    def stale_age(self) -> float | None:
        """Seconds old the oldest stale answer on show is now (``None``: none, or unknown)."""
        now = self._clock.now()
        ages = [
            event.stale_age + max(0.0, now - arrived)
            for event, arrived in self._stale.values()
            if event.stale_age is not None
        ]
        return max(ages) if ages else None

    @property
    def stale_origins(self) -> tuple[str, ...]:
        """The origins whose last answer came from the cache (until a live one arrives)."""
        return tuple(self._stale)

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
        """Forget the final failure or stale note on show (hides unless retries are pending)."""
        had_failure = self._failure is not None or bool(self._stale)
        self._failure = None
        self._stale.clear()
        self._recovered_origin = ""
        self._recovery_timer.stop()
        self._update()
        if had_failure:
            self.dismissed.emit()

    def portal_url(self) -> str | None:
        """The login page Sign in… opens (from the monitor's probes), if known."""
        return portal_url(self._monitor)

    def sign_in(self) -> bool:
        """Open the network's login page in the browser; ``False`` if none is known."""
        url = self.portal_url()
        if url is None:
            return False
        return bool(QDesktopServices.openUrl(QUrl(url)))

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
        for answer, arrived in self._stale.values():
            age = None if answer.stale_age is None else answer.stale_age + max(0.0, now - arrived)
            lines.append(
                f"request {answer.request_id}: {redact(answer.url)} (operation {answer.operation})"
                f" answered from the cache, saved {age_words(age)}"
                + ("" if age is None else f" ({age:.0f} s)")
            )
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
            self._failure_origin = _origin(event.url) or _origin(
                str(getattr(event.error, "url", "") or "")
            )
            self._recovered_origin = ""
            self._recovery_timer.stop()

    def _on_finished(self, event: RequestFinishedEvent) -> None:
        self._cancelled.discard(event.request_id)
        self._retrying.pop(event.request_id, None)
        if event.stale:
            self._stale[_origin(event.url)] = (event, self._clock.now())
        elif event.succeeded:
            # A live answer: that origin's results on screen are fresh again.
            self._stale.pop(_origin(event.url), None)
        same_origin = not self._failure_origin or _origin(event.url) == self._failure_origin
        if event.succeeded and self._failure is not None and same_origin:
            self._recover()

    def _on_state_changed(self, event: StateChangedEvent) -> None:
        if self._failure is None or event.new is not ConnectionState.ONLINE:
            return
        if not self._failure_origin or event.origin == self._failure_origin:
            self._recover()

    def _on_network_changed(self, event: NetworkChangedEvent) -> None:
        if event.status is not None:
            self._network = event.status
        elif event.online:
            self._network = "online"
        if self._failure is not None and event.online and self._failure_kind != "failed":
            # The network failed the request, and the network is back.
            self._recover()

    def _recover(self) -> None:
        """The failure on show is no longer true: hide it, or say "Back online" briefly."""
        failure, self._failure = self._failure, None
        if failure is None:
            return
        if self._recovery_ms > 0:
            self._recovered_origin = self._failure_origin or "the server"
            self._recovery_timer.start(self._recovery_ms)
        self.recovered.emit()

    def _end_recovery_note(self) -> None:
        self._recovered_origin = ""
        self._update()

    def _reconcile(self) -> None:
        """Never disagree with the status widget: an online origin has no failure on show."""
        if self._failure is None or not self._failure_origin:
            return
        snapshot = getattr(self._manager, "snapshot", None)
        if not callable(snapshot):
            return
        try:
            snap = snapshot(self._failure_origin)
        except Exception:  # a manager that cannot say: keep what is on show
            return
        healthy_network = network_kind(getattr(snap, "network", None)) in ("online", "unknown")
        online = getattr(snap, "state", None) is ConnectionState.ONLINE
        same_origin = getattr(snap, "origin", None) in (None, self._failure_origin)
        if online and healthy_network and same_origin:
            self._recover()

    def _failure_look(self) -> str:
        """``"failed"``, or the network's own look when the network is the cause."""
        network = network_kind(self._network)
        if network in ("captive_portal", "limited", "offline"):
            return network
        error = self._failure.error if self._failure is not None else None
        name = type(error).__name__
        kind = str(getattr(error, "kind", "") or "")
        if kind == "captive_portal" or "Portal" in name:
            return "captive_portal"
        if kind == "offline" or name == "OfflineError":
            return "offline"
        return "failed"

    # -- drawing -----------------------------------------------------------------------

    def _update(self) -> None:
        self._reconcile()
        if self._retrying:
            mode = "retrying"
        elif self._failure is not None:
            mode = "failed"
        elif self._stale:
            mode = "stale"
        elif self._recovered_origin:
            mode = "recovered"
        else:
            mode = "idle"
        if mode == "failed":
            self._failure_kind = self._failure_look()
        look = {"retrying": "retrying", "recovered": "recovered", "stale": "stale", "idle": ""}.get(
            mode, self._failure_kind
        )
        if mode != self._mode or look != self._look:
            self._mode = mode
            self._look = look
            self._restyle()
        if mode == "stale":
            if not self._age_timer.isActive():
                self._age_timer.start()
        else:
            self._age_timer.stop()
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
        stale = self._mode == "stale"
        self.progress.setVisible(retrying)
        self.retry_now_button.setVisible(retrying)
        self.cancel_button.setVisible(retrying)
        self.try_again_button.setVisible(failed)
        self.sign_in_button.setVisible(failed and self._look == "captive_portal")
        self.dismiss_button.setVisible(failed or stale)
        self.details_button.setVisible(retrying or failed or stale)
        if self._look in BANNER_COLORS:
            background, border, text = BANNER_COLORS[self._look]
            self.setStyleSheet(
                f"#connmgrRetryBanner {{ background: {background}; border: 1px solid {border};"
                f" border-radius: 4px; }}"
                f" #connmgrRetryBanner QLabel {{ color: {text}; background: transparent; }}"
            )
        self.setAccessibleName(
            "Request failed"
            if failed
            else "Retrying a request"
            if retrying
            else "Showing saved results"
            if stale
            else "Connection recovered"
        )

    def _tick(self) -> None:
        self._render()

    def _render(self) -> None:
        if self._mode == "retrying":
            self._render_retrying()
        elif self._mode == "failed":
            self._render_failed()
        elif self._mode == "stale":
            self._render_stale()
        elif self._mode == "recovered":
            where = redact(self._recovered_origin)
            self._set_text(self.message_label, "Back online.")
            self._set_text(self.status_label, f"Requests to {where} are going through again.")
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
        words = BANNER_WORDS.get(self._look)
        if words is not None:
            # The network is the cause: its own words, whatever the error said.
            headline, what_to_do = words
            self._set_text(self.message_label, headline)
            self._set_text(self.status_label, f"{gave_up} {what_to_do}")
            return
        self._set_text(self.message_label, _user_message(error))
        self._set_text(self.status_label, f"{gave_up} {suggestion}".strip())

    def _render_stale(self) -> None:
        network = network_kind(self._network)
        if network == "offline":
            why = "There is no network connection, so these were saved earlier."
        elif network == "captive_portal":
            why = "A login page is in the way, so these were saved earlier."
        else:
            why = "The server cannot be reached right now, so these were saved earlier."
        self._set_text(self.message_label, f"Showing results from {age_words(self.stale_age())}")
        self._set_text(
            self.status_label, f"{why} Fresh results replace them as soon as the server answers."
        )

    @staticmethod
    def _set_text(label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)
