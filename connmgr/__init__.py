"""connmgr: a state-machine-driven HTTP connection manager on top of requests.

Deadlines that hold, retries that never duplicate a POST, per-origin rate
limits that follow the server's headers, network state with captive-portal
detection, one error tree with plain-words messages, and blinker signals for
every change.

Example::

    import connmgr

    with connmgr.ConnectionManager(base_url="https://api.example.com") as mgr:
        try:
            r = mgr.get("/search", params={"q": "daft punk"}, operation="search")
        except connmgr.NetworkError as err:
            show_error(err.user_message, err.suggestion)

``__all__`` is the product. Building blocks stay importable from their modules
(:mod:`connmgr.errors`, :mod:`connmgr.ratelimit`, :mod:`connmgr.retry`, ...).
The original plan's names (``NetworkState``, ``exponential_backoff``,
``RateLimiter``, ...) are importable from here too; they live in
:mod:`connmgr.compat` and load on first use. Qt lives only in :mod:`connmgr.qt`
(extra ``qt``), so ``import connmgr`` never needs PySide6.
"""

from __future__ import annotations

import importlib
from typing import Any

from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.errors import (
    BackoffError,
    CaptivePortalError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
)
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager, ManagerClosedError
from connmgr.network import DnsProbe, HttpProbe, NetworkMonitor, NetworkStatus, TcpProbe
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.retry import RetryBudget, RetryConfig
from connmgr.snapshot import ConnectionSnapshot, ManagerStats
from connmgr.stale import stale_age
from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

#: The original plan's names that are not product names, loaded from connmgr.compat.
_PLAN_NAMES = frozenset(
    {
        "ErrorMessageFormatter",
        "NetworkConfig",
        "NetworkState",
        "NetworkStatusIndicator",
        "RateLimitParser",
        "RateLimiter",
        "RetryCallback",
        "RetryTracker",
        "TimeoutHTTPAdapter",
        "classify_error",
        "create_session",
        "exponential_backoff",
    }
)


def __getattr__(name: str) -> Any:
    if name in _PLAN_NAMES:
        return getattr(importlib.import_module("connmgr.compat"), name)
    if name == "__version__":
        # Read once, on first use: importlib.metadata costs more than the rest of
        # connmgr's import.
        from importlib.metadata import version

        globals()["__version__"] = found = version("connmgr")
        return found
    raise AttributeError(f"module 'connmgr' has no attribute {name!r}")


__all__ = [
    "BackoffError",
    "CancelToken",
    "CaptivePortalError",
    "ConnectionFailedError",
    "ConnectionManager",
    "ConnectionSnapshot",
    "ConnectionState",
    "DNSError",
    "DeadlineExceededError",
    "DnsProbe",
    "HTTPStatusError",
    "HttpProbe",
    "InvalidRequestError",
    "MachinePolicy",
    "ManagerClosedError",
    "ManagerStats",
    "NetworkError",
    "NetworkMonitor",
    "NetworkStatus",
    "OfflineError",
    "OriginRateLimits",
    "RateLimit",
    "RateLimitError",
    "RequestCancelledError",
    "RequestTimeoutError",
    "RetryBudget",
    "RetryConfig",
    "ServerError",
    "TLSError",
    "TcpProbe",
    "TimeoutConfig",
    "TimeoutProfiles",
    "signals",
    "stale_age",
]
