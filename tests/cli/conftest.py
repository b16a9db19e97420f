"""Fixtures of the CLI tests: a FaultServer, a listening port, a refusing port."""

from __future__ import annotations

import socket

import pytest

from connmgr.testing import FaultServer


@pytest.fixture(scope="module")
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture(scope="module")
def listening_port():
    """A loopback port that accepts connections: a TCP probe that says "online"."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
