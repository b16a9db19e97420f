"""ConnectionManager: the loop that ties every other module together.

One logical request, start to end::

    deadline = Deadline(profile.total)
    for attempt in 1, 2, ...:
        gate(origin state)                    # may wait (cap rule) or raise
        slot = limiter.acquire()              # fair, cancellable, cap rule
        verdict = judge(transport.send(...))  # the one classification
        record(verdict)                       # machine, limiter, monitor, counters, signals
        decision = decide(verdict, ...)       # pure: retry after d, or stop
        if decision stops: return the response or raise verdict.error
        wait(decision.delay)                  # interruptible: cancel, close(), retry_now()

**The cap rule.** Every wait (the gate, the limiter, a retry delay) is bounded
by ``min(deadline remaining, policy.max_wait)``. A server pause longer than that
ends the call at once with a :class:`~connmgr.RateLimitError` whose
``retry_after`` is the server's value (cut to ``max_retry_after``), and the
origin shows ``rate_limited`` with the countdown.

Only :mod:`connmgr.transport` and :func:`connmgr.errors.judge` know requests'
exceptions; everything after them works on Verdicts and Decisions.

The class docstring has an example.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import requests

from connmgr import forksafe, signals
from connmgr.call import Call
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, interruptible_sleep
from connmgr.environment import EnvironmentCache
from connmgr.errors import (
    BackoffError,
    DNSError,
    ManagerClosedError,
    NetworkError,
    OfflineError,
    Outcome,
    RateLimitError,
    RequestCancelledError,
    Verdict,
    check_url,
    judge,
    redact_url,
)
from connmgr.gate import BLOCKED, Gate
from connmgr.history import History, retry_reason
from connmgr.machine import STATE_EFFECTS, ConnectionState, MachinePolicy, StateChange
from connmgr.network import NetworkMonitor, NetworkStatus, get_default_monitor
from connmgr.network.events import EpochCause
from connmgr.origin_table import OriginEntry, OriginTable
from connmgr.outgoing import BaseURL, prepare, send_settings
from connmgr.quota.base import QuotaStore
from connmgr.ratelimit import OriginRateLimits, Priority, lane_of
from connmgr.retry import (
    DEFAULT_CATCH,
    IDEMPOTENT_METHODS,
    Decision,
    RetryBudget,
    RetryConfig,
    RetryNow,
    decide,
)
from connmgr.snapshot import ConnectionSnapshot, ManagerStats
from connmgr.stale import cached_answer, may_serve_stale, stale_age
from connmgr.timeouts import Deadline, TimeoutConfig, TimeoutProfiles
from connmgr.totals import Totals
from connmgr.transport import AttemptContext, TimeoutHTTPAdapter
from connmgr.validate import check_type
from connmgr.waits import WaitRegistry

if TYPE_CHECKING:
    from connmgr.timeline import RequestTimeline

__all__ = ["ConnectionManager", "ConnectionSnapshot", "ManagerClosedError", "ManagerStats"]

logger = logging.getLogger(__name__)

_LIMITED_WORDS = "Connected to a network, but the internet can't be reached."


class ConnectionManager:
    """Sends requests through the state machine, the limiter, the retry decision and
    the deadline-enforcing transport; one instance is shared by all threads of an app.

    Args:
        base_url: joined with relative URLs; its origin is what :attr:`state` reports.
        timeouts: a :class:`~connmgr.timeouts.TimeoutProfiles`, or a mapping of
            operation name to :class:`~connmgr.TimeoutConfig` (or to a dict of fields).
        retry: the :class:`~connmgr.RetryConfig` (default: 3 retries, 0.5 s × 2^n).
        rate_limits: an :class:`~connmgr.ratelimit.OriginRateLimits` (default: no
            static limit; the adaptive limiter engages when a server sends
            rate-limit headers or a 429).
        monitor: the shared :class:`~connmgr.NetworkMonitor` (default: the process-wide
            one, with the public probes; tests pass one that probes loopback).
        policy: the :class:`~connmgr.MachinePolicy` thresholds.
        session: any :class:`requests.Session` (subclasses such as requests-cache's
            ``CachedSession`` work); connmgr mounts its transport adapter on it.
        clock, rng: injected time and randomness.
        retry_budget: the shared :class:`~connmgr.retry.RetryBudget`.
        watch_network: start the monitor's background watcher when the network goes
            away, so its return is noticed even when the app sends nothing (pass
            ``False`` when you drive the monitor yourself, e.g. on a fake clock).
        serve_stale: answer a GET from the session's cache, even expired, when no
            live answer can be had (see :mod:`connmgr.stale`); per call too.
        history_size: how many finished requests :meth:`history` keeps.
        quota_store: where the per-origin rate limits keep their state: a
            :class:`~connmgr.quota.SQLiteStore` or :class:`~connmgr.quota.RedisStore`
            shares one quota between processes and hosts (default: this process's
            memory). Give it here or to your own ``OriginRateLimits(store=...)``.

    A wrong type for any argument raises :class:`TypeError` naming it.

    Example::

        mgr = ConnectionManager(base_url="https://api.example.com",
                                policy=MachinePolicy(max_wait=0))
        try:
            r = mgr.get("/items/1", operation="quick")
        except connmgr.NetworkError as err:
            status_bar.showMessage(err.user_message)
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeouts: TimeoutProfiles | Mapping[str, Any] | None = None,
        retry: RetryConfig | None = None,
        rate_limits: OriginRateLimits | None = None,
        monitor: NetworkMonitor | None = None,
        policy: MachinePolicy | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        retry_budget: RetryBudget | None = None,
        watch_network: bool = True,
        serve_stale: bool = False,
        history_size: int = 50,
        quota_store: QuotaStore | None = None,
    ) -> None:
        check_type("base_url", base_url, str)
        check_type("timeouts", timeouts, (TimeoutProfiles, Mapping))
        check_type("retry", retry, RetryConfig)
        check_type("rate_limits", rate_limits, OriginRateLimits)
        check_type("monitor", monitor, NetworkMonitor)
        check_type("policy", policy, MachinePolicy)
        check_type("session", session, requests.Session)
        check_type("rng", rng, random.Random)
        check_type("retry_budget", retry_budget, RetryBudget)
        check_type("clock", clock, Clock)
        check_type("watch_network", watch_network, bool, optional=False)
        check_type("serve_stale", serve_stale, bool, optional=False)
        check_type("history_size", history_size, int, optional=False)
        if quota_store is not None and not isinstance(quota_store, QuotaStore):
            raise TypeError(f"quota_store must be a QuotaStore, got {type(quota_store).__name__}")
        if quota_store is not None and rate_limits is not None:
            raise ValueError(
                "quota_store: pass it to your OriginRateLimits(store=...) instead, "
                "or leave rate_limits out"
            )
        self.base_url = base_url
        self._base = BaseURL(base_url)
        self.clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = random.Random() if rng is None else rng
        if timeouts is None:
            self.timeouts = TimeoutProfiles()
        elif isinstance(timeouts, TimeoutProfiles):
            self.timeouts = timeouts
        else:
            self.timeouts = TimeoutProfiles.from_dict(timeouts)
        # A snapshot: assigning to the caller's config later changes nothing here.
        self.retry_config = RetryConfig() if retry is None else retry.copy()
        self.policy = MachinePolicy() if policy is None else policy
        # "is None", not "or": a registry with no origins yet is falsy (it has a len()).
        self.rate_limits = (
            OriginRateLimits(clock=self.clock, store=quota_store)
            if rate_limits is None
            else rate_limits
        )
        if monitor is None:
            # The app's one monitor, unless time is injected: a fake clock needs a
            # monitor of its own.
            monitor = get_default_monitor() if clock is None else NetworkMonitor(clock=clock)
        self.monitor = monitor
        self._owns_session = session is None
        self.session = requests.Session() if session is None else session
        self._mount_transport(self.session)
        self.retry_budget = RetryBudget() if retry_budget is None else retry_budget
        #: The one bound on a remembered server pause (see RetryConfig.max_retry_after).
        self._max_retry_after = min(self.retry_config.max_retry_after, self.policy.max_retry_after)
        self._retry_now = RetryNow()
        self._origins = OriginTable(self.policy, self.rate_limits, clock=self.clock, rng=self._rng)
        self._waits = WaitRegistry()
        self._totals = Totals()
        self._history = History(history_size)
        #: Proxies, netrc and the CA bundle, read once per origin and network epoch.
        self._environment = EnvironmentCache()
        self._ids = itertools.count(1)
        self._watch_network = watch_network
        self.serve_stale = serve_stale
        self._watcher_started = False
        self._closed = False
        self._origins.offline = self.monitor.status in BLOCKED
        self._network_seen = self.monitor.status is not NetworkStatus.UNKNOWN
        # blinker holds receivers weakly: keep the bound methods alive on self.
        self._on_network_changed_ref = self._on_network_changed
        self._on_new_epoch_ref = self._on_new_epoch
        signals.network_changed.connect(self._on_network_changed_ref, sender=self.monitor)
        signals.network_epoch_changed.connect(self._on_new_epoch_ref, sender=self.monitor)
        self._gate = Gate(
            self, self._origins, self.monitor, self.policy, self.clock,
            waiting=self._waiting, emit=self._emit_changes, ensure_watcher=self._ensure_watcher,
        )  # fmt: skip
        self._next_success_report = -math.inf
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child the monitor's watcher thread is gone: start a new one when needed.
        self._watcher_started = False

    # ------------------------------------------------------------------ setup

    @staticmethod
    def _mount_transport(session: requests.Session) -> None:
        for prefix in ("http://", "https://"):
            adapter = session.get_adapter(prefix)
            if isinstance(adapter, TimeoutHTTPAdapter):
                continue
            if type(adapter) is not requests.adapters.HTTPAdapter:
                raise ValueError(
                    f"session: the adapter mounted for {prefix!r} is a "
                    f"{type(adapter).__name__}; connmgr needs its TimeoutHTTPAdapter there "
                    "to enforce deadlines (mount your adapter on a more specific prefix)"
                )
            # Worker threads share one pool; urllib3's default of 10 would drop connections.
            session.mount(prefix, TimeoutHTTPAdapter(pool_maxsize=32))

    # ------------------------------------------------------------------ queries

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def state(self) -> ConnectionState:
        """The base origin's state, or the worst across known origins without a base URL."""
        if self._base.origin is not None:
            return self.state_for(self._base.origin)
        return self._origins.worst_state()

    def state_for(self, url: str) -> ConnectionState:
        """The state of ``url``'s origin (``online`` for an origin never contacted)."""
        state, changes = self._origins.state(self._base.origin_of(url))
        self._emit_changes(changes)
        return state

    def snapshot(self, url: str | None = None) -> ConnectionSnapshot:
        """A frozen view for a UI: state, since when, ``resume_at``, last error, counters.

        Without ``url``: the base origin, or the worst origin when there is no base URL.
        The clock is applied first, so a rate-limit pause that has ended shows as
        ended even when no request has been sent since.
        """
        origin = self._base.origin_of(url) if url is not None else self._base.origin
        snap, changes = self._origins.snapshot(origin, self.monitor.status, self.monitor.epoch)
        self._emit_changes(changes)
        return snap

    def snapshots(self) -> dict[str, ConnectionSnapshot]:
        """A snapshot of every origin contacted so far."""
        return {origin: self.snapshot(origin) for origin in self._origins.origins()}

    def stats(self) -> ManagerStats:
        """Totals since creation: logical requests, attempts, retries, failures, time in state."""
        return self._totals.freeze(self._origins.time_in_state(), self._origins.stale_served())

    # ------------------------------------------------------------------ control

    def history(self) -> list[RequestTimeline]:
        """The last finished requests, oldest first, each step with its cause.

        Frozen :class:`~connmgr.timeline.RequestTimeline` records built from the
        loop's own verdicts and decisions: gate waits and why, each attempt's
        answer and time, each retry's delay, backoff and budget, the state
        changes it caused. Any UI can show them; ``connmgr.qt`` does.
        """
        return self._history.records()

    def _remember(
        self, call: Call, outcome: str, status: int | None, error: NetworkError | None
    ) -> None:
        self._history.add(
            request_id=call.request_id, method=call.method, url=call.shown_url,
            operation=call.operation, started_at=call.deadline.started_at,
            ended_at=self.clock.now(), outcome=outcome, status=status,
            attempts=call.attempts, notes=call.notes,
            error_message=error.user_message if error is not None else "",
        )  # fmt: skip

    def refresh_environment(self) -> None:
        """Read proxies, ``NO_PROXY``, netrc and the CA bundle again on the next request.

        connmgr reads them once per origin and network epoch (a network change
        refreshes them by itself). A process that changes ``os.environ`` or its
        netrc file between requests calls this; see docs/environment.md.
        """
        self._environment.refresh()

    def retry_now(self) -> int:
        """Cut every current retry wait short (the banner's "Retry now"); return how many."""
        return self._retry_now.retry_now()

    def cancel_all(self, reason: str = "cancelled by cancel_all()") -> int:
        """End every wait of this manager's requests (gate, limiter, retry, network).

        Each waiting call raises :class:`~connmgr.RequestCancelledError` within
        the wake-up latency of a ``threading.Event`` (well under 100 ms). The
        manager stays usable; requests made afterwards go as usual. Returns
        how many waits were cancelled.
        """
        return self._waits.cancel_all(reason)

    def close(self) -> None:
        """Cancel every wait, stop the watcher this manager started, close an owned session.

        Idempotent. Requests still waiting raise
        :class:`~connmgr.RequestCancelledError`; a request made after ``close()``
        raises :class:`ManagerClosedError` before anything is sent.
        """
        if self._closed:
            return
        self._closed = True
        self._waits.close("the connection manager was closed")
        signals.network_changed.disconnect(self._on_network_changed_ref, sender=self.monitor)
        signals.network_epoch_changed.disconnect(self._on_new_epoch_ref, sender=self.monitor)
        if self._watcher_started and self.monitor is not get_default_monitor():
            # The process-wide monitor's watcher may serve other managers: it stays
            # (a daemon thread); a monitor of this manager's own is stopped.
            self.monitor.stop()
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> ConnectionManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str = "default",
        cancel: CancelToken | None = None,
        wait_for_network: bool = False,
        serve_stale: bool | None = None,
        priority: Priority = "interactive",
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        allow_redirects: bool = True,
        proxies: Mapping[str, str] | None = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: bool | str | None = None,
        cert: Any = None,
        json: Any = None,
        timeout: None = None,
    ) -> requests.Response:
        """Send one logical request; return the response or raise a :class:`NetworkError`.

        Args:
            method: the HTTP method.
            url: absolute, or relative to ``base_url``. A malformed URL (no scheme
                or host, a port outside 1-65535, a broken IPv6 literal) raises
                :class:`~connmgr.InvalidRequestError` before anything is sent.
            operation: the timeout profile (``"default"``, ``"search"``, ``"quick"``,
                ``"download"`` or one you configured); unknown names raise ``ValueError``.
            cancel: a :class:`~connmgr.CancelToken`; cancelling it ends any wait within
                50 ms with :class:`~connmgr.RequestCancelledError`.
            wait_for_network: while offline, wait (bounded by the deadline and
                ``policy.max_wait``) for the network to come back instead of raising
                :class:`~connmgr.OfflineError`.
            serve_stale: override the manager's ``serve_stale`` for this call.
            priority: the call's lane at a rate limit: ``"interactive"`` (the default)
                goes before ``"background"`` (or an int 0-9, lower first).
            params, data, headers, cookies, files, auth, allow_redirects, proxies, hooks,
                stream, verify, cert, json: as :meth:`requests.Session.request`.
            timeout: refused (``ValueError``): timeouts come from ``operation``.

        A caller's mistake (a wrong argument type, an unserialisable ``json=``, a
        ``timeout=``) raises ``TypeError``/``ValueError`` as requests would: nothing
        is sent, no state moves. A closed manager raises :class:`ManagerClosedError`.

        A retryable status (429, 5xx in the retry list) still failing when retries run
        out raises :class:`~connmgr.RateLimitError` / :class:`~connmgr.ServerError`
        carrying the last response; any other status is returned, as requests does.
        """
        if self._closed:
            raise ManagerClosedError("this ConnectionManager was closed; create a new one")
        if timeout is not None:
            raise ValueError(
                "timeout: connmgr sets timeouts from the operation's profile; "
                "pass operation=... or configure ConnectionManager(timeouts=...)"
            )
        check_type("cancel", cancel, CancelToken)
        check_type("method", method, str, optional=False)
        check_type("url", url, str, optional=False)
        lane_of(priority)  # TypeError/ValueError naming priority, before anything is sent
        config = self.timeouts.get(operation)
        url = check_url(self._base.absolute(url))
        origin = self._base.origin_of(url)
        epoch = self.monitor.epoch
        prepared = prepare(
            self.session, method, url, params=params, data=data, headers=headers,
            cookies=cookies, files=files, auth=auth, hooks=hooks, json=json,
            environment=self._environment, epoch=epoch,
        )  # fmt: skip
        announce = bool(signals.request_started.receivers)
        call = Call(
            request_id=next(self._ids),
            method=prepared.method or method.upper(),
            url=url,
            origin=origin,
            operation=operation,
            config=config,
            deadline=Deadline(config.total, clock=self.clock),
            prepared=prepared,
            send_kwargs=send_settings(
                self.session,
                prepared,
                allow_redirects=allow_redirects,
                proxies=proxies,
                stream=stream,
                verify=verify,
                cert=cert,
                environment=self._environment,
                epoch=epoch,
            ),
            cancel=CancelToken() if cancel is None and announce else cancel,
            wait_for_network=wait_for_network,
            priority=priority,
            shown_url=redact_url(url),
        )
        if announce:
            signals.request_started.send(
                self, request_id=call.request_id, method=call.method, url=call.shown_url,
                operation=operation, cancel=call.cancel,
            )  # fmt: skip
        outcome = "success"
        try:
            response = self._run(call)
        except NetworkError as error:
            stale = self._stale_answer(call, error, serve_stale)
            if stale is None:
                self._finish_failed(call, error)
                raise
            response, outcome = stale, "stale"
        self._totals.succeeded()
        self._remember(call, outcome, response.status_code, None)
        if signals.request_finished.receivers:
            signals.request_finished.send(
                self, request_id=call.request_id, method=call.method, url=call.shown_url,
                operation=operation, outcome=outcome, status=response.status_code,
                elapsed=call.deadline.elapsed(), attempts=call.attempts,
                stale_age=stale_age(response) if outcome == "stale" else None,
            )  # fmt: skip
        return response

    def _stale_answer(
        self, call: Call, error: NetworkError, serve_stale: bool | None
    ) -> requests.Response | None:
        """The cache's answer standing in for ``error``, when the caller allows it."""
        allowed = self.serve_stale if serve_stale is None else serve_stale
        if not allowed or not may_serve_stale(call.method, error):
            return None
        response = cached_answer(self.session, call.prepared)
        if response is not None:
            self._origins.count_stale(call.origin)
            logger.info("%s %s: a stale answer instead of %s", call.method, call.shown_url,
                        type(error).__name__)  # fmt: skip
        return response

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("GET", url, **kwargs)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("POST", url, **kwargs)``: sent once unless it carries an
        ``Idempotency-Key`` header or provably never left."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("PUT", url, **kwargs)``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("PATCH", url, **kwargs)``: not idempotent, like POST."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("DELETE", url, **kwargs)``."""
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("HEAD", url, **kwargs)``."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> requests.Response:
        """``request("OPTIONS", url, **kwargs)``."""
        return self.request("OPTIONS", url, **kwargs)

    # ------------------------------------------------------------------ the loop

    def _run(self, call: Call) -> requests.Response:
        last_cost = 0
        while True:
            call.attempts += 1
            attempt = call.attempts
            call.raise_if_cancelled()
            entry, trial, config = self._gate.enter(call)
            try:
                self._take_slot(call, entry)
            except BaseException:
                self._release_trial(entry, trial)
                raise
            verdict = self._send(call, config)
            response = verdict.response
            if response is not None and getattr(response, "from_cache", False):
                # Answered by a cache (requests-cache): says nothing about the network.
                self._release_trial(entry, trial)
                return response
            self._record(call, entry, verdict, trial)
            if verdict.error is None:
                self.retry_budget.refund_success(last_cost)
                assert verdict.response is not None
                return verdict.response
            decision = decide(
                verdict, attempt, config=self.retry_config, rng=self._rng,
                remaining=call.deadline.remaining(), max_wait=self.policy.max_wait,
                budget=self.retry_budget, method=call.method, headers=call.prepared.headers,
            )  # fmt: skip
            if not decision.retry or not self.retry_budget.try_take(decision.cost):
                raise self._final_error(call, verdict)
            last_cost = decision.cost
            self._wait_to_retry(call, verdict, decision)

    def _final_error(self, call: Call, verdict: Verdict) -> NetworkError:
        """The error the call ends with; a server pause that does not fit is a rate limit."""
        error = verdict.error
        assert error is not None
        pause = verdict.retry_after
        if pause is None or pause <= min(call.cap(self.policy.max_wait), self._max_retry_after):
            return error
        # The cap rule: fail fast, the same for a 429 and a 503, showing the pause as
        # the server asked, up to max_retry_after (what the origin remembers).
        shown = min(pause, self._max_retry_after)
        if isinstance(error, RateLimitError):
            error.retry_after = shown
            return error
        limited = RateLimitError(
            str(error), url=error.url, details=error.details, retry_after=shown,
            attempts=error.attempts, response=error.response, request=error.request,
            operation=error.operation, status=error.status,
        )  # fmt: skip
        limited.__cause__ = error
        return limited

    def _take_slot(self, call: Call, entry: OriginEntry) -> None:
        """Take a slot from the origin's limiter, waiting when that fits the cap rule."""
        limiter = entry.limiter
        if limiter.acquire():  # a free slot needs no timeout or token
            return
        # A server's pause follows the cap rule; pacing to a rate (one emission
        # interval per queued request) is bounded by the deadline alone.
        paused = limiter.paused_until is not None
        timeout = call.cap(self.policy.max_wait) if paused else call.deadline.remaining()
        waited_from = self.clock.now()
        with self._waiting(call) as token:
            granted = limiter.wait(timeout=timeout, cancel=token, priority=call.priority)
        call.notes.append(
            ("slot_wait", waited_from, self.clock.now() - waited_from,
             "the server's pause" if paused else "the client's rate limit")
        )  # fmt: skip
        call.raise_if_cancelled()
        if not granted:
            raise RateLimitError(
                "the rate limit leaves no slot within the deadline or max_wait",
                url=call.shown_url,
                retry_after=limiter.get_wait_time(),
                attempts=call.attempts,
                operation=call.operation,
            )

    def _send(self, call: Call, config: TimeoutConfig) -> Verdict:
        """One attempt through the transport, judged."""
        started = self.clock.now()
        context = AttemptContext(config, call.deadline, call.cancel)
        codes = self.retry_config.retry_status_codes
        try:
            response = self.session.send(call.prepared, timeout=context, **call.send_kwargs)
        except DEFAULT_CATCH as exc:
            verdict = judge(
                exc, retry_status_codes=codes, url=call.url, attempts=call.attempts,
                operation=call.operation,
            )  # fmt: skip
        else:
            verdict = judge(
                response, retry_status_codes=codes, url=call.url, attempts=call.attempts,
                operation=call.operation, elapsed=self.clock.now() - started,
                slow_after=config.read * self.policy.slow_fraction,
            )  # fmt: skip
        status = verdict.response.status_code if verdict.response is not None else None
        call.notes.append(
            (
                "attempt",
                started,
                self.clock.now() - started,
                call.attempts,
                status,
                verdict.error.kind if verdict.error is not None else None,
            )
        )
        return verdict

    def _record(self, call: Call, entry: OriginEntry, verdict: Verdict, trial: bool) -> None:
        """Feed one verdict to the limiter, the monitor, the machine and the counters."""
        outcome = verdict.outcome
        response = verdict.response
        answered = self.monitor.epoch if response is not None else None
        if response is not None:
            entry.limiter.record_response(response.status_code, verdict.quota)
            now = self.clock.now()
            if now >= self._next_success_report or self.monitor.status is not NetworkStatus.ONLINE:
                # A response proves the network; telling the monitor once a second keeps
                # its cache fresh without a call on every response.
                self._next_success_report = now + 1.0
                self.monitor.report_success(url=response.url or entry.machine.origin)
        elif outcome is Outcome.UNREACHABLE:
            # A connect or DNS failure: this server, or the whole network? The monitor
            # decides; its network_changed event moves every origin to offline.
            status = self.monitor.report_failure(verdict.error)
            if status is NetworkStatus.LIMITED and verdict.error is not None:
                # What is true: a network, but no way out (this server may be out there).
                verdict.error.user_message = _LIMITED_WORDS
            if status in (NetworkStatus.ONLINE, NetworkStatus.UNKNOWN, NetworkStatus.LIMITED):
                # The network is fine: the server is down (transient), or the name
                # does not exist (a typo says nothing about the link: fatal).
                error = verdict.error
                permanent_dns = isinstance(error, DNSError) and not error.temporary
                outcome = Outcome.FATAL if permanent_dns else Outcome.TRANSIENT
        retry_after = verdict.retry_after
        if retry_after is not None and retry_after > self._max_retry_after:
            retry_after = self._max_retry_after
        self._totals.attempt()  # every attempt that went out is recorded once, here
        changes, resume_at = self._origins.record(
            entry, outcome, trial=trial, retry_after=retry_after, error=verdict.error,
            answered_epoch=answered,
        )  # fmt: skip
        if changes:
            for change in changes:
                call.notes.append(
                    ("state", change.at, 0.0, change.old.value, change.new.value, change.reason)
                )
            self._emit_changes(changes)
        if resume_at is not None and outcome is Outcome.THROTTLED:
            wait = max(0.0, resume_at - self.clock.now())
            signals.rate_limited.send(
                self, origin=entry.machine.origin, resume_at=resume_at, wait=wait
            )

    def _wait_to_retry(self, call: Call, verdict: Verdict, decision: Decision) -> None:
        self._totals.retry()
        budget = self.retry_budget
        call.notes.append(
            ("retry", self.clock.now(), decision.delay,
             retry_reason(decision.backoff, verdict.retry_after), budget.available,
             budget.capacity)
        )  # fmt: skip
        with self._waiting(call) as token, self._retry_now.waiter() as woken:
            # Registered before the signal: a "Retry now" pressed in answer to
            # retry_scheduled must reach this wait.
            signals.retry_scheduled.send(
                self, request_id=call.request_id, attempt=call.attempts + 1,
                max_attempts=self.retry_config.max_attempts, delay=decision.delay,
                error=verdict.error, url=call.shown_url, operation=call.operation,
                cancel=token,
            )  # fmt: skip
            if decision.delay > 0:
                interruptible_sleep(self.clock, decision.delay, cancel=token, wake=woken)
        call.raise_if_cancelled()

    # ------------------------------------------------------------------ waiting

    def _waiting(self, call: Call) -> AbstractContextManager[CancelToken]:
        """Register the call's token for one wait, so close() and cancel_all() end it."""
        return self._waits.waiting(call.token())

    def _release_trial(self, entry: OriginEntry, trial: bool) -> None:
        if trial:
            self._origins.release_trial(entry)

    def _finish_failed(self, call: Call, error: NetworkError) -> None:
        name = type(error).__name__
        self._totals.failed(name)
        status = error.response.status_code if error.response is not None else None
        self._remember(call, _outcome_name(error), status, error)
        logger.info(
            "%s %s failed after %d attempt(s): %s", call.method, call.shown_url, error.attempts,
            name,
        )  # fmt: skip
        signals.request_failed.send(
            self, request_id=call.request_id, error=error, url=call.shown_url,
            operation=call.operation,
        )  # fmt: skip
        signals.request_finished.send(
            self, request_id=call.request_id, method=call.method, url=call.shown_url,
            operation=call.operation, outcome=_outcome_name(error),
            status=error.response.status_code if error.response is not None else None,
            elapsed=call.deadline.elapsed(), attempts=error.attempts,
        )  # fmt: skip

    # ------------------------------------------------------------------ machines

    def _emit_changes(self, changes: list[StateChange]) -> None:
        for change in changes:
            entry = self._origins.get(change.origin)
            if entry is not None:
                entry.limiter.set_rate_factor(STATE_EFFECTS[change.new].rate_factor)
            logger.info(
                "%s: %s -> %s (%s)", change.origin, change.old.value, change.new.value,
                change.reason,
            )  # fmt: skip
            if change.new is ConnectionState.OFFLINE:
                self._ensure_watcher()
            # A failed trial is backoff -> backoff with a longer cooldown: sent too, so
            # a countdown learns the new resume time.
            if change.old is not change.new or change.new is ConnectionState.BACKOFF:
                signals.state_changed.send(
                    self, origin=change.origin, old=change.old, new=change.new,
                    reason=change.reason,
                    snapshot=self._origins.snapshot_as_is(
                        change.origin, self.monitor.status, self.monitor.epoch
                    ),
                )  # fmt: skip

    def _on_network_changed(self, sender: object, **kwargs: Any) -> None:
        # LIMITED still sends (the app's server may be reachable); a portal does not.
        blocked = kwargs.get("status") in BLOCKED
        self._emit_changes(self._origins.network_changed(not blocked))

    def _on_new_epoch(self, sender: object, **kwargs: Any) -> None:
        # Sockets of the old network may be dead or lead elsewhere: never reuse them
        # (the first verdict, from "unknown", is no new network: its sockets stay).
        if self._network_seen:
            for adapter in self.session.adapters.values():
                adapter.close()
                if isinstance(adapter, TimeoutHTTPAdapter):
                    # Idempotent requests on a socket left behind go again; after a sleep, all.
                    adapter.abandon_old_network(
                        methods=IDEMPOTENT_METHODS,
                        all_sockets=kwargs.get("cause") is EpochCause.RESUME,
                    )
        self._network_seen = kwargs.get("status") not in (None, NetworkStatus.UNKNOWN)
        slept = kwargs.get("slept", 0.0)
        self._origins.new_epoch(slept if isinstance(slept, int | float) else 0.0)

    def _ensure_watcher(self) -> None:
        # While offline no request is sent, so only the monitor can notice the way back.
        if self._watch_network and not self._watcher_started and not self._closed:
            self._watcher_started = True
            self.monitor.start()


def _outcome_name(error: NetworkError) -> str:
    """The ``outcome`` argument of ``request_finished`` for a failed request."""
    if isinstance(error, RequestCancelledError):
        return "cancelled"
    if isinstance(error, OfflineError | BackoffError | RateLimitError) and not error.request_sent:
        return "gated"  # refused at the gate: nothing was sent
    return judge(error).outcome.value
