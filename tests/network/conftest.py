"""Fixtures for the network tests: loopback listeners, refused and blackholed ports, events."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from network_helpers import (
    Events,
    Recorder,
)

from connmgr import signals
from connmgr.testing import ProbeTarget
from connmgr.testing.server import FaultServer


@pytest.fixture
def listener() -> Iterator[ProbeTarget]:
    with ProbeTarget() as target:
        yield target


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A port whose connects hang until they time out.

    A listener with backlog 0 that never accepts: once its accept queue is full
    (one connection on Linux), the kernel drops further SYNs instead of refusing
    them, so a connect waits for its timeout — like a firewall that drops packets.
    """
    with ProbeTarget() as target:
        target.blackhole()
        yield target.port


@pytest.fixture
def events() -> Iterator[Events]:
    collector = Events()
    with signals.network_changed.connected_to(collector):
        yield collector


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Every network_changed / network_epoch_changed payload during the test."""
    collector = Recorder()
    with (
        signals.network_changed.connected_to(collector.status),
        signals.network_epoch_changed.connected_to(collector.epoch),
    ):
        yield collector
