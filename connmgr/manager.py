"""ConnectionManager: the request pipeline that ties every other module together.

One logical request, start to end (design.md, "One request, start to end"):

1. pick the operation's :class:`~connmgr.TimeoutConfig` and start its
   :class:`~connmgr.timeouts.Deadline` (``total`` bounds everything below);
2. gate on the origin's state (:data:`connmgr.machine.STATE_EFFECTS`);
3. take a fair slot from the origin's rate limiter, bounded by the deadline;
4. send through :class:`~connmgr.TimeoutHTTPAdapter`, which enforces the deadline
   while the body is read;
5. classify the outcome, feed the origin's machine, send signals;
6. retry through :class:`~connmgr.retry.RetryEngine` when it is safe and useful;
7. return the :class:`requests.Response` or raise the classified error.

Every collaborator is passed in (or built from defaults) in the constructor;
modules below this one never import it.

Example::

    with connmgr.ConnectionManager(base_url="https://api.example.com") as mgr:
        if mgr.state is connmgr.ConnectionState.OFFLINE:
            show_offline_banner()
        r = mgr.get("/search", params={"q": "daft punk"}, operation="search")
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests

from connmgr import signals
from connmgr.clock import SYSTEM_CLOCK, CancelToken, Clock, SystemClock, interruptible_sleep
from connmgr.errors import (
    BackoffError,
    DNSError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    classify_error,
    outcome_of,
    redact_url,
)
from connmgr.machine import (
    STATE_EFFECTS,
    ConnectionState,
    MachinePolicy,
    OriginMachine,
    Outcome,
    StateChange,
)
from connmgr.network import NetworkMonitor, NetworkStatus, get_default_monitor
from connmgr.ratelimit import (
    AdaptiveRateLimiter,
    OriginRateLimits,
    origin_of,
    parse_rate_limit_headers,
)
from connmgr.retry import (
    DEFAULT_CATCH,
    RetryBudget,
    RetryConfig,
    RetryEngine,
    RetryEvent,
    may_resend,
)
from connmgr.timeouts import Deadline, TimeoutConfig, TimeoutProfiles
from connmgr.transport import AttemptContext, TimeoutHTTPAdapter

__all__ = ["ConnectionManager", "ConnectionSnapshot", "ManagerStats"]

logger = logging.getLogger(__name__)

_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    """A frozen view of one origin (or the worst of all) for a UI.

    ``since`` and ``resume_at`` are clock times (``manager.clock.now()`` scale);
    ``retry_in`` is seconds from ``taken_at`` until a waiting origin may send again.
    """

    origin: str | None
    state: ConnectionState
    since: float
    resume_at: float | None
    retry_in: float | None
    last_error: NetworkError | None
    attempts: int
    outcomes: Mapping[str, int]
    rate: float | None
    label: str
    network: NetworkStatus
    taken_at: float


@dataclass(frozen=True, slots=True)
class ManagerStats:
    """Totals since the manager was created (for summaries and benchmarks).

    ``logical_requests`` counts the calls that have ended, so it always equals
    ``succeeded`` plus the sum of ``failed_by_class``; ``attempts`` counts every
    attempt that was sent, including those of requests still under way.
    """

    logical_requests: int
    attempts: int
    retries: int
    succeeded: int
    failed_by_class: Mapping[str, int]
    time_in_state: Mapping[str, float]


@dataclass(slots=True)
class _Origin:
    machine: OriginMachine
    limiter: AdaptiveRateLimiter
    last_error: NetworkError | None = None
    time_in_state: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class _Call:
    """One logical request as it goes through the pipeline."""

    request_id: int
    method: str
    url: str
    origin: str
    operation: str
    config: TimeoutConfig
    deadline: Deadline
    #: The caller's token, or one made when a signal hands it out (request_started,
    #: retry_scheduled). ``None`` while no one could cancel: waits and the transport
    #: then have nothing to watch, which saves a token and a callback per request.
    cancel: CancelToken | None
    wait_for_network: bool
    kwargs: dict[str, Any]
    attempts: int = 0
    _shown_url: str | None = None

    @property
    def shown_url(self) -> str:
        """The URL with credentials redacted, for signals, errors and logs (made once)."""
        if self._shown_url is None:
            self._shown_url = redact_url(self.url)
        return self._shown_url


_GATE_ERRORS = (OfflineError, BackoffError, RateLimitError)

# The hot path compares with these often; a module global is cheaper than an Enum
# class attribute (about 60 ns each on CPython 3.11).
_ONLINE: Final = ConnectionState.ONLINE
_NETWORK_ONLINE: Final = NetworkStatus.ONLINE

#: ``outcome_of``'s names to the machine's members (cheaper than ``Outcome(name)``).
_OUTCOMES: Mapping[str, Outcome] = MappingProxyType({o.value: o for o in Outcome})

#: How often a request waiting for the circuit's trial looks at its verdict (seconds).
_TRIAL_POLL = 0.05


@dataclass(slots=True)
class _Totals:
    logical_requests: int = 0
    attempts: int = 0
    retries: int = 0
    succeeded: int = 0
    failed_by_class: dict[str, int] = field(default_factory=dict)


class ConnectionManager:
    """Sends requests through the state machine, the limiter, the retry engine and the
    deadline-enforcing transport; one instance is shared by all threads of an app.

    Args:
        base_url: joined with relative URLs; its origin is what :attr:`state` reports.
        timeouts: a :class:`~connmgr.timeouts.TimeoutProfiles`, or a mapping of
            operation name to :class:`~connmgr.TimeoutConfig` (or to a dict of fields).
        retry: the :class:`~connmgr.RetryConfig` (default: 3 retries, 0.5 s × 2^n).
        rate_limits: an :class:`~connmgr.ratelimit.OriginRateLimits` (default: 10 req/s
            per origin, adaptive).
        monitor: the shared :class:`~connmgr.NetworkMonitor` (default: the process-wide
            one that the plan's ``NetworkState`` also uses, with the public probes;
            tests pass one that probes loopback).
        policy: the :class:`~connmgr.MachinePolicy` thresholds.
        session: any :class:`requests.Session` (subclasses such as requests-cache's
            ``CachedSession`` work); connmgr mounts its transport adapter on it.
        clock, rng: injected time and randomness.
        retry_budget: the shared :class:`~connmgr.retry.RetryBudget`.
        watch_network: start the monitor's background watcher when the network goes
            away, so its return is noticed even when the app sends nothing (pass
            ``False`` when you drive the monitor yourself, e.g. on a fake clock).

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
    ) -> None:
        self.base_url = base_url
        self._base_origin = origin_of(base_url) if base_url else None
        self._base_root = ""
        if base_url:
            base = urlsplit(base_url)
            self._base_root = f"{base.scheme}://{base.netloc}"
        # "is None", not "or": a registry with no origins yet is falsy (it has a len()).
        self.clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._rng = random.Random() if rng is None else rng
        if timeouts is None:
            self.timeouts = TimeoutProfiles()
        elif isinstance(timeouts, TimeoutProfiles):
            self.timeouts = timeouts
        else:
            self.timeouts = TimeoutProfiles.from_dict(timeouts)
        self.retry_config = RetryConfig() if retry is None else retry
        self.policy = MachinePolicy() if policy is None else policy
        self.rate_limits = (
            OriginRateLimits(clock=self.clock) if rate_limits is None else rate_limits
        )
        if monitor is None:
            # The app's one monitor (also behind the plan's NetworkState), unless time
            # is injected: a fake clock needs a monitor of its own.
            monitor = get_default_monitor() if clock is None else NetworkMonitor(clock=clock)
        self.monitor = monitor
        self._owns_session = session is None
        self.session = requests.Session() if session is None else session
        self._mount_transport(self.session)
        self.retry_budget = RetryBudget() if retry_budget is None else retry_budget
        self._engine = RetryEngine(
            self.retry_config, clock=self.clock, rng=self._rng, budget=self.retry_budget
        )
        self._lock = threading.Lock()
        self._origins: dict[str, _Origin] = {}
        self._offline = False
        self._totals = _Totals()
        self._ids = itertools.count(1)
        self._watch_network = watch_network
        self._watcher_started = False
        self._closed = False
        # blinker holds receivers weakly: keep the bound method alive on self.
        self._on_network_changed_ref = self._on_network_changed
        signals.network_changed.connect(self._on_network_changed_ref, sender=self.monitor)
        self._configs: dict[tuple[TimeoutConfig, float], TimeoutConfig] = {}
        self._next_success_report = -math.inf
        # The hot path reads the time several times a request: skip SystemClock.now's frame.
        self._now = time.monotonic if type(self.clock) is SystemClock else self.clock.now

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
    def state(self) -> ConnectionState:
        """The base origin's state, or the worst across known origins without a base URL."""
        if self._base_origin is not None:
            return self.state_for(self._base_origin)
        with self._lock:
            if self._offline:
                return ConnectionState.OFFLINE
            states = [o.machine.state for o in self._origins.values()]
        return max(states, key=lambda s: s.severity, default=ConnectionState.ONLINE)

    def state_for(self, url: str) -> ConnectionState:
        """The state of ``url``'s origin (``online`` for an origin never contacted)."""
        origin = origin_of(self._absolute(url))
        changes: list[StateChange] = []
        with self._lock:
            entry = self._origins.get(origin)
            if entry is None:
                return ConnectionState.OFFLINE if self._offline else ConnectionState.ONLINE
            changes = entry.machine.poll()
            self._account(changes)
            state = entry.machine.state
        self._emit_changes(changes)
        return state

    def snapshot(self, url: str | None = None) -> ConnectionSnapshot:
        """A frozen view for a UI: state, since when, ``resume_at``, last error, counters.

        Without ``url``: the base origin, or the worst origin when there is no base URL.
        The clock is applied first, so a rate-limit pause that has ended shows as
        ended even when no request has been sent since.
        """
        with self._lock:
            if url is not None or self._base_origin is not None:
                origin = origin_of(self._absolute(url)) if url else self._base_origin
                entry = self._origins.get(origin) if origin else None
            else:
                entry = max(
                    self._origins.values(),
                    key=lambda o: o.machine.state.severity,
                    default=None,
                )
            changes = entry.machine.poll() if entry is not None else []
            self._account(changes)
            snap = self._snapshot_locked(entry)
        self._emit_changes(changes)
        return snap

    def _snapshot_locked(self, entry: _Origin | None) -> ConnectionSnapshot:
        # Caller holds self._lock. Reading the monitor's status takes no lock.
        network = self.monitor.status
        now = self.clock.now()
        if entry is None:
            state = ConnectionState.OFFLINE if self._offline else ConnectionState.ONLINE
            return ConnectionSnapshot(
                None, state, now, None, None, None, 0, MappingProxyType({}),
                None, STATE_EFFECTS[state].label, network, now,
            )  # fmt: skip
        m = entry.machine
        resume_at = None
        if m.state is ConnectionState.RATE_LIMITED:
            resume_at = m.resume_at
        elif m.state is ConnectionState.BACKOFF:
            resume_at = m.cooldown_until
        return ConnectionSnapshot(
            origin=m.origin,
            state=m.state,
            since=m.since,
            resume_at=resume_at,
            retry_in=max(0.0, resume_at - now) if resume_at is not None else None,
            last_error=entry.last_error,
            attempts=m.counters.attempts,
            outcomes=MappingProxyType(dict(m.counters.by_outcome)),
            rate=self.rate_limits.for_origin(m.origin).rate,
            label=STATE_EFFECTS[m.state].label,
            network=network,
            taken_at=now,
        )

    def snapshots(self) -> dict[str, ConnectionSnapshot]:
        """A snapshot of every origin contacted so far."""
        with self._lock:
            origins = list(self._origins)
        return {origin: self.snapshot(origin) for origin in origins}

    def stats(self) -> ManagerStats:
        """Totals since creation: logical requests, attempts, retries, failures, time in state."""
        with self._lock:
            now = self.clock.now()
            time_in_state: dict[str, float] = {}
            for entry in self._origins.values():
                for state, seconds in entry.time_in_state.items():
                    time_in_state[state] = time_in_state.get(state, 0.0) + seconds
                current = entry.machine.state.value
                time_in_state[current] = time_in_state.get(current, 0.0) + now - entry.machine.since
            t = self._totals
            return ManagerStats(
                logical_requests=t.logical_requests,
                attempts=t.attempts,
                retries=t.retries,
                succeeded=t.succeeded,
                failed_by_class=MappingProxyType(dict(t.failed_by_class)),
                time_in_state=MappingProxyType(time_in_state),
            )

    # ------------------------------------------------------------------ control

    def retry_now(self) -> None:
        """Cut every current retry wait short (the banner's "Retry now")."""
        self._engine.retry_now()

    def close(self) -> None:
        """Stop the watcher this manager started on its own monitor; close an owned session."""
        if self._closed:
            return
        self._closed = True
        signals.network_changed.disconnect(self._on_network_changed_ref, sender=self.monitor)
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
        **requests_kwargs: Any,
    ) -> requests.Response:
        """Send one logical request; return the response or raise a :class:`NetworkError`.

        Args:
            method: the HTTP method.
            url: absolute, or relative to ``base_url``.
            operation: the timeout profile (``"default"``, ``"search"``, ``"quick"``,
                ``"download"`` or one you configured); unknown names raise ``ValueError``.
            cancel: a :class:`~connmgr.CancelToken`; cancelling it ends any wait within
                50 ms with :class:`~connmgr.RequestCancelledError`.
            wait_for_network: while offline, wait (bounded by the deadline) for the
                network to come back instead of raising :class:`~connmgr.OfflineError`.
            **requests_kwargs: passed to :meth:`requests.Session.request` (``params``,
                ``json``, ``headers``, ``stream`` ...). ``timeout`` is not accepted: use
                ``operation``.

        A retryable status (429, 5xx in the retry list) still failing when retries run
        out raises :class:`~connmgr.RateLimitError` / :class:`~connmgr.ServerError`
        carrying the last response; any other status is returned, as requests does.
        """
        if "timeout" in requests_kwargs:
            raise ValueError(
                "timeout: connmgr sets timeouts from the operation's profile; "
                "pass operation=... or configure ConnectionManager(timeouts=...)"
            )
        config = self.timeouts.get(operation)
        if self._base_origin is not None and url[:1] == "/" and url[1:2] != "/":
            # A path under base_url: its origin is known, and it replaces the base's
            # path (RFC 3986 5.2.2), so urljoin is not needed.
            origin = self._base_origin
            url = self._base_root + url
        else:
            url = self._absolute(url)
            origin = origin_of(url)
        announce = bool(signals.request_started.receivers)
        call = _Call(
            request_id=next(self._ids),
            method=method.upper(),
            url=url,
            origin=origin,
            operation=operation,
            config=config,
            # The profile validated total; the deadline starts now.
            deadline=Deadline._from_start(config.total, self._now(), self.clock),
            cancel=CancelToken() if cancel is None and announce else cancel,
            wait_for_network=wait_for_network,
            kwargs=requests_kwargs,
        )
        if announce:  # the kwargs cost more than an empty send
            signals.request_started.send(
                self, request_id=call.request_id, method=call.method, url=call.shown_url,
                operation=operation, cancel=call.cancel,
            )  # fmt: skip
        try:
            if call.cancel is not None and call.cancel.cancelled:
                response = self._retrying(call, None)  # raises RequestCancelledError at once
            else:
                # The first attempt goes without the retry engine: most requests need
                # no retry, and then the engine would cost more than the bookkeeping.
                try:
                    response = self._attempt(call, 1)
                except DEFAULT_CATCH as failure:
                    response = self._retrying(call, failure)
                else:
                    self.retry_budget.refund_success()
        except NetworkError as error:
            self._finish_failed(call, error)
            raise
        with self._lock:  # counted as it ends: one lock per request, not two
            self._totals.logical_requests += 1
            self._totals.succeeded += 1
        if signals.request_finished.receivers:
            signals.request_finished.send(
                self, request_id=call.request_id, method=call.method, url=call.shown_url,
                operation=operation, outcome="success", status=response.status_code,
                elapsed=call.deadline.elapsed(), attempts=call.attempts,
            )  # fmt: skip
        return response

    def _retrying(self, call: _Call, first_failure: BaseException | None) -> requests.Response:
        """Hand ``call`` to the retry engine after its first attempt failed (or before it,
        when ``first_failure`` is ``None``)."""
        headers = call.kwargs.get("headers") or {}
        if call.cancel is None:
            # retry_scheduled hands the token to the app (the banner's Cancel), and the
            # engine's waits must watch the token it gets.
            call.cancel = CancelToken()
        return self._engine.call(
            lambda number: self._attempt(call, number),
            classify=lambda exc: classify_error(exc, url=call.url, operation=call.operation),
            may_retry=lambda error: may_resend(call.method, headers, sent=error.request_sent),
            deadline=call.deadline,
            cancel=call.cancel,
            on_retry=lambda event: self._on_retry(call, event),
            first_failure=first_failure,
        )

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

    # ------------------------------------------------------------------ the pipeline

    def _attempt(self, call: _Call, number: int) -> requests.Response:
        call.attempts = number
        cancel = call.cancel
        if cancel is not None and cancel.cancelled:
            raise RequestCancelledError.from_token(cancel, url=call.shown_url)
        entry = self._origins.get(call.origin)
        if entry is not None and entry.machine.state is _ONLINE:
            # The common case, read without the lock: a state change racing with this
            # read is no different from one that lands just after the request left.
            trial, config = False, call.config
        else:
            trial, config = self._pass_gate(call)
            entry = self._origins[call.origin]  # the gate made it
        limiter = entry.limiter
        try:
            # A free slot needs no timeout or token: try for one before waiting.
            if not limiter.acquire() and not limiter.wait(
                timeout=call.deadline.remaining(), cancel=cancel
            ):
                raise RateLimitError(
                    "the client-side rate limit leaves no slot before the deadline",
                    url=call.shown_url,
                    retry_after=limiter.get_wait_time(),
                    attempts=number,
                    operation=call.operation,
                )
        except BaseException:
            self._release_trial(call.origin, trial)
            raise
        sent_at = self._now()
        # Built from values already validated (the profile, this call's deadline).
        context = AttemptContext._make(config, call.deadline, cancel, config.as_tuple())
        try:
            response = self.session.request(call.method, call.url, timeout=context, **call.kwargs)
        except Exception as exc:
            failure = classify_error(exc, url=call.url, attempts=number, operation=call.operation)
            self._record_failure(entry, failure, trial)
            raise failure from exc
        if getattr(response, "from_cache", False):
            # Served by a cache (requests-cache): says nothing about the network.
            self._release_trial(call.origin, trial)
            return response
        elapsed = self._now() - sent_at
        info = parse_rate_limit_headers(response.headers)
        limiter.record_response(response.status_code, info)
        status = response.status_code
        codes = self.retry_config.retry_status_codes
        outcome = _OUTCOMES[outcome_of(response, codes, quota=info)]
        retry_after = None
        # Cheap tests first: most responses carry no quota and come back quickly.
        if info is not None and outcome is Outcome.THROTTLED:
            retry_after = info.retry_after if info.retry_after is not None else info.reset_after
        elif elapsed > config.read * self.policy.slow_fraction and outcome is Outcome.SUCCESS:
            outcome = Outcome.SLOW
        failed = status in codes
        error = (
            classify_error(response, url=call.url, attempts=number, operation=call.operation)
            if failed
            else None
        )
        self._record(entry, outcome, trial, retry_after, error)
        now = self._now()
        if now >= self._next_success_report or self.monitor.status is not _NETWORK_ONLINE:
            # A response proves the network; telling the monitor once a second keeps
            # its cache fresh (interval 30 s) without a call on every response.
            self._next_success_report = now + 1.0
            self.monitor.report_success(url=call.url)
        if error is not None:
            raise error
        return response

    def _record_failure(self, entry: _Origin, error: NetworkError, trial: bool) -> None:
        outcome = _OUTCOMES[outcome_of(error, self.retry_config.retry_status_codes)]
        if outcome is Outcome.UNREACHABLE:
            # A connect or DNS failure: this server, or the whole network? The monitor
            # decides; its network_changed event moves every origin to offline.
            status = self.monitor.report_failure(error)
            if status in (NetworkStatus.ONLINE, NetworkStatus.UNKNOWN):
                # The network is fine: the server is down (transient), or the name
                # does not exist (a typo says nothing about the link: fatal).
                permanent_dns = isinstance(error, DNSError) and not error.temporary
                outcome = Outcome.FATAL if permanent_dns else Outcome.TRANSIENT
        self._record(entry, outcome, trial, error.retry_after, error)

    def _record(
        self,
        entry: _Origin,
        outcome: Outcome,
        trial: bool,
        retry_after: float | None,
        error: NetworkError | None,
    ) -> None:
        with self._lock:
            self._totals.attempts += 1  # every attempt that went out is recorded once, here
            if error is not None:
                entry.last_error = error
            changes = entry.machine.record(outcome, trial=trial, retry_after=retry_after)
            if changes:
                self._account(changes)
            resume_at = entry.machine.resume_at
        if changes:
            self._emit_changes(changes)
        if resume_at is not None and outcome is Outcome.THROTTLED:
            wait = max(0.0, resume_at - self.clock.now())
            signals.rate_limited.send(
                self, origin=entry.machine.origin, resume_at=resume_at, wait=wait
            )

    def _release_trial(self, origin: str, trial: bool) -> None:
        if trial:
            with self._lock:
                self._entry(origin).machine.release_trial()

    def _pass_gate(self, call: _Call) -> tuple[bool, TimeoutConfig]:
        """Wait at the origin's gate when that fits; return (is_trial, effective config).

        Raises :class:`OfflineError`, :class:`RateLimitError` or :class:`BackoffError`
        (``request_sent=False``, so never retried) when the wait would not fit both the
        deadline and ``policy.max_wait``.
        """
        trial_waited = 0.0
        while True:
            with self._lock:
                entry = self._entry(call.origin)
                changes = entry.machine.poll()
                self._account(changes)
                verdict = entry.machine.gate()
                read_factor = entry.machine.effect.read_factor
            self._emit_changes(changes)
            if verdict.action == "pass":
                return verdict.trial, self._effective_config(call.config, read_factor)
            remaining = call.deadline.remaining()
            budget = self.policy.max_wait if remaining is None else min(
                self.policy.max_wait, remaining
            )  # fmt: skip
            if verdict.action == "fail":  # offline
                if call.wait_for_network and budget > 0:
                    self._ensure_watcher()
                    if self.monitor.wait_until_online(budget, cancel=call.cancel):
                        continue
                    if call.cancel is not None and call.cancel.cancelled:
                        raise RequestCancelledError.from_token(call.cancel, url=call.shown_url)
                raise OfflineError(
                    "the network is unreachable", url=call.shown_url, operation=call.operation
                )
            if verdict.wait == math.inf:
                # The trial is out and its verdict has no known time: look again
                # shortly, for as long as the deadline and max_wait allow.
                if budget <= 0:
                    raise self._gate_error(call, verdict.state, None)
                wait = min(_TRIAL_POLL, budget)
            elif verdict.wait > budget:
                raise self._gate_error(call, verdict.state, verdict.retry_in)
            else:
                wait = verdict.wait
            if verdict.state is ConnectionState.RATE_LIMITED:
                signals.rate_limited.send(
                    self, origin=call.origin, resume_at=self.clock.now() + wait, wait=wait
                )
            waited_from = self.clock.now()
            if (
                interruptible_sleep(self.clock, wait, cancel=call.cancel)
                and call.cancel is not None
                and call.cancel.cancelled
            ):
                raise RequestCancelledError.from_token(call.cancel, url=call.shown_url)
            if verdict.wait == math.inf:
                trial_waited += self.clock.now() - waited_from
                if trial_waited >= self.policy.max_wait:
                    raise self._gate_error(call, verdict.state, None)

    @staticmethod
    def _gate_error(call: _Call, state: ConnectionState, retry_in: float | None) -> NetworkError:
        if state is ConnectionState.RATE_LIMITED:
            return RateLimitError(
                "rate limited: waiting would pass the deadline or max_wait",
                url=call.shown_url,
                retry_after=retry_in,
                operation=call.operation,
            )
        return BackoffError(
            "the circuit is open: the server is failing",
            url=call.shown_url,
            retry_in=retry_in,
            operation=call.operation,
        )

    def _effective_config(self, config: TimeoutConfig, read_factor: float) -> TimeoutConfig:
        if read_factor == 1.0:
            return config
        key = (config, read_factor)
        cached = self._configs.get(key)
        if cached is None:
            read = config.read * read_factor
            if config.total is not None:
                read = min(read, config.total)
            cached = self._configs[key] = dataclasses.replace(config, read=read)
        return cached

    def _on_retry(self, call: _Call, event: RetryEvent) -> None:
        with self._lock:
            self._totals.retries += 1
        signals.retry_scheduled.send(
            self, request_id=call.request_id, attempt=event.attempt,
            max_attempts=event.max_attempts, delay=event.delay, error=event.error,
            url=call.shown_url, operation=call.operation, cancel=call.cancel,
        )  # fmt: skip

    def _finish_failed(self, call: _Call, error: NetworkError) -> None:
        name = type(error).__name__
        with self._lock:
            self._totals.logical_requests += 1
            self._totals.failed_by_class[name] = self._totals.failed_by_class.get(name, 0) + 1
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

    def _entry(self, origin: str) -> _Origin:
        # Caller holds self._lock.
        entry = self._origins.get(origin)
        if entry is None:
            initial = ConnectionState.OFFLINE if self._offline else ConnectionState.ONLINE
            machine = OriginMachine(
                origin, self.policy, clock=self.clock, rng=self._rng, initial=initial
            )
            limiter = self.rate_limits.for_origin(origin)
            entry = self._origins[origin] = _Origin(machine, limiter)
        return entry

    def _account(self, changes: list[StateChange]) -> None:
        # Caller holds self._lock: book the time spent in the state just left.
        for change in changes:
            spent = self._origins[change.origin].time_in_state
            spent[change.old.value] = spent.get(change.old.value, 0.0) + change.time_in_old

    def _emit_changes(self, changes: list[StateChange]) -> None:
        for change in changes:
            limiter = self.rate_limits.for_origin(change.origin)
            limiter.set_rate_factor(STATE_EFFECTS[change.new].rate_factor)
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
                    reason=change.reason, snapshot=self._snapshot_of(change.origin),
                )  # fmt: skip

    def _snapshot_of(self, origin: str) -> ConnectionSnapshot:
        # For signal payloads: the state as the change left it, without polling.
        with self._lock:
            return self._snapshot_locked(self._origins.get(origin))

    def _on_network_changed(self, sender: object, **kwargs: Any) -> None:
        online = bool(kwargs.get("online"))
        changes: list[StateChange] = []
        with self._lock:
            self._offline = not online
            for entry in self._origins.values():
                step = entry.machine.network_changed(online)
                changes.extend(step)
            self._account(changes)
        self._emit_changes(changes)

    def _ensure_watcher(self) -> None:
        # While offline no request is sent, so only the monitor can notice the way back.
        if self._watch_network and not self._watcher_started and not self._closed:
            self._watcher_started = True
            self.monitor.start()

    def _absolute(self, url: str) -> str:
        if not self.base_url or "://" in url:
            return url
        if url.startswith("/") and not url.startswith("//"):
            # An absolute path replaces the base's path (RFC 3986 5.2.2): skip urljoin.
            return self._base_root + url
        return urljoin(self.base_url, url)


def _outcome_name(error: NetworkError) -> str:
    """The ``outcome`` argument of ``request_finished`` for a failed request."""
    if isinstance(error, RequestCancelledError):
        return "cancelled"
    if isinstance(error, _GATE_ERRORS) and not error.request_sent:
        return "gated"  # refused at the gate: nothing was sent
    return outcome_of(error)
