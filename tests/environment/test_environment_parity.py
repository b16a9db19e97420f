"""EnvironmentCache gives exactly what requests gives, for a matrix of environments.

Each environment (proxy variables, NO_PROXY patterns, netrc files, CA bundles)
is crossed with URLs (schemes, hosts that match and do not, IPs, ports, URL
credentials) and with per-request and session overrides. For every case the
prepared request (URL, headers including a netrc ``Authorization``, body) and
the send settings (proxies, verify, cert, stream) from requests'
``Session.prepare_request`` + ``Session.merge_environment_settings`` are
compared with the cache's. One cache serves a whole environment and every URL
is looked up twice, so a cache key that mixes two origins shows as a mismatch.
Nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from connmgr.environment import EnvironmentCache
from connmgr.outgoing import prepare, send_settings

# Every variable the matrix sets, in every case spelling it uses: cleared first.
VARIABLES = [
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
    "Http_Proxy",
    "No_Proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETRC",
]

NETRC_WITH_DEFAULT = """\
machine example.com login alice password alice-secret
machine api.example.com login bob password bob-secret
machine 127.0.0.1 login carol password carol-secret
default login dave password dave-secret
"""
NETRC_MACHINES_ONLY = """\
machine example.com login alice password alice-secret
machine localhost password only-a-password
"""

P = "http://proxy.test:3128"
S = "http://secure-proxy.test:3129"

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "nothing set": {},
    "HTTP_PROXY": {"HTTP_PROXY": P},
    "HTTP_PROXY + HTTPS_PROXY": {"HTTP_PROXY": P, "HTTPS_PROXY": S},
    "ALL_PROXY": {"ALL_PROXY": P},
    "lower-case http_proxy over HTTP_PROXY": {"http_proxy": S, "HTTP_PROXY": P},
    "mixed-case Http_Proxy": {"Http_Proxy": P},
    "empty HTTP_PROXY": {"HTTP_PROXY": "", "HTTPS_PROXY": S},
    "NO_PROXY=*": {"HTTP_PROXY": P, "HTTPS_PROXY": S, "NO_PROXY": "*"},
    "NO_PROXY=.example.com": {"HTTP_PROXY": P, "HTTPS_PROXY": S, "NO_PROXY": ".example.com"},
    "NO_PROXY=example.com": {"HTTP_PROXY": P, "HTTPS_PROXY": S, "NO_PROXY": "example.com"},
    "NO_PROXY=10.0.0.0/8": {"HTTP_PROXY": P, "ALL_PROXY": S, "NO_PROXY": "10.0.0.0/8"},
    "NO_PROXY=127.0.0.1:8080": {"HTTP_PROXY": P, "NO_PROXY": "127.0.0.1:8080"},
    "NO_PROXY=host:port": {"HTTPS_PROXY": S, "NO_PROXY": "api.example.com:8443"},
    "NO_PROXY list with blanks": {
        "HTTP_PROXY": P,
        "HTTPS_PROXY": S,
        "NO_PROXY": " localhost, .internal:8443 ,192.168.0.0/16,,[::1]",
    },
    "lower-case no_proxy over NO_PROXY": {
        "HTTP_PROXY": P,
        "no_proxy": "notexample.com",
        "NO_PROXY": "example.com",
    },
    "mixed-case No_Proxy": {"HTTP_PROXY": P, "No_Proxy": "example.com"},
    "netrc with default": {"NETRC": "<netrc-default>"},
    "netrc, machines only": {"NETRC": "<netrc-machines>"},
    "netrc in HOME": {"HOME": "<home-with-netrc>"},
    "NETRC names a missing file": {"NETRC": "<missing>"},
    "NETRC names a malformed file": {"NETRC": "<netrc-malformed>"},
    "REQUESTS_CA_BUNDLE": {"REQUESTS_CA_BUNDLE": "/etc/env/requests-ca.pem"},
    "CURL_CA_BUNDLE": {"CURL_CA_BUNDLE": "/etc/env/curl-ca.pem"},
    "both CA bundles": {
        "REQUESTS_CA_BUNDLE": "/etc/env/requests-ca.pem",
        "CURL_CA_BUNDLE": "/etc/env/curl-ca.pem",
    },
    "empty REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE set": {
        "REQUESTS_CA_BUNDLE": "",
        "CURL_CA_BUNDLE": "/etc/env/curl-ca.pem",
    },
    "everything at once": {
        "HTTP_PROXY": P,
        "HTTPS_PROXY": S,
        "NO_PROXY": ".example.com,10.0.0.0/8",
        "NETRC": "<netrc-default>",
        "REQUESTS_CA_BUNDLE": "/etc/env/requests-ca.pem",
    },
}

URLS = [
    "http://example.com/path",
    "https://example.com/",
    "https://api.example.com:8443/search?q=1",
    "http://api.example.com/",
    "http://example.com:8080/",
    "http://notexample.com/",
    "http://EXAMPLE.com/upper",
    "http://10.1.2.3/",
    "http://11.1.2.3:8080/",
    "http://127.0.0.1:8080/",
    "http://127.0.0.1:9000/",
    "https://[::1]:8443/",
    "http://localhost/",
    "http://svc.internal:8443/",
    "http://192.168.1.5:8443/",
    "http://user:pw@example.com/with-url-credentials",
    "http://user:pw@other.test/with-url-credentials",
    "file:///etc/hosts",
]


def _session_only(**attrs: Any) -> Callable[[requests.Session], dict[str, Any]]:
    def configure(session: requests.Session) -> dict[str, Any]:
        for name, value in attrs.items():
            setattr(session, name, value)
        return {}

    return configure


def _request_only(**kwargs: Any) -> Callable[[requests.Session], dict[str, Any]]:
    return lambda session: dict(kwargs)


OVERRIDES: dict[str, Callable[[requests.Session], dict[str, Any]]] = {
    "none": _request_only(),
    "request proxies": _request_only(proxies={"http": "http://req.test:1"}),
    "request proxies per host": _request_only(proxies={"http://example.com": "http://req.test:2"}),
    "request no_proxy": _request_only(proxies={"no_proxy": "example.com,10.0.0.0/8"}),
    "request no_proxy empty": _request_only(proxies={"no_proxy": ""}),
    "session proxies": _session_only(proxies={"https": "http://sess.test:2"}),
    "session and request proxies": lambda s: (
        _session_only(proxies={"http": "http://sess.test:2", "all": "http://sess.test:3"})(s)
        or {"proxies": {"http": "http://req.test:1"}}
    ),
    "request verify=False": _request_only(verify=False),
    "request verify=True": _request_only(verify=True),
    "request verify path": _request_only(verify="/req/ca.pem"),
    "session verify=False": _session_only(verify=False),
    "session verify path": _session_only(verify="/sess/ca.pem"),
    "session verify path, request verify=True": lambda s: (
        _session_only(verify="/sess/ca.pem")(s) or {"verify": True}
    ),
    "cert": lambda s: _session_only(cert="/sess/c.pem")(s) or {"cert": ("/a.pem", "/a.key")},
    "session cert": _session_only(cert="/sess/c.pem"),
    "stream": _request_only(stream=True),
    "session stream": _session_only(stream=True),
    "request auth": _request_only(auth=("req", "pw")),
    "session auth": _session_only(auth=("sess", "pw")),
    "session Authorization header": _session_only(headers={"Authorization": "Bearer sess"}),
    "request Authorization header": _request_only(headers={"Authorization": "Bearer req"}),
    "trust_env=False": _session_only(trust_env=False),
    "trust_env=False with request proxies": lambda s: (
        _session_only(trust_env=False)(s) or {"proxies": {"https": "http://req.test:1"}}
    ),
}

_REQUEST_FIELDS = ("auth", "headers")
_SEND_FIELDS = ("proxies", "stream", "verify", "cert")


def _files(tmp_path: Path) -> dict[str, str]:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "default.netrc").write_text(NETRC_WITH_DEFAULT)
    (tmp_path / "machines.netrc").write_text(NETRC_MACHINES_ONLY)
    (tmp_path / "malformed.netrc").write_text("machine example.com login\n  macdef\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(NETRC_MACHINES_ONLY)
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    return {
        "<netrc-default>": str(tmp_path / "default.netrc"),
        "<netrc-machines>": str(tmp_path / "machines.netrc"),
        "<netrc-malformed>": str(tmp_path / "malformed.netrc"),
        "<missing>": str(tmp_path / "no-such.netrc"),
        "<home-with-netrc>": str(home),
        "<empty-home>": str(empty_home),
    }


def _apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    files = _files(tmp_path)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", files["<empty-home>"])  # never the real ~/.netrc
    for name, value in env.items():
        monkeypatch.setenv(name, files.get(value, value))


def _by_requests(session: requests.Session, kwargs: dict[str, Any], url: str) -> tuple[Any, ...]:
    request = requests.Request("GET", url, **{k: kwargs[k] for k in _REQUEST_FIELDS if k in kwargs})
    prepared = session.prepare_request(request)
    settings = session.merge_environment_settings(
        prepared.url,
        dict(kwargs.get("proxies") or {}),  # requests fills it in place: a fresh copy each time
        kwargs.get("stream"),
        kwargs.get("verify"),
        kwargs.get("cert"),
    )
    return prepared.url, dict(prepared.headers), prepared.body, dict(settings)


def _by_cache(
    env: EnvironmentCache, session: requests.Session, kwargs: dict[str, Any], url: str
) -> tuple[Any, ...]:
    request = requests.Request("GET", url, **{k: kwargs[k] for k in _REQUEST_FIELDS if k in kwargs})
    prepared = env.prepare_request(session, request, epoch=7)
    settings = env.merge_environment_settings(
        session,
        prepared.url or "",
        proxies=dict(kwargs.get("proxies") or {}),
        stream=kwargs.get("stream"),
        verify=kwargs.get("verify"),
        cert=kwargs.get("cert"),
        epoch=7,
    )
    return prepared.url, dict(prepared.headers), prepared.body, settings


@pytest.mark.parametrize("env_name", list(ENVIRONMENTS))
def test_cache_matches_requests_for_every_url_and_override(
    env_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _apply(monkeypatch, tmp_path, ENVIRONMENTS[env_name])
    env = EnvironmentCache()
    mismatches = []
    for name, override in OVERRIDES.items():
        session = requests.Session()
        kwargs = override(session)
        # Each URL twice: first resolved, then from the cache, after the other URLs.
        expected = {url: _by_requests(session, kwargs, url) for url in URLS}
        for lap in ("first", "cached"):
            for url in URLS:
                got = _by_cache(env, session, kwargs, url)
                if got != expected[url]:
                    mismatches.append(
                        f"{lap} {url} [{name}]:\n  requests {expected[url]}\n  cache    {got}"
                    )
    assert not mismatches, "\n".join(mismatches[:10])


def test_the_matrix_exercises_what_it_claims(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Guard against a matrix that compares empty answers only: the environments
    # must really produce proxies, bypasses, netrc auth and CA bundles.
    seen: dict[str, set[Any]] = {"proxies": set(), "verify": set(), "auth": set()}
    for number, env_vars in enumerate(ENVIRONMENTS.values()):
        _apply(monkeypatch, tmp_path / str(number), env_vars)
        for url in URLS:
            _, headers, _, settings = _by_requests(requests.Session(), {}, url)
            seen["proxies"].add(tuple(sorted(settings["proxies"].items())))
            seen["verify"].add(settings["verify"])
            seen["auth"].add(headers.get("Authorization"))
        monkeypatch.undo()
    assert () in seen["proxies"]  # bypassed or nothing set
    assert (("http", P),) in seen["proxies"]
    assert (("http", P), ("https", S)) in seen["proxies"]
    assert (("http", S),) in seen["proxies"]  # lower case wins
    assert {True, "/etc/env/requests-ca.pem", "/etc/env/curl-ca.pem"} <= seen["verify"]
    assert len(seen["auth"]) >= 5  # none, URL credentials, alice, bob, carol, dave, ...


@pytest.mark.parametrize("env_name", ["everything at once", "NO_PROXY list with blanks"])
def test_outgoing_prepare_and_send_settings_match_with_and_without_the_cache(
    env_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _apply(monkeypatch, tmp_path, ENVIRONMENTS[env_name])
    env = EnvironmentCache()
    session = requests.Session()
    for url in URLS:
        for proxies in (None, {"no_proxy": "localhost"}, {"https": "http://req.test:1"}):
            plain = prepare(session, "get", url, params={"q": "1"}, headers={"X-A": "1"})
            cached = prepare(
                session, "get", url, params={"q": "1"}, headers={"X-A": "1"},
                environment=env, epoch=3,
            )  # fmt: skip
            assert (cached.method, cached.url, dict(cached.headers)) == (
                plain.method,
                plain.url,
                dict(plain.headers),
            )
            assert send_settings(
                session, cached, proxies=proxies, allow_redirects=False, environment=env, epoch=3
            ) == send_settings(session, plain, proxies=proxies, allow_redirects=False)
