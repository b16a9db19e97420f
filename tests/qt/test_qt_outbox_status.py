"""The status widget's "3 changes waiting to be sent": a real SQLite outbox, a loopback server."""

from __future__ import annotations

import random
import threading

import pytest

from connmgr import signals
from connmgr.manager import ConnectionManager
from connmgr.network import NetworkMonitor, TcpProbe
from connmgr.outbox import Outbox
from connmgr.qt import ConnectionStatusWidget, OutboxChangedEvent, SignalBridge
from connmgr.qt.status import waiting_words
from connmgr.retry import RetryConfig
from connmgr.testing import FakeClock, FaultServer


@pytest.fixture
def store():
    with FaultServer() as s:
        s.alias("/playlists/7/tracks", "/status/201")
        yield s


@pytest.fixture
def mgr(store, probe_target):
    monitor = NetworkMonitor(
        probes=[TcpProbe("127.0.0.1", probe_target.port)], timeout=0.5, debounce=0.0
    )
    manager = ConnectionManager(
        store.url, monitor=monitor, retry=RetryConfig(max_retries=0), rng=random.Random(4),
        watch_network=False,
    )  # fmt: skip
    with manager:
        yield manager


@pytest.fixture
def outbox(mgr, tmp_path):
    # A fake clock for the outbox: retry times never make a test wait for real.
    box = Outbox(tmp_path / "outbox.db", mgr, clock=FakeClock(start=1_000_000.0))
    yield box
    box.close()


def in_thread(fn, *args):
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn(*args)), daemon=True)
    thread.start()
    return thread, result


def test_words_for_none_one_and_many():
    assert waiting_words(0) == ""
    assert waiting_words(-3) == ""
    assert waiting_words(1) == "1 change waiting to be sent"
    assert waiting_words(3) == "3 changes waiting to be sent"
    assert waiting_words(1000) == "1000 changes waiting to be sent"


def test_counts_follow_submissions_and_vanish_once_delivered(qtbot, mgr, outbox, store):
    widget = ConnectionStatusWidget(mgr, outbox=outbox)
    qtbot.addWidget(widget)
    widget.show()
    assert widget.outbox_text() == "" and not widget.outbox_label.isVisible()

    outbox.submit("POST", "/playlists/7/tracks", json={"track": 42})
    qtbot.waitUntil(lambda: widget.outbox_text() == "1 change waiting to be sent", timeout=2000)
    for track in (43, 44):
        outbox.submit("POST", "/playlists/7/tracks", json={"track": track})
    qtbot.waitUntil(lambda: widget.outbox_text() == "3 changes waiting to be sent", timeout=2000)
    assert widget.outbox_label.isVisible()
    assert "3 changes waiting to be sent" in widget.toolTip()
    assert "3 changes waiting to be sent" in widget.accessibleDescription()

    # Delivered from a worker thread: the label follows on the GUI thread.
    thread, result = in_thread(outbox.drain, 15)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=15000)
    assert result == [True]
    qtbot.waitUntil(lambda: widget.outbox_text() == "", timeout=2000)
    assert not widget.outbox_label.isVisible()
    assert widget.pending_changes == 0
    assert "waiting" not in widget.toolTip()
    assert store.hits("/playlists/7/tracks") == 3


def test_signals_reach_the_widget_on_the_gui_thread(qtbot, qapp, mgr, outbox):
    from PySide6.QtCore import QThread

    bridge = SignalBridge(mgr)
    widget = ConnectionStatusWidget(mgr, bridge=bridge)
    qtbot.addWidget(widget)
    widget.watch_outbox(outbox)
    widget.watch_outbox(outbox)  # idempotent: one receiver, one count
    seen: list[tuple[bool, OutboxChangedEvent]] = []
    bridge.outbox_changed.connect(
        lambda event: seen.append((QThread.currentThread() == qapp.thread(), event))
    )
    thread, _ = in_thread(outbox.submit, "PUT", "/status/204")
    thread.join(5)
    qtbot.waitUntil(lambda: bool(seen), timeout=2000)
    on_gui, event = seen[-1]
    assert on_gui
    assert event.outbox is outbox and event.state == "queued" and event.pending == 1
    assert event.entry.method == "PUT"
    assert widget.outbox_text() == "1 change waiting to be sent"
    bridge.close()


def test_an_outbox_opened_with_entries_shows_them_at_once(qtbot, mgr, tmp_path):
    first = Outbox(tmp_path / "again.db", mgr)
    for track in range(5):
        first.submit("POST", "/playlists/7/tracks", json={"track": track})
    first.close()
    reopened = Outbox(tmp_path / "again.db", mgr)
    try:
        widget = ConnectionStatusWidget(mgr)
        qtbot.addWidget(widget)
        widget.watch_outbox(reopened)
        assert widget.outbox_text() == "5 changes waiting to be sent"
    finally:
        reopened.close()


def test_details_list_each_waiting_entry_redacted_with_attempts_and_last_error(
    qtbot, mgr, outbox, store
):
    widget = ConnectionStatusWidget(mgr, outbox=outbox)
    qtbot.addWidget(widget)
    secret_url = store.url.replace("http://", "http://dj:hunter2@") + "/playlists/7/tracks"
    outbox.submit("POST", secret_url + "?token=s3cr3t", json={"track": 1})
    outbox.submit("DELETE", "/playlists/7/tracks/9")
    store.stop()  # the store is unreachable: the first attempt fails and is kept
    thread, result = in_thread(outbox.drain, 1.0)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
    assert result == [False]

    text = widget.details_text()
    assert "outbox: 2 changes waiting to be sent" in text
    lines = [line for line in text.splitlines() if line.startswith("  #")]
    assert len(lines) == 2
    assert " POST " in lines[0] and "/playlists/7/tracks" in lines[0]
    assert "1 attempt;" in lines[0] and "last error:" in lines[0]
    assert " DELETE " in lines[1] and "not tried yet" in lines[1]
    assert "hunter2" not in text and "s3cr3t" not in text
    dialog = widget.show_details()
    assert "outbox: 2 changes waiting to be sent" in dialog.details
    assert "hunter2" not in dialog.copy_text()
    assert dialog.tabs is not None and dialog.outbox_view is not None
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    assert "Waiting to be sent (2)" in titles
    rows = [
        [dialog.outbox_view.topLevelItem(i).text(c) for c in range(4)]
        for i in range(dialog.outbox_view.topLevelItemCount())
    ]
    assert rows[0][0].startswith("#") and " POST " in rows[0][0] and rows[0][1] == "1"
    assert rows[0][2] and rows[1][1] == "not yet" and rows[1][2] == ""
    assert all(len(row[3]) >= 32 for row in rows)  # each entry's own Idempotency-Key
    assert "hunter2" not in repr(rows) and "s3cr3t" not in repr(rows)
    dialog.close()


def test_a_closed_outbox_keeps_its_count_and_lists_nothing(qtbot, mgr, outbox):
    widget = ConnectionStatusWidget(mgr, outbox=outbox)
    qtbot.addWidget(widget)
    outbox.submit("POST", "/playlists/7/tracks", json={"track": 1})
    qtbot.waitUntil(lambda: widget.pending_changes == 1, timeout=2000)
    outbox.close()
    assert widget.waiting_entries() == []
    assert "outbox: nothing waiting to be sent" in widget.details_text()
    dialog = widget.show_details()
    assert dialog.outbox_view is not None
    assert dialog.outbox_view.topLevelItem(0).text(0) == "Nothing waiting to be sent"
    dialog.close()
    widget.refresh()
    # Still on disk, still to be sent the next time the app opens it.
    assert widget.outbox_text() == "1 change waiting to be sent"


def test_a_receiver_that_raises_does_not_stop_the_widget(qtbot, mgr, outbox):
    def broken(sender, **kw):
        raise RuntimeError("an app's receiver is broken")

    widget = ConnectionStatusWidget(mgr, outbox=outbox)
    qtbot.addWidget(widget)
    with signals.outbox_changed.connected_to(broken, sender=outbox):
        outbox.submit("POST", "/playlists/7/tracks", json={"track": 1})
    qtbot.waitUntil(lambda: widget.outbox_text() == "1 change waiting to be sent", timeout=2000)


def test_another_outbox_s_signals_do_not_count(qtbot, mgr, outbox, tmp_path):
    other = Outbox(tmp_path / "other.db", mgr)
    try:
        widget = ConnectionStatusWidget(mgr, outbox=outbox)
        qtbot.addWidget(widget)
        other.submit("POST", "/playlists/7/tracks", json={"track": 1})
        outbox.submit("POST", "/playlists/7/tracks", json={"track": 2})
        qtbot.waitUntil(lambda: widget.pending_changes == 1, timeout=2000)
        widget.bridge.flush()
        assert widget.outbox_text() == "1 change waiting to be sent"
        widget.watch_outbox(other)
        assert widget.outbox_text() == "2 changes waiting to be sent"
    finally:
        other.close()


@pytest.mark.parametrize("bad", [None, "outbox.db", 3, object()])
def test_watch_outbox_refuses_what_is_not_an_outbox(qtbot, mgr, bad):
    widget = ConnectionStatusWidget(mgr)
    qtbot.addWidget(widget)
    dialog = widget.show_details()
    assert dialog.outbox_view is None  # no outbox given: no tab for it
    dialog.close()
    with pytest.raises(TypeError, match="outbox"):
        widget.watch_outbox(bad)


def test_the_bridge_coalesces_a_burst_per_entry_and_keeps_the_latest_count(qtbot, mgr, outbox):
    bridge = SignalBridge(mgr)
    bridge.watch_outbox(outbox)
    seen: list[OutboxChangedEvent] = []
    bridge.outbox_changed.connect(seen.append)
    ids = [outbox.submit("POST", "/playlists/7/tracks", json={"track": n}) for n in range(50)]
    bridge.flush()
    assert [event.entry.id for event in seen] == ids
    assert seen[-1].pending == 50
    assert bridge.received == 50
    with pytest.raises(TypeError):
        bridge.watch_outbox(None)
    bridge.close()
