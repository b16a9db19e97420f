"""Per-origin limits: :func:`origin_of` (the key), :class:`RateLimit`, :class:`OriginRateLimits`.

By default an origin has no limit of its own ("none until the server says
otherwise"): its :class:`~connmgr.ratelimit.AdaptiveRateLimiter` lets every
request go at once and starts pacing when the server sends quota headers,
``Retry-After`` or a 429. Configured limits (a default, per origin, per host)
pace from the first request.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from connmgr import forksafe
from connmgr.clock import SYSTEM_CLOCK, Clock
from connmgr.frozen import explain_frozen
from connmgr.quota.base import QuotaStore
from connmgr.quota.memory import MemoryStore
from connmgr.ratelimit.adaptive import AdaptivePolicy, AdaptiveRateLimiter
from connmgr.ratelimit.limiter import LimiterStatus, check_burst, check_number

__all__ = ["OriginRateLimits", "RateLimit", "origin_of"]


_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: str) -> str:
    """The origin ``scheme://host:port`` of ``url``: the key of per-origin state.

    The scheme and host are lower-cased, the default port is filled in, user
    info (credentials) is dropped, IPv6 hosts keep their brackets. Raises
    ``ValueError`` for a URL without a scheme or host, or with a bad port.

    Example::

        >>> origin_of("HTTPS://User:secret@API.Example.com/search?q=x")
        'https://api.example.com:443'
        >>> origin_of("http://[::1]:8080/x")
        'http://[::1]:8080'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased, without user info or brackets
    if not scheme or not host:
        raise ValueError("not an absolute URL with a host (scheme://host/...)")
    port = parts.port  # raises ValueError for a bad port
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


# ---------------------------------------------------------------------------
# Per-origin limits
# ---------------------------------------------------------------------------


@explain_frozen
@dataclass(frozen=True, slots=True)
class RateLimit:
    """A rate-limit setting: ``max_requests`` per ``time_window`` seconds, optional ``burst``.

    Example::

        RateLimit(max_requests=10, time_window=1.0)            # 10 a second
        RateLimit(5, 1.0)                                       # 5 a second
        RateLimit(max_requests=300, time_window=60.0, burst=5)  # 5/s, 5 at once at most
    """

    max_requests: float = 10
    time_window: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        check_number("max_requests", self.max_requests)
        check_number("time_window", self.time_window)
        check_burst(self.burst)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.max_requests / self.time_window


class OriginRateLimits:
    """One :class:`AdaptiveRateLimiter` per origin, created on first use.

    ``overrides`` maps an origin or URL (``"https://api.example.com"``, port
    filled in) or a bare host name (``"api.example.com"``, any scheme and port)
    to its :class:`RateLimit` (or ``None``: no limit); every other origin gets
    ``default``. ``default=None`` (the default) means no configured limit: an
    origin's limiter only paces once the server says so (quota headers,
    ``Retry-After``, 429s), unless ``adaptive=False``, which then never paces.
    Traffic to one origin never waits on another's limit. Thread-safe.

    ``store`` is where every origin's limiter keeps its pacing state, the
    server's pauses and what the server taught (:mod:`connmgr.quota`): a
    :class:`~connmgr.quota.MemoryStore` of its own by default; a
    :class:`~connmgr.quota.SQLiteStore` or :class:`~connmgr.quota.RedisStore`
    makes every process using the same store (and origin) spend one quota.
    The waiting queue and its priorities stay in this process.

    Example::

        limits = OriginRateLimits(
            default=RateLimit(max_requests=10, time_window=1.0),
            overrides={"https://api.example.com": RateLimit(max_requests=2, time_window=1.0)},
        )
        limits.for_origin("https://api.example.com:443").wait()
        limits.for_origin(origin_of("http://other.example/x")).rate     # 10.0
        OriginRateLimits().for_origin("http://other.example").rate       # inf: no limit
    """

    def __init__(
        self,
        default: RateLimit | None = None,
        overrides: Mapping[str, RateLimit | None] | None = None,
        *,
        adaptive: bool = True,
        clock: Clock | None = None,
        adaptive_policy: AdaptivePolicy | None = None,
        store: QuotaStore | None = None,
    ) -> None:
        if default is not None and not isinstance(default, RateLimit):
            raise TypeError(f"default must be a RateLimit or None, got {default!r}")
        self.default = default
        self.adaptive = adaptive
        self.adaptive_policy = adaptive_policy if adaptive_policy is not None else AdaptivePolicy()
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        if store is not None and not isinstance(store, QuotaStore):
            raise TypeError(f"store must be a connmgr.quota.QuotaStore, got {store!r}")
        self._store: QuotaStore = store if store is not None else MemoryStore()
        self._lock = threading.Lock()
        self._by_origin: dict[str, RateLimit | None] = {}
        self._by_host: dict[str, RateLimit | None] = {}
        self._limiters: dict[str, AdaptiveRateLimiter] = {}
        for key, limit in (overrides or {}).items():
            self._set_override(key, limit)
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
        self._lock = threading.Lock()

    def _set_override(self, key: str, limit: RateLimit | None) -> None:
        if limit is not None and not isinstance(limit, RateLimit):
            raise TypeError(f"overrides[{key!r}] must be a RateLimit or None, got {limit!r}")
        if "://" in key:
            self._by_origin[origin_of(key)] = limit
        else:
            self._by_host[key.strip().lower().rstrip(".")] = limit

    def limit_for(self, origin: str) -> RateLimit | None:
        """The :class:`RateLimit` configured for ``origin`` (an origin or URL); ``None``: none."""
        key = self._key(origin)
        if key in self._by_origin:
            return self._by_origin[key]
        host = urlsplit(key).hostname or ""
        return self._by_host.get(host, self.default)

    @staticmethod
    def _key(origin: str) -> str:
        return origin_of(origin)

    def for_origin(self, origin: str) -> AdaptiveRateLimiter:
        """The limiter of ``origin`` (or of a URL's origin), created on first use."""
        limiter = self._limiters.get(origin)  # the manager passes normalised origins
        if limiter is not None:
            return limiter
        key = self._key(origin)
        limiter = self._limiters.get(key)
        if limiter is not None:
            return limiter
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limit = self.limit_for(key)
                limiter = AdaptiveRateLimiter(
                    None if limit is None else limit.max_requests,
                    1.0 if limit is None else limit.time_window,
                    burst=None if limit is None else limit.burst,
                    clock=self._clock,
                    adaptive=self.adaptive,
                    policy=self.adaptive_policy,
                    bucket=self._store.bucket(key),
                )
                self._limiters[key] = limiter
            return limiter

    @property
    def store(self) -> QuotaStore:
        """Where the limiters keep their state (shared with other processes, or not)."""
        return self._store

    def forget(self, origin: str) -> bool:
        """Drop ``origin``'s limiter unless it still holds something; ``True`` if dropped.

        A limiter in a server's pause, or with callers waiting, is kept: dropping
        it would forget what the server said. The manager calls this when it
        evicts an idle origin, so memory does not grow with every origin ever seen.
        """
        key = self._key(origin)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                return False
            if limiter.paused_until is not None or limiter.waiting:
                return False
            del self._limiters[key]
            return True

    def configure(self, origin: str, limit: RateLimit | None) -> None:
        """Set or change an override at runtime; an existing limiter adopts the new rate.

        ``origin`` is an origin/URL or a bare host name, as in ``overrides``;
        ``limit=None`` removes the configured limit there. A changed burst
        applies to limiters created afterwards.
        """
        with self._lock:
            self._set_override(origin, limit)
            existing = list(self._limiters.items())
        for key, limiter in existing:
            if self.limit_for(key) is limit:
                if limit is None:
                    limiter.set_rate(None)
                else:
                    limiter.set_rate(limit.max_requests, limit.time_window)

    def origins(self) -> list[str]:
        """The origins that have a limiter so far."""
        with self._lock:
            return list(self._limiters)

    def status(self) -> dict[str, LimiterStatus]:
        """A status snapshot of every origin's limiter, for the UI."""
        with self._lock:
            limiters = list(self._limiters.items())
        return {origin: limiter.status() for origin, limiter in limiters}

    def __contains__(self, origin: object) -> bool:
        if not isinstance(origin, str):
            return False
        try:
            return self._key(origin) in self._limiters
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self._limiters)

    def __repr__(self) -> str:
        overrides = len(self._by_origin) + len(self._by_host)
        return (
            f"OriginRateLimits(default={self.default!r}, overrides={overrides}, "
            f"origins={len(self._limiters)}, adaptive={self.adaptive})"
        )
