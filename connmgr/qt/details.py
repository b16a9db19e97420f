"""The details popup: the statechart drawn, the last requests step by step, the technical text.

:class:`DetailsDialog` answers "why did my search wait 37 s?": at the top the
statechart (:class:`~connmgr.qt.StatechartView`) with the current state filled
and the transition just taken marked; below it, the last requests from
:meth:`ConnectionManager.history() <connmgr.ConnectionManager.history>`
(newest first, each with its waits, attempts and retries and their causes),
and the redacted technical details with **Copy** for a bug report. Given an
outbox's waiting entries, a "Waiting to be sent" tab lists them: method,
redacted URL, attempts and the last error.

Example::

    DetailsDialog("Connection details", text, state=ConnectionState.BACKOFF,
                  timeline=mgr.history()).show()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from connmgr.errors import redact_url
from connmgr.machine import ConnectionState
from connmgr.qt._text import redact
from connmgr.qt.fonts import monospace_font
from connmgr.qt.statechart_view import StatechartView
from connmgr.timeline import RequestTimeline, TimelineStep, format_duration

__all__ = ["DetailsDialog", "timeline_text"]

#: Requests whose steps are shown unfolded when the dialog opens (the newest).
_EXPANDED = 3
# Where a request row keeps its record's index (its steps are made on unfold).
_RECORD_ROLE = Qt.ItemDataRole.UserRole


def _summary(record: RequestTimeline) -> str:
    """The record's one line, its URL redacted (the URL is the one place a secret can be)."""
    return record.summary.replace(record.url, redact_url(record.url))


def _shown(text: str) -> str:
    # Only a URL can carry a credential here (the steps' other words are ours), and
    # redacting every step would cost most of the dialog's opening time.
    return redact(text) if "://" in text else text


def timeline_text(records: Sequence[RequestTimeline]) -> str:
    """The records as plain text (newest first), as Copy puts them on the clipboard."""
    lines: list[str] = []
    for record in reversed(records):
        lines.append(_summary(record))
        lines += [f"  {_shown(step.text)}" for step in record.steps]
    return "\n".join(lines)


def _result(record: RequestTimeline) -> str:
    """The Result column: a status such as ``"200"``, or running/cancelled/not sent/failed."""
    if record.running:
        return "running"
    if record.outcome in ("success", "slow"):
        return str(record.status) if record.status is not None else "done"
    return {"cancelled": "cancelled", "gated": "not sent"}.get(record.outcome, "failed")


def _step_item(step: TimelineStep) -> QTreeWidgetItem:
    took = format_duration(step.duration) if step.duration else ""
    return QTreeWidgetItem([_shown(step.text), "", took])


class DetailsDialog(QDialog):
    """Technical details (already redacted) with Copy; the statechart; the request timeline.

    ``state`` is filled in the statechart and ``last_change`` (old, new)
    marked; ``timeline`` is a sequence of
    :class:`~connmgr.timeline.RequestTimeline` (oldest first, as
    :meth:`ConnectionManager.history() <connmgr.ConnectionManager.history>`
    returns them).
    ``show_statechart=False`` leaves the drawing and the timeline out (the
    banner's request details).
    """

    def __init__(
        self,
        title: str,
        details: str,
        *,
        state: ConnectionState | None = None,
        last_change: tuple[ConnectionState, ConnectionState] | None = None,
        timeline: Sequence[RequestTimeline] = (),
        show_statechart: bool = True,
        outbox: Sequence[Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self._details = details
        self._records = tuple(timeline)
        layout = QVBoxLayout(self)

        headline = QLabel(title)
        font = headline.font()
        font.setBold(True)
        headline.setFont(font)
        layout.addWidget(headline)

        self.details_view = QPlainTextEdit()
        self.details_view.setReadOnly(True)
        self.details_view.setPlainText(details)
        self.details_view.setFont(monospace_font())
        self.details_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details_view.setAccessibleName("Technical details")

        #: The drawing, or ``None`` when ``show_statechart`` is false.
        self.statechart_view: StatechartView | None = None
        #: ``"drawn"`` (a native QPainter drawing, never diagram source text) or ``None``.
        self.statechart_kind: str | None = "drawn" if show_statechart else None
        #: The request timeline, or ``None`` when ``show_statechart`` is false.
        self.timeline_view: QTreeWidget | None = None
        #: The outbox's waiting entries, or ``None`` when no outbox was given.
        self.outbox_view: QTreeWidget | None = None
        #: The tabs below the drawing, or ``None`` when ``show_statechart`` is false.
        self.tabs: QTabWidget | None = None
        if show_statechart:
            self.statechart_view = StatechartView(state, last_change)
            scroll = QScrollArea()
            scroll.setWidget(self.statechart_view)
            scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
            scroll.setWidgetResizable(False)
            self.timeline_view = self._timeline(self._records)
            tabs = QTabWidget()
            tabs.addTab(self.timeline_view, f"Recent requests ({len(self._records)})")
            if outbox is not None:
                self.outbox_view = self._waiting(outbox)
                tabs.addTab(self.outbox_view, f"Waiting to be sent ({len(outbox)})")
            tabs.addTab(self.details_view, "Technical details")
            self.tabs = tabs
            splitter = QSplitter(Qt.Orientation.Vertical)
            splitter.addWidget(scroll)
            splitter.addWidget(tabs)
            splitter.setStretchFactor(0, 3)
            splitter.setStretchFactor(1, 2)
            layout.addWidget(splitter, 1)
        else:
            layout.addWidget(self.details_view, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the technical details and the timeline to the clipboard")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(1180, 960) if show_statechart else self.resize(640, 360)

    @property
    def details(self) -> str:
        """The technical text shown."""
        return self._details

    @property
    def records(self) -> tuple[RequestTimeline, ...]:
        """The timeline records shown (oldest first)."""
        return self._records

    def copy_text(self) -> str:
        """What Copy puts on the clipboard: the details, then the timeline."""
        if not self._records:
            return self._details
        return f"{self._details}\nrecent requests (newest first):\n{timeline_text(self._records)}\n"

    def copy(self) -> None:
        """Put :meth:`copy_text` on the clipboard."""
        QGuiApplication.clipboard().setText(self.copy_text())
        self.copy_button.setText("Copied")

    @staticmethod
    def _waiting(entries: Sequence[Any]) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setColumnCount(4)
        tree.setHeaderLabels(["Change", "Attempts", "Last error", "Idempotency-Key"])
        tree.setAccessibleName("Changes waiting to be sent, oldest first")
        tree.setUniformRowHeights(True)
        tree.setRootIsDecorated(False)
        header = tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 340)
        header.resizeSection(1, 80)
        header.resizeSection(2, 260)
        if not entries:
            tree.addTopLevelItem(QTreeWidgetItem(["Nothing waiting to be sent", "", "", ""]))
            return tree
        for entry in entries:
            attempts = int(getattr(entry, "attempts", 0) or 0)
            last_error = getattr(entry, "last_error", None)
            item = QTreeWidgetItem(
                [
                    f"#{entry.id} {entry.method} {redact_url(str(entry.url))}",
                    str(attempts) if attempts else "not yet",
                    redact(str(last_error)) if last_error else "",
                    str(getattr(entry, "idempotency_key", "") or ""),
                ]
            )
            if last_error:
                item.setToolTip(2, redact(str(last_error)))
            tree.addTopLevelItem(item)
        return tree

    @staticmethod
    def _timeline(records: Sequence[RequestTimeline]) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setColumnCount(3)
        tree.setHeaderLabels(["Request and its steps", "Result", "Took"])
        tree.setAccessibleName("Recent requests, newest first, with their steps")
        tree.setUniformRowHeights(True)
        tree.setRootIsDecorated(True)
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 110)
        header.resizeSection(2, 90)
        if not records:
            tree.addTopLevelItem(QTreeWidgetItem(["No requests yet", "", ""]))
            return tree
        ordered = list(reversed(records))
        items: list[QTreeWidgetItem] = []
        for index, record in enumerate(ordered):
            shown_url = redact_url(record.url)
            item = QTreeWidgetItem(
                [f"{record.method} {shown_url}", _result(record), format_duration(record.elapsed)]
            )
            item.setToolTip(0, record.summary.replace(record.url, shown_url))
            item.setData(0, _RECORD_ROLE, index)
            if record.steps:
                # Steps are made when the row is unfolded: most rows never are.
                item.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            items.append(item)
        tree.addTopLevelItems(items)

        def unfold(item: QTreeWidgetItem) -> None:
            index = item.data(0, _RECORD_ROLE)
            if isinstance(index, int) and item.childCount() == 0:
                item.addChildren([_step_item(step) for step in ordered[index].steps])

        tree.itemExpanded.connect(unfold)
        for item in items[:_EXPANDED]:
            item.setExpanded(True)
        return tree
