"""docs/migrating.md: every Python block runs, or says why it cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.DOTALL)
_NOT_RUNNABLE = re.compile(r"<!-- not runnable: (?P<reason>.{10,}) -->")


def _blocks() -> list[tuple[int, str, str | None]]:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        mark = _NOT_RUNNABLE.fullmatch(match.group("before").strip())
        found.append((line, match.group("code"), mark.group("reason") if mark else None))
    return found


BLOCKS = _blocks()


def test_the_page_has_runnable_blocks_and_a_row_per_plan_name() -> None:
    assert sum(reason is None for _, _, reason in BLOCKS) >= 3
    text = PAGE.read_text(encoding="utf-8")
    for name in (
        "TimeoutConfig", "NetworkConfig", "TimeoutHTTPAdapter", "create_session", "RetryConfig",
        "exponential_backoff", "RetryTracker", "RetryCallback", "NetworkState",
        "NetworkStatusIndicator", "RateLimiter", "RateLimitParser", "NetworkError",
        "RateLimitError", "classify_error", "ErrorMessageFormatter",
    ):  # fmt: skip
        assert re.search(rf"^\| [^|]*`{name}\b", text, re.MULTILINE), f"no row for {name}"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(code, reason) for _, code, reason in BLOCKS],
    ids=[f"line-{line}" for line, _, _ in BLOCKS],
)
def test_block_runs(code: str, reason: str | None) -> None:
    if reason is not None:
        pytest.skip(f"marked not runnable in the page: {reason}")
    exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_block"})
