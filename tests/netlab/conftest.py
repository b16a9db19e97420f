"""One NetLab per test module (building one takes about half a second), reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connmgr.testing.netlab import NetLab


@pytest.fixture(scope="module")
def module_lab() -> Iterator[NetLab]:
    reason = NetLab.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with NetLab() as lab:
        yield lab


@pytest.fixture
def lab(module_lab: NetLab) -> NetLab:
    """The module's lab, back in its starting state (network 1, every knob off)."""
    module_lab.reset()
    return module_lab
