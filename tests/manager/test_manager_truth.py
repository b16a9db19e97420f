"""What the manager tells is what happened: caller bugs, bad URLs, POSTs, receivers, caps."""

from __future__ import annotations

import random

import pytest

import connmgr
from connmgr import signals
from connmgr.errors import InvalidRequestError, NetworkError, RateLimitError
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.manager import ConnectionManager, ManagerClosedError
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.ratelimit import OriginRateLimits
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer

FAST_RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=0.02, jitter_range=0.0)


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


def manager_for(url, probe_target, clock, **kw):
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=0.2, clock=clock, debounce=0.0
    )
    kw.setdefault("retry", FAST_RETRY)
    return ConnectionManager(
        url, monitor=monitor, clock=clock, rng=random.Random(3), watch_network=False, **kw
    )


@pytest.fixture
def mgr(server, probe_target):
    with manager_for(server.url, probe_target, FakeClock(start=0.0)) as m:
        yield m


# -- a caller's bug is not a network error ---------------------------------------------


def test_a_misspelt_keyword_is_a_type_error_and_sends_nothing(mgr, server):
    with pytest.raises(TypeError, match="operatoin"):
        mgr.get("/ok", operatoin="search")  # type: ignore[call-arg]
    assert server.hits() == 0
    assert mgr.state is ConnectionState.ONLINE


def test_an_unserialisable_json_body_is_a_type_error_and_sends_nothing(mgr, server):
    with pytest.raises(TypeError) as caught:
        mgr.post("/echo", json=object())
    assert not isinstance(caught.value, NetworkError)
    assert server.hits() == 0
    assert mgr.snapshot().attempts == 0
    assert mgr.state is ConnectionState.ONLINE


@pytest.mark.parametrize("cancel", ["yes", 1, object()])
def test_a_cancel_of_the_wrong_type_is_a_type_error(mgr, server, cancel):
    with pytest.raises(TypeError, match="cancel"):
        mgr.get("/ok", cancel=cancel)
    assert server.hits() == 0


def test_timeout_is_refused_with_a_value_error_naming_it(mgr, server):
    with pytest.raises(ValueError, match="timeout"):
        mgr.get("/ok", timeout=5)  # type: ignore[arg-type]
    assert server.hits() == 0


@pytest.mark.parametrize(
    "url", ["example.com/x", "http://[::1", "http://127.0.0.1:99999/", "http:///path", "ftp://h/"]
)
def test_a_malformed_url_is_an_invalid_request_error_before_sending(probe_target, url):
    with (
        manager_for(None, probe_target, FakeClock(start=0.0)) as m,
        pytest.raises(InvalidRequestError) as caught,
    ):
        m.get(url)
    assert isinstance(caught.value, ValueError)
    assert caught.value.request_sent is False


def test_a_closed_manager_refuses_before_sending(server, probe_target):
    m = manager_for(server.url, probe_target, FakeClock(start=0.0))
    m.close()
    with pytest.raises(ManagerClosedError):
        m.get("/ok")
    assert isinstance(ManagerClosedError("x"), RuntimeError)
    assert not issubclass(ManagerClosedError, NetworkError)
    assert server.hits() == 0


# -- a POST that may have arrived is never "not sent" ------------------------------------


def test_a_post_answered_with_conflicting_lengths_may_have_arrived_and_goes_once(
    raw_server, probe_target
):
    bad = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok\r\n")
    with (
        manager_for(bad.url, probe_target, FakeClock(start=0.0)) as m,
        pytest.raises(NetworkError) as caught,
    ):
        m.post("/orders", json={"id": 1})
    assert caught.value.request_sent is not False
    assert len(bad.requests) == 1
    assert "could not be sent" not in caught.value.user_message


# -- receivers cannot change what the caller sees -----------------------------------------


SIGNALS = (
    "request_started",
    "request_finished",
    "state_changed",
    "retry_scheduled",
    "rate_limited",
    "request_failed",
)


def test_receivers_that_raise_change_nothing_the_caller_sees(server, probe_target):
    calls: list[str] = []

    def explode(sender, **kw):
        calls.append("x")
        raise RuntimeError("a buggy receiver")

    for name in SIGNALS:
        getattr(signals, name).connect(explode, weak=False)
    try:
        with manager_for(server.url, probe_target, FakeClock(start=0.0)) as m:
            assert m.get("/ok").text == "ok"
            # retry_scheduled, state_changed, rate_limited: a 429, then success
            r = m.get("/flaky/recv?fail=1&status=429")
            assert r.status_code == 200
            assert m.get("/status/404").status_code == 404
            with pytest.raises(connmgr.ServerError) as caught:
                m.get("/status/503")
            assert caught.value.status == 503
    finally:
        for name in SIGNALS:
            getattr(signals, name).disconnect(explode)
    assert len(calls) >= 8


# -- the cap rule -----------------------------------------------------------------------


def test_a_server_pause_longer_than_max_wait_fails_at_once_and_shows(server, probe_target):
    clock = FakeClock(start=0.0)
    with manager_for(server.url, probe_target, clock, policy=MachinePolicy(max_wait=2)) as m:
        with pytest.raises(RateLimitError) as caught:
            m.get("/status/429?retry_after=40")
        assert clock.now() < 2.5  # no wait at all on the fake clock
        assert caught.value.retry_after is not None and caught.value.retry_after >= 30
        snap = m.snapshot()
        assert snap.state is ConnectionState.RATE_LIMITED
        assert snap.retry_in is not None and snap.retry_in > 20
        # The next call does not wait either: the gate knows the pause.
        with pytest.raises(RateLimitError) as again:
            m.get("/ok")
        assert again.value.retry_after is not None and again.value.retry_after > 20
        assert clock.now() < 2.5


def test_an_absurd_retry_after_is_remembered_as_max_retry_after(server, probe_target):
    clock = FakeClock(start=0.0)
    with manager_for(server.url, probe_target, clock) as m:
        with pytest.raises(RateLimitError) as caught:
            m.get("/status/429?retry_after=999999999")
        assert caught.value.retry_after == pytest.approx(300.0)
        assert m.snapshot().retry_in == pytest.approx(300.0, abs=1)
        assert server.hits() == 1  # never retried into a pause it cannot wait out


# -- no static throttle by default ---------------------------------------------------------


def test_a_default_manager_does_not_throttle_a_healthy_origin(server, probe_target):
    clock = FakeClock(start=0.0)
    with manager_for(server.url, probe_target, clock) as m:
        assert isinstance(m.rate_limits, OriginRateLimits)
        for _ in range(200):
            assert m.get("/ok").status_code == 200
        assert clock.now() == 0.0  # not one wait on the fake clock
        assert m.snapshot().rate is None
        assert server.hits() == 200


def test_a_503_with_a_long_retry_after_fails_fast_as_a_rate_limit(server, probe_target):
    clock = FakeClock(start=0.0)
    with manager_for(server.url, probe_target, clock) as m:
        with pytest.raises(RateLimitError) as caught:
            m.get("/status/503?retry_after=999999999")
        assert caught.value.status == 503
        assert caught.value.retry_after == pytest.approx(300.0)
        assert "unavailable" in caught.value.user_message
        assert "day" not in caught.value.suggestion
        assert server.hits() == 1
        assert m.snapshot().state is ConnectionState.RATE_LIMITED


def test_a_short_retry_after_on_a_503_is_waited_and_retried(server, probe_target):
    clock = FakeClock(start=0.0)
    with manager_for(server.url, probe_target, clock) as m:
        with pytest.raises(connmgr.ServerError):
            m.get("/status/503?retry_after=1")
        assert server.hits() == 4
