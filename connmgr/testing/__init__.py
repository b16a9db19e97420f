"""Test helpers for connmgr and for applications built on it: FaultServer, FakeClock."""

from __future__ import annotations

from connmgr.testing.clock import FakeClock

__all__ = ["FakeClock"]
