"""Outbox.submit: what is stored, what is refused before anything is stored, durability."""

from __future__ import annotations

import math
import sqlite3
import uuid

import pytest

from connmgr.errors import InvalidRequestError
from connmgr.outbox import Outbox, OutboxClosedError, OutboxLockedError


def rows(path):
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM entries ORDER BY id").fetchall()
    finally:
        conn.close()


def test_submit_returns_after_the_row_is_committed(make_outbox, tmp_path):
    box = make_outbox()
    first = box.submit("post", "/playlists/7/tracks", json={"track": 42})
    second = box.submit("PUT", "/playlists/7", data=b"\x00raw", headers={"X-Tag": "a"})
    assert second > first
    box.close()
    stored = rows(tmp_path / "outbox.db")
    assert [r["method"] for r in stored] == ["POST", "PUT"]
    assert stored[0]["body"] == b'{"track": 42}'
    assert '"Content-Type", "application/json"' in stored[0]["headers"]
    assert stored[1]["body"] == b"\x00raw"
    assert all(r["state"] == "queued" and r["attempts"] == 0 for r in stored)


def test_each_entry_gets_its_own_uuid4_key(outbox):
    ids = [outbox.submit("POST", "/a", json=i) for i in range(5)]
    keys = [e.idempotency_key for e in outbox.pending()]
    assert [e.id for e in outbox.pending()] == ids
    assert len(set(keys)) == 5
    assert all(uuid.UUID(k).version == 4 for k in keys)


def test_a_key_given_in_headers_is_the_entry_key(outbox):
    outbox.submit("POST", "/a", json={}, headers={"idempotency-KEY": "order-17"})
    (entry,) = outbox.pending()
    assert entry.idempotency_key == "order-17"


def test_the_entry_shows_where_it_goes_redacted(outbox, server):
    outbox.submit("POST", "/a?token=s3cret&x=1")
    (entry,) = outbox.pending()
    assert entry.url == f"{server.url}/a?token=***&x=1"
    assert entry.state == "queued" and entry.next_attempt_at == entry.created_at
    assert entry.expires_at - entry.created_at == pytest.approx(7 * 24 * 3600)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"json": {1, 2}}, TypeError, "not JSON serializable"),
        ({"json": math.nan}, ValueError, "Out of range float"),
        ({"json": {}, "data": b"x"}, TypeError, "json= or data="),
        ({"data": object()}, TypeError, "data must be"),
        ({"data": iter([b"x"])}, TypeError, "streams cannot be stored"),
        ({"headers": {"X-A": 1}}, TypeError, "headers"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, ValueError, "line break"),
        ({"headers": {"Bad Name": "x"}}, ValueError, "header name"),
        ({"headers": "X-A: 1"}, TypeError, "headers must be a mapping"),
        ({"headers": {"Idempotency-Key": " "}}, ValueError, "Idempotency-Key"),
        ({"params": 5}, TypeError, "params"),
        ({"params": {"q": object()}}, TypeError, "params"),
        ({"ttl": 0}, ValueError, "ttl"),
        ({"ttl": -1}, ValueError, "ttl"),
        ({"ttl": math.inf}, ValueError, "ttl"),
        ({"ttl": "1"}, TypeError, "ttl"),
        ({"ttl": True}, TypeError, "ttl"),
        ({"operation": "nope"}, ValueError, "nope"),
        ({"operation": 5}, TypeError, "operation"),
        ({"files": {"f": b"x"}}, TypeError, "files"),
    ],
)
def test_a_callers_bug_raises_and_nothing_is_stored(outbox, kwargs, error, words):
    with pytest.raises(error, match=words):
        outbox.submit("POST", "/a", **kwargs)
    assert outbox.pending() == [] and outbox.pending_count == 0


@pytest.mark.parametrize(
    ("method", "url", "error"),
    [
        (5, "/a", TypeError),
        ("", "/a", ValueError),
        ("PO ST", "/a", ValueError),
        ("POST", b"/a", TypeError),
        ("POST", "ftp://host/a", InvalidRequestError),
        ("POST", "http:///no-host", InvalidRequestError),
        ("POST", "http://host:99999/a", InvalidRequestError),
    ],
)
def test_bad_methods_and_urls_are_refused(outbox, method, url, error):
    with pytest.raises(error):
        outbox.submit(method, url)
    assert outbox.pending_count == 0


def test_a_relative_url_needs_a_base(make_outbox, probe_target, tmp_path, clock):
    from outbox_helpers import bare_manager

    mgr = bare_manager(probe_target.port, clock)
    try:
        box = make_outbox(tmp_path / "nobase.db", mgr)
        with pytest.raises(InvalidRequestError, match="relative"):
            box.submit("POST", "/a")
        box.submit("POST", "http://127.0.0.1:1/a")  # absolute works
        assert box.pending_count == 1
    finally:
        mgr.close()


def test_form_fields_and_text_are_encoded_as_requests_would(outbox, server):
    outbox.submit("POST", "/echo", data={"name": "Daft Punk", "tags": ["a", "b"]})
    outbox.submit("POST", "/echo", data="héllo", params={"q": ["x", "y"], "skip": None})
    assert outbox.drain(timeout=5)
    first, second = server.requests_to("/echo")
    assert first.body == b"name=Daft+Punk&tags=a&tags=b"
    assert first.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert second.body == "héllo".encode()
    assert second.query == "q=x&q=y"


def test_submit_after_close_raises_a_runtime_error(make_outbox):
    box = make_outbox()
    box.close()
    box.close()  # idempotent
    with pytest.raises(OutboxClosedError) as info:
        box.submit("POST", "/a")
    assert isinstance(info.value, RuntimeError)
    for call in (box.pending, box.failed, lambda: box.drain(1), box.start):
        with pytest.raises(OutboxClosedError):
            call()


def test_a_second_owner_is_refused(make_outbox, manager, tmp_path):
    make_outbox()
    with pytest.raises(OutboxLockedError, match="already open"):
        Outbox(tmp_path / "outbox.db", manager)


def test_reopening_keeps_everything_in_order(make_outbox, tmp_path, manager):
    box = make_outbox()
    ids = [box.submit("POST", f"/item/{i}", json=i) for i in range(3)]
    keys = [e.idempotency_key for e in box.pending()]
    box.close()
    again = make_outbox()
    assert [e.id for e in again.pending()] == ids
    assert [e.idempotency_key for e in again.pending()] == keys
    assert again.pending_count == 3


def test_wrong_constructor_arguments(tmp_path, manager):
    with pytest.raises(TypeError, match="manager"):
        Outbox(tmp_path / "a.db", object())
    with pytest.raises(TypeError, match="path"):
        Outbox(5, manager)
    with pytest.raises(ValueError, match="retry_delay"):
        Outbox(tmp_path / "a.db", manager, retry_delay=-1)
    with pytest.raises(ValueError, match="max_retry_delay"):
        Outbox(tmp_path / "a.db", manager, retry_delay=10, max_retry_delay=1)
    with pytest.raises(ValueError, match="max_bytes"):
        Outbox(tmp_path / "a.db", manager, max_bytes=10)
    with pytest.raises(TypeError, match="max_bytes"):
        Outbox(tmp_path / "a.db", manager, max_bytes="1e6")
    with pytest.raises(TypeError, match="ttl"):
        Outbox(tmp_path / "a.db", manager, ttl=None)
    with pytest.raises(ValueError, match="ttl"):
        Outbox(tmp_path / "a.db", manager, ttl=math.nan)
    with pytest.raises(ValueError, match="base_url"):
        Outbox(tmp_path / "a.db", manager, base_url="not a url")
    with pytest.raises(TypeError, match="base_url"):
        Outbox(tmp_path / "a.db", manager, base_url=5)
