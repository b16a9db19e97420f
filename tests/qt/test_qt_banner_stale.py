"""The banner's "Showing results from 5 minutes ago": requests-cache behind a real manager."""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import types

import pytest

requests_cache = pytest.importorskip("requests_cache")

from connmgr import signals  # noqa: E402
from connmgr.errors import ConnectionFailedError, ServerError  # noqa: E402
from connmgr.manager import ConnectionManager  # noqa: E402
from connmgr.network import NetworkMonitor, NetworkStatus, TcpProbe  # noqa: E402
from connmgr.qt import RetryBanner, SignalBridge  # noqa: E402
from connmgr.qt.banner import BANNER_COLORS, age_words  # noqa: E402
from connmgr.qt.bridge import RequestFinishedEvent  # noqa: E402
from connmgr.retry import RetryConfig  # noqa: E402
from connmgr.testing import FakeClock, FaultServer  # noqa: E402


@pytest.fixture
def store():
    with FaultServer() as s:
        yield s


@pytest.fixture
def world(store, probe_target, tmp_path):
    clock = FakeClock(start=0.0)
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=1.0, clock=clock, debounce=0.0
    )
    session = requests_cache.CachedSession(str(tmp_path / "cache"), expire_after=60)
    mgr = ConnectionManager(
        store.url, session=session, monitor=monitor, clock=clock, rng=random.Random(2),
        retry=RetryConfig(max_retries=0), watch_network=False, serve_stale=True,
    )  # fmt: skip
    with mgr:
        yield mgr, clock, monitor


def later_by(mgr, monkeypatch, seconds):
    """Every cached answer expired, and the wall clock stale_age reads moved on by ``seconds``."""
    import connmgr.stale

    mgr.session.cache.reset_expiration(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    # Only connmgr.stale's view of the time: pytest-qt's waits need the real one.
    then = time.time() + seconds
    monkeypatch.setattr(connmgr.stale, "time", types.SimpleNamespace(time=lambda: then))


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "earlier"),
        (math.nan, "earlier"),
        (math.inf, "earlier"),
        (-5.0, "less than a minute ago"),
        (0.0, "less than a minute ago"),
        (59.9, "less than a minute ago"),
        (60.0, "1 minute ago"),
        (119.0, "1 minute ago"),
        (300.0, "5 minutes ago"),
        (359.0, "5 minutes ago"),
        (3600.0, "1 hour ago"),
        (7300.0, "2 hours ago"),
        (86400.0, "1 day ago"),
        (86400.0 * 3 + 5, "3 days ago"),
    ],
)
def test_ages_in_words_for_people(seconds, words):
    assert age_words(seconds) == words


def test_a_stale_answer_shows_its_age_and_a_live_one_hides_it(qtbot, world, store, monkeypatch):
    mgr, clock, _ = world
    banner = RetryBanner(mgr)
    qtbot.addWidget(banner)
    mgr.get("/echo", params={"q": "house"})
    banner.bridge.flush()
    assert banner.mode == "idle" and not banner.isVisible()

    later_by(mgr, monkeypatch, 300)
    store.stop()  # unreachable: no live answer can be had
    stale = mgr.get("/echo", params={"q": "house"})
    assert stale.from_cache
    qtbot.waitUntil(lambda: banner.mode == "stale", timeout=2000)
    assert banner.isVisible() and banner.look == "stale"
    assert banner.message_label.text() == "Showing results from 5 minutes ago"
    assert "saved earlier" in banner.status_label.text()
    assert banner.dismiss_button.isVisible() and banner.details_button.isVisible()
    assert not banner.retry_now_button.isVisible()
    assert banner.stale_origins == (store.url,)
    assert "answered from the cache, saved 5 minutes ago" in banner.details_text()

    # The age grows while it shows (the manager's clock moves the words).
    clock.advance(61)
    banner._age_timer.timeout.emit()
    assert banner.message_label.text() == "Showing results from 6 minutes ago"

    store.start()
    mgr.get("/echo", params={"q": "techno"})  # a live answer from that origin
    qtbot.waitUntil(lambda: banner.mode == "idle", timeout=2000)
    assert not banner.isVisible()
    assert not banner._age_timer.isActive()


def test_offline_the_banner_says_there_is_no_network(
    qtbot, world, store, probe_target, monkeypatch
):
    mgr, _, monitor = world
    banner = RetryBanner(mgr)
    qtbot.addWidget(banner)
    mgr.get("/echo", params={"q": "house"})
    later_by(mgr, monkeypatch, 3 * 3600 + 10)
    store.stop()
    probe_target.close()
    assert monitor.check() is NetworkStatus.OFFLINE
    mgr.get("/echo", params={"q": "house"})
    qtbot.waitUntil(lambda: banner.mode == "stale", timeout=2000)
    assert banner.text() == (
        "Showing results from 3 hours ago\n"
        "There is no network connection, so these were saved earlier. "
        "Fresh results replace them as soon as the server answers."
    )
    assert banner.accessibleName() == "Showing saved results"
    banner.dismiss()
    assert banner.mode == "idle" and not banner.isVisible()


def test_the_bridge_carries_stale_age_and_only_for_stale_answers(qtbot, world, store):
    mgr, _, _ = world
    bridge = SignalBridge(mgr)
    ends: list[RequestFinishedEvent] = []
    bridge.request_finished.connect(ends.append)
    payloads: list[dict] = []
    with signals.request_finished.connected_to(
        lambda sender, **kw: payloads.append(kw), sender=mgr
    ):
        mgr.get("/echo", params={"q": "dub"})
        mgr.session.cache.reset_expiration(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
        store.stop()
        mgr.get("/echo", params={"q": "dub"})
    bridge.flush()
    assert [p["outcome"] for p in payloads] == ["success", "stale"]
    assert payloads[0]["stale_age"] is None
    assert 0 <= payloads[1]["stale_age"] < 60
    assert [e.stale for e in ends] == [False, True]
    assert ends[0].stale_age is None and ends[1].stale_age == payloads[1]["stale_age"]
    assert not ends[1].succeeded  # a stale answer is not a live success
    bridge.close()


def test_a_live_404_or_500_is_never_hidden_and_shows_no_stale_note(qtbot, world, store):
    mgr, _, _ = world
    banner = RetryBanner(mgr)
    qtbot.addWidget(banner)
    store.alias("/search", "/echo")
    mgr.get("/search", params={"q": "house"})
    mgr.session.cache.reset_expiration(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    store.alias("/search", "/status/500")
    with pytest.raises(ServerError):
        mgr.get("/search", params={"q": "house"})
    banner.bridge.flush()
    assert banner.mode == "idle"


def test_a_post_is_never_answered_from_the_cache(qtbot, world, store):
    mgr, _, _ = world
    banner = RetryBanner(mgr)
    qtbot.addWidget(banner)
    mgr.get("/echo")
    store.stop()
    with pytest.raises(ConnectionFailedError):
        mgr.post("/echo", json={"track": 1})
    banner.bridge.flush()
    assert banner.mode == "idle"


def test_a_stale_answer_with_an_unknown_age_or_garbage_says_earlier(qtbot, fake_manager):
    banner = RetryBanner(fake_manager)
    qtbot.addWidget(banner)
    for request_id, age in ((1, "soon"), (2, -3.0), (3, True)):
        signals.request_finished.send(
            fake_manager, request_id=request_id, outcome="stale",
            url="http://127.0.0.1:9/search?q=x", stale_age=age,
        )  # fmt: skip
    banner.bridge.flush()
    assert banner.mode == "stale"
    assert banner.stale_age() is None
    assert banner.message_label.text() == "Showing results from earlier"


def test_retries_and_failures_come_before_the_stale_note(qtbot, fake_manager):
    from connmgr.clock import CancelToken

    banner = RetryBanner(fake_manager)
    qtbot.addWidget(banner)
    url = "http://127.0.0.1:9/search?q=x"
    signals.request_finished.send(
        fake_manager, request_id=1, outcome="stale", url=url, stale_age=90
    )
    signals.retry_scheduled.send(
        fake_manager, request_id=2, attempt=2, max_attempts=4, delay=1.0, error=None, url=url,
        operation="search", cancel=CancelToken(),
    )  # fmt: skip
    banner.bridge.flush()
    assert banner.mode == "retrying"
    signals.request_finished.send(fake_manager, request_id=2, outcome="success", url=url)
    banner.bridge.flush()
    # The live answer from that origin: the results on screen are fresh.
    assert banner.mode == "idle"


def test_the_stale_colours_pass_contrast():
    from connmgr.qt.colors import AA_TEXT, contrast_ratio

    background, _border, text = BANNER_COLORS["stale"]
    assert contrast_ratio(text, background) >= AA_TEXT
