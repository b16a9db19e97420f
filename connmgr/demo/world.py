"""The demo's embedded world: a loopback store API, a loopback "internet", one manager."""

from __future__ import annotations

import contextlib
import random

import requests

from connmgr.demo.story import SEARCH_PATH
from connmgr.demo.timings import DemoTimings
from connmgr.manager import ConnectionManager
from connmgr.network import HttpProbe, NetworkMonitor
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.testing import FaultServer

__all__ = ["DemoWorld"]


def _network_first_cache() -> requests.Session | None:
    """An in-memory HTTP cache that is only ever the fallback, or ``None`` without requests-cache.

    ``no-cache`` makes every search go to the server (the story's other
    chapters must see every answer) while the cache still saves each 200,
    which is what a stale answer is read from.
    """
    try:
        import requests_cache
    except ImportError:
        return None
    session = requests_cache.CachedSession(backend="memory")
    session.headers["Cache-Control"] = "no-cache"
    return session


class DemoWorld:
    """The embedded world of the terminal demo: a store API, an "internet", one manager.

    Two loopback :class:`~connmgr.testing.FaultServer` instances: ``api`` (what the
    workers search) and ``internet`` (what the network monitor probes,
    ``/generate_204``). :meth:`set_network` loses the network (the probe is reset,
    the API stops listening) or brings it back. Nothing leaves 127.0.0.1.

    With requests-cache installed (extra ``cache``) the manager's session is an
    in-memory ``CachedSession`` that asks the network first (``Cache-Control:
    no-cache``) and keeps every answer, so the offline-first chapter can serve
    searches stale; without it, a plain session.

    Example::

        with DemoWorld() as world:
            world.manager.get("/api/search", params={"q": "disco"}, operation="search")
    """

    def __init__(self, *, timings: DemoTimings | None = None, seed: int = 6) -> None:
        self.timings = timings or DemoTimings()
        self.api = FaultServer().start()
        self.internet = FaultServer().start()
        self._session = _network_first_cache()
        try:
            self.api.alias(SEARCH_PATH, "/ok?delay=0.02")
            self.monitor: NetworkMonitor = NetworkMonitor(
                probes=[HttpProbe(self.internet.url_for("/generate_204"))],
                interval=max(5.0, self.timings.offline_interval),
                offline_interval=self.timings.offline_interval,
                timeout=0.5,
                debounce=0.0,
            )
            self.manager: ConnectionManager = ConnectionManager(
                self.api.url,
                session=self._session,
                timeouts=self.timings.timeouts(),
                retry=self.timings.retry(),
                rate_limits=OriginRateLimits(
                    default=RateLimit(max_requests=self.timings.rate, time_window=1.0)
                ),
                monitor=self.monitor,
                policy=self.timings.policy(),
                rng=random.Random(seed),
            )
            self.monitor.start()
        except BaseException:
            if self._session is not None:
                self._session.close()
            self.api.close()
            self.internet.close()
            raise
        self.network_up = True

    def set_network(self, up: bool) -> None:
        """Lose the network (probe reset, API refusing) or bring it back."""
        if up and not self.network_up:
            self.api.start()
            self.internet.alias("/generate_204", None)
        elif not up and self.network_up:
            self.internet.alias("/generate_204", "/reset")
            self.api.stop()
        self.network_up = up
        self.monitor.hint_changed("demo")

    def close(self) -> None:
        """Stop the watcher, close the manager, stop both servers."""
        with contextlib.suppress(Exception):
            self.monitor.stop()
        with contextlib.suppress(Exception):
            self.manager.close()
        if self._session is not None:  # ours, not the manager's: it does not close it
            self._session.close()
        self.api.close()
        self.internet.close()

    def __enter__(self) -> DemoWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
