"""ConnectionManager over real loopback sockets (FaultServer), on a fake clock."""

from __future__ import annotations

import random
import socket
import threading
import time
from contextlib import closing

import pytest
import requests
from blinker import Signal

import connmgr
from connmgr import signals
from connmgr.clock import CancelToken
from connmgr.errors import (
    BackoffError,
    HTTPStatusError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    ServerError,
)
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.ratelimit import OriginRateLimits, RateLimit
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer

S = ConnectionState
FAST_RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02, jitter_range=0.0)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def make_manager(server, probe_target, *, clock=None, policy=None, retry=FAST_RETRY, **kw):
    clock = clock or FakeClock()
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)],
        timeout=0.2,
        offline_interval=0.05,
        clock=clock,
        debounce=0.0,
    )
    limits = kw.pop("rate_limits", None) or OriginRateLimits(
        default=RateLimit(max_requests=1000, time_window=1.0), clock=clock
    )
    return ConnectionManager(
        server.url,
        retry=retry,
        policy=policy or MachinePolicy(cooldown_jitter=0.0),
        monitor=monitor,
        rate_limits=limits,
        clock=clock,
        rng=random.Random(5),
        watch_network=not isinstance(clock, FakeClock),
        **kw,
    )


def recorded_states(manager):
    seen: list[tuple[str, str]] = []

    def receiver(sender, **kw):
        seen.append((kw["old"].value, kw["new"].value))

    return seen, signals.state_changed.connected_to(receiver, sender=manager)


# -- the basics ---------------------------------------------------------------------


def test_get_returns_the_response_and_stays_online(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        r = mgr.get("/ok")
        assert r.status_code == 200 and r.text == "ok"
        assert mgr.state is S.ONLINE
        assert mgr.snapshot().attempts == 1


def test_a_404_is_returned_not_raised_and_proves_the_link(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        r = mgr.get("/status/404")
        assert r.status_code == 404
        assert server.hits("/status/404") == 1
        assert mgr.state is S.ONLINE


def test_unknown_operation_lists_the_known_ones(server, probe_target):
    with make_manager(server, probe_target) as mgr, pytest.raises(ValueError) as info:
        mgr.get("/ok", operation="serch")
    for name in ("default", "search", "quick", "download"):
        assert name in str(info.value)


def test_timeout_kwarg_is_refused_with_a_pointer_to_operation(server, probe_target):
    with make_manager(server, probe_target) as mgr, pytest.raises(ValueError, match="operation"):
        mgr.get("/ok", timeout=3)


# -- retries ------------------------------------------------------------------------


def test_flaky_get_is_retried_and_degrades_then_recovers(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        seen, ctx = recorded_states(mgr)
        with ctx:
            r = mgr.get("/flaky/a?fail=2&status=503")
            assert r.status_code == 200
            assert server.hits("/flaky/a") == 3
            assert mgr.state is S.DEGRADED
            for _ in range(5):
                mgr.get("/ok")
        assert seen == [("online", "degraded"), ("degraded", "online")]
        assert mgr.stats().retries == 2


def test_failing_post_is_sent_once(server, probe_target):
    with make_manager(server, probe_target) as mgr, pytest.raises(ServerError) as info:
        mgr.post("/status/503", data=b"order")
    assert server.hits("/status/503") == 1
    assert info.value.response is not None and info.value.response.status_code == 503


def test_post_with_idempotency_key_is_retried(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        r = mgr.post("/flaky/p?fail=1&status=503", headers={"Idempotency-Key": "k1"})
    assert r.status_code == 200
    assert server.hits("/flaky/p") == 2


def test_post_that_never_left_is_retried(server, probe_target):
    # Refused connections prove nothing was sent; the probe stays up, so it is transient.
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with make_manager(server, probe_target) as mgr:
        seen: list[int] = []
        with (
            signals.retry_scheduled.connected_to(
                lambda sender, **kw: seen.append(kw["attempt"]), sender=mgr
            ),
            pytest.raises(NetworkError),
        ):
            mgr.post(f"http://127.0.0.1:{dead}/x", data=b"1")
        assert seen == [2, 3, 4]


def test_retries_exhausted_raise_server_error_with_the_last_response(server, probe_target):
    with make_manager(server, probe_target) as mgr, pytest.raises(ServerError) as info:
        mgr.get("/status/500")
    assert server.hits("/status/500") == 4
    assert info.value.attempts == 4
    assert info.value.response.status_code == 500


def test_other_4xx_is_never_retried(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        assert mgr.get("/status/403").status_code == 403
    assert server.hits("/status/403") == 1


# -- the circuit --------------------------------------------------------------------


# max_wait bounds retry delays too (the cap rule): 0.05 s lets the 0.01-0.02 s
# retries run and still refuses the 2 s cooldown.
def test_outage_opens_the_circuit_and_fails_fast(server, probe_target):
    policy = MachinePolicy(max_wait=0.05, cooldown_jitter=0.0)
    with make_manager(server, probe_target, policy=policy) as mgr:
        seen, ctx = recorded_states(mgr)
        with ctx:
            with pytest.raises(ServerError):
                mgr.get("/status/503")  # 4 attempts: degraded
            with pytest.raises(BackoffError):
                mgr.get("/status/503")  # the 5th transient trips the circuit: no 6th send
            assert mgr.state is S.BACKOFF
            assert server.hits("/status/503") == 5
            sends = server.hits("/status/503")
            for _ in range(50):
                with pytest.raises(BackoffError) as info:
                    mgr.get("/status/503")
            assert server.hits("/status/503") == sends  # nothing more reached the server
            assert info.value.retry_in is not None and info.value.retry_in > 0
        assert seen[:2] == [("online", "degraded"), ("degraded", "backoff")]


def test_outage_of_100_requests_costs_at_most_1_2_sends_each(server, probe_target):
    # The independent check, on the fake clock.
    policy = MachinePolicy(max_wait=0)
    with make_manager(server, probe_target, policy=policy) as mgr:
        for _ in range(100):
            with pytest.raises(NetworkError):
                mgr.get("/status/503")
            mgr.clock.advance(0.05)
        assert server.hits("/status/503") / 100 <= 1.2
        assert mgr.state is S.BACKOFF


def test_trial_after_cooldown_closes_the_circuit(server, probe_target):
    policy = MachinePolicy(max_wait=0.05, cooldown_jitter=0.0, cooldown_base=2.0)
    with make_manager(server, probe_target, policy=policy) as mgr:
        server.alias("/api", "/status/503")
        with pytest.raises(ServerError):
            mgr.get("/api")
        with pytest.raises(BackoffError):
            mgr.get("/api")
        assert mgr.state is S.BACKOFF
        server.alias("/api", "/ok")
        mgr.clock.advance(2.0)
        assert mgr.get("/api").status_code == 200
        assert mgr.state is S.DEGRADED


def test_waiting_at_the_backoff_gate_when_it_fits(server, probe_target):
    policy = MachinePolicy(max_wait=30, cooldown_jitter=0.0, cooldown_base=2.0)
    with make_manager(server, probe_target, policy=policy) as mgr:
        server.alias("/api", "/status/503")
        for _ in range(2):
            with pytest.raises(NetworkError):
                mgr.get("/api")
        assert mgr.state is S.BACKOFF
        server.alias("/api", "/ok")
        before = mgr.clock.now()
        assert mgr.get("/api").status_code == 200  # waits out the 2 s cooldown on the fake clock
        assert mgr.clock.now() - before >= 2.0


# -- rate limits --------------------------------------------------------------------


def test_429_with_retry_after_passes_through_rate_limited(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        seen, ctx = recorded_states(mgr)
        server.alias("/api", "/status/429?retry_after=1")
        with ctx:
            t0 = mgr.clock.now()
            with pytest.raises(RateLimitError) as info:
                mgr.get("/api")
            # Each retry waited for Retry-After: 1 s on the fake clock.
            assert mgr.clock.now() - t0 >= 3.0
        assert ("online", "rate_limited") in seen
        assert info.value.retry_after == 1.0
        assert info.value.response.status_code == 429


def test_rate_limited_gate_raises_at_once_when_the_wait_does_not_fit(server, probe_target):
    policy = MachinePolicy(max_wait=0)
    with make_manager(server, probe_target, policy=policy, retry=RetryConfig(max_retries=0)) as mgr:
        with pytest.raises(RateLimitError):
            mgr.get("/status/429?retry_after=30")
        hits = server.hits()
        with pytest.raises(RateLimitError) as info:
            mgr.get("/ok")
        assert server.hits() == hits
        assert info.value.retry_after == pytest.approx(30.0)
        assert mgr.state is S.RATE_LIMITED
        mgr.clock.advance(30.0)
        assert mgr.get("/ok").status_code == 200
        assert mgr.state is S.ONLINE


def test_rate_limit_one_origin_does_not_gate_another(server, probe_target):
    with FaultServer() as other, make_manager(server, probe_target) as mgr:
        with pytest.raises(RateLimitError):
            mgr.get("/status/429?retry_after=100")
        assert mgr.state_for(server.url) is S.RATE_LIMITED
        assert mgr.get(other.url_for("/ok")).status_code == 200
        assert mgr.state_for(other.url) is S.ONLINE


# -- the network --------------------------------------------------------------------


def test_refused_plus_failed_probe_goes_offline_then_fails_fast(server, probe_target):
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with make_manager(server, probe_target) as mgr:
        mgr.get("/ok")
        probe_target.close()
        with pytest.raises(NetworkError):
            mgr.get(f"http://127.0.0.1:{dead}/x")
        assert mgr.state is S.OFFLINE
        hits = server.hits()
        started = time.perf_counter()
        with pytest.raises(OfflineError) as info:
            mgr.get("/ok")
        assert time.perf_counter() - started < 0.001 * 50  # generous in a test; bench says 1 ms
        assert server.hits() == hits
        assert info.value.user_message


def test_network_return_brings_every_origin_back(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        mgr.get("/ok")
        probe_target.close()
        assert mgr.monitor.is_online(force_check=True) is False
        assert mgr.state is S.OFFLINE
        probe_target.reopen()
        assert mgr.monitor.is_online(force_check=True) is True
        assert mgr.state is S.ONLINE
        assert mgr.get("/ok").status_code == 200


# -- cancellation and retry now -----------------------------------------------------


def test_cancel_ends_a_retry_wait_within_50_ms(server, probe_target):
    retry = RetryConfig(max_retries=3, base_delay=5.0, jitter_range=0.0)
    with make_manager(server, probe_target, clock=_system_clock(), retry=retry) as mgr:
        token = CancelToken()
        threading.Timer(0.05, token.cancel).start()
        started = time.perf_counter()
        with pytest.raises(RequestCancelledError):
            mgr.get("/status/503", cancel=token)
        assert time.perf_counter() - started < 0.05 + 0.05 + 0.1


@pytest.mark.parametrize(
    ("signal_name", "path", "retry"),
    [
        # The banner's Cancel, during a retry wait.
        ("retry_scheduled", "/status/503", RetryConfig(max_retries=3, base_delay=5.0)),
        # A receiver of request_started, during the attempt itself.
        ("request_started", "/stall-headers", FAST_RETRY),
    ],
)
def test_the_token_a_signal_hands_out_cancels_the_request(
    server, probe_target, signal_name, path, retry
):
    # No token from the caller: the signal carries the one the manager made.
    with make_manager(server, probe_target, clock=_system_clock(), retry=retry) as mgr:

        def receiver(sender, **kw):
            threading.Timer(0.02, kw["cancel"].cancel).start()

        with getattr(signals, signal_name).connected_to(receiver, sender=mgr):
            started = time.perf_counter()
            with pytest.raises(RequestCancelledError):
                mgr.get(path)
            assert time.perf_counter() - started < 0.02 + 0.05 + 0.1
        assert server.hits(path) == 1


def test_retry_now_cuts_the_wait_short(server, probe_target):
    retry = RetryConfig(max_retries=1, base_delay=5.0, jitter_range=0.0)
    with make_manager(server, probe_target, clock=_system_clock(), retry=retry) as mgr:
        server.alias("/api", "/flaky/rn?fail=1&status=503")

        def on_retry(sender, **kw):
            threading.Timer(0.02, mgr.retry_now).start()

        with signals.retry_scheduled.connected_to(on_retry, sender=mgr):
            started = time.perf_counter()
            assert mgr.get("/api").status_code == 200
            assert time.perf_counter() - started < 0.15


def _system_clock():
    from connmgr.clock import SystemClock

    return SystemClock()


# -- signals and snapshots -----------------------------------------------------------


def test_signals_carry_their_documented_arguments(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        got: dict[str, dict] = {}

        def grab(name: str):
            def receiver(sender, **kw):
                assert sender is mgr
                got.setdefault(name, kw)

            return receiver

        receivers = {n: grab(n) for n in ("request_started", "request_finished", "retry_scheduled")}
        ctxs = [
            getattr(signals, n).connected_to(r, sender=mgr)  # type: ignore[union-attr]
            for n, r in receivers.items()
        ]
        for c in ctxs:
            c.__enter__()
        try:
            mgr.get("/flaky/s?fail=1&status=503&token=secret123")
        finally:
            for c in ctxs:
                c.__exit__(None, None, None)
        assert set(got["retry_scheduled"]) >= {
            "attempt", "max_attempts", "delay", "error", "url", "operation", "request_id", "cancel"
        }  # fmt: skip
        assert got["retry_scheduled"]["attempt"] == 2
        assert got["retry_scheduled"]["max_attempts"] == 4
        assert "secret123" not in got["retry_scheduled"]["url"]
        assert got["request_finished"]["outcome"] == "success"
        assert got["request_finished"]["attempts"] == 2


def test_snapshot_for_a_ui(server, probe_target):
    with make_manager(server, probe_target, policy=MachinePolicy(max_wait=0)) as mgr:
        with pytest.raises(RateLimitError):
            mgr.get("/status/429?retry_after=12")
        snap = mgr.snapshot()
        assert snap.state is S.RATE_LIMITED
        assert snap.label == "Rate limited"
        assert snap.retry_in == pytest.approx(12.0)
        assert isinstance(snap.last_error, RateLimitError)
        assert snap.outcomes["throttled"] >= 1


def test_a_cached_response_does_not_move_the_machine(server, probe_target):
    class CachedSession(requests.Session):
        def send(self, request, **kwargs):
            response = super().send(request, **kwargs)
            response.from_cache = True  # type: ignore[attr-defined]
            return response

    with make_manager(server, probe_target, session=CachedSession()) as mgr:
        assert mgr.get("/status/503").status_code == 503
        assert mgr.state is S.ONLINE
        assert mgr.snapshot().attempts == 0


def test_a_session_with_a_foreign_adapter_is_refused_naming_the_field(server, probe_target):
    class ForeignAdapter(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    session.mount("http://", ForeignAdapter())
    with pytest.raises(ValueError, match="session"):
        make_manager(server, probe_target, session=session)


# -- threads ------------------------------------------------------------------------


def test_threads_hammering_one_manager(server, probe_target):
    from connmgr.clock import SystemClock

    with make_manager(
        server, probe_target, clock=SystemClock(), policy=MachinePolicy(max_wait=0)
    ) as mgr:
        server.alias("/api", "/random?rate=0.2&status=503&seed=4")
        errors: list[BaseException] = []
        outside: list[BaseException] = []

        def worker():
            for _ in range(25):
                try:
                    mgr.get("/api")
                except NetworkError as exc:
                    errors.append(exc)
                except BaseException as exc:  # anything outside the tree fails the test
                    outside.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert outside == []
        stats = mgr.stats()
        assert server.hits("/api") == stats.attempts
        # Each ended call is counted once, as a success or under its error class.
        assert stats.logical_requests == 8 * 25
        assert stats.succeeded + sum(stats.failed_by_class.values()) == 8 * 25


def test_signal_receivers_are_not_called_under_the_lock(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        calls: list[S] = []

        def receiver(sender, **kw):
            calls.append(sender.state)  # would deadlock if sent under the manager's lock

        with signals.state_changed.connected_to(receiver, sender=mgr):
            mgr.get("/flaky/l?fail=1&status=503")
        assert calls


def test_http_status_error_is_still_a_requests_exception():
    assert issubclass(HTTPStatusError, requests.HTTPError)
    assert isinstance(signals.state_changed, Signal)


# -- gate details found by the demo ---------------------------------------------------


def test_requests_wait_for_the_trial_verdict_instead_of_failing(server, probe_target):
    # While the trial is out, others wait (bounded by max_wait) and then pass.
    policy = MachinePolicy(max_wait=5, cooldown_jitter=0.0, cooldown_base=0.05)
    with make_manager(server, probe_target, clock=_system_clock(), policy=policy) as mgr:
        server.alias("/api", "/status/503")
        for _ in range(2):
            with pytest.raises(NetworkError):
                mgr.get("/api", operation="quick")
        assert mgr.state is S.BACKOFF
        server.alias("/api", "/ok?delay=0.1")  # the trial takes 100 ms
        results: list[object] = []

        def worker():
            try:
                results.append(mgr.get("/api").status_code)
            except NetworkError as exc:
                results.append(type(exc).__name__)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [200, 200, 200, 200]
        assert mgr.state is S.DEGRADED


def test_a_failed_trial_announces_the_longer_cooldown(server, probe_target):
    policy = MachinePolicy(max_wait=0.05, cooldown_jitter=0.0, cooldown_base=2.0)
    with make_manager(server, probe_target, policy=policy) as mgr:
        server.alias("/api", "/status/503")
        for _ in range(2):
            with pytest.raises(NetworkError):
                mgr.get("/api")
        seen, ctx = recorded_states(mgr)
        with ctx:
            mgr.clock.advance(2.0)
            with pytest.raises(NetworkError):
                mgr.get("/api")  # the trial fails
        assert seen == [("backoff", "backoff")]
        assert mgr.snapshot().retry_in == pytest.approx(4.0, abs=0.05)


def test_a_name_that_does_not_exist_does_not_degrade_the_link(server, probe_target):
    with make_manager(server, probe_target) as mgr:
        with pytest.raises(connmgr.DNSError):
            mgr.get("http://nothing.invalid/")
        assert mgr.state_for("http://nothing.invalid/") is S.ONLINE


def test_the_plans_positional_retry_after_still_works():
    err = RateLimitError(30)
    assert err.retry_after == 30.0
    assert "30" in err.suggestion


def test_snapshot_applies_the_clock(server, probe_target):
    policy = MachinePolicy(max_wait=0)
    with make_manager(server, probe_target, policy=policy, retry=RetryConfig(max_retries=0)) as mgr:
        with pytest.raises(RateLimitError):
            mgr.get("/status/429?retry_after=5")
        assert mgr.snapshot().state is S.RATE_LIMITED
        mgr.clock.advance(5.0)
        seen, ctx = recorded_states(mgr)
        with ctx:
            assert mgr.snapshot().state is S.ONLINE
        assert seen == [("rate_limited", "online")]


def test_managers_share_the_process_wide_monitor_by_default():
    from connmgr.network import get_default_monitor

    with ConnectionManager() as a, ConnectionManager("http://127.0.0.1:9") as b:
        assert a.monitor is b.monitor is get_default_monitor()
    with ConnectionManager(clock=FakeClock()) as c:
        assert c.monitor is not get_default_monitor()
