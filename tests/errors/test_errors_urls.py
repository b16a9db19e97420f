"""connmgr.errors.urls: malformed URLs are InvalidRequestError before anything is sent."""

from __future__ import annotations

import timeit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from connmgr.errors import InvalidRequestError, NetworkError, check_url
from connmgr.errors import urls as urls_module


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/",
        "HTTPS://Example.COM:443/a?b=c#d",
        "http://127.0.0.1:1/",
        "http://127.0.0.1:65535/x",
        "http://[::1]/",
        "http://[::1]:8080/path",
        "http://[fe80::1%25eth0]:80/",
        "https://user:p%40ss@api.example.com/v1",
        "http://example.com:/",  # an empty port is the default (RFC 3986)
        "http://example.com?q=a b",  # the query is requests' to quote
        "  https://example.com/  ",  # requests strips it, so may we
        "http://xn--bcher-kva.example/",
        "http://bücher.example/",
    ],
)
def test_good_urls_come_back_unchanged(url: str) -> None:
    assert check_url(url) is url


@pytest.mark.parametrize(
    ("url", "kind", "why"),
    [
        ("example.com/x", "missing_schema", "no scheme"),
        ("localhost:8080/x", "missing_schema", "no scheme"),
        ("/relative/path", "missing_schema", "no scheme"),
        ("", "missing_schema", "no scheme"),
        ("://example.com", "missing_schema", "no scheme"),
        ("ftp://example.com/file", "invalid_schema", "'ftp' is not supported"),
        ("mailto:someone@example.com", "invalid_schema", "'mailto' is not supported"),
        ("ws://example.com/socket", "invalid_schema", "'ws' is not supported"),
        ("http:example.com", "invalid_url", "no host"),
        ("http:/example.com", "invalid_url", "no host"),
        ("http://", "invalid_url", "no host"),
        ("http:///path", "invalid_url", "no host"),
        ("http://user@/path", "invalid_url", "no host"),
        ("http://:80/", "invalid_url", "no host"),
        ("http://127.0.0.1:99999/", "invalid_url", "from 1 to 65535, got '99999'"),
        ("http://127.0.0.1:0/", "invalid_url", "from 1 to 65535, got '0'"),
        ("http://127.0.0.1:65536/", "invalid_url", "got '65536'"),
        ("http://127.0.0.1:-1/", "invalid_url", "got '-1'"),
        ("http://example.com:http/", "invalid_url", "got 'http'"),
        ("http://example.com:８０/", "invalid_url", "got '８０'"),  # full-width digits
        ("http://[::1", "invalid_url", "missing its closing ']'"),
        ("http://[::1/x", "invalid_url", "missing its closing ']'"),
        ("http://[::g]/", "invalid_url", "not an IPv6 address"),
        ("http://[127.0.0.1]/", "invalid_url", "not an IPv6 address"),
        ("http://[::1]x/", "invalid_url", "after the IPv6 address"),
        ("http://[::1]:99999/", "invalid_url", "got '99999'"),
        ("http://::1/", "invalid_url", "in brackets"),
        ("http://exa mple.com/", "invalid_url", "whitespace or control"),
        ("http://example.com\t/", "invalid_url", "whitespace or control"),
        ("http://exam\x00ple.com/", "invalid_url", "whitespace or control"),
        ("http://exam\x7fple.com/", "invalid_url", "whitespace or control"),
        ("http://exam\u3000ple.com/", "invalid_url", "whitespace or control"),
    ],
)
def test_malformed_urls_are_invalid_requests_that_were_never_sent(
    url: str, kind: str, why: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_url(url)
    err = caught.value
    assert isinstance(err, NetworkError) and isinstance(err, ValueError)
    assert isinstance(err, requests.RequestException)
    assert err.kind == kind and err.request_sent is False
    assert why in str(err)
    assert err.user_message and "network" not in err.user_message.lower()


def test_the_message_never_shows_a_password() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_url("http://user:hunter2@example.com:99999/?token=abc")
    text = f"{caught.value} {caught.value.details} {caught.value.url}"
    assert "hunter2" not in text and "abc" not in text


def test_a_url_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="url must be a str"):
        check_url(b"http://example.com/")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url must be a str"):
        check_url(None)  # type: ignore[arg-type]


def test_the_cache_remembers_only_good_origins_and_stays_bounded() -> None:
    urls_module._CHECKED.clear()
    check_url("http://cache.example:8080/a")
    check_url("http://cache.example:8080/b?c")
    assert list(urls_module._CHECKED) == ["http://cache.example:8080"]
    with pytest.raises(InvalidRequestError):
        check_url("http://cache.example:99999/")
    assert "http://cache.example:99999" not in urls_module._CHECKED
    for number in range(urls_module._CHECKED_MAX + 10):
        check_url(f"http://host{number}.example/")
    assert len(urls_module._CHECKED) <= urls_module._CHECKED_MAX


@given(st.text(max_size=60))
def test_any_text_is_accepted_or_an_invalid_request(text: str) -> None:
    try:
        assert check_url(text) is text
    except InvalidRequestError as err:
        assert err.request_sent is False


@given(st.text(max_size=30))
def test_any_authority_after_http_is_accepted_or_an_invalid_request(authority: str) -> None:
    url = f"http://{authority}/x"
    try:
        check_url(url)
    except InvalidRequestError as err:
        assert err.kind == "invalid_url"


def test_what_check_url_accepts_requests_can_prepare() -> None:
    for url in ("http://[::1]:8080/path", "http://example.com:/", "https://user:p@h.example/"):
        check_url(url)
        requests.Request("GET", url).prepare()


def test_a_normal_url_is_checked_in_microseconds() -> None:
    url = "https://api.example.com/v1/search?q=dj+shadow&page=2"
    check_url(url)
    best = min(timeit.repeat(lambda: check_url(url), number=2000, repeat=5)) / 2000
    assert best < 20e-6  # about 0.5 µs on an idle machine; generous for a shared one
