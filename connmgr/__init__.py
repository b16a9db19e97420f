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

from typing import TYPE_CHECKING, Any

from connmgr import lazy

if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name loads on first use
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
    from connmgr.outbox import Outbox
    from connmgr.ratelimit import OriginRateLimits, RateLimit
    from connmgr.retry import RetryBudget, RetryConfig
    from connmgr.snapshot import ConnectionSnapshot, ManagerStats
    from connmgr.stale import stale_age
    from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

#: Where each public name lives. ``import connmgr`` imports none of them: an app
#: that starts pays for a part only when it first uses it.
_HOMES = {
    "signals": "connmgr.signals",
    "CancelToken": "connmgr.clock",
    "ConnectionState": "connmgr.machine",
    "MachinePolicy": "connmgr.machine",
    "ConnectionManager": "connmgr.manager",
    "ManagerClosedError": "connmgr.manager",
    "DnsProbe": "connmgr.network",
    "HttpProbe": "connmgr.network",
    "NetworkMonitor": "connmgr.network",
    "NetworkStatus": "connmgr.network",
    "TcpProbe": "connmgr.network",
    "OriginRateLimits": "connmgr.ratelimit",
    "RateLimit": "connmgr.ratelimit",
    "RetryBudget": "connmgr.retry",
    "RetryConfig": "connmgr.retry",
    "ConnectionSnapshot": "connmgr.snapshot",
    "ManagerStats": "connmgr.snapshot",
    "stale_age": "connmgr.stale",
    "Outbox": "connmgr.outbox",
    "TimeoutConfig": "connmgr.timeouts",
    "TimeoutProfiles": "connmgr.timeouts",
    **dict.fromkeys(
        (
            "BackoffError",
            "CaptivePortalError",
            "ConnectionFailedError",
            "DeadlineExceededError",
            "DNSError",
            "HTTPStatusError",
            "InvalidRequestError",
            "NetworkError",
            "OfflineError",
            "RateLimitError",
            "RequestCancelledError",
            "RequestTimeoutError",
            "ServerError",
            "TLSError",
        ),
        "connmgr.errors",
    ),
}

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
    "Outbox",
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

_load, __dir__ = lazy.exports(
    __name__, {**_HOMES, **dict.fromkeys(_PLAN_NAMES, "connmgr.compat")}, [*__all__, *_PLAN_NAMES]
)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # Read once, on first use: importlib.metadata costs more than connmgr's import.
        from importlib.metadata import version

        globals()["__version__"] = found = version("connmgr")
        return found
    return _load(name)
