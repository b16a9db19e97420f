"""connmgr.errors.redact: no secret reaches a message, a detail or a log."""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from connmgr.errors import (
    ErrorMessageFormatter,
    NetworkError,
    classify_error,
    redact_headers,
    redact_text,
    redact_url,
)

# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bob:hunter2@api.test/x", "https://***@api.test/x"),
        ("https://bob@api.test/x", "https://***@api.test/x"),
        ("http://u:p@[::1]:8080/x", "http://***@[::1]:8080/x"),
        ("https://u:p@ss@api.test/", "https://***@api.test/"),
        ("https://api.test/x?token=a&q=b", "https://api.test/x?token=***&q=b"),
        ("https://api.test/x?access_token=a", "https://api.test/x?access_token=***"),
        (
            "https://api.test/x?api_key=a&apikey=b&key=c",
            "https://api.test/x?api_key=***&apikey=***&key=***",
        ),
        (
            "https://api.test/x?password=a&passwd=b&pwd=c",
            "https://api.test/x?password=***&passwd=***&pwd=***",
        ),
        (
            "https://api.test/x?secret=a&client_secret=b",
            "https://api.test/x?secret=***&client_secret=***",
        ),
        ("https://api.test/x?signature=a&sig=b", "https://api.test/x?signature=***&sig=***"),
        (
            "https://s3.test/o?X-Amz-Signature=a&X-Amz-Credential=b&X-Amz-Date=1",
            "https://s3.test/o?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Date=1",
        ),
        (
            "https://api.test/x?auth=a&session=b&sid=c&code=d",
            "https://api.test/x?auth=***&session=***&sid=***&code=***",
        ),
        (
            "https://api.test/x?TOKEN=a&Api-Key=b&accessToken=c&refresh_token=d",
            "https://api.test/x?TOKEN=***&Api-Key=***&accessToken=***&refresh_token=***",
        ),
        ("https://api.test/x?api%5Fkey=a", "https://api.test/x?api%5Fkey=***"),
        (
            "https://api.test/x?q=daft+punk&keyword=house&author=x&page=2&country_code=de",
            "https://api.test/x?q=daft+punk&keyword=house&author=x&page=2&country_code=de",
        ),
        (
            "https://api.test/cb#access_token=a&state=s",
            "https://api.test/cb#access_token=***&state=s",
        ),
        ("https://api.test/x#section-2", "https://api.test/x#section-2"),
        ("https://api.test/x?token=", "https://api.test/x?token="),
        ("/relative/path?token=a", "/relative/path?token=***"),
        ("https://api.test/x", "https://api.test/x"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(expected) == expected  # idempotent


def test_redact_headers() -> None:
    headers = CaseInsensitiveDict(
        {
            "Authorization": "Bearer a",
            "Proxy-Authorization": "Basic b",
            "Cookie": "session=c",
            "Set-Cookie": "id=d",
            "X-Api-Key": "e",
            "X-Auth-Token": "f",
            "X-Client-Secret": "g",
            "Accept": "text/html",
            "Idempotency-Key": "retry-id-1",
            "Referer": "https://x.test/?token=h",
        }
    )
    redacted = redact_headers(headers)
    assert redacted == {
        "Authorization": "***",
        "Proxy-Authorization": "***",
        "Cookie": "***",
        "Set-Cookie": "***",
        "X-Api-Key": "***",
        "X-Auth-Token": "***",
        "X-Client-Secret": "***",
        "Accept": "text/html",
        "Idempotency-Key": "retry-id-1",
        "Referer": "https://x.test/?token=***",
    }
    assert redact_headers([("authorization", "x"), ("accept", "y")]) == {
        "authorization": "***",
        "accept": "y",
    }
    assert redact_headers(None) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Max retries exceeded with url: /search?token=abc (Caused by X)",
            "Max retries exceeded with url: /search?token=*** (Caused by X)",
        ),
        ("see (https://u:p@x.test/a?key=k).", "see (https://***@x.test/a?key=***)."),
        ("header Bearer xyz was rejected", "header Bearer *** was rejected"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: ***"),
        ("Cookie: a=1; b=2\nnext line", "Cookie: ***\nnext line"),
        (
            "{'Authorization': 'Bearer a', 'Accept': '*/*'}",
            "{'Authorization': '***', 'Accept': '*/*'}",
        ),
        ('{"access_token": "a", "expires": 3}', '{"access_token": "***", "expires": 3}'),
        ("login(password='hunter2', user='bob')", "login(password=***, user='bob')"),
        ("api_key=abc123 rejected", "api_key=*** rejected"),
        ("Token 0123456789abcdef0123", "Token ***"),
        (
            "HTTPConnectionPool(host='127.0.0.1', port=80): Read timed out. (read timeout=0.1)",
            "HTTPConnectionPool(host='127.0.0.1', port=80): Read timed out. (read timeout=0.1)",
        ),
        ("the keyword=house search", "the keyword=house search"),
        ('{"keyword": "house", "X-Authkey": "k"}', '{"keyword": "house", "X-Authkey": "***"}'),
        ("X-Authkey: k", "X-Authkey: ***"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


_SECRETS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
    min_size=8,
    max_size=40,
)


def _all_text(err: NetworkError) -> str:
    return "\n".join(
        [
            str(err),
            repr(err),
            err.details,
            err.user_message,
            err.suggestion,
            err.url or "",
            ErrorMessageFormatter.format_error(err),
            ErrorMessageFormatter.format_details(err),
        ]
    )


def _leaky_error(secret: str, where: str) -> NetworkError:
    url = {
        "userinfo": f"https://bob:{secret}@api.test/v1/search?q=x",
        "query": f"https://api.test/v1/search?q=x&access_token={secret}",
        "fragment": f"https://api.test/cb#token={secret}",
    }.get(where, "https://api.test/v1/search?q=x")
    message = {
        "bearer": f"401 for {url}: Authorization: Bearer {secret}",
        "json": f'server said {{"api_key": "{secret}"}}',
        "pair": f"failed with password={secret} and {url}",
        "cookie": f"Cookie: session={secret}",
    }.get(where, f"failed: {url}")
    prepared = requests.Request(
        "GET", url, headers={"Authorization": f"Bearer {secret}", "X-Api-Key": secret}
    ).prepare()
    return classify_error(requests.ConnectionError(message, request=prepared))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=_SECRETS,
    where=st.sampled_from(["userinfo", "query", "fragment", "bearer", "json", "pair", "cookie"]),
)
def test_no_secret_ever_reaches_a_message(secret: str, where: str) -> None:
    placeholder = _all_text(_leaky_error("PLACEHOLDERxyz", where))
    assume(secret not in placeholder)
    assert secret not in _all_text(_leaky_error(secret, where))
