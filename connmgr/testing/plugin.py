"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures for testing applications built on connmgr: ``fake_clock``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connmgr.testing.clock import FakeClock


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A :class:`FakeClock` (auto-advancing) for injecting as ``clock=``."""
    yield FakeClock()
