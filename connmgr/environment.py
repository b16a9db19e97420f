"""The environment's request settings, resolved once per network epoch.

requests reads the environment again for every request it sends: the netrc
file in :meth:`requests.Session.prepare_request` (when the session trusts the
environment and no auth is given), and ``*_PROXY``/``NO_PROXY`` and
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` in
:meth:`requests.Session.merge_environment_settings`. Those settings change
when the machine changes networks, which is exactly when connmgr's network
monitor starts a new epoch. :class:`EnvironmentCache` therefore asks requests'
own functions (:func:`requests.utils.get_environ_proxies`,
:func:`requests.utils.get_netrc_auth`) once per origin and epoch, and builds
the same prepared request and the same send settings from the answers.

The results are identical to requests' for the same environment: the session's
and the request's ``proxies``, ``verify``, ``cert``, ``stream`` and ``auth``
keep requests' precedence, and a session with ``trust_env=False`` reads
nothing from the environment. The one difference: a process that changes
``os.environ`` (or its netrc file) between requests must call
:meth:`EnvironmentCache.refresh` (``ConnectionManager.refresh_environment()``)
for later requests to see the change; a new network epoch refreshes by itself.

Example::

    env = EnvironmentCache()
    session = requests.Session()
    request = requests.Request("GET", "https://api.example.com/search")
    prepared = env.prepare_request(session, request, epoch=monitor.epoch)
    settings = env.merge_environment_settings(
        session, prepared.url, proxies={}, stream=None, verify=None, cert=None,
        epoch=monitor.epoch,
    )
    session.send(prepared, **settings)
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http import cookiejar
from types import MappingProxyType
from typing import Any, Final, TypeVar

import requests
import requests.cookies
import requests.sessions
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, get_netrc_auth

from connmgr import forksafe

__all__ = ["EnvironmentCache"]

# requests' own merging helpers, which types-requests declares without types.
cookiejar_from_dict: Callable[..., requests.cookies.RequestsCookieJar] = (
    requests.cookies.cookiejar_from_dict
)
merge_cookies: Callable[..., requests.cookies.RequestsCookieJar] = requests.cookies.merge_cookies
merge_hooks: Callable[..., Any] = requests.sessions.merge_hooks
merge_setting: Callable[..., Any] = requests.sessions.merge_setting

_T = TypeVar("_T")

# ``scheme://authority``: everything of a URL that requests' proxy and netrc
# lookups look at (host and port), so it is the cache key. A URL it does not
# match (no scheme, leading blanks, bytes) is looked up afresh, as requests does.
_AUTHORITY: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")

_MISSING: Final = object()


def _authority(url: object) -> str | None:
    """The ``scheme://host:port`` prefix of ``url``, or ``None`` when it has none."""
    if not isinstance(url, str):
        return None
    match = _AUTHORITY.match(url)
    return match.group() if match else None


def _ca_bundle_from_environ() -> str | None:
    # The two variables requests reads, in its order; an empty value counts as unset.
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class EnvironmentCache:
    """Proxies, netrc auth and the CA bundle from the environment, looked up once per epoch.

    Thread-safe. At most ``max_entries`` lookups are kept (least recently used
    first out). Every lookup may pass the current network ``epoch``; an epoch
    other than the last one seen drops everything resolved before it.
    :meth:`refresh` does the same on demand.

    Example::

        env = EnvironmentCache(max_entries=256)
        env.proxies("http://10.1.2.3:8080/x", epoch=3)   # {} or the *_PROXY values
        env.netrc_auth("https://api.example.com/")       # ('user', 'secret') or None
        env.refresh()                                    # os.environ changed
    """

    def __init__(self, max_entries: int = 256) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int):
            raise TypeError(f"max_entries must be an int, got {type(max_entries).__name__}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        #: How many lookups are kept at most.
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, ...], object] = OrderedDict()
        self._epoch: int | None = None
        # Bumped by every clearing, so that a lookup that started before a
        # refresh does not store its (possibly stale) answer after it.
        self._generation = 0
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A lock a parent's thread held at the fork stays held in the child.
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int | None:
        """The last network epoch a lookup passed (``None`` before any)."""
        return self._epoch

    def __len__(self) -> int:
        """How many lookups are cached now."""
        return len(self._entries)

    def refresh(self) -> None:
        """Forget every resolved setting: the next requests read the environment again."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        # Caller holds self._lock.
        self._entries.clear()
        self._generation += 1

    def _lookup(self, key: tuple[str, ...], epoch: int | None, resolve: Callable[[], _T]) -> _T:
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                if self._epoch is not None:
                    self._clear()
                self._epoch = epoch
            value = self._entries.get(key, _MISSING)
            if value is not _MISSING:
                self._entries.move_to_end(key)
                return value  # type: ignore[return-value]  # stored by resolve() for this key
            generation = self._generation
        # Resolved outside the lock: it reads files (netrc) and, on some
        # platforms, the system's proxy configuration. Two threads may both
        # resolve a new key; they get the same answer.
        value = resolve()
        with self._lock:
            if generation == self._generation:
                self._entries[key] = value
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    # ------------------------------------------------------------------ lookups

    def proxies(
        self, url: str, no_proxy: str | None = None, *, epoch: int | None = None
    ) -> Mapping[str, str]:
        """``requests.utils.get_environ_proxies(url, no_proxy=no_proxy)``, once per origin.

        The answer is read-only: an empty mapping when ``NO_PROXY`` (or the
        request's ``no_proxy``) bypasses the proxies for ``url``'s host and port,
        else every ``*_proxy`` variable by scheme.
        """
        authority = _authority(url)
        if authority is None or not isinstance(no_proxy, str | None):
            return get_environ_proxies(url, no_proxy=no_proxy)
        key = ("proxies", authority) if no_proxy is None else ("proxies", authority, no_proxy)
        return self._lookup(
            key, epoch, lambda: MappingProxyType(get_environ_proxies(url, no_proxy=no_proxy))
        )

    def netrc_auth(self, url: str, *, epoch: int | None = None) -> tuple[str, str] | None:
        """``requests.utils.get_netrc_auth(url)`` (``NETRC`` or ``~/.netrc``), once per host."""
        authority = _authority(url)
        if authority is None:
            return get_netrc_auth(url)
        return self._lookup(("netrc", authority), epoch, lambda: get_netrc_auth(url))

    def ca_bundle(self, *, epoch: int | None = None) -> str | None:
        """``REQUESTS_CA_BUNDLE`` or else ``CURL_CA_BUNDLE`` (``None`` when neither is set)."""
        return self._lookup(("ca_bundle",), epoch, _ca_bundle_from_environ)

    # ------------------------------------------------------------------ requests' two methods

    def prepare_request(
        self, session: requests.Session, request: requests.Request, *, epoch: int | None = None
    ) -> requests.PreparedRequest:
        """``session.prepare_request(request)``, with the netrc lookup answered from the cache.

        A session that does not trust the environment, a request or session
        with its own auth, or a Session subclass that overrides
        ``prepare_request`` is prepared by requests itself: no netrc is read then.
        """
        if (
            not session.trust_env
            or request.auth
            or session.auth
            or type(session).prepare_request is not requests.Session.prepare_request
        ):
            return session.prepare_request(request)
        # From here on, requests.Session.prepare_request line for line, but for
        # get_netrc_auth(url), which comes from the cache.
        cookies = request.cookies or {}
        if not isinstance(cookies, cookiejar.CookieJar):
            cookies = cookiejar_from_dict(cookies)
        merged_cookies = merge_cookies(
            merge_cookies(requests.cookies.RequestsCookieJar(), session.cookies), cookies
        )
        auth = self.netrc_auth(request.url, epoch=epoch)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=request.method.upper(),
            url=request.url,
            files=request.files,
            data=request.data,
            json=request.json,
            headers=merge_setting(request.headers, session.headers, dict_class=CaseInsensitiveDict),
            params=merge_setting(request.params, session.params),
            auth=merge_setting(auth, session.auth),
            cookies=merged_cookies,
            hooks=merge_hooks(request.hooks, session.hooks),
        )
        return prepared

    def merge_environment_settings(
        self,
        session: requests.Session,
        url: str,
        *,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: Any,
        epoch: int | None = None,
    ) -> dict[str, Any]:
        """``session.merge_environment_settings(url, proxies, stream, verify, cert)``, cached.

        The environment's part comes from the cache.

        Like requests, fills the environment's proxies into ``proxies`` (which
        it changes in place) before merging the session's settings under the
        request's. A Session subclass that overrides the method is asked itself.
        """
        if (
            type(session).merge_environment_settings
            is not requests.Session.merge_environment_settings
        ):
            return dict(session.merge_environment_settings(url, proxies, stream, verify, cert))
        # requests.Session.merge_environment_settings line for line, but for
        # get_environ_proxies() and the two os.environ reads, which come from the cache.
        if session.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            env_proxies = self.proxies(url, no_proxy, epoch=epoch)
            if proxies is not None:
                for name, value in env_proxies.items():
                    proxies.setdefault(name, value)
            if verify is True or verify is None:
                verify = self.ca_bundle(epoch=epoch) or verify
        return {
            "proxies": merge_setting(proxies, session.proxies),
            "stream": merge_setting(stream, session.stream),
            "verify": merge_setting(verify, session.verify),
            "cert": merge_setting(cert, session.cert),
        }
