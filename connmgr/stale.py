"""Yesterday's answer instead of no answer: stale responses from the session's cache.

When a GET cannot be answered live (the network is gone, the origin's circuit
is open, the server paused us beyond ``max_wait``, or the request failed as
unreachable), a manager with ``serve_stale=True`` answers from the session's
HTTP cache instead, even when the cached answer has expired (RFC 5861's
``stale-if-error``, tied to the state of the connection). The response is
marked ``from_cache`` and :func:`stale_age` says how old it is, so the UI can
say the truth: "Showing results from 5 minutes ago".

The cache is the session's: requests-cache's ``CachedSession`` (extra
``cache``) is the documented one. Any session whose ``cache`` offers
requests-cache's ``create_key(request)`` and ``get_response(key)`` works.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time

import requests

from connmgr.errors import (
    BackoffError,
    ConnectionFailedError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestTimeoutError,
)

__all__ = ["cached_answer", "may_serve_stale", "stale_age"]

logger = logging.getLogger(__name__)

#: The failures a stale answer may stand in for: no live answer could be had.
_NO_LIVE_ANSWER = (
    OfflineError,  # the captive portal's error too
    BackoffError,
    RateLimitError,
    ConnectionFailedError,
    RequestTimeoutError,
)


def may_serve_stale(method: str, error: NetworkError) -> bool:
    """Whether a cached answer may replace ``error`` for a ``method`` request.

    Only a GET, and only when no live answer could be had: offline (or behind
    a captive portal), the circuit open, a rate limit beyond the caller's wait,
    an unreachable server or a timeout. A 404 or a 500 is a live answer and is
    never hidden behind an old one.
    """
    return method == "GET" and isinstance(error, _NO_LIVE_ANSWER)


def cached_answer(
    session: requests.Session, prepared: requests.PreparedRequest
) -> requests.Response | None:
    """The session cache's answer to ``prepared``, expired or not; ``None`` if none.

    Never sends anything and never raises: a cache that fails is logged (debug)
    and treated as empty.
    """
    cache = getattr(session, "cache", None)
    create_key = getattr(cache, "create_key", None)
    get_response = getattr(cache, "get_response", None)
    if create_key is None or get_response is None:
        return None
    try:
        response = get_response(create_key(prepared))
    except Exception as exc:  # a third-party cache: anything may go wrong in it
        logger.debug("the session's cache failed a lookup: %s", type(exc).__name__)
        return None
    if not isinstance(response, requests.Response):
        return None
    if not getattr(response, "from_cache", False):  # requests-cache's own says True
        response.from_cache = True  # type: ignore[attr-defined]
    return response


def stale_age(response: requests.Response) -> float | None:
    """Seconds since a cached ``response`` was stored; ``None`` for a live response.

    Example::

        r = mgr.get("/search", params={"q": "house"})
        age = connmgr.stale_age(r)
        if age is not None:
            banner.show(f"Showing results from {round(age / 60)} minutes ago")
    """
    if not getattr(response, "from_cache", False):
        return None
    created = getattr(response, "created_at", None)
    if isinstance(created, _dt.datetime):
        if created.tzinfo is None:  # requests-cache stores naive UTC times
            created = created.replace(tzinfo=_dt.UTC)
        stored = created.timestamp()
    elif isinstance(created, int | float):
        stored = float(created)
    else:
        return None
    return max(0.0, time.time() - stored)
