"""Test helpers for connmgr and for applications built on it: FaultServer, FakeClock,
ProbeTarget, NetLab.

``FaultServer`` (a loopback server that fails on request) and ``NetLab``
(network namespaces with a client, two networks and an internet) are imported
on first use, so ``import connmgr.testing`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connmgr import lazy
from connmgr.testing.clock import FakeClock
from connmgr.testing.probe import ProbeTarget

if TYPE_CHECKING:
    from connmgr.testing.labclient import ClientCodeError
    from connmgr.testing.netlab import NetLab
    from connmgr.testing.server import FaultServer, RecordedRequest, RequestHeaders

__all__ = [
    "ClientCodeError",
    "FakeClock",
    "FaultServer",
    "NetLab",
    "ProbeTarget",
    "RecordedRequest",
    "RequestHeaders",
]

_LAZY = {
    "FaultServer": "connmgr.testing.server",
    "RecordedRequest": "connmgr.testing.server",
    "RequestHeaders": "connmgr.testing.server",
    "NetLab": "connmgr.testing.netlab",
    "ClientCodeError": "connmgr.testing.labclient",
}

__getattr__, __dir__ = lazy.exports(__name__, _LAZY, __all__)
