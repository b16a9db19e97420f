"""Where a stored entry goes: relative to the base in effect, rebased by base_url=."""

from __future__ import annotations

import pytest

from connmgr.outbox.request import resolve_url, split_url
from connmgr.testing import FaultServer


@pytest.mark.parametrize(
    ("url", "base", "stored"),
    [
        ("/items", "http://a.test", ("http://a.test", "items")),
        ("/items?x=1", "http://a.test/", ("http://a.test/", "items?x=1")),
        ("tracks", "https://a.test/v2/", ("https://a.test/v2/", "tracks")),
        ("/v2/tracks/7", "https://a.test/v2/", ("https://a.test/v2/", "tracks/7")),
        ("/v1/old", "https://a.test/v2/", ("https://a.test/v2/", "/v1/old")),
        ("https://a.test/v2/x#frag", "https://a.test/v2/", ("https://a.test/v2/", "x")),
        ("https://A.test/v2/x", "https://a.test/v2/", ("https://a.test/v2/", "x")),
        ("https://b.test/up", "https://a.test/v2/", (None, "https://b.test/up")),
        ("http://a.test/up", "https://a.test/", (None, "http://a.test/up")),
        ("http://c.test:81/p?q", None, ("http://c.test:81/", "p?q")),
        ("/a:b", "http://a.test/", ("http://a.test/", "./a:b")),
        ("https://a.test/v2/", "https://a.test/v2/", ("https://a.test/v2/", "")),
    ],
)
def test_split_url(url, base, stored):
    assert split_url(url, base) == stored


@pytest.mark.parametrize(
    ("stored", "base_now", "sent_to"),
    [
        (("http://a.test/", "items?x=1"), None, "http://a.test/items?x=1"),
        (("http://a.test/", "items?x=1"), "http://127.0.0.1:9", "http://127.0.0.1:9/items?x=1"),
        (("https://a.test/v2/", "tracks"), "http://h:1/mirror/v2/", "http://h:1/mirror/v2/tracks"),
        (("https://a.test/v2/", "/v1/old"), "http://h:1/v2/", "http://h:1/v1/old"),
        (("https://a.test/v2/", "./a:b"), "http://h:1/v2/", "http://h:1/v2/a:b"),
        ((None, "https://b.test/up"), "http://h:1/", "https://b.test/up"),
    ],
)
def test_resolve_url(stored, base_now, sent_to):
    assert resolve_url(base_now, *stored) == sent_to


def test_every_split_resolves_back_to_the_url():
    base = "https://a.test/api/v2/"
    for url in ["/api/v2/x", "/api/x", "/x?y=1", "https://a.test/api/v2/a/b/c?d", "z"]:
        stored_base, ref = split_url(url, base)
        expected = url if "://" in url else f"https://a.test{url}" if url[0] == "/" else base + url
        assert resolve_url(None, stored_base, ref) == expected


def test_reopening_with_base_url_moves_relative_entries_only(make_outbox, server, tmp_path):
    with FaultServer() as old, FaultServer() as other:
        box = make_outbox(base_url=old.url + "/api/")
        box.submit("POST", "items", json=1)
        box.submit("POST", old.url + "/api/items", json=2)  # under the base: relative
        box.submit("POST", other.url_for("/echo"), json=3)  # another origin: absolute
        box.close()
        old.stop()
        moved = make_outbox(base_url=server.url + "/api/")
        assert [e.url for e in moved.pending()] == [
            f"{server.url}/api/items",
            f"{server.url}/api/items",
            other.url_for("/echo"),
        ]
        server.alias("/api/items", "/status/201")
        assert moved.drain(timeout=5) is True
        assert [r.body for r in server.requests] == [b"1", b"2"]
        assert [r.body for r in other.requests] == [b"3"]


def test_the_managers_base_url_is_the_default(make_outbox, server):
    box = make_outbox()
    box.submit("POST", "/a")
    assert box.base_url == server.url
    assert box.pending()[0].url == server.url + "/a"
