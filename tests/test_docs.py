"""The docs quote the code: keep the quotes in step."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_states_page_embeds_the_generated_statechart():
    chart = (ROOT / "statecharts" / "connection.mmd").read_text(encoding="utf-8").strip()
    page = (ROOT / "docs" / "states.md").read_text(encoding="utf-8")
    assert chart in page, "paste statecharts/connection.mmd into docs/states.md"


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:1500]
    assert "make demo" in head and "make test" in head
