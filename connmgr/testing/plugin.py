"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures for testing applications built on connmgr:

- ``fake_clock``: a :class:`~connmgr.testing.FakeClock` to inject as ``clock=``;
- ``fault_server``: a started :class:`~connmgr.testing.FaultServer` (plain HTTP),
  stopped after the test;
- ``tls_fault_server``: the same over HTTPS with a `trustme` CA
  (``verify=tls_fault_server.ca_bundle``);
- ``probe_target``: a :class:`~connmgr.testing.ProbeTarget`, the loopback "internet"
  to point a ``TcpProbe`` at, closed after the test;
- ``netlab``: a started :class:`~connmgr.testing.NetLab` (network namespaces:
  Linux and root), removed after the test; the test is skipped, with the reason,
  where a lab cannot run.

It also registers the marker ``netlab`` (select or deselect those tests with
``-m netlab`` / ``-m "not netlab"``).

Every pytest run loads this module, so it imports nothing heavy at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from connmgr.testing.clock import FakeClock
from connmgr.testing.probe import ProbeTarget

if TYPE_CHECKING:
    from connmgr.testing.netlab import NetLab
    from connmgr.testing.server import FaultServer

__all__ = [
    "fake_clock",
    "fault_server",
    "netlab",
    "probe_target",
    "pytest_configure",
    "tls_fault_server",
]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``netlab`` marker (tests that build network namespaces)."""
    config.addinivalue_line(
        "markers", "netlab: builds a NetLab (network namespaces; Linux and root, else skipped)"
    )


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    """A :class:`FakeClock` (auto-advancing) for injecting as ``clock=``."""
    yield FakeClock()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A running :class:`~connmgr.testing.FaultServer` on 127.0.0.1, closed after the test.

    Example::

        def test_retries_503(fault_server):
            url = fault_server.url_for("/flaky/a?fail=2&status=503")
            assert my_client.get(url).status_code == 200
            assert fault_server.hits("/flaky/a") == 3
    """
    from connmgr.testing.server import FaultServer

    with FaultServer() as server:
        yield server


@pytest.fixture
def tls_fault_server() -> Iterator[FaultServer]:
    """A running HTTPS :class:`~connmgr.testing.FaultServer`; trust ``ca_bundle``.

    Example::

        def test_tls(tls_fault_server):
            r = requests.get(tls_fault_server.url_for("/ok"),
                             verify=tls_fault_server.ca_bundle)
    """
    from connmgr.testing.server import FaultServer

    with FaultServer(tls=True) as server:
        yield server


@pytest.fixture
def probe_target() -> Iterator[ProbeTarget]:
    """A :class:`ProbeTarget` accepting on a loopback port, closed after the test.

    Example::

        def test_offline_banner(probe_target, fake_clock):
            monitor = NetworkMonitor([TcpProbe("127.0.0.1", probe_target.port)],
                                     clock=fake_clock)
            probe_target.close()                  # the network goes away
            assert monitor.is_online(force_check=True) is False
    """
    with ProbeTarget() as target:
        yield target


@pytest.fixture
def netlab() -> Iterator[NetLab]:
    """A started :class:`~connmgr.testing.NetLab`, closed after the test; skips where it cannot run.

    Example::

        def test_offline_when_unplugged(netlab):
            netlab.pull_cable()
            assert netlab.client_python(
                "import connmgr; m = connmgr.NetworkMonitor([connmgr.TcpProbe(args, 80)],"
                " timeout=1); return m.check().value", netlab.hosts["store.test"]
            ) == "offline"
    """
    from connmgr.testing.netlab import NetLab

    reason = NetLab.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with NetLab() as lab:
        yield lab
