"""Malformed URLs, refused before anything is sent: :func:`check_url`."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from connmgr.errors.tree import InvalidRequestError

__all__ = ["check_url"]

#: Where the authority (``user@host:port``) ends.
_AUTHORITY_END: Final = re.compile(r"[/?#]")
#: RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SCHEMES: Final = frozenset({"http", "https"})
#: ``scheme://authority`` prefixes already found valid. A process talks to few
#: origins, so this stays small; it is emptied should it ever grow past the bound.
_CHECKED: dict[str, None] = {}
_CHECKED_MAX: Final = 1024


def check_url(url: str) -> str:
    """``url`` unchanged if connmgr can send to it, else :class:`InvalidRequestError`. Pure.

    Refused, with a message that says why (``request_sent`` is ``False``):
    no scheme (``example.com/x``), a scheme other than http and https, no
    host (``http:///x``), a port that is not a number from 1 to 65535
    (``http://h:99999/``, ``http://h:x/``), a broken IPv6 literal
    (``http://[::1``) and whitespace or control characters in the host. The
    path and query are requests' to quote, so they are not checked. Cheap:
    the result for each ``scheme://authority`` is remembered.

    Example::

        >>> check_url("https://api.example.com/v1?q=1")
        'https://api.example.com/v1?q=1'
        >>> try:
        ...     check_url("http://127.0.0.1:99999/")
        ... except InvalidRequestError as err:
        ...     caught = err
        >>> caught.kind, caught.request_sent
        ('invalid_url', False)
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    # requests strips surrounding whitespace before it parses, so does this.
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    end = _AUTHORITY_END.search(rest)
    prefix = text[: len(scheme) + len(sep) + (end.start() if end else len(rest))]
    if sep and prefix in _CHECKED:
        return url
    problem = _problem(text, scheme if sep else None, rest)
    if problem is not None:
        kind, why = problem
        raise InvalidRequestError(
            f"invalid URL {url!r}: {why}", url=url, kind=kind, request_sent=False
        )
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[prefix] = None
    return url


def _problem(url: str, scheme: str | None, rest: str) -> tuple[str, str] | None:
    """``(kind, why)`` when ``url`` cannot be sent, else ``None``."""
    if scheme is None:
        head, colon, tail = url.partition(":")
        if colon and _SCHEME.fullmatch(head) and not tail[:1].isdigit():
            # "mailto:x", "http:/x": a scheme, but no "//" authority.
            if head.lower() in _SCHEMES:
                return "invalid_url", "no host: the address must start with http:// or https://"
            return "invalid_schema", f"the scheme {head!r} is not supported (only http and https)"
        return "missing_schema", "no scheme: the address must start with http:// or https://"
    if not _SCHEME.fullmatch(scheme):
        return "missing_schema", "no scheme: the address must start with http:// or https://"
    if scheme.lower() not in _SCHEMES:
        return "invalid_schema", f"the scheme {scheme!r} is not supported (only http and https)"
    end = _AUTHORITY_END.search(rest)
    authority = rest[: end.start()] if end else rest
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        literal, bracket, after = hostport[1:].partition("]")
        if not bracket:
            return "invalid_url", "the IPv6 address is missing its closing ']'"
        if not _is_ipv6(literal):
            return "invalid_url", f"{literal!r} is not an IPv6 address"
        if after and not after.startswith(":"):
            return "invalid_url", f"unexpected {after!r} after the IPv6 address"
        host, port = literal, after[1:]
    else:
        host, colon, port = hostport.partition(":")
        if ":" in port:
            return "invalid_url", "an IPv6 address must be written in brackets, like [::1]"
    if not host:
        return "invalid_url", "no host"
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in host):
        return "invalid_url", f"the host {host!r} contains whitespace or control characters"
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return "invalid_url", f"the port must be a number from 1 to 65535, got {port!r}"
    return None


def _is_ipv6(literal: str) -> bool:
    # A zone ("fe80::1%25eth0") is percent-encoded in a URL (RFC 6874).
    address = literal.replace("%25", "%", 1)
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True
