"""Words for people: :class:`ErrorMessageFormatter`."""

from __future__ import annotations

from collections.abc import Mapping

import requests

from connmgr.errors.classify import classify_error
from connmgr.errors.redact import redact_headers, redact_text
from connmgr.errors.words import wait_words

__all__ = ["ErrorMessageFormatter"]


class ErrorMessageFormatter:
    """Words for people: a dialog line, a retry banner, a Details/Copy box.

    The original plan's name; every method also works on the class itself
    (``ErrorMessageFormatter.format_error(err)``), accepts any exception (it is
    classified first) and never shows a secret. Subclass and override
    :meth:`format_error` to reword or translate.

    Example::

        >>> ErrorMessageFormatter.format_error(RateLimitError(retry_after=12))
        'The server asked us to slow down. Wait 12 seconds, then try again.'
        >>> ErrorMessageFormatter.format_retry(RateLimitError(retry_after=12), 12)
        'The server asked us to slow down. Trying again in 12 seconds.'
    """

    @classmethod
    def format_error(cls, error: BaseException | requests.Response) -> str:
        """What happened and what to do, in one or two plain sentences."""
        err = classify_error(error)
        return f"{err.user_message} {err.suggestion}".strip()

    @classmethod
    def format_retry(
        cls,
        error: BaseException | requests.Response,
        delay: float,
        *,
        attempt: int | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """A retry banner: what happened, and when the next attempt goes.

        ``attempt`` is the attempt about to be made (2 for the first retry).
        """
        err = classify_error(error)
        when = "now" if delay <= 0 else f"in {wait_words(delay)}"
        counter = (
            f" (attempt {attempt} of {max_attempts})"
            if attempt is not None and max_attempts is not None
            else ""
        )
        return f"{err.user_message} Trying again {when}{counter}."

    @classmethod
    def format_details(cls, error: BaseException | requests.Response) -> str:
        """Several lines of technical detail, redacted, for a Details/Copy box."""
        err = classify_error(error)
        lines = [
            f"Error: {type(err).__name__} ({err.kind})",
            f"What happened: {err.user_message}",
            f"What to do: {err.suggestion}",
        ]
        if err.url:
            method = err.method
            lines.append(f"Request: {method} {err.url}" if method else f"Request: {err.url}")
        if err.operation:
            lines.append(f"Operation: {err.operation}")
        if err.status is not None:
            reason = err.response.reason if err.response is not None else ""
            lines.append(f"HTTP status: {err.status} {reason or ''}".rstrip())
        if err.retry_after is not None:
            lines.append(f"Retry after: {err.retry_after:g} s")
        if err.attempts:
            lines.append(f"Attempts: {err.attempts}")
        lines.append(
            "Request sent: "
            + ("possibly" if err.request_sent else "no (it never left this machine)")
        )
        headers = getattr(err.request, "headers", None)
        if isinstance(headers, Mapping) and headers:
            shown = ", ".join(f"{k}: {v}" for k, v in redact_headers(headers).items())
            lines.append(f"Request headers: {shown}")
        if err.details:
            lines.append("Details:")
            lines.extend(f"  {line}" for line in redact_text(err.details).splitlines())
        return "\n".join(lines)
