"""NetworkMonitor: cached, probing network status with captive-portal detection and events."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable

from connmgr import signals
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.network.probes import DEFAULT_PROBES, Probe, ProbeResult, TcpProbe
from connmgr.network.round import ROUND_SLACK, ProbeRound
from connmgr.network.status import NetworkStatus

__all__ = ["NetworkMonitor"]

logger = logging.getLogger("connmgr.network")

#: Offline probe rounds at ``offline_interval`` before the pace backs off.
_STEADY_OFFLINE_ROUNDS = 6

# The watcher never starts probe rounds more often than this (real seconds), whatever
# its clock says: a guard against a storm of probes from a tiny offline_interval or
# from a fake clock that advances by itself.
_MIN_WATCH_GAP = 0.01


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"NetworkMonitor.{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"NetworkMonitor.{name} must be a finite number {bound}, got {value!r}")


class _Watcher:
    __slots__ = ("recheck", "stopping", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stopping = False
        self.recheck = False
        self.thread: threading.Thread | None = None


class NetworkMonitor:
    """Cached, probing network state with captive-portal detection and change events.

    Args:
        probes: the probes to run (default :data:`DEFAULT_PROBES`, which contact
            Google and Cloudflare: see ``docs/network.md``).
        interval: seconds an ``ONLINE`` answer is trusted (and the watcher's pace
            while online).
        offline_interval: seconds before re-probing after an ``OFFLINE`` or
            ``CAPTIVE_PORTAL`` answer; after six such answers in a row it doubles
            with each further one, up to ``interval``. Must not exceed ``interval``.
        timeout: seconds each probe may take; a round never takes much longer.
        clock: a :class:`~connmgr.clock.Clock` (default: the system clock).
        debounce: :meth:`report_failure` does not re-probe when a probe finished
            less than this many seconds ago.
        portal_grace: seconds a TCP/DNS success waits for a still-running HTTP
            probe to report a captive portal (0: never wait).

    Thread-safe. ``is_online()`` on a fresh cache takes no lock.

    Example::

        monitor = NetworkMonitor(probes=[HttpProbe("https://api.example.com/health",
                                                   expect_status=200)])
        if not monitor.is_online():
            status_bar.show(monitor.status.label)   # "Offline" or "Sign-in required ..."
    """

    def __init__(
        self,
        probes: Iterable[Probe] | None = None,
        *,
        interval: float = 30.0,
        offline_interval: float = 5.0,
        timeout: float = 3.0,
        clock: Clock | None = None,
        debounce: float = 1.0,
        portal_grace: float = 0.3,
    ) -> None:
        _check_seconds("interval", interval, positive=True)
        _check_seconds("offline_interval", offline_interval, positive=True)
        _check_seconds("timeout", timeout, positive=True)
        _check_seconds("debounce", debounce, positive=False)
        _check_seconds("portal_grace", portal_grace, positive=False)
        if offline_interval > interval:
            raise ValueError(
                f"NetworkMonitor.offline_interval ({offline_interval!r}) must be <= "
                f"interval ({interval!r})"
            )
        chosen = DEFAULT_PROBES if probes is None else tuple(probes)
        if not chosen:
            raise ValueError("NetworkMonitor.probes must hold at least one probe, got none")
        for probe in chosen:
            if not isinstance(probe, Probe):
                raise ValueError(
                    f"NetworkMonitor.probes must be Probe objects (name, detects_portal, "
                    f"check), got {probe!r}"
                )
        if clock is not None and not isinstance(clock, Clock):
            raise ValueError(f"NetworkMonitor.clock must be a Clock, got {clock!r}")
        self._probes: tuple[Probe, ...] = chosen
        self.interval = float(interval)
        self.offline_interval = float(offline_interval)
        self.timeout = float(timeout)
        self.debounce = float(debounce)
        self.portal_grace = float(portal_grace)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._now = self._clock.now

        self._lock = threading.Lock()
        # (valid until, online): one tuple so a lock-free reader sees a consistent pair.
        self._cache: tuple[float, bool] = (-math.inf, False)
        self._status = NetworkStatus.UNKNOWN
        self._round: ProbeRound | None = None
        self._offline_delay = self.offline_interval
        self._offline_rounds = 0
        self._last_checked: float | None = None
        # Counts report_success() calls: a round knows whether one came while it ran
        # (a count, not a time, so a frozen test clock cannot blur before and during).
        self._successes = 0
        self._last_results: tuple[ProbeResult, ...] = ()
        self._online_waiters: set[threading.Event] = set()
        self._watcher: _Watcher | None = None
        self._pending_events: deque[tuple[NetworkStatus, NetworkStatus]] = deque()
        self._emitting = False

    # ------------------------------------------------------------------ reading

    @property
    def probes(self) -> tuple[Probe, ...]:
        """The probes, in the order given."""
        return self._probes

    @property
    def clock(self) -> Clock:
        """The injected clock."""
        return self._clock

    @property
    def status(self) -> NetworkStatus:
        """The latest known status (never probes; ``UNKNOWN`` before the first check)."""
        return self._status

    @property
    def last_checked(self) -> float | None:
        """Clock time when the last probe round ended, or ``None``."""
        return self._last_checked

    @property
    def last_results(self) -> tuple[ProbeResult, ...]:
        """Each probe's result in the last round (probe order), with timings.

        A probe still running when the verdict came shows ``UNKNOWN``.
        """
        return self._last_results

    @property
    def running(self) -> bool:
        """Whether the background watcher is running."""
        watcher = self._watcher
        return watcher is not None and not watcher.stopping

    def is_online(self, force_check: bool = False) -> bool:
        """Whether the internet is reachable; ``False`` offline and behind a captive portal.

        Answers from the cache while it is fresh (a clock read and a compare, no
        lock); otherwise probes, sharing a round already running with other callers
        (``force_check=True`` also joins a running round rather than start another).
        :attr:`status` says why the answer is ``False``.

        Example::

            if not monitor.is_online():
                show_offline_banner(monitor.status.label)
        """
        if not force_check:
            valid_until, online = self._cache
            if self._now() < valid_until:
                return online
        return self._check(force=force_check) is NetworkStatus.ONLINE

    def check(self) -> NetworkStatus:
        """Probe now (or join the running round) and return the resulting status."""
        return self._check(force=True)

    def check_specific_host(self, host: str, port: int = 80, timeout: float = 3.0) -> bool:
        """Whether a TCP connection to ``host:port`` opens within ``timeout`` (not cached).

        Changes nothing in the monitor: one unreachable server does not mean the
        network is down.

        Example::

            monitor.check_specific_host("api.example.com", 443, timeout=2.0)
        """
        _check_seconds("timeout", timeout, positive=True)
        result = TcpProbe(host, port).check(timeout)
        return result.status is NetworkStatus.ONLINE

    def diagnose(self) -> tuple[ProbeResult, ...]:
        """Run every probe to the end (no short cut) and return all results; for ``connmgr check``.

        Does not change the monitor's status; :func:`decide_status` combines the
        results.
        """
        results: list[ProbeResult | None] = [None] * len(self._probes)
        started = time.perf_counter()

        def run(index: int, probe: Probe) -> None:
            try:
                results[index] = probe.check(self.timeout)
            except Exception as exc:
                results[index] = ProbeResult(
                    probe,
                    NetworkStatus.OFFLINE,
                    time.perf_counter() - started,
                    f"the probe raised {type(exc).__name__}",
                )

        threads = [
            threading.Thread(target=run, args=(i, p), name="connmgr-probe", daemon=True)
            for i, p in enumerate(self._probes)
        ]
        for thread in threads:
            thread.start()
        end = started + self.timeout + ROUND_SLACK
        for thread in threads:
            thread.join(max(0.0, end - time.perf_counter()))
        elapsed = time.perf_counter() - started
        return tuple(
            r or ProbeResult(p, NetworkStatus.OFFLINE, elapsed, "no answer in time")
            for r, p in zip(results, self._probes, strict=True)
        )

    # ------------------------------------------------------------------ hints

    def report_failure(self, error: BaseException | None = None) -> NetworkStatus:
        """A connect or DNS failure happened: re-probe (debounced) and return the status.

        Probes synchronously unless a round ended less than ``debounce`` seconds
        ago (or one is running: then it waits for that one). A debounced answer
        that says ``ONLINE`` is trusted for at most ``debounce`` more seconds.
        The manager reads the result: anything but ``ONLINE`` confirms that the
        failure was the network, not the server.

        Example::

            except requests.ConnectionError as exc:
                if monitor.report_failure(exc) is not NetworkStatus.ONLINE:
                    ...   # the network is gone, not just this server
        """
        if error is not None:
            logger.debug("connect failure reported (%s)", type(error).__name__)
        with self._lock:
            # A failure is evidence that the cached "online" may be stale.
            if self._last_checked is not None:
                valid_until, online = self._cache
                self._cache = (min(valid_until, self._last_checked + self.debounce), online)
        return self._check(force=True, max_age=self.debounce)

    def report_success(self, *, url: str | None = None) -> None:
        """A response arrived, so the network works: set ``ONLINE`` without probing.

        Extends the cache by ``interval`` (traffic makes probes unnecessary) and
        sends ``network_changed`` if the status was not ``ONLINE``. Behind a captive
        portal, a plain ``http://`` answer (``url``) proves nothing, since the
        portal can answer it itself; it only makes the next check probe again.
        """
        with self._lock:
            now = self._now()
            old = self._status
            if (
                old is NetworkStatus.CAPTIVE_PORTAL
                and url is not None
                and not url.lower().startswith("https:")
            ):
                self._cache = (now, False)
                return
            self._successes += 1
            self._cache = (now + self.interval, True)
            if old is NetworkStatus.ONLINE:
                return
            self._set_status(NetworkStatus.ONLINE)
        self._drain_events()

    def request_recheck(self) -> None:
        """Something may have changed (an OS hint): re-probe soon, without blocking.

        Expires the cache; wakes the watcher if it runs, else starts a probe round
        in the background. A round already running is followed by another, since
        it may have started before the change. Any resulting change is sent as
        ``network_changed`` from the thread that did the work.
        """
        with self._lock:
            self._cache = (-math.inf, self._cache[1])
            if self._round is not None:
                self._round.recheck = True
            watcher = self._watcher
            if watcher is not None and not watcher.stopping:
                watcher.recheck = True
                watcher.wake.set()
                return
        self._start_or_join(force=True, max_age=None)

    def hint_changed(self, source: str = "os") -> None:
        """An outside source (e.g. Qt's ``QNetworkInformation``) reports a change: a hint.

        Never a verdict: it only triggers :meth:`request_recheck`.
        """
        logger.debug("network change hint from %s", source)
        self.request_recheck()

    def wait_until_online(self, timeout: float | None, cancel: CancelToken | None = None) -> bool:
        """Block until the network is back; ``True`` if online, ``False`` on timeout or cancel.

        Re-probes every ``offline_interval`` seconds (rounds shared with other
        waiters and callers) and returns as soon as any round or
        :meth:`report_success` says ``ONLINE``. ``timeout=None`` waits without limit.

        Example::

            if monitor.wait_until_online(30.0, cancel=token):
                retry_the_request()
        """
        if timeout is not None:
            _check_seconds("timeout", timeout, positive=False)
        deadline = math.inf if timeout is None else self._now() + timeout
        waiter = threading.Event()
        remove = cancel.add_callback(waiter.set) if cancel is not None else None
        with self._lock:
            self._online_waiters.add(waiter)
        try:
            while True:
                if self._online_now():
                    return True
                if cancel is not None and cancel.cancelled:
                    return False
                if self._check(force=True, max_age=self.offline_interval, wake=waiter) is (
                    NetworkStatus.ONLINE
                ):
                    return True
                now = self._now()
                if now >= deadline:
                    return False
                last = self._last_checked if self._last_checked is not None else now
                pause = min(deadline - now, max(0.0, last + self.offline_interval - now))
                # The round set the waiter when it ended: clear it, then look at the
                # flags it stands for again, so a wake-up in between is not lost.
                waiter.clear()
                if self._status is NetworkStatus.ONLINE or (
                    cancel is not None and cancel.cancelled
                ):
                    continue
                self._clock.sleep(pause, waiter)
        finally:
            with self._lock:
                self._online_waiters.discard(waiter)
            if remove is not None:
                remove()

    def _online_now(self) -> bool:
        # A call, not an inline compare: the status changes under other threads.
        return self._status is NetworkStatus.ONLINE

    # ------------------------------------------------------------------ watcher

    def start(self) -> None:
        """Start the background watcher (a daemon thread); idempotent.

        It probes whenever the cache runs out (every ``interval`` while online,
        faster while offline) and on :meth:`request_recheck`, so
        ``network_changed`` arrives without anyone asking.
        """
        with self._lock:
            if self._watcher is not None and not self._watcher.stopping:
                return
            watcher = _Watcher()
            watcher.thread = threading.Thread(
                target=self._watch, args=(watcher,), name="connmgr-network-watcher", daemon=True
            )
            self._watcher = watcher
        watcher.thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the watcher; returns within 100 ms, even mid-probe (idempotent).

        A probe round the watcher was waiting for still finishes in the
        background and its verdict is applied.
        """
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.stopping = True
        watcher.wake.set()
        thread = watcher.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop the watcher (for ``contextlib.closing`` and owners' ``close()``)."""
        self.stop()

    def _watch(self, watcher: _Watcher) -> None:
        logger.debug("network watcher started")
        try:
            while True:
                # Flags are the truth; the event only wakes us. Clear before reading them.
                watcher.wake.clear()
                if watcher.stopping:
                    return
                if watcher.recheck or self._now() >= self._cache[0]:
                    force, watcher.recheck = watcher.recheck, False
                    self._check(force=force, wake=watcher.wake)
                    continue
                if watcher.wake.wait(_MIN_WATCH_GAP):
                    continue
                delay = self._cache[0] - self._now()
                if delay > 0:
                    self._clock.sleep(delay, watcher.wake)
        except Exception:
            logger.exception("network watcher failed")
        finally:
            # A watcher that died must not look alive to start().
            watcher.stopping = True
            with self._lock:
                if self._watcher is watcher:
                    self._watcher = None
            logger.debug("network watcher stopped")

    # ------------------------------------------------------------------ probing

    def _start_or_join(
        self,
        *,
        force: bool,
        max_age: float | None,
        wait: bool = False,
        wake: threading.Event | None = None,
    ) -> ProbeRound | NetworkStatus:
        """Return the fresh status, or the round to wait for (joined when ``wait``).

        The caller joins under the lock, before the probes start, so a round that
        concludes at once still leaves its verdict (and event) to this caller.
        """
        launch = False
        with self._lock:
            now = self._now()
            if not force and now < self._cache[0]:
                return self._status
            current = self._round
            if current is None:
                last = self._last_checked
                if max_age is not None and last is not None and now - last < max_age:
                    return self._status
                current = self._round = ProbeRound(
                    self._probes,
                    timeout=self.timeout,
                    grace=self.portal_grace,
                    started_at=now,
                    successes_before=self._successes,
                    on_verdict=self._apply,
                )
                launch = True
            if wait:
                current.join(wake)
        if launch:
            current.launch()
        return current

    def _check(
        self,
        *,
        force: bool,
        max_age: float | None = None,
        wake: threading.Event | None = None,
    ) -> NetworkStatus:
        """Probe (or join a round) and return the status; ``wake`` may cut the wait short.

        When ``wake`` ends the wait before the verdict, the current status is
        returned and the round's verdict is applied by whoever finishes it.
        """
        got = self._start_or_join(force=force, max_age=max_age, wait=True, wake=wake)
        if isinstance(got, NetworkStatus):
            return got
        current = got
        if wake is None:
            if not current.done.wait(current.timeout + ROUND_SLACK + 1.0):
                current.force_expire()  # a safety net: the deadline timer should have fired
        else:
            wake.wait()
        if current.leave(wake) is None:
            return self._status
        return self._apply(current)

    def _apply(self, current: ProbeRound) -> NetworkStatus:
        """Make a concluded round's verdict the monitor's status (once)."""
        followup = False
        with self._lock:
            if current.applied:
                return current.effective
            current.applied = True
            now = self._now()
            verdict = current.verdict or NetworkStatus.OFFLINE
            if verdict is not NetworkStatus.ONLINE and self._successes > current.successes_before:
                # A response arrived while the probes ran: newer evidence than theirs.
                verdict = NetworkStatus.ONLINE
            self._last_checked = now
            self._last_results = current.results()
            if verdict is NetworkStatus.ONLINE:
                self._offline_delay = self.offline_interval
                self._offline_rounds = 0
                valid = self.interval
            else:
                valid = self._offline_delay
                self._offline_rounds += 1
                # A short drop (a Wi-Fi hop) is noticed within one offline_interval;
                # only a long outage backs the probing off toward interval.
                if self._offline_rounds >= _STEADY_OFFLINE_ROUNDS:
                    self._offline_delay = min(self._offline_delay * 2.0, self.interval)
            if current.recheck:
                valid = 0.0
                watcher = self._watcher
                followup = watcher is None or watcher.stopping
            self._cache = (now + valid, verdict is NetworkStatus.ONLINE)
            if self._round is current:
                self._round = None
            current.effective = verdict
            self._set_status(verdict)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "network %s after %.1f ms: %s",
                verdict.value,
                current.verdict_elapsed * 1000,
                "; ".join(str(r) for r in current.results()),
            )
        self._drain_events()
        if followup:
            self._start_or_join(force=True, max_age=None)
        return verdict

    def _set_status(self, new: NetworkStatus) -> None:
        # Caller holds self._lock.
        old = self._status
        if new is old:
            return
        self._status = new
        self._pending_events.append((old, new))
        if new is NetworkStatus.ONLINE:
            for waiter in self._online_waiters:
                waiter.set()

    def _drain_events(self) -> None:
        """Send queued ``network_changed`` events in order, outside the lock.

        One thread sends at a time, so receivers see the changes in the order they
        happened; a thread that finds another sending leaves its events to it.
        """
        with self._lock:
            if self._emitting:
                return
            self._emitting = True
        try:
            while True:
                with self._lock:
                    if not self._pending_events:
                        self._emitting = False
                        return
                    old, new = self._pending_events.popleft()
                logger.info("network: %s -> %s", old.value, new.value)
                self._send(new)
        except BaseException:
            with self._lock:
                self._emitting = False
            raise

    def _send(self, status: NetworkStatus) -> None:
        # blinker's send() stops at the first receiver that raises; call each one
        # here so a faulty status widget cannot keep the manager from hearing it.
        signal = signals.network_changed
        if signal.is_muted:
            return
        for receiver in signal.receivers_for(self):
            try:
                receiver(self, online=status.online, status=status)
            except Exception:
                logger.exception("a network_changed receiver raised")

    def __repr__(self) -> str:
        return (
            f"NetworkMonitor(status={self._status.value}, "
            f"probes=[{', '.join(p.name for p in self._probes)}], interval={self.interval!r})"
        )
