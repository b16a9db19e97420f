"""ProbeRound: one round of probes run concurrently, shared by every caller that asks."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from connmgr.network.decide import decide_status
from connmgr.network.probes import Probe, ProbeResult
from connmgr.network.status import NetworkStatus

__all__ = ["ROUND_SLACK", "ProbeRound"]

logger = logging.getLogger("connmgr.network")

# A round ends at the probe timeout plus this slack even if a probe never returns
# (getaddrinfo cannot be interrupted); a probe that times out on its own reports first.
ROUND_SLACK = 0.1


class ProbeRound:
    """One round of probes, shared by every caller that asks while it runs.

    Each probe runs in its own daemon thread; the round concludes on the first
    conclusive answer (:func:`decide_status`), or when the grace or deadline
    timers fire. Probes still running afterwards finish on their own and are
    ignored. Whoever waits applies the verdict to the monitor; if nobody waits
    (the watcher was stopped, or a background re-check), the thread that
    concluded applies it.
    """

    __slots__ = (
        "_lock",
        "_on_verdict",
        "_results",
        "_timers",
        "_wakes",
        "applied",
        "done",
        "effective",
        "grace",
        "grace_over",
        "grace_started",
        "probes",
        "recheck",
        "started_at",
        "successes_before",
        "t0",
        "timeout",
        "verdict",
        "verdict_elapsed",
        "waiters",
    )

    def __init__(
        self,
        probes: tuple[Probe, ...],
        *,
        timeout: float,
        grace: float,
        started_at: float,
        successes_before: int,
        on_verdict: Callable[[ProbeRound], object],
    ) -> None:
        self.probes = probes
        self.timeout = timeout
        self.grace = grace
        self.started_at = started_at
        self.successes_before = successes_before
        self._on_verdict = on_verdict
        self._lock = threading.Lock()
        self._results: dict[int, ProbeResult] = {}
        self._timers: list[threading.Timer] = []
        self._wakes: list[threading.Event] = []
        self.done = threading.Event()
        self.verdict: NetworkStatus | None = None
        self.verdict_elapsed = 0.0
        self.grace_over = grace <= 0
        self.grace_started = False
        self.waiters = 0
        self.t0 = time.perf_counter()
        # Set and read under the monitor's lock:
        self.applied = False
        self.effective: NetworkStatus = NetworkStatus.UNKNOWN
        self.recheck = False

    def launch(self) -> None:
        with self._lock:
            self._start_timer(self.timeout + ROUND_SLACK, self._expire)
        for index, probe in enumerate(self.probes):
            threading.Thread(
                target=self._run, args=(index, probe), name="connmgr-probe", daemon=True
            ).start()

    def _start_timer(self, seconds: float, action: Callable[[], None]) -> None:
        # Caller holds self._lock.
        if self.verdict is not None:
            return
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _run(self, index: int, probe: Probe) -> None:
        started = time.perf_counter()
        try:
            result = probe.check(self.timeout)
        except Exception as exc:  # a third-party probe must not kill the round
            logger.exception("probe %s raised", getattr(probe, "name", probe))
            result = ProbeResult(
                probe,
                NetworkStatus.OFFLINE,
                time.perf_counter() - started,
                f"the probe raised {type(exc).__name__}",
            )
        self._add(index, result)

    def _add(self, index: int, result: ProbeResult) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self._results[index] = result
            verdict = self._decide(expired=False)
            if (
                verdict is None
                and result.status is NetworkStatus.ONLINE
                and not self.grace_started
                and not self.grace_over
            ):
                # A TCP/DNS success while an HTTP probe runs: give it a moment to see a portal.
                self.grace_started = True
                self._start_timer(self.grace, self._grace_ended)
        if verdict is not None:
            self._conclude(verdict)

    def _decide(self, *, expired: bool) -> NetworkStatus | None:
        # Caller holds self._lock.
        if expired:
            return decide_status(self._results.values())
        pending = [p for i, p in enumerate(self.probes) if i not in self._results]
        return decide_status(
            self._results.values(),
            pending=len(pending),
            portal_pending=sum(1 for p in pending if p.detects_portal),
            grace_over=self.grace_over,
        )

    def _grace_ended(self) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self.grace_over = True
            verdict = self._decide(expired=False)
        if verdict is not None:
            self._conclude(verdict)

    def _expire(self) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            verdict = self._decide(expired=True)
        if verdict is not None:
            self._conclude(verdict)

    def _conclude(self, verdict: NetworkStatus) -> None:
        with self._lock:
            if self.verdict is not None:
                return
            self.verdict = verdict
            self.verdict_elapsed = time.perf_counter() - self.t0
            nobody_waits = self.waiters == 0
            wakes = list(self._wakes)
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self.done.set()
        for wake in wakes:
            wake.set()
        if nobody_waits:
            self._on_verdict(self)

    def join(self, wake: threading.Event | None) -> None:
        with self._lock:
            self.waiters += 1
            if wake is not None:
                self._wakes.append(wake)
                if self.verdict is not None:
                    wake.set()

    def leave(self, wake: threading.Event | None) -> NetworkStatus | None:
        with self._lock:
            self.waiters -= 1
            if wake is not None:
                with contextlib.suppress(ValueError):
                    self._wakes.remove(wake)
            return self.verdict

    def force_expire(self) -> None:
        self._expire()

    def results(self) -> tuple[ProbeResult, ...]:
        """Every probe's result in probe order; ``UNKNOWN`` for those still running."""
        with self._lock:
            got = dict(self._results)
            elapsed = self.verdict_elapsed
        return tuple(
            got.get(i)
            or ProbeResult(probe, NetworkStatus.UNKNOWN, elapsed, "still running at the verdict")
            for i, probe in enumerate(self.probes)
        )
