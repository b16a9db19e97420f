"""Plain words shared by the error classes and the classifier.

Waits worded for people (rounded up, never "come back too early"), one-line
text for logs, the status messages, and a tolerant reading of numbers.
"""

from __future__ import annotations

import math
from typing import Any, Final

__all__ = [
    "LONGEST_SHOWN_WAIT",
    "MAX_LINE",
    "STATUS_MESSAGES",
    "finite_or_none",
    "limit_words",
    "one_line",
    "wait_then_retry",
    "wait_words",
]

#: ``str(err)`` is cut to this many characters: a log line, not a dump.
MAX_LINE: Final = 400


def wait_words(seconds: float) -> str:
    """A wait in plain words, rounded up: never tell someone to come back too early."""
    whole = max(1, math.ceil(seconds - 1e-9))
    if whole < 120:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"


#: Past a day, a number is no help to a person: "later" is the honest word.
LONGEST_SHOWN_WAIT: Final = 86400.0


def wait_then_retry(seconds: float) -> str:
    """The suggestion for a known wait: "Wait 12 seconds, then try again." or "later"."""
    if seconds > LONGEST_SHOWN_WAIT:
        return "Try again later."
    return f"Wait {wait_words(seconds)}, then try again."


def limit_words(seconds: float) -> str:
    """A configured limit in plain words, as written (0.5 s stays 0.5 s)."""
    if seconds >= 10 or float(seconds).is_integer():
        whole = round(seconds)
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{seconds:.2g} seconds"


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite number >= 0, or ``None`` (never raises: it reads servers' text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


#: (user_message, suggestion) of each HTTP status worth its own words.
STATUS_MESSAGES: Final[dict[int, tuple[str, str]]] = {
    400: (
        "The server could not understand the request.",
        "This is probably a problem in the application; report it if it keeps happening.",
    ),
    401: (
        "You need to sign in to do this.",
        "Sign in (or check your password or API key), then try again.",
    ),
    403: (
        "The server refused access to this.",
        "Check that your account is allowed to do this; signing in again may help.",
    ),
    404: (
        "The page or item was not found on the server.",
        "Check the address or search terms; it may have been moved or removed.",
    ),
    405: (
        "The server does not allow this kind of request here.",
        "This is probably a problem in the application; report it if it keeps happening.",
    ),
    408: ("The server stopped waiting for the request.", "Try again."),
    409: (
        "The request conflicts with the current state on the server.",
        "Refresh, then try again.",
    ),
    410: (
        "This item has been removed from the server and is no longer available.",
        "Remove or update any links or bookmarks that point to it.",
    ),
    413: ("What was sent is too large for the server.", "Try something smaller."),
    414: ("The address is too long for the server.", "Try a shorter search or fewer filters."),
    415: (
        "The server could not accept the data that was sent.",
        "Check what you entered, then try again.",
    ),
    422: (
        "The server could not accept the data that was sent.",
        "Check what you entered, then try again.",
    ),
    451: ("This is not available here for legal reasons.", "It cannot be accessed from here."),
    500: (
        "The server ran into a problem.",
        "Try again later; the problem is on the server's side, not yours.",
    ),
    501: (
        "The server does not support this request.",
        "Sending it again will not help; report it if it keeps happening.",
    ),
    502: (
        "The server is having trouble (bad gateway).",
        "Try again in a moment; the problem is on the server's side.",
    ),
    503: (
        "The server is temporarily unavailable (busy or down for maintenance).",
        "Try again in a few minutes.",
    ),
    504: (
        "The server took too long to respond (gateway timeout).",
        "Try again in a moment; the problem is on the server's side.",
    ),
}
