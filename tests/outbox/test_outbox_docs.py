"""docs/offline.md: every ```python block runs, as written (each one is self-contained).

A block preceded by ``<!-- not runnable: reason -->`` is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "offline.md"
_BLOCK = re.compile(r"(<!-- not runnable: [^>]+ -->\s*)?```python\n(.*?)```", re.S)


def blocks():
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        found.append(pytest.param(match.group(2), bool(match.group(1)), id=f"line{line}"))
    return found


@pytest.mark.parametrize(("code", "skipped"), blocks())
def test_the_block_runs(code, skipped, capsys):
    if skipped:
        pytest.skip("marked not runnable in the page")
    exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_offline"})


def test_the_page_has_runnable_outbox_blocks():
    assert len([b for b in blocks() if not b.values[1]]) >= 4


def test_the_page_is_in_the_nav():
    nav = (PAGE.parents[1] / "mkdocs.yml").read_text(encoding="utf-8")
    assert "offline.md" in nav
