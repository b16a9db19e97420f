"""What the outbox stores of a request, checked and serialised before anything is written.

A caller's bug is never queued: :func:`build_request` raises ``TypeError`` or
``ValueError`` (``InvalidRequestError`` for a malformed URL) for anything the
outbox could not send later exactly as it was given, and nothing is stored.

URLs are stored relative to a *base* so that :class:`~connmgr.outbox.Outbox`'s
``base_url=`` can move them (a test server, a server that moved):

* the base in effect when an entry is submitted is the outbox's ``base_url``,
  else the manager's ``base_url``; with neither, a URL's own origin is its base;
* a URL under that base (same scheme, host and port) is stored as a reference
  relative to the base's directory (the base's path up to its last ``/``), or
  from the root (``/path?query``) when its path is elsewhere on that origin;
* a URL on another origin than the base in effect is stored absolute and is
  never rebased;
* on delivery a stored reference is resolved (RFC 3986, ``urljoin``) against
  the base in effect *then*: the outbox's ``base_url``, else the manager's,
  else the base it was stored with.
"""

from __future__ import annotations

import json as jsonlib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from connmgr.errors import InvalidRequestError
from connmgr.frozen import explain_frozen

__all__ = ["StoredRequest", "build_request", "check_base_url", "resolve_url", "split_url"]

#: RFC 9110 token characters: what a method and a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MAX_KEY = 255
_IDEMPOTENCY_KEY = "idempotency-key"


@explain_frozen
@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A request as the outbox stores it (every field is what goes into the row)."""

    method: str
    #: The base ``ref`` is relative to, or ``None`` when ``ref`` is absolute.
    base: str | None
    ref: str
    headers: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...] | None
    body: bytes | None
    operation: str
    idempotency_key: str


def build_request(
    method: object,
    url: object,
    *,
    base: str | None,
    json: object,
    has_json: bool,
    data: object,
    headers: object,
    params: object,
    operation: str,
) -> StoredRequest:
    """Check and serialise one ``submit()``; raise before anything is stored.

    Raises:
        TypeError: a wrong type (the argument is named), an unserialisable JSON
            body, or both ``json=`` and ``data=``.
        ValueError: a bad value (a method that is not a token, a header with a
            line break, NaN in a JSON body ...).
        InvalidRequestError: the URL is not ``http(s)://host/...`` once resolved.
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    if not _TOKEN.match(method):
        raise ValueError(f"method must be an HTTP method token, got {method!r}")
    pairs = _headers(headers)
    key: str | None = None
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if name.lower() == _IDEMPOTENCY_KEY:
            if not value.strip() or len(value) > _MAX_KEY:
                raise ValueError(
                    f"headers: Idempotency-Key must be 1..{_MAX_KEY} characters, got {value!r}"
                )
            key = value.strip()
        else:
            kept.append((name, value))
    body: bytes | None = None
    if has_json and data is not None:
        raise TypeError("pass json= or data=, not both")
    if has_json:
        # allow_nan=False as requests does: NaN is not JSON, and a server would refuse it.
        body = jsonlib.dumps(json, allow_nan=False).encode("utf-8")
        _default_header(kept, "Content-Type", "application/json")
    elif data is not None:
        body = _body(data, kept)
    stored_base, ref = split_url(url, base)
    return StoredRequest(
        method=method.upper(),
        base=stored_base,
        ref=ref,
        headers=tuple(kept),
        params=_params(params),
        body=body,
        operation=operation,
        idempotency_key=key if key is not None else str(uuid.uuid4()),
    )


def split_url(url: object, base: str | None) -> tuple[str | None, str]:
    """``(base, ref)`` to store for ``url`` submitted while ``base`` is in effect."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    if "://" in url:
        absolute = url
    elif base is None:
        raise InvalidRequestError(
            f"url {url!r} is relative, and neither the outbox nor the manager has a base_url",
            url=url,
        )
    else:
        absolute = urljoin(base, url)
    parts = _check_absolute(absolute)
    anchor = base if base is not None else f"{parts.scheme}://{parts.netloc}/"
    anchor_parts = urlsplit(anchor)
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if (anchor_parts.scheme, anchor_parts.netloc.lower()) != (
        parts.scheme,
        parts.netloc.lower(),
    ):
        return None, urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    directory = anchor_parts.path[: anchor_parts.path.rfind("/") + 1] or "/"
    path = parts.path or "/"
    if not path.startswith(directory):
        return anchor, target
    ref = target[len(directory) :]
    first = ref.split("/", 1)[0]
    if ":" in first.split("?", 1)[0]:
        ref = "./" + ref  # "a:b" would read as a scheme
    return anchor, ref


def resolve_url(base_in_effect: str | None, stored_base: str | None, ref: str) -> str:
    """The absolute URL to send a stored entry to (see the module docstring)."""
    if stored_base is None:
        return ref
    return urljoin(base_in_effect if base_in_effect is not None else stored_base, ref)


def check_base_url(base_url: object, name: str = "base_url") -> str | None:
    """``base_url`` checked: ``None`` or an ``http(s)://host`` URL."""
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"{name} must be a str or None, got {type(base_url).__name__}")
    try:
        _check_absolute(base_url)
    except InvalidRequestError:
        raise ValueError(f"{name} must be an http(s)://host URL, got {base_url!r}") from None
    return base_url


def _check_absolute(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"url {url!r} is not an http(s)://host URL", url=url)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise InvalidRequestError(f"url {url!r} has an invalid port", url=url) from None
    return parts


def _headers(headers: object) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, list | tuple):
        items = headers
    else:
        raise TypeError(f"headers must be a mapping, got {type(headers).__name__}")
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"headers must hold (name, value) pairs, got {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"headers: name and value must be str, got {name!r}: {type(value).__name__}"
            )
        if not _TOKEN.match(name):
            raise ValueError(f"headers: {name!r} is not a valid header name")
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"headers: the value of {name!r} holds a line break or NUL")
        pairs.append((name, value))
    return pairs


def _default_header(headers: list[tuple[str, str]], name: str, value: str) -> None:
    if not any(n.lower() == name.lower() for n, _ in headers):
        headers.append((name, value))


def _body(data: object, headers: list[tuple[str, str]]) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, Mapping) or (
        isinstance(data, list | tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in data)
    ):
        fields = data.items() if isinstance(data, Mapping) else data
        for name, value in fields:
            if not isinstance(name, str) or not isinstance(value, str | int | float | list):
                raise TypeError(f"data: form field {name!r} must map a str to a str or number")
        body = urlencode(list(fields), doseq=True).encode("ascii")
        _default_header(headers, "Content-Type", "application/x-www-form-urlencoded")
        return body
    raise TypeError(
        f"data must be bytes, str or a mapping of form fields, got {type(data).__name__} "
        "(files and streams cannot be stored)"
    )


def _params(params: object) -> tuple[tuple[str, str], ...] | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        items: Iterable[Any] = params.items()
    elif isinstance(params, list | tuple):
        items = params
    else:
        raise TypeError(f"params must be a mapping or a list of pairs, got {type(params).__name__}")
    out: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"params must hold (name, value) pairs, got {item!r}")
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"params: names must be str, got {name!r}")
        values = value if isinstance(value, list | tuple) else [value]
        for one in values:
            if one is None:
                continue  # requests drops None values too
            if isinstance(one, bool) or not isinstance(one, str | int | float):
                raise TypeError(f"params: {name!r} must be a str or a number, got {one!r}")
            out.append((name, str(one)))
    return tuple(out)
