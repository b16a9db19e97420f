"""EnvironmentCache: what it keeps, when it reads again, its bound, threads, and real sends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests

import connmgr.environment
from connmgr.environment import EnvironmentCache
from connmgr.outgoing import prepare, send_settings
from connmgr.testing import FaultServer

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # never the real ~/.netrc


def _send_settings(env: EnvironmentCache, url: str, epoch: int | None = None) -> dict[str, Any]:
    session = requests.Session()
    prepared = prepare(session, "GET", url, environment=env, epoch=epoch)
    return send_settings(session, prepared, environment=env, epoch=epoch)


# ---------------------------------------------------------------- once, then again


def test_the_environment_is_read_once_until_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    env = EnvironmentCache()
    monkeypatch.setenv("HTTP_PROXY", "http://first.test:1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/first.pem")
    first = _send_settings(env, "http://example.com/a")
    assert first["proxies"] == {"http": "http://first.test:1"}
    assert first["verify"] == "/first.pem"

    monkeypatch.setenv("HTTP_PROXY", "http://second.test:2")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/second.pem")
    # The documented difference: until a refresh, the cached answer stands.
    assert _send_settings(env, "http://example.com/b") == first

    env.refresh()
    again = _send_settings(env, "http://example.com/c")
    assert again["proxies"] == {"http": "http://second.test:2"}
    assert again["verify"] == "/second.pem"


def test_a_new_epoch_reads_again_and_the_same_epoch_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = EnvironmentCache()
    monkeypatch.setenv("HTTPS_PROXY", "http://hotel.test:8080")
    assert _send_settings(env, "https://example.com/", epoch=4)["proxies"] == {
        "https": "http://hotel.test:8080"
    }
    assert env.epoch == 4
    monkeypatch.setenv("NO_PROXY", "*")  # the office network: no proxy
    assert _send_settings(env, "https://example.com/", epoch=4)["proxies"] != {}
    assert _send_settings(env, "https://example.com/")["proxies"] != {}  # no epoch: no change
    assert _send_settings(env, "https://example.com/", epoch=5)["proxies"] == {}
    assert env.epoch == 5
    # Any other epoch counts as a change, also a smaller one (a new monitor).
    monkeypatch.delenv("NO_PROXY")
    assert _send_settings(env, "https://example.com/", epoch=1)["proxies"] != {}


def test_the_netrc_file_is_read_once_per_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "auth.netrc"
    netrc.write_text("machine example.com login alice password one\n")
    monkeypatch.setenv("NETRC", str(netrc))
    reads: list[str] = []
    real = connmgr.environment.get_netrc_auth

    def counting(url: str, raise_errors: bool = False) -> tuple[str, str] | None:
        reads.append(url)
        return real(url, raise_errors)

    monkeypatch.setattr(connmgr.environment, "get_netrc_auth", counting)
    env = EnvironmentCache()
    session = requests.Session()
    for path in ("/a", "/b", "/c?x=1"):
        prepared = prepare(session, "GET", "http://example.com" + path, environment=env)
        assert prepared.headers["Authorization"] == "Basic YWxpY2U6b25l"  # alice:one
    assert len(reads) == 1
    netrc.write_text("machine example.com login alice password two\n")
    env.refresh()
    prepared = prepare(session, "GET", "http://example.com/d", environment=env)
    assert prepared.headers["Authorization"] == "Basic YWxpY2U6dHdv"  # alice:two
    assert len(reads) == 2


def test_trust_env_false_reads_nothing_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("the environment was read for a trust_env=False session")

    monkeypatch.setattr(connmgr.environment, "get_netrc_auth", forbidden)
    monkeypatch.setattr(connmgr.environment, "get_environ_proxies", forbidden)
    monkeypatch.setattr(connmgr.environment, "_ca_bundle_from_environ", forbidden)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:1")
    env = EnvironmentCache()
    session = requests.Session()
    session.trust_env = False
    prepared = prepare(session, "GET", "http://example.com/", environment=env, epoch=1)
    settings = send_settings(session, prepared, environment=env, epoch=1)
    assert settings["proxies"] == {} and settings["verify"] is True
    assert "Authorization" not in prepared.headers
    assert len(env) == 0


def test_explicit_auth_skips_the_netrc_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("netrc was read although auth was given")

    monkeypatch.setattr(connmgr.environment, "get_netrc_auth", forbidden)
    env = EnvironmentCache()
    session = requests.Session()
    prepare(session, "GET", "http://example.com/", auth=("u", "p"), environment=env)
    session.auth = ("s", "p")
    prepare(session, "GET", "http://example.com/", environment=env)


# ---------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    "url",
    [b"http://example.com/", " http://example.com/", "example.com/x", "mailto:a@example.com", ""],
)
def test_urls_without_an_authority_are_answered_as_requests_answers(
    url: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "n.netrc"
    netrc.write_text("default login d password p\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:1")
    env = EnvironmentCache()
    assert env.netrc_auth(url) == requests.utils.get_netrc_auth(url)
    if isinstance(url, str):
        assert dict(env.proxies(url)) == requests.utils.get_environ_proxies(url)
    assert len(env) == 0  # nothing to key on: looked up afresh, not cached


def test_a_no_proxy_that_is_not_a_string_is_passed_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:1")
    env = EnvironmentCache()
    with pytest.raises(AttributeError):  # requests calls no_proxy.replace(...)
        env.proxies("http://example.com/", no_proxy=["example.com"])  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        requests.utils.get_environ_proxies("http://example.com/", no_proxy=["example.com"])  # type: ignore[arg-type]


def test_the_answer_cannot_be_changed_by_a_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:1")
    env = EnvironmentCache()
    answer = env.proxies("http://example.com/")
    with pytest.raises(TypeError):
        answer["http"] = "http://evil.test:1"  # type: ignore[index]
    settings = _send_settings(env, "http://example.com/")
    settings["proxies"]["http"] = "http://changed.test:1"  # the caller's own copy
    assert dict(env.proxies("http://example.com/")) == {"http": "http://proxy.test:1"}


@pytest.mark.parametrize("bad", ["256", 2.0, None, True])
def test_max_entries_of_the_wrong_type_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="max_entries"):
        EnvironmentCache(max_entries=bad)


@pytest.mark.parametrize("bad", [0, -1, -(2**63)])
def test_max_entries_below_one_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        EnvironmentCache(max_entries=bad)


# ---------------------------------------------------------------- bound, threads


def test_the_cache_keeps_the_most_recently_used_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://old.test:1")
    env = EnvironmentCache(max_entries=2)
    env.proxies("http://a.test/")
    env.proxies("http://b.test/")
    env.proxies("http://a.test/")  # a is now the most recent
    env.proxies("http://c.test/")  # b goes
    assert len(env) == 2
    monkeypatch.setenv("HTTP_PROXY", "http://new.test:1")
    assert dict(env.proxies("http://a.test/")) == {"http": "http://old.test:1"}  # kept
    assert dict(env.proxies("http://b.test/")) == {"http": "http://new.test:1"}  # evicted
    for n in range(1000):
        env.proxies(f"http://host{n}.test/")
    assert len(env) == 2


def test_a_lookup_racing_a_refresh_does_not_store_a_stale_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, release = threading.Event(), threading.Event()
    real = connmgr.environment.get_environ_proxies

    def slow(url: str, no_proxy: str | None = None) -> dict[str, str]:
        answer = real(url, no_proxy=no_proxy)
        started.set()
        assert release.wait(5)
        return answer

    monkeypatch.setattr(connmgr.environment, "get_environ_proxies", slow)
    monkeypatch.setenv("HTTP_PROXY", "http://before.test:1")
    env = EnvironmentCache()
    answers: list[dict[str, str]] = []
    worker = threading.Thread(target=lambda: answers.append(dict(env.proxies("http://x.test/"))))
    worker.start()
    assert started.wait(5)
    monkeypatch.setenv("HTTP_PROXY", "http://after.test:1")
    env.refresh()
    release.set()
    worker.join(5)
    assert answers == [{"http": "http://before.test:1"}]  # that request read before the change
    assert len(env) == 0
    monkeypatch.setattr(connmgr.environment, "get_environ_proxies", real)
    assert dict(env.proxies("http://x.test/")) == {"http": "http://after.test:1"}


def test_threads_with_refreshes_and_epochs_always_get_a_correct_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:1")
    monkeypatch.setenv("NO_PROXY", ".direct.test")
    env = EnvironmentCache(max_entries=8)
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(number: int) -> None:
        barrier.wait()
        for i in range(300):
            host = f"h{i % 20}.direct.test" if i % 2 else f"h{i % 20}.proxied.test"
            got = dict(env.proxies(f"http://{host}/", epoch=i // 100))
            want = {} if i % 2 else {"http": "http://proxy.test:1", "no": ".direct.test"}
            if got != want:
                errors.append(f"{host}: {got}")
            if number == 0 and i % 50 == 0:
                env.refresh()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(env) <= 8


# ---------------------------------------------------------------- Session subclasses


def test_a_session_subclass_that_overrides_the_methods_is_asked_itself() -> None:
    calls: list[str] = []

    class Custom(requests.Session):
        def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
            calls.append("prepare_request")
            prepared = super().prepare_request(request)
            prepared.headers["X-Custom"] = "1"
            return prepared

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("merge_environment_settings")
            settings = super().merge_environment_settings(*args, **kwargs)
            settings["verify"] = "/custom.pem"
            return settings

    env = EnvironmentCache()
    session = Custom()
    prepared = prepare(session, "GET", "http://example.com/", environment=env)
    settings = send_settings(session, prepared, environment=env)
    assert prepared.headers["X-Custom"] == "1" and settings["verify"] == "/custom.pem"
    assert calls == ["prepare_request", "merge_environment_settings"]


# ---------------------------------------------------------------- over real sockets


def test_cached_settings_route_real_requests_through_the_proxy_or_around_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FaultServer() as origin, FaultServer() as proxy:
        # The "proxy" is a second FaultServer: it answers an absolute-form
        # request line itself, so a hit there proves the request went via the proxy.
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        env = EnvironmentCache()
        session = requests.Session()

        def get() -> int:
            prepared = prepare(session, "GET", origin.url_for("/ok"), environment=env, epoch=1)
            settings = send_settings(session, prepared, environment=env, epoch=1)
            return session.send(prepared, timeout=(5, 5), **settings).status_code

        assert get() == 200
        assert (origin.hits("/ok"), proxy.hits("/ok")) == (1, 0)
        monkeypatch.delenv("NO_PROXY")
        assert get() == 200  # still the resolved bypass: same epoch, no refresh
        assert (origin.hits("/ok"), proxy.hits("/ok")) == (2, 0)
        env.refresh()
        assert get() == 200
        assert (origin.hits("/ok"), proxy.hits("/ok")) == (2, 1)
        session.close()
