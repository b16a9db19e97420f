"""Plain-words text for the widgets: durations, state lines, tooltips, details (no Qt).

Kept apart from the widgets so that the words can be tested without a display.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from connmgr.machine import STATE_EFFECTS, ConnectionState
from connmgr.timeline import format_rate

__all__ = [
    "CAPTIVE_PORTAL_TEXT",
    "LIMITED_TEXT",
    "countdown_due",
    "describe_error",
    "format_countdown",
    "format_delay",
    "format_since",
    "is_captive_portal",
    "network_kind",
    "redact",
    "status_line",
    "technical_details",
]

CAPTIVE_PORTAL_TEXT = "Sign in to the network"
#: A network, but no validated internet (the monitor's LIMITED).
LIMITED_TEXT = "No internet"

_SECRET_KEYS = re.compile(r"(token|key|secret|pass|auth|sig|session|code)", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s'\"<>)]+")


def _fallback_redact_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, "***" if _SECRET_KEYS.search(k) else v) for k, v in parse_qsl(parts.query, True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _redactor() -> Callable[[str], str]:
    from connmgr import errors

    found = getattr(errors, "redact_text", None)
    if callable(found):
        return found  # type: ignore[no-any-return]
    return lambda text: _URL.sub(lambda m: _fallback_redact_url(m.group(0)), text)


def redact(text: str) -> str:
    """``text`` with credentials masked (:func:`connmgr.errors.redact_text`)."""
    return _redactor()(str(text))


def network_kind(status: Any) -> str:
    """A ``NetworkStatus`` (or its name) as ``"online"``, ``"limited"``, ``"captive_portal"``,
    ``"offline"`` or ``"unknown"``.

    Read by name, so a status this version of connmgr does not define (such as
    ``LIMITED`` on an older monitor) still gets its words.
    """
    name = str(getattr(status, "name", status if status is not None else "")).upper()
    return {
        "ONLINE": "online",
        "LIMITED": "limited",
        "CAPTIVE_PORTAL": "captive_portal",
        "OFFLINE": "offline",
    }.get(name, "unknown")


def is_captive_portal(status: Any) -> bool:
    """Whether a ``NetworkStatus`` means a login page is in the way."""
    return network_kind(status) == "captive_portal"


def format_countdown(seconds: float) -> str:
    """Whole seconds for a status bar: ``"12 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60} min"


def format_delay(seconds: float) -> str:
    """Tenths under ten seconds (``"2.4 s"``), else as :func:`format_countdown`."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    return format_countdown(seconds)


def format_since(since: float, now: float, wall_now: float | None = None) -> str:
    """``"14:03:12 (2 min ago)"`` from clock times ``since`` and ``now``."""
    ago = max(0.0, now - since)
    wall = (time.time() if wall_now is None else wall_now) - ago
    clock_text = time.strftime("%H:%M:%S", time.localtime(wall))
    if ago < 1:
        return f"{clock_text} (just now)"
    return f"{clock_text} ({format_countdown(ago)} ago)"


def countdown_due(snapshot: Any) -> float | None:
    """The clock time a waiting origin may send again, or ``None`` (no countdown)."""
    state = snapshot.state
    if state not in (ConnectionState.RATE_LIMITED, ConnectionState.BACKOFF):
        return None
    if snapshot.resume_at is not None:
        return float(snapshot.resume_at)
    if snapshot.retry_in is not None:
        return float(snapshot.taken_at) + float(snapshot.retry_in)
    return None


def status_line(snapshot: Any, now: float) -> str:
    """The status-bar words for a snapshot at clock time ``now``.

    ``"Online"``, ``"Unstable connection"``, ``"Rate limited — resuming in 12 s"``,
    ``"Server trouble — retrying in 8 s"``, ``"Offline"``,
    ``"Sign in to the network"`` behind a captive portal, or ``"No internet"``
    on a network without internet access while the server does not answer
    (when it does, its own state is the truth).
    """
    state: ConnectionState = snapshot.state
    network = network_kind(getattr(snapshot, "network", None))
    if network == "captive_portal":
        return CAPTIVE_PORTAL_TEXT
    if network == "limited" and state is not ConnectionState.ONLINE:
        return LIMITED_TEXT
    label = STATE_EFFECTS[state].label
    due = countdown_due(snapshot)
    if due is None:
        return label
    remaining = due - now
    if state is ConnectionState.RATE_LIMITED:
        if remaining <= 0:
            return f"{label} — resuming now"
        return f"{label} — resuming in {format_countdown(remaining)}"
    if remaining <= 0:
        return f"{label} — trying again now"
    return f"{label} — retrying in {format_countdown(remaining)}"


def describe_error(error: Any) -> str:
    """The error in plain words: its ``user_message`` (and suggestion), else its text."""
    if error is None:
        return "none"
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    suggestion = getattr(error, "suggestion", None)
    if suggestion and suggestion not in message:
        return f"{message} {suggestion}"
    return str(message)


def _error_lines(error: Any, indent: str = "  ") -> list[str]:
    lines = [f"{type(error).__name__}: {redact(str(error))}"]
    for name in ("user_message", "suggestion", "details", "url", "operation"):
        value = getattr(error, name, None)
        if value:
            lines.append(f"{indent}{name}: {redact(str(value))}")
    for name in ("retry_after", "retry_in", "attempts"):
        value = getattr(error, name, None)
        if value:
            lines.append(f"{indent}{name}: {value}")
    response = getattr(error, "response", None)
    if response is not None:
        lines.append(f"{indent}status: {getattr(response, 'status_code', '?')}")
    return lines


def technical_details(snapshot: Any, now: float, *, extra_errors: list[Any] | None = None) -> str:
    """A redacted, copyable description of a snapshot (and of further errors)."""
    lines = ["connmgr connection details", ""]
    if snapshot is not None:
        state: ConnectionState = snapshot.state
        lines += [
            f"state: {state.value} ({STATE_EFFECTS[state].label})",
            f"status line: {status_line(snapshot, now)}",
            f"origin: {redact(snapshot.origin) if snapshot.origin else '(none yet)'}",
            f"in this state for: {format_countdown(now - snapshot.since)}",
        ]
        due = countdown_due(snapshot)
        if due is not None:
            lines.append(f"may send again in: {format_delay(due - now)}")
        network = getattr(snapshot, "network", None)
        lines.append(f"network: {getattr(network, 'value', network)}")
        lines.append(f"attempts: {snapshot.attempts}")
        outcomes = getattr(snapshot, "outcomes", None) or {}
        if outcomes:
            lines.append("outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
        rate = getattr(snapshot, "rate", None)
        if rate is not None:
            lines.append(f"rate limit: {format_rate(rate)}")
        if snapshot.last_error is not None:
            lines += ["", "last error:", *_error_lines(snapshot.last_error)]
    for error in extra_errors or []:
        lines += ["", *_error_lines(error)]
    return "\n".join(lines) + "\n"
