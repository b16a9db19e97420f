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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from connmgr.errors import judge

__all__ = ["prepare", "send_settings"]


def prepare(
    session: requests.Session, method: str, url: str, **fields: Any
) -> requests.PreparedRequest:
    """``session.prepare_request(Request(method, url, **fields))``, with the errors sorted.

    ``fields`` are :class:`requests.Request`'s: params, data, headers, cookies,
    files, auth, hooks, json.

    Example::

        prep = prepare(requests.Session(), "GET", "http://127.0.0.1:8080/a", params={"q": 1})
        prep.url                  # 'http://127.0.0.1:8080/a?q=1'
    """
    fields["data"] = fields.get("data") or {}
    fields["params"] = fields.get("params") or {}
    request = requests.Request(method=method.upper(), url=url, **fields)
    try:
        return session.prepare_request(request)
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
) -> dict[str, Any]:
    """The keyword arguments for ``session.send(prepared, ...)``, as ``Session.request`` builds.

    Environment settings (``*_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``) are
    read when the session's ``trust_env`` is true, exactly as requests reads them.
    """
    settings: dict[str, Any] = dict(
        session.merge_environment_settings(prepared.url, dict(proxies or {}), stream, verify, cert)
    )
    settings["allow_redirects"] = allow_redirects
    return settings
