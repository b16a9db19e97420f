"""Delivery: what the answer decides, order per origin, backoff, TTL, network and gates."""

from __future__ import annotations

import pytest

from connmgr import signals
from connmgr.machine import ConnectionState, MachinePolicy
from connmgr.testing import FaultServer


def keys_of(requests_):
    return [r.headers.get("Idempotency-Key") for r in requests_]


def test_a_2xx_is_delivered_and_removed(outbox, server):
    outbox.submit("POST", "/status/201", json={"a": 1})
    assert outbox.drain(timeout=5) is True
    assert outbox.pending() == [] and outbox.failed() == [] and outbox.pending_count == 0
    (rec,) = server.requests
    assert rec.method == "POST" and rec.body == b'{"a": 1}'
    assert rec.headers["Content-Type"] == "application/json"
    assert rec.headers["Idempotency-Key"]


def test_submission_order_is_kept(outbox, server):
    for i in range(10):
        outbox.submit("POST", "/echo", json=i)
    assert outbox.drain(timeout=5)
    assert [r.body for r in server.requests] == [str(i).encode() for i in range(10)]
    assert len(set(keys_of(server.requests))) == 10


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_a_final_4xx_fails_for_good_with_its_reason(outbox, server, status):
    outbox.submit("POST", f"/status/{status}")
    assert outbox.drain(timeout=5) is True  # nothing left to send
    (entry,) = outbox.failed()
    assert entry.state == "failed" and entry.status == status and entry.attempts == 1
    assert entry.reason.startswith(f"HTTP {status}")
    assert str(status) in entry.reason.split(":", 1)[1]  # the body's snippet
    assert server.hits() == 1


def test_a_failed_head_does_not_block_the_next(outbox, server):
    outbox.submit("POST", "/status/422")
    outbox.submit("POST", "/echo", json="next")
    assert outbox.drain(timeout=5)
    assert [r.path for r in server.requests] == ["/status/422", "/echo"]


def test_a_redirect_is_not_followed_and_fails(outbox, server):
    outbox.submit("POST", "/redirect?to=/ok&status=302")
    assert outbox.drain(timeout=5)
    (entry,) = outbox.failed()
    assert entry.status == 302 and "not followed" in entry.reason
    assert server.hits("/ok") == 0


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 501])
def test_an_unknown_outcome_is_retried_later_with_the_same_key(outbox, server, clock, status):
    server.alias("/api/items", f"/status/{status}")
    outbox.submit("POST", "/api/items", json={})
    assert outbox.drain(timeout=2) is False
    (entry,) = outbox.pending()
    assert entry.state == "queued" and entry.attempts == 1 and entry.status == status
    assert f"HTTP {status}" in entry.last_error
    # Backoff: equal jitter around retry_delay (5 s) for the first retry.
    assert 2.5 <= entry.next_attempt_at - clock.now() <= 5.0 + 1e-6
    server.alias("/api/items", "/status/201")
    assert outbox.drain(timeout=60) is True
    seen = keys_of(server.requests_to("/api/items"))
    assert len(seen) >= 2 and set(seen) == {entry.idempotency_key}


def test_later_entries_of_the_origin_wait_for_the_head(outbox, server, clock):
    server.alias("/api/head", "/status/503")
    outbox.submit("POST", "/api/head")
    outbox.submit("POST", "/echo", json=1)
    outbox.submit("POST", "/echo", json=2)
    assert outbox.drain(timeout=20) is False
    assert server.hits("/echo") == 0
    assert [e.attempts for e in outbox.pending()] == [pytest.approx(3, abs=1), 0, 0]
    server.alias("/api/head", "/ok")
    assert outbox.drain(timeout=400) is True
    paths = [r.path for r in server.requests]
    assert paths[-3:] == ["/api/head", "/echo", "/echo"]


def test_another_origin_is_not_held_up(outbox, server):
    with FaultServer() as other:
        other.alias("/down", "/status/503")
        outbox.submit("POST", other.url_for("/down"))
        outbox.submit("POST", "/echo", json="mine")
        assert outbox.drain(timeout=1) is False
        assert server.hits("/echo") == 1
        (left,) = outbox.pending()
        assert left.url == other.url_for("/down")


def test_backoff_doubles_and_is_capped(make_outbox, server, clock):
    box = make_outbox(retry_delay=1.0, max_retry_delay=8.0)
    server.alias("/api/x", "/status/503")
    box.submit("POST", "/api/x")
    waits = []
    for _ in range(6):
        box.drain(timeout=0.4)  # shorter than any wait: one attempt per drain
        (entry,) = box.pending()
        waits.append(entry.next_attempt_at - clock.now())
        clock.set(entry.next_attempt_at)
    bounds = [1, 2, 4, 8, 8, 8]
    assert all(b / 2 <= w <= b + 1e-6 for w, b in zip(waits, bounds, strict=True)), waits


def test_retry_after_is_honoured_when_longer(outbox, server, clock):
    outbox.submit("POST", "/status/503?retry_after=120")
    outbox.drain(timeout=2)
    (entry,) = outbox.pending()
    assert entry.next_attempt_at - clock.now() >= 120


def test_a_long_retry_after_is_capped_by_max_retry_delay(make_outbox, server, clock):
    box = make_outbox(max_retry_delay=60.0)
    server.alias("/api/x", "/status/503?retry_after=100000")
    box.submit("POST", "/api/x")
    box.drain(timeout=2)
    (entry,) = box.pending()
    assert entry.next_attempt_at - clock.now() == pytest.approx(60.0)
    server.alias("/api/x", "/ok")
    # The manager's own gate holds the origin for its max_retry_after (300 s).
    clock.advance(301)
    assert box.drain(timeout=1) is True


def test_a_wall_clock_set_back_does_not_park_an_entry(make_outbox, server, clock, tmp_path):
    from connmgr.testing import FakeClock

    box = make_outbox(max_retry_delay=60.0)
    server.alias("/api/x", "/status/503")
    box.submit("POST", "/api/x")
    box.drain(timeout=2)
    box.close()
    server.alias("/api/x", "/ok")
    # The laptop's clock is corrected a day back: the stored retry time is a day ahead.
    earlier = FakeClock(start=clock.now() - 86_400)
    again = make_outbox(clock=earlier, max_retry_delay=60.0)
    assert again.drain(timeout=61) is True


def test_an_entry_expires_with_a_reason(outbox, server, clock):
    received = []

    def on_change(sender, *, entry, state, **kw):
        received.append((entry.id, state))

    server.alias("/api/x", "/status/503")
    with signals.outbox_changed.connected_to(on_change, sender=outbox):
        entry_id = outbox.submit("POST", "/api/x", ttl=30)
        assert outbox.drain(timeout=100) is True  # nothing left once it expired
    (entry,) = outbox.failed()
    assert entry.state == "expired" and entry.id == entry_id
    assert entry.reason.startswith("expired: not delivered within its time to live")
    assert "HTTP 503" in entry.reason
    assert received[-1] == (entry_id, "expired")
    assert outbox.pending_count == 0


def test_nothing_is_sent_until_the_network_is_validated(outbox, server, manager, probe_target):
    probe_target.close()
    outbox.submit("POST", "/echo", json=1)
    assert outbox.drain(timeout=1) is False
    assert server.hits() == 0
    (entry,) = outbox.pending()
    assert entry.attempts == 0
    probe_target.reopen()
    manager.monitor.check()  # what the manager's watcher does when the network returns
    assert outbox.drain(timeout=5) is True
    assert server.hits("/echo") == 1


def test_a_closed_gate_holds_the_origin_without_an_attempt(server, probe_target, tmp_path, clock):
    from outbox_helpers import make_manager

    from connmgr.outbox import Outbox

    mgr = make_manager(
        server.url,
        probe_target.port,
        clock,
        policy=MachinePolicy(max_wait=0, trip_after=1, cooldown_base=60.0, cooldown_jitter=0.0),
    )
    try:
        box = Outbox(tmp_path / "gate.db", mgr, clock=clock)
        server.alias("/api/x", "/status/503")
        box.submit("POST", "/api/x")
        box.submit("POST", "/echo", json=1)
        box.drain(timeout=2)
        assert mgr.state_for(server.url) is ConnectionState.BACKOFF
        hits = server.hits()
        clock.advance(10)
        box.drain(timeout=2)
        assert server.hits() == hits  # the circuit is open: nothing sent
        head, second = box.pending()
        assert head.attempts == 1 and second.attempts == 0
        box.close()
    finally:
        mgr.close()


def test_the_servers_rate_limit_holds_the_origin(outbox, server, manager, clock):
    outbox.submit("POST", "/status/429?retry_after=30")
    outbox.submit("POST", "/echo", json=1)
    outbox.drain(timeout=2)
    assert manager.state_for(server.url) is ConnectionState.RATE_LIMITED
    head, _ = outbox.pending()
    assert head.status == 429 and head.next_attempt_at - clock.now() >= 30
    assert server.hits("/echo") == 0


def test_discard_removes_an_entry(outbox, server):
    outbox.submit("POST", "/status/422")
    kept = outbox.submit("POST", "/echo", json=1)
    dropped = outbox.submit("POST", "/echo", json=2)
    assert outbox.discard(dropped) is True
    assert outbox.discard(dropped) is False
    assert outbox.pending_count == 2
    outbox.drain(timeout=5)
    (failed,) = outbox.failed()
    assert outbox.discard(failed.id) is True and outbox.failed() == []
    assert [r.body for r in server.requests_to("/echo")] == [b"1"]
    assert kept


def test_server_down_is_retried_and_delivered_when_it_returns(outbox, server, clock):
    outbox.submit("POST", "/echo", json=1)
    server.stop()
    assert outbox.drain(timeout=2) is False
    (entry,) = outbox.pending()
    assert entry.attempts == 1 and "ConnectionFailedError" in entry.last_error
    server.start()
    assert outbox.drain(timeout=30) is True
    assert server.hits("/echo") == 1


def test_a_row_damaged_on_disk_fails_alone(outbox, server, tmp_path):
    import sqlite3

    first = outbox.submit("POST", "/echo", json=1)
    outbox.submit("POST", "/echo", json=2)
    outbox.close()
    conn = sqlite3.connect(tmp_path / "outbox.db")
    conn.execute("UPDATE entries SET headers = '{not json' WHERE id = ?", (first,))
    conn.commit()
    conn.close()
    from connmgr.outbox import Outbox

    again = Outbox(tmp_path / "outbox.db", outbox.manager, clock=outbox.clock)
    try:
        assert again.drain(timeout=5) is True
        (broken,) = again.failed()
        assert broken.id == first and "cannot be read" in broken.reason
        assert [r.body for r in server.requests] == [b"2"]
    finally:
        again.close()


def test_retry_queues_a_failed_entry_again_with_its_key(outbox, server, clock):
    server.alias("/api/x", "/status/409")
    entry_id = outbox.submit("POST", "/api/x")
    outbox.drain(timeout=5)
    (failed,) = outbox.failed()
    assert outbox.retry(failed.id) is True
    assert outbox.retry(failed.id) is False  # queued now, not failed
    assert outbox.retry(999) is False
    (again,) = outbox.pending()
    assert again.id == entry_id and again.attempts == 0 and again.state == "queued"
    server.alias("/api/x", "/status/201")
    assert outbox.drain(timeout=5) is True
    keys = {r.headers["Idempotency-Key"] for r in server.requests_to("/api/x")}
    assert keys == {failed.idempotency_key}
    with pytest.raises(ValueError, match="ttl"):
        outbox.retry(entry_id, ttl=-1)
