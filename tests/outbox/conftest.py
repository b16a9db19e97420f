"""Fixtures for the outbox tests: a loopback server, a loopback "internet", a manager."""

from __future__ import annotations

import random

import pytest
from outbox_helpers import make_manager

from connmgr.outbox import Outbox
from connmgr.testing import FakeClock, FaultServer


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture
def manager(server, probe_target, clock):
    mgr = make_manager(server.url, probe_target.port, clock)
    yield mgr
    mgr.close()


@pytest.fixture
def clock():
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def make_outbox(tmp_path, manager, clock):
    """Outbox factory: same file by default, closed after the test."""
    opened: list[Outbox] = []

    def make(path=None, mgr=None, **kw):
        kw.setdefault("clock", clock)
        kw.setdefault("rng", random.Random(1))
        box = Outbox(path or tmp_path / "outbox.db", mgr or manager, **kw)
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()


@pytest.fixture
def outbox(make_outbox):
    return make_outbox()
