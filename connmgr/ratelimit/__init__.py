"""Client-side rate limiting: a fair GCRA limiter, per-origin limits, header parsing.

Four pieces, each usable alone, each in its own module:

- :mod:`~connmgr.ratelimit.headers` (a leaf): :func:`parse_rate_limit_headers`
  reads every common dialect (``Retry-After``, ``X-RateLimit-*``,
  ``X-Rate-Limit-*``, the IETF ``RateLimit-*`` fields and the structured
  ``RateLimit`` / ``RateLimit-Policy``) into a :class:`RateLimitInfo`, and
  never raises;
- :mod:`~connmgr.ratelimit.limiter`: :class:`RateLimiter`, GCRA, fair,
  cancellable, never waiting past its timeout; its state lives in a
  :mod:`connmgr.quota` bucket (memory, or shared through SQLite or Redis);
- :mod:`~connmgr.ratelimit.lanes`: who of the waiting callers goes next
  (``priority="interactive"`` before ``"background"``, never starved);
- :mod:`~connmgr.ratelimit.adaptive`: :class:`AdaptiveRateLimiter` adds what the
  server says (pauses, quota spreading, a rate cut on 429s that recovers);
- :mod:`~connmgr.ratelimit.origins`: :class:`OriginRateLimits`, one limiter per
  origin (``scheme://host:port``, see :func:`origin_of`); no limit by default
  until the server asks for one.

Example::

    limits = OriginRateLimits(default=RateLimit(max_requests=10, time_window=1.0))
    limiter = limits.for_origin(origin_of(url))
    if not limiter.wait(timeout=5.0, cancel=token):
        if token.cancelled:
            raise RequestCancelledError()
        raise RateLimitError(retry_after=limiter.get_wait_time())
    response = session.get(url)
    limiter.record_response(response.status_code, parse_rate_limit_headers(response.headers))

See ``docs/rate-limiting.md`` for the algorithm, the dialects and the adaptive rule.
"""

from __future__ import annotations

from connmgr.ratelimit.adaptive import AdaptivePolicy, AdaptiveRate, AdaptiveRateLimiter
from connmgr.ratelimit.headers import (
    MAX_SANE_COUNT,
    MAX_SANE_DELAY,
    HeaderSource,
    RateLimitInfo,
    RateLimitParser,
    parse_rate_limit_headers,
    parse_retry_after,
)
from connmgr.ratelimit.lanes import Priority, lane_of
from connmgr.ratelimit.limiter import DEFAULT_MAX_PAUSE, LimiterStatus, RateLimiter
from connmgr.ratelimit.origins import OriginRateLimits, RateLimit, origin_of

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "MAX_SANE_COUNT",
    "MAX_SANE_DELAY",
    "AdaptivePolicy",
    "AdaptiveRate",
    "AdaptiveRateLimiter",
    "HeaderSource",
    "LimiterStatus",
    "OriginRateLimits",
    "Priority",
    "RateLimit",
    "RateLimitInfo",
    "RateLimitParser",
    "RateLimiter",
    "lane_of",
    "origin_of",
    "parse_rate_limit_headers",
    "parse_retry_after",
]
