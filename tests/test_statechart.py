"""The statechart is drawn from machine.py, and the committed files are what the code draws."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from connmgr import cli
from connmgr.machine import ANY, STATE_EFFECTS, TRANSITIONS, ConnectionState
from connmgr.statechart import (
    DiagramDependencyError,
    edges,
    format_for_path,
    render,
    svg_source_digest,
    write,
)

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "statecharts"
REGENERATE = "run `make statecharts` and commit statecharts/"


def committed(suffix: str) -> str:
    path = CHARTS / f"connection.{suffix}"
    assert path.exists(), f"{path} is missing: {REGENERATE}"
    return path.read_text(encoding="utf-8")


# -- drift: the committed files are what the code produces ---------------------------


def test_committed_mermaid_is_what_the_code_draws():
    assert committed("mmd") == render("mermaid"), (
        f"statecharts/connection.mmd drifted: {REGENERATE}"
    )


def test_committed_dot_is_what_the_code_draws():
    assert committed("dot") == render("dot"), f"statecharts/connection.dot drifted: {REGENERATE}"


def test_committed_svg_was_drawn_from_the_current_dot():
    # Graphviz lays text out with the local fonts, so the SVG bytes differ between
    # machines; the DOT it was drawn from (named by digest inside it) must not.
    svg = committed("svg")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    expected = hashlib.sha256(render("dot").encode("utf-8")).hexdigest()
    assert svg_source_digest(svg) == expected, f"statecharts/connection.svg drifted: {REGENERATE}"
    for state in ConnectionState:
        assert f">{state.value}</text>" in svg


def test_rendering_is_deterministic():
    assert render("mermaid") == render("mermaid")
    assert render("dot") == render("dot")
    assert svg_source_digest(render("svg")) == svg_source_digest(render("svg"))


# -- what the diagram says --------------------------------------------------------------


def test_mermaid_is_a_state_diagram_naming_all_five_states():
    text = render("mermaid")
    assert text.splitlines()[0] == "stateDiagram-v2"
    for state in ConnectionState:
        assert f'state "{state.value}" as {state.value}' in text
    assert "[*] --> online" in text


def test_every_row_of_the_table_is_an_edge_with_its_label():
    mermaid, dot = render("mermaid"), render("dot")
    drawn = {(e.source, e.dest): e.labels for e in edges()}
    for row in TRANSITIONS:
        assert row.label in mermaid and row.label in dot
        for source in row.sources():
            if row.source == ANY and source is row.dest:
                continue  # "network lost" while offline is not an arrow
            assert row.label in drawn[(source, row.dest)]
            assert f"{source.value} --> {row.dest.value}: " in mermaid
            assert f"{source.value} -> {row.dest.value}" in dot


def test_no_wildcard_self_loop_but_the_trial_loop_stays():
    pairs = {(e.source, e.dest) for e in edges()}
    assert (ConnectionState.OFFLINE, ConnectionState.OFFLINE) not in pairs
    assert (ConnectionState.BACKOFF, ConnectionState.BACKOFF) in pairs


def test_nothing_is_highlighted_by_default():
    assert "s_active" not in render("mermaid")
    assert "peripheries=2" not in render("dot")


@pytest.mark.parametrize("state", list(ConnectionState))
def test_highlight_marks_one_state_in_its_colour(state):
    color = STATE_EFFECTS[state].color
    mermaid = render("mermaid", highlight=state)
    assert f"Class {state.value} s_active" in mermaid
    assert mermaid.count("s_active") == 2  # the classDef and the one state
    dot = render("dot", highlight=state.value)
    assert dot.count("peripheries=2") == 1 and color in dot
    svg = render("svg", highlight=state)
    assert color in svg


def test_highlight_accepts_names_and_refuses_nonsense():
    assert render("mermaid", highlight="RATE_LIMITED") == render(
        "mermaid", highlight=ConnectionState.RATE_LIMITED
    )
    with pytest.raises(ValueError, match="online, degraded"):
        render("mermaid", highlight="sleeping")
    with pytest.raises(ValueError, match="mermaid, dot, svg"):
        render("png")


def test_format_from_the_file_suffix(tmp_path):
    assert format_for_path("a/b.mmd") == "mermaid"
    assert format_for_path("x.GV") == "dot"
    with pytest.raises(ValueError, match=r"\.svg"):
        format_for_path("chart.png")
    path = write(tmp_path / "sub" / "chart.mmd")
    assert path.read_text(encoding="utf-8") == render("mermaid")


# -- without pygraphviz -----------------------------------------------------------------


def test_dot_without_pygraphviz_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygraphviz", None)  # import now raises ImportError
    with pytest.raises(DiagramDependencyError, match=r"connmgr\[diagrams\]"):
        render("svg")
    assert render("mermaid").startswith("stateDiagram")  # Mermaid needs nothing more


def test_cli_without_pygraphviz_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    assert cli.main(["statechart", "--format", "dot"]) == 1
    captured = capsys.readouterr()
    assert "pip install 'connmgr[diagrams]'" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


# -- the command ------------------------------------------------------------------------


def test_the_command_prints_the_committed_mermaid():
    done = subprocess.run(
        [sys.executable, "-m", "connmgr", "statechart", "--format", "mermaid"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == committed("mmd")


def test_the_command_writes_the_format_its_suffix_names(tmp_path, capsys):
    target = tmp_path / "c.dot"
    assert cli.main(["statechart", "-o", str(target), "--highlight", "offline"]) == 0
    assert target.read_text(encoding="utf-8") == render("dot", highlight="offline")
    assert cli.main(["statechart", "--highlight", "nope"]) == cli.EXIT_USAGE
    assert "online, degraded" in capsys.readouterr().err
