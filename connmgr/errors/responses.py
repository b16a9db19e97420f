"""Errors from HTTP responses: the status, ``Retry-After`` and the rate-limit headers.

Internal to :mod:`connmgr.errors`: the classifier and the verdict share these rules.
"""

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
)
from connmgr.errors.words import one_line
from connmgr.ratelimit.headers import RateLimitInfo, parse_rate_limit_headers

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
    """The value of header ``name`` in any spelling, or ``None``."""
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


def quota_of(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """The rate-limit headers of a response, parsed (``None`` when it has none).

    The header dialects are parsed in one place, the rate-limit header parser,
    whose fast path makes a response without such headers cost one set test.
    Reset timestamps and Retry-After dates are the server's clock: when there
    is something to read and the response says what time it is (``Date``),
    they are measured against that, so a skewed client clock does not matter.
    """
    info = parse_rate_limit_headers(headers)
    if info is None or _header(headers, "Date") is None:
        return info
    # Rare (a rate-limit answer): read again against the server's own clock.
    return parse_rate_limit_headers(headers, _server_now(headers))


def throttle_wait(quota: RateLimitInfo | None) -> float | None:
    """Seconds a throttled answer asks us to wait: ``Retry-After``, else the reset time."""
    if quota is None:
        return None
    return quota.retry_after if quota.retry_after is not None else quota.reset_after


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
        lines.append("body: " + one_line(snippet, 300))
    return "\n".join(lines)  # redacted once, by NetworkError.__init__


def error_from_status(
    status: int,
    response: requests.Response | None,
    quota: RateLimitInfo | None,
    *,
    details: str | None = None,
    reason: str = "",
) -> NetworkError:
    """The error for an HTTP ``status``; ``quota`` is the response's parsed headers."""
    # GitHub and others answer 403 (not 429) when the quota is spent.
    rate_limited = status == 429 or (status == 403 and quota is not None and quota.exhausted)
    if rate_limited:
        retry_after = throttle_wait(quota)
    else:
        retry_after = quota.retry_after if quota is not None else None
    message = f"HTTP {status} {reason}".rstrip()
    cls: type[NetworkError]
    if rate_limited:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = HTTPStatusError
    return cls(message, details=details, response=response, status=status, retry_after=retry_after)


def error_from_response(
    response: requests.Response,
    quota: RateLimitInfo | None,
    *,
    details_prefix: str | None = None,
) -> NetworkError:
    """The error for an error ``response`` (its status, headers and the body already read)."""
    details = _response_details(response)
    if details_prefix:
        details = f"{details}\n{details_prefix}"
    return error_from_status(
        response.status_code, response, quota, details=details, reason=response.reason or ""
    )
