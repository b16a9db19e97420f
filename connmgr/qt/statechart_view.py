"""The connection statechart, drawn with QPainter from :data:`connmgr.machine.TRANSITIONS`.

No Graphviz and no Mermaid: the five states are boxes at fixed places, every
row of the transitions table is an arrow (rows with the same ends share one,
their labels stacked), and the rows that apply to any state ("network lost")
come from one "any state" box instead of five arrows. The current state is
filled with its colour; the transition just taken is drawn thick in blue with
its label in bold. Labels are never smaller than 9 pt, and the drawing never
scales down: in a small window it scrolls (put it in a ``QScrollArea``).

Example::

    view = StatechartView(state=ConnectionState.DEGRADED,
                          last_change=(ConnectionState.ONLINE, ConnectionState.DEGRADED))
    scroll = QScrollArea(); scroll.setWidget(view)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from connmgr.frozen import explain_frozen
from connmgr.machine import ANY, STATE_EFFECTS, TRANSITIONS, ConnectionState

__all__ = [
    "MIN_LABEL_POINTS",
    "StatechartEdge",
    "StatechartView",
    "label_lines",
    "statechart_edges",
]

S = ConnectionState

#: The smallest type used anywhere in the drawing (points, at 100 % scale).
MIN_LABEL_POINTS = 9.0

#: The key of the pseudo-state that rows with ``source == "*"`` start from.
ANY_STATE = "any"

# Box centres on the drawing's own grid (pixels at 100 %): the way down from
# online to backoff as a row, rate_limited (reached from all three, and back)
# under its middle, offline and its "any state" source at the bottom left.
_CENTRES: dict[str, tuple[float, float]] = {
    S.ONLINE.value: (200.0, 250.0),
    S.DEGRADED.value: (550.0, 250.0),
    S.BACKOFF.value: (900.0, 250.0),
    S.RATE_LIMITED.value: (550.0, 520.0),
    S.OFFLINE.value: (200.0, 70.0),
    ANY_STATE: (550.0, 70.0),
}
_SIZE = QSize(1120, 640)
# Bows other than the default (the sign picks the side: positive is to the right
# of the direction of travel). online → backoff arcs over degraded; the pair
# between rate_limited and online swaps sides so its label lands outside.
_BOWS: dict[tuple[str, str], float] = {
    (S.ONLINE.value, S.BACKOFF.value): -130.0,
    (S.RATE_LIMITED.value, S.ONLINE.value): -34.0,
    (S.ONLINE.value, S.RATE_LIMITED.value): -34.0,
}
_BOX_W, _BOX_H = 176.0, 50.0
_ANY_W, _ANY_H = 120.0, 34.0
# How far a pair of opposite arrows bow apart (pixels at the middle).
_BOW = 34.0
_LAST_EDGE_COLOR = "#0969da"
_INK = "#1f2328"
_MUTED = "#57606a"


@explain_frozen
@dataclass(frozen=True, slots=True)
class StatechartEdge:
    """One arrow from ``source`` to ``dest`` (state values, or ``"any"``) and its rows' labels."""

    source: str
    dest: str
    labels: tuple[str, ...]


def label_lines(labels: tuple[str, ...]) -> tuple[str, ...]:
    """An arrow's rows as lines: ``"transient | slow"``, ``"[degrade_after in a row]"``.

    A row ``"outcome [guard]"`` becomes two lines; rows that share their guard
    share one guard line.
    """
    parts = []
    for label in labels:
        main, sep, guard = label.partition(" [")
        parts.append((main, f"[{guard}" if sep else ""))
    guards = {guard for _, guard in parts}
    if len(parts) > 1 and len(guards) == 1 and "" not in guards:
        return (" | ".join(main for main, _ in parts), guards.pop())
    lines: list[str] = []
    for main, guard in parts:
        lines.append(main)
        if guard:
            lines.append(guard)
    return tuple(lines)


def statechart_edges() -> tuple[StatechartEdge, ...]:
    """The arrows of the drawing, from the transitions table (in table order)."""
    labels: dict[tuple[str, str], list[str]] = {}
    for row in TRANSITIONS:
        if row.source == ANY:
            pairs = [(ANY_STATE, row.dest.value)]
        else:
            pairs = [(s.value, row.dest.value) for s in row.sources()]
            pairs.sort(key=lambda pair: list(_CENTRES).index(pair[0]))
        for pair in pairs:
            texts = labels.setdefault(pair, [])
            if row.label not in texts:
                texts.append(row.label)
    return tuple(StatechartEdge(a, b, tuple(t)) for (a, b), t in labels.items())


def _box(key: str) -> QRectF:
    x, y = _CENTRES[key]
    w, h = (_ANY_W, _ANY_H) if key == ANY_STATE else (_BOX_W, _BOX_H)
    return QRectF(x - w / 2, y - h / 2, w, h)


def _exit_point(rect: QRectF, toward: QPointF) -> QPointF:
    """Where the ray from ``rect``'s centre toward ``toward`` leaves the rectangle."""
    centre = rect.center()
    dx, dy = toward.x() - centre.x(), toward.y() - centre.y()
    if dx == 0 and dy == 0:
        return centre
    scale = min(
        (rect.width() / 2) / abs(dx) if dx else math.inf,
        (rect.height() / 2) / abs(dy) if dy else math.inf,
    )
    return QPointF(centre.x() + dx * scale, centre.y() + dy * scale)


def _tint(color: str, amount: float) -> QColor:
    """``color`` mixed toward white by ``amount`` (0..1)."""
    base = QColor(color)
    return QColor(
        round(base.red() + (255 - base.red()) * amount),
        round(base.green() + (255 - base.green()) * amount),
        round(base.blue() + (255 - base.blue()) * amount),
    )


def _shared_labels(
    edges: tuple[StatechartEdge, ...],
) -> dict[tuple[str, tuple[str, ...]], list[StatechartEdge]]:
    """Arrows into one box with the very same words ("throttled …" ×3): written once."""
    groups: dict[tuple[str, tuple[str, ...]], list[StatechartEdge]] = {}
    for edge in edges:
        if edge.source != edge.dest:
            groups.setdefault((edge.dest, edge.labels), []).append(edge)
    return {key: group for key, group in groups.items() if len(group) > 1}


class StatechartView(QWidget):
    """The statechart, drawn; ``state`` filled, ``last_change`` (old, new) marked.

    Example::

        view = StatechartView(state=ConnectionState.BACKOFF)
        view.set_last_change(ConnectionState.DEGRADED, ConnectionState.BACKOFF)
    """

    def __init__(
        self,
        state: ConnectionState | None = None,
        last_change: tuple[ConnectionState, ConnectionState] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._last: tuple[str, str] | None = None
        self._edges = statechart_edges()
        # Filled while painting: every label is drawn after every arrow.
        self._labels: list[tuple[tuple[str, ...], QPointF, tuple[float, float], bool]] = []
        self.setMinimumSize(_SIZE)
        self.setAccessibleName("Statechart")
        self.setAutoFillBackground(False)
        self.set_last_change(*(last_change or (None, None)))
        self._describe()

    # -- reading -----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState | None:
        """The state drawn as current."""
        return self._state

    @property
    def last_edge(self) -> StatechartEdge | None:
        """The arrow drawn as just taken, if any."""
        if self._last is None:
            return None
        return next((e for e in self._edges if (e.source, e.dest) == self._last), None)

    def edges(self) -> tuple[StatechartEdge, ...]:
        """Every arrow drawn."""
        return self._edges

    def label_font(self) -> QFont:
        """The font of the edge labels (at least :data:`MIN_LABEL_POINTS`)."""
        font = QFont(self.font())
        size = font.pointSizeF()
        font.setPointSizeF(max(MIN_LABEL_POINTS, size if size > 0 else MIN_LABEL_POINTS))
        return font

    def state_font(self) -> QFont:
        """The font of the state names (one point larger than the labels, bold)."""
        font = self.label_font()
        font.setPointSizeF(font.pointSizeF() + 1)
        font.setBold(True)
        return font

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """The drawing's natural size (it never scales down)."""
        return QSize(_SIZE)

    # -- changing ----------------------------------------------------------------------

    def set_state(self, state: ConnectionState | None) -> None:
        """Draw ``state`` as current."""
        if state is not self._state:
            self._state = state
            self._describe()
            self.update()

    def set_last_change(self, old: ConnectionState | None, new: ConnectionState | None) -> None:
        """Mark the arrow ``old → new`` (from "any state" when only that row applies)."""
        last: tuple[str, str] | None = None
        if old is not None and new is not None:
            pair = (old.value, new.value)
            keys = {(e.source, e.dest) for e in self._edges}
            if pair in keys:
                last = pair
            elif (ANY_STATE, new.value) in keys:
                last = (ANY_STATE, new.value)
        if last != self._last:
            self._last = last
            self._describe()
            self.update()

    def _describe(self) -> None:
        parts = ["Connection statechart: online, degraded, rate_limited, backoff, offline"]
        if self._state is not None:
            parts.append(f"current state: {self._state.value}")
        edge = self.last_edge
        if edge is not None:
            parts.append(f"last transition: {edge.source} to {edge.dest}")
        self.setAccessibleDescription("; ".join(parts))

    # -- drawing -----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """Draw the boxes, the arrows and their labels."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.fillRect(self.rect(), QColor("#ffffff"))
        # Centred in a widget larger than the drawing; never scaled.
        painter.translate(
            max(0.0, (self.width() - _SIZE.width()) / 2),
            max(0.0, (self.height() - _SIZE.height()) / 2),
        )
        keys = {(e.source, e.dest) for e in self._edges}
        self._labels = []
        shared = _shared_labels(self._edges)
        quiet = frozenset(e for group in shared.values() for e in group)
        for edge in self._edges:
            if (edge.source, edge.dest) != self._last:
                paired = (edge.dest, edge.source) in keys
                self._draw_edge(painter, edge, paired, quiet, last=False)
        for (dest, labels), _edges in shared.items():
            box = _box(dest)
            anchor = QPointF(box.center().x(), box.bottom() + 6)
            self._labels.append((label_lines(labels), anchor, (0.0, 1.0), False))
        last = self.last_edge
        if last is not None:  # on top of the others
            paired = (last.dest, last.source) in keys
            self._draw_edge(painter, last, paired, quiet, last=True)
        # Words after every arrow, so no arrow runs over them.
        for lines, anchor, normal, is_last in self._labels:
            self._draw_label(painter, lines, anchor, normal, last=is_last)
        for key in _CENTRES:
            self._draw_box(painter, key)
        self._draw_legend(painter)
        painter.end()

    def _draw_box(self, painter: QPainter, key: str) -> None:
        rect = _box(key)
        if key == ANY_STATE:
            painter.setPen(QPen(QColor(_MUTED), 1.2, Qt.PenStyle.DashLine))
            painter.setBrush(QColor("#f6f8fa"))
            painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
            painter.setFont(self.label_font())
            painter.setPen(QColor(_MUTED))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "any state")
            return
        state = ConnectionState(key)
        effect = STATE_EFFECTS[state]
        current = state is self._state
        if current:
            painter.setPen(QPen(QColor(effect.color), 3.0))
            painter.setBrush(_tint(effect.color, 0.78))
        else:
            painter.setPen(QPen(QColor("#8c959f"), 1.2))
            painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(rect, 8, 8)
        name_font = self.state_font()
        label_font = self.label_font()
        name_h = QFontMetricsF(name_font).height()
        label_h = QFontMetricsF(label_font).height()
        top = rect.center().y() - (name_h + label_h) / 2
        painter.setFont(name_font)
        painter.setPen(QColor(_INK))
        painter.drawText(
            QRectF(rect.left(), top, rect.width(), name_h), Qt.AlignmentFlag.AlignCenter, key
        )
        painter.setFont(label_font)
        painter.setPen(QColor(_INK if current else _MUTED))
        words = effect.label + (" (now)" if current else "")
        painter.drawText(
            QRectF(rect.left(), top + name_h, rect.width(), label_h),
            Qt.AlignmentFlag.AlignCenter,
            words,
        )

    def _draw_edge(
        self,
        painter: QPainter,
        edge: StatechartEdge,
        paired: bool,
        shared: frozenset[StatechartEdge],
        *,
        last: bool,
    ) -> None:
        color = QColor(_LAST_EDGE_COLOR if last else "#6e7781")
        pen = QPen(color, 3.2 if last else 1.4)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if edge.source == edge.dest:
            self._draw_loop(painter, edge, color, last=last)
            return
        a, b = _box(edge.source), _box(edge.dest)
        ca, cb = a.center(), b.center()
        dx, dy = cb.x() - ca.x(), cb.y() - ca.y()
        length = math.hypot(dx, dy) or 1.0
        # The normal to the right of the direction of travel: opposite arrows of a
        # pair bow to opposite sides.
        nx, ny = -dy / length, dx / length
        bow = _BOWS.get((edge.source, edge.dest), _BOW if paired else 0.0)
        control = QPointF(
            (ca.x() + cb.x()) / 2 + nx * bow * 2, (ca.y() + cb.y()) / 2 + ny * bow * 2
        )
        start = _exit_point(a, control)
        end = _exit_point(b, control)
        path = QPainterPath(start)
        path.quadTo(control, end)
        painter.drawPath(path)
        self._draw_head(painter, control, end, color)
        if edge in shared and not last:
            return  # its words are written once, beside the box they all reach
        middle = path.pointAtPercent(0.5)
        side = 1.0 if bow >= 0 else -1.0
        anchor = QPointF(middle.x() + nx * 10 * side, middle.y() + ny * 10 * side)
        self._labels.append((label_lines(edge.labels), anchor, (nx * side, ny * side), last))

    def _draw_loop(
        self, painter: QPainter, edge: StatechartEdge, color: QColor, *, last: bool
    ) -> None:
        rect = _box(edge.source)
        # A loop out of the box's right side.
        start = QPointF(rect.right(), rect.center().y() - 12)
        end = QPointF(rect.right(), rect.center().y() + 12)
        path = QPainterPath(start)
        path.cubicTo(
            QPointF(rect.right() + 60, rect.center().y() - 40),
            QPointF(rect.right() + 60, rect.center().y() + 40),
            end,
        )
        painter.drawPath(path)
        self._draw_head(painter, QPointF(rect.right() + 30, rect.center().y() + 30), end, color)
        anchor = QPointF(rect.right() - 24, rect.top() - 4)
        self._labels.append((label_lines(edge.labels), anchor, (1.0, -1.0), last))

    @staticmethod
    def _draw_head(painter: QPainter, toward_from: QPointF, tip: QPointF, color: QColor) -> None:
        angle = math.atan2(tip.y() - toward_from.y(), tip.x() - toward_from.x())
        size = 10.0
        left = QPointF(
            tip.x() - size * math.cos(angle - math.pi / 7),
            tip.y() - size * math.sin(angle - math.pi / 7),
        )
        right = QPointF(
            tip.x() - size * math.cos(angle + math.pi / 7),
            tip.y() - size * math.sin(angle + math.pi / 7),
        )
        head = QPainterPath(tip)
        head.lineTo(left)
        head.lineTo(right)
        head.closeSubpath()
        painter.save()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPath(head)
        painter.restore()

    def _draw_label(
        self,
        painter: QPainter,
        lines: tuple[str, ...],
        anchor: QPointF,
        normal: tuple[float, float],
        *,
        last: bool,
    ) -> None:
        font = self.label_font()
        font.setBold(last)
        metrics = QFontMetricsF(font)
        width = max(metrics.horizontalAdvance(line) for line in lines) + 8
        height = metrics.height() * len(lines) + 4
        # Put the block on the normal's side of the anchor: its nearest corner or
        # edge touches the anchor, so the text never sits on its own arrow.
        nx, ny = normal
        x = anchor.x() - width / 2 + nx * width / 2
        y = anchor.y() - height / 2 + ny * height / 2
        box = QRectF(x, y, width, height)
        painter.save()
        # An opaque plain rectangle: a translucent rounded one costs ~0.3 ms each.
        painter.fillRect(box, QColor("#ffffff"))
        painter.setFont(font)
        painter.setPen(QColor(_LAST_EDGE_COLOR) if last else QColor(_INK))
        for index, line in enumerate(lines):
            painter.drawText(
                QRectF(box.left() + 4, box.top() + 2 + index * metrics.height(), width - 8,
                       metrics.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                line,
            )  # fmt: skip
        painter.restore()

    def _draw_legend(self, painter: QPainter) -> None:
        font = self.label_font()
        metrics = QFontMetricsF(font)
        painter.setFont(font)
        y = _SIZE.height() - metrics.height() - 6
        x = 16.0
        painter.setPen(QPen(QColor(_MUTED), 1.0))
        text = "Filled box: the current state."
        edge = self.last_edge
        painter.setPen(QColor(_MUTED))
        painter.drawText(QPointF(x, y + metrics.ascent()), text)
        if edge is not None:
            x += metrics.horizontalAdvance(text) + 24
            painter.setPen(QPen(QColor(_LAST_EDGE_COLOR), 3.2))
            mid = y + metrics.height() / 2
            painter.drawLine(QPointF(x, mid), QPointF(x + 28, mid))
            painter.setPen(QColor(_LAST_EDGE_COLOR))
            source = "any state" if edge.source == ANY_STATE else edge.source
            painter.drawText(
                QPointF(x + 36, y + metrics.ascent()),
                f"The transition just taken: {source} → {edge.dest}.",
            )
