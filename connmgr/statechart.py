"""The connection statechart, drawn from the code: Mermaid, Graphviz DOT and SVG.

Every diagram is rendered by ``transitions``' own diagram support
(:class:`transitions.extensions.diagrams.GraphMachine`) from the same data the
running machine uses: :class:`~connmgr.machine.ConnectionState` for the nodes
and :data:`~connmgr.machine.TRANSITIONS` for the edges, each edge labelled with
its row's ``label`` (the outcome and the guard, in words). Rows that share a
source and a destination become one edge whose labels are joined with ``|``.
A row from any state (``"*"``) is drawn from every *other* state: "network
lost" while already offline changes nothing worth an arrow.

* ``mermaid`` needs nothing beyond ``transitions``; the text starts with a
  ``stateDiagram-v2`` line, so it can be pasted into Markdown as is.
* ``dot`` and ``svg`` need ``pygraphviz`` (the extra ``diagrams``:
  ``pip install 'connmgr[diagrams]'``; its wheels bundle Graphviz). Without it,
  :class:`DiagramDependencyError` says so.

The output is deterministic (no dates, no random ids), so the committed files in
``statecharts/`` can be compared with what the code produces. Graphviz lays the
SVG out with the fonts of the machine it runs on, so the SVG carries the SHA-256
of the DOT it was drawn from (:func:`svg_source_digest`): a test can tell that
an SVG matches the code without depending on fonts.

``highlight`` marks one state, e.g. the current one in a status dialog, in that
state's colour from :data:`~connmgr.machine.STATE_EFFECTS`.

Example::

    from connmgr.statechart import render, write
    mermaid = render("mermaid")                       # "stateDiagram-v2 ..."
    svg = render("svg", highlight=ConnectionState.BACKOFF)
    write("statecharts/connection.dot")               # format from the suffix

From the command line: ``connmgr statechart --format svg -o connection.svg``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from connmgr.frozen import explain_frozen
from connmgr.machine import ANY, STATE_EFFECTS, TRANSITIONS, ConnectionState

__all__ = [
    "EXTRA_HINT",
    "FORMATS",
    "TITLE",
    "DiagramDependencyError",
    "Edge",
    "edges",
    "format_for_path",
    "render",
    "svg_source_digest",
    "write",
]

#: The formats :func:`render` knows.
FORMATS: Final[tuple[str, ...]] = ("mermaid", "dot", "svg")

#: The diagram's title (a Mermaid comment, the DOT graph label).
TITLE: Final = "connmgr connection states"

#: What to install for DOT and SVG.
EXTRA_HINT: Final = "pip install 'connmgr[diagrams]'"

_SUFFIXES: Final = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
}

# The SVG names the DOT it came from in this comment (see svg_source_digest).
_DIGEST_MARK: Final = "connmgr-statechart-dot-sha256:"
_DIGEST_RE: Final = re.compile(re.escape(_DIGEST_MARK) + r"\s*([0-9a-f]{64})")

_Engine = Literal["mermaid", "pygraphviz"]

_INITIAL: Final = ConnectionState.ONLINE
_DEFAULT_NODE: Final = {
    "style": "rounded,filled",
    "shape": "rectangle",
    "fillcolor": "white",
    "color": "black",
    "peripheries": "1",
}


class DiagramDependencyError(ImportError):
    """DOT or SVG was asked for, but ``pygraphviz`` is not installed.

    The message names the extra to install (:data:`EXTRA_HINT`). Mermaid works
    without it.
    """


@explain_frozen
@dataclass(frozen=True, slots=True)
class Edge:
    """One arrow of the statechart: every table row from ``source`` to ``dest``.

    ``labels`` are the rows' labels in table order; the diagram joins them with
    ``" | "``.
    """

    source: ConnectionState
    dest: ConnectionState
    labels: tuple[str, ...]


def edges() -> tuple[Edge, ...]:
    """The statechart's arrows, derived from :data:`~connmgr.machine.TRANSITIONS` (pure).

    Wildcard rows are expanded to every other state; rows sharing a source and a
    destination are merged. Ordered by source, then destination, in
    :class:`~connmgr.machine.ConnectionState` order.

    Example::

        [(e.source.value, e.dest.value) for e in edges()][:2]
        # [('online', 'degraded'), ('online', 'rate_limited')]
    """
    merged: dict[tuple[ConnectionState, ConnectionState], list[str]] = {}
    for source, dest, label in _rows():
        merged.setdefault((source, dest), []).append(label)
    order = {state: i for i, state in enumerate(ConnectionState)}
    return tuple(
        Edge(source, dest, tuple(labels))
        for (source, dest), labels in sorted(
            merged.items(), key=lambda item: (order[item[0][0]], order[item[0][1]])
        )
    )


def _rows() -> Iterator[tuple[ConnectionState, ConnectionState, str]]:
    for row in TRANSITIONS:
        for source in ConnectionState:  # enum order, so the output never depends on sets
            if source not in row.sources():
                continue
            if row.source == ANY and source is row.dest:
                continue
            yield source, row.dest, row.label


def format_for_path(path: str | Path) -> str:
    """The format a file name asks for: ``.mmd``/``.mermaid``, ``.dot``/``.gv``, ``.svg``.

    Raises :class:`ValueError` for another suffix.
    """
    suffix = Path(path).suffix.lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        known = ", ".join(sorted(_SUFFIXES))
        raise ValueError(
            f"cannot tell the statechart format from {str(path)!r}; use a suffix among {known}"
        ) from None


def _state(value: ConnectionState | str | None) -> ConnectionState | None:
    if value is None or isinstance(value, ConnectionState):
        return value
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        for state in ConnectionState:
            if key in (state.value, state.name.lower()):
                return state
    names = ", ".join(s.value for s in ConnectionState)
    raise ValueError(f"highlight must be a connection state ({names}), got {value!r}")


def _tint(color: str, strength: float = 0.22) -> str:
    # A light fill from the state's colour, so dark text on it stays readable.
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(255 - (255 - c) * strength) for c in (red, green, blue)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _machine(engine: _Engine, highlight: ConnectionState | None) -> Any:
    from transitions.extensions.diagrams import GraphMachine

    machine = GraphMachine(
        model=None,
        states=[state.value for state in ConnectionState],
        transitions=[
            {
                "trigger": "_".join(edge.labels),
                "source": edge.source.value,
                "dest": edge.dest.value,
                "label": " | ".join(edge.labels),
            }
            for edge in edges()
        ],
        initial=_INITIAL.value,
        auto_transitions=False,
        title=TITLE,
        graph_engine=engine,
    )
    # Instance attributes, so no class-level style is changed for anyone else.
    # Top to bottom: with these long edge labels, left to right is three times as wide.
    attributes: dict[str, Any] = {"directed": True, "strict": False, "rankdir": "TB"}
    if engine != "mermaid":  # Mermaid would print every machine attribute as a line
        attributes["name"] = "connmgr_states"
    machine.machine_attributes = attributes
    active: dict[str, str] = {}
    if highlight is not None:
        color = STATE_EFFECTS[highlight].color
        active = {
            "color": color,
            "fillcolor": _tint(color),
            "peripheries": "2",
            "style": "rounded,filled,bold",
        }
    nodes: dict[str, Any] = {"default": dict(_DEFAULT_NODE)}
    if active:  # an unused style would still be printed as a Mermaid classDef
        nodes["active"] = active
    machine.style_attributes = {
        "node": nodes,
        "edge": {"default": {"color": "black"}},
        "graph": {"default": {}},
    }
    return machine


def _graph(engine: _Engine, highlight: ConnectionState | None) -> Any:
    machine = _machine(engine, highlight)
    # A fresh graph: the machine's own would mark the initial state as active.
    graph = machine.graph_cls(machine)
    if highlight is not None:
        graph.set_node_style(highlight.value, "active")
    return graph.get_graph(title=TITLE)


def _mermaid(highlight: ConnectionState | None) -> str:
    text: str = _graph("mermaid", highlight).draw(None)
    lines = text.splitlines()
    # transitions puts the title in front matter (---/title/---); the diagram must
    # begin with its type line, so the title becomes a comment under it.
    if lines and lines[0].strip() == "---":
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        lines = lines[end + 1 :]
    head, body = lines[0].strip(), [line.rstrip() for line in lines[1:]]
    out = [head, f"  %% {TITLE}: generated from connmgr/machine.py by `connmgr statechart`"]
    out += [line for line in body if line]
    return "\n".join(out) + "\n"


def _pygraphviz() -> Any:
    try:
        import pygraphviz
    except ImportError as exc:
        raise DiagramDependencyError(
            f"DOT and SVG statecharts need pygraphviz, which is not installed: {EXTRA_HINT} "
            "(Mermaid works without it: --format mermaid)"
        ) from exc
    return pygraphviz


def _agraph(highlight: ConnectionState | None) -> Any:
    _pygraphviz()
    graph = _graph("pygraphviz", highlight)
    graph.graph_attr.update(labelloc="t", nodesep="0.5", ranksep="0.6")
    graph.edge_attr.update(fontsize="10")
    # The start marker Mermaid draws as [*].
    graph.add_node(
        "__start__", shape="point", label="", width="0.15", style="filled", fillcolor="black"
    )
    graph.add_edge("__start__", _INITIAL.value, label="")
    return graph


def _dot(highlight: ConnectionState | None) -> str:
    text: str = _agraph(highlight).string()
    return text if text.endswith("\n") else text + "\n"


def _svg(highlight: ConnectionState | None) -> str:
    graph = _agraph(highlight)
    dot = graph.string()
    dot = dot if dot.endswith("\n") else dot + "\n"
    raw: bytes = graph.draw(format="svg", prog="dot")
    svg = raw.decode("utf-8")
    digest = hashlib.sha256(dot.encode("utf-8")).hexdigest()
    # No "--" inside an XML comment: strict parsers (Qt's SVG renderer) reject it.
    marker = f"<!-- {_DIGEST_MARK} {digest} (drawn from the DOT output of connmgr statechart) -->\n"
    at = svg.find("<svg")
    return svg[:at] + marker + svg[at:] if at >= 0 else marker + svg


def render(fmt: str = "mermaid", *, highlight: ConnectionState | str | None = None) -> str:
    """The statechart as text: ``"mermaid"``, ``"dot"`` or ``"svg"``.

    ``highlight`` (a :class:`~connmgr.machine.ConnectionState` or its value, e.g.
    ``"backoff"``) draws that state in its status colour with a double border.
    Raises :class:`ValueError` for an unknown format or state, and
    :class:`DiagramDependencyError` for DOT/SVG without ``pygraphviz``.

    Example::

        render("mermaid").splitlines()[0]           # 'stateDiagram-v2'
        render("svg", highlight="offline")          # '<?xml ...<svg ...'
    """
    state = _state(highlight)
    if fmt == "mermaid":
        return _mermaid(state)
    if fmt == "dot":
        return _dot(state)
    if fmt == "svg":
        return _svg(state)
    raise ValueError(f"statechart format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write(
    path: str | Path,
    fmt: str | None = None,
    *,
    highlight: ConnectionState | str | None = None,
) -> Path:
    """Render and write the statechart to ``path`` (UTF-8, ``\\n`` line ends); return the path.

    ``fmt`` defaults to the one the suffix names (:func:`format_for_path`). The
    parent directory is created when missing.

    Example::

        write("statecharts/connection.svg")
    """
    target = Path(path)
    text = render(fmt or format_for_path(target), highlight=highlight)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8", newline="\n")
    return target


def svg_source_digest(svg: str) -> str | None:
    """The SHA-256 (hex) of the DOT an SVG from :func:`render` was drawn from, or ``None``.

    Compare it with ``hashlib.sha256(render("dot").encode()).hexdigest()`` to know
    that an SVG shows the current machine, whatever fonts laid it out.
    """
    match = _DIGEST_RE.search(svg)
    return match.group(1) if match else None
