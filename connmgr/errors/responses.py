"""Errors from HTTP responses: the status, ``Retry-After`` and the rate-limit headers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

import requests
from requests.structures import CaseInsensitiveDict

from connmgr.errors.redact import redact_headers
from connmgr.errors.tree import (
    HTTPStatusError,
    NetworkError,
    RateLimitError,
    ServerError,
    _one_line,
)
from connmgr.ratelimit import RateLimitInfo, parse_rate_limit_headers, parse_retry_after

# Headers that can say "no quota left". Looked up first, so that the response
# of nearly every request, which has none of them, costs outcome_of a few dict
# lookups rather than a full header parse.
_QUOTA_HEADERS: Final = (
    "ratelimit",
    "ratelimit-remaining",
    "x-ratelimit-remaining",
    "x-rate-limit-remaining",
)
_DETAIL_HEADERS: Final = (
    "content-type",
    "content-length",
    "retry-after",
    "date",
    "server",
    "via",
    "location",
)
_DETAIL_HEADER_MARKERS: Final = ("ratelimit", "rate-limit", "request-id", "trace", "cf-ray")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        if isinstance(headers, CaseInsensitiveDict):
            return None  # the hot path: every response's outcome reads a few headers
        # A plain dict (a test, a mock) may spell the name in any case.
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return str(candidate)
        return None
    return str(value)


def _server_now(headers: Mapping[str, str]) -> float:
    """The server's "now" from its ``Date`` header, else ours.

    Retry-After dates and epoch reset times are the server's clock; measuring
    them against its own Date makes them immune to a skewed client clock.
    """
    date = _header(headers, "Date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return time.time()


def _parse_retry_after(value: str, now: float) -> float | None:
    return parse_retry_after(value, now=now)


def _quota(headers: Mapping[str, str]) -> RateLimitInfo | None:
    # The header dialects are parsed in one place, the rate-limit header parser.
    return parse_rate_limit_headers(headers, _server_now(headers))


def _quota_exhausted(headers: Mapping[str, str]) -> bool:
    """Whether rate-limit headers (any dialect) say no request is left."""
    values = [_header(headers, name) for name in _QUOTA_HEADERS]
    if all(value is None for value in values):
        return False
    if values[0] is None:
        # The common case, a plain count ("X-RateLimit-Remaining: 57"), needs no
        # full parse; the structured RateLimit header (values[0]) always does.
        plain = next(value for value in values if value is not None).strip()
        if plain.isdigit():
            return int(plain) == 0
    info = _quota(headers)
    return info is not None and info.exhausted


def _retry_after_of(headers: Mapping[str, str], *, rate_limited: bool) -> float | None:
    """Seconds to wait: ``Retry-After``, and for a rate limit also the reset headers."""
    if rate_limited:
        info = _quota(headers)
        if info is None:
            return None
        return info.retry_after if info.retry_after is not None else info.reset_after
    raw = _header(headers, "Retry-After")
    return None if raw is None else _parse_retry_after(raw, _server_now(headers))


def _response_details(response: requests.Response) -> str:
    reason = response.reason or ""
    lines = [f"HTTP {response.status_code} {reason}".rstrip()]
    picked = {
        name: value
        for name, value in response.headers.items()
        if name.lower() in _DETAIL_HEADERS
        or any(marker in name.lower() for marker in _DETAIL_HEADER_MARKERS)
    }
    if picked:
        lines.append(
            "headers: " + ", ".join(f"{k}: {v}" for k, v in redact_headers(picked).items())
        )
    # Only a body that was already read: reading here would consume a stream.
    content = response.__dict__.get("_content")
    if isinstance(content, bytes) and content:
        snippet = content[:300].decode("utf-8", "replace")
        lines.append("body: " + _one_line(snippet, 300))
    return "\n".join(lines)  # redacted once, by NetworkError.__init__


def _from_status(
    status: int,
    response: requests.Response | None,
    *,
    details: str | None = None,
    reason: str = "",
) -> NetworkError:
    headers: Mapping[str, str] = response.headers if response is not None else {}
    # GitHub and others answer 403 (not 429) when the quota is spent.
    rate_limited = status == 429 or (status == 403 and _quota_exhausted(headers))
    retry_after = _retry_after_of(headers, rate_limited=rate_limited) if headers else None
    message = f"HTTP {status} {reason}".rstrip()
    cls: type[NetworkError]
    if rate_limited:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = HTTPStatusError
    return cls(message, details=details, response=response, status=status, retry_after=retry_after)


def _from_response(
    response: requests.Response, *, details_prefix: str | None = None
) -> NetworkError:
    details = _response_details(response)
    if details_prefix:
        details = f"{details}\n{details_prefix}"
    return _from_status(
        response.status_code, response, details=details, reason=response.reason or ""
    )
