"""A status-bar widget that shows the connection state, with a live countdown.

:class:`ConnectionStatusWidget` is a coloured dot and a short label:
"Online", "Unstable connection", "Rate limited — resuming in 12 s",
"Server trouble — retrying in 8 s", "Offline", or "Sign in to the network"
behind a captive portal. It redraws from ``manager.snapshot()`` whenever the
:class:`~connmgr.qt.SignalBridge` delivers a batch, and ticks a timer only
while a countdown is on screen. The tooltip says which server, since when, and
the last error in plain words; a click (or Enter / Space when focused) opens a
:class:`DetailsDialog` with redacted technical details, a Copy button and the
statechart drawn with the current state filled, and the last requests step by step.

Given an :class:`~connmgr.outbox.Outbox` (``outbox=`` or :meth:`watch_outbox`),
it also says "3 changes waiting to be sent" next to the state (nothing when
none wait), kept current by the outbox's ``outbox_changed`` signal through the
bridge, and the details list every waiting entry: method, redacted URL,
attempts and the last error.

Example::

    status = ConnectionStatusWidget(mgr, outbox=outbox)
    window.statusBar().addPermanentWidget(status)
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from connmgr.clock import SYSTEM_CLOCK, Clock
from connmgr.machine import STATE_EFFECTS, ConnectionState
from connmgr.qt._text import (
    countdown_due,
    describe_error,
    format_since,
    network_kind,
    redact,
    status_line,
    technical_details,
)
from connmgr.qt.bridge import OutboxChangedEvent, SignalBridge, StateChangedEvent
from connmgr.qt.colors import AA_GRAPHIC, AA_TEXT, readable_color
from connmgr.qt.details import DetailsDialog
from connmgr.timeline import RequestTimeline

__all__ = [
    "CAPTIVE_PORTAL_COLOR",
    "LIMITED_COLOR",
    "ConnectionStatusWidget",
    "DetailsDialog",
    "waiting_words",
]

logger = logging.getLogger(__name__)

#: The colour of "Sign in to the network" (an orange apart from the five states).
CAPTIVE_PORTAL_COLOR = "#bc4c00"
#: The colour of "No internet" (a network without validated internet: LIMITED).
LIMITED_COLOR = "#1b7c83"

# While a countdown shows: four ticks a second keep the whole seconds honest.
_TICK_MS = 250
# Once the countdown has run out, look again once a second until the state moves.
_OVERDUE_TICK_MS = 1000
# The colour of the outbox words: secondary text, the state stays the headline.
_OUTBOX_COLOR = "#57606a"


def waiting_words(count: int) -> str:
    """``"3 changes waiting to be sent"``, ``"1 change waiting to be sent"``; ``""`` for none."""
    if count <= 0:
        return ""
    return f"{count} change{'' if count == 1 else 's'} waiting to be sent"


def _entry_line(entry: Any) -> str:
    """One waiting entry for the details: id, method, URL, attempts, last error."""
    attempts = int(getattr(entry, "attempts", 0) or 0)
    tries = (
        "not tried yet" if attempts == 0 else f"{attempts} attempt{'' if attempts == 1 else 's'}"
    )
    line = f"  #{entry.id} {entry.method} {redact(str(entry.url))} — {tries}"
    last_error = getattr(entry, "last_error", None)
    if last_error:
        line += f"; last error: {redact(str(last_error))}"
    return line


class _Dot(QWidget):
    """A filled circle in the state's colour."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(12, 12)
        self._color = QColor("#57606a")

    def color(self) -> str:
        return self._color.name()

    def set_color(self, color: str) -> None:
        if color != self._color.name():
            self._color = QColor(color)
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(self._color)
        painter.setPen(QPen(self._color.darker(130), 1))
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()


class ConnectionStatusWidget(QFrame):
    """A coloured dot and a plain-words label for a :class:`~connmgr.ConnectionManager`.

    ``manager`` needs ``snapshot(url=None)`` and ``clock`` (and ``monitor``,
    for network changes, and ``history()`` for the details popup's request
    timeline: the manager's ``history_size=`` decides how many requests it
    shows); ``url`` picks an origin (default: the manager's base origin, or
    the worst one). Pass ``bridge`` to share one
    :class:`~connmgr.qt.SignalBridge` between widgets. GUI thread only.

    Example::

        window.statusBar().addPermanentWidget(ConnectionStatusWidget(mgr))
    """

    #: Emitted (with the dialog) each time the details popup opens.
    details_opened = Signal(object)

    def __init__(
        self,
        manager: Any,
        *,
        url: str | None = None,
        bridge: SignalBridge | None = None,
        outbox: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._manager = manager
        # id(outbox) -> [outbox, pending count]: the counts the signals last said.
        self._outboxes: dict[int, list[Any]] = {}
        self._url = url
        self._clock: Clock = getattr(manager, "clock", None) or SYSTEM_CLOCK
        self.bridge = bridge if bridge is not None else SignalBridge(manager, parent=self)
        self._last_change: StateChangedEvent | None = None
        self._snapshot: Any = None
        self._due: float | None = None
        self._dialog: DetailsDialog | None = None
        self._dot_color = STATE_EFFECTS[ConnectionState.OFFLINE].color

        self.dot = _Dot(self)
        self.label = QLabel(self)
        self.outbox_label = QLabel(self)
        self.outbox_label.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(6)
        layout.addWidget(self.dot)
        layout.addWidget(self.label)
        # A margin, not a spacer: while hidden, the outbox words take no room at all.
        self.outbox_label.setContentsMargins(8, 0, 0, 0)
        layout.addWidget(self.outbox_label)

        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setAccessibleName("Connection status")

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

        self.bridge.state_changed.connect(self._on_state_changed)
        self.bridge.outbox_changed.connect(self._on_outbox_changed)
        self.bridge.flushed.connect(self.refresh)
        if outbox is not None:
            self.watch_outbox(outbox)
        self.refresh()

    # -- reading -----------------------------------------------------------------------

    @property
    def snapshot(self) -> Any:
        """The ``ConnectionSnapshot`` shown now."""
        return self._snapshot

    @property
    def state(self) -> ConnectionState:
        """The state shown now."""
        return self._snapshot.state  # type: ignore[no-any-return]

    def text(self) -> str:
        """The label's words, e.g. ``"Rate limited — resuming in 12 s"``."""
        return self.label.text()

    def color(self) -> str:
        """The label's colour as shown (``"#rrggbb"``, after the contrast nudge)."""
        return self.label.palette().color(QPalette.ColorRole.WindowText).name()

    def dot_color(self) -> str:
        """The dot's colour as shown."""
        return self._dot_color

    def background_color(self) -> str:
        """The colour the label and dot are drawn on."""
        return self.palette().color(QPalette.ColorRole.Window).name()

    def countdown_running(self) -> bool:
        """Whether the countdown timer is ticking."""
        return self._timer.isActive()

    @property
    def pending_changes(self) -> int:
        """Changes waiting to be sent, over every watched outbox."""
        return sum(int(count) for _, count in self._outboxes.values())

    def outbox_text(self) -> str:
        """The outbox words on show: ``"3 changes waiting to be sent"``, or ``""``."""
        return self.outbox_label.text() if self.outbox_label.isVisibleTo(self) else ""

    def waiting_entries(self) -> list[Any]:
        """Every watched outbox's waiting entries (``outbox.pending()``), oldest first per outbox.

        A closed outbox has none to show.
        """
        entries: list[Any] = []
        for outbox, _ in self._outboxes.values():
            try:
                entries.extend(outbox.pending())
            except Exception:  # closed (OutboxClosedError) or its file failed: nothing to list
                logger.debug("the outbox could not list its entries", exc_info=True)
        return entries

    @property
    def last_change(self) -> StateChangedEvent | None:
        """The last state change seen for the origin shown (marked in the statechart)."""
        return self._last_change

    def records(self) -> list[RequestTimeline]:
        """The request timeline for the details popup (oldest first).

        ``manager.history()``: the frozen records the manager's request loop
        keeps; none for a manager-like object without ``history()``.
        """
        history = getattr(self._manager, "history", None)
        return list(history()) if callable(history) else []

    # -- updating ----------------------------------------------------------------------

    def watch_outbox(self, outbox: Any) -> None:
        """Show ``outbox``'s waiting changes too (GUI thread; idempotent).

        ``outbox`` needs ``pending_count`` and ``pending()`` (an
        :class:`~connmgr.outbox.Outbox`); its ``outbox_changed`` signals keep
        the count current.
        """
        if not hasattr(outbox, "pending_count") or not callable(getattr(outbox, "pending", None)):
            raise TypeError(f"outbox must be an Outbox, got {type(outbox).__name__}")
        if id(outbox) in self._outboxes:
            return
        self.bridge.watch_outbox(outbox)
        self._outboxes[id(outbox)] = [outbox, int(outbox.pending_count)]
        if self._snapshot is not None:  # from __init__, the first refresh() draws it
            self._render()

    def _on_outbox_changed(self, event: OutboxChangedEvent) -> None:
        known = self._outboxes.get(id(event.outbox))
        if known is not None and known[0] is event.outbox:
            known[1] = max(0, event.pending)

    def _on_state_changed(self, event: StateChangedEvent) -> None:
        origin = getattr(self._snapshot, "origin", None)
        if origin is None or event.origin == origin:
            self._last_change = event

    def refresh(self) -> None:
        """Take a new snapshot from the manager and redraw."""
        self._snapshot = self._manager.snapshot(self._url)
        self._due = countdown_due(self._snapshot)
        self._render()

    def _tick(self) -> None:
        if self._due is not None and self._clock.now() >= self._due:
            # Past due: nothing may have told the machine yet (the clock moves it
            # only when asked). state_for() applies the clock and sends
            # state_changed if the pause is over; the snapshot shows the result.
            origin = getattr(self._snapshot, "origin", None)
            state_for = getattr(self._manager, "state_for", None)
            if origin and callable(state_for):
                state_for(origin)
            self.refresh()
        else:
            self._render()

    def _render(self) -> None:
        snap = self._snapshot
        now = self._clock.now()
        text = status_line(snap, now)
        if text != self.label.text():
            self.label.setText(text)
        network = network_kind(getattr(snap, "network", None))
        captive = network == "captive_portal"
        if captive:
            base = CAPTIVE_PORTAL_COLOR
        elif network == "limited" and snap.state is not ConnectionState.ONLINE:
            base = LIMITED_COLOR
        else:
            base = STATE_EFFECTS[snap.state].color
        background = self.background_color()
        text_color = readable_color(base, background, AA_TEXT)
        self._dot_color = readable_color(base, background, AA_GRAPHIC)
        self.dot.set_color(self._dot_color)
        palette = self.label.palette()
        if palette.color(QPalette.ColorRole.WindowText).name() != text_color:
            palette.setColor(QPalette.ColorRole.WindowText, QColor(text_color))
            self.label.setPalette(palette)
        tooltip = self._tooltip(snap, now)
        waiting = waiting_words(self.pending_changes)
        if waiting != self.outbox_label.text():
            self.outbox_label.setText(waiting)
        self.outbox_label.setVisible(bool(waiting))
        secondary = readable_color(_OUTBOX_COLOR, background, AA_TEXT)
        outbox_palette = self.outbox_label.palette()
        if outbox_palette.color(QPalette.ColorRole.WindowText).name() != secondary:
            outbox_palette.setColor(QPalette.ColorRole.WindowText, QColor(secondary))
            self.outbox_label.setPalette(outbox_palette)
        self.setToolTip(tooltip)
        shown = f"{text}. {waiting}" if waiting else text
        self.setAccessibleDescription(f"{shown}. {tooltip}".replace("\n", ". "))
        self._schedule(now, captive)

    def _schedule(self, now: float, captive: bool) -> None:
        if self._due is None or captive:
            self._timer.stop()
            return
        interval = _TICK_MS if now < self._due else _OVERDUE_TICK_MS
        if not self._timer.isActive() or self._timer.interval() != interval:
            self._timer.start(interval)

    def _tooltip(self, snap: Any, now: float) -> str:
        lines = []
        if snap.origin:
            lines.append(f"Server: {redact(snap.origin)}")
        lines.append(f"Since: {format_since(snap.since, now)}")
        if snap.last_error is not None:
            lines.append(f"Last error: {describe_error(snap.last_error)}")
        waiting = waiting_words(self.pending_changes)
        if waiting:
            lines.append(
                f"{waiting[0].upper()}{waiting[1:]}: they go out when the server can be reached."
            )
        network = network_kind(getattr(snap, "network", None))
        if network == "captive_portal":
            lines.append("A login page is in the way: open a browser to sign in.")
        elif network == "limited":
            lines.append(
                "Connected to a network, but the internet cannot be reached."
                + (" This server answers." if snap.state is ConnectionState.ONLINE else "")
            )
        lines.append("Click for details.")
        return "\n".join(lines)

    # -- details -----------------------------------------------------------------------

    def details_text(self) -> str:
        """The redacted technical details the popup shows and copies.

        With an outbox: its waiting entries, one a line (method, redacted URL,
        attempts, last error).
        """
        text = technical_details(self._snapshot, self._clock.now())
        if not self._outboxes:
            return text
        entries = self.waiting_entries()
        lines = ["", f"outbox: {waiting_words(len(entries)) or 'nothing waiting to be sent'}"]
        lines += [_entry_line(entry) for entry in entries]
        return text + "\n".join(lines) + "\n"

    def show_details(self) -> DetailsDialog:
        """Open (or re-open) the details popup; returns it."""
        self.refresh()
        if self._dialog is not None:
            self._dialog.close()
            self._dialog.deleteLater()
        change = self._last_change
        self._dialog = DetailsDialog(
            "Connection details",
            self.details_text(),
            state=self._snapshot.state,
            last_change=(change.old, change.new) if change is not None else None,
            timeline=self.records(),
            outbox=self.waiting_entries() if self._outboxes else None,
            parent=self.window(),
        )
        self._dialog.show()
        self.details_opened.emit(self._dialog)
        return self._dialog

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """A left click opens the details."""
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.show_details()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        """Enter or Space opens the details (keyboard users)."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.show_details()
            event.accept()
            return
        super().keyPressEvent(event)
