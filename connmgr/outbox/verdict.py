"""What one delivery attempt decided for its entry (pure).

The response decides, not the exception type:

* a ``2xx`` is **delivered**;
* a ``4xx`` other than 408, 425 and 429, or a ``3xx`` (a redirect is not
  followed: a POST would turn into a GET), is **failed** for good, kept with
  its status and a short, redacted snippet of the body;
* anything whose outcome is unknown (a timeout, a connection reset after the
  request left, a ``5xx``, 408, 425, 429) is **retried** later with the same
  ``Idempotency-Key``;
* a request the manager refused at its gate (offline, backoff, rate limited) is
  **gated**: retried when the gate opens, without growing the backoff;
* a request interrupted by :meth:`~connmgr.outbox.Outbox.close` or the end of a
  ``drain`` is **interrupted**: sent again first, with the same key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, Literal

import requests

from connmgr.errors import (
    BackoffError,
    InvalidRequestError,
    NetworkError,
    OfflineError,
    RateLimitError,
    RequestCancelledError,
    redact_text,
)
from connmgr.frozen import explain_frozen
from connmgr.ratelimit import parse_retry_after

__all__ = ["Verdict", "judge_error", "judge_response"]

Action = Literal["delivered", "failed", "retry", "gated", "interrupted"]

#: 4xx statuses that say "not now" rather than "never".
RETRYABLE_4XX: Final = frozenset({408, 425, 429})
_SNIPPET = 160


@explain_frozen
@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one attempt, for the entry's row."""

    action: Action
    reason: str
    status: int | None = None
    #: Seconds the server (or the manager's gate) asked to wait, when it said.
    retry_after: float | None = None
    #: Whether the request may have reached the server.
    reached: bool = True


def judge_response(response: requests.Response) -> Verdict:
    """Judge a response the manager returned (or carried on its error)."""
    status = response.status_code
    if 200 <= status < 300:
        return Verdict("delivered", f"HTTP {status}", status)
    label = f"HTTP {status} {response.reason or ''}".rstrip()
    retry_after = _retry_after(response)
    if 300 <= status < 400:
        where = response.headers.get("Location")
        return Verdict(
            "failed",
            redact_text(f"{label}: redirected to {where}, not followed (it would change a POST)"),
            status,
        )
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        snippet = _snippet(response)
        return Verdict("failed", f"{label}: {snippet}" if snippet else label, status)
    return Verdict("retry", label, status, retry_after)


def judge_error(error: NetworkError) -> Verdict:
    """Judge a classified error the manager raised."""
    if isinstance(error, RequestCancelledError):
        return Verdict("interrupted", "interrupted before an answer", reached=True)
    if isinstance(error, RateLimitError) and error.response is not None:
        # A 429, or a 403 whose headers say the quota is spent: "not now" either way.
        status = error.response.status_code
        label = f"HTTP {status} {error.response.reason or ''}".rstrip()
        return Verdict("retry", f"{label}: rate limited", status, error.retry_after)
    if not error.request_sent and isinstance(error, OfflineError | BackoffError | RateLimitError):
        wait = error.retry_after
        if isinstance(error, BackoffError) and error.retry_in is not None:
            wait = error.retry_in
        return Verdict("gated", _error_text(error), None, wait, reached=False)
    if error.response is not None:
        verdict = judge_response(error.response)
        if error.retry_after is not None and verdict.retry_after is None:
            return Verdict(
                verdict.action, verdict.reason, verdict.status, error.retry_after, verdict.reached
            )
        return verdict
    if isinstance(error, InvalidRequestError):
        return Verdict("failed", _error_text(error), None, reached=False)
    return Verdict("retry", _error_text(error), error.status, error.retry_after, error.request_sent)


def _error_text(error: NetworkError) -> str:
    detail = error.details or str(error)
    return _one_line(redact_text(f"{type(error).__name__}: {detail}"))


def _snippet(response: requests.Response) -> str:
    try:
        text = response.content[: _SNIPPET * 4].decode(response.encoding or "utf-8", "replace")
    except (requests.RequestException, LookupError, RuntimeError):
        return ""
    return _one_line(redact_text(text))


def _one_line(text: str, limit: int = _SNIPPET) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    return parse_retry_after(value, now=time.time())
