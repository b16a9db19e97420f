"""outbox_changed: every state change, in order, and receivers that raise change nothing."""

from __future__ import annotations

import logging

from connmgr import signals


def record(outbox):
    seen = []

    def receiver(sender, *, entry, state, pending, **kw):
        assert sender is outbox and entry.state == state
        seen.append((entry.id, state, pending, entry.attempts))

    return seen, signals.outbox_changed.connected_to(receiver, sender=outbox)


def test_a_delivered_entry_goes_queued_sending_delivered(outbox, server):
    seen, connected = record(outbox)
    with connected:
        entry_id = outbox.submit("POST", "/status/201", json={})
        outbox.drain(timeout=5)
    assert seen == [
        (entry_id, "queued", 1, 0),
        (entry_id, "sending", 1, 1),
        (entry_id, "delivered", 0, 1),
    ]


def test_a_retried_entry_goes_back_to_queued_then_fails(outbox, server, clock):
    seen, connected = record(outbox)
    server.alias("/api/x", "/status/503")
    with connected:
        entry_id = outbox.submit("POST", "/api/x")
        outbox.drain(timeout=2)
        server.alias("/api/x", "/status/422")
        outbox.drain(timeout=60)
    assert [s for _, s, _, _ in seen] == ["queued", "sending", "queued", "sending", "failed"]
    assert seen[-1] == (entry_id, "failed", 0, 2)


def test_the_entry_in_the_signal_is_redacted(outbox, server):
    urls = []

    def receiver(sender, *, entry, **kw):
        urls.append(entry.url)

    with signals.outbox_changed.connected_to(receiver, sender=outbox):
        outbox.submit("POST", "/status/201?api_key=s3cret")
    assert urls == [f"{server.url}/status/201?api_key=***"]


def test_a_receiver_that_raises_breaks_nothing(outbox, server, caplog):
    others = []

    def broken(sender, **kw):
        raise RuntimeError("widget bug")

    def fine(sender, *, state, **kw):
        others.append(state)

    with (
        caplog.at_level(logging.ERROR, logger="connmgr.signals"),
        signals.outbox_changed.connected_to(broken, sender=outbox),
        signals.outbox_changed.connected_to(fine, sender=outbox),
    ):
        outbox.submit("POST", "/status/201")
        outbox.submit("POST", "/status/201")
        assert outbox.drain(timeout=5) is True
    assert server.hits() == 2
    assert others.count("delivered") == 2
    assert sum("outbox_changed" in r.getMessage() for r in caplog.records) == 6


def test_without_receivers_nothing_is_read_back(outbox, server, monkeypatch):
    reads = []
    original = type(outbox._store).entries_by_id

    def counting(self, ids):
        reads.append(ids)
        return original(self, ids)

    monkeypatch.setattr(type(outbox._store), "entries_by_id", counting)
    outbox.submit("POST", "/status/201")
    outbox.drain(timeout=5)
    assert reads == []
