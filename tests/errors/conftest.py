"""Fixtures shared by the tests of connmgr.errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from connmgr.testing import FaultServer


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault:
        yield fault


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()
