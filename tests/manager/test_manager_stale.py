"""Stale answers instead of no answer: a requests-cache session behind the manager."""

from __future__ import annotations

import datetime as dt
import random
import time

import pytest

requests_cache = pytest.importorskip("requests_cache")

from connmgr import signals  # noqa: E402
from connmgr.errors import ConnectionFailedError, OfflineError  # noqa: E402
from connmgr.manager import ConnectionManager  # noqa: E402
from connmgr.network import NetworkMonitor, NetworkStatus, TcpProbe  # noqa: E402
from connmgr.retry import RetryConfig  # noqa: E402
from connmgr.stale import cached_answer, stale_age  # noqa: E402
from connmgr.testing import FakeClock, FaultServer  # noqa: E402


@pytest.fixture
def store():
    with FaultServer() as s:
        yield s


def make(store, probe_target, tmp_path, **kw):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    session = requests_cache.CachedSession(str(tmp_path / "cache"), expire_after=60)
    mgr = ConnectionManager(
        store.url, session=session, monitor=monitor, clock=clock, rng=random.Random(2),
        retry=RetryConfig(max_retries=0), watch_network=False, **kw,
    )  # fmt: skip
    return mgr, monitor


def expire_everything(mgr):
    """Age every cached answer past its expiry, without waiting."""
    mgr.session.cache.reset_expiration(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))


def test_offline_an_expired_answer_is_served_marked_and_aged(
    store, probe_target, tmp_path, monkeypatch
):
    mgr, monitor = make(store, probe_target, tmp_path, serve_stale=True)
    with mgr:
        live = mgr.get("/echo", params={"q": "house"})
        assert stale_age(live) is None
        expire_everything(mgr)
        later = time.time() + 90
        monkeypatch.setattr("connmgr.stale.time.time", lambda: later)
        store.stop()
        probe_target.close()
        assert monitor.check() is NetworkStatus.OFFLINE
        finished: list[str] = []
        with signals.request_finished.connected_to(
            lambda sender, **kw: finished.append(kw["outcome"]), sender=mgr
        ):
            stale = mgr.get("/echo", params={"q": "house"})
        assert stale.from_cache and stale.is_expired
        assert stale.json()["args"] == {"q": "house"}
        age = stale_age(stale)
        assert age is not None and 89 <= age <= 120
        assert finished == ["stale"]
        assert mgr.snapshot().stale_served == 1
        assert mgr.stats().stale_served == 1
        # Without serve_stale the same call raises, as before.
        with pytest.raises(OfflineError):
            mgr.get("/echo", params={"q": "house"}, serve_stale=False)


def test_without_serve_stale_nothing_changes(store, probe_target, tmp_path):
    mgr, _ = make(store, probe_target, tmp_path)
    with mgr:
        mgr.get("/echo")
        expire_everything(mgr)
        store.stop()
        with pytest.raises(ConnectionFailedError):
            mgr.get("/echo")  # expired or not, no stale answer unless asked
        assert mgr.stats().stale_served == 0


def test_an_unreachable_server_gets_the_cached_answer_a_live_404_does_not(
    store, probe_target, tmp_path
):
    mgr, _ = make(store, probe_target, tmp_path, serve_stale=True)
    with mgr:
        mgr.get("/echo?x=1")
        expire_everything(mgr)
        store.stop()  # the network is fine, the server is down
        assert mgr.get("/echo?x=1").from_cache
        store.start()
        assert mgr.get("/status/404").status_code == 404  # a live answer, never hidden


def test_only_gets_are_served_stale_and_a_miss_raises(store, probe_target, tmp_path):
    mgr, _ = make(store, probe_target, tmp_path, serve_stale=True)
    with mgr:
        mgr.post("/echo", data=b"x")
        store.stop()
        with pytest.raises(ConnectionFailedError):
            mgr.post("/echo", data=b"x")
        with pytest.raises(ConnectionFailedError):
            mgr.get("/never-asked")


def test_a_cache_that_fails_is_treated_as_empty():
    class Broken:
        def create_key(self, request):
            raise RuntimeError("disk gone")

        def get_response(self, key):  # pragma: no cover - never reached
            return None

    class Session:
        cache = Broken()

    assert cached_answer(Session(), object()) is None  # type: ignore[arg-type]
