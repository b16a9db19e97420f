"""Adaptive pacing: what the server says (``Retry-After``, quota headers, 429s) sets the rate.

:class:`AdaptiveRate` is the pure decision (a rate as a function of time after
throttles), :class:`AdaptivePolicy` its constants, and
:class:`AdaptiveRateLimiter` the per-origin limiter that feeds responses into
both. With no configured rate the limiter sends freely until the server first
throttles, then finds the server's limit and, after a long quiet stretch,
lifts its own limit again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from connmgr.clock import Clock
from connmgr.frozen import explain_frozen
from connmgr.quota.base import Answer, Bucket, Feedback
from connmgr.quota.gcra import Meter
from connmgr.ratelimit.headers import RateLimitInfo
from connmgr.ratelimit.limiter import DEFAULT_MAX_PAUSE, RateLimiter, check_number

__all__ = ["AdaptivePolicy", "AdaptiveRate", "AdaptiveRateLimiter"]

logger = logging.getLogger("connmgr.ratelimit")


def _check_fraction(name: str, value: object, *, high: float = 1.0) -> float:
    number = check_number(name, value)
    if number >= high:
        raise ValueError(f"{name} must be in (0, {high:g}), got {value!r}")
    return number


@explain_frozen
@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptivePolicy:
    """How an :class:`AdaptiveRateLimiter` reacts to throttling without usable headers.

    - ``beta``: on a 429 the rate drops to at most ``beta`` × the rate that was
      throttled (botocore uses 0.7);
    - ``min_rate``: never below this many requests per second (botocore: 0.5);
    - ``margin``: the plateau sits this fraction below the estimated server
      capacity, so holding it does not throttle;
    - ``recover_time``: time constant (s) of the climb back to the plateau;
      95% of the way after three of them;
    - ``hold``: seconds at the plateau before probing above it; doubled (up to
      ``max_hold``) each time the server throttles again near the same rate;
    - ``probe_rate``: while probing, the rate grows by this fraction of the
      plateau per second, until the configured rate is reached;
    - ``decrease_cooldown``: at most one decrease per this many seconds (the
      429s of requests already in flight say nothing new);
    - ``max_pause``: the longest pause (``Retry-After``, a quota reset) the
      limiter remembers, in seconds; the owner sets it to its own
      ``max_retry_after`` (the manager does), longer ones are shortened to it;
    - ``lift_factor``: with no configured rate, the adaptive limit is lifted
      (back to no limit) once probing has climbed to this many times the
      plateau without a throttle;
    - ``measure_window``: the sending and success rates are measured over
      roughly this many seconds (exponentially decaying).

    Example::

        policy = AdaptivePolicy(beta=0.5, hold=10.0)
        limits = OriginRateLimits(adaptive_policy=policy)
    """

    beta: float = 0.7
    min_rate: float = 0.5
    margin: float = 0.05
    recover_time: float = 1.0
    hold: float = 5.0
    max_hold: float = 120.0
    probe_rate: float = 0.02
    decrease_cooldown: float = 0.5
    max_pause: float = DEFAULT_MAX_PAUSE
    lift_factor: float = 10.0
    measure_window: float = 1.0

    def __post_init__(self) -> None:
        _check_fraction("beta", self.beta)
        check_number("min_rate", self.min_rate)
        _check_fraction("margin", self.margin, high=0.5)
        check_number("recover_time", self.recover_time)
        check_number("hold", self.hold, positive=False)
        check_number("max_hold", self.max_hold, positive=False)
        if self.max_hold < self.hold:
            raise ValueError(f"max_hold must be >= hold, got {self.max_hold!r} < {self.hold!r}")
        check_number("probe_rate", self.probe_rate)
        check_number("decrease_cooldown", self.decrease_cooldown, positive=False)
        check_number("max_pause", self.max_pause)
        if check_number("lift_factor", self.lift_factor) <= 1.0:
            raise ValueError(f"lift_factor must be > 1, got {self.lift_factor!r}")
        check_number("measure_window", self.measure_window)


class AdaptiveRate:
    """The pure decision behind adaptive pacing: a rate as a function of time.

    No locks, no clock: callers pass ``now`` and the measured rates. After a
    throttle at rate ``w`` with measured success rate ``s``:

    1. estimate the server's capacity ``c = min(w, s)`` (while throttled, the
       successes per second are what the server actually lets through);
    2. set the plateau ``p = (1 - margin) × c`` and drop to ``beta × c``
       (floored at ``min_rate``), so a server-side bucket can refill;
    3. climb back exponentially toward ``p`` (``recover_time``), hold it for
       ``hold`` seconds, then probe above it: ``p × (1 + x + x³)`` with
       ``x = probe_rate × seconds probing`` (gentle first, faster later);
    4. a new throttle near the same plateau doubles ``hold``: a stable server
       limit is probed ever more rarely, so 429s become rare, not periodic.

    ``rate(now, ceiling)`` is ``None`` once probing reaches the ceiling
    (configured rate), or ``lift_factor`` × the plateau when there is no
    ceiling (``math.inf``): the adaptive limit is then lifted.

    Example::

        >>> a = AdaptiveRate(AdaptivePolicy())
        >>> a.on_throttle(0.0, sending_rate=30.0, success_rate=25.0, ceiling=100.0)
        17.5
        >>> round(a.rate(3.0, 100.0), 2)      # 95% of the way back to 0.95 x 25
        23.44
    """

    __slots__ = ("_active", "_hold", "_last_decrease", "_plateau", "_policy", "_start", "_t0")

    def __init__(self, policy: AdaptivePolicy) -> None:
        self._policy = policy
        self._active = False
        self._plateau = 0.0
        self._start = 0.0
        self._t0 = -math.inf
        self._hold = policy.hold
        self._last_decrease = -math.inf

    @property
    def active(self) -> bool:
        """Whether a throttle currently limits the rate."""
        return self._active

    @property
    def plateau(self) -> float | None:
        """The rate the controller climbs back to (estimated capacity less the margin)."""
        return self._plateau if self._active else None

    def rate(self, now: float, ceiling: float) -> float | None:
        """The adaptive limit at ``now``, or ``None`` when it no longer binds."""
        if not self._active:
            return None
        p = self._policy
        dt = max(0.0, now - self._t0)
        settle = 3.0 * p.recover_time + self._hold
        if dt <= settle:
            rate = self._plateau - (self._plateau - self._start) * math.exp(-dt / p.recover_time)
        else:
            # Linear at first, so a stable limit is approached gently; the cubic
            # term makes a long quiet probe speed up, so a low estimate or a
            # raised server limit is found in tens of seconds, not minutes.
            x = p.probe_rate * (dt - settle)
            rate = self._plateau * (1.0 + x + x * x * x)
        lift_at = ceiling if math.isfinite(ceiling) else p.lift_factor * self._plateau
        if rate >= lift_at:
            self._active = False
            return None
        return max(p.min_rate, rate)

    def on_throttle(
        self, now: float, *, sending_rate: float, success_rate: float, ceiling: float
    ) -> float | None:
        """Record a throttle; return the new rate (``None``: ignored, within the cooldown)."""
        p = self._policy
        if now - self._last_decrease < p.decrease_cooldown:
            return None
        current = self.rate(now, ceiling)
        limit = ceiling if current is None else current
        throttled_at = min(limit, sending_rate) if sending_rate > 0 else limit
        capacity = success_rate if 0 < success_rate < throttled_at else throttled_at
        if not math.isfinite(capacity):
            # No limit and nothing measured (no grant was counted): assume the slowest.
            capacity = p.min_rate
        plateau = max(p.min_rate, (1.0 - p.margin) * capacity)
        if self._active and abs(plateau - self._plateau) <= 0.15 * self._plateau:
            self._hold = min(p.max_hold, max(p.hold, self._hold * 2.0))
        else:
            self._hold = p.hold
        self._plateau = min(plateau, ceiling)
        # Dip below the capacity so a server-side bucket can refill, then climb.
        self._start = max(p.min_rate, min(p.beta * capacity, self._plateau))
        self._t0 = now
        self._last_decrease = now
        self._active = True
        return self._start

    def shared_state(self, now: float) -> tuple[float | None, float, float, float, float]:
        """What other sharers need to follow this rule: ``(plateau, start, hold, since
        the throttle, since the last cut)``; ``plateau`` is ``None`` when inactive."""
        return (
            self._plateau if self._active else None,
            self._start,
            self._hold,
            now - self._t0,
            now - self._last_decrease,
        )

    def adopt(
        self,
        now: float,
        *,
        plateau: float | None,
        start: float,
        hold: float,
        since_throttle: float,
        since_decrease: float,
    ) -> None:
        """Take over another sharer's :meth:`shared_state` (read at ``now``)."""
        self._active = plateau is not None
        self._plateau = plateau if plateau is not None else 0.0
        self._start = start
        self._hold = hold if hold > 0 else self._policy.hold
        self._t0 = now - since_throttle
        self._last_decrease = now - since_decrease

    def reset(self) -> None:
        """Forget every throttle."""
        self._active = False
        self._hold = self._policy.hold
        self._last_decrease = -math.inf


class AdaptiveRateLimiter(RateLimiter):
    """A :class:`RateLimiter` that listens to the server (one per origin).

    After each response the manager calls :meth:`record_response`:

    - ``Retry-After`` on a 429/503 pauses every caller until then (it takes
      precedence over quota headers, as the IETF draft says);
    - quota headers with nothing left (``remaining == 0``) pause until the reset;
    - quota headers with some left spread them: at most ``remaining /
      reset_after`` requests a second until the reset;
    - a 429 without quota headers cuts the rate (see :class:`AdaptiveRate`),
      which recovers gradually on its own, never above the configured rate.

    With ``max_requests=None`` there is no configured rate: requests go at
    once until the server throttles or sends quota headers; the adaptive rate
    then holds until probing lifts it (``policy.lift_factor``).
    :meth:`set_rate_factor` scales whatever rate is in force then.

    With ``adaptive=False`` server feedback is ignored (a fixed-rate limiter
    that still supports :meth:`set_rate_factor`). Pauses are remembered for
    at most ``policy.max_pause`` seconds.

    With a shared ``bucket`` (:mod:`connmgr.quota`) what the server says is
    shared too: a pause holds every sharer, and the adaptive rate and the
    header pace one sharer learns are published in the bucket and adopted by
    the others on their next grant. The sending rate behind an adaptive cut
    is every sharer's (the bucket's meter); the success rate is this
    process's, scaled to that total.

    Example::

        limiter = AdaptiveRateLimiter(10, 1.0)
        limiter.wait()
        r = session.get(url)
        limiter.record_response(r.status_code, parse_rate_limit_headers(r.headers))
        limiter.status().describe()     # e.g. 'Rate limited by the server — resuming in 12 s'
    """

    def __init__(
        self,
        max_requests: float | None = 10,
        time_window: float = 1.0,
        *,
        burst: int | None = None,
        clock: Clock | None = None,
        adaptive: bool = True,
        policy: AdaptivePolicy | None = None,
        bucket: Bucket | None = None,
        max_overtaken: int = 4,
    ) -> None:
        self.adaptive = bool(adaptive)
        self.policy = policy if policy is not None else AdaptivePolicy()
        self._controller = AdaptiveRate(self.policy)
        self._succeeded = Meter()
        self._sent = Meter()
        self._header_rate: float | None = None
        self._header_until = -math.inf
        self._next_refresh = -math.inf
        self._version = 0
        super().__init__(
            max_requests,
            time_window,
            burst=burst,
            clock=clock,
            max_pause=self.policy.max_pause,
            bucket=bucket,
            max_overtaken=max_overtaken,
        )

    # -- rate -------------------------------------------------------------------

    def _target_rate_locked(self, now: float) -> tuple[float, str | None]:
        ceiling, why = super()._target_rate_locked(now)
        rate = ceiling
        adaptive = self._controller.rate(now, ceiling)
        if adaptive is not None and adaptive < rate:
            rate, why = adaptive, "adaptive"
        if self._header_rate is not None:
            if now < self._header_until:
                if self._header_rate < rate:
                    rate, why = self._header_rate, "headers"
            else:
                self._header_rate = None
        if math.isinf(ceiling) and math.isfinite(rate) and self._factor < 1.0:
            # No configured rate to scale: the degraded factor scales the server's rate.
            rate *= self._factor
        return rate, why

    def _next_change_locked(self, now: float) -> float:
        change = math.inf
        if self._header_rate is not None and self._header_until > now:
            change = self._header_until
        if self._controller.active:
            # The adaptive rate moves continuously; re-plan sleeps a few times a second.
            change = min(change, now + 0.25)
        return change

    def _refresh_locked(self, now: float) -> None:
        # The adaptive curve and header windows change with time alone; recompute
        # at most every 50 ms so a hot path pays a comparison, not an exp().
        if now >= self._next_refresh:
            self._next_refresh = now + 0.05
            self._update_rate_locked(now)

    def _meter_window(self) -> float:
        return self.policy.measure_window

    # -- sharing ------------------------------------------------------------------

    def _answered_locked(self, answer: Answer, now: float, *, granted: bool) -> None:
        if granted and self._bucket.shared:
            # The bucket counts every sharer's grants; ours alone scale the success rate.
            self._sent.add(now, tau=self.policy.measure_window)
        if answer.version == self._version:
            return
        # Another sharer published what the server told it: follow it from now on.
        self._version, feedback = self._bucket.feedback(now=now)
        if not self.adaptive:
            return
        if feedback is None:
            self._controller.reset()
            self._header_rate = None
        else:
            self._controller.adopt(
                now,
                plateau=feedback.plateau,
                start=feedback.start,
                hold=feedback.hold,
                since_throttle=feedback.since_throttle,
                since_decrease=feedback.since_decrease,
            )
            self._header_rate = feedback.header_rate
            self._header_until = now + feedback.header_left
        self._update_rate_locked(now)

    def _publish_locked(self, now: float) -> None:
        plateau, start, hold, since_throttle, since_decrease = self._controller.shared_state(now)
        header = self._header_rate if self._header_until > now else None
        feedback = Feedback(
            plateau=plateau,
            start=start,
            hold=hold,
            since_throttle=since_throttle,
            since_decrease=since_decrease,
            header_rate=header,
            header_left=self._header_until - now if header is not None else 0.0,
        )
        self._version = self._bucket.publish(feedback, now=now)

    # -- feedback ---------------------------------------------------------------

    def record_response(self, status: int, info: RateLimitInfo | None = None) -> None:
        """Feed one response's status and parsed headers into the pacing.

        ``info`` is :func:`parse_rate_limit_headers` of the response's headers
        (``None`` when it had none). Cheap; call it for every response,
        successes included (they drive the recovery).
        """
        with self._lock:
            now = self._clock.now()
            throttled = status == 429 or (
                status == 503 and info is not None and info.retry_after is not None
            )
            tau = self.policy.measure_window
            if not throttled:
                self._succeeded.add(now, tau=tau)
                if info is None and status != 429:
                    # Nothing to pace by (the common case): the success is counted for
                    # the adaptive estimate, and wait() applies any time-based recovery.
                    return
            if not self.adaptive:
                return
            pause: float | None = None
            learned = False
            if info is not None:
                if throttled and info.retry_after is not None:
                    pause = info.retry_after
                if info.has_quota:
                    if info.exhausted:
                        if pause is None and info.reset_after is not None:
                            pause = info.reset_after
                    elif info.reset_after is not None and info.reset_after > 0:
                        remaining = info.remaining or 0
                        spread = remaining / info.reset_after
                        # One request per max_pause at the slowest: a quota that
                        # resets in a day must not stall the next call for hours.
                        self._header_rate = max(spread, 1.0 / self._max_pause)
                        self._header_until = now + info.reset_after
                        learned = True
            if pause is not None and pause > 0:
                if pause > self._max_pause:
                    logger.debug("pause of %.1f s remembered as %.1f s", pause, self._max_pause)
                    pause = self._max_pause
                self._pause_locked(pause, now)
            # A 429 is explained when quota headers came with it and said how
            # long to wait; otherwise the rate was too high and must come down.
            explained = info is not None and info.has_quota and pause is not None
            if status == 429 and not explained:
                ceiling = self.configured_rate * self._factor
                sending = self._bucket.sent_rate(self._pace, now=now)
                mine = self._sent.rate(now, tau=tau) if self._bucket.shared else sending
                success = self._succeeded.rate(now, tau=tau)
                if 0.0 < mine < sending:
                    # Other sharers sent too: assume they succeed as often as we do.
                    success *= sending / mine
                new = self._controller.on_throttle(
                    now,
                    sending_rate=max(sending, mine),
                    success_rate=success,
                    ceiling=ceiling,
                )
                if new is not None:
                    learned = True
                    logger.debug(
                        "throttled without quota headers: rate %.3g/s, plateau %.3g/s",
                        new,
                        self._controller.plateau or new,
                    )
            self._update_rate_locked(now)
            self._next_refresh = now + 0.05
            if learned:
                self._publish_locked(now)

    def reset_feedback(self) -> None:
        """Forget what the server said (pauses, header pacing, adaptive cuts), for every sharer."""
        with self._lock:
            now = self._clock.now()
            self._controller.reset()
            self._header_rate = None
            self._bucket.clear_pause(now=now)
            self._version = self._bucket.publish(None, now=now)
            self._update_rate_locked(now)
            self._queue.wake_all()
