"""NetworkMonitor: cached, probing network status, epochs, OS change events, sleep.

The monitor answers :meth:`~NetworkMonitor.is_online` from a cache (a clock
read and a compare) and refreshes it with probe rounds
(:class:`~connmgr.network.round.ProbeRound`). It keeps a *network epoch*: an
integer that grows on every status change, every OS change hint
(:meth:`~NetworkMonitor.hint_changed`: netlink, Qt's ``QNetworkInformation``)
and every detected resume from sleep (:meth:`~NetworkMonitor.check_sleep`).
Connections and cooldowns from an older epoch may belong to another network.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from connmgr import forksafe
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock
from connmgr.network.decide import Conclusion
from connmgr.network.events import EpochCause, EpochEvent, EventQueue, StatusEvent
from connmgr.network.probes import DEFAULT_PROBES, Probe, ProbeResult, TcpProbe
from connmgr.network.round import ROUND_SLACK, ProbeRound, run_to_the_end
from connmgr.network.sleep import SleepDetector
from connmgr.network.status import NetworkStatus

if TYPE_CHECKING:
    from connmgr.network.os_events import NetlinkListener

__all__ = ["NO_LINK", "NetworkMonitor"]

logger = logging.getLogger("connmgr.network")

#: The reason when the operating system reports that no network link is up.
NO_LINK = "no network link is up (cable unplugged or Wi-Fi off)"

#: Offline probe rounds at ``offline_interval`` before the pace backs off.
_STEADY_OFFLINE_ROUNDS = 6

# The watcher never starts probe rounds more often than this (real seconds), whatever
# its clock says: a guard against a storm of probes from a tiny offline_interval or
# from a fake clock that advances by itself.
_MIN_WATCH_GAP = 0.01

# The watcher looks for a resume from sleep at least this often (clock seconds):
# its own waits run on the monotonic clock, which stood still while the machine slept.
_SLEEP_CHECK_GAP = 5.0
# After an OS change hint the network may need a moment (ARP, DHCP, a gateway that
# just came up): while it is not yet online, probe again this long after the hint.
_HINT_FOLLOW_UPS = (0.3, 0.8)

# A caller follows at most this many rounds that were superseded by OS hints
# before it settles for the current status (a storm of hints must not hold it).
_MAX_FOLLOW = 3


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"NetworkMonitor.{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"NetworkMonitor.{name} must be a finite number {bound}, got {value!r}")


class _Watcher:
    __slots__ = ("listener", "recheck", "stopping", "thread", "wake")

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stopping = False
        self.recheck = False
        self.thread: threading.Thread | None = None
        self.listener: NetlinkListener | None = None


class NetworkMonitor:
    """Cached, probing network status with captive-portal detection, epochs and events.

    Args:
        probes: the probes to run (default :data:`DEFAULT_PROBES`, which contact
            Google and Cloudflare: see ``docs/network.md``).
        interval: seconds an ``ONLINE`` answer is trusted (and the watcher's pace
            while online).
        offline_interval: seconds before re-probing after any other answer; after
            six such answers in a row it doubles with each further one, up to
            ``interval``. Must not exceed ``interval``.
        timeout: seconds each probe may take; a round never takes much longer.
        clock: a :class:`~connmgr.clock.Clock` (default: the system clock).
        debounce: :meth:`report_failure` does not re-probe when a probe finished
            less than this many seconds ago.
        os_events: listen to the operating system's network changes (Linux
            netlink) while the watcher runs; elsewhere the watcher polls.
        sleep_detector: a :class:`~connmgr.network.SleepDetector` (default: the
            system's clocks); tests inject a fake clock pair.
        portal_grace: no longer has an effect (a TCP/DNS success never decides
            while an HTTP probe runs); accepted with a ``DeprecationWarning``.

    Thread-safe. ``is_online()`` on a fresh cache takes no lock.

    Example::

        monitor = NetworkMonitor(probes=[HttpProbe("https://api.example.com/health",
                                                   expect_status=200)])
        if not monitor.is_online():
            status_bar.show(monitor.status.label)   # "Offline", "No internet", ...
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
        os_events: bool = True,
        sleep_detector: SleepDetector | None = None,
        portal_grace: float | None = None,
    ) -> None:
        _check_seconds("interval", interval, positive=True)
        _check_seconds("offline_interval", offline_interval, positive=True)
        _check_seconds("timeout", timeout, positive=True)
        _check_seconds("debounce", debounce, positive=False)
        if portal_grace is not None:
            _check_seconds("portal_grace", portal_grace, positive=False)
            warnings.warn(
                "NetworkMonitor(portal_grace=...) has no effect: with an HTTP probe "
                "configured, a TCP/DNS success never decides on its own",
                DeprecationWarning,
                stacklevel=2,
            )
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
        if not isinstance(os_events, bool):
            raise TypeError(f"os_events must be a bool, got {os_events!r}")
        if sleep_detector is not None and not isinstance(sleep_detector, SleepDetector):
            raise TypeError(f"sleep_detector must be a SleepDetector, got {sleep_detector!r}")
        self._probes: tuple[Probe, ...] = chosen
        self.interval = float(interval)
        self.offline_interval = float(offline_interval)
        self.timeout = float(timeout)
        self.debounce = float(debounce)
        self.os_events = os_events
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._now = self._clock.now
        self._sleep = sleep_detector if sleep_detector is not None else SleepDetector()

        self._lock = threading.Lock()
        # (valid until, online): one tuple so a lock-free reader sees a consistent pair.
        self._cache: tuple[float, bool] = (-math.inf, False)
        self._status = NetworkStatus.UNKNOWN
        self._reason = "not checked yet"
        self._epoch = 0
        self._last_sleep = 0.0
        #: Clock times at which to probe again after an OS hint, while not online.
        self._follow_ups: list[float] = []
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
        self._events = EventQueue(self)
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A forked child has no thread but the forking one: no watcher (start() makes
        # a new one), no probe round's threads (its verdict would never come), no
        # waiters, no emitter; and a lock any of them held stays held.
        self._lock = threading.Lock()
        self._watcher = None
        self._round = None
        self._online_waiters = set()
        self._events = EventQueue(self)

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
    def reason(self) -> str:
        """Plain words for why :attr:`status` is what it is, e.g. "name lookup (DNS) failing"."""
        return self._reason

    @property
    def epoch(self) -> int:
        """The network epoch: 0 at first, +1 on every status change, OS hint and resume.

        A lock-free read; compare it with the epoch a pooled connection was
        opened in.
        """
        return self._epoch

    @property
    def last_sleep(self) -> float:
        """Seconds the machine slept before the latest detected resume (0.0 if none yet)."""
        return self._last_sleep

    @property
    def os_events_source(self) -> str | None:
        """``"netlink"`` while OS change events arrive without Qt; ``None`` when polling."""
        watcher = self._watcher
        listener = watcher.listener if watcher is not None else None
        return "netlink" if listener is not None and listener.running else None

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
        """Whether the internet is reachable: ``True`` only for ``ONLINE``.

        Answers from the cache while it is fresh (a clock read and a compare, no
        lock); otherwise probes, sharing a round already running with other callers
        (``force_check=True`` also joins a running round rather than start another).
        :attr:`status` and :attr:`reason` say why the answer is ``False``.

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

        Does not change the monitor's status; :func:`~connmgr.network.conclude`
        combines the results into a status and a reason.
        """
        return run_to_the_end(self._probes, self.timeout)

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
        """A response arrived: set ``ONLINE`` without probing, unless it proves too little.

        Extends the cache by ``interval`` (traffic makes probes unnecessary) and
        sends ``network_changed`` if the status was not ``ONLINE``. A response
        proves its own origin, not always the internet:

        * while ``LIMITED`` it changes nothing (the app's server may be on the
          intranet); the probes decide;
        * behind a captive portal a plain ``http://`` answer (``url``) proves
          nothing, since the portal can answer it itself; it only makes the next
          check probe again.
        """
        with self._lock:
            now = self._now()
            old = self._status
            if old is NetworkStatus.LIMITED:
                return
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
            self._set_status(NetworkStatus.ONLINE, "a response arrived")
        self._events.drain()

    def request_recheck(self) -> None:
        """Something may have changed: re-probe now, without blocking.

        Expires the cache and supersedes a round already running (it may have
        started before the change: its verdict is dropped, its waiters follow
        the new round). Wakes the watcher if it runs, else starts a round in the
        background. A resulting change is sent from the thread that did the work.
        """
        with self._lock:
            watcher = self._supersede()
            if watcher is not None:
                watcher.recheck = True
                watcher.wake.set()
                return
        self._start_or_join(force=True, max_age=None)

    def hint_changed(self, source: str = "os", *, links_up: bool | None = None) -> None:
        """The operating system reports a change: start a new epoch and re-probe now.

        ``source`` is plain words for the log and the epoch's reason (e.g.
        ``"netlink: link eth0 down"``). ``links_up=False`` says the OS reports
        no network link at all: that is proof, so the status becomes
        ``OFFLINE`` at once (reason :data:`NO_LINK`) without probing. Otherwise
        the hint is never a verdict (``QNetworkInformation`` says "Online"
        whenever a default route exists): the probes decide. Returns at once;
        safe to call from a GUI thread.
        """
        if not isinstance(source, str):
            raise TypeError(f"source must be a string, got {source!r}")
        if links_up is not None and not isinstance(links_up, bool):
            raise TypeError(f"links_up must be a bool or None, got {links_up!r}")
        logger.debug("network change hint from %s (links up: %s)", source, links_up)
        with self._lock:
            self._new_epoch(EpochCause.OS_EVENT, source)
            if links_up is False:
                self._supersede()
                self._record(Conclusion(NetworkStatus.OFFLINE, NO_LINK), ())
            else:
                now = self._now()
                self._follow_ups = [now + gap for gap in _HINT_FOLLOW_UPS]
        self._events.drain()
        if links_up is not False:
            self.request_recheck()

    def _follow_up_due(self) -> bool:
        """Whether a probe after an OS hint is due now (only while not online)."""
        with self._lock:
            now = self._now()
            due = [t for t in self._follow_ups if t <= now]
            if not due:
                return False
            self._follow_ups = [t for t in self._follow_ups if t > now]
            return self._status is not NetworkStatus.ONLINE

    def _next_follow_up(self) -> float:
        follow_ups = self._follow_ups
        return min(follow_ups) if follow_ups else math.inf

    def check_sleep(self) -> float:
        """Look for a resume from sleep (two clock reads); return the seconds slept, else 0.0.

        A detected sleep starts a new epoch (cause ``RESUME``, with ``slept``),
        and re-probes at once: the network may be another one now, and sockets
        pooled before the sleep are likely dead. The watcher calls this every
        round and at least every 5 s; a manager may call it before a request.
        """
        slept = self._sleep.check()
        if slept <= 0.0:
            return 0.0
        with self._lock:
            self._last_sleep = slept
            self._new_epoch(EpochCause.RESUME, f"resumed after sleeping {slept:.0f} s", slept)
        self._events.drain()
        self.request_recheck()
        return slept

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
        """Start the background watcher (a daemon thread) and OS change events; idempotent.

        The watcher probes whenever the cache runs out (every ``interval`` while
        online, faster otherwise), on :meth:`request_recheck`, after a resume
        from sleep, and (with ``os_events``, on Linux) within about 50 ms of a
        link, address or route change, so ``network_changed`` arrives without
        anyone asking.
        """
        with self._lock:
            if self._watcher is not None and not self._watcher.stopping:
                return
            watcher = _Watcher()
            watcher.thread = threading.Thread(
                target=self._watch, args=(watcher,), name="connmgr-network-watcher", daemon=True
            )
            self._watcher = watcher
        if self.os_events:
            # Loaded with the first watcher: an app that never starts one never pays.
            from connmgr.network.os_events import NetlinkListener

            listener = NetlinkListener(self._on_os_change)
            if listener.start():
                watcher.listener = listener
            else:
                logger.debug("no OS network events here: polling every %g s", self.interval)
        watcher.thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the watcher and OS events; returns within 100 ms, even mid-probe (idempotent).

        A probe round the watcher was waiting for still finishes in the
        background and its verdict is applied.
        """
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.stopping = True
        watcher.wake.set()
        if watcher.listener is not None:
            watcher.listener.stop(timeout)
        thread = watcher.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop the watcher (for ``contextlib.closing`` and owners' ``close()``)."""
        self.stop()

    def _on_os_change(self, reason: str, links_up: bool | None) -> None:
        self.hint_changed(f"netlink: {reason}", links_up=links_up)

    def _watch(self, watcher: _Watcher) -> None:
        logger.debug("network watcher started")
        try:
            while True:
                # Flags are the truth; the event only wakes us. Clear before reading them.
                watcher.wake.clear()
                if watcher.stopping:
                    return
                self.check_sleep()
                follow_up = self._follow_up_due()
                if watcher.recheck or follow_up or self._now() >= self._cache[0]:
                    force, watcher.recheck = watcher.recheck or follow_up, False
                    self._check(force=force, wake=watcher.wake)
                    continue
                if watcher.wake.wait(_MIN_WATCH_GAP):
                    continue
                delay = min(self._cache[0], self._next_follow_up()) - self._now()
                if delay > 0:
                    self._clock.sleep(min(delay, _SLEEP_CHECK_GAP), watcher.wake)
        except Exception:
            logger.exception("network watcher failed")
        finally:
            # A watcher that died must not look alive to start().
            watcher.stopping = True
            with self._lock:
                if self._watcher is watcher:
                    self._watcher = None
            if watcher.listener is not None:
                watcher.listener.stop(0.0)
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
        returned and the round's verdict is applied by whoever finishes it. A
        caller without ``wake`` whose round is superseded follows the new one.
        """
        for _ in range(_MAX_FOLLOW + 1):
            got = self._start_or_join(force=force, max_age=max_age, wait=True, wake=wake)
            if isinstance(got, NetworkStatus):
                return got
            current = got
            if wake is None:
                if not current.done.wait(current.timeout + ROUND_SLACK + 1.0):
                    current.force_expire()  # a safety net: the deadline timer should have fired
            else:
                wake.wait()
            verdict = current.leave(wake)
            if current.superseded:
                if wake is not None:
                    return self._status
                # Follow what replaced it: a fresh cache (the OS said "no link") or
                # the new round (the cache was expired when this one was dropped).
                force, max_age = False, None
                continue
            if verdict is None:
                return self._status
            return self._apply(current)
        return self._status

    def _supersede(self) -> _Watcher | None:
        """Expire the cache and drop the running round; return the live watcher (lock held)."""
        self._cache = (-math.inf, self._cache[1])
        current, self._round = self._round, None
        if current is not None:
            current.superseded = True
            current.abandon()
        watcher = self._watcher
        if watcher is None or watcher.stopping:
            return None
        watcher.wake.set()
        return watcher

    def _apply(self, current: ProbeRound) -> NetworkStatus:
        """Make a concluded round's verdict the monitor's status (once)."""
        with self._lock:
            if current.applied:
                return current.effective
            current.applied = True
            if current.superseded:
                current.effective = self._status
                return self._status
            conclusion = current.conclusion or Conclusion(NetworkStatus.OFFLINE, "no answer")
            if (
                conclusion.status is NetworkStatus.OFFLINE
                and self._successes > current.successes_before
            ):
                # A response arrived while the probes ran: newer evidence than theirs.
                conclusion = Conclusion(NetworkStatus.ONLINE, "a response arrived")
            self._record(conclusion, current.results())
            if self._round is current:
                self._round = None
            current.effective = conclusion.status
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "network %s after %.1f ms (%s): %s",
                conclusion.status.value,
                current.verdict_elapsed * 1000,
                conclusion.reason,
                "; ".join(str(r) for r in current.results()),
            )
        self._events.drain()
        return conclusion.status

    def _record(self, conclusion: Conclusion, results: tuple[ProbeResult, ...]) -> None:
        """Set status, reason, cache and the offline pace from a verdict (lock held)."""
        now = self._now()
        self._last_checked = now
        self._last_results = results
        online = conclusion.status is NetworkStatus.ONLINE
        if online:
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
        self._cache = (now + valid, online)
        self._set_status(conclusion.status, conclusion.reason)

    def _set_status(self, new: NetworkStatus, reason: str) -> None:
        # Caller holds self._lock. A change starts an epoch; its events go out in order.
        old = self._status
        self._reason = reason
        if new is old:
            return
        self._status = new
        self._new_epoch(EpochCause.STATUS, f"{old.value} -> {new.value}: {reason}")
        self._events.push(StatusEvent(old, new, reason, self._epoch))
        if new is NetworkStatus.ONLINE:
            for waiter in self._online_waiters:
                waiter.set()

    def _new_epoch(self, cause: EpochCause, reason: str, slept: float = 0.0) -> None:
        # Caller holds self._lock.
        self._epoch += 1
        self._events.push(EpochEvent(self._epoch, cause, reason, slept, self._status))

    def __repr__(self) -> str:
        return (
            f"NetworkMonitor(status={self._status.value}, epoch={self._epoch}, "
            f"probes=[{', '.join(p.name for p in self._probes)}], interval={self.interval!r})"
        )
