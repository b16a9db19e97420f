"""Every Python block in docs/network.md runs, unless it is marked not runnable with a reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent.parent / "docs" / "network.md"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
_NOT_RUNNABLE = re.compile(r"<!-- not runnable: (.+?) -->\s*$")


def _blocks() -> list[tuple[int, str, str | None]]:
    """``(line, code, reason not runnable or None)`` for each ```python block."""
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marked = _NOT_RUNNABLE.search(before)
        found.append((line, match.group(2), marked.group(1) if marked else None))
    return found


BLOCKS = _blocks()


def test_the_page_has_runnable_blocks_and_every_skip_says_why():
    assert sum(1 for _, _, why in BLOCKS if why is None) >= 8
    for line, _, why in BLOCKS:
        assert why is None or len(why) > 10, f"line {line}: say why it is not runnable"


@pytest.mark.parametrize(
    ("line", "code"),
    [(line, code) for line, code, why in BLOCKS if why is None],
    ids=[f"line {line}" for line, _, why in BLOCKS if why is None],
)
def test_a_block_runs(line, code):
    exec(compile(code, f"{PAGE}:{line}", "exec"), {"__name__": f"docs_network_{line}"})
