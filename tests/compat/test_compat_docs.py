"""docs/migrating.md has a row for every plan name (tests/test_docs.py runs its blocks)."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"


def test_the_page_has_a_row_per_plan_name() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in (
        "TimeoutConfig", "NetworkConfig", "TimeoutHTTPAdapter", "create_session", "RetryConfig",
        "exponential_backoff", "RetryTracker", "RetryCallback", "NetworkState",
        "NetworkStatusIndicator", "RateLimiter", "RateLimitParser", "NetworkError",
        "RateLimitError", "classify_error", "ErrorMessageFormatter",
    ):  # fmt: skip
        assert re.search(rf"^\| [^|]*`{name}\b", text, re.MULTILINE), f"no row for {name}"
