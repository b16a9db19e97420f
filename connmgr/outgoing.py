"""One outgoing request, built before anything is sent.

:func:`prepare` does what :meth:`requests.Session.request` does before it sends
(merge the session's headers, cookies, auth and hooks; encode the body), so that
a caller's mistake surfaces here, with nothing sent and no state moved:

* a malformed URL or header raises :class:`~connmgr.InvalidRequestError`
  (a :class:`~connmgr.NetworkError` and a ``ValueError``);
* anything else, such as an unserialisable ``json=`` (``TypeError``), passes
  through as requests raises it: a bug is never reported as a network outcome.

:func:`send_settings` resolves the per-send settings (proxies, ``stream``,
``verify``, ``cert``) from the session and the environment, as requests does.

Both read the environment (netrc, ``*_PROXY``, ``REQUESTS_CA_BUNDLE``) as
requests does on every request, unless they are given an
:class:`~connmgr.environment.EnvironmentCache` and the network ``epoch``: then
the environment is read once per origin and epoch, with identical results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connmgr.environment import EnvironmentCache
from connmgr.errors import check_url, judge
from connmgr.ratelimit import origin_of

__all__ = ["BaseURL", "prepare", "send_settings"]


class BaseURL:
    """A manager's ``base_url``: joins relative URLs and knows their origin.

    Example::

        base = BaseURL("https://api.example.com/v1/")
        base.absolute("/search"), base.absolute("items/1")
        # ('https://api.example.com/search', 'https://api.example.com/v1/items/1')
        base.origin_of("/search")          # 'https://api.example.com:443'
    """

    __slots__ = ("_prefix", "_root", "origin", "url")

    def __init__(self, url: str | None) -> None:
        self.url = url
        #: The base's origin (``scheme://host:port``), ``None`` without a base.
        self.origin: str | None = None
        self._root = ""
        self._prefix = "\x00"  # matches no URL
        if url:
            parts = urlsplit(check_url(url))
            self.origin = origin_of(url)
            self._root = f"{parts.scheme}://{parts.netloc}"
            self._prefix = self._root + "/"

    def absolute(self, url: str) -> str:
        """``url`` joined with the base (RFC 3986), or as it is when absolute."""
        if not self.url or "://" in url:
            return url
        if url.startswith("/") and not url.startswith("//"):
            # An absolute path replaces the base's path (RFC 3986 5.2.2): skip urljoin.
            return self._root + url
        return urljoin(self.url, url)

    def origin_of(self, url: str) -> str:
        """The origin of ``url`` (joined with the base first)."""
        url = self.absolute(url)
        if self.origin is not None and url.startswith(self._prefix):
            return self.origin
        return origin_of(url)


def prepare(
    session: requests.Session,
    method: str,
    url: str,
    *,
    environment: EnvironmentCache | None = None,
    epoch: int | None = None,
    **fields: Any,
) -> requests.PreparedRequest:
    """``session.prepare_request(Request(method, url, **fields))``, with the errors sorted.

    ``fields`` are :class:`requests.Request`'s: params, data, headers, cookies,
    files, auth, hooks, json. With an ``environment``, the netrc file is read
    once per host and ``epoch`` (see :class:`~connmgr.environment.EnvironmentCache`).

    Example::

        prep = prepare(requests.Session(), "GET", "http://127.0.0.1:8080/a", params={"q": 1})
        prep.url                  # 'http://127.0.0.1:8080/a?q=1'
    """
    fields["data"] = fields.get("data") or {}
    fields["params"] = fields.get("params") or {}
    request = requests.Request(method=method.upper(), url=url, **fields)
    try:
        if environment is None:
            return session.prepare_request(request)
        return environment.prepare_request(session, request, epoch=epoch)
    except requests.RequestException as exc:
        error = judge(exc, url=url).error
        assert error is not None  # a requests exception is always judged an error
        raise error from exc


def send_settings(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    *,
    allow_redirects: bool = True,
    proxies: Mapping[str, str] | None = None,
    stream: bool | None = None,
    verify: bool | str | None = None,
    cert: Any = None,
    environment: EnvironmentCache | None = None,
    epoch: int | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``session.send(prepared, ...)``, as ``Session.request`` builds.

    Environment settings (``*_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) are
    read when the session's ``trust_env`` is true, exactly as requests reads them;
    with an ``environment``, once per origin and ``epoch``.
    """
    url = prepared.url or ""
    request_proxies = dict(proxies or {})
    merged: Mapping[str, Any]
    if environment is None:
        merged = session.merge_environment_settings(url, request_proxies, stream, verify, cert)
    else:
        merged = environment.merge_environment_settings(
            session, url, proxies=request_proxies, stream=stream, verify=verify, cert=cert,
            epoch=epoch,
        )  # fmt: skip
    settings: dict[str, Any] = dict(merged)
    settings["allow_redirects"] = allow_redirects
    return settings
