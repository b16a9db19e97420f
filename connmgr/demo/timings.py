"""Every duration of the demo's story, shortened so it fits in about 20 seconds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connmgr.frozen import explain_frozen
from connmgr.machine import MachinePolicy

if TYPE_CHECKING:
    from connmgr.retry import RetryConfig
    from connmgr.timeouts import TimeoutProfiles

__all__ = ["DemoTimings"]


@explain_frozen
@dataclass(frozen=True, slots=True, kw_only=True)
class DemoTimings:
    """Every duration of the story, in seconds: brisk for people, shorter for tests.

    The demo shortens connmgr's defaults so the story fits in about 20 s; the
    header of ``connmgr demo`` says so. :meth:`fast` is about three times faster
    (for tests and ``--fast``).

    Attributes:
        think: a worker's pause between two searches (±50 %).
        hold: how long a calm chapter (healthy, fine) runs.
        flaky_hold: how long the flaky server stays flaky.
        retry_base / retry_max: :class:`~connmgr.retry.RetryConfig` ``base_delay`` /
            ``max_delay`` (defaults 0.5 / 10).
        cooldown_base: :class:`~connmgr.machine.MachinePolicy` ``cooldown_base`` (default 2).
        max_wait: ``MachinePolicy.max_wait``, the longest wait at a gate (default 30).
        retry_after: the ``Retry-After`` the rate-limited server sends.
        offline_hold: how long the network stays lost once the manager is offline.
        offline_interval: how often the monitor re-probes while offline (default 5).
        step_limit: the longest the script waits for an expected state before it
            moves on (and reports the miss).
        story_limit: the whole story never runs longer than this.
        rate: the client's own limit, requests per second per origin, configured
            explicitly so the story runs the same whatever the default. connmgr's
            default is no static limit: the adaptive limiter engages once the server
            answers 429 or sends rate-limit headers, which is what the rate-limit
            chapter shows.
    """

    think: float = 0.25
    hold: float = 2.0
    flaky_hold: float = 4.0
    retry_base: float = 0.2
    retry_max: float = 1.0
    cooldown_base: float = 1.0
    max_wait: float = 5.0
    retry_after: float = 2.0
    offline_hold: float = 2.5
    offline_interval: float = 0.3
    step_limit: float = 8.0
    story_limit: float = 55.0
    rate: float = 50.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"DemoTimings.{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"DemoTimings.{name} must be a positive number, got {value!r}")

    @classmethod
    def fast(cls) -> DemoTimings:
        """About three times faster: for tests and ``connmgr demo --fast``."""
        return cls(
            think=0.08,
            hold=0.5,
            flaky_hold=1.2,
            retry_base=0.05,
            retry_max=0.2,
            cooldown_base=0.3,
            max_wait=2.0,
            retry_after=0.6,
            offline_hold=0.6,
            offline_interval=0.1,
            step_limit=5.0,
            story_limit=40.0,
        )

    def policy(self) -> MachinePolicy:
        """The demo's :class:`~connmgr.machine.MachinePolicy` (short cooldowns and waits)."""
        return MachinePolicy(cooldown_base=self.cooldown_base, max_wait=self.max_wait)

    def retry(self) -> RetryConfig:
        """The demo's :class:`~connmgr.retry.RetryConfig` (3 retries, short delays)."""
        from connmgr.retry import RetryConfig

        return RetryConfig(
            max_retries=3,
            base_delay=self.retry_base,
            max_delay=self.retry_max,
            jitter_range=self.retry_base / 2,
        )

    def timeouts(self) -> TimeoutProfiles:
        """Short timeouts for loopback: search 1 s connect, 3 s read, 15 s total."""
        from connmgr.timeouts import TimeoutConfig, TimeoutProfiles

        return TimeoutProfiles().with_profile(
            "search", TimeoutConfig(connect=1.0, read=3.0, total=15.0)
        )

    def describe(self) -> str:
        """One line for the demo's header: what was shortened, defaults in brackets."""
        return (
            f"demo timings (connmgr's defaults in brackets): retries after {self.retry_base:g} s "
            f"doubling [0.5 s], circuit cooldown {self.cooldown_base:g} s [2 s], gate waits up "
            f"to {self.max_wait:g} s [30 s], offline re-probe every {self.offline_interval:g} s "
            f"[5 s], search timeouts 1/3/15 s [5/45/90 s], client limit {self.rate:g}/s "
            "[none until the server rate-limits]"
        )
