"""The manager says what the network says: captive portal, limited, epochs, sleep."""

from __future__ import annotations

import random

import pytest

from connmgr import signals
from connmgr.errors import CaptivePortalError, ConnectionFailedError, OfflineError
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager
from connmgr.network import HttpProbe, NetworkMonitor, NetworkStatus, TcpProbe
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer

NO_RETRY = RetryConfig(max_retries=0)


@pytest.fixture
def store():
    with FaultServer() as s:
        yield s


@pytest.fixture
def internet():
    """The connectivity check's server: ``/check`` answers 204 until aliased to a portal."""
    with FaultServer() as s:
        s.alias("/check", "/generate_204")
        yield s


def manager(store_url, monitor, clock, **kw):
    kw.setdefault("retry", NO_RETRY)
    return ConnectionManager(
        store_url, monitor=monitor, clock=clock, rng=random.Random(1), watch_network=False, **kw
    )


def http_monitor(internet, clock):
    return NetworkMonitor(
        probes=[HttpProbe(internet.url_for("/check"))], timeout=1.0, clock=clock, debounce=0.0
    )


def test_behind_a_portal_a_request_fails_fast_with_one_word_everywhere(store, internet):
    clock = FakeClock(start=0.0)
    monitor = http_monitor(internet, clock)
    with manager(store.url, monitor, clock) as mgr:
        assert mgr.get("/ok").status_code == 200
        internet.alias("/check", "/portal")
        assert monitor.check() is NetworkStatus.CAPTIVE_PORTAL
        with pytest.raises(CaptivePortalError) as caught:
            mgr.get("/ok")
        error = caught.value
        assert isinstance(error, OfflineError)  # behaves as offline: nothing was sent
        assert error.request_sent is False
        assert "sign in" in error.user_message.lower()
        assert "browser" in error.suggestion
        assert error.portal_url == internet.url_for("/check")
        assert store.hits("/ok") == 1
        snap = mgr.snapshot()
        assert snap.label == "Sign in to the network" == NetworkStatus.CAPTIVE_PORTAL.label
        assert snap.network is NetworkStatus.CAPTIVE_PORTAL
        # Signed in: the check answers 204 again, and requests go.
        internet.alias("/check", "/generate_204")
        assert monitor.check() is NetworkStatus.ONLINE
        assert mgr.get("/ok").status_code == 200
        assert mgr.snapshot().label == "Online"


def test_a_manager_created_behind_a_known_portal_refuses_at_once(store, internet):
    clock = FakeClock(start=0.0)
    monitor = http_monitor(internet, clock)
    internet.alias("/check", "/portal")
    monitor.check()
    with manager(store.url, monitor, clock) as mgr, pytest.raises(CaptivePortalError):
        mgr.get("/ok")
    assert store.hits() == 0


def test_while_limited_requests_are_sent_and_failures_say_what_is_true(
    store, internet, probe_target
):
    clock = FakeClock(start=0.0)
    # TCP works, the HTTP check is refused: connected, not validated.
    internet.stop()
    monitor = NetworkMonitor(
        probes=[HttpProbe(internet.url_for("/check")), TcpProbe("127.0.0.1", probe_target.port)],
        timeout=1.0,
        clock=clock,
        debounce=0.0,
    )
    assert monitor.check() is NetworkStatus.LIMITED
    with manager(store.url, monitor, clock) as mgr:
        assert mgr.get("/ok").status_code == 200  # an intranet server answers: sent
        assert mgr.snapshot().label == "Online"  # it answered on this network
        store.stop()
        with pytest.raises(ConnectionFailedError) as caught:
            mgr.get("/ok")
        assert caught.value.user_message == (
            "Connected to a network, but the internet can't be reached."
        )
        assert mgr.state is not ConnectionState.OFFLINE


def test_a_new_epoch_never_reuses_a_pooled_connection(store, probe_target):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    with manager(store.url, monitor, clock) as mgr:
        mgr.get("/ok")
        mgr.get("/ok")
        first, second = store.requests_to("/ok")
        assert first.client == second.client  # keep-alive within an epoch
        probe_target.close()
        assert monitor.check() is NetworkStatus.OFFLINE
        with pytest.raises(OfflineError):
            mgr.get("/ok")
        probe_target.reopen()
        assert monitor.check() is NetworkStatus.ONLINE
        mgr.get("/ok")
        third = store.requests_to("/ok")[-1]
        assert third.client != second.client  # a fresh TCP connection on the new network


def test_an_os_hint_starts_an_epoch_that_drops_pooled_connections(store, probe_target):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    with manager(store.url, monitor, clock) as mgr:
        mgr.get("/ok")
        epochs: list[int] = []
        with signals.network_epoch_changed.connected_to(
            lambda sender, **kw: epochs.append(kw["epoch"]), sender=monitor
        ):
            monitor.hint_changed("test")
        assert epochs
        mgr.get("/ok")
        first, second = store.requests_to("/ok")
        assert first.client != second.client
        assert mgr.snapshot().epoch == monitor.epoch


def test_a_circuit_opened_on_the_old_network_gives_its_trial_on_the_new_one(store, probe_target):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    policy = MachinePolicy(trip_after=1, cooldown_base=60.0, cooldown_jitter=0.0, max_wait=0)
    with manager(store.url, monitor, clock, policy=policy) as mgr:
        with pytest.raises(Exception):  # noqa: B017 (a 503: ServerError)
            mgr.get("/status/503")
        assert mgr.state is ConnectionState.BACKOFF
        monitor.hint_changed("wifi switched")
        assert mgr.get("/ok").status_code == 200  # the trial goes at once
        assert mgr.state is ConnectionState.DEGRADED  # the circuit closed


def test_a_server_pause_holds_across_an_epoch_but_counts_the_sleep(store, probe_target):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    with manager(store.url, monitor, clock, policy=MachinePolicy(max_wait=0)) as mgr:
        with pytest.raises(Exception):  # noqa: B017 (a 429: RateLimitError)
            mgr.get("/status/429?retry_after=100")
        assert mgr.snapshot().retry_in == pytest.approx(100)
        monitor.hint_changed("wifi switched")
        assert mgr.snapshot().retry_in == pytest.approx(100)  # the server's word holds
        signals.network_epoch_changed.send(monitor, epoch=99, cause=None, slept=60.0)
        assert mgr.snapshot().retry_in == pytest.approx(40)  # a minute of sleep counted


def _stall_then_change(store, probe_target, change):
    """A GET stalled on its headers while ``change(monitor)`` happens: (outcome, seconds)."""
    import threading
    import time

    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, debounce=0.0,
        os_events=False,
    )  # fmt: skip
    monitor.check()
    mgr = ConnectionManager(
        store.url, monitor=monitor, watch_network=False,
        retry=RetryConfig(max_retries=1, base_delay=0.0, jitter_range=0.0),
        timeouts={"default": {"connect": 2.0, "read": 3.0, "total": 5.0}},
    )  # fmt: skip
    store.alias("/slow", "/stall-headers?seconds=30")
    outcome: list[object] = []

    def worker():
        try:
            outcome.append(mgr.get("/slow").status_code)
        except Exception as exc:  # the test reads it below
            outcome.append(exc)

    with mgr:
        thread = threading.Thread(target=worker)
        thread.start()
        for _ in range(200):  # until the request waits for its headers
            if store.hits("/slow"):
                break
            time.sleep(0.01)
        store.alias("/slow", "/ok")  # the "new network" answers
        started = time.monotonic()
        change(monitor)
        thread.join(8)
        took = time.monotonic() - started
    return outcome, took


def test_after_a_sleep_an_idempotent_request_on_an_old_socket_goes_again_at_once(
    store, probe_target
):
    from connmgr.network.events import EpochCause

    def resume(monitor):
        signals.network_epoch_changed.send(
            monitor, epoch=monitor.epoch + 1, cause=EpochCause.RESUME, reason="resumed",
            slept=3600.0, status=monitor.status,
        )  # fmt: skip

    outcome, took = _stall_then_change(store, probe_target, resume)
    assert outcome == [200]
    assert took < 1.5  # not the 3 s read timeout, nor the 30 s stall
    assert store.hits("/slow") == 2


def test_an_os_hint_leaves_a_request_whose_socket_is_still_here_alone(store, probe_target):
    # Loopback's address never goes away: the hint (an address added, say) must not
    # end a healthy request, which then ends at its own read timeout here.
    outcome, took = _stall_then_change(store, probe_target, lambda m: m.hint_changed("ipv6 up"))
    assert store.hits("/slow") >= 1
    assert took >= 2.5  # it was not abandoned: it met its own read timeout
    assert outcome == [200]  # and was then retried, as any read timeout is
