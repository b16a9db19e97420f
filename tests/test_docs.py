"""The docs quote the code: keep the quotes in step."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_states_page_shows_the_pre_rendered_statechart():
    page = (ROOT / "docs" / "states.md").read_text(encoding="utf-8")
    assert "](images/connection.svg)" in page
    assert "```mermaid" not in page  # no diagram that needs a script from a CDN
    shown = (ROOT / "docs" / "images" / "connection.svg").read_bytes()
    generated = (ROOT / "statecharts" / "connection.svg").read_bytes()
    assert shown == generated, "cp statecharts/connection.svg docs/images/connection.svg"


def test_the_docs_site_loads_nothing_from_a_cdn():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    settings = [line for line in config.splitlines() if not line.strip().startswith("#")]
    assert not [line for line in settings if "mermaid" in line.lower()]
    assert "extra_javascript" not in config
    assert "font: false" in settings_text(settings)  # not Roboto from Google's CDN
    for page in (ROOT / "docs").glob("*.md"):
        assert "```mermaid" not in page.read_text(encoding="utf-8"), page.name


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:1500]
    assert "make demo" in head and "make test" in head


def settings_text(lines: list[str]) -> str:
    return "\n".join(line.strip() for line in lines)
