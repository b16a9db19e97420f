"""ProbeRound: one round of probes run concurrently, shared by every caller that asks."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from connmgr.network.decide import Conclusion, conclude
from connmgr.network.probes import Probe, ProbeResult
from connmgr.network.status import NetworkStatus, ProbeFailure

__all__ = ["ROUND_SLACK", "ProbeRound", "checked", "run_to_the_end"]

logger = logging.getLogger("connmgr.network")

# A round ends at the probe timeout plus this slack even if a probe never returns
# (getaddrinfo cannot be interrupted); a probe that times out on its own reports first.
ROUND_SLACK = 0.1


_ANSWERS = frozenset({NetworkStatus.ONLINE, NetworkStatus.OFFLINE, NetworkStatus.CAPTIVE_PORTAL})


def checked(probe: Probe, answer: object, elapsed: float) -> ProbeResult:
    """``answer`` as a result *of this probe*; a malformed answer counts as a failure.

    A third-party probe may return a result naming another object, a status it
    cannot give, or no result at all: the verdict must not depend on it.
    """
    if not isinstance(answer, ProbeResult):
        return ProbeResult(
            probe,
            NetworkStatus.OFFLINE,
            elapsed,
            f"the probe returned {type(answer).__name__}, not a ProbeResult",
            ProbeFailure.OTHER,
        )
    if answer.status not in _ANSWERS:
        return ProbeResult(
            probe,
            NetworkStatus.OFFLINE,
            answer.elapsed,
            f"the probe answered {answer.status!r}",
            ProbeFailure.OTHER,
        )
    if answer.probe is not probe:
        return ProbeResult(probe, answer.status, answer.elapsed, answer.detail, answer.failure)
    return answer


class ProbeRound:
    """One round of probes, shared by every caller that asks while it runs.

    Each probe runs in its own daemon thread; the round concludes on the first
    conclusive answer (:func:`~connmgr.network.decide.conclude`), or when the
    deadline timer fires (probes still running then count as timed out).
    Probes still running afterwards finish on their own and are ignored.
    Whoever waits applies the verdict to the monitor; if nobody waits (the
    watcher was stopped, or a background re-check), the thread that concluded
    applies it. A round started before an OS change hint is *superseded*: a
    new round starts at once and this one's verdict is never applied.
    """

    __slots__ = (
        "_lock",
        "_on_verdict",
        "_results",
        "_timers",
        "_wakes",
        "applied",
        "conclusion",
        "done",
        "effective",
        "probes",
        "started_at",
        "successes_before",
        "superseded",
        "t0",
        "timeout",
        "verdict_elapsed",
        "waiters",
    )

    def __init__(
        self,
        probes: tuple[Probe, ...],
        *,
        timeout: float,
        started_at: float,
        successes_before: int,
        on_verdict: Callable[[ProbeRound], object],
    ) -> None:
        self.probes = probes
        self.timeout = timeout
        self.started_at = started_at
        self.successes_before = successes_before
        self._on_verdict = on_verdict
        self._lock = threading.Lock()
        self._results: dict[int, ProbeResult] = {}
        self._timers: list[threading.Timer] = []
        self._wakes: list[threading.Event] = []
        self.done = threading.Event()
        self.conclusion: Conclusion | None = None
        self.verdict_elapsed = 0.0
        self.waiters = 0
        self.t0 = time.perf_counter()
        # Set and read under the monitor's lock:
        self.applied = False
        self.superseded = False
        self.effective: NetworkStatus = NetworkStatus.UNKNOWN

    @property
    def verdict(self) -> NetworkStatus | None:
        """The concluded status, or ``None`` while the round runs."""
        conclusion = self.conclusion
        return None if conclusion is None else conclusion.status

    def launch(self) -> None:
        """Start the deadline timer and one thread per probe."""
        with self._lock:
            timer = threading.Timer(self.timeout + ROUND_SLACK, self._expire)
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        for index, probe in enumerate(self.probes):
            threading.Thread(
                target=self._run, args=(index, probe), name="connmgr-probe", daemon=True
            ).start()

    def _run(self, index: int, probe: Probe) -> None:
        started = time.perf_counter()
        try:
            result = checked(probe, probe.check(self.timeout), time.perf_counter() - started)
        except Exception as exc:  # a third-party probe must not kill the round
            logger.exception("probe %s raised", getattr(probe, "name", probe))
            result = ProbeResult(
                probe,
                NetworkStatus.OFFLINE,
                time.perf_counter() - started,
                f"the probe raised {type(exc).__name__}",
                ProbeFailure.OTHER,
            )
        self._add(index, result)

    def _add(self, index: int, result: ProbeResult) -> None:
        with self._lock:
            if self.conclusion is not None:
                return
            self._results[index] = result
            pending = [p for i, p in enumerate(self.probes) if i not in self._results]
            conclusion = conclude(self._results.values(), pending=pending)
        if conclusion is not None:
            self._conclude(conclusion)

    def _expire(self) -> None:
        with self._lock:
            if self.conclusion is not None:
                return
            elapsed = time.perf_counter() - self.t0
            for index, probe in enumerate(self.probes):
                if index not in self._results:
                    self._results[index] = ProbeResult(
                        probe,
                        NetworkStatus.OFFLINE,
                        elapsed,
                        f"no answer within {self.timeout:g} s",
                        ProbeFailure.TIMEOUT,
                    )
            conclusion = conclude(self._results.values())
        if conclusion is not None:
            self._conclude(conclusion)

    def _conclude(self, conclusion: Conclusion) -> None:
        with self._lock:
            if self.conclusion is not None:
                return
            self.conclusion = conclusion
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
        """Count a waiter; ``wake`` is set when the round concludes."""
        with self._lock:
            self.waiters += 1
            if wake is not None:
                self._wakes.append(wake)
                if self.conclusion is not None:
                    wake.set()

    def leave(self, wake: threading.Event | None) -> NetworkStatus | None:
        """Stop waiting; return the verdict if there is one."""
        with self._lock:
            self.waiters -= 1
            if wake is not None:
                with contextlib.suppress(ValueError):
                    self._wakes.remove(wake)
            return self.verdict

    def abandon(self) -> None:
        """Release every waiter now without a verdict (the monitor superseded this round)."""
        with self._lock:
            wakes = list(self._wakes)
        self.done.set()
        for wake in wakes:
            wake.set()

    def force_expire(self) -> None:
        """Conclude now, as the deadline timer would (a safety net)."""
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


def run_to_the_end(probes: tuple[Probe, ...], timeout: float) -> tuple[ProbeResult, ...]:
    """Run every probe concurrently to the end (no short cut); results in probe order.

    A probe that has not answered by ``timeout`` (plus the round's slack) is
    reported as timed out; one that raises, as failed.
    """
    results: list[ProbeResult | None] = [None] * len(probes)
    started = time.perf_counter()

    def run(index: int, probe: Probe) -> None:
        try:
            results[index] = checked(probe, probe.check(timeout), time.perf_counter() - started)
        except Exception as exc:
            results[index] = ProbeResult(
                probe,
                NetworkStatus.OFFLINE,
                time.perf_counter() - started,
                f"the probe raised {type(exc).__name__}",
                ProbeFailure.OTHER,
            )

    threads = [
        threading.Thread(target=run, args=(i, p), name="connmgr-probe", daemon=True)
        for i, p in enumerate(probes)
    ]
    for thread in threads:
        thread.start()
    end = started + timeout + ROUND_SLACK
    for thread in threads:
        thread.join(max(0.0, end - time.perf_counter()))
    elapsed = time.perf_counter() - started
    return tuple(
        r
        or ProbeResult(p, NetworkStatus.OFFLINE, elapsed, "no answer in time", ProbeFailure.TIMEOUT)
        for r, p in zip(results, probes, strict=True)
    )
