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

Optional parts live in subpackages: :mod:`connmgr.qt` (extra ``qt``) and
:mod:`connmgr.testing` (FaultServer, FakeClock, pytest fixtures). The Qt
names below are also reachable here, imported only when first used, so that
``import connmgr`` never needs PySide6.
"""

from __future__ import annotations

import importlib
from typing import Any

from connmgr import signals
from connmgr.clock import CancelToken, Clock, SystemClock
from connmgr.errors import (
    BackoffError,
    ConnectionFailedError,
    DeadlineExceededError,
    DNSError,
    ErrorMessageFormatter,
    HTTPStatusError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    RequestTimeoutError,
    ServerError,
    TLSError,
    classify_error,
    redact_headers,
    redact_text,
    redact_url,
)
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager, ConnectionSnapshot, ManagerStats
from connmgr.network import (
    DnsProbe,
    HttpProbe,
    NetworkMonitor,
    NetworkState,
    NetworkStatus,
    ProbeResult,
    TcpProbe,
)
from connmgr.ratelimit import (
    AdaptiveRateLimiter,
    LimiterStatus,
    OriginRateLimits,
    RateLimit,
    RateLimiter,
    RateLimitInfo,
    RateLimitParser,
    origin_of,
    parse_rate_limit_headers,
    parse_retry_after,
)
from connmgr.retry import (
    RetryBudget,
    RetryCallback,
    RetryConfig,
    RetryEvent,
    RetryTracker,
    exponential_backoff,
)
from connmgr.timeouts import (
    Deadline,
    NetworkConfig,
    TimeoutConfig,
    TimeoutProfiles,
    UnknownOperationError,
)
from connmgr.transport import AttemptContext, TimeoutHTTPAdapter, create_session

__version__ = "0.1.0"

#: Qt names (extra ``qt``), loaded from connmgr.qt on first use.
_QT_NAMES = frozenset(
    {"ConnectionStatusWidget", "NetworkStatusIndicator", "RetryBanner", "SignalBridge"}
)


def __getattr__(name: str) -> Any:
    if name in _QT_NAMES:
        return getattr(importlib.import_module("connmgr.qt"), name)
    raise AttributeError(f"module 'connmgr' has no attribute {name!r}")


__all__ = [
    "AdaptiveRateLimiter",
    "AttemptContext",
    "BackoffError",
    "CancelToken",
    "Clock",
    "ConnectionFailedError",
    "ConnectionManager",
    "ConnectionSnapshot",
    "ConnectionState",
    "DNSError",
    "Deadline",
    "DeadlineExceededError",
    "DnsProbe",
    "ErrorMessageFormatter",
    "HTTPStatusError",
    "HttpProbe",
    "InvalidRequestError",
    "LimiterStatus",
    "MachinePolicy",
    "ManagerStats",
    "NetworkConfig",
    "NetworkError",
    "NetworkMonitor",
    "NetworkState",
    "NetworkStatus",
    "OfflineError",
    "OriginRateLimits",
    "ProbeResult",
    "RateLimit",
    "RateLimitError",
    "RateLimitInfo",
    "RateLimitParser",
    "RateLimiter",
    "RequestCancelledError",
    "RequestTimeoutError",
    "RetryBudget",
    "RetryCallback",
    "RetryConfig",
    "RetryEvent",
    "RetryTracker",
    "ServerError",
    "SystemClock",
    "TLSError",
    "TcpProbe",
    "TimeoutConfig",
    "TimeoutHTTPAdapter",
    "TimeoutProfiles",
    "UnknownOperationError",
    "__version__",
    "classify_error",
    "create_session",
    "exponential_backoff",
    "origin_of",
    "parse_rate_limit_headers",
    "parse_retry_after",
    "redact_headers",
    "redact_text",
    "redact_url",
    "signals",
]
