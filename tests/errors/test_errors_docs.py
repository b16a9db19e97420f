"""docs/errors.md: every Python block runs, or says why it cannot."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.DOTALL)
_NOT_RUNNABLE = re.compile(r"<!-- not runnable: (?P<reason>.{10,}) -->")


def _blocks() -> list[tuple[int, str, str | None]]:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        mark = _NOT_RUNNABLE.fullmatch(match.group("before").strip())
        found.append((line, match.group("code"), mark.group("reason") if mark else None))
    return found


BLOCKS = _blocks()


def test_the_page_has_runnable_blocks() -> None:
    assert sum(reason is None for _, _, reason in BLOCKS) >= 4


def test_every_fence_says_what_it_holds() -> None:
    text = PAGE.read_text(encoding="utf-8")
    openings = re.findall(r"^```(\S*)$", text, re.MULTILINE)[::2]
    assert openings and all(openings), "a bare ``` block: say python or text"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(code, reason) for _, code, reason in BLOCKS],
    ids=[f"line-{line}" for line, _, _ in BLOCKS],
)
def test_block_runs(code: str, reason: str | None) -> None:
    if reason is not None:
        pytest.skip(f"marked not runnable in the page: {reason}")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_block"})


def test_the_printed_check_url_lines_are_what_the_block_prints() -> None:
    block = next(code for _, code, _ in BLOCKS if "check_url(bad)" in code)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, str(PAGE), "exec"), {"__name__": "docs_block"})
    shown = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    lines = printed.getvalue().splitlines()
    assert len(lines) == len(shown) == 3
    for real, quoted in zip(lines, shown, strict=True):
        head, _, tail = quoted.partition("...")
        assert real.startswith(head) and real.endswith(tail), (real, quoted)
