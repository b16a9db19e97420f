"""docs/offline.md is in the site's navigation (tests/test_docs.py runs its blocks)."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "offline.md"


def test_the_page_is_in_the_nav():
    nav = (PAGE.parents[1] / "mkdocs.yml").read_text(encoding="utf-8")
    assert "offline.md" in nav
