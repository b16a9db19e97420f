"""Test helpers for connmgr and for applications built on it: FaultServer, FakeClock,
ProbeTarget.

``FaultServer`` (a loopback server that fails on request) is imported on first
use, so ``import connmgr.testing`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connmgr.testing.clock import FakeClock
from connmgr.testing.probe import ProbeTarget

if TYPE_CHECKING:
    from connmgr.testing.server import FaultServer, RecordedRequest, RequestHeaders

__all__ = ["FakeClock", "FaultServer", "ProbeTarget", "RecordedRequest", "RequestHeaders"]

_LAZY = {"FaultServer", "RecordedRequest", "RequestHeaders"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from connmgr.testing import server

        value = getattr(server, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
