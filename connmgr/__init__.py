"""connmgr: a state-machine-driven HTTP connection manager on top of requests."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> defining module. Lazy (PEP 562) only while the package is assembled.
_EXPORTS: dict[str, str] = {
    "CancelToken": "connmgr.clock",
    "Clock": "connmgr.clock",
    "SystemClock": "connmgr.clock",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connmgr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
